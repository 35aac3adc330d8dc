//! Typed errors. Each carries the address, process or thread where it happened.

use std::path::PathBuf;
use std::time::Duration;

use nix::errno::Errno;

use crate::access::AccessError;

/// A failed read of target memory.
///
/// Cheap to copy, so callers can keep one on a value as "unreadable" instead of aborting a whole
/// listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MemError {
    /// Some byte of the range is not mapped (or not readable) in the target. `addr` is the first byte
    /// that could not be read; nothing of a partially read range is returned.
    #[error("address {addr:#x} is not mapped in the target (reading {len} bytes at {start:#x})")]
    Unmapped {
        /// The first address that could not be read.
        addr: u64,
        /// Start of the requested range.
        start: u64,
        /// Length of the requested range.
        len: usize,
    },
    /// The address lies in a mapping of the process, but the core file did not keep its bytes
    /// (the dump's filter left that kind of memory out, or the core is truncated) and no mapped
    /// file supplies them.
    #[error("address {addr:#x} is not in the core (reading {len} bytes at {start:#x}): the dump left that memory out")]
    NotInCore {
        /// The first address that could not be read.
        addr: u64,
        /// Start of the requested range.
        start: u64,
        /// Length of the requested range.
        len: usize,
    },
    /// The target process no longer exists (or is a zombie, which has no memory).
    #[error("process {pid} exited (reading {len} bytes at {addr:#x})")]
    ProcessExited {
        /// The target process.
        pid: i32,
        /// Start of the requested range.
        addr: u64,
        /// Length of the requested range.
        len: usize,
    },
    /// The kernel refused access to the target's memory. [`crate::LiveProcess::attach`] explains why.
    #[error("permission denied reading {len} bytes at {addr:#x} of process {pid}")]
    PermissionDenied {
        /// The target process.
        pid: i32,
        /// Start of the requested range.
        addr: u64,
        /// Length of the requested range.
        len: usize,
    },
    /// A bounded helper was asked for more than its limit.
    #[error("refusing to read {len} bytes at {addr:#x}: limit is {max} bytes")]
    TooLarge {
        /// Start of the requested range.
        addr: u64,
        /// Requested length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The range wraps around the end of the address space or lies above what the target can map.
    #[error("range of {len} bytes at {addr:#x} is outside the address space")]
    BadRange {
        /// Start of the requested range.
        addr: u64,
        /// Requested length.
        len: usize,
    },
    /// [`crate::Memory::read_cstr`] found no NUL byte within its bound.
    #[error("no NUL byte within {max} bytes of the string at {addr:#x}")]
    Unterminated {
        /// Start of the string.
        addr: u64,
        /// The bound that was searched.
        max: usize,
    },
    /// Any other error the kernel reported.
    #[error("reading {len} bytes at {addr:#x} of process {pid}: {errno}")]
    Os {
        /// The target process.
        pid: i32,
        /// Start of the requested range.
        addr: u64,
        /// Length of the requested range.
        len: usize,
        /// What the kernel said.
        errno: Errno,
    },
}

/// Why a [`crate::Pause`] ended before its owner resumed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseEnd {
    /// The pause lasted longer than its cap; the watchdog resumed the target.
    CapExceeded {
        /// The cap that was exceeded.
        cap: Duration,
    },
    /// gostall received a terminating signal and resumed the target before exiting.
    Signal {
        /// The signal number.
        signal: i32,
    },
    /// The owner already resumed it.
    Resumed,
}

impl std::fmt::Display for PauseEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PauseEnd::CapExceeded { cap } => {
                write!(
                    f,
                    "the pause exceeded its cap of {cap:?} and the target was resumed"
                )
            }
            PauseEnd::Signal { signal } => {
                write!(f, "gostall received signal {signal} and resumed the target")
            }
            PauseEnd::Resumed => write!(f, "the target was already resumed"),
        }
    }
}

/// A failure to list threads, read registers, pause or inspect a target.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The target process no longer exists.
    #[error("process {pid} exited")]
    ProcessExited {
        /// The target process.
        pid: i32,
    },
    /// The thread no longer exists, or is not a thread of the target.
    #[error("thread {tid} of process {pid} exited or does not exist")]
    ThreadExited {
        /// The target process.
        pid: i32,
        /// The thread.
        tid: i32,
    },
    /// Registers are only readable while the target is paused (see [`crate::Pause`]).
    #[error(
        "registers of thread {tid} of process {pid} are only readable while the process is paused"
    )]
    NotPaused {
        /// The target process.
        pid: i32,
        /// The thread.
        tid: i32,
    },
    /// The thread is part of the pause but did not stop (it was in uninterruptible sleep, state `D`),
    /// so its registers are not available.
    #[error("thread {tid} of process {pid} did not stop (uninterruptible sleep in the kernel)")]
    NotStopped {
        /// The target process.
        pid: i32,
        /// The thread.
        tid: i32,
    },
    /// The pause ended before the request.
    #[error("pause of process {pid} ended: {end}")]
    PauseEnded {
        /// The target process.
        pid: i32,
        /// Why it ended.
        end: PauseEnd,
    },
    /// Another tracer (a debugger, strace, another gostall) is attached.
    #[error("thread {tid} of process {pid} is already traced by process {tracer} (a debugger or strace?)")]
    AlreadyTraced {
        /// The target process.
        pid: i32,
        /// The thread.
        tid: i32,
        /// The tracer's pid, from `TracerPid` in `/proc/PID/status`.
        tracer: i32,
    },
    /// A ptrace request failed.
    #[error("ptrace {op} on thread {tid} of process {pid}: {errno}")]
    Ptrace {
        /// The target process.
        pid: i32,
        /// The thread.
        tid: i32,
        /// The request, e.g. `PTRACE_SEIZE`.
        op: &'static str,
        /// What the kernel said.
        errno: Errno,
    },
    /// Not every thread stopped before the deadline.
    #[error(
        "process {pid}: {} of {total} threads did not stop within {waited:?} (first: {})",
        pending.len(),
        pending.first().copied().unwrap_or_default()
    )]
    StopTimeout {
        /// The target process.
        pid: i32,
        /// Threads that had not stopped.
        pending: Vec<i32>,
        /// Threads that were being stopped.
        total: usize,
        /// How long we waited.
        waited: Duration,
    },
    /// gostall is exiting after a terminating signal; no new pause is started.
    #[error("not pausing process {pid}: gostall is exiting after a signal")]
    Terminating {
        /// The target process.
        pid: i32,
    },
    /// A request that makes no sense for this target, e.g. pausing gostall itself.
    #[error("process {pid}: {what}")]
    Invalid {
        /// The target process.
        pid: i32,
        /// What was wrong.
        what: &'static str,
    },
    /// A file under `/proc` could not be read.
    #[error("reading {}: {source}", path.display())]
    Proc {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file under `/proc` had unexpected content.
    #[error("unexpected content in {}: {what}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        what: String,
    },
    /// A core file lacks what was asked of it, or a file it maps was not found.
    #[error("{0}")]
    Core(String),
    /// Reading memory failed.
    #[error(transparent)]
    Mem(#[from] MemError),
    /// The process cannot be accessed at all.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// The tracer or signal-watcher thread could not be started, or died.
    #[error("tracer thread: {0}")]
    TracerThread(std::io::Error),
    /// The operation is not implemented for this architecture.
    #[error("{0} is not supported on this architecture")]
    Unsupported(&'static str),
}
