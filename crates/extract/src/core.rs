//! Reading a core file: the same readers as a paused live process, over [`CoreFile`] — the
//! goroutines with their stacks, Ms, Ps and threads, registers from `NT_PRSTATUS` (running
//! goroutines and C stacks unwind from them), pthread mutex owners, library pool states and the
//! reachability proof (a core is a consistent view, like a pause). What only the live process
//! can tell — descriptors and their peers, thread names, kernel wait channels, signal
//! dispositions, a second look — is not in a core: the report says so.

use crate::live::read::{frozen, ReadError, Still};
use crate::live::{LiveOptions, Read};
use crate::{Extra, ExtractError, Options, Program, ProgramError};
use gostall_access::{CoreError, CoreFile, CoreOptions, CoreWriter, Objects, TargetError};
use gostall_binfmt::GoBinary;
use gostall_model::{CoreMeta, Snapshot, SourceKind};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How to read a core.
#[derive(Debug, Clone, Default)]
pub struct CoreReadOptions {
    /// The executable that ran, when the core's recorded path does not hold it (`--binary`).
    pub binary: Option<PathBuf>,
    /// Directories searched for the mapped files (`--search-path`).
    pub search: Vec<PathBuf>,
    /// Skip the reachability proof.
    pub no_proof: bool,
}

/// Why a core could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CoreReadError {
    /// The core itself could not be opened or parsed.
    #[error(transparent)]
    Open(#[from] CoreError),
    /// The executable could not be found or is not the one the core was taken from.
    #[error("core {core}: {source}")]
    Executable {
        /// The core.
        core: String,
        /// Why.
        #[source]
        source: TargetError,
    },
    /// The executable could not be parsed.
    #[error("core {core} ({exe}): {source}")]
    Binary {
        /// The core.
        core: String,
        /// The executable.
        exe: String,
        /// Why.
        #[source]
        source: gostall_binfmt::BinError,
    },
    /// The executable is not a supported Go program.
    #[error("core {core} ({exe}): {source}")]
    Program {
        /// The core.
        core: String,
        /// The executable.
        exe: String,
        /// Why.
        #[source]
        source: ProgramError,
    },
    /// The runtime's state could not be read from the core.
    #[error("core {core}: {source}")]
    Extract {
        /// The core.
        core: String,
        /// Why.
        #[source]
        source: ExtractError,
    },
}

/// Whether `head` (the first bytes of a file) starts an ELF core file.
pub fn is_core(head: &[u8]) -> bool {
    head.len() >= 18
        && head.starts_with(b"\x7fELF")
        && u16::from_le_bytes([head[16], head[17]]) == 4
}

/// Reads a core file into a snapshot.
///
/// # Errors
/// See [`CoreReadError`]: a core that cannot be parsed, an executable that cannot be found or
/// does not match, a binary that is not a supported Go program, runtime state that is not in
/// the core.
pub fn snapshot_core(path: &Path, opts: &CoreReadOptions) -> Result<Snapshot, CoreReadError> {
    let started = Instant::now();
    let mut core = CoreFile::open(
        path,
        CoreOptions {
            binary: opts.binary.clone(),
            search: opts.search.clone(),
        },
    )?;
    // The kernel dumps on a crash; a Go crash stops every thread in Go's signal handler (the
    // first relays SIGQUIT until each M has taken it) until the process aborts: what the program
    // was doing is what the handlers interrupted.
    let in_handler = if core.writer() == CoreWriter::Kernel {
        core.take_interrupted_contexts()
    } else {
        0
    };
    let core_name = path.display().to_string();
    let (exe_path, data) = core
        .read_exe()
        .map_err(|source| CoreReadError::Executable {
            core: core_name.clone(),
            source,
        })?;
    let exe = exe_path.display().to_string();
    let bin = GoBinary::parse(&data).map_err(|source| CoreReadError::Binary {
        core: core_name.clone(),
        exe: exe.clone(),
        source,
    })?;
    let bias = if bin.is_pie() {
        let (vaddr, offset) = bin.first_load_segment().unwrap_or((0, 0));
        load_bias(&core, vaddr, offset).unwrap_or(0)
    } else {
        0
    };
    let prog = Program::new(&bin, bias, &core).map_err(|source| CoreReadError::Program {
        core: core_name.clone(),
        exe: exe.clone(),
        source,
    })?;
    let record = core.capture_record().and_then(CaptureRecord::parse);
    let mut snap = crate::live::new_snapshot(core_name.clone(), SourceKind::CoreFile, &bin, &prog);
    let mut meta = CoreMeta {
        path: core_name.clone(),
        writer: match core.writer() {
            CoreWriter::Kernel => "kernel",
            CoreWriter::Gdb => "gdb",
            CoreWriter::Gostall => "gostall",
        }
        .to_string(),
        pid: core.process().pid,
        exe,
        go_version: prog.go_version.clone(),
        // gdb records the stop signal of its attach, which says nothing about the process.
        signal: core
            .signal()
            .filter(|_| core.writer() == CoreWriter::Kernel)
            .map(describe_signal),
        taken_unix: record.as_ref().map(|r| r.unix_s),
        paused_us: record.as_ref().map(|r| r.paused_us),
        ..CoreMeta::default()
    };
    meta.notes.extend(core.notes().iter().cloned());
    crate::live::program_notes(&prog, &mut meta.notes);
    let lopts = LiveOptions::default();
    let r = Read {
        pid: core.process().pid,
        opts: &lopts,
        prog: &prog,
        proc: &core,
        xopts: Options {
            // The runtime's clock when the core was taken, for wait durations: only cores
            // gostall writes record it.
            now_ns: record.as_ref().map(|r| r.monotonic_ns),
            ..Options::default()
        },
    };
    let extract_err = |source| CoreReadError::Extract {
        core: core_name.clone(),
        source,
    };
    let mut extra = Extra::default();
    let plan = prog.plan_headers(&core, &r.xopts).map_err(extract_err)?;
    let mut nu = r.native_unwinder(&mut meta.notes);
    let still = Still {
        copy_native: false,
        prove: !opts.no_proof,
        cut_short: &|| None,
    };
    let mut f = frozen(&r, nu.as_ref(), plan, &mut snap, &mut extra, &still);
    let proof = f.proof.take();
    let starts = f.finish(&r, &mut snap, &mut extra).map_err(|e| match e {
        ReadError::Extract(e) => extract_err(e),
        ReadError::Target(source) => CoreReadError::Executable {
            core: core_name.clone(),
            source,
        },
    })?;
    crate::live::threads::native_stacks(
        &r,
        nu.as_mut(),
        &mut snap,
        &extra,
        &starts,
        &mut meta.notes,
    );
    // System calls decoded without descriptors (a core has no descriptor table).
    let no_fds = gostall_access::FdTable::default();
    {
        let nu = std::cell::RefCell::new(nu.as_mut());
        let symbol = |a: u64| nu.borrow_mut().as_mut().and_then(|n| n.data_symbol(a));
        for t in &mut snap.threads {
            if let Some(sc) = &mut t.syscall {
                sc.text = Some(
                    gostall_access::syscalls::decode_with(sc.nr, &sc.args, &no_fds, &symbol).text,
                );
            }
        }
    }
    crate::live::threads::futex_owners(&core, &mut snap);
    if in_handler > 0 {
        meta.notes.push(format!(
            "{in_handler} of {} threads were in a signal handler when the core was written (a Go crash holds every thread in its handler until the process aborts): their registers, system calls and signal masks are those the handler interrupted",
            core.core_threads().len()
        ));
    }
    // A Go program that crashes (GOTRACEBACK=crash, a fatal error) blocks every signal on the
    // threads it stops, then aborts itself: the masks of threads not found in a handler are the
    // crash's, or one of the runtime's moments with every signal blocked, not the program's.
    if core.writer() == CoreWriter::Kernel
        && core
            .signal()
            .is_some_and(|s| s.sender == Some(core.process().pid))
    {
        let handled: Vec<i32> = core
            .core_threads()
            .iter()
            .filter(|t| t.in_handler.is_some())
            .map(|t| t.tid)
            .collect();
        let mut cleared = 0;
        for t in snap
            .threads
            .iter_mut()
            .filter(|t| !handled.contains(&t.tid))
        {
            t.sig_blocked = 0;
            t.sig_pending = 0;
            cleared += 1;
        }
        if cleared > 0 {
            meta.notes.push(format!(
                "the process aborted itself (a Go crash): the signal masks of the {cleared} thread{} not in a signal handler may be the crash's, not the program's, and are not used",
                if cleared == 1 { "" } else { "s" }
            ));
        }
    }
    snap.lib_states =
        crate::libstate::read(&prog, &core, &snap, &extra.graws, extra.first_goroutine);
    match proof {
        Some(Ok(p)) => p.apply(&mut snap),
        Some(Err(e)) => meta.notes.push(format!("no reachability proof: {e}")),
        None if opts.no_proof => {}
        None => meta
            .notes
            .push("no reachability proof: the scheduler's state could not be read".to_string()),
    }
    if let Some(rec) = &record {
        rec.apply(&mut snap);
    } else {
        // The runtime's own signal records are memory; the dispositions are not in the core.
        let rt = prog.read_signals(&core);
        let mut signals = Some(gostall_model::SignalFacts {
            go_handled: rt.go_handled,
            forwarded: rt.forwarded.iter().map(|&(s, a)| (s, a, None)).collect(),
            async_preempt_off: rt.async_preempt_off,
            cpu_profile_hz: rt.cpu_profile_hz,
            cpu_profiler_linked: prog.sym.cpu_profiler_linked,
            dispositions_known: false,
            ..Default::default()
        });
        crate::live::samples::name_handlers(&mut signals, nu.as_mut(), &prog, &bin);
        snap.signals = signals;
        if core.writer() == CoreWriter::Gdb {
            meta.notes.push(
                "gdb records no signal masks in its cores (NT_PRSTATUS holds the thread id, the stop signal and the registers): the threads' masks are unknown, not empty".to_string(),
            );
        }
        meta.notes.push(format!(
            "a core written by {} holds memory and registers only: descriptors, thread names, kernel wait channels and signal dispositions need the live process or `gostall capture`{}",
            if meta.writer == "kernel" { "the kernel" } else { "gdb" },
            if r.xopts.now_ns.is_none() {
                "; wait durations are the runtime's own (goroutines blocked across a GC)"
            } else {
                ""
            }
        ));
    }
    let unfound: Vec<String> = core
        .file_report()
        .into_iter()
        .filter(|(_, how)| how.contains("not on this machine") || how.contains("not the file"))
        .map(|(_, how)| how)
        .collect();
    if !unfound.is_empty() {
        meta.notes.push(format!(
            "native frames of mapped files not found are unnamed (--search-path DIR adds a place to look): {}",
            unfound.join("; ")
        ));
    }
    snap.process.threads_created = Some(snap.threads.len() as u64);
    meta.read_us = started.elapsed().as_micros() as u64;
    snap.core = Some(meta);
    Ok(snap)
}

/// The executable's load bias: where the mapping of its first loaded segment starts, less that
/// segment's page-aligned address.
fn load_bias(core: &CoreFile, vaddr: u64, offset: u64) -> Option<u64> {
    let exe = core.exe_path()?.to_path_buf();
    let maps = core.mappings().ok()?;
    let page = 4096u64;
    let m = maps
        .iter()
        .find(|m| m.path.as_deref() == Some(exe.as_path()) && m.offset == offset & !(page - 1))?;
    Some(m.start.wrapping_sub(vaddr & !(page - 1)))
}

/// `SIGABRT (sent by the process itself)`, `SIGSEGV at 0x0`.
fn describe_signal(s: gostall_access::CoreSignal) -> String {
    let name = gostall_goruntime::signals::name(s.signo.max(0) as u32);
    match (s.addr, s.sender) {
        (Some(a), _) => format!("{name} at {a:#x} (thread {})", s.tid),
        (None, Some(p)) if p != 0 => format!("{name} sent by process {p}"),
        _ => format!("{name} (thread {})", s.tid),
    }
}

/// What `gostall capture` records beside memory and registers: the facts only the live process
/// could give (JSON in the `GOSTALL` note).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct CaptureRecord {
    /// Format version.
    pub version: u32,
    /// When the capture was taken, Unix seconds.
    pub unix_s: u64,
    /// The runtime's clock (CLOCK_MONOTONIC) at the capture, nanoseconds.
    pub monotonic_ns: u64,
    /// How long the process was stopped.
    pub paused_us: u64,
    /// The executable as the process saw it.
    pub exe: String,
    /// The threads as `/proc` showed them.
    pub threads: Vec<CapturedThread>,
    /// Network waits: goroutine id → the descriptor, deadline and peer.
    pub net: Vec<(u64, gostall_model::NetWait)>,
    /// Signal dispositions and the runtime's signal records.
    pub signals: Option<CapturedSignals>,
    /// Resident memory against what the runtime manages.
    pub memory: Option<gostall_model::MemoryFacts>,
    /// Waits the live read saw hold across its two looks: goroutine id → lower bound, ns.
    #[serde(default)]
    pub waits: Vec<(u64, u64)>,
}

/// One thread as `/proc` showed it at a capture.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct CapturedThread {
    /// Thread id.
    pub tid: i32,
    /// Name (`comm`).
    pub name: String,
    /// Scheduler state letter.
    pub state: String,
    /// Kernel wait channel.
    pub wchan: Option<String>,
    /// Kernel stack.
    pub kernel_stack: Vec<String>,
    /// CPU time.
    pub cpu_ns: u64,
    /// Voluntary and forced context switches.
    pub ctx_switches: (u64, u64),
    /// Signals blocked, as confirmed by the second look.
    pub sig_blocked: u64,
    /// Signals pending for the thread.
    pub sig_pending: u64,
    /// A preemption request stayed unacknowledged across the second look.
    pub preempt_signal_stuck: bool,
    /// The system call number and its text with descriptors resolved.
    pub syscall: Option<(i64, Option<String>)>,
}

impl CapturedThread {
    /// The capture of a thread of a live snapshot.
    pub fn of(t: &gostall_model::ThreadFacts) -> CapturedThread {
        CapturedThread {
            tid: t.tid,
            name: t.name.clone(),
            state: t.state.clone(),
            wchan: t.wchan.clone(),
            kernel_stack: t.kernel_stack.clone(),
            cpu_ns: t.cpu_ns,
            ctx_switches: t.ctx_switches,
            sig_blocked: t.sig_blocked,
            sig_pending: t.sig_pending,
            preempt_signal_stuck: t.preempt_signal_stuck,
            syscall: t.syscall.as_ref().map(|s| (s.nr, s.text.clone())),
        }
    }
}

/// Signal state at a capture (`gostall_model::SignalFacts`, masks as numbers).
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct CapturedSignals {
    /// Ignored process-wide.
    pub ignored: u64,
    /// Caught process-wide.
    pub caught: u64,
    /// Pending process-wide.
    pub shared_pending: u64,
    /// Handled by Go's handler.
    pub go_handled: u64,
    /// Handlers the runtime forwards to.
    pub forwarded: Vec<(u32, u64, Option<String>)>,
    /// Asynchronous preemption off.
    pub async_preempt_off: bool,
    /// CPU profiler rate.
    pub cpu_profile_hz: u32,
    /// CPU profiler linked in.
    pub cpu_profiler_linked: bool,
}

impl CapturedSignals {
    /// The capture of a live snapshot's signal facts.
    pub fn of(s: &gostall_model::SignalFacts) -> CapturedSignals {
        CapturedSignals {
            ignored: s.ignored,
            caught: s.caught,
            shared_pending: s.shared_pending,
            go_handled: s.go_handled,
            forwarded: s.forwarded.clone(),
            async_preempt_off: s.async_preempt_off,
            cpu_profile_hz: s.cpu_profile_hz,
            cpu_profiler_linked: s.cpu_profiler_linked,
        }
    }

    fn facts(&self) -> gostall_model::SignalFacts {
        gostall_model::SignalFacts {
            ignored: self.ignored,
            caught: self.caught,
            shared_pending: self.shared_pending,
            go_handled: self.go_handled,
            forwarded: self.forwarded.clone(),
            async_preempt_off: self.async_preempt_off,
            cpu_profile_hz: self.cpu_profile_hz,
            cpu_profiler_linked: self.cpu_profiler_linked,
            dispositions_known: true,
        }
    }
}

impl CaptureRecord {
    fn parse(b: &[u8]) -> Option<CaptureRecord> {
        serde_json::from_slice(b).ok()
    }

    /// Puts the live facts into a snapshot read from the core: thread facts by tid (what the
    /// core cannot tell: names, states, wait channels, kernel stacks, decoded system calls),
    /// network waits, signals and memory.
    fn apply(&self, snap: &mut Snapshot) {
        for t in &mut snap.threads {
            let Some(l) = self.threads.iter().find(|l| l.tid == t.tid) else {
                continue;
            };
            t.name = l.name.clone();
            t.state = l.state.clone();
            t.wchan = l.wchan.clone();
            t.kernel_stack = l.kernel_stack.clone();
            t.cpu_ns = l.cpu_ns;
            t.ctx_switches = l.ctx_switches;
            t.sig_blocked = l.sig_blocked;
            t.sig_pending = l.sig_pending;
            t.preempt_signal_stuck = l.preempt_signal_stuck;
            if let (Some(sc), Some((nr, text))) = (&mut t.syscall, &l.syscall) {
                if sc.nr == *nr {
                    sc.text = text.clone();
                }
            }
        }
        let by_id: rustc_hash::FxHashMap<u64, usize> = snap
            .goroutines
            .iter()
            .enumerate()
            .map(|(i, g)| (g.id, i))
            .collect();
        for (id, w) in &self.net {
            if let Some(&i) = by_id.get(id) {
                snap.goroutines[i].net = Some(Box::new(w.clone()));
            }
        }
        for &(id, ns) in &self.waits {
            if let Some(&i) = by_id.get(&id) {
                let g = &mut snap.goroutines[i];
                if g.wait_ns.is_none_or(|w| w < ns) {
                    g.wait_ns = Some(ns);
                    g.wait_since = gostall_model::WaitSince::Observed;
                }
            }
        }
        snap.signals = self.signals.as_ref().map(CapturedSignals::facts);
        snap.memory = self.memory.clone();
    }
}

/// How `gostall capture` runs.
#[derive(Debug, Clone, Copy)]
pub struct CaptureOptions {
    /// Longest the process may stay stopped while its memory is copied.
    pub pause_cap: std::time::Duration,
}

/// What a capture wrote.
#[derive(Debug, Clone)]
pub struct Captured {
    /// The core's figures and how long the process was stopped.
    pub stats: gostall_access::corewrite::CaptureStats,
    /// How long the live read of what a core cannot hold took.
    pub facts_read: std::time::Duration,
}

/// Captures a live Go process into a core file that [`snapshot_core`] reads later, anywhere:
/// first the facts only the live process can give (threads as `/proc` shows them, descriptors
/// and peers of network waits, signal dispositions, memory, waits seen to hold — a read that
/// does not stop the process), then its memory and registers with every thread stopped.
///
/// # Errors
/// The live read's errors ([`crate::live::LiveError`]), and the core writer's (the file, the
/// pause).
pub fn capture(
    pid: i32,
    path: &Path,
    opts: &CaptureOptions,
) -> Result<Captured, crate::live::LiveError> {
    let t = Instant::now();
    let lopts = LiveOptions {
        proof: false,
        auto_pause_cap: std::time::Duration::ZERO,
        ..LiveOptions::default()
    };
    let snap = crate::live::snapshot_pid(pid, &lopts)?;
    let facts_read = t.elapsed();
    let exe = snap
        .live
        .as_ref()
        .map(|l| l.exe.clone())
        .unwrap_or_default();
    let threads: Vec<CapturedThread> = snap.threads.iter().map(CapturedThread::of).collect();
    let net: Vec<(u64, gostall_model::NetWait)> = snap
        .goroutines
        .iter()
        .filter_map(|g| g.net.as_ref().map(|n| (g.id, (**n).clone())))
        .collect();
    let waits: Vec<(u64, u64)> = snap
        .goroutines
        .iter()
        .filter(|g| g.wait_since == gostall_model::WaitSince::Observed)
        .filter_map(|g| g.wait_ns.map(|w| (g.id, w)))
        .collect();
    let signals = snap.signals.as_ref().map(CapturedSignals::of);
    let memory = snap.memory.clone();
    let record = |paused: std::time::Duration, monotonic_ns: u64| {
        let rec = CaptureRecord {
            version: 1,
            unix_s: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            monotonic_ns,
            paused_us: paused.as_micros() as u64,
            exe: exe.clone(),
            threads: threads.clone(),
            net: net.clone(),
            signals: signals.clone(),
            memory: memory.clone(),
            waits: waits.clone(),
        };
        vec![gostall_access::corewrite::ExtraNote {
            name: "GOSTALL",
            kind: gostall_access::corefile::NT_GOSTALL_CAPTURE,
            desc: serde_json::to_vec(&rec).unwrap_or_default(),
        }]
    };
    let stats = gostall_access::corewrite::capture(pid, path, opts.pause_cap, &record)?;
    Ok(Captured { stats, facts_read })
}
