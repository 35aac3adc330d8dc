//! Reading goroutines, Ms, Ps and threads: with every thread stopped for a consistent view
//! (`--pause`: the scheduler state, registers and native stacks inside the pause; with the
//! proof, the goroutines' stacks and the mark too when the heap is small), or from the running
//! target (torn reads detected and re-read).

use super::{LiveError, Read, Starts, PAUSED_PROOF_MAX_HEAP};
use crate::native::{self, NativeUnwinder, StartRegs};
use crate::{Extra, ExtractError, Program, Target};
use gostall_access::{LiveProcess, Memory, Pause, ReadReq, Regs, TargetError, ThreadInfo, Threads};
use gostall_model::{LiveMeta, MemoryFacts, Snapshot, SyscallFacts, ThreadFacts, ThreadOrigin};
use rustc_hash::FxHashMap;
use std::time::{Duration, Instant};

/// What the read hands to the later phases.
pub(crate) struct ReadOut<'r, P: gostall_access::Objects + ?Sized> {
    /// The native unwinder, over the mappings seen at the read.
    pub nu: Option<NativeUnwinder<'r, P>>,
    /// Where each thread's native unwinding starts.
    pub starts: Starts,
    /// The proof taken while the target was stopped, or why it could not be.
    pub proof: Option<Result<crate::proof::Proof, String>>,
}

/// What is read while every thread stands still: the goroutine headers, the scheduler, the
/// threads with their registers, copies of the stacks of threads in native code (taken only
/// when the target will run again) and, when asked, the proof with stacks and mark.
pub(crate) struct Frozen {
    headers: Option<Result<crate::Headers, ExtractError>>,
    sched: Result<(), ExtractError>,
    threads: Result<Vec<ThreadInfo>, TargetError>,
    all_regs: Vec<(i32, Regs)>,
    running: Vec<(i32, Regs)>,
    native: Vec<(i32, StartRegs, ReadReq)>,
    copies: Vec<u8>,
    copied: Vec<bool>,
    /// The proof taken (or why not), when one was asked for.
    pub proof: Option<Result<crate::proof::Proof, String>>,
}

/// How a target stands still.
pub(crate) struct Still<'a> {
    /// Copy the stacks of threads in native code (the target will run again).
    pub copy_native: bool,
    /// Take the proof while still.
    pub prove: bool,
    /// After the mark: whether the stop ended before it finished (a live pause's cap), which
    /// voids the proof, and why.
    pub cut_short: &'a dyn Fn() -> Option<String>,
}

/// Reads everything that needs the target still (see [`Frozen`]). Shared by the paused live
/// read and the core reader.
pub(crate) fn frozen<P: Target + ?Sized>(
    r: &Read<'_, '_, P>,
    nu: Option<&NativeUnwinder<'_, P>>,
    plan: crate::HeaderPlan,
    snap: &mut Snapshot,
    extra: &mut Extra,
    still: &Still<'_>,
) -> Frozen {
    let (copy_native, prove, cut_short) = (still.copy_native, still.prove, still.cut_short);
    let (prog, proc, xopts) = (r.prog, r.proc, &r.xopts);
    let is_go = |pc: u64| prog.pcln.find_func(pc.wrapping_sub(prog.bias)).is_some();
    let headers = prog.read_planned(proc, xopts, plan);
    let sched = match &headers {
        Ok(h) => prog.read_sched(proc, snap, extra, h),
        Err(_) => Ok(()),
    };
    let threads = proc.threads();
    let ms: FxHashMap<u64, &crate::MRecord> = extra.ms.iter().map(|m| (m.procid, m)).collect();
    let all_regs: Vec<(i32, Regs)> = threads
        .iter()
        .flatten()
        .filter_map(|t| proc.regs(t.tid).ok().map(|r| (t.tid, r)))
        .collect();
    let running: Vec<(i32, Regs)> = all_regs
        .iter()
        .filter(|(tid, _)| ms.get(&(*tid as u64)).is_some_and(|m| m.curg != 0))
        .copied()
        .collect();
    // Threads in native code: their stacks change as soon as they run again, so copy them
    // now, in one vectored read.
    let native: Vec<(i32, StartRegs, ReadReq)> = match nu {
        Some(nu) if copy_native => all_regs
            .iter()
            .filter(|(tid, r)| {
                ms.get(&(*tid as u64))
                    .is_none_or(|m| m.incgo || m.extra_in_c || !is_go(r.rip))
            })
            .filter_map(|(tid, r)| {
                let s = StartRegs {
                    pc: r.rip,
                    sp: r.rsp,
                    bp: Some(r.rbp),
                };
                Some((*tid, s, nu.stack_request(r.rsp)?))
            })
            .collect(),
        _ => Vec::new(),
    };
    let reqs: Vec<ReadReq> = native.iter().map(|n| n.2).collect();
    let mut copies = vec![0u8; reqs.iter().map(|r| r.len).sum()];
    let mut copied = Vec::new();
    proc.read_batch(&reqs, &mut copies, &mut copied);
    // The proof wants a consistent view: take it now, with the stopped threads' registers as
    // roots.
    let mut headers = Some(headers);
    let mut proof = None;
    if prove && sched.is_ok() && matches!(headers, Some(Ok(_))) {
        if let Some(Ok(h)) = headers.take() {
            prog.complete(proc, snap, xopts, h, extra);
            prog.unwind_running(proc, snap, extra, &running);
            let roots: Vec<u64> = all_regs.iter().flat_map(|(_, r)| r.gprs()).collect();
            let popts = crate::proof::ProofOptions {
                paused: true,
                passes: 1,
                ..Default::default()
            };
            let p = prog.prove_with_roots(proc, snap, extra, &popts, &roots, None);
            proof = Some(match (p, cut_short()) {
                (Ok(p), None) => Ok(p),
                (Ok(_), Some(why)) => Err(why),
                (Err(e), _) => Err(e),
            });
        }
    }
    Frozen {
        headers,
        sched,
        threads,
        all_regs,
        running,
        native,
        copies,
        copied,
        proof,
    }
}

impl Frozen {
    /// The number of native stacks copied.
    pub(crate) fn stacks_copied(&self) -> usize {
        self.native.len()
    }

    /// What is left once the target may run again: the goroutines completed and unwound (when
    /// the proof did not do it already), threads joined to Ms and goroutines; returns where
    /// each thread's native unwinding starts.
    pub(crate) fn finish<P: Target + ?Sized>(
        self,
        r: &Read<'_, '_, P>,
        snap: &mut Snapshot,
        extra: &mut Extra,
    ) -> Result<Starts, ReadError> {
        let (prog, proc, xopts) = (r.prog, r.proc, &r.xopts);
        let reqs: Vec<ReadReq> = self.native.iter().map(|n| n.2).collect();
        let mut starts = Starts::default();
        for (tid, r) in &self.all_regs {
            let s = StartRegs {
                pc: r.rip,
                sp: r.rsp,
                bp: Some(r.rbp),
            };
            starts.insert(*tid, (s, None));
        }
        for ((tid, s, _), copy) in
            self.native
                .iter()
                .zip(native::split_copies(&reqs, &self.copies, &self.copied))
        {
            starts.insert(*tid, (*s, copy));
        }
        self.sched.map_err(ReadError::Extract)?;
        if let Some(headers) = self.headers {
            let headers = headers.map_err(ReadError::Extract)?;
            prog.complete(proc, snap, xopts, headers, extra);
            prog.unwind_running(proc, snap, extra, &self.running);
        }
        join_threads(snap, extra, &self.threads.map_err(ReadError::Target)?);
        Ok(starts)
    }
}

/// Why a read of a stopped target failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The runtime's state could not be read.
    Extract(ExtractError),
    /// The threads could not be listed.
    Target(TargetError),
}

/// Stopped: the scheduler-state snapshot (goroutine headers, Ms, Ps, registers, the stacks of
/// threads in native code) inside the pause; goroutine stacks after resuming, validated against
/// the headers — unless the proof is wanted and the heap is small, when stacks and the mark are
/// read inside the pause too.
pub(super) fn stopped<'r>(
    r: &'r Read<'_, '_>,
    snap: &mut Snapshot,
    extra: &mut Extra,
    meta: &mut LiveMeta,
    memory: Option<&MemoryFacts>,
) -> Result<ReadOut<'r, LiveProcess>, LiveError> {
    let (prog, proc, opts, xopts) = (r.prog, r.proc, r.opts, &r.xopts);
    let plan = prog.plan_headers(proc, xopts).map_err(|e| r.gone(e))?;
    // The mappings, to bound the stack copies taken while paused.
    let nu = r.native_unwinder(&mut meta.notes);
    let small_heap = memory
        .map(|m| {
            m.go_breakdown
                .iter()
                .filter(|(n, _)| n == "heap_in_use")
                .map(|(_, b)| *b)
                .sum::<u64>()
        })
        .is_some_and(|b| b <= PAUSED_PROOF_MAX_HEAP);
    let t0 = Instant::now();
    let pause = Pause::freeze(r.pid, opts.pause_cap)?;
    let t_frozen = t0.elapsed();
    // Test hook: hold the target paused so a test can kill gostall mid-pause.
    if let Some(ms) = std::env::var("GOSTALL_TEST_HOLD_PAUSE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(Duration::from_millis(ms).min(opts.pause_cap));
    }
    // A pause the cap cut short was no consistent view: the proof is taken again unpaused.
    let cut_short = || {
        pause.ended().map(|_| {
            format!(
                "the mark did not finish within the pause cap ({} ms); proved without a pause instead",
                opts.pause_cap.as_millis()
            )
        })
    };
    let still = Still {
        copy_native: true,
        prove: opts.proof && small_heap,
        cut_short: &cut_short,
    };
    let mut f = frozen(r, nu.as_ref(), plan, snap, extra, &still);
    let t_read = t0.elapsed();
    let paused = pause.resume();
    if crate::timing() {
        eprintln!(
            "pause: frozen {t_frozen:?}, read {t_read:?} ({} native stacks), resumed after {paused:?}",
            f.stacks_copied()
        );
    }
    meta.paused_us = Some(paused.as_micros() as u64);
    let proof = f.proof.take();
    let starts = f.finish(r, snap, extra).map_err(|e| match e {
        ReadError::Extract(e) => r.gone(e),
        ReadError::Target(e) => LiveError::Target(e),
    })?;
    Ok(ReadOut { nu, starts, proof })
}

/// Not stopped: everything read from the running target, torn reads detected and re-read.
pub(super) fn running<'r>(
    r: &'r Read<'_, '_>,
    snap: &mut Snapshot,
    extra: &mut Extra,
    meta: &mut LiveMeta,
) -> Result<ReadOut<'r, LiveProcess>, LiveError> {
    *extra = r
        .prog
        .extract(r.proc, snap, &r.xopts)
        .map_err(|e| r.gone(e))?;
    let threads = r.proc.threads()?;
    join_threads(snap, extra, &threads);
    // Mappings read after the threads: every listed thread's stack is in them.
    let nu = r.native_unwinder(&mut meta.notes);
    let starts = threads
        .iter()
        .filter_map(|t| native::syscall_start(t).map(|s| (t.tid, (s, None))))
        .collect();
    Ok(ReadOut {
        nu,
        starts,
        proof: None,
    })
}

pub(crate) fn join_threads(
    snap: &mut Snapshot,
    extra: &Extra,
    threads: &[gostall_access::ThreadInfo],
) {
    let by_tid: rustc_hash::FxHashMap<u64, &crate::MRecord> =
        extra.ms.iter().map(|m| (m.procid, m)).collect();
    let mut g_thread: rustc_hash::FxHashMap<u64, i32> = Default::default();
    for t in threads {
        let m = by_tid.get(&(t.tid as u64)).copied();
        let goroutine = m.and_then(|m| extra.g_addr_to_id.get(&m.curg).copied());
        let locked = m.and_then(|m| extra.g_addr_to_id.get(&m.lockedg).copied());
        for g in [goroutine, locked].into_iter().flatten() {
            g_thread.entry(g).or_insert(t.tid);
        }
        snap.threads.push(ThreadFacts {
            tid: t.tid,
            name: t.name.clone(),
            state: t.state.to_string(),
            m: m.map(|m| m.id),
            goroutine,
            locked_goroutine: locked,
            p: m.and_then(|m| extra.p_addr_to_id.get(&m.p).copied()),
            spinning: m.is_some_and(|m| m.spinning),
            in_cgo: m.is_some_and(|m| m.incgo || m.extra_in_c),
            origin: match m {
                None => ThreadOrigin::Foreign,
                Some(m) if m.isextra => ThreadOrigin::CCallback,
                Some(_) => ThreadOrigin::Go,
            },
            sig_blocked: t.sig_blocked,
            sig_pending: t.sig_pending,
            syscall: t.syscall.as_ref().map(|s| SyscallFacts {
                nr: s.nr,
                name: gostall_access::syscalls::name(s.nr).map(str::to_string),
                text: None,
                args: s.args,
            }),
            wchan: t.wchan.clone(),
            kernel_stack: t.kernel_stack.clone().unwrap_or_default(),
            cpu_ns: t.cpu_time().as_nanos() as u64,
            ctx_switches: (t.voluntary_ctxt_switches, t.nonvoluntary_ctxt_switches),
            ..Default::default()
        });
    }
    snap.threads.sort_unstable_by_key(|t| t.tid);
    for g in &mut snap.goroutines {
        g.thread = g_thread.get(&g.id).copied();
    }
}

impl Program<'_> {
    /// With the target paused: unwinds running goroutines from their threads' registers.
    pub(crate) fn unwind_running<M: Memory + ?Sized>(
        &self,
        mem: &M,
        snap: &mut Snapshot,
        extra: &Extra,
        regs: &[(i32, gostall_access::Regs)],
    ) {
        let mut sym = crate::unwind::Symbolizer::new(self);
        for (tid, r) in regs {
            let Some(m) = extra.ms.iter().find(|m| m.procid as i32 == *tid) else {
                continue;
            };
            let Some(&goid) = extra.g_addr_to_id.get(&m.curg) else {
                continue;
            };
            let Some(g) = snap
                .goroutines
                .iter_mut()
                .find(|g| g.id == goid && g.stack_unavailable)
            else {
                continue;
            };
            // Read the stack from rsp upward, bounded; the goroutine's hi bound is not at hand here,
            // so read what is mapped, up to 64 KiB.
            let mut stack = vec![0u8; 64 * 1024];
            let mut n = stack.len();
            while n >= 4096 && mem.read(r.rsp, &mut stack[..n]).is_err() {
                n /= 2;
            }
            if n < 4096 {
                continue;
            }
            stack.truncate(n);
            let mut frames = Vec::new();
            sym.unwind(r.rip, r.rsp, &stack, false, &mut snap.tables, &mut frames);
            if !frames.is_empty() {
                g.stack = snap.tables.intern_stack(&frames);
                g.stack_unavailable = false;
            }
        }
    }
}
