//! The Go runtime's own signal records, read from memory: which signals have Go's handler
//! (`runtime.handlingSig`), which handlers were there before Go and get forwarded to
//! (`runtime.fwdSig`), whether asynchronous preemption is on (`runtime.debug.asyncpreemptoff`),
//! the CPU profiler's rate (`runtime.prof.hz`), and every M's preemption-signal bookkeeping
//! (`m.signalPending`, `m.preemptGen`) for a second sample.
//!
//! Everything here is optional: a record that is missing from the binary or cannot be read is
//! left out, never an error.

use crate::{u32_at, u64_at, Program};
use gostall_access::Memory;
use gostall_goruntime::signals as sig;

/// What the runtime recorded about signals, at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeSignals {
    /// Signals with Go's handler installed, bit `n-1` for signal `n`.
    pub go_handled: u64,
    /// Handlers found before Go installed its own: (signal, address). `SIG_DFL`/`SIG_IGN` left out.
    pub forwarded: Vec<(u32, u64)>,
    /// `GODEBUG=asyncpreemptoff=1` is in effect.
    pub async_preempt_off: bool,
    /// CPU profiling rate, 0 when off.
    pub cpu_profile_hz: u32,
}

/// One M's preemption-signal state: (address of the m, `signalPending` set, `preemptGen`).
pub type PreemptSample = (u64, bool, u32);

impl Program<'_> {
    /// Reads the runtime's signal records; parts that cannot be read stay at their defaults.
    pub fn read_signals<M: Memory + ?Sized>(&self, mem: &M) -> RuntimeSignals {
        let mut out = RuntimeSignals::default();
        if let Some((addr, size)) = self.sym.handling_sig {
            let n = (size / 4).min(65) as usize;
            let mut b = vec![0u8; n * 4];
            if n > 1 && mem.read(addr, &mut b).is_ok() {
                for s in 1..n as u32 {
                    if u32_at(&b, u64::from(s) * 4) != 0 {
                        out.go_handled |= sig::bit(s);
                    }
                }
            }
        }
        if let Some((addr, size)) = self.sym.fwd_sig {
            let n = (size / 8).min(65) as usize;
            let mut b = vec![0u8; n * 8];
            if n > 1 && mem.read(addr, &mut b).is_ok() {
                for s in 1..n as u32 {
                    let h = u64_at(&b, u64::from(s) * 8);
                    if sig::is_handler_address(h) {
                        out.forwarded.push((s, h));
                    }
                }
            }
        }
        let l = &self.layout.signals;
        let mut b = [0u8; 4];
        if let (Some(base), Some(off)) = (self.sym.debug, l.debug_asyncpreemptoff) {
            if mem.read(base + off, &mut b).is_ok() {
                out.async_preempt_off = u32::from_le_bytes(b) != 0;
            }
        }
        if let (Some(base), Some(off)) = (self.sym.prof, l.prof_hz) {
            if mem.read(base + off, &mut b).is_ok() {
                out.cpu_profile_hz = u32::from_le_bytes(b);
            }
        }
        out
    }

    /// Walks `runtime.allm` again and reads each M's `signalPending` and `preemptGen`. Empty when
    /// the binary's DWARF does not describe them or the list cannot be read.
    pub fn sample_preempt<M: Memory + ?Sized>(&self, mem: &M) -> Vec<PreemptSample> {
        let ml = &self.layout.m;
        let (Some(pending), Some(gen)) = (ml.signal_pending, ml.preempt_gen) else {
            return Vec::new();
        };
        let len = pending.max(gen).max(ml.alllink) + 8;
        let mut buf = vec![0u8; len as usize];
        let mut out = Vec::new();
        let mut m = match self.read_u64(mem, "runtime.allm", self.sym.allm) {
            Ok(m) => m,
            Err(_) => return out,
        };
        while m != 0 && out.len() < 100_000 {
            if mem.read(m, &mut buf).is_err() {
                break;
            }
            out.push((m, u32_at(&buf, pending) != 0, u32_at(&buf, gen)));
            m = u64_at(&buf, ml.alllink);
        }
        out
    }
}
