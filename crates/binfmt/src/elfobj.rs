//! Any ELF object mapped into a process — the executable, a shared library, the vDSO — as native
//! unwinding and symbolisation need it: where its segments go (to turn a mapping into a load bias),
//! its unwind sections (`.eh_frame`, `.eh_frame_hdr`, `.debug_frame`), its function and data
//! symbols (`.symtab`, else `.dynsym`) and, on demand, file:line from its DWARF.
//!
//! The object owns its bytes ([`SharedBytes`]), so section slices can be handed to an unwinder
//! without copying. All addresses here are the object's own (SVMAs); the caller adds the bias.

use crate::dwarf::section_bytes;
use crate::BinError;
use object::elf;
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
use object::{LittleEndian, Object, ObjectSection, ObjectSymbol, SymbolKind};
use std::cell::OnceCell;
use std::ops::{Deref, Range};
use std::sync::Arc;

/// Bytes shared by reference count: a whole file or a range of it. Derefs to the slice.
#[derive(Clone)]
pub struct SharedBytes {
    buf: Arc<[u8]>,
    range: Range<usize>,
}

impl SharedBytes {
    /// All of `buf`.
    pub fn new(buf: Arc<[u8]>) -> Self {
        let range = 0..buf.len();
        SharedBytes { buf, range }
    }

    /// A sub-range (relative to this slice), or `None` when out of bounds.
    pub fn slice(&self, r: Range<usize>) -> Option<SharedBytes> {
        if r.start > r.end || r.end > self.range.len() {
            return None;
        }
        Some(SharedBytes {
            buf: Arc::clone(&self.buf),
            range: self.range.start + r.start..self.range.start + r.end,
        })
    }
}

impl Default for SharedBytes {
    fn default() -> Self {
        SharedBytes::new(Arc::from(&[][..]))
    }
}

impl Deref for SharedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[self.range.clone()]
    }
}

impl std::fmt::Debug for SharedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedBytes({} bytes)", self.range.len())
    }
}

/// One `PT_LOAD` segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadSegment {
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_memsz`.
    pub memsz: u64,
    /// `p_offset`.
    pub offset: u64,
    /// `p_filesz`.
    pub filesz: u64,
    /// `PF_X`: code.
    pub exec: bool,
}

/// A section's address range and bytes.
#[derive(Debug, Clone)]
pub struct SectionData {
    /// Address range as stated in the object.
    pub svma: Range<u64>,
    /// The bytes (decompressed, for a compressed debug section).
    pub bytes: SharedBytes,
}

/// What an unwinder needs of an object: its unwind tables and the ranges they refer to.
#[derive(Debug, Clone, Default)]
pub struct UnwindSections {
    /// `.text`.
    pub text_svma: Option<Range<u64>>,
    /// `.eh_frame`.
    pub eh_frame: Option<SectionData>,
    /// `.eh_frame_hdr` (the binary-search index of `.eh_frame`).
    pub eh_frame_hdr: Option<SectionData>,
    /// `.debug_frame`, decompressed; only loaded when there is no `.eh_frame` (unwinders use one
    /// or the other, and `.eh_frame` is what C code has).
    pub debug_frame: Option<SectionData>,
    /// `.got`, for `DW_EH_PE_datarel` pointers.
    pub got_svma: Option<Range<u64>>,
}

#[derive(Debug, Clone, Copy)]
struct Sym {
    addr: u64,
    size: u64,
    /// Offset and length of the name in the object's bytes.
    name: (u32, u32),
}

type Reader = gimli::EndianArcSlice<gimli::LittleEndian>;

/// An ELF object of any kind (executable, shared library, vDSO image), parsed from bytes it owns.
///
/// Construction indexes segments, unwind sections and symbols; DWARF line information is loaded
/// the first time [`ElfObject::location`] is asked. Hostile input never panics.
pub struct ElfObject {
    data: SharedBytes,
    loads: Vec<LoadSegment>,
    unwind: UnwindSections,
    funcs: Vec<Sym>,
    data_syms: Vec<Sym>,
    symbols_from: &'static str,
    has_dwarf: bool,
    dwarf: OnceCell<Option<addr2line::Context<Reader>>>,
}

impl std::fmt::Debug for ElfObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElfObject")
            .field("len", &self.data.len())
            .field("loads", &self.loads.len())
            .field("funcs", &self.funcs.len())
            .field("data_syms", &self.data_syms.len())
            .field("symbols_from", &self.symbols_from)
            .field("has_dwarf", &self.has_dwarf)
            .finish()
    }
}

/// The order in which aliases at one address are preferred: `read` over `__read` over
/// `__libc_read`, shorter over longer.
fn alias_rank(name: &[u8]) -> (usize, usize) {
    (name.iter().take_while(|&&c| c == b'_').count(), name.len())
}

impl ElfObject {
    /// Parses a 64-bit little-endian x86-64 ELF file.
    ///
    /// # Errors
    /// [`BinError::NotElf`] or [`BinError::UnsupportedElf`] for anything else.
    pub fn parse(bytes: Arc<[u8]>) -> Result<Self, BinError> {
        let data = SharedBytes::new(bytes);
        let raw: &[u8] = &data.buf;
        if raw.len() < 20 || &raw[..4] != b"\x7fELF" {
            return Err(BinError::NotElf("no ELF magic"));
        }
        if raw[4] != elf::ELFCLASS64 || raw[5] != elf::ELFDATA2LSB {
            return Err(BinError::UnsupportedElf(
                "not a 64-bit little-endian ELF file",
            ));
        }
        let file = ElfFile64::<LittleEndian, &[u8]>::parse(raw)
            .map_err(|_| BinError::NotElf("malformed ELF headers"))?;
        if file.elf_header().e_machine(LittleEndian) != elf::EM_X86_64 {
            return Err(BinError::UnsupportedElf("machine is not x86-64"));
        }
        let loads: Vec<LoadSegment> = file
            .elf_program_headers()
            .iter()
            .filter(|ph| ph.p_type(LittleEndian) == elf::PT_LOAD)
            .map(|ph| LoadSegment {
                vaddr: ph.p_vaddr(LittleEndian),
                memsz: ph.p_memsz(LittleEndian),
                offset: ph.p_offset(LittleEndian),
                filesz: ph.p_filesz(LittleEndian),
                exec: ph.p_flags(LittleEndian) & elf::PF_X != 0,
            })
            .collect();
        let base = raw.as_ptr() as usize;
        // A section's bytes as a slice of our buffer (sections are borrowed from it).
        let shared = |bytes: &[u8]| -> Option<SharedBytes> {
            let start = (bytes.as_ptr() as usize).checked_sub(base)?;
            data.slice(start..start.checked_add(bytes.len())?)
        };
        let section = |name: &str| file.section_by_name(name);
        let range = |s: &object::read::elf::ElfSection64<'_, '_, LittleEndian, &[u8]>| {
            s.address()..s.address().saturating_add(s.size())
        };
        let plain = |name: &str| -> Option<SectionData> {
            let s = section(name)?;
            let bytes = shared(s.data().ok()?)?;
            Some(SectionData {
                svma: range(&s),
                bytes,
            })
        };
        let mut unwind = UnwindSections {
            text_svma: section(".text").map(|s| range(&s)),
            eh_frame: plain(".eh_frame").filter(|s| !s.bytes.is_empty()),
            eh_frame_hdr: plain(".eh_frame_hdr").filter(|s| !s.bytes.is_empty()),
            debug_frame: None,
            got_svma: section(".got").map(|s| range(&s)),
        };
        if unwind.eh_frame.is_none() {
            if let Some(s) = section(".debug_frame").or_else(|| section(".zdebug_frame")) {
                if let Ok(b) = section_bytes(raw, &s, ".debug_frame") {
                    let bytes = match b {
                        std::borrow::Cow::Borrowed(b) => shared(b),
                        std::borrow::Cow::Owned(v) => Some(SharedBytes::new(v.into())),
                    };
                    unwind.debug_frame = bytes.map(|bytes| SectionData {
                        svma: range(&s),
                        bytes,
                    });
                }
            }
        }
        let has_dwarf = section(".debug_info")
            .or_else(|| section(".zdebug_info"))
            .is_some_and(|s| s.size() > 0);

        // Symbols: .symtab when it names functions, else .dynsym (stripped libraries).
        let (mut funcs, mut data_syms) = collect_symbols(file.symbols(), base);
        let mut symbols_from = ".symtab";
        if funcs.is_empty() {
            symbols_from = ".dynsym";
            (funcs, data_syms) = collect_symbols(file.dynamic_symbols(), base);
        }
        let mut obj = ElfObject {
            data,
            loads,
            unwind,
            funcs,
            data_syms,
            symbols_from,
            has_dwarf,
            dwarf: OnceCell::new(),
        };
        let sort = |v: &mut Vec<Sym>, d: &SharedBytes| {
            v.sort_by(|a, b| {
                a.addr
                    .cmp(&b.addr)
                    // Sized symbols first, then the preferred alias.
                    .then((a.size == 0).cmp(&(b.size == 0)))
                    .then_with(|| alias_rank(name_of(d, a)).cmp(&alias_rank(name_of(d, b))))
            });
        };
        let mut funcs = std::mem::take(&mut obj.funcs);
        sort(&mut funcs, &obj.data);
        obj.funcs = funcs;
        let mut ds = std::mem::take(&mut obj.data_syms);
        sort(&mut ds, &obj.data);
        obj.data_syms = ds;
        Ok(obj)
    }

    /// The `PT_LOAD` segments.
    pub fn loads(&self) -> &[LoadSegment] {
        &self.loads
    }

    /// The unwind sections.
    pub fn unwind_sections(&self) -> &UnwindSections {
        &self.unwind
    }

    /// Which symbol table the symbols come from: `.symtab` or `.dynsym`.
    pub fn symbols_from(&self) -> &'static str {
        self.symbols_from
    }

    /// Whether the object carries DWARF debug information (file:line).
    pub fn has_dwarf(&self) -> bool {
        self.has_dwarf
    }

    /// Stated addresses from the lowest segment start to the highest segment end.
    pub fn extent(&self) -> Option<Range<u64>> {
        let lo = self.loads.iter().map(|l| l.vaddr).min()?;
        let hi = self
            .loads
            .iter()
            .map(|l| l.vaddr.saturating_add(l.memsz))
            .max()?;
        Some(lo..hi)
    }

    /// The load bias (runtime address − stated address) given one mapping of this object: it
    /// starts at `map_start` and maps the file from `map_offset`. The kernel maps each `PT_LOAD`
    /// segment from its page-aligned offset to its page-aligned address, so the segment that
    /// covers `map_offset` tells where address 0 went. `None` when no segment covers it.
    pub fn bias_for_mapping(&self, map_start: u64, map_offset: u64) -> Option<u64> {
        const PAGE: u64 = 4096;
        let seg = self
            .loads
            .iter()
            .find(|l| l.offset & !(PAGE - 1) == map_offset)
            .map(|l| (l.vaddr & !(PAGE - 1), l.offset & !(PAGE - 1)))
            .or_else(|| {
                self.loads
                    .iter()
                    .find(|l| {
                        (l.offset..l.offset.saturating_add(l.filesz.max(1))).contains(&map_offset)
                    })
                    .map(|l| (l.vaddr, l.offset))
            })?;
        let (vaddr, offset) = seg;
        let stated = vaddr.checked_add(map_offset.checked_sub(offset)?)?;
        Some(map_start.wrapping_sub(stated))
    }

    /// Whether a stated address lies in an executable segment.
    pub fn is_code(&self, svma: u64) -> bool {
        self.loads
            .iter()
            .any(|l| l.exec && (l.vaddr..l.vaddr.saturating_add(l.memsz)).contains(&svma))
    }

    /// The function containing stated address `svma`, and the offset of `svma` in it: the nearest
    /// function symbol at or before it whose size covers it (or, among symbols of unknown size,
    /// the nearest one). Aliases prefer the plain name (`read` over `__libc_read`).
    pub fn function_at(&self, svma: u64) -> Option<(&str, u64)> {
        lookup(&self.funcs, &self.data, svma)
    }

    /// The data object (`.data`, `.bss`, `.rodata` symbol) containing stated address `svma`, and
    /// the offset of `svma` in it.
    pub fn data_at(&self, svma: u64) -> Option<(&str, u64)> {
        lookup(&self.data_syms, &self.data, svma)
    }

    /// Source file and line of stated address `svma` from the object's DWARF line table; `None`
    /// without DWARF or without a line for it. The DWARF is loaded on the first call.
    pub fn location(&self, svma: u64) -> Option<(String, Option<u32>)> {
        // addr2line looks up `[svma, svma + 1)` and would overflow at the top of the space.
        if svma == u64::MAX {
            return None;
        }
        let ctx = self.dwarf.get_or_init(|| self.load_dwarf()).as_ref()?;
        let loc = ctx.find_location(svma).ok()??;
        Some((loc.file?.to_string(), loc.line))
    }

    fn load_dwarf(&self) -> Option<addr2line::Context<Reader>> {
        if !self.has_dwarf {
            return None;
        }
        let raw: &[u8] = &self.data.buf;
        let file = ElfFile64::<LittleEndian, &[u8]>::parse(raw).ok()?;
        let load = |id: gimli::SectionId| -> Result<Reader, gimli::Error> {
            use gimli::SectionId::*;
            // Lines and unit ranges only: location lists and macros are large and unused.
            if matches!(
                id,
                DebugLoc | DebugLocLists | DebugMacinfo | DebugMacro | DebugTypes
            ) {
                return Ok(gimli::EndianArcSlice::new(
                    Arc::from(&[][..]),
                    gimli::LittleEndian,
                ));
            }
            let name = id.name();
            let zname = format!(".z{}", name.trim_start_matches('.'));
            let bytes: Arc<[u8]> = file
                .section_by_name(name)
                .or_else(|| file.section_by_name(&zname))
                .and_then(|s| section_bytes(raw, &s, name).ok())
                .map(|b| Arc::from(&*b))
                .unwrap_or_else(|| Arc::from(&[][..]));
            Ok(gimli::EndianArcSlice::new(bytes, gimli::LittleEndian))
        };
        let dwarf = gimli::Dwarf::load(load).ok()?;
        addr2line::Context::from_dwarf(dwarf).ok()
    }
}

/// Function and data symbols of one symbol table; names as offsets from `base` (the file's bytes).
fn collect_symbols<'d, S: ObjectSymbol<'d>>(
    syms: impl Iterator<Item = S>,
    base: usize,
) -> (Vec<Sym>, Vec<Sym>) {
    let (mut funcs, mut data) = (Vec::new(), Vec::new());
    for s in syms {
        if s.is_undefined() || s.address() == 0 {
            continue;
        }
        let Ok(name) = s.name_bytes() else { continue };
        if name.is_empty() {
            continue;
        }
        let Some(off) = (name.as_ptr() as usize).checked_sub(base) else {
            continue;
        };
        let (Ok(off), Ok(len)) = (u32::try_from(off), u32::try_from(name.len())) else {
            continue;
        };
        let sym = Sym {
            addr: s.address(),
            size: s.size(),
            name: (off, len),
        };
        match s.kind() {
            SymbolKind::Text => funcs.push(sym),
            SymbolKind::Data => data.push(sym),
            _ => {}
        }
    }
    (funcs, data)
}

fn name_of<'d>(d: &'d SharedBytes, s: &Sym) -> &'d [u8] {
    let (off, len) = (s.name.0 as usize, s.name.1 as usize);
    d.buf.get(off..off + len).unwrap_or(&[])
}

/// Symbols at an address that may contain `svma` are searched back this far.
const LOOKBACK: usize = 16;

fn lookup<'d>(syms: &[Sym], d: &'d SharedBytes, svma: u64) -> Option<(&'d str, u64)> {
    let end = syms.partition_point(|s| s.addr <= svma);
    let start = end.saturating_sub(LOOKBACK);
    let mut no_size: Option<&Sym> = None;
    for s in syms[start..end].iter().rev() {
        if s.size > 0 && svma < s.addr.saturating_add(s.size) {
            // Within one address, sized symbols sort first and the preferred alias first among
            // them; walking backwards, keep going while the address is the same.
            let best = syms[start..end]
                .iter()
                .find(|o| o.addr == s.addr && o.size > 0 && svma < o.addr.saturating_add(o.size))
                .unwrap_or(s);
            return Some((
                std::str::from_utf8(name_of(d, best)).ok()?,
                svma - best.addr,
            ));
        }
        if s.size == 0 && no_size.is_none() && s.addr == syms[end - 1].addr {
            no_size = Some(s);
        }
    }
    // Only an unknown-size symbol at the nearest address: the best guess there is.
    let s = syms[start..end]
        .iter()
        .find(|o| no_size.is_some_and(|u| o.addr == u.addr && o.size == 0))?;
    Some((std::str::from_utf8(name_of(d, s)).ok()?, svma - s.addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syms(list: &[(u64, u64, &str)]) -> (Vec<Sym>, SharedBytes) {
        let mut names = Vec::new();
        let mut out = Vec::new();
        for &(addr, size, n) in list {
            out.push(Sym {
                addr,
                size,
                name: (names.len() as u32, n.len() as u32),
            });
            names.extend_from_slice(n.as_bytes());
        }
        let d = SharedBytes::new(names.into());
        out.sort_by(|a, b| {
            a.addr
                .cmp(&b.addr)
                .then((a.size == 0).cmp(&(b.size == 0)))
                .then_with(|| alias_rank(name_of(&d, a)).cmp(&alias_rank(name_of(&d, b))))
        });
        (out, d)
    }

    #[test]
    fn nearest_containing_symbol_with_preferred_alias() {
        let (s, d) = syms(&[
            (0x1000, 0x40, "__libc_read"),
            (0x1000, 0x40, "read"),
            (0x1000, 0x40, "__read"),
            (0x1040, 0x10, "small"),
            (0x1100, 0, "label"),
            (0x2000, 0x1000, "big"),
            (0x2100, 0x10, "inner"),
        ]);
        assert_eq!(lookup(&s, &d, 0x1000), Some(("read", 0)));
        assert_eq!(lookup(&s, &d, 0x103f), Some(("read", 0x3f)));
        assert_eq!(lookup(&s, &d, 0x1045), Some(("small", 5)));
        // In a gap after a sized symbol: nothing.
        assert_eq!(lookup(&s, &d, 0x1080), None);
        // An unknown-size label is the best guess after it.
        assert_eq!(lookup(&s, &d, 0x1108), Some(("label", 8)));
        // Nested: the inner one when it covers, the outer one past it.
        assert_eq!(lookup(&s, &d, 0x2104), Some(("inner", 4)));
        assert_eq!(lookup(&s, &d, 0x2200), Some(("big", 0x200)));
        assert_eq!(lookup(&s, &d, 0xfff), None);
        assert_eq!(lookup(&[], &d, 0x1000), None);
    }

    #[test]
    fn bias_from_a_mapping() {
        let obj = ElfObject {
            data: SharedBytes::new(Arc::from(&[][..])),
            loads: vec![
                LoadSegment {
                    vaddr: 0,
                    memsz: 0x1000,
                    offset: 0,
                    filesz: 0x1000,
                    exec: false,
                },
                LoadSegment {
                    vaddr: 0x1000,
                    memsz: 0x5000,
                    offset: 0x1000,
                    filesz: 0x5000,
                    exec: true,
                },
                LoadSegment {
                    vaddr: 0x7e10,
                    memsz: 0x300,
                    offset: 0x6e10,
                    filesz: 0x200,
                    exec: false,
                },
            ],
            unwind: UnwindSections::default(),
            funcs: Vec::new(),
            data_syms: Vec::new(),
            symbols_from: ".symtab",
            has_dwarf: false,
            dwarf: OnceCell::new(),
        };
        let base = 0x7f00_0000_0000;
        assert_eq!(obj.bias_for_mapping(base, 0), Some(base));
        assert_eq!(obj.bias_for_mapping(base + 0x1000, 0x1000), Some(base));
        // The data segment: file page 0x6000 mapped at address page 0x7000.
        assert_eq!(obj.bias_for_mapping(base + 0x7000, 0x6000), Some(base));
        assert_eq!(obj.bias_for_mapping(base, 0x9000), None);
        assert!(obj.is_code(0x1000) && !obj.is_code(0x800));
        assert_eq!(obj.extent(), Some(0..0x8110));
    }

    #[inline(never)]
    fn lookup_me() -> u64 {
        std::hint::black_box(42)
    }

    static FIND_ME: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(7);

    #[test]
    fn own_executable_symbols_and_lines() {
        // This test binary stands in for a mapped object: its bias from /proc/self/maps, a
        // function and a static found by address, file:line from its DWARF.
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let obj = ElfObject::parse(std::fs::read(&exe).unwrap().into()).unwrap();
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let (start, offset) = maps
            .lines()
            .filter(|l| l.ends_with(exe.to_str().unwrap()))
            .find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let start = u64::from_str_radix(f[0].split('-').next()?, 16).ok()?;
                let off = u64::from_str_radix(f[2], 16).ok()?;
                Some((start, off))
            })
            .unwrap();
        let bias = obj.bias_for_mapping(start, offset).unwrap();
        let f = lookup_me as fn() -> u64 as usize as u64 - bias;
        let (name, off) = obj.function_at(f + 1).unwrap();
        assert!(name.contains("lookup_me"), "{name}");
        assert_eq!(off, 1);
        assert!(obj.is_code(f));
        let _ = lookup_me();
        let d = &FIND_ME as *const _ as u64 - bias;
        let (name, off) = obj.data_at(d + 4).unwrap();
        assert!(name.contains("FIND_ME"), "{name}");
        assert_eq!(off, 4);
        assert!(obj.unwind_sections().eh_frame.is_some());
        if obj.has_dwarf() {
            // The line table's innermost position (here possibly inlined std code).
            let (file, line) = obj.location(f).unwrap();
            assert!(file.ends_with(".rs"), "{file}");
            assert!(line.is_some());
            // The top of the address space (found by fuzzing: addr2line adds one to it).
            assert!(obj.location(u64::MAX).is_none());
        }
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(ElfObject::parse(Arc::from(&b"not an elf file at all"[..])).is_err());
        let mut v = b"\x7fELF".to_vec();
        v.resize(64, 0xff);
        assert!(ElfObject::parse(v.into()).is_err());
    }
}
