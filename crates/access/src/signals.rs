//! The registry of active pauses, and resuming them when gostall is told to stop.
//!
//! Approach (self-pipe): while at least one [`crate::Pause`] is active, SIGINT, SIGTERM and SIGHUP
//! are caught by a handler that only sets an atomic flag and writes the signal number to a pipe
//! (both async-signal-safe). A watcher thread blocked on the pipe's other end asks every active
//! pause's tracer thread to detach, waits (at most 2 s) until all have, restores the dispositions
//! that were in place before the first pause, and sends the signal to the process again — so the
//! process then ends (or runs its own handler) exactly as if gostall had never caught it. When the
//! last pause ends, the previous dispositions are restored as well.
//!
//! Do not change the dispositions of these three signals while a pause is active: restoring would
//! undo the change.
//!
//! This is the orderly path. The kernel is the backstop: when the tracer thread or the whole
//! gostall process dies for any reason (SIGKILL, panic, abort), every tracee is detached and
//! resumes (gostall never sets `PTRACE_O_EXITKILL`).

use std::fs::File;
use std::io::Read;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::mpsc::{Sender, SyncSender};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::libc;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

use crate::error::TargetError;
use crate::regs::Regs;

/// A request to a pause's tracer thread.
pub(crate) enum Cmd {
    /// Read a thread's registers.
    Regs(i32, SyncSender<Result<Regs, TargetError>>),
    /// Detach everything and end; reply with how long the target was paused.
    Resume(SyncSender<Duration>),
    /// Detach everything now: gostall received this signal.
    Abort(i32),
}

struct Entry {
    id: u64,
    pid: i32,
    tx: Sender<Cmd>,
}

struct Registry {
    entries: Vec<Entry>,
    /// Dispositions to restore, present while ours are installed.
    saved: Vec<(Signal, SigAction)>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    entries: Vec::new(),
    saved: Vec::new(),
});
static CHANGED: Condvar = Condvar::new();
static TERMINATING: AtomicBool = AtomicBool::new(false);
static PIPE_W: AtomicI32 = AtomicI32::new(-1);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static WATCHER: OnceLock<Result<(), String>> = OnceLock::new();

/// The signals that make gostall resume its targets before ending.
pub(crate) const HANDLED_SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

fn lock() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether a terminating signal arrived and pauses are being ended.
pub(crate) fn terminating() -> bool {
    TERMINATING.load(Ordering::SeqCst)
}

/// Records an active pause of `pid`; installs the signal handlers when it is the first.
pub(crate) fn register(pid: i32, tx: Sender<Cmd>) -> Result<u64, TargetError> {
    if let Err(what) = WATCHER.get_or_init(start_watcher) {
        return Err(TargetError::TracerThread(std::io::Error::other(
            what.clone(),
        )));
    }
    let mut reg = lock();
    if terminating() {
        return Err(TargetError::Terminating { pid });
    }
    if reg.entries.is_empty() {
        install(&mut reg);
    }
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    reg.entries.push(Entry { id, pid, tx });
    Ok(id)
}

/// Forgets a pause (its target is resumed); restores the signal dispositions when it was the last.
pub(crate) fn unregister(id: u64) {
    let mut reg = lock();
    reg.entries.retain(|e| e.id != id);
    if reg.entries.is_empty() {
        restore(&mut reg);
    }
    CHANGED.notify_all();
}

/// The command channel of an active pause of `pid`.
pub(crate) fn sender_for(pid: i32) -> Option<Sender<Cmd>> {
    lock()
        .entries
        .iter()
        .find(|e| e.pid == pid)
        .map(|e| e.tx.clone())
}

fn install(reg: &mut Registry) {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in HANDLED_SIGNALS {
        // SAFETY: `on_signal` only does async-signal-safe work (an atomic store and write(2)).
        if let Ok(prev) = unsafe { sigaction(sig, &action) } {
            reg.saved.push((sig, prev));
        }
    }
}

fn restore(reg: &mut Registry) {
    for (sig, prev) in reg.saved.drain(..) {
        // SAFETY: reinstates exactly the disposition that was in place before ours.
        let _ = unsafe { sigaction(sig, &prev) };
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    let saved_errno = Errno::last_raw();
    TERMINATING.store(true, Ordering::SeqCst);
    let fd = PIPE_W.load(Ordering::SeqCst);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe; the byte outlives the call. The pipe is
        // non-blocking, so a full pipe drops the byte instead of blocking the handler.
        unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
    }
    Errno::set_raw(saved_errno);
}

fn start_watcher() -> Result<(), String> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe2: {e}"))?;
    fcntl(
        std::os::fd::AsRawFd::as_raw_fd(&w),
        FcntlArg::F_SETFL(OFlag::O_NONBLOCK),
    )
    .map_err(|e| format!("fcntl: {e}"))?;
    std::thread::Builder::new()
        .name("gostall-signals".into())
        .spawn(move || watch(r))
        .map_err(|e| format!("spawning the signal watcher: {e}"))?;
    PIPE_W.store(w.into_raw_fd(), Ordering::SeqCst);
    Ok(())
}

fn watch(r: OwnedFd) {
    let mut f = File::from(r);
    let mut b = [0u8; 1];
    loop {
        match f.read(&mut b) {
            Ok(1) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            _ => return,
        }
        let sig = i32::from(b[0]);
        let reg = lock();
        for e in &reg.entries {
            let _ = e.tx.send(Cmd::Abort(sig));
        }
        let (mut reg, _) = CHANGED
            .wait_timeout_while(reg, Duration::from_secs(2), |r| !r.entries.is_empty())
            .unwrap_or_else(|e| e.into_inner());
        restore(&mut reg);
        let default = disposition_is_default(sig);
        drop(reg);
        // Deliver the signal again, now to the previous disposition.
        // SAFETY: plain system calls on our own process.
        unsafe { libc::kill(libc::getpid(), sig) };
        if !default {
            // The program handles (or ignores) the signal and goes on: allow new pauses.
            TERMINATING.store(false, Ordering::SeqCst);
        }
    }
}

fn disposition_is_default(sig: i32) -> bool {
    // SAFETY: a query (null new action) into a zeroed struct we own.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_DFL
    }
}
