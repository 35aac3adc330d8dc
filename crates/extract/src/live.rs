//! Reading a live process: attach (read-only), locate the binary and its load bias, optionally
//! freeze every thread for a bounded time, extract, join OS threads to Ms, and — for scheduler
//! starvation — sample the Ps' scheduler ticks twice.

use crate::{Extra, ExtractError, Options, Program, ProgramError};
use gostall_binfmt::GoBinary;
use gostall_model::{
    LiveMeta, SignalFacts, Snapshot, SourceInfo, SourceKind, SyscallFacts, ThreadFacts,
    ThreadOrigin,
};
use gostall_target::{AccessError, LiveProcess, Memory, Pause, TargetError, Threads};
use std::time::{Duration, Instant};

/// How to read a live process.
#[derive(Debug, Clone, Copy)]
pub struct LiveOptions {
    /// Freeze all threads while reading (consistent view, running goroutines' stacks from their
    /// registers). Default: read without stopping the target.
    pub pause: bool,
    /// Longest the target may stay frozen; it is resumed when this runs out.
    pub pause_cap: Duration,
    /// Interval between the two scheduler samples (0 = one sample only).
    pub sample_interval: Duration,
    /// Longest automatic pause, taken only when a P ran one goroutine through the whole sample
    /// interval with work waiting (to read that goroutine's stack from its thread's registers);
    /// zero disables it.
    pub auto_pause_cap: Duration,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            pause: false,
            pause_cap: Duration::from_millis(500),
            sample_interval: Duration::from_millis(100),
            auto_pause_cap: Duration::from_millis(50),
        }
    }
}

/// Why a live process could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// Attaching failed (permission, no such process, ...).
    #[error(transparent)]
    Access(#[from] AccessError),
    /// Process access failed mid-way.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The binary is not a supported Go program.
    #[error("process {pid} ({exe}): {source}")]
    Program {
        /// Process id.
        pid: i32,
        /// Executable.
        exe: String,
        /// Why.
        #[source]
        source: ProgramError,
    },
    /// The binary could not be parsed.
    #[error("process {pid} ({exe}): {source}")]
    Binary {
        /// Process id.
        pid: i32,
        /// Executable.
        exe: String,
        /// Why.
        #[source]
        source: gostall_binfmt::BinError,
    },
    /// Reading runtime state failed.
    #[error("process {pid}: {source}")]
    Extract {
        /// Process id.
        pid: i32,
        /// Why.
        #[source]
        source: ExtractError,
    },
    /// The process went away while being read.
    #[error("process {0} exited while gostall was reading it")]
    Exited(i32),
}

fn monotonic_ns() -> u64 {
    let mut ts = libc_timespec();
    // SAFETY: clock_gettime writes a timespec into the provided, properly sized buffer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn libc_timespec() -> libc::timespec {
    libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    }
}

/// Reads a live Go process into a snapshot.
pub fn snapshot_pid(pid: i32, opts: &LiveOptions) -> Result<Snapshot, LiveError> {
    let started = Instant::now();
    let proc = LiveProcess::attach(pid)?;
    let exe = std::fs::read_link(proc.exe_path())
        .unwrap_or_else(|_| proc.exe_path())
        .display()
        .to_string();
    let data = proc.read_exe()?;
    let bin = GoBinary::parse(&data).map_err(|source| LiveError::Binary {
        pid,
        exe: exe.clone(),
        source,
    })?;
    let bias = if bin.is_pie() {
        let (vaddr, offset) = bin.first_load_segment().unwrap_or((0, 0));
        proc.load_bias(vaddr, offset).unwrap_or(0)
    } else {
        0
    };
    let prog = Program::new(&bin, bias, &proc).map_err(|source| LiveError::Program {
        pid,
        exe: exe.clone(),
        source,
    })?;
    if crate::timing() {
        eprintln!(
            "attach: binary, DWARF layout, symbols {:?}",
            started.elapsed()
        );
    }
    let mut snap = gostall_model::Snapshot {
        tables: gostall_model::Tables::new(),
        ..Default::default()
    };
    snap.sources.push(SourceInfo {
        name: format!("pid {pid}"),
        kind: SourceKind::LiveProcess,
        goroutines: 0,
        skipped: Vec::new(),
        skipped_more: 0,
    });
    snap.process.go_version = Some(prog.go_version.trim_start_matches("go").to_string());
    let xopts = Options {
        now_ns: Some(monotonic_ns()),
        ..Options::default()
    };
    let mut meta = LiveMeta {
        pid,
        ns_pid: proc
            .nspid()
            .and_then(|v| v.last().copied())
            .filter(|&p| p != pid),
        exe,
        go_version: prog.go_version.clone(),
        ..LiveMeta::default()
    };
    let gone = |e: ExtractError| {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            LiveError::Exited(pid)
        } else {
            LiveError::Extract { pid, source: e }
        }
    };
    let mut extra = Extra::default();
    if opts.pause {
        // Paused: only the scheduler-state snapshot (goroutine headers, Ms, Ps, registers).
        // Stacks are read after resuming and validated against these headers.
        let plan = prog.plan_headers(&proc, &xopts).map_err(gone)?;
        let t0 = Instant::now();
        let pause = Pause::freeze(pid, opts.pause_cap)?;
        let t_frozen = t0.elapsed();
        // Test hook: hold the target paused so a test can kill gostall mid-pause.
        if let Some(ms) = std::env::var("GOSTALL_TEST_HOLD_PAUSE_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
        {
            std::thread::sleep(Duration::from_millis(ms).min(opts.pause_cap));
        }
        let headers = prog.read_planned(&proc, &xopts, plan);
        let t_headers = t0.elapsed();
        let sched = match &headers {
            Ok(h) => prog.read_sched(&proc, &mut snap, &mut extra, h),
            Err(_) => Ok(()),
        };
        let regs: Vec<(i32, gostall_target::Regs)> = extra
            .ms
            .iter()
            .filter(|m| m.curg != 0)
            .filter_map(|m| {
                pause
                    .regs(m.procid as i32)
                    .ok()
                    .map(|r| (m.procid as i32, r))
            })
            .collect();
        let t_regs = t0.elapsed();
        let threads = proc.threads();
        let t_threads = t0.elapsed();
        let paused = pause.resume();
        if crate::timing() {
            eprintln!(
                "pause: frozen {t_frozen:?}, headers {t_headers:?}, sched+regs {t_regs:?}, threads {t_threads:?}, resumed after {paused:?}"
            );
        }
        meta.paused_us = Some(paused.as_micros() as u64);
        let headers = headers.map_err(gone)?;
        sched.map_err(gone)?;
        prog.complete(&proc, &mut snap, &xopts, headers, &mut extra);
        prog.unwind_running(&proc, &mut snap, &extra, &regs);
        join_threads(&mut snap, &extra, threads?);
    } else {
        extra = prog.extract(&proc, &mut snap, &xopts).map_err(gone)?;
        join_threads(&mut snap, &extra, proc.threads()?);
    }
    // Which descriptor each goroutine in IO wait waits on: deadline and peer.
    let fds = gostall_target::describe_fds(pid);
    for t in &mut snap.threads {
        if let Some(sc) = &mut t.syscall {
            sc.text = Some(gostall_target::syscalls::decode(sc.nr, &sc.args, &fds).text);
        }
    }
    let waits = crate::netpoll::waits(&prog, &proc, pid, monotonic_ns(), &fds);
    if !waits.is_empty() {
        let by_id: rustc_hash::FxHashMap<u64, usize> = snap
            .goroutines
            .iter()
            .enumerate()
            .map(|(i, g)| (g.id, i))
            .collect();
        for (gaddr, w) in waits {
            if let Some(&i) = extra.g_addr_to_id.get(&gaddr).and_then(|id| by_id.get(id)) {
                snap.goroutines[i].net = Some(Box::new(w));
            }
        }
    }
    meta.reread = extra.reread;
    meta.inconsistent = extra.inconsistent;
    // Signal dispositions and the runtime's signal records, first sample.
    let mut signals = read_signal_facts(&prog, &bin, &proc, pid);
    if !opts.sample_interval.is_zero() {
        std::thread::sleep(opts.sample_interval);
        if let Ok(later) = prog.sample_schedticks(&proc) {
            for p in &mut snap.procs {
                p.schedtick_later = later.iter().find(|(id, _)| *id == p.id).map(|(_, t)| *t);
            }
        }
        second_signal_sample(&prog, &bin, &proc, pid, &extra, &mut snap, &mut signals);
        // A P that ran the same goroutine through the whole interval while work waited: its
        // goroutine's stack is only in its thread's registers. Pause briefly to read them.
        if !opts.pause && !opts.auto_pause_cap.is_zero() {
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
            let hidden =
                |g: &gostall_model::Goroutine| stuck.contains(&g.id) && g.stack_unavailable;
            if snap.goroutines.iter().any(hidden) {
                if let Ok(pause) = Pause::freeze(pid, opts.auto_pause_cap) {
                    let regs: Vec<(i32, gostall_target::Regs)> = extra
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
                        opts.sample_interval.as_millis()
                    ));
                    prog.unwind_running(&proc, &mut snap, &extra, &regs);
                }
            }
        }
    }
    meta.read_us = started.elapsed().as_micros() as u64;
    if crate::timing() {
        eprintln!("read: total {:?}", started.elapsed());
    }
    snap.process.threads_created = Some(snap.threads.len() as u64);
    snap.signals = signals;
    snap.live = Some(meta);
    Ok(snap)
}

/// Process-wide dispositions (`/proc/PID/status`) and the runtime's signal records; `None` when
/// the status file cannot be read.
fn read_signal_facts(
    prog: &Program<'_>,
    bin: &GoBinary<'_>,
    proc: &LiveProcess,
    pid: i32,
) -> Option<SignalFacts> {
    let st = gostall_target::procfs::status(pid).ok()?;
    let rt = prog.read_signals(proc);
    let forwarded = rt
        .forwarded
        .iter()
        .map(|&(sig, addr)| {
            // Handlers in the executable (C code linked into a cgo program) are named from its
            // symbol table; handlers in shared libraries stay unnamed here.
            let sym = bin.symbol_at(addr.wrapping_sub(prog.bias)).map(|(n, off)| {
                if off == 0 {
                    n.to_string()
                } else {
                    format!("{n}+{off:#x}")
                }
            });
            (sig, addr, sym)
        })
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
    })
}

/// The second look, one sample interval after the first: thread masks (kept only where a signal
/// stayed blocked or pending: Go blocks everything on a thread for moments), every M's
/// preemption-signal state (stuck when `signalPending` stayed set and `preemptGen` did not
/// move, i.e. Go's handler did not run), and the process dispositions.
fn second_signal_sample(
    prog: &Program<'_>,
    bin: &GoBinary<'_>,
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
            let (blk, pnd) = gostall_target::procfs::thread_status(pid, t.tid)
                .map_or((0, 0), |st| (st.sig_blk, st.sig_pnd));
            t.sig_blocked &= blk;
            t.sig_pending &= pnd;
        }
        let Some(m) = by_tid.get(&(t.tid as u64)) else {
            continue;
        };
        t.preempt_signal_stuck = m.signal_pending == Some(true)
            && later
                .iter()
                .any(|&(addr, pending, gen)| addr == m.addr && pending && gen == m.preempt_gen);
    }
    if let (Some(first), Some(second)) = (signals.as_mut(), read_signal_facts(prog, bin, proc, pid))
    {
        first.ignored &= second.ignored;
        first.caught |= second.caught;
        first.shared_pending &= second.shared_pending;
        first.go_handled &= second.go_handled;
    }
}

fn join_threads(snap: &mut Snapshot, extra: &Extra, threads: Vec<gostall_target::ThreadInfo>) {
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
            in_cgo: m.is_some_and(|m| m.incgo || m.is_extra_in_c),
            origin: match m {
                None => ThreadOrigin::Foreign,
                Some(m) if m.isextra => ThreadOrigin::CCallback,
                Some(_) => ThreadOrigin::Go,
            },
            sig_blocked: t.sig_blocked,
            sig_pending: t.sig_pending,
            syscall: t.syscall.as_ref().map(|s| SyscallFacts {
                nr: s.nr,
                name: gostall_target::syscalls::name(s.nr).map(str::to_string),
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
    for g in &mut snap.goroutines {
        g.thread = g_thread.get(&g.id).copied();
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

    /// With the target paused: unwinds running goroutines from their threads' registers.
    fn unwind_running<M: Memory + ?Sized>(
        &self,
        mem: &M,
        snap: &mut Snapshot,
        extra: &Extra,
        regs: &[(i32, gostall_target::Regs)],
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
