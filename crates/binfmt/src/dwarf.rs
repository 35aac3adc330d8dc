//! DWARF type information: struct layouts, type sizes and constants.
//!
//! Go's linker compresses the DWARF sections (`SHF_COMPRESSED` with zlib since Go 1.12; older
//! tools used `.zdebug_*`). [`Dwarf`] decompresses the few sections it needs (`.debug_info`,
//! `.debug_abbrev`, `.debug_str`, `.debug_line_str`), indexes the top-level named types and
//! constants once, and decodes a struct's members when asked.

use crate::binary::GoBinary;
use crate::BinError;
use gimli::{
    constants, AttributeValue, DebugInfoOffset, EndianSlice, LittleEndian, SectionId, UnitHeader,
    UnitOffset,
};
use object::{CompressionFormat, Object, ObjectSection};
use std::collections::HashMap;
use std::io::Read;

type R<'d> = EndianSlice<'d, LittleEndian>;

/// Largest decompressed section accepted (hostile input).
const MAX_SECTION: u64 = 1 << 30;
/// Bound on typedef chains followed.
const MAX_TYPEDEF_DEPTH: usize = 16;

/// One member of a struct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructField {
    /// Field name as in the Go source (`goid`, `atomicstatus`, `_` for padding).
    pub name: String,
    /// Byte offset from the start of the struct.
    pub offset: u64,
    /// Size of the field's type in bytes; 0 when DWARF records none (or the type is empty).
    pub size: u64,
    /// The field type's DWARF name as Go writes it: `int64`, `*runtime.m`, `runtime.gobuf`,
    /// `internal/runtime/atomic.Uint32` (Go 1.23+) or `runtime/internal/atomic.Uint32` (Go
    /// 1.21–1.22), `[]uint8`, …; empty if the type has no name.
    pub type_name: String,
}

/// A struct type's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructLayout {
    /// The type's name, e.g. `runtime.g`.
    pub name: String,
    /// `DW_AT_byte_size`.
    pub size: u64,
    /// Members in declaration order.
    pub fields: Vec<StructField>,
}

impl StructLayout {
    /// The field with this name.
    pub fn field(&self, name: &str) -> Option<&StructField> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// Where a DIE lives: its offset in `.debug_info`.
#[derive(Debug, Clone, Copy)]
struct DieRef {
    die: usize,
}

/// The binary's DWARF type information, owning its decompressed sections.
pub struct Dwarf {
    info: Vec<u8>,
    abbrev: Vec<u8>,
    str_: Vec<u8>,
    line_str: Vec<u8>,
    /// Offsets of unit headers in `.debug_info`, ascending.
    units: Vec<usize>,
    types: HashMap<String, DieRef>,
    constants: HashMap<String, i64>,
    /// Top-level variables (`runtime.debug`, …) by name.
    variables: HashMap<String, DieRef>,
}

impl std::fmt::Debug for Dwarf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dwarf")
            .field("debug_info", &self.info.len())
            .field("units", &self.units.len())
            .field("types", &self.types.len())
            .field("constants", &self.constants.len())
            .field("variables", &self.variables.len())
            .finish()
    }
}

/// The bytes of a DWARF section, decompressed.
fn load_section(bin: &GoBinary<'_>, id: SectionId) -> Result<Option<Vec<u8>>, BinError> {
    let name = id.name();
    let zname = format!(".z{}", name.trim_start_matches('.'));
    let Some(s) = bin
        .sections()
        .iter()
        .find(|s| s.name == name)
        .or_else(|| bin.sections().iter().find(|s| s.name == zname))
    else {
        return Ok(None);
    };
    let sec = bin
        .elf()
        .section_by_index(s.index)
        .map_err(|_| BinError::Decompress {
            section: name,
            offset: 0,
            what: "bad section index",
        })?;
    section_bytes(bin.data(), &sec, name).map(|b| Some(b.into_owned()))
}

/// A section's bytes, decompressed when it is compressed (`SHF_COMPRESSED` zlib, or `.zdebug_*`).
/// `name` names the section in errors.
pub(crate) fn section_bytes<'d>(
    data: &'d [u8],
    sec: &impl ObjectSection<'d>,
    name: &'static str,
) -> Result<std::borrow::Cow<'d, [u8]>, BinError> {
    let err = |offset, what| BinError::Decompress {
        section: name,
        offset,
        what,
    };
    let range = sec
        .compressed_file_range()
        .map_err(|_| err(0, "bad compression header"))?;
    let start = usize::try_from(range.offset).map_err(|_| err(range.offset, "out of file"))?;
    let len =
        usize::try_from(range.compressed_size).map_err(|_| err(range.offset, "out of file"))?;
    let raw = start
        .checked_add(len)
        .and_then(|end| data.get(start..end))
        .ok_or(err(range.offset, "compressed data out of file"))?;
    match range.format {
        CompressionFormat::None => Ok(std::borrow::Cow::Borrowed(raw)),
        CompressionFormat::Zlib => {
            if range.uncompressed_size > MAX_SECTION {
                return Err(err(range.offset, "uncompressed size over 1 GiB"));
            }
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(raw)
                .take(range.uncompressed_size)
                .read_to_end(&mut out)
                .map_err(|_| err(range.offset, "bad zlib stream"))?;
            if out.len() as u64 != range.uncompressed_size {
                return Err(err(
                    range.offset,
                    "size differs from the compression header",
                ));
            }
            Ok(std::borrow::Cow::Owned(out))
        }
        CompressionFormat::Zstandard => Err(err(range.offset, "zstd is not supported")),
        _ => Err(err(range.offset, "unknown compression format")),
    }
}

fn gerr(offset: usize) -> impl Fn(gimli::Error) -> BinError {
    move |error| BinError::Dwarf {
        offset: offset as u64,
        error,
    }
}

impl Dwarf {
    pub(crate) fn load(bin: &GoBinary<'_>) -> Result<Option<Dwarf>, BinError> {
        let Some(info) = load_section(bin, SectionId::DebugInfo)? else {
            return Ok(None);
        };
        let abbrev = load_section(bin, SectionId::DebugAbbrev)?.unwrap_or_default();
        let str_ = load_section(bin, SectionId::DebugStr)?.unwrap_or_default();
        let line_str = load_section(bin, SectionId::DebugLineStr)?.unwrap_or_default();
        let mut d = Dwarf {
            info,
            abbrev,
            str_,
            line_str,
            units: Vec::new(),
            types: HashMap::new(),
            constants: HashMap::new(),
            variables: HashMap::new(),
        };
        d.index()?;
        Ok(Some(d))
    }

    /// A gimli view of the owned sections.
    fn gimli(&self) -> gimli::Dwarf<R<'_>> {
        gimli::Dwarf {
            debug_info: gimli::DebugInfo::new(&self.info, LittleEndian),
            debug_abbrev: gimli::DebugAbbrev::new(&self.abbrev, LittleEndian),
            debug_str: gimli::DebugStr::new(&self.str_, LittleEndian),
            debug_line_str: gimli::DebugLineStr::new(&self.line_str, LittleEndian),
            ..Default::default()
        }
    }

    /// A string attribute value (inline, `.debug_str` or `.debug_line_str`).
    fn string<'d>(d: &gimli::Dwarf<R<'d>>, v: AttributeValue<R<'d>>) -> Option<&'d str> {
        let s = match v {
            AttributeValue::String(s) => s,
            AttributeValue::DebugStrRef(o) => d.debug_str.get_str(o).ok()?,
            AttributeValue::DebugLineStrRef(o) => d.debug_line_str.get_str(o).ok()?,
            _ => return None,
        };
        std::str::from_utf8(s.slice()).ok()
    }

    /// One pass over every unit: records top-level named types and constants.
    fn index(&mut self) -> Result<(), BinError> {
        let mut units = Vec::new();
        let mut types: HashMap<String, (DieRef, bool)> = HashMap::new();
        let mut consts = HashMap::new();
        let mut vars = HashMap::new();
        {
            let d = self.gimli();
            let mut iter = d.debug_info.units();
            loop {
                let header = match iter.next() {
                    Ok(Some(h)) => h,
                    Ok(None) => break,
                    Err(e) => return Err(gerr(units.last().copied().unwrap_or(0))(e)),
                };
                let uoff = header
                    .offset()
                    .as_debug_info_offset()
                    .map(|o| o.0)
                    .unwrap_or(0);
                units.push(uoff);
                let abbrevs = d.abbreviations(&header).map_err(gerr(uoff))?;
                let mut raw = header.entries_raw(&abbrevs, None).map_err(gerr(uoff))?;
                while !raw.is_empty() {
                    let depth = raw.next_depth();
                    let die_off = raw.next_offset();
                    let Some(abbrev) = raw.read_abbreviation().map_err(gerr(uoff))? else {
                        continue;
                    };
                    let tag = abbrev.tag();
                    let interesting = depth == 1
                        && (tag == constants::DW_TAG_constant
                            || tag == constants::DW_TAG_variable
                            || is_type_tag(tag));
                    if !interesting {
                        raw.skip_attributes(abbrev.attributes())
                            .map_err(gerr(uoff))?;
                        continue;
                    }
                    let mut name = None;
                    let mut value = None;
                    let mut sized = false;
                    for spec in abbrev.attributes() {
                        let attr = raw.read_attribute(*spec).map_err(gerr(uoff))?;
                        match attr.name() {
                            constants::DW_AT_name => name = Self::string(&d, attr.value()),
                            constants::DW_AT_const_value => value = const_value(attr.value()),
                            constants::DW_AT_byte_size => sized = true,
                            _ => {}
                        }
                    }
                    let Some(name) = name else { continue };
                    if tag == constants::DW_TAG_variable {
                        vars.entry(name.to_string()).or_insert(DieRef {
                            die: uoff + die_off.0,
                        });
                        continue;
                    }
                    if tag == constants::DW_TAG_constant {
                        if let Some(v) = value {
                            consts.entry(name.to_string()).or_insert(v);
                        }
                        continue;
                    }
                    let die = DieRef {
                        die: uoff + die_off.0,
                    };
                    // Prefer a complete (sized) definition or a typedef over a declaration.
                    let complete = sized || tag == constants::DW_TAG_typedef;
                    match types.get(name) {
                        Some((_, true)) => {}
                        Some((_, false)) if !complete => {}
                        _ => {
                            types.insert(name.to_string(), (die, complete));
                        }
                    }
                }
            }
        }
        self.units = units;
        self.types = types.into_iter().map(|(k, (v, _))| (k, v)).collect();
        self.constants = consts;
        self.variables = vars;
        Ok(())
    }

    /// Parses the unit containing `.debug_info` offset `off`.
    fn unit_of<'d>(&self, d: &gimli::Dwarf<R<'d>>, off: usize) -> Option<UnitHeader<R<'d>>> {
        let i = self.units.partition_point(|&u| u <= off).checked_sub(1)?;
        d.debug_info
            .header_from_offset(DebugInfoOffset(*self.units.get(i)?))
            .ok()
    }

    /// Calls `f` with the DIE at `.debug_info` offset `off`.
    fn with_die<'d, T>(
        &self,
        d: &gimli::Dwarf<R<'d>>,
        off: usize,
        f: impl FnOnce(
            &UnitHeader<R<'d>>,
            &gimli::DebuggingInformationEntry<'_, '_, R<'d>>,
        ) -> Option<T>,
    ) -> Option<T> {
        let unit = self.unit_of(d, off)?;
        let uoff = unit.offset().as_debug_info_offset()?.0;
        let abbrevs = d.abbreviations(&unit).ok()?;
        let mut cursor = unit
            .entries_at_offset(&abbrevs, UnitOffset(off.checked_sub(uoff)?))
            .ok()?;
        cursor.next_entry().ok()??;
        let die = cursor.current()?;
        f(&unit, die)
    }

    /// The `.debug_info` offset a `DW_AT_type` value refers to.
    fn type_ref(unit: &UnitHeader<R<'_>>, v: AttributeValue<R<'_>>) -> Option<usize> {
        match v {
            AttributeValue::UnitRef(o) => unit.offset().as_debug_info_offset()?.0.checked_add(o.0),
            AttributeValue::DebugInfoRef(o) => Some(o.0),
            _ => None,
        }
    }

    /// Name, byte size and `DW_AT_type` target of the DIE at `off`.
    fn type_info(
        &self,
        d: &gimli::Dwarf<R<'_>>,
        off: usize,
    ) -> Option<(String, Option<u64>, Option<usize>, gimli::DwTag)> {
        self.with_die(d, off, |unit, die| {
            let name = die
                .attr_value(constants::DW_AT_name)
                .ok()
                .flatten()
                .and_then(|v| Self::string(d, v))
                .unwrap_or("")
                .to_string();
            let size = die
                .attr_value(constants::DW_AT_byte_size)
                .ok()
                .flatten()
                .and_then(|v| v.udata_value());
            let target = die
                .attr_value(constants::DW_AT_type)
                .ok()
                .flatten()
                .and_then(|v| Self::type_ref(unit, v));
            Some((name, size, target, die.tag()))
        })
    }

    /// Byte size of the type at `off`, following typedefs.
    fn size_at(&self, d: &gimli::Dwarf<R<'_>>, mut off: usize) -> Option<u64> {
        for _ in 0..MAX_TYPEDEF_DEPTH {
            let (_, size, target, tag) = self.type_info(d, off)?;
            if let Some(s) = size {
                return Some(s);
            }
            if tag == constants::DW_TAG_pointer_type {
                return Some(8);
            }
            off = target?;
        }
        None
    }

    /// The layout of a struct type by its Go name, e.g. `runtime.g`, `runtime.gobuf`,
    /// `runtime.stack`, `internal/runtime/atomic.Uint32`. A typedef of a struct resolves to the
    /// struct. `None` if there is no such type or it is not a struct.
    pub fn struct_layout(&self, name: &str) -> Option<StructLayout> {
        let d = self.gimli();
        let mut off = self.types.get(name)?.die;
        for _ in 0..MAX_TYPEDEF_DEPTH {
            let (_, _, target, tag) = self.type_info(&d, off)?;
            if tag == constants::DW_TAG_typedef {
                off = target?;
                continue;
            }
            break;
        }
        let unit = self.unit_of(&d, off)?;
        let uoff = unit.offset().as_debug_info_offset()?.0;
        let abbrevs = d.abbreviations(&unit).ok()?;
        let mut tree = unit
            .entries_tree(&abbrevs, Some(UnitOffset(off.checked_sub(uoff)?)))
            .ok()?;
        let root = tree.root().ok()?;
        let die = root.entry();
        if die.tag() != constants::DW_TAG_structure_type {
            return None;
        }
        let size = die
            .attr_value(constants::DW_AT_byte_size)
            .ok()
            .flatten()
            .and_then(|v| v.udata_value())?;
        let mut members = Vec::new();
        let mut children = root.children();
        while let Ok(Some(child)) = children.next() {
            let e = child.entry();
            if e.tag() != constants::DW_TAG_member {
                continue;
            }
            let fname = e
                .attr_value(constants::DW_AT_name)
                .ok()
                .flatten()
                .and_then(|v| Self::string(&d, v))
                .unwrap_or("")
                .to_string();
            let offset = e
                .attr_value(constants::DW_AT_data_member_location)
                .ok()
                .flatten()
                .and_then(member_offset)
                .unwrap_or(0);
            let ty = e
                .attr_value(constants::DW_AT_type)
                .ok()
                .flatten()
                .and_then(|v| Self::type_ref(&unit, v));
            members.push((fname, offset, ty));
        }
        let fields = members
            .into_iter()
            .map(|(fname, offset, ty)| {
                let (type_name, size) = match ty {
                    Some(t) => (
                        self.type_info(&d, t).map(|i| i.0).unwrap_or_default(),
                        self.size_at(&d, t).unwrap_or(0),
                    ),
                    None => (String::new(), 0),
                };
                StructField {
                    name: fname,
                    offset,
                    size,
                    type_name,
                }
            })
            .collect();
        Some(StructLayout {
            name: name.to_string(),
            size,
            fields,
        })
    }

    /// The value of a `DW_TAG_constant`, e.g. `runtime._Gwaiting`, when the compiler emitted it
    /// (Go emits the runtime package's constants).
    pub fn constant(&self, name: &str) -> Option<i64> {
        self.constants.get(name).copied()
    }

    /// The byte size of a named type (following typedefs), e.g. `runtime.g`, `int`,
    /// `runtime.guintptr`.
    pub fn type_size(&self, name: &str) -> Option<u64> {
        let d = self.gimli();
        self.size_at(&d, self.types.get(name)?.die)
    }

    /// Whether a type of this exact name exists.
    pub fn has_type(&self, name: &str) -> bool {
        self.types.contains_key(name)
    }

    /// Names of all indexed types (unordered).
    pub fn type_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.types.keys().map(String::as_str)
    }

    /// The name of a global variable's type, e.g. `[65]uint32` for `runtime.handlingSig`, or the
    /// spelled-out `struct { … }` of a variable declared with an anonymous struct type (such as
    /// `runtime.debug`), which [`Dwarf::struct_layout`] then accepts. `None` when the DWARF has no
    /// such variable.
    pub fn variable_type(&self, name: &str) -> Option<String> {
        let d = self.gimli();
        let off = self.variables.get(name)?.die;
        let target = self.with_die(&d, off, |unit, die| {
            die.attr_value(constants::DW_AT_type)
                .ok()
                .flatten()
                .and_then(|v| Self::type_ref(unit, v))
        })?;
        self.type_info(&d, target)
            .map(|i| i.0)
            .filter(|n| !n.is_empty())
    }

    /// Names and values of all constants (unordered).
    pub fn constants(&self) -> impl Iterator<Item = (&str, i64)> + '_ {
        self.constants.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

fn is_type_tag(tag: gimli::DwTag) -> bool {
    matches!(
        tag,
        constants::DW_TAG_structure_type
            | constants::DW_TAG_base_type
            | constants::DW_TAG_typedef
            | constants::DW_TAG_pointer_type
            | constants::DW_TAG_array_type
            | constants::DW_TAG_subroutine_type
            | constants::DW_TAG_union_type
            | constants::DW_TAG_enumeration_type
            | constants::DW_TAG_class_type
            | constants::DW_TAG_unspecified_type
    )
}

fn const_value(v: AttributeValue<R<'_>>) -> Option<i64> {
    match v {
        AttributeValue::Sdata(x) => Some(x),
        AttributeValue::Udata(x) => i64::try_from(x).ok(),
        AttributeValue::Data1(x) => Some(i64::from(x)),
        AttributeValue::Data2(x) => Some(i64::from(x)),
        AttributeValue::Data4(x) => Some(i64::from(x)),
        AttributeValue::Data8(x) => Some(x as i64),
        _ => None,
    }
}

/// `DW_AT_data_member_location` as a constant or a `DW_OP_plus_uconst` expression.
fn member_offset(v: AttributeValue<R<'_>>) -> Option<u64> {
    if let Some(x) = v.udata_value() {
        return Some(x);
    }
    if let AttributeValue::Exprloc(e) = v {
        let b = e.0.slice();
        if b.first() == Some(&constants::DW_OP_plus_uconst.0) {
            return crate::util::uvarint(b.get(1..)?).map(|(x, _)| x);
        }
    }
    None
}
