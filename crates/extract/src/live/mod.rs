//! Reading a live process: attach (read-only), locate the binary and its load bias, optionally
//! freeze every thread for a bounded time, extract, join OS threads to Ms, unwind the native
//! stacks of threads in C (without stopping them unless paused) and join them to the goroutines
//! in cgo calls, read what goroutines wait on (descriptors, library resources), take the
//! reachability proof, and — for scheduler starvation and wait times — sample a second time.
//!
//! [`snapshot_pid`] runs the phases in order; each lives in a module of its own:
//! `read` (goroutines, Ms and Ps, with or without the target stopped), `threads` (native stacks,
//! system calls, descriptors), `samples` (memory samples before, the second look after).

pub(crate) mod read;
pub(crate) mod samples;
pub(crate) mod threads;

use crate::native::{NativeUnwinder, StackCopy, StartRegs};
use crate::{Extra, ExtractError, Options, Program, ProgramError};
use gostall_access::{AccessError, LiveProcess, TargetError};
use gostall_binfmt::GoBinary;
use gostall_model::{LiveMeta, Snapshot, SourceInfo, SourceKind};
use rustc_hash::FxHashMap;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

pub use samples::MAX_MEMORY_SAMPLES;

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

/// Largest heap in use whose reachability proof is taken with the target stopped (`--pause`):
/// a mark of a few MiB takes milliseconds; bigger heaps are proved without a pause (two
/// agreeing marks), so the pause stays short.
const PAUSED_PROOF_MAX_HEAP: u64 = 64 << 20;

/// `name` or `name+0x1c`.
pub(crate) fn symbol_plus(name: &str, off: u64) -> String {
    if off == 0 {
        name.to_string()
    } else {
        format!("{name}+{off:#x}")
    }
}

/// What every phase of one read shares: of a live process, or (`P` = `CoreFile`) of a core.
pub(crate) struct Read<'r, 'p, P: ?Sized = LiveProcess> {
    pub(crate) pid: i32,
    pub(crate) opts: &'r LiveOptions,
    pub(crate) prog: &'r Program<'p>,
    pub(crate) proc: &'r P,
    pub(crate) xopts: Options,
}

impl<P: crate::Target + ?Sized> Read<'_, '_, P> {
    /// The native unwinder over the objects mapped now (loaded when unwinding touches them).
    pub(crate) fn native_unwinder(&self, notes: &mut Vec<String>) -> Option<NativeUnwinder<'_, P>> {
        let prog = self.prog;
        let is_go = move |pc: u64| prog.pcln.find_func(pc.wrapping_sub(prog.bias)).is_some();
        match NativeUnwinder::new(self.proc, is_go) {
            Ok(n) => Some(n),
            Err(e) => {
                notes.push(format!("native stacks not read: {e}"));
                None
            }
        }
    }
}

impl Read<'_, '_> {
    /// Maps an extraction error to "the process exited" when it did.
    fn gone(&self, e: ExtractError) -> LiveError {
        if !std::path::Path::new(&format!("/proc/{}", self.pid)).exists() {
            LiveError::Exited(self.pid)
        } else {
            LiveError::Extract {
                pid: self.pid,
                source: e,
            }
        }
    }
}

/// Where native unwinding of each thread starts, with a copy of its stack when one was taken
/// while the target was stopped.
pub(crate) type Starts = FxHashMap<i32, (StartRegs, Option<StackCopy>)>;

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
    let mut snap = new_snapshot(format!("pid {pid}"), SourceKind::LiveProcess, &bin, &prog);
    let r = Read {
        pid,
        opts,
        prog: &prog,
        proc: &proc,
        xopts: Options {
            now_ns: Some(monotonic_ns()),
            ..Options::default()
        },
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
    program_notes(&prog, &mut meta.notes);
    // 1. Memory samples (the last right before the goroutines are read).
    let memory = samples::sample_memory(pid, &prog, &proc, opts, &mut meta.notes);
    if let Some(p) = opts.progress {
        p(0, opts.memory_samples.clamp(1, MAX_MEMORY_SAMPLES));
    }
    let memory = memory?;
    // 2. Goroutines, Ms, Ps and threads — stopped for a consistent view, or not.
    let mut extra = Extra::default();
    let read = if opts.pause {
        read::stopped(&r, &mut snap, &mut extra, &mut meta, memory.as_ref())?
    } else {
        read::running(&r, &mut snap, &mut extra, &mut meta)?
    };
    // 3. Native stacks, system calls, descriptors and what goroutines wait on outside Go.
    let mut nu = read.nu;
    threads::native_stacks(
        &r,
        nu.as_mut(),
        &mut snap,
        &extra,
        &read.starts,
        &mut meta.notes,
    );
    threads::describe_waits(&r, nu.as_mut(), &mut snap, &extra);
    meta.reread = extra.reread;
    meta.inconsistent = extra.inconsistent;
    let goroutines_read = Instant::now();
    snap.lib_states =
        crate::libstate::read(&prog, &proc, &snap, &extra.graws, extra.first_goroutine);
    // 4. The reachability proof.
    if opts.proof {
        prove(&r, &mut snap, &extra, read.proof, &mut meta);
    }
    // 5. The second look: waits that held, scheduler ticks, signal state.
    let signals = samples::second_look(
        &r,
        &bin,
        nu.as_mut(),
        &mut snap,
        &extra,
        &mut meta,
        goroutines_read,
    );
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

/// An empty snapshot of a program read from memory: its source, Go version and main module.
pub(crate) fn new_snapshot(
    name: String,
    kind: SourceKind,
    bin: &GoBinary<'_>,
    prog: &Program<'_>,
) -> Snapshot {
    let mut snap = Snapshot {
        tables: gostall_model::Tables::new(),
        ..Default::default()
    };
    snap.sources.push(SourceInfo {
        name,
        kind,
        goroutines: 0,
        skipped: Vec::new(),
        skipped_more: 0,
    });
    snap.process.go_version = Some(prog.go_version.trim_start_matches("go").to_string());
    snap.process.main_module = bin
        .build_info()
        .and_then(|b| b.main.map(|m| m.path))
        .filter(|p| !p.is_empty());
    snap
}

/// What the program's binary lacks and what follows from it, for the report's notes.
pub(crate) fn program_notes(prog: &Program<'_>, notes: &mut Vec<String>) {
    if prog.symbols_found == crate::SymbolSource::Code {
        notes.push(
            "the binary has no symbol table: the runtime's globals were found through the code that uses them and checked in memory; C functions of the executable are unnamed, global variables are not named in evidence, and the runtime's memory statistics (mstats) are not read".to_string(),
        );
    }
    if prog.version_source == crate::VersionSource::RuntimeString {
        notes.push(format!(
            "the binary has no build information: Go version {} from the runtime's own version string",
            prog.go_version
        ));
    }
    if let crate::LayoutSource::Table(v) = &prog.layout_source {
        notes.push(format!(
            "the binary has no DWARF: runtime layouts from the table recorded for {v}; library pool states are not read"
        ));
    }
}

/// The reachability proof: the one taken while the target was stopped when there is one,
/// otherwise two agreeing marks of the running target.
fn prove(
    r: &Read<'_, '_>,
    snap: &mut Snapshot,
    extra: &Extra,
    stopped: Option<Result<crate::proof::Proof, String>>,
    meta: &mut LiveMeta,
) {
    let t = Instant::now();
    let unpaused = || {
        let proc = r.proc;
        r.prog.prove_watching(
            proc,
            snap,
            extra,
            &crate::proof::ProofOptions::default(),
            &|| proc.activity(),
        )
    };
    let proof = match stopped {
        Some(Ok(p)) => Ok(p),
        Some(Err(e)) => {
            meta.notes.push(e);
            unpaused()
        }
        None => {
            if r.opts.pause {
                meta.notes.push(format!(
                    "the heap is larger than {} MiB: proved without a pause (two agreeing marks) to keep the pause short",
                    PAUSED_PROOF_MAX_HEAP >> 20
                ));
            }
            unpaused()
        }
    };
    match proof {
        Ok(p) => p.apply(snap),
        Err(e) => meta.notes.push(format!("no reachability proof: {e}")),
    }
    if crate::timing() {
        eprintln!("proof: {:?}", t.elapsed());
    }
}
