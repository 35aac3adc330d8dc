//! Go stack unwinding with the pclntab's SP-delta table, and symbolisation with inlined frames
//! expanded. Works on a copy of the goroutine's stack bytes, so it never reads the target again.
//!
//! On amd64 a frame at `pc` with stack pointer `sp` has its return address at `sp + spdelta(pc)`
//! and the caller's stack pointer is 8 bytes above that. Return addresses are looked up at `pc - 1`
//! (the call instruction), the innermost frame of a register snapshot at `pc` itself.

use crate::{GRaw, Program};
use gostall_binfmt::FuncId;
use gostall_model::{FrameId, Tables};
use rustc_hash::FxHashMap;

/// Where unwinding starts for a goroutine that is not running: its syscall context when in a
/// syscall, else its saved scheduling context.
pub(crate) fn start(g: &GRaw) -> (u64, u64) {
    if g.syscallsp != 0 {
        (g.syscallpc, g.syscallsp)
    } else {
        (g.sched_pc, g.sched_sp)
    }
}

/// Frames at one PC, computed once.
#[derive(Clone)]
struct PcInfo {
    frames: Vec<FrameId>,
    sp_delta: Option<i32>,
    stop: bool,
}

/// Caches symbolisation by PC: a program has a few thousand distinct PCs however many goroutines.
pub(crate) struct Symbolizer<'a, 'p> {
    prog: &'a Program<'p>,
    cache: FxHashMap<(u64, bool), Option<PcInfo>>,
}

/// Deepest stack unwound.
const MAX_FRAMES: usize = 4096;

impl<'a, 'p> Symbolizer<'a, 'p> {
    pub(crate) fn new(prog: &'a Program<'p>) -> Self {
        Symbolizer {
            prog,
            cache: FxHashMap::default(),
        }
    }

    fn info(&mut self, pc: u64, is_return: bool, tables: &mut Tables) -> Option<PcInfo> {
        if let Some(i) = self.cache.get(&(pc, is_return)) {
            return i.clone();
        }
        let info = self.compute(pc, is_return, tables);
        self.cache.insert((pc, is_return), info.clone());
        info
    }

    fn compute(&self, pc: u64, is_return: bool, tables: &mut Tables) -> Option<PcInfo> {
        let link = pc.checked_sub(self.prog.bias)?;
        let pcln = &self.prog.pcln;
        let f = pcln.find_func(link)?;
        let entry = pcln.entry(&f);
        let lookup = if is_return && link > entry {
            link - 1
        } else {
            link
        };
        let mut frames: Vec<FrameId> = pcln
            .frames_at(lookup)
            .into_iter()
            .map(|s| tables.frame_from(s.function, s.file, s.line))
            .collect();
        if frames.is_empty() {
            frames.push(tables.frame_from(pcln.name(&f), "?", 0));
        }
        let stop = matches!(
            pcln.func_id(&f),
            FuncId::Goexit | FuncId::Mstart | FuncId::Rt0Go | FuncId::Mcall | FuncId::Morestack
        ) || pcln.func_flag(&f) & gostall_binfmt::FuncFlag::TOP_FRAME != 0;
        Some(PcInfo {
            frames,
            sp_delta: pcln.sp_delta(&f, link),
            stop,
        })
    }

    /// Unwinds from `pc`/`sp`; `stack` holds the target's bytes from `sp` to the stack top.
    pub(crate) fn unwind(
        &mut self,
        mut pc: u64,
        mut sp: u64,
        stack: &[u8],
        first_is_return: bool,
        tables: &mut Tables,
        out: &mut Vec<FrameId>,
    ) {
        let base = sp;
        let mut is_return = first_is_return;
        for _ in 0..MAX_FRAMES {
            let Some(info) = self.info(pc, is_return, tables) else {
                break;
            };
            out.extend_from_slice(&info.frames);
            if info.stop || out.len() >= MAX_FRAMES {
                break;
            }
            let Some(delta) = info.sp_delta.filter(|&d| d >= 0) else {
                break;
            };
            let ret_at = sp + delta as u64;
            let Some(off) = ret_at.checked_sub(base).map(|o| o as usize) else {
                break;
            };
            let Some(bytes) = stack.get(off..off + 8) else {
                break;
            };
            let ret = u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
            if ret == 0 {
                break;
            }
            pc = ret;
            sp = ret_at + 8;
            is_return = true;
        }
    }

    /// The frame of a `go` statement (`g.gopc`, a return address into the creator).
    pub(crate) fn created_by(&mut self, gopc: u64, tables: &mut Tables) -> Option<FrameId> {
        self.info(gopc, true, tables)
            .and_then(|i| i.frames.first().copied())
    }
}
