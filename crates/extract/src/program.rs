//! What extraction needs to know about the target's binary: pclntab, struct layout, the addresses
//! of the runtime's globals (load bias applied), and the wait-reason strings of this Go version.

use gostall_binfmt::{BinError, GoBinary, Pclntab};
use gostall_goruntime::layout::{LayoutError, RuntimeLayout};
use gostall_target::Memory;

/// Why a binary cannot be read as a supported Go program.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    /// The binary could not be parsed.
    #[error(transparent)]
    Bin(#[from] BinError),
    /// Not a Go program.
    #[error("this is not a Go program (no Go build information and no Go runtime symbols)")]
    NotGo,
    /// A Go version gostall does not support.
    #[error("Go {0} is not supported: gostall reads Go 1.21 through 1.27")]
    Unsupported(String),
    /// No DWARF: struct layouts unknown.
    #[error("the binary has no DWARF debug information (built with -ldflags=-w or stripped), so gostall cannot locate the runtime's fields; rebuild without -w/-s, or diagnose a SIGQUIT dump instead (kill -QUIT with GOTRACEBACK=all)")]
    NoDwarf,
    /// No symbol table.
    #[error("the binary has no symbol table (stripped with -s), so gostall cannot find runtime.{0}; rebuild without -s, or diagnose a SIGQUIT dump instead")]
    NoSymbol(&'static str),
    /// DWARF lacks a needed type or member.
    #[error(transparent)]
    Layout(#[from] LayoutError),
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
}

impl<'p> Program<'p> {
    /// Checks the binary and prepares to read it; `mem` is used to read the wait-reason table.
    pub fn new<M: Memory + ?Sized>(
        bin: &GoBinary<'p>,
        bias: u64,
        mem: &M,
    ) -> Result<Self, ProgramError> {
        let go_version = bin
            .build_info()
            .map(|b| b.go_version.clone())
            .ok_or(ProgramError::NotGo)?;
        match bin.go_version() {
            Some((1, minor, _)) if (21..=27).contains(&minor) => {}
            _ => {
                return Err(ProgramError::Unsupported(
                    go_version.trim_start_matches("go").to_string(),
                ))
            }
        }
        let sym = |name: &'static str| {
            bin.symbol(name)
                .map(|s| s.addr + bias)
                .ok_or(ProgramError::NoSymbol(name.trim_start_matches("runtime.")))
        };
        let dwarf = bin.dwarf()?.ok_or(ProgramError::NoDwarf)?;
        let layout = RuntimeLayout::from_dwarf(&dwarf)?;
        let symbols = Symbols {
            allgs: sym("runtime.allgs")?,
            allm: sym("runtime.allm")?,
            allp: sym("runtime.allp")?,
            sched: sym("runtime.sched")?,
            gomaxprocs: sym("runtime.gomaxprocs").ok(),
            wait_reason_strings: bin
                .symbol("runtime.waitReasonStrings")
                .map(|s| (s.addr + bias, s.size)),
        };
        let wait_reasons = symbols
            .wait_reason_strings
            .map(|(addr, size)| read_strings(mem, addr, size))
            .unwrap_or_default();
        Ok(Program {
            pcln: bin.pclntab()?,
            layout,
            sym: symbols,
            bias,
            wait_reasons,
            go_version,
        })
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
