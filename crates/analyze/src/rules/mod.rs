//! One module per pathology. Each rule's doc comment says what it flags and what it leaves alone.

pub mod c_memory_growth;
pub mod cgo_blocked;
pub mod channel_blocked;
pub mod deadlock;
pub mod goroutine_leak;
pub mod lock_contention;
pub mod locked_thread;
pub mod net_io_wait;
pub mod resource_exhausted;
pub mod scheduler_starvation;
pub mod signal_conflict;
pub mod syscall_blocked;
pub mod thread_explosion;
