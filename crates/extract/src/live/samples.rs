//! The samples around the goroutine read: resident memory before it (`--samples`), and the
//! second look one sample interval after it — waits that held (a lower bound of their
//! duration), scheduler ticks (starvation), signal masks and preemption state, and a short
//! automatic pause to read the registers of a goroutine that held its P throughout.

use super::{symbol_plus, LiveError, LiveOptions, Read};
use crate::native::NativeUnwinder;
use crate::{Extra, ExtractError, Options, Program};
use gostall_access::{LiveProcess, Memory, Pause, TargetError, Threads};
use gostall_binfmt::GoBinary;
use gostall_model::{LiveMeta, SignalFacts, Snapshot};
use rustc_hash::FxHashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Most memory samples taken.
pub const MAX_MEMORY_SAMPLES: u32 = 1000;

/// The second look, one sample interval after the goroutines were read; returns the signal
/// facts (dispositions and the runtime's records, confirmed at both samples).
pub(super) fn second_look(
    r: &Read<'_, '_>,
    bin: &GoBinary<'_>,
    nu: Option<&mut NativeUnwinder<'_, LiveProcess>>,
    snap: &mut Snapshot,
    extra: &Extra,
    meta: &mut LiveMeta,
    goroutines_read: Instant,
) -> Option<SignalFacts> {
    let (prog, proc, opts, pid) = (r.prog, r.proc, r.opts, r.pid);
    // Signal dispositions and the runtime's signal records, first sample.
    let mut signals = read_signal_facts(prog, proc, pid);
    name_handlers(&mut signals, nu, prog, bin);
    if opts.sample_interval.is_zero() {
        return signals;
    }
    std::thread::sleep(opts.sample_interval);
    meta.second_look_us = observe_waits(prog, proc, &r.xopts, extra, snap, goroutines_read);
    if let Ok(later) = prog.sample_schedticks(proc) {
        for p in &mut snap.procs {
            p.schedtick_later = later.iter().find(|(id, _)| *id == p.id).map(|(_, t)| *t);
        }
    }
    second_signal_sample(prog, proc, pid, extra, snap, &mut signals);
    // A P that ran the same goroutine through the whole interval while work waited: its
    // goroutine's stack is only in its thread's registers. Pause briefly to read them.
    if !opts.pause && !opts.auto_pause_cap.is_zero() {
        auto_pause(r, snap, extra, meta);
    }
    signals
}

/// Pauses at most `auto_pause_cap` to read the registers of threads whose goroutine held a P
/// through the whole sample while work waited, and unwinds those goroutines.
fn auto_pause(r: &Read<'_, '_>, snap: &mut Snapshot, extra: &Extra, meta: &mut LiveMeta) {
    let global = snap.scheduler.as_ref().map_or(0, |s| s.global_runq);
    let stuck: Vec<u64> = snap
        .procs
        .iter()
        .filter(|p| {
            p.status == "running"
                && p.schedtick_later == Some(p.schedtick)
                && (p.runq_len > 0 || global > 0)
        })
        .filter_map(|p| p.running)
        .collect();
    let hidden = |g: &gostall_model::Goroutine| stuck.contains(&g.id) && g.stack_unavailable;
    if !snap.goroutines.iter().any(hidden) {
        return;
    }
    let Ok(pause) = Pause::freeze(r.pid, r.opts.auto_pause_cap) else {
        return;
    };
    let regs: Vec<(i32, gostall_access::Regs)> = extra
        .ms
        .iter()
        .filter(|m| {
            extra
                .g_addr_to_id
                .get(&m.curg)
                .is_some_and(|g| stuck.contains(g))
        })
        .filter_map(|m| {
            pause
                .regs(m.procid as i32)
                .ok()
                .map(|r| (m.procid as i32, r))
        })
        .collect();
    let paused = pause.resume();
    meta.paused_us = Some(paused.as_micros() as u64);
    meta.notes.push(format!(
        "paused {} µs to read the registers of {} thread(s) whose goroutine held a P through the whole {} ms sample",
        paused.as_micros(),
        regs.len(),
        r.opts.sample_interval.as_millis()
    ));
    r.prog.unwind_running(r.proc, snap, extra, &regs);
}

/// A lower bound for every wait the runtime has not stamped: goroutines read again one sample
/// later, still in the same wait (same status, reason, sudog and saved stack pointer and pc),
/// have been blocked at least the time between the two reads, in microseconds (returned; `None`
/// when the second read failed).
fn observe_waits(
    prog: &Program<'_>,
    proc: &LiveProcess,
    xopts: &Options,
    extra: &Extra,
    snap: &mut Snapshot,
    first_read_end: Instant,
) -> Option<u64> {
    let t2 = Instant::now();
    let headers = prog.read_headers(proc, xopts).ok()?;
    let apart = t2.saturating_duration_since(first_read_end).as_nanos() as u64;
    let now: FxHashMap<u64, &crate::GRaw> = headers.raws.iter().map(|r| (r.addr, r)).collect();
    for (k, raw) in extra.graws.iter().enumerate() {
        let Some(g) = snap.goroutines.get_mut(extra.first_goroutine + k) else {
            break;
        };
        let blocked = matches!(
            g.state,
            gostall_model::GoState::Waiting | gostall_model::GoState::Syscall
        );
        if !blocked
            || !now
                .get(&raw.addr)
                .is_some_and(|n| crate::proof::same_wait(raw, n))
        {
            continue;
        }
        if g.wait_ns.is_none_or(|w| w < apart) {
            g.wait_ns = Some(apart);
            g.wait_since = gostall_model::WaitSince::Observed;
        }
    }
    Some(apart / 1000)
}

/// Takes the memory samples: every one but the last reads only the totals; the last, right before
/// the goroutines are read, classifies the mappings in full (with thread stacks). `None` (with a
/// note) when the process's memory maps cannot be read.
pub(super) fn sample_memory(
    pid: i32,
    prog: &Program<'_>,
    proc: &LiveProcess,
    opts: &LiveOptions,
    notes: &mut Vec<String>,
) -> Result<Option<gostall_model::MemoryFacts>, LiveError> {
    let n = opts.memory_samples.clamp(1, MAX_MEMORY_SAMPLES);
    let stopped = || opts.stop.is_some_and(|s| s.load(Ordering::Relaxed));
    let exe_pc = prog.pcln.text_start().wrapping_add(prog.bias);
    let t0 = Instant::now();
    let mut samples = Vec::new();
    let mut taken = 0u32;
    let mut cut_short = false;
    loop {
        let last = taken + 1 >= n || stopped();
        if let Some(p) = opts.progress {
            p(taken + 1, n);
        }
        let sps: Vec<u64> = if last {
            proc.threads()
                .unwrap_or_default()
                .iter()
                .filter_map(|t| t.syscall.map(|s| s.sp))
                .collect()
        } else {
            Vec::new()
        };
        let at = t0.elapsed().as_millis() as u64;
        let smaps = match gostall_access::smaps::read(pid) {
            Ok(s) => s,
            Err(TargetError::ProcessExited { .. }) => return Err(LiveError::Exited(pid)),
            Err(e) => {
                notes.push(format!("memory: not read: {e}"));
                return Ok(None);
            }
        };
        let go = prog.read_go_memory(proc);
        let mut f = crate::memory::facts(&smaps, &go, exe_pc, &sps);
        samples.push((at, f.rss, f.go_runtime, f.non_go_estimate));
        taken += 1;
        if last {
            if smaps.truncated > 0 {
                notes.push(format!(
                    "memory: {} mappings beyond the first {} not classified (totals include them)",
                    smaps.truncated,
                    smaps.mappings.len()
                ));
            }
            for note in go.notes {
                if !notes.contains(&note) {
                    notes.push(note);
                }
            }
            if cut_short {
                notes.push(format!(
                    "memory: sampling stopped early after {taken} of {n} samples"
                ));
            }
            f.samples = if n > 1 { samples } else { Vec::new() };
            f.cgo_functions = crate::memory::cgo_functions(&prog.pcln, 32);
            return Ok(Some(f));
        }
        // Samples are due at fixed times from the first; sleep in short steps so that a stop
        // request ends the wait at once.
        let until = t0 + opts.memory_interval * taken;
        while Instant::now() < until && !stopped() {
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
        }
        if stopped() {
            cut_short = true;
        }
    }
}

/// Process-wide dispositions (`/proc/PID/status`) and the runtime's signal records; `None` when
/// the status file cannot be read.
/// The forwarded handlers are left unnamed: [`name_handlers`] names them once.
fn read_signal_facts(prog: &Program<'_>, proc: &LiveProcess, pid: i32) -> Option<SignalFacts> {
    let st = gostall_access::procfs::status(pid).ok()?;
    let rt = prog.read_signals(proc);
    let forwarded = rt
        .forwarded
        .iter()
        .map(|&(sig, addr)| (sig, addr, None))
        .collect();
    Some(SignalFacts {
        ignored: st.sig_ign,
        caught: st.sig_cgt,
        shared_pending: st.shd_pnd,
        go_handled: rt.go_handled,
        forwarded,
        async_preempt_off: rt.async_preempt_off,
        cpu_profile_hz: rt.cpu_profile_hz,
        cpu_profiler_linked: prog.sym.cpu_profiler_linked,
        dispositions_known: true,
    })
}

/// Names the handlers the runtime forwards to by the symbol of whichever mapped object holds them
/// (the executable's C code or a shared library), as native frames are named; the executable's
/// own symbol table when the mapped objects could not be read.
pub(crate) fn name_handlers<P: gostall_access::Objects + ?Sized>(
    signals: &mut Option<SignalFacts>,
    nu: Option<&mut NativeUnwinder<'_, P>>,
    prog: &Program<'_>,
    bin: &GoBinary<'_>,
) {
    let Some(s) = signals.as_mut() else {
        return;
    };
    let mut nu = nu;
    for (_, addr, sym) in &mut s.forwarded {
        *sym = match nu.as_mut() {
            Some(nu) => nu.code_symbol(*addr),
            None => bin
                .symbol_at(addr.wrapping_sub(prog.bias))
                .map(|(n, off)| symbol_plus(n, off)),
        };
    }
}

/// The second look, one sample interval after the first: thread masks (kept only where a signal
/// stayed blocked or pending: Go blocks everything on a thread for moments), every M's
/// preemption-signal state (stuck when `signalPending` stayed set and `preemptGen` did not
/// move, i.e. Go's handler did not run), and the process dispositions.
fn second_signal_sample(
    prog: &Program<'_>,
    proc: &LiveProcess,
    pid: i32,
    extra: &Extra,
    snap: &mut Snapshot,
    signals: &mut Option<SignalFacts>,
) {
    let later = prog.sample_preempt(proc);
    let by_tid: rustc_hash::FxHashMap<u64, &crate::MRecord> =
        extra.ms.iter().map(|m| (m.procid, m)).collect();
    for t in &mut snap.threads {
        if t.sig_blocked | t.sig_pending != 0 {
            // A thread gone by now (an exiting thread blocks everything) confirms nothing.
            let (blk, pnd) = gostall_access::procfs::thread_status(pid, t.tid)
                .map_or((0, 0), |st| (st.sig_blk, st.sig_pnd));
            t.sig_blocked &= blk;
            t.sig_pending &= pnd;
        }
        let Some(m) = by_tid.get(&(t.tid as u64)) else {
            continue;
        };
        // An M bound to a C thread is left out: when a preemption signal lands while its thread
        // is back in C (`m.isExtraInC`), Go's handler returns without acknowledging it
        // (`sigtrampgo`), so the request stays pending until a later one lands in Go.
        t.preempt_signal_stuck = !m.isextra
            && m.signal_pending == Some(true)
            && later
                .iter()
                .any(|&(addr, pending, gen)| addr == m.addr && pending && gen == m.preempt_gen);
    }
    if let (Some(first), Some(second)) = (signals.as_mut(), read_signal_facts(prog, proc, pid)) {
        first.ignored &= second.ignored;
        first.caught |= second.caught;
        first.shared_pending &= second.shared_pending;
        first.go_handled &= second.go_handled;
    }
}

impl Program<'_> {
    /// Second sample of every P's `schedtick`: (P id, ticks).
    pub fn sample_schedticks<M: Memory + ?Sized>(
        &self,
        mem: &M,
    ) -> Result<Vec<(i32, u32)>, ExtractError> {
        let pl = &self.layout.p;
        let mut hdr = [0u8; 16];
        self.read(mem, "runtime.allp", self.sym.allp, &mut hdr)?;
        let ptr = u64::from_le_bytes(hdr[..8].try_into().expect("8"));
        let len = u64::from_le_bytes(hdr[8..].try_into().expect("8")).min(1 << 16) as usize;
        let mut raw = vec![0u8; len * 8];
        self.read(mem, "runtime.allp", ptr, &mut raw)?;
        let mut out = Vec::with_capacity(len);
        let mut pbuf = vec![0u8; (pl.schedtick.max(pl.id) + 4) as usize];
        for c in raw.chunks_exact(8) {
            let p = u64::from_le_bytes(c.try_into().expect("8"));
            if p != 0 && mem.read(p, &mut pbuf).is_ok() {
                out.push((
                    crate::u32_at(&pbuf, pl.id) as i32,
                    crate::u32_at(&pbuf, pl.schedtick),
                ));
            }
        }
        Ok(out)
    }
}
