//! Read-only access to a target process — the only crate of gostall that touches the operating
//! system for one.
//!
//! Two small traits describe a target, so that a live process and (later) a core file serve the same
//! readers: [`Memory`] (one required `read`, helpers on top) and [`Threads`] (the threads with their
//! kernel-side state, and the registers of a stopped thread), plus [`Objects`] (the mapped
//! executable and libraries and their bytes, for native unwinding and symbols). [`LiveProcess`]
//! implements all three for a running Linux process; [`FakeMemory`] serves tests.
//!
//! [`Pause`] stops every thread of a live process for a bounded time with `PTRACE_SEIZE` +
//! `PTRACE_INTERRUPT`, and always resumes it: on [`Pause::resume`], on drop, on every error path,
//! when the cap passes, on SIGINT/SIGTERM/SIGHUP, and — by the kernel — when gostall dies.
//!
//! Nothing here ever writes to the target's memory or injects code: memory is read with
//! `process_vm_readv(2)` or `pread(2)` on a read-only `/proc/PID/mem`, and the only ptrace requests
//! made are `SEIZE`, `INTERRUPT`, `GETREGS` and `DETACH`.
#![deny(missing_docs)]

mod access;
pub mod corefile;
pub mod corewrite;
mod error;
pub mod fds;
mod live;
mod memory;
pub mod objects;
mod pause;
pub mod procfs;
mod regs;
pub mod sigframe;
mod signals;
pub mod smaps;
pub mod syscalls;

pub use access::{AccessContext, AccessError, DenyReason, CAP_SYS_PTRACE_BIT};
pub use corefile::{CoreError, CoreFile, CoreOptions, CoreSignal, CoreWriter};
pub use error::{MemError, PauseEnd, TargetError};
pub use fds::{describe_fds, FdDesc, FdKind, FdTable};
pub use live::{Activity, LiveProcess, ReadMethod};
pub use memory::{FakeMemory, Memory, ReadReq, MAX_READ_VEC};
pub use pause::Pause;
pub use procfs::{Mapping, Perms, SyscallInfo, ThreadInfo};
pub use regs::Regs;
pub use smaps::{MappingUsage, Rollup, Smaps};
pub use syscalls::Decoded;

/// The threads of a target.
pub trait Threads {
    /// Every thread (task) of the target. Threads that exit while being read are left out.
    ///
    /// # Errors
    /// [`TargetError::ProcessExited`] when the process is gone.
    fn threads(&self) -> Result<Vec<ThreadInfo>, TargetError>;

    /// The user-mode registers of thread `tid`. For a live process only while it is paused (ptrace
    /// `GETREGS` needs a stopped tracee); a core file has them always.
    ///
    /// # Errors
    /// [`TargetError::NotPaused`] for a live process that is not paused, and the errors of
    /// [`Pause::regs`].
    fn regs(&self, tid: i32) -> Result<Regs, TargetError>;
}

/// The objects (executable, shared libraries, vDSO) mapped into a target, for native unwinding and
/// symbols. A core file provides the same from its `NT_FILE` note and the files it names.
pub trait Objects {
    /// The target's memory mappings, in ascending address order.
    ///
    /// # Errors
    /// [`TargetError::ProcessExited`] when the process is gone, [`TargetError::Proc`] when the
    /// mappings are not readable.
    fn mappings(&self) -> Result<Vec<Mapping>, TargetError>;

    /// The whole contents of the object that mapping `m` maps (an ELF file), as the target sees it.
    ///
    /// # Errors
    /// [`TargetError::Proc`] when the mapping is not backed by an object or the file cannot be
    /// read; [`TargetError::Mem`] for the vDSO's memory.
    fn object_bytes(&self, m: &Mapping) -> Result<Vec<u8>, TargetError>;
}

/// The value of `kernel.yama.ptrace_scope`: 0 classic ptrace permissions, 1 only descendants (unless
/// `CAP_SYS_PTRACE`), 2 only with `CAP_SYS_PTRACE`, 3 no attaching at all. `None` when the kernel
/// has no Yama module (the file is absent): then only the classic checks apply.
pub fn ptrace_scope() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .ok()?
        .trim()
        .parse()
        .ok()
}
