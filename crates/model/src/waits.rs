//! What blocked goroutines wait on, who can reach it and who holds it: the facts of the wait-for
//! graph. Live reads fill them from the runtime's own records (sudogs, the semaphore table, the
//! heap); rules read them without knowing where they came from.

use serde::{Serialize, Serializer};

/// Addresses are written as hex strings, like `waiting_on`.
fn hex<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:#x}"))
}

/// The kind of synchronisation object a goroutine waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// A channel (`runtime.hchan`).
    Channel,
    /// A `sync.Mutex`.
    Mutex,
    /// A `sync.RWMutex`.
    #[serde(rename = "rw_mutex")]
    RWMutex,
    /// A `sync.WaitGroup`.
    WaitGroup,
    /// A `sync.Cond` (its `notifyList`).
    Cond,
    /// A semaphore the stack does not attribute to one of the above.
    Semaphore,
}

impl ObjectKind {
    /// A short human name (`channel`, `sync.Mutex`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Channel => "channel",
            ObjectKind::Mutex => "sync.Mutex",
            ObjectKind::RWMutex => "sync.RWMutex",
            ObjectKind::WaitGroup => "sync.WaitGroup",
            ObjectKind::Cond => "sync.Cond",
            ObjectKind::Semaphore => "semaphore",
        }
    }
}

/// What a waiter wants from the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitOp {
    /// A channel send.
    Send,
    /// A channel receive.
    Receive,
    /// One case of a `select` (the goroutine waits on every case at once).
    Select,
    /// `Mutex.Lock` or `RWMutex.Lock`.
    Lock,
    /// `RWMutex.RLock`.
    #[serde(rename = "rlock")]
    RLock,
    /// `WaitGroup.Wait` or `Cond.Wait`.
    Wait,
    /// A semaphore acquisition.
    Acquire,
}

/// Where an object lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "in")]
pub enum ObjectHome {
    /// Inside a heap object.
    Heap {
        /// Start of the heap object that contains it.
        #[serde(serialize_with = "hex")]
        base: u64,
        /// Size of that object (its size class).
        size: u64,
        /// The heap object's type, when the heap's metadata names it.
        #[serde(skip_serializing_if = "Option::is_none")]
        type_name: Option<String>,
    },
    /// In a global variable.
    Global {
        /// The variable and offset (`main.mu`, `main.cfg+16`), when symbols name it.
        #[serde(skip_serializing_if = "Option::is_none")]
        symbol: Option<String>,
    },
    /// On a goroutine's stack.
    Stack {
        /// The goroutine whose stack holds it.
        goroutine: u64,
    },
    /// Not known (no heap read, or memory the runtime does not manage).
    Unknown,
}

/// What an object's own fields say, where they could be read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObjectState {
    /// Channels: buffer capacity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u64>,
    /// Channels: elements buffered now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
    /// Channels: closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed: Option<bool>,
    /// Mutexes (and an RWMutex's writer side): the lock bit is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked: Option<bool>,
    /// RWMutexes: readers holding the lock now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readers: Option<i64>,
    /// WaitGroups: the counter (Add minus Done).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counter: Option<i64>,
}

/// Whether anything that can still run can reach an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "reach")]
pub enum Reach {
    /// Not determined (no heap read, or the proof could not be made).
    Unknown,
    /// Reachable, so a goroutine that can run may still complete the operation.
    Reachable {
        /// The first root the mark found it from.
        via: Reacher,
    },
    /// Proved unreachable from every goroutine that can run, every global and every finalizer:
    /// nobody can ever complete the operation.
    Unreachable,
}

/// A root of the reachability mark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "root")]
pub enum Reacher {
    /// The stack of a goroutine that can run (or one that became able to, in the fixed point)
    /// points straight at it.
    Goroutine {
        /// Its id.
        id: u64,
    },
    /// The stacks of goroutines that can run reach it through the heap.
    Goroutines,
    /// A global variable.
    Global {
        /// Its symbol and offset, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        symbol: Option<String>,
    },
    /// A finalizer or cleanup the runtime keeps.
    Finalizer,
    /// The object is not in the Go heap (a global or a stack): always reachable, as Go's own
    /// detector treats it.
    NotInHeap,
}

impl std::fmt::Display for Reacher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reacher::Goroutine { id } => write!(f, "goroutine {id}'s stack"),
            Reacher::Goroutines => f.write_str("the stacks of running goroutines"),
            Reacher::Global { symbol: Some(s) } => write!(f, "global {s}"),
            Reacher::Global { symbol: None } => f.write_str("a global variable"),
            Reacher::Finalizer => f.write_str("a finalizer"),
            Reacher::NotInHeap => f.write_str("outside the heap"),
        }
    }
}

/// A synchronisation object some goroutine waits on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncObject {
    /// Address: the channel, or the `sync` value (mutex, WaitGroup, the Cond's notify list);
    /// for a bare semaphore, its address.
    #[serde(serialize_with = "hex")]
    pub addr: u64,
    /// What it is.
    pub kind: ObjectKind,
    /// Where it lives.
    pub home: ObjectHome,
    /// Its own state.
    pub state: ObjectState,
    /// Whether anything that can run reaches it.
    pub reach: Reach,
    /// Goroutines that likely hold it (locks): they reference it from their live frames and do
    /// not wait for it. Ascending.
    pub holders: Vec<u64>,
    /// The holders are certain: each has a pending `defer Unlock` of this lock (read from its
    /// frame), rather than merely pointing at it.
    pub holders_deferred: bool,
    /// Goroutines (other than its waiters) whose live frames point at it or at the object that
    /// contains it: who could complete the operation. Ascending, bounded.
    pub referrers: Vec<u64>,
}

/// One edge of the wait-for graph: a goroutine waits on an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WaitEdge {
    /// The waiting goroutine.
    pub goroutine: u64,
    /// Index into [`crate::Snapshot::objects`].
    pub object: u32,
    /// What it wants.
    pub op: WaitOp,
}

/// How memory was scanned for pointers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanMethod {
    /// From the runtime's own pointer metadata (heap bitmaps, type information, stack maps).
    Precise,
    /// Every aligned word that looks like a pointer counts as one: may keep garbage alive, so it
    /// can miss a leak but never invents one.
    Conservative,
    /// Precise where the metadata could be read, conservative elsewhere.
    Mixed,
}

/// The reachability proof over a live heap: Go's leak-detection fixed point, from outside.
#[derive(Debug, Clone, Serialize)]
pub struct ProofFacts {
    /// Goroutines proved leaked: blocked on objects nothing that can run reaches. Ascending.
    pub leaked: Vec<u64>,
    /// How heap objects were scanned.
    pub heap_scan: ScanMethod,
    /// How goroutine stacks were scanned.
    pub stack_scan: ScanMethod,
    /// Marks taken; a goroutine counts as leaked only if every mark agreed and its wait did not
    /// change in between.
    pub passes: u32,
    /// Goroutines unreachable in some pass but not all (or whose wait changed): not reported.
    pub disagreed: u32,
    /// The marks ran with the target stopped (a consistent view).
    pub paused: bool,
    /// The target was not stopped but ran nothing during the mark (every thread idle, its CPU
    /// time and timeslices unchanged): one mark read a consistent view.
    #[serde(default)]
    pub quiescent: bool,
    /// Heap objects marked reachable (last pass).
    pub objects_marked: u64,
    /// Bytes of heap, data and stack scanned (last pass).
    pub bytes_scanned: u64,
    /// Heap spans in use.
    pub spans: u64,
    /// Wall time of all passes, microseconds.
    pub took_us: u64,
    /// What could not be read or was handled conservatively.
    pub notes: Vec<String>,
}

/// How a goroutine's wait duration was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitSince {
    /// Not known.
    #[default]
    Unknown,
    /// The dump printed `[N minutes]`.
    Printed,
    /// The runtime's own stamp (`g.waitsince`, set when a GC first saw it blocked).
    RuntimeStamp,
    /// Seen blocked on the same object, unchanged, in reads this far apart.
    Observed,
}

/// The live state of a library's resource that goroutines wait for (a connection pool, a
/// semaphore, a Transport's per-host limit), read from the library's own structure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LibState {
    /// The blocking point (the library function the waiters are parked in).
    pub function: String,
    /// The library structure's address.
    #[serde(serialize_with = "hex")]
    pub object: u64,
    /// Its type, as the binary names it (`database/sql.DB`).
    pub type_name: String,
    /// Configured capacity (0 or less: unlimited), when the structure has one.
    pub limit: Option<i64>,
    /// Resources open (in use plus idle).
    pub open: Option<i64>,
    /// Resources idle.
    pub idle: Option<i64>,
    /// Capacity held (a semaphore's acquired weight).
    pub held: Option<i64>,
    /// Waiters the library itself counts.
    pub lib_waiters: Option<i64>,
    /// Goroutines parked at this blocking point on this structure, ascending.
    pub waiters: Vec<u64>,
}
