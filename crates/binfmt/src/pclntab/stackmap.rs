//! Which words of a stack frame hold live pointers at a PC: the compiler's stack maps
//! (`FUNCDATA_LocalsPointerMaps`, `FUNCDATA_ArgsPointerMaps`, selected by `PCDATA_StackMapIndex`)
//! and the frame's address-taken stack objects (`FUNCDATA_StackObjects`), read as the runtime's
//! `getStackMap` does (`runtime/stkframe.go`). Layouts are the same in Go 1.21–1.27.

use super::{Func, Pclntab};
use crate::util::{i32_at, u32_at, u64_at};

/// `abi.PCDATA_StackMapIndex`.
const PCDATA_STACK_MAP_INDEX: u32 = 1;
/// `abi.FUNCDATA_ArgsPointerMaps`.
const FUNCDATA_ARGS: u8 = 0;
/// `abi.FUNCDATA_LocalsPointerMaps`.
const FUNCDATA_LOCALS: u8 = 1;
/// `abi.FUNCDATA_StackObjects`.
const FUNCDATA_STACK_OBJECTS: u8 = 2;
/// `abi.FUNCDATA_OpenCodedDeferInfo`.
const FUNCDATA_OPEN_CODED_DEFER_INFO: u8 = 4;
/// Most bytes of open-coded defer information returned (Go 1.21: two varints and one per defer,
/// at most eight defers; Go 1.22+: two varints).
const OPEN_DEFER_INFO_MAX: usize = 64;
/// Most stack objects one frame may declare (a corrupt count must not allocate without bound).
const MAX_OBJECTS: u64 = 4096;
/// `abi.ArgsSizeUnknown`.
const ARGS_SIZE_UNKNOWN: i32 = -0x8000_0000;

/// A bit vector over pointer-sized words: bit `i` set means word `i` holds a live pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PtrBits<'a> {
    /// Number of words covered.
    pub n: u32,
    /// The bits, least significant first, `ceil(n / 8)` bytes.
    pub bits: &'a [u8],
}

impl PtrBits<'_> {
    /// Whether word `i` holds a pointer.
    pub fn is_ptr(&self, i: u32) -> bool {
        i < self.n
            && self
                .bits
                .get((i / 8) as usize)
                .is_some_and(|b| b >> (i % 8) & 1 != 0)
    }
}

/// An address-taken local (or argument) the runtime scans only if something on the stack points
/// at it; `ptr_bits` is `None` when the type's layout is a GC program (Go ≤ 1.21), to be scanned
/// conservatively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackObject<'a> {
    /// Offset: negative from the frame's `varp`, else from its `argp`.
    pub off: i32,
    /// Size in bytes.
    pub size: u32,
    /// Bytes at the start of the object that may hold pointers.
    pub ptr_bytes: u32,
    /// One bit per word of the first `ptr_bytes`.
    pub ptr_bits: Option<&'a [u8]>,
}

/// The pointer maps of one frame at one PC. Missing tables are `None`: the caller scans that part
/// of the frame conservatively (assembly functions, or a binary whose tables could not be read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameMaps<'a> {
    /// Locals: words ending at `varp` (the first bit is the word at `varp - 8*n`).
    pub locals: Option<PtrBits<'a>>,
    /// Arguments: words starting at `argp`.
    pub args: Option<PtrBits<'a>>,
    /// The function declares no locals map (`locals` is meaningless).
    pub no_locals_map: bool,
    /// The function declares no args map although it has arguments.
    pub no_args_map: bool,
    /// Stack objects, when the function has any.
    pub objects: Vec<StackObject<'a>>,
}

impl<'a> Pclntab<'a> {
    /// The pointer maps of a frame of `f` whose continuation PC is link-time `pc` (the return
    /// address for callers, the saved PC for a parked goroutine's innermost frame). `rodata` is
    /// the link-time `moduledata.rodata` (the `runtime.rodata` symbol), base of stack objects'
    /// type bitmaps.
    pub fn frame_maps(&self, f: &Func, pc: u64, rodata: u64) -> FrameMaps<'a> {
        let entry = self.entry(f);
        let index = if pc != entry {
            self.pcdata(f, PCDATA_STACK_MAP_INDEX, pc - 1).unwrap_or(-1)
        } else {
            -1
        };
        let index = if index < 0 { 0 } else { index as u32 };
        let mut out = FrameMaps::default();
        match self.funcdata(f, FUNCDATA_LOCALS) {
            Some(at) => out.locals = self.stackmap(at, index),
            None => out.no_locals_map = true,
        }
        let args = self.args(f);
        if args > 0 && args != ARGS_SIZE_UNKNOWN {
            match self.funcdata(f, FUNCDATA_ARGS) {
                Some(at) => {
                    out.args = self.stackmap(at, index).map(|mut b| {
                        b.n = b.n.min(args as u32 / 8);
                        b
                    })
                }
                None => out.no_args_map = true,
            }
        }
        if let Some(at) = self.funcdata(f, FUNCDATA_STACK_OBJECTS) {
            out.objects = self.stack_objects(at, rodata);
        }
        out
    }

    /// The raw open-coded defer information of `f` (`FUNCDATA_OpenCodedDeferInfo`): varints
    /// whose meaning depends on the Go version (`goruntime::defers` reads them); `None` when
    /// `f` has no open-coded defers. At most 64 bytes, fewer near the end of the data.
    pub fn open_defer_info(&self, f: &Func) -> Option<&'a [u8]> {
        let at = self.funcdata(f, FUNCDATA_OPEN_CODED_DEFER_INFO)?;
        let mut len = OPEN_DEFER_INFO_MAX;
        while len >= 2 {
            if let Some(b) = self.memory.read(at, len) {
                return Some(b);
            }
            len /= 2;
        }
        None
    }

    /// `stackmapdata(stkmap, index)`: `stackmap{n, nbit int32; bytedata}` holds `n` bitmaps of
    /// `nbit` bits each.
    fn stackmap(&self, at: u64, index: u32) -> Option<PtrBits<'a>> {
        let hdr = self.memory.read(at, 8)?;
        let (n, nbit) = (i32_at(hdr, 0)?, i32_at(hdr, 4)?);
        if n <= 0 || nbit < 0 || index >= n as u32 {
            return None;
        }
        let bytes = (nbit as u64).div_ceil(8);
        let bits = self
            .memory
            .read(at + 8 + u64::from(index) * bytes, bytes as usize)?;
        Some(PtrBits {
            n: nbit as u32,
            bits,
        })
    }

    /// `stackObjectRecord`s: a uintptr count, then `{off, size, ptrdata int32; gcdataoff uint32}`.
    fn stack_objects(&self, at: u64, rodata: u64) -> Vec<StackObject<'a>> {
        let Some(count) = self.memory.read(at, 8).and_then(|b| u64_at(b, 0)) else {
            return Vec::new();
        };
        let count = count.min(MAX_OBJECTS);
        let Some(recs) = self.memory.read(at + 8, (count * 16) as usize) else {
            return Vec::new();
        };
        recs.chunks_exact(16)
            .filter_map(|r| {
                let off = i32_at(r, 0)?;
                let size = u32::try_from(i32_at(r, 4)?).ok()?;
                let ptrdata = i32_at(r, 8)?;
                let gcdataoff = u32_at(r, 12)?;
                let (ptr_bytes, ptr_bits) = if ptrdata < 0 {
                    // A GC program (Go ≤ 1.21): scan the whole object conservatively.
                    (size, None)
                } else {
                    let words = (ptrdata as u64).div_ceil(8);
                    let bits = self
                        .memory
                        .read(rodata + u64::from(gcdataoff), words.div_ceil(8) as usize);
                    (ptrdata as u32, bits)
                };
                Some(StackObject {
                    off,
                    size,
                    ptr_bytes,
                    ptr_bits,
                })
            })
            .collect()
    }
}
