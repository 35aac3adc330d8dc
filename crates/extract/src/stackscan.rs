//! Scanning a goroutine's stack as a root of the reachability mark, the way the runtime's own
//! `scanstack` does: frame by frame with the compiler's stack maps (`binfmt::FrameMaps`), so a
//! dead slot holding an old pointer keeps nothing alive. Address-taken locals (stack objects) are
//! scanned only when something already scanned on the same stack points into them. Frames without
//! maps (assembly, a PC the tables do not cover), the frame interrupted by an asynchronous
//! preemption and its `asyncPreempt` frame are scanned conservatively, as the runtime does.

use crate::Program;
use gostall_binfmt::{FrameMaps, FuncId, PtrBits};
use rustc_hash::FxHashMap;

/// Deepest stack scanned frame by frame.
const MAX_FRAMES: usize = 4096;

/// How a stack was scanned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ScanStats {
    /// Frames scanned with their stack maps.
    pub precise_frames: u64,
    /// Frames (or whole stacks) scanned conservatively.
    pub conservative_frames: u64,
    /// Stacks read, their bytes and the time reading them took (for timing reports).
    pub stacks_read: u64,
    pub stack_bytes: u64,
    pub read: std::time::Duration,
}

/// What scanning a frame needs to know about its PC, from the pclntab: looked up once per
/// distinct PC (a program has a few thousand; 200k stacks have millions of frames).
pub(crate) struct PcFrame<'p> {
    /// SP delta at the PC (the walk stops where there is none).
    delta: Option<i64>,
    id: FuncId,
    /// The walk ends at this frame.
    stop: bool,
    maps: FrameMaps<'p>,
    /// Bytes of arguments (scanned conservatively when the function has no args map).
    args: i32,
}

/// Frame facts by runtime PC (`None`: no function there), for one `rodata`.
#[derive(Default)]
pub(crate) struct PcCache<'p> {
    frames: FxHashMap<u64, Option<PcFrame<'p>>>,
}

impl<'p> PcCache<'p> {
    fn get(&mut self, prog: &Program<'p>, pc: u64, rodata: Option<u64>) -> Option<&PcFrame<'p>> {
        self.frames
            .entry(pc)
            .or_insert_with(|| {
                let pcln = &prog.pcln;
                let link = pc.checked_sub(prog.bias)?;
                let func = pcln.find_func(link)?;
                let id = pcln.func_id(&func);
                Some(PcFrame {
                    delta: pcln.sp_delta(&func, link).map(i64::from),
                    id,
                    stop: matches!(
                        id,
                        FuncId::Goexit
                            | FuncId::Mstart
                            | FuncId::Rt0Go
                            | FuncId::Mcall
                            | FuncId::Morestack
                    ) || pcln.func_flag(&func) & gostall_binfmt::FuncFlag::TOP_FRAME != 0,
                    maps: pcln.frame_maps(&func, link, rodata.unwrap_or(0)),
                    args: pcln.args(&func),
                })
            })
            .as_ref()
    }
}

/// One stack object: where it is and which of its words may hold pointers.
struct StackObj<'a> {
    addr: u64,
    size: u64,
    ptr_bytes: u64,
    bits: Option<&'a [u8]>,
    scanned: bool,
}

/// Scans the stack of a goroutine stopped at `pc`/`sp`. `bytes` holds the target's stack from
/// `sp` to the stack top. `on_word(at, value)` sees every live pointer word that does not point
/// into the stack itself (the caller marks from it).
#[allow(clippy::too_many_arguments)]
pub(crate) fn scan_stack<'p>(
    prog: &Program<'p>,
    pcs: &mut PcCache<'p>,
    mut pc: u64,
    sp0: u64,
    bytes: &[u8],
    rodata: Option<u64>,
    stats: &mut ScanStats,
    on_word: &mut dyn FnMut(u64, u64),
) {
    let hi = sp0 + bytes.len() as u64;
    let word = |at: u64| -> Option<u64> {
        let off = at.checked_sub(sp0)? as usize;
        bytes
            .get(off..off + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    };
    // Pointers into this stack found so far (they may keep stack objects alive).
    let mut into_stack: Vec<u64> = Vec::new();
    let mut objects: Vec<StackObj<'_>> = Vec::new();
    let mut scan_range =
        |into_stack: &mut Vec<u64>, from: u64, n_words: u64, bits: Option<PtrBits<'_>>| {
            for i in 0..n_words {
                if let Some(b) = bits {
                    if !b.is_ptr(i as u32) {
                        continue;
                    }
                }
                let at = from + 8 * i;
                let Some(v) = word(at) else { break };
                if v >= sp0 && v < hi {
                    into_stack.push(v);
                    continue;
                }
                on_word(at, v);
            }
        };
    let mut sp = sp0;
    let mut conservative_next = false;
    let mut frames = 0;
    let mut precise = true;
    while frames < MAX_FRAMES {
        frames += 1;
        let Some(f) = pcs.get(prog, pc, rodata) else {
            precise = false;
            break;
        };
        let Some(delta) = f.delta.filter(|&d| d >= 0) else {
            precise = false;
            break;
        };
        let fp = sp + delta as u64 + 8;
        let mut varp = fp - 8;
        if varp > sp {
            // The saved frame pointer sits below the return address.
            varp -= 8;
        }
        let (id, stop) = (f.id, f.stop);
        let conservative = conservative_next || id == FuncId::AsyncPreempt;
        conservative_next = id == FuncId::AsyncPreempt;
        if conservative {
            stats.conservative_frames += 1;
            scan_range(&mut into_stack, sp, (fp - sp) / 8, None);
        } else {
            let maps = &f.maps;
            let locals_size = varp - sp;
            match maps.locals {
                Some(b) if locals_size > 0 => {
                    let n = u64::from(b.n).min(locals_size / 8);
                    scan_range(&mut into_stack, varp - 8 * n, n, Some(b));
                }
                None if locals_size > 0 && maps.no_locals_map => {
                    stats.conservative_frames += 1;
                    scan_range(&mut into_stack, sp, locals_size / 8, None);
                }
                _ => {}
            }
            match maps.args {
                Some(b) => scan_range(&mut into_stack, fp, u64::from(b.n), Some(b)),
                None if maps.no_args_map => {
                    let n = u64::try_from(f.args).unwrap_or(0) / 8;
                    scan_range(&mut into_stack, fp, n.min(64), None);
                }
                None => {}
            }
            for o in &maps.objects {
                let base = if o.off < 0 { varp } else { fp };
                objects.push(StackObj {
                    addr: base.wrapping_add_signed(i64::from(o.off)),
                    size: u64::from(o.size),
                    ptr_bytes: u64::from(o.ptr_bytes),
                    bits: if rodata.is_some() { o.ptr_bits } else { None },
                    scanned: false,
                });
            }
            stats.precise_frames += 1;
        }
        if stop {
            break;
        }
        let Some(ret) = word(fp - 8).filter(|&r| r != 0) else {
            break;
        };
        pc = ret;
        sp = fp;
    }
    if !precise {
        // Frames the tables could not walk: the rest of the stack, conservatively.
        stats.conservative_frames += 1;
        scan_range(&mut into_stack, sp, hi.saturating_sub(sp) / 8, None);
    }
    // Stack objects reached from what was scanned, to a fixed point.
    objects.sort_unstable_by_key(|o| o.addr);
    while let Some(p) = into_stack.pop() {
        let i = objects.partition_point(|o| o.addr <= p);
        let Some(o) = i.checked_sub(1).and_then(|i| objects.get_mut(i)) else {
            continue;
        };
        if o.scanned || p >= o.addr + o.size {
            continue;
        }
        o.scanned = true;
        let (addr, words, bits) = (o.addr, o.ptr_bytes.div_ceil(8), o.bits);
        let bits = bits.map(|b| PtrBits {
            n: words as u32,
            bits: b,
        });
        scan_range(&mut into_stack, addr, words, bits);
    }
}

/// One frame of a goroutine's stack: its function, stack pointer and frame pointer (the
/// caller's stack pointer, where the arguments' spill area starts).
pub(crate) struct FrameAt {
    pub func: gostall_binfmt::Func,
    pub sp: u64,
    pub fp: u64,
}

/// The frames of a stack stopped at `pc`/`sp` (`bytes` from `sp` to the stack top), outward.
pub(crate) fn frames(prog: &Program<'_>, mut pc: u64, mut sp: u64, bytes: &[u8]) -> Vec<FrameAt> {
    let sp0 = sp;
    let pcln = &prog.pcln;
    let mut out = Vec::new();
    while out.len() < MAX_FRAMES {
        let Some(link) = pc.checked_sub(prog.bias) else {
            break;
        };
        let Some(func) = pcln.find_func(link) else {
            break;
        };
        let Some(delta) = pcln.sp_delta(&func, link).filter(|&d| d >= 0) else {
            break;
        };
        let fp = sp + delta as u64 + 8;
        let ret = (fp - 8)
            .checked_sub(sp0)
            .and_then(|o| bytes.get(o as usize..o as usize + 8))
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
        let id = pcln.func_id(&func);
        out.push(FrameAt { func, sp, fp });
        if matches!(id, FuncId::Goexit | FuncId::Mstart | FuncId::Rt0Go) {
            break;
        }
        match ret {
            Some(r) if r != 0 => {
                pc = r;
                sp = fp;
            }
            _ => break,
        }
    }
    out
}
