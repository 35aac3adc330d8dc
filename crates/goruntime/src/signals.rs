//! What the Go runtime does with each POSIX signal on Linux, from `runtime/sigtab_linux_generic.go`
//! and `runtime/signal_unix.go` (identical in Go 1.21–1.27).
//!
//! The facts rules rely on:
//! - Go installs its own handler (`runtime.sighandler`, recorded in `runtime.handlingSig`) for
//!   every signal except SIGKILL, SIGSTOP, the job-control signals (`_SigDefault`) and glibc's
//!   32–34 (`_SigSetStack`); SIGHUP and SIGINT stay ignored when inherited ignored (`nohup`).
//! - Every M's signal mask starts from the process's initial mask with the signals that must
//!   never be blocked removed (`minitSignalMask` / `blockableSig`): the `_SigUnblock` ones
//!   (synchronous faults, SIGCHLD, SIGPROF), the `_SigKill`/`_SigThrow` ones, and the
//!   preemption signal SIGURG unless `GODEBUG=asyncpreemptoff=1`. Go itself blocks all signals on
//!   a thread only for short windows: around `clone` (`newosproc`, `_cgo_sys_thread_start`),
//!   while a thread starts or exits (`mstart`, `mexit`, `needm`/`dropm`), across `fork`
//!   (`runtime_BeforeFork`), and while a signal handler runs (`sa_mask` is full).
//! - Async preemption: `preemptM` sets `m.signalPending` and sends SIGURG to the thread
//!   (`tgkill`); only Go's handler clears it (`doSigPreempt`, which also increments
//!   `m.preemptGen`). While it stays set no further preemption signal is sent to that M.

/// SIGHUP.
pub const SIGHUP: u32 = 1;
/// SIGINT.
pub const SIGINT: u32 = 2;
/// SIGQUIT: Go prints every goroutine's stack and exits.
pub const SIGQUIT: u32 = 3;
/// SIGILL.
pub const SIGILL: u32 = 4;
/// SIGTRAP.
pub const SIGTRAP: u32 = 5;
/// SIGBUS.
pub const SIGBUS: u32 = 7;
/// SIGFPE.
pub const SIGFPE: u32 = 8;
/// SIGSEGV.
pub const SIGSEGV: u32 = 11;
/// SIGPIPE.
pub const SIGPIPE: u32 = 13;
/// SIGTERM.
pub const SIGTERM: u32 = 15;
/// SIGCHLD.
pub const SIGCHLD: u32 = 17;
/// SIGURG: the runtime's asynchronous preemption signal (`sigPreempt`).
pub const SIGURG: u32 = 23;
/// SIGPROF: the CPU profiler's timer signal.
pub const SIGPROF: u32 = 27;

/// The synchronous fault signals Go turns into panics (or fatal errors with a traceback).
pub const SYNC_SIGNALS: [u32; 5] = [SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP];

/// The mask bit of signal `sig` in `/proc` masks (`SigBlk`, `SigCgt`, …): bit `sig - 1`.
pub fn bit(sig: u32) -> u64 {
    if (1..=64).contains(&sig) {
        1u64 << (sig - 1)
    } else {
        0
    }
}

/// The signals in a mask, ascending.
pub fn in_mask(mask: u64) -> impl Iterator<Item = u32> {
    (1..=64u32).filter(move |&s| mask & bit(s) != 0)
}

/// The name of a signal as people write it (`SIGURG`, `SIGRTMIN+3`): the x86-64 Linux numbering
/// the syscall decoder uses too.
pub fn name(sig: u32) -> String {
    gostall_access::syscalls::signal_name(i32::try_from(sig).unwrap_or(i32::MAX))
}

/// Signal names of a mask, comma-separated (`SIGURG, SIGPROF`).
pub fn mask_names(mask: u64) -> String {
    in_mask(mask).map(name).collect::<Vec<_>>().join(", ")
}

/// The signals the runtime removes from every M's mask and never blocks on a thread running Go
/// code (outside its own short all-blocked windows): the synchronous faults, SIGPROF, and SIGURG
/// while asynchronous preemption is on. Of the `blockableSig` set, only those whose loss changes
/// what Go does: SIGCHLD and the `_SigKill`/`_SigThrow` signals (SIGHUP, SIGINT, SIGTERM,
/// SIGQUIT, …) are left out, their blocking on one thread is harmless while another can take
/// them.
pub fn needed_unblocked(async_preempt: bool) -> u64 {
    let mut m = bit(SIGPROF);
    for s in SYNC_SIGNALS {
        m |= bit(s);
    }
    if async_preempt {
        m |= bit(SIGURG);
    }
    m
}

/// What Go uses a signal for, as far as it matters when its handler is taken away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// SIGURG: asynchronous preemption.
    Preempt,
    /// SIGPROF: CPU profiling.
    Profiling,
    /// SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP: faults Go turns into panics or tracebacks.
    Fault,
    /// SIGHUP, SIGINT, SIGTERM: termination requests `os/signal` programs catch to shut down.
    Termination,
    /// SIGQUIT: Go's all-goroutine stack dump.
    Quit,
    /// SIGPIPE: Go returns EPIPE on writes to broken pipes and sockets (other than stdout and
    /// stderr), instead of dying.
    Pipe,
    /// SIGCHLD: with `SIG_IGN` the kernel reaps children itself and `wait` fails with ECHILD.
    Child,
    /// Anything else: delivered to `os/signal` when asked for, else Go's default action.
    Other,
}

/// Go's use of a signal.
pub fn role(sig: u32) -> Role {
    match sig {
        SIGURG => Role::Preempt,
        SIGPROF => Role::Profiling,
        SIGSEGV | SIGBUS | SIGFPE | SIGILL | SIGTRAP => Role::Fault,
        SIGHUP | SIGINT | SIGTERM => Role::Termination,
        SIGQUIT => Role::Quit,
        SIGPIPE => Role::Pipe,
        SIGCHLD => Role::Child,
        _ => Role::Other,
    }
}

/// A handler address as recorded in `runtime.fwdSig`: 0 is `SIG_DFL`, 1 `SIG_IGN`, anything else
/// a function. Only functions are forwarded to.
pub fn is_handler_address(v: u64) -> bool {
    v > 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_bits() {
        assert_eq!(name(SIGURG), "SIGURG");
        assert_eq!(name(SIGPROF), "SIGPROF");
        assert_eq!(name(35), "SIGRTMIN+3");
        assert_eq!(bit(SIGURG), 0x40_0000);
        assert_eq!(bit(0), 0);
        assert_eq!(bit(65), 0);
        assert_eq!(mask_names(0x40_0000 | 0x400_0000), "SIGURG, SIGPROF");
        assert_eq!(in_mask(u64::MAX).count(), 64);
    }

    #[test]
    fn needed_signals() {
        let on = needed_unblocked(true);
        assert_ne!(on & bit(SIGURG), 0);
        assert_eq!(needed_unblocked(false) & bit(SIGURG), 0);
        for s in SYNC_SIGNALS {
            assert_ne!(on & bit(s), 0);
        }
        assert_eq!(on & bit(SIGPIPE), 0);
        assert_eq!(role(SIGSEGV), Role::Fault);
        assert_eq!(role(10), Role::Other);
        assert!(!is_handler_address(1) && is_handler_address(0x401000));
    }
}
