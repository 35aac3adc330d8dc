//! Reading a live process: attach (read-only), locate the binary and its load bias, optionally
//! freeze every thread for a bounded time, extract, join OS threads to Ms, unwind the native
//! stacks of threads in C (without stopping them unless paused) and join them to the goroutines
//! in cgo calls, and — for scheduler starvation — sample the Ps' scheduler ticks twice.

use crate::native::{self, NativeUnwinder, StackCopy, StartRegs};
use crate::{Extra, ExtractError, Options, Program, ProgramError};
use gostall_binfmt::GoBinary;
use gostall_model::{
    LiveMeta, SignalFacts, Snapshot, SourceInfo, SourceKind, SyscallFacts, ThreadFacts,
    ThreadOrigin,
};
use gostall_target::{AccessError, LiveProcess, Memory, Pause, ReadReq, TargetError, Threads};
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// Memory samples to take, `memory_interval` apart (at least 1). The last is taken right
    /// before the goroutines are read, so the snapshot shows the program as it was when the
    /// growth was last measured.
    pub memory_samples: u32,
    /// Time between memory samples.
    pub memory_interval: Duration,
    /// Set (by a signal handler) to end the sampling early; the snapshot is still taken.
    pub stop: Option<&'static AtomicBool>,
    /// Called before each memory sample with (sample number from 1, samples planned), and with
    /// (0, samples planned) once sampling is over, before the goroutines are read.
    pub progress: Option<fn(u32, u32)>,
    /// Take the reachability proof (read the heap and mark it), to tell leaked goroutines
    /// from ones that may still be woken.
    pub proof: bool,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            pause: false,
            pause_cap: Duration::from_millis(500),
            sample_interval: Duration::from_millis(100),
            auto_pause_cap: Duration::from_millis(50),
            memory_samples: 1,
            memory_interval: Duration::from_secs(1),
            stop: None,
            progress: None,
            proof: true,
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
    snap.process.main_module = bin
        .build_info()
        .and_then(|b| b.main.map(|m| m.path))
        .filter(|p| !p.is_empty());
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
    let memory = sample_memory(pid, &prog, &proc, opts, &mut meta.notes);
    if let Some(p) = opts.progress {
        p(0, opts.memory_samples.clamp(1, MAX_MEMORY_SAMPLES));
    }
    let memory = memory?;
    let gone = |e: ExtractError| {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            LiveError::Exited(pid)
        } else {
            LiveError::Extract { pid, source: e }
        }
    };
    let mut extra = Extra::default();
    // Native stacks: the objects mapped now; loaded only when unwinding touches them.
    let is_go = |pc: u64| prog.pcln.find_func(pc.wrapping_sub(prog.bias)).is_some();
    let native_unwinder = |notes: &mut Vec<String>| match NativeUnwinder::new(&proc, is_go) {
        Ok(n) => Some(n),
        Err(e) => {
            notes.push(format!("native stacks not read: {e}"));
            None
        }
    };
    let mut nu: Option<NativeUnwinder<LiveProcess>>;
    let mut starts: FxHashMap<i32, (StartRegs, Option<StackCopy>)> = FxHashMap::default();
    if opts.pause {
        // Paused: only the scheduler-state snapshot (goroutine headers, Ms, Ps, registers, the
        // stacks of threads in native code). Goroutine stacks are read after resuming and
        // validated against these headers.
        let plan = prog.plan_headers(&proc, &xopts).map_err(gone)?;
        // The mappings, to bound the stack copies taken while paused.
        nu = native_unwinder(&mut meta.notes);
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
        let threads = proc.threads();
        let t_threads = t0.elapsed();
        let ms: FxHashMap<u64, &crate::MRecord> = extra.ms.iter().map(|m| (m.procid, m)).collect();
        let all_regs: Vec<(i32, gostall_target::Regs)> = threads
            .iter()
            .flatten()
            .filter_map(|t| pause.regs(t.tid).ok().map(|r| (t.tid, r)))
            .collect();
        let regs: Vec<(i32, gostall_target::Regs)> = all_regs
            .iter()
            .filter(|(tid, _)| ms.get(&(*tid as u64)).is_some_and(|m| m.curg != 0))
            .copied()
            .collect();
        let t_regs = t0.elapsed();
        // Threads in native code: their stacks change as soon as they run again, so copy them
        // now, in one vectored read.
        let native: Vec<(i32, StartRegs, ReadReq)> = match &nu {
            Some(nu) => all_regs
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
            None => Vec::new(),
        };
        let reqs: Vec<ReadReq> = native.iter().map(|n| n.2).collect();
        let mut buf = vec![0u8; reqs.iter().map(|r| r.len).sum()];
        let mut ok = Vec::new();
        proc.read_batch(&reqs, &mut buf, &mut ok);
        let t_native = t0.elapsed();
        let paused = pause.resume();
        if crate::timing() {
            eprintln!(
                "pause: frozen {t_frozen:?}, headers {t_headers:?}, sched+threads {t_threads:?}, registers {t_regs:?}, {} native stacks {t_native:?}, resumed after {paused:?}",
                reqs.len()
            );
        }
        meta.paused_us = Some(paused.as_micros() as u64);
        for (tid, r) in &all_regs {
            let s = StartRegs {
                pc: r.rip,
                sp: r.rsp,
                bp: Some(r.rbp),
            };
            starts.insert(*tid, (s, None));
        }
        for ((tid, s, _), copy) in native.iter().zip(native::split_copies(&reqs, &buf, &ok)) {
            starts.insert(*tid, (*s, copy));
        }
        let headers = headers.map_err(gone)?;
        sched.map_err(gone)?;
        prog.complete(&proc, &mut snap, &xopts, headers, &mut extra);
        prog.unwind_running(&proc, &mut snap, &extra, &regs);
        join_threads(&mut snap, &extra, &threads?);
    } else {
        extra = prog.extract(&proc, &mut snap, &xopts).map_err(gone)?;
        let threads = proc.threads()?;
        join_threads(&mut snap, &extra, &threads);
        // Mappings read after the threads: every listed thread's stack is in them.
        nu = native_unwinder(&mut meta.notes);
        starts.extend(
            threads
                .iter()
                .filter_map(|t| native::syscall_start(t).map(|s| (t.tid, (s, None)))),
        );
    }
    if let Some(nu) = &mut nu {
        let t = Instant::now();
        let in_c: rustc_hash::FxHashSet<i32> = extra
            .ms
            .iter()
            .filter(|m| m.isextra && m.extra_in_c)
            .map(|m| m.procid as i32)
            .collect();
        let n = native::unwind_threads(&proc, nu, &mut snap.threads, &starts, &|tid| {
            in_c.contains(&tid)
        });
        callback_callers(&prog, &proc, nu, &extra, &mut snap);
        meta.notes.append(&mut nu.notes);
        if crate::timing() {
            eprintln!(
                "native: {n} thread(s) unwound in {:?}; objects loaded: {}",
                t.elapsed(),
                nu.loaded_objects().join(", ")
            );
        }
    }
    // Which descriptor each goroutine in IO wait waits on: deadline and peer.
    let fds = gostall_target::describe_fds(pid);
    // Addresses in system call arguments (futex words) named by the object's data symbols.
    let nu = std::cell::RefCell::new(nu);
    let symbol = |a: u64| nu.borrow_mut().as_mut().and_then(|n| n.data_symbol(a));
    for t in &mut snap.threads {
        if let Some(sc) = &mut t.syscall {
            sc.text =
                Some(gostall_target::syscalls::decode_with(sc.nr, &sc.args, &fds, &symbol).text);
        }
    }
    futex_owners(&proc, &mut snap);
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
    let goroutines_read = Instant::now();
    snap.lib_states =
        crate::libstate::read(&prog, &proc, &snap, &extra.graws, extra.first_goroutine);
    if opts.proof {
        let t = Instant::now();
        match prog.prove(&proc, &snap, &extra, &crate::proof::ProofOptions::default()) {
            Ok(p) => p.apply(&mut snap),
            Err(e) => meta.notes.push(format!("no reachability proof: {e}")),
        }
        if crate::timing() {
            eprintln!("proof: {:?}", t.elapsed());
        }
    }
    // Signal dispositions and the runtime's signal records, first sample.
    let mut signals = read_signal_facts(&prog, &proc, pid);
    name_handlers(&mut signals, nu.borrow_mut().as_mut(), &prog, &bin);
    if !opts.sample_interval.is_zero() {
        std::thread::sleep(opts.sample_interval);
        observe_waits(&prog, &proc, &xopts, &extra, &mut snap, goroutines_read);
        if let Ok(later) = prog.sample_schedticks(&proc) {
            for p in &mut snap.procs {
                p.schedtick_later = later.iter().find(|(id, _)| *id == p.id).map(|(_, t)| *t);
            }
        }
        second_signal_sample(&prog, &proc, pid, &extra, &mut snap, &mut signals);
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
    snap.memory = memory;
    snap.signals = signals;
    snap.live = Some(meta);
    Ok(snap)
}

/// A lower bound for every wait the runtime has not stamped: goroutines read again one sample
/// later, still in the same wait (same status, reason, sudog and saved stack pointer and pc),
/// have been blocked at least the time between the two reads.
fn observe_waits(
    prog: &Program<'_>,
    proc: &LiveProcess,
    xopts: &Options,
    extra: &Extra,
    snap: &mut Snapshot,
    first_read_end: Instant,
) {
    let t2 = Instant::now();
    let Ok(headers) = prog.read_headers(proc, xopts) else {
        return;
    };
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
}

/// C frames of threads C created that are inside a callback into Go: their registers are in Go
/// code, so native unwinding starts where `runtime.cgocallback` left the C caller
/// (`goruntime::cgo_callback_c_caller`), found through the extra M's `g0.sched.sp`.
fn callback_callers(
    prog: &Program<'_>,
    proc: &LiveProcess,
    nu: &mut NativeUnwinder<'_, LiveProcess>,
    extra: &Extra,
    snap: &mut Snapshot,
) {
    let pcln = &prog.pcln;
    let bias = prog.bias;
    let Some(cb) = pcln.func_by_name("runtime.cgocallback") else {
        return;
    };
    let Some(frame) = pcln.max_sp_delta(&cb).and_then(|d| u64::try_from(d).ok()) else {
        return;
    };
    let sp_delta = |pc: u64| {
        let f = pcln.find_func(pc.wrapping_sub(bias))?;
        u64::try_from(pcln.sp_delta(&f, pc.wrapping_sub(bias))?).ok()
    };
    let is_go = |pc: u64| pcln.find_func(pc.wrapping_sub(bias)).is_some();
    let read = |a: u64| proc.read_u64(a).ok();
    for m in extra
        .ms
        .iter()
        .filter(|m| m.isextra && !m.extra_in_c && (m.curg != 0 || m.lockedg != 0))
    {
        let Some(t) = snap
            .threads
            .iter_mut()
            .find(|t| t.tid as u64 == m.procid && t.native_stack.is_empty())
        else {
            continue;
        };
        let Some(g0) = read(m.addr.wrapping_add(prog.layout.m.g0)) else {
            continue;
        };
        let Some(sched_sp) = read(g0.wrapping_add(prog.layout.g.sched_sp)) else {
            continue;
        };
        let Some((pc, sp)) =
            gostall_goruntime::cgo_callback_c_caller(sched_sp, frame, sp_delta, is_go, read)
        else {
            continue;
        };
        let (frames, note) = nu.unwind(proc, StartRegs { pc, sp, bp: None }, None);
        if !frames.is_empty() {
            t.native_stack = frames;
            t.native_note = note;
        }
    }
}

/// For threads waiting on a futex, the thread that owns the lock behind it, when the futex word
/// is a glibc `pthread_mutex_t` (`__lock`, `__count`, `__owner`: the owner's tid 8 bytes in) or a
/// priority-inheritance futex (owner tid in the word's low 30 bits). Only tids of this process
/// count; whether the word really is a mutex is for the rules to judge from the native stack.
fn futex_owners<M: Memory + ?Sized>(mem: &M, snap: &mut Snapshot) {
    const FUTEX: i64 = 202;
    let tids: rustc_hash::FxHashSet<i32> = snap.threads.iter().map(|t| t.tid).collect();
    for t in &mut snap.threads {
        let Some(sc) = t.syscall.as_ref().filter(|s| s.nr == FUTEX) else {
            continue;
        };
        let (addr, op) = (sc.args[0], sc.args[1] & 0x7f);
        let owner = match op {
            // FUTEX_WAIT, FUTEX_WAIT_BITSET
            0 | 9 => mem.read_u32(addr.wrapping_add(8)).ok().map(|o| o as i32),
            // FUTEX_LOCK_PI, FUTEX_LOCK_PI2
            6 | 13 => mem.read_u32(addr).ok().map(|w| (w & 0x3fff_ffff) as i32),
            _ => None,
        };
        t.futex_owner = owner.filter(|o| *o != t.tid && tids.contains(o));
    }
}

/// Most memory samples taken.
pub const MAX_MEMORY_SAMPLES: u32 = 1000;

/// Takes the memory samples: every one but the last reads only the totals; the last, right before
/// the goroutines are read, classifies the mappings in full (with thread stacks). `None` (with a
/// note) when the process's memory maps cannot be read.
fn sample_memory(
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
        let smaps = match gostall_target::smaps::read(pid) {
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
    let st = gostall_target::procfs::status(pid).ok()?;
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
    })
}

/// Names the handlers the runtime forwards to by the symbol of whichever mapped object holds them
/// (the executable's C code or a shared library), as native frames are named; the executable's
/// own symbol table when the mapped objects could not be read.
fn name_handlers(
    signals: &mut Option<SignalFacts>,
    nu: Option<&mut NativeUnwinder<'_, LiveProcess>>,
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

/// `name` or `name+0x1c`.
pub(crate) fn symbol_plus(name: &str, off: u64) -> String {
    if off == 0 {
        name.to_string()
    } else {
        format!("{name}+{off:#x}")
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
    if let (Some(first), Some(second)) = (signals.as_mut(), read_signal_facts(prog, proc, pid)) {
        first.ignored &= second.ignored;
        first.caught |= second.caught;
        first.shared_pending &= second.shared_pending;
        first.go_handled &= second.go_handled;
    }
}

fn join_threads(snap: &mut Snapshot, extra: &Extra, threads: &[gostall_target::ThreadInfo]) {
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
    snap.threads.sort_unstable_by_key(|t| t.tid);
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
