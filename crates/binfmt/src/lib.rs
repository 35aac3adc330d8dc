//! Binary knowledge of Go executables, without I/O.
//!
//! gostall reads a live Go process's runtime structures from outside; to do so it first needs to
//! understand the executable itself. This crate takes the bytes of a Go ELF executable (the caller
//! reads `/proc/PID/exe`) and answers questions about it:
//!
//! - [`GoBinary`]: the parsed ELF file — PIE or not, sections, symbols (`.symtab`), initialised
//!   static data at link-time addresses, and the Go build info (`.go.buildinfo`).
//! - [`Pclntab`]: the Go runtime's own symbol table (`runtime.pclntab`): functions by PC or name,
//!   entry points, `abi.FuncID`/`abi.FuncFlag`, the SP delta at a PC, file:line, and inlined frames.
//!   It is present even in stripped binaries and is found without section headers if need be.
//! - [`Dwarf`]: struct layouts, type sizes and constants from DWARF, when the binary has it
//!   (compressed sections included).
//! - [`ElfObject`]: any mapped ELF object (the executable, a shared library, the vDSO) as native
//!   unwinding needs it: segments (load bias from a mapping), `.eh_frame`/`.eh_frame_hdr`/
//!   `.debug_frame`, function and data symbols (`.symtab`, else `.dynsym`), file:line from DWARF.
//!
//! Supported: linux/amd64 executables built by Go 1.21 to 1.27 (pclntab magic `0xFFFFFFF1`), PIE
//! or not, internally or externally linked. All addresses are link-time addresses; the caller adds
//! the load bias of a PIE.
//!
//! Hostile input never panics: every read is bounds-checked and every failure is a [`BinError`]
//! that carries the address or offset where it happened.
#![deny(missing_docs)]

mod binary;
mod buildinfo;
pub mod code;
mod dwarf;
mod elfobj;
mod pclntab;
mod util;

pub use binary::{GoBinary, Symbol};
pub use buildinfo::{parse_go_version, BuildInfo, Module};
pub use dwarf::{Dwarf, StructField, StructLayout};
pub use elfobj::{ElfObject, LoadSegment, SectionData, SharedBytes, UnwindSections};
pub use pclntab::{FrameMaps, Func, FuncFlag, FuncId, Pclntab, PtrBits, StackObject, SymFrame};

/// Everything that can go wrong when reading a Go binary.
///
/// Cheap to copy; carries the address or file offset where the problem was found, where there is
/// one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BinError {
    /// The bytes are not a well-formed ELF file.
    #[error("not a readable ELF file: {0}")]
    NotElf(&'static str),
    /// An ELF file, but not a 64-bit little-endian x86-64 one.
    #[error("unsupported ELF file: {0} (only 64-bit little-endian x86-64 is supported)")]
    UnsupportedElf(&'static str),
    /// An x86-64 ELF file without any trace of the Go toolchain.
    #[error("not a Go binary: no Go build info, Go build ID or pclntab found")]
    NotGo,
    /// No pclntab could be located (no section, no symbols, no moduledata, no header magic).
    #[error("no Go pclntab found")]
    NoPclntab,
    /// A pclntab header with a magic this crate does not read (Go older than 1.20).
    #[error("unsupported pclntab magic {magic:#010x} at {addr:#x} (Go 1.20 or later is required)")]
    UnsupportedPclntab {
        /// The magic found.
        magic: u32,
        /// Link-time address of the header.
        addr: u64,
    },
    /// A pclntab whose header or tables are inconsistent.
    #[error("corrupt pclntab at {addr:#x}: {what}")]
    BadPclntab {
        /// Link-time address of the header.
        addr: u64,
        /// What is wrong.
        what: &'static str,
    },
    /// The start of the Go text segment (`runtime.text`) could not be determined.
    #[error(
        "cannot determine the start of Go text (no pcHeader.textStart, moduledata or runtime.text)"
    )]
    NoTextStart,
    /// A DWARF section could not be decompressed.
    #[error("cannot decompress DWARF section {section} at file offset {offset:#x}: {what}")]
    Decompress {
        /// Section name.
        section: &'static str,
        /// File offset of the compressed data.
        offset: u64,
        /// What is wrong.
        what: &'static str,
    },
    /// DWARF data gimli could not read.
    #[error("corrupt DWARF in .debug_info at offset {offset:#x}: {error}")]
    Dwarf {
        /// Offset in `.debug_info` of the unit or entry being read.
        offset: u64,
        /// gimli's error.
        error: gimli::Error,
    },
}
