//! Findings: what the analysis concludes, in words a person can act on.

use serde::Serialize;

/// How urgent a finding is. Ordered: `Info < Warning < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; normal programs may show it.
    Info,
    /// Likely a problem.
    Warning,
    /// The program is stuck or about to be.
    Critical,
}

impl Severity {
    /// The lowercase name used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// The pathology a finding names. The snake_case name is stable: JSON consumers and CI match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Goroutines wait on each other (or on nothing) so that none can proceed.
    Deadlock,
    /// Goroutines blocked forever, or piling up where nobody will release them.
    GoroutineLeak,
    /// Many goroutines queue on the same lock.
    LockContention,
    /// Many goroutines pile up on the same channel operation.
    ChannelBlocked,
    /// Goroutines stuck inside cgo calls.
    CgoBlocked,
    /// Goroutines stuck in raw system calls, each holding an OS thread.
    SyscallBlocked,
    /// Goroutines waiting long on network reads or writes.
    NetIoWait,
    /// Far more OS threads than GOMAXPROCS.
    ThreadExplosion,
    /// Runnable goroutines wait behind goroutines that cannot be preempted.
    SchedulerStarvation,
    /// Goroutines locked to an OS thread and blocked.
    LockedThread,
    /// Signal masks or handlers that keep the Go runtime from getting signals it needs.
    SignalConflict,
    /// Resident memory the Go runtime does not manage (C allocations) dominates or grows.
    CMemoryGrowth,
    /// A bounded resource (a connection pool, a semaphore, a per-host connection limit) is all
    /// taken and goroutines queue for it.
    ResourceExhausted,
}

impl FindingKind {
    /// The stable snake_case id.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Deadlock => "deadlock",
            FindingKind::GoroutineLeak => "goroutine_leak",
            FindingKind::LockContention => "lock_contention",
            FindingKind::ChannelBlocked => "channel_blocked",
            FindingKind::CgoBlocked => "cgo_blocked",
            FindingKind::SyscallBlocked => "syscall_blocked",
            FindingKind::NetIoWait => "net_io_wait",
            FindingKind::ThreadExplosion => "thread_explosion",
            FindingKind::SchedulerStarvation => "scheduler_starvation",
            FindingKind::LockedThread => "locked_thread",
            FindingKind::SignalConflict => "signal_conflict",
            FindingKind::CMemoryGrowth => "c_memory_growth",
            FindingKind::ResourceExhausted => "resource_exhausted",
        }
    }

    /// Every kind, in a fixed order.
    pub const ALL: [FindingKind; 13] = [
        FindingKind::Deadlock,
        FindingKind::GoroutineLeak,
        FindingKind::LockContention,
        FindingKind::ChannelBlocked,
        FindingKind::CgoBlocked,
        FindingKind::SyscallBlocked,
        FindingKind::NetIoWait,
        FindingKind::ThreadExplosion,
        FindingKind::SchedulerStarvation,
        FindingKind::LockedThread,
        FindingKind::SignalConflict,
        FindingKind::CMemoryGrowth,
        FindingKind::ResourceExhausted,
    ];
}

/// A source location in the user's code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// Fully qualified function name.
    pub function: String,
    /// Source file.
    pub file: String,
    /// Line number.
    pub line: u32,
}

/// One diagnosis.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The pathology.
    pub kind: FindingKind,
    /// How urgent.
    pub severity: Severity,
    /// One line: what is wrong.
    pub title: String,
    /// A few plain sentences: why this is a problem.
    pub explanation: String,
    /// How many goroutines are involved (aggregated entries counted by their count).
    pub goroutine_count: u64,
    /// The ids of the goroutines involved (empty for aggregated sources that have no ids).
    pub goroutines: Vec<u64>,
    /// OS thread ids involved, for findings about threads (live sources only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub threads: Vec<i32>,
    /// The root-cause frame in the user's code, when there is one.
    pub location: Option<Location>,
    /// Facts that support the finding, one per line.
    pub evidence: Vec<String>,
    /// What to do about it.
    pub advice: String,
    /// The verdict is proved from the process's memory (a reachability proof), not inferred.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub proved: bool,
}

impl Finding {
    /// Marks the verdict as proved from memory.
    pub fn proved(mut self) -> Self {
        self.proved = true;
        self
    }

    /// Names the OS threads involved (sorted, without repeats).
    pub fn with_threads(mut self, tids: impl IntoIterator<Item = i32>) -> Self {
        self.threads.extend(tids);
        self.threads.sort_unstable();
        self.threads.dedup();
        self
    }
}
