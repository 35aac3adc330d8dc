//! The parsed ELF file: sections, segments, symbols, static data.

use crate::buildinfo::{self, BuildInfo};
use crate::dwarf::Dwarf;
use crate::pclntab::Pclntab;
use crate::util::{u64_at, usize_of};
use crate::BinError;
use object::elf;
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
use object::{LittleEndian, Object, ObjectSection, ObjectSymbol, SectionKind};
use std::collections::HashMap;
use std::sync::OnceLock;

/// A symbol from `.symtab`: its link-time address and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Symbol {
    /// Link-time address (add the load bias for a PIE).
    pub addr: u64,
    /// Size in bytes as recorded in the symbol table (0 for markers such as `runtime.text`).
    pub size: u64,
    /// Whether the symbol is code (`STT_FUNC` or in an executable section).
    pub is_text: bool,
}

/// One ELF section, as far as this crate needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Section<'a> {
    pub(crate) name: &'a str,
    pub(crate) addr: u64,
    /// File bytes (empty for `SHT_NOBITS`). Raw: still compressed for compressed sections.
    pub(crate) data: &'a [u8],
    pub(crate) alloc: bool,
    pub(crate) index: object::SectionIndex,
}

/// One `PT_LOAD` segment's file-backed part.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segment<'a> {
    pub(crate) vaddr: u64,
    /// `p_filesz` bytes of file content mapped at `vaddr`.
    pub(crate) data: &'a [u8],
    pub(crate) writable: bool,
}

/// Link-time addresses → static bytes, shared by [`GoBinary`] and [`Pclntab`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Memory<'a> {
    pub(crate) segments: Vec<Segment<'a>>,
}

impl<'a> Memory<'a> {
    /// The `len` bytes at `addr`, if they are all file-backed in one segment.
    pub(crate) fn read(&self, addr: u64, len: usize) -> Option<&'a [u8]> {
        if len == 0 {
            return Some(&[]);
        }
        let len64 = u64::try_from(len).ok()?;
        let end = addr.checked_add(len64)?;
        for s in &self.segments {
            let Some(seg_end) = s.vaddr.checked_add(s.data.len() as u64) else {
                continue;
            };
            if addr >= s.vaddr && end <= seg_end {
                let off = usize_of(addr - s.vaddr)?;
                return s.data.get(off..off.checked_add(len)?);
            }
        }
        None
    }

    /// Everything from `addr` to the end of its segment's file-backed part.
    pub(crate) fn rest(&self, addr: u64) -> Option<&'a [u8]> {
        for s in &self.segments {
            let Some(seg_end) = s.vaddr.checked_add(s.data.len() as u64) else {
                continue;
            };
            if addr >= s.vaddr && addr < seg_end {
                return s.data.get(usize_of(addr - s.vaddr)?..);
            }
        }
        None
    }
}

/// A parsed Go executable (ELF, x86-64), borrowing its bytes.
///
/// Construction is cheap: sections and segments are indexed, the build info is decoded; the
/// symbol table is indexed on first use, and [`GoBinary::pclntab`] and [`GoBinary::dwarf`] do
/// their work when called.
pub struct GoBinary<'a> {
    data: &'a [u8],
    elf: ElfFile64<'a, LittleEndian, &'a [u8]>,
    pie: bool,
    sections: Vec<Section<'a>>,
    memory: Memory<'a>,
    build_info: Option<BuildInfo>,
    symbols: OnceLock<HashMap<&'a str, Symbol>>,
    /// Code symbols sorted by address, for [`GoBinary::symbol_at`].
    by_addr: OnceLock<Vec<(u64, u64, &'a str)>>,
    relative: OnceLock<Vec<(u64, u64)>>,
    /// File bytes of the `PT_DYNAMIC` segment.
    dynamic: Option<&'a [u8]>,
    /// `(p_vaddr, p_offset)` of the first `PT_LOAD` segment.
    first_load: Option<(u64, u64)>,
}

impl std::fmt::Debug for GoBinary<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoBinary")
            .field("len", &self.data.len())
            .field("pie", &self.pie)
            .field("sections", &self.sections.len())
            .field(
                "go_version",
                &self.build_info.as_ref().map(|b| &b.go_version),
            )
            .finish()
    }
}

impl<'a> GoBinary<'a> {
    /// Parses an executable's bytes.
    ///
    /// Fails with [`BinError::NotElf`] or [`BinError::UnsupportedElf`] unless the bytes are a
    /// 64-bit little-endian x86-64 ELF file, and with [`BinError::NotGo`] when the file has no Go
    /// build info, no Go section (`.go.buildinfo`, `.gopclntab`, `.note.go.buildid`) and no
    /// pclntab header in its segments.
    pub fn parse(data: &'a [u8]) -> Result<Self, BinError> {
        if data.len() < 20 || &data[..4] != b"\x7fELF" {
            return Err(BinError::NotElf("no ELF magic"));
        }
        match data[4] {
            elf::ELFCLASS64 => {}
            elf::ELFCLASS32 => return Err(BinError::UnsupportedElf("32-bit ELF")),
            _ => return Err(BinError::NotElf("bad ELF class")),
        }
        match data[5] {
            elf::ELFDATA2LSB => {}
            elf::ELFDATA2MSB => return Err(BinError::UnsupportedElf("big-endian ELF")),
            _ => return Err(BinError::NotElf("bad ELF data encoding")),
        }
        let elf = ElfFile64::<LittleEndian, &'a [u8]>::parse(data)
            .map_err(|_| BinError::NotElf("malformed ELF headers"))?;
        let header = elf.elf_header();
        let endian = LittleEndian;
        if header.e_machine(endian) != elf::EM_X86_64 {
            return Err(BinError::UnsupportedElf("machine is not x86-64"));
        }
        let pie = match header.e_type(endian) {
            elf::ET_EXEC => false,
            elf::ET_DYN => true,
            elf::ET_REL => return Err(BinError::UnsupportedElf("relocatable object, not linked")),
            elf::ET_CORE => return Err(BinError::UnsupportedElf("core file, not an executable")),
            _ => return Err(BinError::UnsupportedElf("unknown ELF type")),
        };

        let mut sections = Vec::new();
        for s in elf.sections() {
            let Ok(name) = s.name() else { continue };
            let data = if s.kind() == SectionKind::UninitializedData
                || s.kind() == SectionKind::UninitializedTls
            {
                &[][..]
            } else {
                s.data().unwrap_or(&[])
            };
            let flags = match s.flags() {
                object::SectionFlags::Elf { sh_flags } => sh_flags,
                _ => 0,
            };
            sections.push(Section {
                name,
                addr: s.address(),
                data,
                alloc: flags & u64::from(elf::SHF_ALLOC) != 0,
                index: s.index(),
            });
        }

        let mut memory = Memory::default();
        let mut dynamic = None;
        let mut first_load = None;
        for ph in elf.elf_program_headers() {
            if ph.p_type(endian) == elf::PT_DYNAMIC {
                dynamic = ph.data(endian, data).ok();
            }
            if ph.p_type(endian) != elf::PT_LOAD {
                continue;
            }
            first_load.get_or_insert((ph.p_vaddr(endian), ph.p_offset(endian)));
            let Ok(seg) = ph.data(endian, data) else {
                continue;
            };
            let flags = ph.p_flags(endian);
            memory.segments.push(Segment {
                vaddr: ph.p_vaddr(endian),
                data: seg,
                writable: flags & elf::PF_W != 0,
            });
        }
        if memory.segments.is_empty() {
            // No program headers: fall back to allocated, file-backed sections.
            for s in &sections {
                if s.alloc && !s.data.is_empty() && s.addr != 0 {
                    memory.segments.push(Segment {
                        vaddr: s.addr,
                        data: s.data,
                        writable: false,
                    });
                }
            }
        }

        let mut bin = GoBinary {
            data,
            elf,
            pie,
            sections,
            memory,
            build_info: None,
            symbols: OnceLock::new(),
            by_addr: OnceLock::new(),
            relative: OnceLock::new(),
            dynamic,
            first_load,
        };
        bin.build_info = buildinfo::find(&bin);
        let go_sections = [
            ".go.buildinfo",
            ".gopclntab",
            ".data.rel.ro.gopclntab",
            ".note.go.buildid",
        ];
        if bin.build_info.is_none()
            && !go_sections.iter().any(|n| bin.section(n).is_some())
            && crate::pclntab::scan_for_header(&bin.memory, None).is_none()
        {
            return Err(BinError::NotGo);
        }
        Ok(bin)
    }

    /// The whole file.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Whether the executable is position-independent (`ET_DYN`): its runtime addresses are the
    /// link-time ones plus a load bias.
    /// `(p_vaddr, p_offset)` of the first `PT_LOAD` segment: with the address where that part of
    /// the file is mapped in a process, it gives a PIE's load bias.
    pub fn first_load_segment(&self) -> Option<(u64, u64)> {
        self.first_load
    }

    /// Whether the binary is position-independent (`ET_DYN`): its addresses need a load bias.
    pub fn is_pie(&self) -> bool {
        self.pie
    }

    /// The Go build info from `.go.buildinfo` (or, without section headers, found in the first
    /// writable segment), as `go version -m` prints it.
    pub fn build_info(&self) -> Option<BuildInfo> {
        self.build_info.clone()
    }

    /// The toolchain version from the build info, e.g. `(1, 27, 3)` for `go1.27.3`; see
    /// [`parse_go_version`](crate::parse_go_version).
    pub fn go_version(&self) -> Option<(u32, u32, u32)> {
        crate::buildinfo::parse_go_version(&self.build_info.as_ref()?.go_version)
    }

    /// A symbol from `.symtab` by exact name (e.g. `runtime.allgs`, `main.main`); `None` when the
    /// binary is stripped or has no such symbol. Undefined symbols are ignored; for duplicate
    /// names the first defined one wins.
    pub fn symbol(&self, name: &str) -> Option<Symbol> {
        self.symbols
            .get_or_init(|| {
                let mut map = HashMap::new();
                for s in self.elf.symbols() {
                    if s.is_undefined() {
                        continue;
                    }
                    let Ok(n) = s.name() else { continue };
                    if n.is_empty() {
                        continue;
                    }
                    let is_text = s.kind() == object::SymbolKind::Text;
                    map.entry(n).or_insert(Symbol {
                        addr: s.address(),
                        size: s.size(),
                        is_text,
                    });
                }
                map
            })
            .get(name)
            .copied()
    }

    /// The code symbol containing link-time address `addr` and the offset from its start, e.g.
    /// `("on_urgent_data", 0)` for a C function compiled into a cgo program. A symbol without a
    /// recorded size matches only its own address. `None` when no code symbol covers `addr` (a
    /// stripped binary, or an address in a shared library).
    pub fn symbol_at(&self, addr: u64) -> Option<(&'a str, u64)> {
        let v = self.by_addr.get_or_init(|| {
            let mut v: Vec<(u64, u64, &'a str)> = self
                .elf
                .symbols()
                .filter(|s| !s.is_undefined() && s.kind() == object::SymbolKind::Text)
                .filter_map(|s| {
                    // `runtime/cgo(.text)`: section symbols of host objects, not functions.
                    let n = s
                        .name()
                        .ok()
                        .filter(|n| !n.is_empty() && !n.ends_with("(.text)"))?;
                    Some((s.address(), s.size(), n))
                })
                .collect();
            // Sized symbols before markers at the same address.
            v.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            v
        });
        let i = v.partition_point(|s| s.0 <= addr);
        // The nearest symbol at or below addr that covers it (looking past a few nested or
        // zero-size ones).
        v[..i]
            .iter()
            .rev()
            .take(64)
            .find(|s| addr < s.0.saturating_add(s.1.max(1)))
            .map(|s| (s.2, addr - s.0))
    }

    /// The machine code of the function named `name` (from the pclntab, so stripped binaries
    /// too): its link-time entry address and bytes.
    pub fn function_code(&self, pcln: &crate::Pclntab<'_>, name: &str) -> Option<(u64, &'a [u8])> {
        let f = pcln.func_by_name(name)?;
        let (entry, end) = (pcln.entry(&f), pcln.end(&f));
        let len = usize::try_from(end.checked_sub(entry)?).ok()?;
        Some((entry, self.read_static(entry, len)?))
    }

    /// Every data symbol (global variable) with a size, as (link-time address, size, name),
    /// sorted by address: to name the global a pointer was found in.
    pub fn data_symbols(&self) -> Vec<(u64, u64, &'a str)> {
        let mut v: Vec<(u64, u64, &'a str)> = self
            .elf
            .symbols()
            .filter(|s| !s.is_undefined() && s.kind() == object::SymbolKind::Data && s.size() > 0)
            .filter_map(|s| {
                Some((
                    s.address(),
                    s.size(),
                    s.name().ok().filter(|n| !n.is_empty())?,
                ))
            })
            .collect();
        v.sort_unstable();
        v
    }

    /// A section by exact name: its address (0 for non-allocated sections) and raw file bytes
    /// (empty for `SHT_NOBITS`; still compressed for compressed debug sections — use
    /// [`GoBinary::dwarf`] for DWARF).
    pub fn section(&self, name: &str) -> Option<(u64, &'a [u8])> {
        self.sections
            .iter()
            .find(|s| s.name == name)
            .map(|s| (s.addr, s.data))
    }

    pub(crate) fn sections(&self) -> &[Section<'a>] {
        &self.sections
    }

    pub(crate) fn memory(&self) -> &Memory<'a> {
        &self.memory
    }

    pub(crate) fn elf(&self) -> &ElfFile64<'a, LittleEndian, &'a [u8]> {
        &self.elf
    }

    /// The `len` bytes of initialised static data at link-time address `addr`, from the file's
    /// loadable segments; `None` if any of them is not file-backed (e.g. `.bss`) or out of range.
    /// Zero bytes are always readable (an empty Go string may have a nil pointer).
    ///
    /// Used to read e.g. the string headers of `runtime.waitReasonStrings` and then their bytes.
    /// Pointers inside the bytes are link-time addresses; see [`GoBinary::read_ptr`].
    pub fn read_static(&self, addr: u64, len: usize) -> Option<&'a [u8]> {
        self.memory.read(addr, len)
    }

    /// The pointer stored at link-time address `addr`, as a link-time address.
    ///
    /// For a PIE, a word the linker left zero and covered by an `R_X86_64_RELATIVE` dynamic
    /// relocation reads as the relocation's addend (what the dynamic loader writes, minus the load
    /// bias). Go's own linker and GNU ld also store the value in the file; some linkers do not.
    pub fn read_ptr(&self, addr: u64) -> Option<u64> {
        let v = u64_at(self.memory.read(addr, 8)?, 0)?;
        if v != 0 || !self.pie {
            return Some(v);
        }
        let rel = self.relative_relocations();
        match rel.binary_search_by_key(&addr, |&(o, _)| o) {
            Ok(i) => rel.get(i).map(|&(_, a)| a),
            Err(_) => Some(0),
        }
    }

    /// The `R_X86_64_RELATIVE` dynamic relocations as `(offset, addend)`, sorted by offset
    /// (built on first use). Read through `PT_DYNAMIC` (`DT_RELA`/`DT_RELASZ`), so section
    /// headers are not needed.
    pub(crate) fn relative_relocations(&self) -> &[(u64, u64)] {
        self.relative.get_or_init(|| {
            let mut v: Vec<(u64, u64)> = Vec::new();
            let Some(dynamic) = self.dynamic else {
                return v;
            };
            let (mut rela, mut relasz, mut relaent) = (None, None, 24u64);
            for d in dynamic.chunks_exact(16) {
                let (Some(tag), Some(val)) = (u64_at(d, 0), u64_at(d, 8)) else {
                    break;
                };
                match tag {
                    0 => break, // DT_NULL
                    7 => rela = Some(val),
                    8 => relasz = Some(val),
                    9 => relaent = val,
                    _ => {}
                }
            }
            let (Some(rela), Some(relasz)) = (rela, relasz) else {
                return v;
            };
            if relaent < 24 {
                return v;
            }
            let Some(table) = usize_of(relasz).and_then(|n| self.memory.read(rela, n)) else {
                return v;
            };
            let Some(step) = usize_of(relaent) else {
                return v;
            };
            for r in table.chunks_exact(step) {
                let (Some(off), Some(info), Some(addend)) =
                    (u64_at(r, 0), u64_at(r, 8), u64_at(r, 16))
                else {
                    break;
                };
                if info & 0xffff_ffff == u64::from(elf::R_X86_64_RELATIVE) {
                    v.push((off, addend));
                }
            }
            v.sort_unstable();
            v
        })
    }

    /// The Go runtime symbol table, located robustly: the `.gopclntab` (or PIE
    /// `.data.rel.ro.gopclntab`) section, else the `runtime.pclntab`/`runtime.epclntab` symbols,
    /// else the moduledata's `pcHeader` pointer (`runtime.firstmoduledata`, the `.go.module`
    /// section of Go 1.26+, or a scan of the data segments), else a scan for the header magic.
    pub fn pclntab(&self) -> Result<Pclntab<'a>, BinError> {
        crate::pclntab::locate(self)
    }

    /// The DWARF type information, decompressed (`SHF_COMPRESSED` or `.zdebug_*`) into memory
    /// the returned value owns. `None` when the binary has no `.debug_info` (built with
    /// `-ldflags=-w` or stripped).
    pub fn dwarf(&self) -> Result<Option<Dwarf>, BinError> {
        Dwarf::load(self)
    }
}
