//! Freezing every thread of a target for a bounded time, and always resuming it.
//!
//! Design: ptrace requests must come from the thread that attached, so each [`Pause`] owns one
//! dedicated tracer thread that does every ptrace call: it seizes and interrupts the threads, reads
//! registers on request, enforces the cap (its command loop waits with a timeout that is the cap's
//! deadline), and detaches. The [`Pause`] handle only sends it commands over a channel.
//!
//! Every path resumes the target:
//! - [`Pause::resume`] and `Drop` ask the tracer thread to detach, wait for it, and join it;
//! - an error while freezing detaches whatever was seized before the error is returned;
//! - the cap: the tracer thread detaches on its own when the deadline passes;
//! - SIGINT, SIGTERM, SIGHUP: see the signal module (self-pipe, watcher thread, re-raise);
//! - the tracer thread ends after detaching, and the kernel detaches whatever a tracer thread still
//!   traces when it exits — which also covers a panic, and gostall being SIGKILLed (no
//!   `PTRACE_O_EXITKILL` is ever set, so tracees survive their tracer).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::libc;
use nix::sys::ptrace;
use nix::unistd::Pid;

use crate::access::{AccessContext, AccessError};
use crate::error::{PauseEnd, TargetError};
use crate::procfs::{self, ThreadInfo};
use crate::regs::Regs;
use crate::signals::{self, Cmd};
use crate::Threads;

/// All threads of a target stopped with `PTRACE_SEIZE` + `PTRACE_INTERRUPT`; resumed (detached) by
/// [`Pause::resume`], on drop, when the cap passes, or when gostall receives SIGINT, SIGTERM or
/// SIGHUP.
///
/// While paused, memory reads through [`crate::LiveProcess`] see a consistent state, and registers
/// are readable. The pause never changes the target's state beyond stopping it: signals that arrive
/// while it is paused are delivered when it resumes, and a process that was already stopped
/// (`SIGSTOP`) stays stopped.
#[derive(Debug)]
pub struct Pause {
    pid: i32,
    started: Instant,
    cap: Duration,
    stopped: Vec<i32>,
    unstopped: Vec<i32>,
    tx: Sender<Cmd>,
    worker: Option<JoinHandle<()>>,
    shared: Arc<Mutex<Option<(PauseEnd, Duration)>>>,
}

struct Frozen {
    started: Instant,
    stopped: Vec<i32>,
    unstopped: Vec<i32>,
}

impl Pause {
    /// A cap that keeps a production process's pause short: 2 seconds.
    pub const DEFAULT_CAP: Duration = Duration::from_secs(2);

    /// Stops every thread of process `pid`, for at most `cap` (the time to stop the threads counts).
    ///
    /// Seizes each task of `/proc/PID/task`, interrupts it and waits for it to stop; the listing is
    /// repeated until it shows no new thread, so threads created meanwhile are caught. A thread in
    /// uninterruptible sleep (`D`) that does not stop within 10 ms is not waited for: it runs no user
    /// code until it stops, and is listed by [`Pause::unstopped`].
    ///
    /// # Errors
    /// [`TargetError::ProcessExited`], [`TargetError::Access`] (permission, with reasons),
    /// [`TargetError::AlreadyTraced`], [`TargetError::StopTimeout`], [`TargetError::Terminating`],
    /// [`TargetError::Invalid`] for gostall itself. Whatever was stopped is resumed first.
    pub fn freeze(pid: i32, cap: Duration) -> Result<Pause, TargetError> {
        if pid <= 0 {
            return Err(TargetError::Invalid {
                pid,
                what: "not a valid pid",
            });
        }
        let status = procfs::status(pid)?;
        if status.tgid == std::process::id() as i32 {
            return Err(TargetError::Invalid {
                pid,
                what: "gostall cannot pause itself",
            });
        }
        if status.tgid != 0 && status.tgid != pid {
            return Err(TargetError::Access(AccessError::NotAProcess {
                pid,
                tgid: status.tgid,
            }));
        }
        let (tx, rx) = mpsc::channel();
        let id = signals::register(pid, tx.clone())?;
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let shared = Arc::new(Mutex::new(None));
        let worker_shared = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name(format!("gostall-ptrace-{pid}"))
            .spawn(move || {
                let mut tracer = Tracer::new(pid, id);
                tracer.run(cap, rx, ready_tx, &worker_shared);
                // The tracer's Drop detaches and unregisters on every way out, panics included.
            });
        let worker = match spawned {
            Ok(h) => h,
            Err(e) => {
                signals::unregister(id);
                return Err(TargetError::TracerThread(e));
            }
        };
        match ready_rx.recv() {
            Ok(Ok(f)) => Ok(Pause {
                pid,
                started: f.started,
                cap,
                stopped: f.stopped,
                unstopped: f.unstopped,
                tx,
                worker: Some(worker),
                shared,
            }),
            Ok(Err(e)) => {
                let _ = worker.join();
                Err(e)
            }
            Err(_) => {
                let _ = worker.join();
                Err(TargetError::TracerThread(std::io::Error::other(
                    "the tracer thread ended while freezing",
                )))
            }
        }
    }

    /// The paused process.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The cap given to [`Pause::freeze`].
    pub fn cap(&self) -> Duration {
        self.cap
    }

    /// The threads that stopped.
    pub fn stopped_threads(&self) -> &[i32] {
        &self.stopped
    }

    /// Threads that were in uninterruptible sleep and had not stopped when the freeze completed.
    /// They run no user code, but their registers are not readable.
    pub fn unstopped(&self) -> &[i32] {
        &self.unstopped
    }

    /// How long the target has been paused: since the first thread was interrupted, until now or
    /// until the pause ended (cap or signal).
    pub fn elapsed(&self) -> Duration {
        match *self.shared.lock().unwrap_or_else(|e| e.into_inner()) {
            Some((_, d)) => d,
            None => self.started.elapsed(),
        }
    }

    /// Why the pause ended early (cap exceeded, signal), or `None` while the target is paused.
    pub fn ended(&self) -> Option<PauseEnd> {
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|(e, _)| e)
    }

    /// The registers of a stopped thread.
    ///
    /// # Errors
    /// [`TargetError::PauseEnded`] after the cap or a signal ended the pause,
    /// [`TargetError::ThreadExited`] for a thread not in the pause, [`TargetError::NotStopped`] for
    /// one of [`Pause::unstopped`].
    pub fn regs(&self, tid: i32) -> Result<Regs, TargetError> {
        request_regs(&self.tx, tid).unwrap_or(Err(TargetError::PauseEnded {
            pid: self.pid,
            end: PauseEnd::Resumed,
        }))
    }

    /// Resumes every thread (`PTRACE_DETACH`) and returns how long the target was paused.
    pub fn resume(mut self) -> Duration {
        self.finish()
    }

    fn finish(&mut self) -> Duration {
        let Some(worker) = self.worker.take() else {
            return self.elapsed();
        };
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        let paused = if self.tx.send(Cmd::Resume(reply_tx)).is_ok() {
            reply_rx.recv().ok()
        } else {
            None
        };
        let _ = worker.join();
        paused.unwrap_or_else(|| self.elapsed())
    }
}

impl Drop for Pause {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Threads for Pause {
    fn threads(&self) -> Result<Vec<ThreadInfo>, TargetError> {
        procfs::threads(self.pid)
    }

    fn regs(&self, tid: i32) -> Result<Regs, TargetError> {
        Pause::regs(self, tid)
    }
}

/// `None` when the tracer thread is gone.
fn request_regs(tx: &Sender<Cmd>, tid: i32) -> Option<Result<Regs, TargetError>> {
    let (reply_tx, reply_rx) = mpsc::sync_channel(1);
    tx.send(Cmd::Regs(tid, reply_tx)).ok()?;
    reply_rx.recv().ok()
}

/// Registers through whichever pause of `pid` is active (for [`crate::LiveProcess`]).
pub(crate) fn regs_via_active_pause(pid: i32, tid: i32) -> Result<Regs, TargetError> {
    let not_paused = TargetError::NotPaused { pid, tid };
    match signals::sender_for(pid) {
        Some(tx) => request_regs(&tx, tid).unwrap_or(Err(not_paused)),
        None => Err(not_paused),
    }
}

fn deadline_after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

/// One traced thread.
struct Tracee {
    stopped: bool,
    /// Signal caught in a signal-delivery-stop, re-injected on detach so it is not lost.
    sig: i32,
}

/// State of the tracer thread. Lives on that thread only.
struct Tracer {
    pid: i32,
    id: u64,
    threads: BTreeMap<i32, Tracee>,
    gone: BTreeSet<i32>,
    unstoppable: BTreeSet<i32>,
    first_interrupt: Option<Instant>,
    paused_for: Option<Duration>,
}

/// How long a thread may stay unstopped in state `D` before the freeze stops waiting for it.
const D_STATE_GRACE: Duration = Duration::from_millis(10);

impl Tracer {
    fn new(pid: i32, id: u64) -> Self {
        Tracer {
            pid,
            id,
            threads: BTreeMap::new(),
            gone: BTreeSet::new(),
            unstoppable: BTreeSet::new(),
            first_interrupt: None,
            paused_for: None,
        }
    }

    fn run(
        &mut self,
        cap: Duration,
        rx: mpsc::Receiver<Cmd>,
        ready: mpsc::SyncSender<Result<Frozen, TargetError>>,
        shared: &Mutex<Option<(PauseEnd, Duration)>>,
    ) {
        let freeze_deadline = deadline_after(cap);
        if let Err(e) = self.freeze(freeze_deadline) {
            self.detach_all();
            let _ = ready.send(Err(e));
            return;
        }
        let started = self.first_interrupt.unwrap_or_else(Instant::now);
        let frozen = Frozen {
            started,
            stopped: self
                .threads
                .iter()
                .filter(|(_, t)| t.stopped)
                .map(|(&tid, _)| tid)
                .collect(),
            unstopped: self.unstoppable.iter().copied().collect(),
        };
        if ready.send(Ok(frozen)).is_err() {
            self.detach_all();
            return;
        }
        let cap_deadline = started.checked_add(cap).unwrap_or(freeze_deadline);
        let mut ended: Option<PauseEnd> = None;
        let finish = |tracer: &mut Tracer, why: PauseEnd, ended: &mut Option<PauseEnd>| {
            let d = tracer.detach_all();
            *ended = Some(why);
            *shared.lock().unwrap_or_else(|e| e.into_inner()) = Some((why, d));
            d
        };
        loop {
            let cmd = if ended.is_none() {
                match rx.recv_timeout(cap_deadline.saturating_duration_since(Instant::now())) {
                    Ok(c) => c,
                    Err(RecvTimeoutError::Timeout) => {
                        finish(self, PauseEnd::CapExceeded { cap }, &mut ended);
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(c) => c,
                    Err(_) => break,
                }
            };
            match cmd {
                Cmd::Regs(tid, reply) => {
                    let r = match ended {
                        Some(end) => Err(TargetError::PauseEnded { pid: self.pid, end }),
                        None => self.regs(tid),
                    };
                    let _ = reply.send(r);
                }
                Cmd::Resume(reply) => {
                    let d = match ended {
                        None => finish(self, PauseEnd::Resumed, &mut ended),
                        Some(_) => self.paused_for.unwrap_or_default(),
                    };
                    let _ = reply.send(d);
                    break;
                }
                Cmd::Abort(signal) => {
                    if ended.is_none() {
                        finish(self, PauseEnd::Signal { signal }, &mut ended);
                    }
                }
            }
        }
    }

    fn freeze(&mut self, deadline: Instant) -> Result<(), TargetError> {
        let pid = self.pid;
        loop {
            if signals::terminating() {
                return Err(TargetError::Terminating { pid });
            }
            let new: Vec<i32> = procfs::task_ids(pid)?
                .into_iter()
                .filter(|t| !self.threads.contains_key(t) && !self.gone.contains(t))
                .collect();
            if new.is_empty() {
                break;
            }
            for tid in new {
                self.seize(tid)?;
            }
            self.wait_stops(deadline)?;
        }
        if self.threads.is_empty() {
            return Err(TargetError::ProcessExited { pid });
        }
        Ok(())
    }

    fn seize(&mut self, tid: i32) -> Result<(), TargetError> {
        let pid = self.pid;
        // No options: in particular never PTRACE_O_EXITKILL, so the target survives our death.
        match ptrace::seize(Pid::from_raw(tid), ptrace::Options::empty()) {
            Ok(()) => {}
            Err(Errno::ESRCH) => {
                self.gone.insert(tid);
                return Ok(());
            }
            Err(Errno::EPERM) => {
                let info = procfs::thread(pid, tid).ok().flatten();
                match info {
                    // Exited threads (zombies) cannot be attached: nothing to stop.
                    None => {
                        self.gone.insert(tid);
                        return Ok(());
                    }
                    Some(t) if matches!(t.state, 'Z' | 'X' | 'x') => {
                        self.gone.insert(tid);
                        return Ok(());
                    }
                    Some(t) if t.tracer_pid != 0 => {
                        return Err(TargetError::AlreadyTraced {
                            pid,
                            tid,
                            tracer: t.tracer_pid,
                        })
                    }
                    Some(_) if self.threads.is_empty() => {
                        let context = AccessContext::gather(pid);
                        let reasons = context.diagnose();
                        return Err(TargetError::Access(AccessError::PermissionDenied {
                            pid,
                            context: Box::new(context),
                            reasons,
                        }));
                    }
                    Some(_) => {
                        return Err(TargetError::Ptrace {
                            pid,
                            tid,
                            op: "PTRACE_SEIZE",
                            errno: Errno::EPERM,
                        })
                    }
                }
            }
            Err(errno) => {
                return Err(TargetError::Ptrace {
                    pid,
                    tid,
                    op: "PTRACE_SEIZE",
                    errno,
                })
            }
        }
        self.first_interrupt.get_or_insert_with(Instant::now);
        self.threads.insert(
            tid,
            Tracee {
                stopped: false,
                sig: 0,
            },
        );
        match ptrace::interrupt(Pid::from_raw(tid)) {
            // ESRCH: it exited right after the seize; waitpid reports that.
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(errno) => Err(TargetError::Ptrace {
                pid,
                tid,
                op: "PTRACE_INTERRUPT",
                errno,
            }),
        }
    }

    fn wait_stops(&mut self, deadline: Instant) -> Result<(), TargetError> {
        let pid = self.pid;
        let wait_start = Instant::now();
        let mut backoff = Duration::from_micros(20);
        loop {
            let pending: Vec<i32> = self
                .threads
                .iter()
                .filter(|(tid, t)| !t.stopped && !self.unstoppable.contains(tid))
                .map(|(&tid, _)| tid)
                .collect();
            if pending.is_empty() {
                return Ok(());
            }
            let mut progressed = false;
            for &tid in &pending {
                match wait_nohang(tid) {
                    Ok(Some(status)) => {
                        progressed = true;
                        self.on_status(tid, status);
                    }
                    Ok(None) | Err(Errno::EINTR) => {}
                    Err(Errno::ECHILD) => {
                        progressed = true;
                        self.threads.remove(&tid);
                        self.gone.insert(tid);
                    }
                    Err(errno) => {
                        return Err(TargetError::Ptrace {
                            pid,
                            tid,
                            op: "waitpid",
                            errno,
                        })
                    }
                }
            }
            if progressed {
                backoff = Duration::from_micros(20);
                continue;
            }
            if signals::terminating() {
                return Err(TargetError::Terminating { pid });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(TargetError::StopTimeout {
                    pid,
                    total: self.threads.len(),
                    pending,
                    waited: now - wait_start,
                });
            }
            if now - wait_start >= D_STATE_GRACE {
                for &tid in &pending {
                    if procfs::thread(pid, tid)
                        .ok()
                        .flatten()
                        .is_some_and(|t| t.state == 'D')
                    {
                        self.unstoppable.insert(tid);
                    }
                }
            }
            std::thread::sleep(backoff.min(deadline - now));
            backoff = (backoff * 2).min(Duration::from_millis(1));
        }
    }

    fn on_status(&mut self, tid: i32, status: i32) {
        if libc::WIFSTOPPED(status) {
            let sig = libc::WSTOPSIG(status);
            let event = status >> 16;
            if let Some(t) = self.threads.get_mut(&tid) {
                t.stopped = true;
                // event 0 is a signal-delivery-stop: the signal is held back until we pass it on.
                // PTRACE_EVENT_STOP is our interrupt (or a group-stop): nothing to pass on.
                if event == 0 {
                    t.sig = sig;
                }
            }
            self.unstoppable.remove(&tid);
        } else if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            self.threads.remove(&tid);
            self.unstoppable.remove(&tid);
            self.gone.insert(tid);
        }
    }

    fn regs(&mut self, tid: i32) -> Result<Regs, TargetError> {
        let pid = self.pid;
        let Some(t) = self.threads.get(&tid) else {
            return Err(TargetError::ThreadExited { pid, tid });
        };
        if !t.stopped {
            // It may have stopped since the freeze (it left uninterruptible sleep).
            if let Ok(Some(status)) = wait_nohang(tid) {
                self.on_status(tid, status);
            }
            if !self.threads.get(&tid).is_some_and(|t| t.stopped) {
                return Err(TargetError::NotStopped { pid, tid });
            }
        }
        get_regs(pid, tid)
    }

    /// Detaches every thread; returns how long the target was paused. Idempotent.
    fn detach_all(&mut self) -> Duration {
        if let Some(d) = self.paused_for {
            return d;
        }
        // Collect stops not reported yet (error paths), so that a signal caught in a
        // signal-delivery-stop is passed on rather than lost.
        let unwaited: Vec<i32> = self
            .threads
            .iter()
            .filter(|(_, t)| !t.stopped)
            .map(|(&tid, _)| tid)
            .collect();
        for tid in unwaited {
            if let Ok(Some(status)) = wait_nohang(tid) {
                self.on_status(tid, status);
            }
        }
        let mut running = Vec::new();
        for (&tid, t) in &self.threads {
            if detach(tid, t.sig).is_err() && !t.stopped {
                running.push(tid);
            }
        }
        // Seized but not stopped yet (an error or a signal interrupted the freeze): our interrupt
        // is pending, so they stop within moments; detach each as it does. A thread in
        // uninterruptible sleep is not waited for: the kernel detaches it when this tracer thread
        // exits, right after, before it runs any user code.
        let until = Instant::now() + DETACH_WAIT;
        while !running.is_empty() {
            running.retain(|&tid| match wait_nohang(tid) {
                Ok(Some(status)) if libc::WIFSTOPPED(status) => {
                    let sig = if status >> 16 == 0 {
                        libc::WSTOPSIG(status)
                    } else {
                        0
                    };
                    let _ = detach(tid, sig);
                    false
                }
                Ok(None) => procfs::thread(self.pid, tid)
                    .ok()
                    .flatten()
                    .is_some_and(|t| t.state != 'D'),
                _ => false,
            });
            if running.is_empty() || Instant::now() >= until {
                break;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        self.threads.clear();
        let d = self
            .first_interrupt
            .map(|t| t.elapsed())
            .unwrap_or_default();
        self.paused_for = Some(d);
        signals::unregister(self.id);
        d
    }
}

/// How long [`Tracer::detach_all`] waits for seized threads that had not stopped yet.
const DETACH_WAIT: Duration = Duration::from_millis(100);

/// `PTRACE_DETACH`, delivering `sig` (0: none) to the thread as it resumes.
fn detach(tid: i32, sig: i32) -> Result<(), Errno> {
    // SAFETY: PTRACE_DETACH takes no pointers; `data` is the signal number. Raw, because nix's
    // `Signal` cannot hold real-time signals.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_DETACH,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            sig as libc::c_long as *mut libc::c_void,
        )
    };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        self.detach_all();
        signals::unregister(self.id);
    }
}

fn wait_nohang(tid: i32) -> Result<Option<i32>, Errno> {
    let mut status = 0;
    // SAFETY: `status` is a valid out pointer. Raw waitpid, because nix cannot represent every
    // stop signal (real-time ones) and would lose a status it already consumed.
    let r = unsafe { libc::waitpid(tid, &mut status, libc::WNOHANG | libc::__WALL) };
    match r {
        r if r < 0 => Err(Errno::last()),
        0 => Ok(None),
        _ => Ok(Some(status)),
    }
}

#[cfg(target_arch = "x86_64")]
fn get_regs(pid: i32, tid: i32) -> Result<Regs, TargetError> {
    ptrace::getregs(Pid::from_raw(tid))
        .map(Regs::from)
        .map_err(|errno| match errno {
            Errno::ESRCH => TargetError::ThreadExited { pid, tid },
            errno => TargetError::Ptrace {
                pid,
                tid,
                op: "PTRACE_GETREGS",
                errno,
            },
        })
}

#[cfg(not(target_arch = "x86_64"))]
fn get_regs(_pid: i32, _tid: i32) -> Result<Regs, TargetError> {
    Err(TargetError::Unsupported("reading registers"))
}
