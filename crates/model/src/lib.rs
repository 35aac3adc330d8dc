//! The version-independent snapshot of a Go program's concurrency state.
//!
//! Every source (goroutine dumps, pprof profiles, and later live processes and core files) fills a
//! [`Snapshot`]; every analysis rule and report reads only this crate. Strings, frames and stacks are
//! interned ([`Tables`]) so that a 200k-goroutine program costs a few bytes per goroutine.
#![deny(missing_docs)]

mod finding;
mod tables;
mod waits;

pub use finding::{Finding, FindingKind, Location, Severity};
pub use tables::{Frame, FrameId, FrameRef, StackId, Sym, Tables};
pub use waits::{
    LibState, ObjectHome, ObjectKind, ObjectState, ProofFacts, Reach, Reacher, ScanMethod,
    SyncObject, WaitEdge, WaitOp, WaitSince,
};

use serde::Serialize;

/// Everything known about one Go process at one moment, possibly merged from several inputs.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The inputs this snapshot was built from, in the order given.
    pub sources: Vec<SourceInfo>,
    /// Process-wide facts, when a source knows them.
    pub process: ProcessFacts,
    /// Goroutines (or goroutine groups, for aggregated sources: see [`Goroutine::count`]).
    pub goroutines: Vec<Goroutine>,
    /// Contention samples from mutex and block profiles.
    pub contention: Vec<ContentionSample>,
    /// Interned strings, frames and stacks referenced by the fields above.
    pub tables: Tables,
    /// OS threads, when read from a live process, sorted by thread id.
    pub threads: Vec<ThreadFacts>,
    /// The scheduler's Ps, when read from a live process.
    pub procs: Vec<ProcFacts>,
    /// Global scheduler state, when read from a live process.
    pub scheduler: Option<SchedFacts>,
    /// How the snapshot was taken from a live process.
    pub live: Option<LiveMeta>,
    /// How the snapshot was read from a core file.
    pub core: Option<CoreMeta>,
    /// Process-wide signal dispositions and the Go runtime's own signal records (live only).
    pub signals: Option<SignalFacts>,
    /// Resident memory against what the Go runtime manages (live only).
    pub memory: Option<MemoryFacts>,
    /// The synchronisation objects blocked goroutines wait on (live only).
    pub objects: Vec<SyncObject>,
    /// The wait-for edges: goroutine → object in [`Snapshot::objects`], sorted by goroutine.
    pub waits: Vec<WaitEdge>,
    /// The reachability proof over the live heap, when it was made.
    pub proof: Option<ProofFacts>,
    /// Live: the state of library resources goroutines wait for (pools, semaphores).
    pub lib_states: Vec<LibState>,
}

/// One OS thread of a live process, joined to its M when it has one.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ThreadFacts {
    /// Kernel thread id.
    pub tid: i32,
    /// Thread name (`comm`).
    pub name: String,
    /// Kernel state letter: R running, S sleeping, D uninterruptible, T/t stopped, Z zombie.
    pub state: String,
    /// The Go runtime's M id, or `None` for a thread Go did not create (C threads).
    pub m: Option<i64>,
    /// Goroutine the M is running (`m.curg`).
    pub goroutine: Option<u64>,
    /// Goroutine locked to this M (`m.lockedg`).
    pub locked_goroutine: Option<u64>,
    /// P held by the M.
    pub p: Option<i32>,
    /// The M is spinning looking for work.
    pub spinning: bool,
    /// The M is running C code: in a cgo call, or an extra M whose C thread is back in C.
    pub in_cgo: bool,
    /// Current system call number and arguments (`/proc/…/syscall`), when blocked in one.
    pub syscall: Option<SyscallFacts>,
    /// Kernel wait channel.
    pub wchan: Option<String>,
    /// Kernel stack (`/proc/…/stack`, readable by root only), innermost first.
    pub kernel_stack: Vec<String>,
    /// CPU time used (user + system), nanoseconds.
    pub cpu_ns: u64,
    /// Voluntary and involuntary context switches.
    pub ctx_switches: (u64, u64),
    /// Who created the thread and what it is doing for Go.
    pub origin: ThreadOrigin,
    /// Native frames, innermost first, unwound from the thread's registers with each mapped
    /// object's CFI; empty when the thread was not in native code or could not be unwound.
    pub native_stack: Vec<NativeFrame>,
    /// Why `native_stack` is empty or cut short, when it is.
    pub native_note: Option<String>,
    /// Signals blocked in this thread (`SigBlk`), bit `n-1` for signal `n`. When the live reader
    /// took two samples, only the signals blocked at both (Go blocks everything for moments).
    #[serde(serialize_with = "ser_mask")]
    pub sig_blocked: u64,
    /// Signals pending for this thread alone (`SigPnd`); with two samples, pending at both.
    #[serde(serialize_with = "ser_mask")]
    pub sig_pending: u64,
    /// For a thread waiting on a futex whose word looks like a glibc `pthread_mutex_t`, the thread
    /// that owns that mutex (its `__owner` field, or the owner bits of a priority-inheritance
    /// futex), when that is a thread of the process.
    pub futex_owner: Option<i32>,
    /// A preemption signal was sent to the M and its handler has not yet acknowledged it
    /// (`m.signalPending`), in both scheduler samples. Never set for an M bound to a C thread:
    /// Go's handler leaves a request pending by design when the signal lands while that thread
    /// is in C.
    pub preempt_signal_stuck: bool,
}

/// Who created an OS thread, as far as the Go runtime's records tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadOrigin {
    /// Created by the Go runtime for an M.
    #[default]
    Go,
    /// Created by C code and now bound to an extra M because it called into Go (`m.isextra`).
    CCallback,
    /// Not known to the Go runtime: created by C code (or a library) and never called into Go.
    Foreign,
}

/// One native (non-Go) frame of a thread's stack.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NativeFrame {
    /// Program counter (return address minus one for caller frames).
    pub pc: u64,
    /// Function symbol, when the object's symbol tables name it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Offset of `pc` from the function's start.
    pub offset: u64,
    /// Path of the mapped object the pc belongs to.
    pub object: String,
    /// Source file, from the object's DWARF line info when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Source line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

/// Process-wide signal state of a live process and what the Go runtime recorded about it.
///
/// With two samples, a signal counts as ignored, pending or Go-handled only when it was so at
/// both, and as caught when it was caught at either (a disposition that changed in between is not
/// reported as lost).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SignalFacts {
    /// Signals ignored process-wide (`SigIgn`), bit `n-1` for signal `n`.
    #[serde(serialize_with = "ser_mask")]
    pub ignored: u64,
    /// Signals with a handler installed (`SigCgt`).
    #[serde(serialize_with = "ser_mask")]
    pub caught: u64,
    /// Signals pending for the whole process (`ShdPnd`).
    #[serde(serialize_with = "ser_mask")]
    pub shared_pending: u64,
    /// Signals the Go runtime installed its own handler for (`runtime.handlingSig`).
    #[serde(serialize_with = "ser_mask")]
    pub go_handled: u64,
    /// Handlers that were installed before the Go runtime and that it forwards to
    /// (`runtime.fwdSig`): signal number, handler address and its symbol when known.
    #[serde(serialize_with = "ser_forwarded")]
    pub forwarded: Vec<(u32, u64, Option<String>)>,
    /// Asynchronous preemption is off (`GODEBUG=asyncpreemptoff=1`): Go sends no SIGURG.
    pub async_preempt_off: bool,
    /// The CPU profiler is running now (`runtime.prof.hz`), samples per second; 0 when off.
    pub cpu_profile_hz: u32,
    /// The program can start the CPU profiler (the profiler's entry point is linked in, e.g. by
    /// `net/http/pprof` or `runtime/pprof`).
    pub cpu_profiler_linked: bool,
    /// Whether the process-wide dispositions (`ignored`, `caught`, `shared_pending`) were read:
    /// they come from `/proc` (live reads, cores `gostall capture` wrote). A core gdb or the
    /// kernel wrote holds only the runtime's records and each thread's masks; there the
    /// dispositions read 0 and say nothing.
    pub dispositions_known: bool,
}

/// Signal masks as JSON strings in the kernel's notation (`"0x0000000000400000"`): 64-bit
/// numbers do not survive JSON readers that use doubles.
fn ser_mask<S: serde::Serializer>(mask: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{mask:#018x}"))
}

fn ser_forwarded<S: serde::Serializer>(
    v: &[(u32, u64, Option<String>)],
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    #[derive(Serialize)]
    struct Fwd<'a> {
        signal: u32,
        handler: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        symbol: Option<&'a str>,
    }
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for (signal, addr, sym) in v {
        seq.serialize_element(&Fwd {
            signal: *signal,
            handler: format!("{addr:#x}"),
            symbol: sym.as_deref(),
        })?;
    }
    seq.end()
}

/// Resident memory of a live process split into what the Go runtime manages and the rest.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct MemoryFacts {
    /// Resident set size (`smaps_rollup` Rss), bytes.
    pub rss: u64,
    /// Resident anonymous memory, bytes.
    pub anon: u64,
    /// Resident file-backed memory (binaries, libraries, mapped files), bytes.
    pub file: u64,
    /// Resident memory by mapping kind (`go heap`, `[heap]`, `thread stacks`, `anon`, `file`…), bytes.
    pub by_kind: Vec<(String, u64)>,
    /// Memory the Go runtime holds from the OS and has not returned (heap, stacks, spans,
    /// caches, GC metadata, other runtime structures), bytes.
    pub go_runtime: u64,
    /// The Go runtime's own breakdown of `go_runtime`: (stat name, bytes).
    pub go_breakdown: Vec<(String, u64)>,
    /// Heap memory the Go runtime has returned to the OS (`heapReleased`): mapped, not resident,
    /// not part of `go_runtime`, bytes.
    pub go_released: u64,
    /// Estimate of resident memory that the Go runtime does not manage (C allocations,
    /// foreign thread stacks…), bytes.
    pub non_go_estimate: u64,
    /// Samples taken over time (`--samples`): (milliseconds since the first, rss, go_runtime,
    /// non_go_estimate).
    pub samples: Vec<(u64, u64, u64, u64)>,
    /// The C functions the program calls through cgo, from the binary's generated trampolines
    /// (`main._Cfunc_tc_render` → `C.tc_render`): where C allocations can come from.
    pub cgo_functions: Vec<String>,
}

/// A thread's current system call.
#[derive(Debug, Clone, Serialize)]
pub struct SyscallFacts {
    /// x86-64 syscall number.
    pub nr: i64,
    /// Its name, when known.
    pub name: Option<String>,
    /// Arguments.
    pub args: [u64; 6],
    /// The call with its arguments decoded, descriptors resolved (`read(fd 3 → pipe:[123], …)`).
    pub text: Option<String>,
}

/// One P (processor) of the scheduler.
#[derive(Debug, Clone, Serialize)]
pub struct ProcFacts {
    /// P id.
    pub id: i32,
    /// `idle`, `running`, `syscall`, `gcstop`, `dead`.
    pub status: String,
    /// Scheduler ticks (first sample).
    pub schedtick: u32,
    /// Scheduler ticks at the second sample, when two were taken.
    pub schedtick_later: Option<u32>,
    /// System call ticks.
    pub syscalltick: u32,
    /// M holding it.
    pub m: Option<i64>,
    /// Goroutine running on it (through its M).
    pub running: Option<u64>,
    /// Goroutines in its local run queue (including `runnext`).
    pub runq_len: u32,
}

/// Global scheduler state.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SchedFacts {
    /// GOMAXPROCS.
    pub gomaxprocs: u32,
    /// Goroutines in the global run queue.
    pub global_runq: u32,
    /// Idle Ps.
    pub idle_ps: u32,
    /// Spinning Ms.
    pub spinning_ms: u32,
    /// Idle Ms.
    pub idle_ms: u32,
    /// The GC is waiting to stop the world.
    pub gc_waiting: bool,
}

/// How a snapshot was read from a core file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CoreMeta {
    /// The core file.
    pub path: String,
    /// Who wrote it: `kernel` (a crash), `gdb` (`gcore`) or `gostall` (`gostall capture`).
    pub writer: String,
    /// The process it was taken from.
    pub pid: i32,
    /// The executable read with it (`--binary`, or where the core says it was).
    pub exe: String,
    /// Go version of the binary.
    pub go_version: String,
    /// The signal the process died on (crash cores), e.g. `SIGABRT (sent by the process itself)`.
    pub signal: Option<String>,
    /// When the core was taken (Unix seconds), when the core says (cores gostall writes).
    pub taken_unix: Option<u64>,
    /// How long the process was stopped to write it, microseconds (cores gostall writes).
    pub paused_us: Option<u64>,
    /// Wall time to read it, in microseconds.
    pub read_us: u64,
    /// What could not be read, and why.
    pub notes: Vec<String>,
}

/// How a live snapshot was taken.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LiveMeta {
    /// Process id (as seen by gostall).
    pub pid: i32,
    /// Process id inside its own PID namespace, when different.
    pub ns_pid: Option<i32>,
    /// Executable path.
    pub exe: String,
    /// Go version of the binary.
    pub go_version: String,
    /// How long the target was stopped, when it was (`--pause`), in microseconds.
    pub paused_us: Option<u64>,
    /// Wall time to read everything, in microseconds.
    pub read_us: u64,
    /// Goroutines re-read because they changed while being read.
    pub reread: u64,
    /// Goroutines that could not be read consistently and are marked so.
    pub inconsistent: u64,
    /// Microseconds between the two reads of every goroutine's wait; a goroutine in the same
    /// wait at both has waited at least this long (`WaitSince::Observed`), and one whose wait is
    /// neither that nor stamped by the runtime was caught in a wait that did not last. `None`:
    /// no second read.
    pub second_look_us: Option<u64>,
    /// Notes about what could not be read.
    pub notes: Vec<String>,
}

/// What kind of artifact an input was, detected from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A text goroutine dump: SIGQUIT/crash output, panic, `runtime.Stack`, `debug=2`.
    GoroutineDump,
    /// The counted `debug=1` form of the goroutine profile.
    GoroutineDebug1,
    /// A pprof protobuf goroutine profile.
    PprofGoroutine,
    /// A pprof protobuf mutex contention profile.
    PprofMutex,
    /// A pprof protobuf block profile.
    PprofBlock,
    /// A pprof protobuf threadcreate profile.
    PprofThreadcreate,
    /// Another pprof protobuf profile (heap, cpu, ...): accepted, not used for diagnosis.
    PprofOther,
    /// A live process, read from its memory.
    LiveProcess,
    /// An ELF core file (a crash, `gcore`, `gostall capture`), read like a live process.
    CoreFile,
}

/// One input and what was (and was not) understood of it.
#[derive(Debug, Clone, Serialize)]
pub struct SourceInfo {
    /// File name as given (`-` for standard input).
    pub name: String,
    /// Detected kind.
    pub kind: SourceKind,
    /// Goroutines (or sample groups) read from it.
    pub goroutines: usize,
    /// Parts that could not be parsed, with the line or offset where they start.
    pub skipped: Vec<String>,
    /// How many more parts were skipped beyond those listed (lists are bounded).
    pub skipped_more: usize,
}

/// Process-wide facts. `None` means no source told us.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ProcessFacts {
    /// Go version, when a source states it.
    pub go_version: Option<String>,
    /// The main module's path (from the binary's build information, live): the application's
    /// own code, where root causes are located.
    pub main_module: Option<String>,
    /// GOMAXPROCS, when known.
    pub gomaxprocs: Option<u32>,
    /// Number of OS threads the runtime created (threadcreate profile total).
    pub threads_created: Option<u64>,
    /// Highest M id seen in goroutine headers (`m=N`), a lower bound of the thread count.
    pub max_m_id: Option<u64>,
    /// A fatal runtime error the dump starts with, such as `all goroutines are asleep - deadlock!`.
    pub fatal_error: Option<String>,
    /// A panic message, when the dump is a panic.
    pub panic: Option<String>,
    /// The signal that produced the dump (`SIGQUIT: quit`).
    pub signal: Option<String>,
    /// Total contention delay from the mutex profile, in nanoseconds.
    pub mutex_delay_ns: Option<u64>,
    /// Total blocking delay from the block profile, in nanoseconds.
    pub block_delay_ns: Option<u64>,
}

/// Coarse scheduler state of a goroutine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum GoState {
    /// On a CPU right now.
    Running,
    /// Ready to run, waiting for a P.
    Runnable,
    /// Parked, see the wait reason.
    Waiting,
    /// In a system call or cgo call, holding an OS thread.
    Syscall,
    /// Just created, not yet started.
    Idle,
    /// Finished, kept for reuse.
    Dead,
    /// Stopped by the runtime (GC, preemption).
    Preempted,
    /// The source did not say and the stack does not tell.
    Unknown,
}

/// Why a goroutine is parked, normalised across Go versions (Go ≤ 1.23 says `semacquire` where later
/// versions say `sync.WaitGroup.Wait`; the stack decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum WaitReason {
    /// `chan receive`.
    ChanReceive,
    /// `chan receive (nil chan)`: can never complete.
    ChanReceiveNil,
    /// `chan send`.
    ChanSend,
    /// `chan send (nil chan)`: can never complete.
    ChanSendNil,
    /// `select` with cases.
    Select,
    /// `select {}` (no cases): can never complete.
    SelectNoCases,
    /// `sync.Mutex.Lock`.
    MutexLock,
    /// `sync.RWMutex.Lock`.
    RWMutexLock,
    /// `sync.RWMutex.RLock`.
    RWMutexRLock,
    /// `sync.WaitGroup.Wait`.
    WaitGroupWait,
    /// `sync.Cond.Wait`.
    CondWait,
    /// A semaphore wait the stack does not attribute further.
    Semacquire,
    /// Network or file descriptor readiness (`IO wait`).
    IoWait,
    /// `time.Sleep`.
    Sleep,
    /// In a system call.
    Syscall,
    /// In a cgo call.
    Cgo,
    /// The runtime's own housekeeping (GC workers, finalizers, scavenger, timers, trace readers).
    Runtime,
    /// Waiting for a signal (`os/signal`).
    Signal,
    /// Waiting inside a `testing/synctest` bubble.
    Synctest,
    /// A reason not in this list; the raw text is kept on the goroutine.
    Other,
}

impl WaitReason {
    /// Goroutines parked on a Go synchronisation primitive that only another goroutine can release.
    pub fn is_sync_block(self) -> bool {
        use WaitReason::*;
        matches!(
            self,
            ChanReceive
                | ChanReceiveNil
                | ChanSend
                | ChanSendNil
                | Select
                | SelectNoCases
                | MutexLock
                | RWMutexLock
                | RWMutexRLock
                | WaitGroupWait
                | CondWait
                | Semacquire
        )
    }

    /// A lock acquisition (mutex or read-write mutex).
    pub fn is_lock(self) -> bool {
        matches!(
            self,
            WaitReason::MutexLock | WaitReason::RWMutexLock | WaitReason::RWMutexRLock
        )
    }

    /// Waits that can never complete whatever other goroutines do.
    pub fn is_forever(self) -> bool {
        matches!(
            self,
            WaitReason::ChanReceiveNil | WaitReason::ChanSendNil | WaitReason::SelectNoCases
        )
    }

    /// A short human name, as Go prints it in newer versions.
    pub fn as_str(self) -> &'static str {
        use WaitReason::*;
        match self {
            ChanReceive => "chan receive",
            ChanReceiveNil => "chan receive (nil chan)",
            ChanSend => "chan send",
            ChanSendNil => "chan send (nil chan)",
            Select => "select",
            SelectNoCases => "select (no cases)",
            MutexLock => "sync.Mutex.Lock",
            RWMutexLock => "sync.RWMutex.Lock",
            RWMutexRLock => "sync.RWMutex.RLock",
            WaitGroupWait => "sync.WaitGroup.Wait",
            CondWait => "sync.Cond.Wait",
            Semacquire => "semacquire",
            IoWait => "IO wait",
            Sleep => "sleep",
            Syscall => "syscall",
            Cgo => "cgo call",
            Runtime => "runtime",
            Signal => "signal wait",
            Synctest => "synctest",
            Other => "other",
        }
    }
}

/// One goroutine, or for aggregated sources (`debug=1`, pprof) a group of `count` identical ones.
#[derive(Debug, Clone)]
pub struct Goroutine {
    /// Goroutine id (`goid`); 0 when the source does not say (aggregated sources).
    pub id: u64,
    /// How many goroutines this entry stands for (1 for dumps that list each goroutine).
    pub count: u32,
    /// Scheduler state.
    pub state: GoState,
    /// Normalised wait reason, for waiting goroutines (and syscall/cgo).
    pub wait_reason: Option<WaitReason>,
    /// The status text exactly as the source printed it (e.g. `semacquire`), interned.
    pub raw_status: Option<Sym>,
    /// `[N minutes]`: how long it has been blocked, when printed.
    pub wait_minutes: Option<u32>,
    /// `locked to thread`.
    pub locked_to_thread: bool,
    /// The stack was not available (`goroutine running on other thread; stack unavailable`).
    pub stack_unavailable: bool,
    /// Status flags printed in the header: `scan`, `durable`, `leaked`.
    pub flags: GoFlags,
    /// `synctest bubble N`.
    pub synctest_bubble: Option<u64>,
    /// Call stack, innermost frame first.
    pub stack: StackId,
    /// Frames the runtime left out (`...N frames elided...`); `u32::MAX` when it did not say how many.
    pub elided_frames: u32,
    /// `created by F in goroutine N`.
    pub created_by: Option<CreatedBy>,
    /// `[originating from goroutine N]`.
    pub originating_from: Option<u64>,
    /// pprof labels.
    pub labels: Vec<(Sym, Sym)>,
    /// M (thread) id from a crash header `m=N`, when it names one.
    pub m: Option<u64>,
    /// Live only: how long it has been blocked, in nanoseconds — at least since the GC cycle that
    /// first saw it blocked (the runtime stamps `waitsince` only then).
    pub wait_ns: Option<u64>,
    /// Live only: address of the channel (or semaphore) it waits on, so waiters on the same object
    /// group together.
    pub waiting_on: Option<u64>,
    /// Live only: OS thread running it, or locked to it.
    pub thread: Option<i32>,
    /// Live only: the descriptor it waits on in the netpoller.
    pub net: Option<Box<NetWait>>,
    /// How `wait_ns` (or `wait_minutes`) was obtained.
    pub wait_since: WaitSince,
    /// Index into [`Snapshot::sources`].
    pub source: u16,
}

impl Goroutine {
    /// A goroutine (or, for aggregated sources, `count` identical ones) with everything else
    /// unknown; sources set what they know.
    pub fn new(id: u64, count: u32, stack: StackId, source: u16) -> Self {
        Goroutine {
            id,
            count,
            state: GoState::Unknown,
            wait_reason: None,
            raw_status: None,
            wait_minutes: None,
            locked_to_thread: false,
            stack_unavailable: false,
            flags: GoFlags::default(),
            synctest_bubble: None,
            stack,
            elided_frames: 0,
            created_by: None,
            originating_from: None,
            labels: Vec::new(),
            m: None,
            source,
            wait_ns: None,
            waiting_on: None,
            thread: None,
            net: None,
            wait_since: WaitSince::Unknown,
        }
    }
}

/// Header flags of a goroutine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GoFlags {
    /// `(scan)`: the GC was scanning its stack.
    pub scan: bool,
    /// `(durable)`.
    pub durable: bool,
    /// `(leaked)`: the runtime's own leak detector flagged it.
    pub leaked: bool,
}

/// Where a goroutine was started.
#[derive(Debug, Clone, Copy)]
pub struct CreatedBy {
    /// The `go` statement's frame (function, file, line).
    pub frame: FrameId,
    /// The creating goroutine, when printed (`in goroutine N`, Go ≥ 1.21).
    pub goroutine: Option<u64>,
}

/// A goroutine parked in the netpoller, and the descriptor it waits for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct NetWait {
    /// File descriptor.
    pub fd: i32,
    /// `read` or `write`.
    pub op: String,
    /// Time left before the deadline of that direction, in nanoseconds; `None` when no deadline is
    /// set (the wait has no end), negative when it has already passed.
    pub deadline_in_ns: Option<i64>,
    /// What the descriptor is: `tcp`, `tcp6`, `udp`, `unix`, `pipe`, a file path, ...
    pub kind: String,
    /// Local address, for sockets.
    pub local: Option<String>,
    /// Peer address, for connected sockets.
    pub peer: Option<String>,
    /// TCP state (`ESTABLISHED`, `CLOSE_WAIT`, ...), for TCP sockets.
    pub state: Option<String>,
    /// The local port is one this process listens on: a server-side connection.
    pub accepted: bool,
}

/// What a mutex or block profile sample records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentionKind {
    /// Mutex profile: delay caused by lock holders.
    Mutex,
    /// Block profile: time goroutines spent blocked on sync primitives and channels.
    Block,
}

/// One stack of a mutex or block profile with its totals.
#[derive(Debug, Clone)]
pub struct ContentionSample {
    /// Which profile.
    pub kind: ContentionKind,
    /// Stack, innermost first.
    pub stack: StackId,
    /// Number of contention events.
    pub count: u64,
    /// Total delay in nanoseconds.
    pub delay_ns: u64,
}

impl Snapshot {
    /// Live, a goroutine in a cgo call: the C frames of the thread running the call, innermost
    /// first; they sit above `runtime.cgocall` in one continuous stack. Empty otherwise.
    pub fn native_stack_of(&self, g: &Goroutine) -> &[NativeFrame] {
        let Some(tid) = g.thread else {
            return &[];
        };
        match self.threads.binary_search_by_key(&tid, |t| t.tid) {
            Ok(i) if self.threads[i].in_cgo && self.threads[i].goroutine == Some(g.id) => {
                &self.threads[i].native_stack
            }
            _ => &[],
        }
    }

    /// The wait-for edges of goroutine `id` (every case of a `select`, or one object).
    pub fn waits_of(&self, id: u64) -> &[WaitEdge] {
        let lo = self.waits.partition_point(|w| w.goroutine < id);
        let hi = self.waits.partition_point(|w| w.goroutine <= id);
        &self.waits[lo..hi]
    }

    /// Whether the reachability proof found goroutine `id` leaked.
    pub fn proven_leaked(&self, id: u64) -> bool {
        self.proof
            .as_ref()
            .is_some_and(|p| p.leaked.binary_search(&id).is_ok())
    }

    /// Total goroutines, counting aggregated entries by their count.
    pub fn total_goroutines(&self) -> u64 {
        self.goroutines.iter().map(|g| u64::from(g.count)).sum()
    }

    /// Frames of a goroutine's stack, innermost first.
    pub fn frames(&self, g: &Goroutine) -> impl ExactSizeIterator<Item = FrameRef<'_>> + Clone {
        self.tables.stack_frames(g.stack)
    }
}
