//! What extraction needs to know about the target's binary: pclntab, struct layout, the addresses
//! of the runtime's globals (load bias applied), and the wait-reason strings of this Go version.

use gostall_access::Memory;
use gostall_binfmt::{BinError, GoBinary, Pclntab};
use gostall_goruntime::layout::{signal_symbols, LayoutError, RuntimeLayout};

/// Why a binary cannot be read as a supported Go program.
///
/// Each message says what is wrong with the binary and what to do instead; the caller prefixes the
/// process and executable.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    /// The binary could not be parsed.
    #[error(transparent)]
    Bin(#[from] BinError),
    /// Not a Go program.
    #[error("this is not a Go program (no Go build information and no Go runtime symbols): gostall reads only programs built by the Go toolchain")]
    NotGo,
    /// A Go version gostall does not support (the version text from the build information).
    #[error("built with Go {0}, which gostall cannot read live: it reads Go 1.21 through 1.27; rebuild with a supported Go, or diagnose a goroutine dump instead (`kill -QUIT PID` with GOTRACEBACK=all, or /debug/pprof/goroutine?debug=2), which works for any Go version")]
    Unsupported(String),
    /// No DWARF, and no layouts recorded for the binary's Go version.
    #[error("the binary has no DWARF debug information (built with -ldflags=-w) and gostall has no runtime layouts recorded for its Go version, so it cannot locate the runtime's fields; rebuild without -w, or diagnose a goroutine dump instead (`kill -QUIT PID` with GOTRACEBACK=all, or /debug/pprof/goroutine?debug=2)")]
    NoDwarf,
    /// No symbol table, and a global the reader needs could not be found in the code that uses
    /// it.
    #[error("the binary has no symbol table (built with -ldflags=-s, or stripped) and gostall could not find {0} through the code that uses it; diagnose a goroutine dump instead (`kill -QUIT PID` with GOTRACEBACK=all, or /debug/pprof/goroutine?debug=2)")]
    NotFound(&'static str),
    /// Neither DWARF nor a symbol table.
    #[error("the binary is stripped (built with -ldflags='-s -w', or run through strip): without DWARF debug information and symbols gostall cannot locate the runtime's data; rebuild without -s -w, or diagnose a goroutine dump instead (`kill -QUIT PID` with GOTRACEBACK=all, or /debug/pprof/goroutine?debug=2)")]
    Stripped,
    /// No symbol table.
    #[error("the binary has no symbol table (stripped with -s), so gostall cannot find runtime.{0}; rebuild without -s, or diagnose a goroutine dump instead (`kill -QUIT PID` with GOTRACEBACK=all)")]
    NoSymbol(&'static str),
    /// DWARF lacks a needed type or member.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// Checks that a binary's Go version is one gostall reads live (1.21 through 1.27).
///
/// `version` is the parsed version (`None` when the text did not parse, e.g. a development build)
/// and `text` the version as the build information spells it (`go1.27.3`).
///
/// # Errors
/// [`ProgramError::Unsupported`] with the version, without its `go` prefix.
pub fn check_go_version(version: Option<(u32, u32, u32)>, text: &str) -> Result<(), ProgramError> {
    match version {
        Some((1, minor, _)) if (21..=27).contains(&minor) => Ok(()),
        _ => Err(ProgramError::Unsupported(
            text.trim().trim_start_matches("go").to_string(),
        )),
    }
}

/// Runtime addresses (load bias applied) of the globals gostall reads.
#[derive(Debug, Clone, Copy)]
pub struct Symbols {
    /// `runtime.allgs` (a slice header).
    pub allgs: u64,
    /// `runtime.allm` (list head).
    pub allm: u64,
    /// `runtime.allp` (a slice header).
    pub allp: u64,
    /// `runtime.sched`.
    pub sched: u64,
    /// `runtime.gomaxprocs` (int32).
    pub gomaxprocs: Option<u64>,
    /// `runtime.waitReasonStrings` (address, size).
    pub wait_reason_strings: Option<(u64, u64)>,
    /// `runtime.semtable` (address, size).
    pub semtable: Option<(u64, u64)>,
    /// `runtime.memstats` (the runtime's memory statistics).
    pub memstats: Option<u64>,
    /// `runtime.gcController` (the GC pacer, which owns the heap's size counters).
    pub gc_controller: Option<u64>,
    /// `runtime.mheap_` (the heap, with its list of arenas).
    pub mheap: Option<u64>,
    /// `runtime.handlingSig` (address, size).
    pub handling_sig: Option<(u64, u64)>,
    /// `runtime.fwdSig` (address, size).
    pub fwd_sig: Option<(u64, u64)>,
    /// `runtime.debug` (the `GODEBUG` settings).
    pub debug: Option<u64>,
    /// `runtime.prof` (the CPU profiler's rate).
    pub prof: Option<u64>,
    /// The CPU profiler can be started: its entry point is linked in.
    pub cpu_profiler_linked: bool,
    /// `runtime.firstmoduledata`: head of the module list (data, bss, pointer bitmaps).
    pub firstmoduledata: Option<u64>,
}

/// A Go program ready to be read.
pub struct Program<'p> {
    /// Its pclntab.
    pub pcln: Pclntab<'p>,
    /// Struct layouts.
    pub layout: RuntimeLayout,
    /// Runtime globals.
    pub sym: Symbols,
    /// Load bias: runtime address − link-time address.
    pub bias: u64,
    /// `waitReasonStrings` of this binary, indexed by `g.waitreason`.
    pub wait_reasons: Vec<String>,
    /// Go version, e.g. `go1.27.3`.
    pub go_version: String,
    /// Minor version (27 for Go 1.27.3), for the few encodings that are not described in DWARF.
    pub go_minor: u32,
    /// Global variables (link-time address, size, name), sorted: to name where a pointer is.
    pub globals: Vec<(u64, u64, &'p str)>,
    /// Layouts of the library structures behind known blocking points (from DWARF).
    pub lib_layouts: Vec<crate::libstate::LibLayout>,
    /// Where the runtime's layouts came from.
    pub layout_source: LayoutSource,
    /// Where the Go version came from.
    pub version_source: VersionSource,
    /// Where the runtime's globals were found.
    pub symbols_found: SymbolSource,
}

/// Where a program's Go version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSource {
    /// The build information (`.go.buildinfo`).
    BuildInfo,
    /// The runtime's own version string (`runtime.buildVersion`), found through the code of
    /// `runtime.schedinit`: the binary has no build information.
    RuntimeString,
}

/// Where a program's runtime globals were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolSource {
    /// The symbol table.
    SymbolTable,
    /// The code of runtime functions that use them (no symbol table), each checked in memory.
    Code,
}

/// Where a program's runtime layouts came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutSource {
    /// The binary's own DWARF.
    Dwarf,
    /// The table recorded for its Go version (the binary has no DWARF), named by the toolchain
    /// that built the probe it was recorded from.
    Table(String),
}

impl<'p> Program<'p> {
    /// Checks the binary and prepares to read it; `mem` is used to read the wait-reason table.
    pub fn new<M: Memory + ?Sized>(
        bin: &GoBinary<'p>,
        bias: u64,
        mem: &M,
    ) -> Result<Self, ProgramError> {
        // A Go program has a pclntab; its version comes from the build information, else from
        // the runtime's own version string.
        let pcln = bin.pclntab().map_err(|e| match e {
            gostall_binfmt::BinError::NoPclntab => ProgramError::NotGo,
            e => ProgramError::Bin(e),
        })?;
        let (go_version, version_source) = match bin.build_info() {
            Some(b) => (b.go_version.clone(), VersionSource::BuildInfo),
            None => (
                crate::globals::build_version(bin, &pcln).ok_or(ProgramError::NotGo)?,
                VersionSource::RuntimeString,
            ),
        };
        let parsed = gostall_binfmt::parse_go_version(&go_version);
        check_go_version(parsed, &go_version)?;
        let go_minor = parsed.map_or(0, |v| v.1);
        let sym = |name: &'static str| {
            bin.symbol(name)
                .map(|s| s.addr + bias)
                .ok_or(ProgramError::NoSymbol(name.trim_start_matches("runtime.")))
        };
        // DWARF that describes the Go runtime (an external linker may keep only the C objects'
        // DWARF when Go's is dropped with -w).
        let dwarf = bin
            .dwarf()?
            .filter(|d| d.struct_layout("runtime.g").is_some());
        // Layouts from the binary's DWARF, else from the table recorded for its Go version.
        let table = match &dwarf {
            Some(_) => None,
            None => {
                Some(gostall_goruntime::tables::table_for(go_minor).ok_or(ProgramError::NoDwarf)?)
            }
        };
        let types: &dyn gostall_goruntime::tables::TypeInfo = match (&dwarf, &table) {
            (Some(d), _) => d,
            (None, Some(t)) => t,
            (None, None) => return Err(ProgramError::NoDwarf),
        };
        let mut layout = RuntimeLayout::from_types(types)?;
        let layout_source = match &table {
            Some(t) => LayoutSource::Table(t.go_version.clone()),
            None => LayoutSource::Dwarf,
        };
        if let Ok(h) = &mut layout.heap {
            h.bits = h.bits.with_code(|f| pcln.func_by_name(f).is_some());
        }
        let (symbols, globals, symbols_found) = if bin.symbol("runtime.allgs").is_none() {
            // No symbol table: the runtime's globals from the code that uses them.
            let symbols = crate::globals::from_code(bin, &pcln, &layout, types, mem, bias)
                .map_err(ProgramError::NotFound)?;
            (symbols, Vec::new(), SymbolSource::Code)
        } else {
            let symbols = Symbols {
                allgs: sym("runtime.allgs")?,
                allm: sym("runtime.allm")?,
                allp: sym("runtime.allp")?,
                sched: sym("runtime.sched")?,
                gomaxprocs: sym("runtime.gomaxprocs").ok(),
                wait_reason_strings: bin
                    .symbol("runtime.waitReasonStrings")
                    .map(|s| (s.addr + bias, s.size)),
                semtable: bin
                    .symbol("runtime.semtable")
                    .map(|s| (s.addr + bias, s.size)),
                memstats: sym("runtime.memstats").ok(),
                gc_controller: sym("runtime.gcController").ok(),
                mheap: sym("runtime.mheap_").ok(),
                handling_sig: bin
                    .symbol(signal_symbols::HANDLING_SIG)
                    .map(|s| (s.addr + bias, s.size)),
                fwd_sig: bin
                    .symbol(signal_symbols::FWD_SIG)
                    .map(|s| (s.addr + bias, s.size)),
                debug: bin.symbol(signal_symbols::DEBUG).map(|s| s.addr + bias),
                prof: bin.symbol(signal_symbols::PROF).map(|s| s.addr + bias),
                cpu_profiler_linked: bin.symbol(signal_symbols::CPU_PROFILER_ENTRY).is_some(),
                firstmoduledata: sym("runtime.firstmoduledata").ok(),
            };
            (symbols, bin.data_symbols(), SymbolSource::SymbolTable)
        };
        let wait_reasons = symbols
            .wait_reason_strings
            .map(|(addr, size)| read_strings(mem, addr, size))
            .unwrap_or_default();
        Ok(Program {
            pcln,
            layout,
            sym: symbols,
            bias,
            wait_reasons,
            go_minor,
            go_version,
            globals,
            lib_layouts: dwarf
                .as_ref()
                .map(crate::libstate::layouts)
                .unwrap_or_default(),
            layout_source,
            version_source,
            symbols_found,
        })
    }
}

impl Program<'_> {
    /// The global variable holding run-time address `addr`, as `name` or `name+0x10`.
    pub fn global_at(&self, addr: u64) -> Option<String> {
        let link = addr.checked_sub(self.bias)?;
        let i = self.globals.partition_point(|g| g.0 <= link);
        let (start, size, name) = *self.globals.get(i.checked_sub(1)?)?;
        (link < start + size).then(|| crate::live::symbol_plus(name, link - start))
    }
}

/// Reads a `[N]string` array from the target (string headers are relocated in memory, so this works
/// for PIE binaries too).
fn read_strings<M: Memory + ?Sized>(mem: &M, addr: u64, size: u64) -> Vec<String> {
    let n = (size / 16).min(1024) as usize;
    let mut hdrs = vec![0u8; n * 16];
    if mem.read(addr, &mut hdrs).is_err() {
        return Vec::new();
    }
    hdrs.chunks_exact(16)
        .map(|h| {
            let ptr = u64::from_le_bytes(h[..8].try_into().expect("8"));
            let len = u64::from_le_bytes(h[8..].try_into().expect("8")).min(256) as usize;
            let mut b = vec![0u8; len];
            if len > 0 && mem.read(ptr, &mut b).is_err() {
                return String::new();
            }
            String::from_utf8_lossy(&b).into_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_version_range() {
        check_go_version(Some((1, 21, 0)), "go1.21.0").expect("1.21 is supported");
        check_go_version(Some((1, 21, 13)), "go1.21.13").expect("1.21.13 is supported");
        check_go_version(Some((1, 27, 3)), "go1.27.3").expect("1.27 is supported");
        for (v, text) in [
            (Some((1, 20, 14)), "go1.20.14"),
            (Some((1, 28, 0)), "go1.28.0"),
            (Some((2, 21, 0)), "go2.21.0"),
            (None, "devel go1.28-abcdef"),
        ] {
            let e = check_go_version(v, text).expect_err(text);
            assert!(matches!(e, ProgramError::Unsupported(_)), "{e:?}");
            let m = e.to_string();
            let shown = text.trim_start_matches("go");
            assert!(m.starts_with(&format!("built with Go {shown}, ")), "{m}");
            assert!(m.contains("Go 1.21 through 1.27"), "{m}");
            assert!(m.contains("kill -QUIT PID"), "{m}");
        }
    }

    #[test]
    fn dwarf_messages_say_what_to_do() {
        let m = ProgramError::NoDwarf.to_string();
        assert!(m.contains("no DWARF") && m.contains("-ldflags=-w"), "{m}");
        assert!(
            m.contains("rebuild without -w") && m.contains("kill -QUIT"),
            "{m}"
        );
        let m = ProgramError::Stripped.to_string();
        assert!(m.contains("stripped") && m.contains("-s -w"), "{m}");
        assert!(
            m.contains("rebuild without -s -w") && m.contains("kill -QUIT"),
            "{m}"
        );
    }
}
