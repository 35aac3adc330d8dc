//! Where the runtime keeps what gostall reads: struct member offsets of `runtime.g`, `m`, `p`,
//! `schedt`, `gobuf`, `sudog`, `hchan`, and of the memory accounting (`mstats`,
//! `gcControllerState`, `mheap` arenas), taken from the target's own DWARF, plus the status
//! numbering per Go version. The extractor reads `layout.g.goid`; it never branches on the Go
//! version.

use crate::tables::TypeInfo;
use gostall_binfmt::{Dwarf, StructLayout};

/// Why a layout could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// A struct the extractor needs is not described in the DWARF.
    #[error("the binary's DWARF has no type {0}")]
    MissingType(String),
    /// A member the extractor needs is missing.
    #[error("the binary's DWARF type {ty} has no member {field}")]
    MissingField {
        /// The struct.
        ty: String,
        /// The member path.
        field: String,
    },
}

/// Offsets of `runtime.g` members (bytes from the start of a g).
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct GLayout {
    pub size: u64,
    pub stack_lo: u64,
    pub stack_hi: u64,
    pub m: u64,
    pub sched_sp: u64,
    pub sched_pc: u64,
    pub sched_bp: u64,
    pub syscallsp: u64,
    pub syscallpc: u64,
    pub atomicstatus: u64,
    pub goid: u64,
    pub waitsince: u64,
    pub waitreason: u64,
    pub lockedm: u64,
    pub parent_goid: u64,
    pub gopc: u64,
    pub startpc: u64,
    pub waiting: u64,
    pub labels: Option<u64>,
}

/// Offsets of `runtime.m` members.
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct MLayout {
    pub size: u64,
    pub g0: u64,
    pub curg: u64,
    pub p: u64,
    pub id: u64,
    pub procid: u64,
    pub lockedg: u64,
    pub spinning: u64,
    pub blocked: u64,
    pub incgo: u64,
    pub ncgo: Option<u64>,
    /// `m.isextra`: an M for a thread C created, bound when it called into Go.
    pub isextra: Option<u64>,
    /// `m.isExtraInC`: such an M whose thread is back in C with no Go frames.
    pub is_extra_in_c: Option<u64>,
    pub alllink: u64,
    /// `m.signalPending` (`atomic.Uint32`): set by `preemptM` when it sends the preemption
    /// signal, cleared only by Go's signal handler (`doSigPreempt`).
    pub signal_pending: Option<u64>,
    /// `m.preemptGen` (`atomic.Uint32`): preemption signals Go's handler has acknowledged.
    pub preempt_gen: Option<u64>,
}

/// Offsets of `runtime.p` members.
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct PLayout {
    pub size: u64,
    pub id: u64,
    pub status: u64,
    pub schedtick: u64,
    pub syscalltick: u64,
    pub m: u64,
    pub runqhead: u64,
    pub runqtail: u64,
    pub runq: u64,
    pub runnext: u64,
}

/// Offsets of `runtime.schedt` members.
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct SchedLayout {
    pub size: u64,
    pub runqsize: u64,
    pub runq_head: u64,
    pub npidle: u64,
    pub nmspinning: u64,
    pub nmidle: u64,
    pub gcwaiting: Option<u64>,
    /// `stopwait`: Ps still to stop; `freezeStopWait` once a crash froze the world.
    pub stopwait: Option<u64>,
}

/// Offsets of `runtime.sudog` members.
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct SudogLayout {
    pub size: u64,
    pub next: u64,
    pub prev: u64,
    pub g: u64,
    pub elem: u64,
    pub c: u64,
    pub waitlink: u64,
    pub is_select: u64,
}

/// Offsets of `runtime.hchan` members.
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct HchanLayout {
    pub size: u64,
    pub qcount: u64,
    pub dataqsiz: u64,
    pub closed: u64,
    pub elemsize: u64,
}

/// The runtime's semaphore table (`runtime.semtable`): where goroutines blocked in
/// `sync.Mutex`, `RWMutex`, `WaitGroup` and `semacquire` wait, keyed by semaphore address.
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct SemaLayout {
    /// Entries in the table (`semTabSize`).
    pub entries: u64,
    /// Offset of `semaRoot.treap` within an entry.
    pub treap: u64,
}

/// Offsets of `runtime.pollDesc` members (the netpoller's per-descriptor state).
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct PollDescLayout {
    pub size: u64,
    pub fd: u64,
    pub rg: u64,
    pub wg: u64,
    pub rd: u64,
    pub wd: u64,
}

/// Where the Go runtime keeps its memory accounting and its heap arenas (`runtime/mstats.go`,
/// `mgcpacer.go`, `mheap.go`). Every member is optional: a Go version that lacks one (Go 1.25
/// dropped `heapStatsDelta.inPtrScalarBits`, renamed `mheap.allArenas` to `heapArenas`) leaves it
/// `None`, and the reader leaves that figure out with a note.
#[derive(Debug, Clone, Default)]
pub struct MemLayout {
    /// `gcControllerState.heapInUse`: bytes in spans in use.
    pub heap_in_use: Option<u64>,
    /// `gcControllerState.heapFree`: free heap pages not yet returned to the OS.
    pub heap_free: Option<u64>,
    /// `gcControllerState.heapReleased`: heap pages returned to the OS (not resident).
    pub heap_released: Option<u64>,
    /// `gcControllerState.mappedReady`: all memory the runtime has mapped and not released — the
    /// sum of the heap (in use and free), stacks, GC buffers and every `*_sys` statistic.
    pub mapped_ready: Option<u64>,
    /// `mstats` members holding memory outside the heap arenas, as (stat name, offset in
    /// `runtime.mstats`): `stacks_sys`, `mspan_sys`, `mcache_sys`, `buckhash_sys`, `gcMiscSys`,
    /// `other_sys`, those this version has.
    pub sys_stats: Vec<(&'static str, u64)>,
    /// Offset of `mstats.heapStats.stats` (`[3]heapStatsDelta`, summed for the totals).
    pub heap_stats: Option<u64>,
    /// `sizeof(heapStatsDelta)`.
    pub heap_stats_delta_size: u64,
    /// Members of `heapStatsDelta` for memory carved out of the heap arenas that is not heap
    /// (`inStacks`, `inWorkBufs`, `inPtrScalarBits` up to Go 1.24), as (stat name, offset).
    pub in_arena_stats: Vec<(&'static str, u64)>,
    /// Offsets in `runtime.mheap` of the `[]arenaIdx` slices listing every mapped heap arena
    /// (`allArenas` up to Go 1.24; `heapArenas` and `userArenaArenas` from 1.25).
    pub arena_lists: Vec<u64>,
    /// `heapArenaBytes` (64 MiB on linux/amd64).
    pub arena_bytes: u64,
    /// `arenaBaseOffset`: `arenaBase(i) = i*heapArenaBytes + arenaBaseOffset`.
    pub arena_base_offset: u64,
}

impl MemLayout {
    /// Address of heap arena `idx`.
    pub fn arena_base(&self, idx: u64) -> u64 {
        idx.wrapping_mul(self.arena_bytes)
            .wrapping_add(self.arena_base_offset)
    }
}

/// Unpacks the netpoller's tagged `*pollDesc` as stored in epoll event data (amd64):
/// `pointer = int64(data) >> tagBits << tagAlignBits` with `tagBits = 64 - addrBits +
/// tagAlignBits`. Up to Go 1.24 `addrBits` is 48 and `tagAlignBits` 3; from Go 1.25 they are 49
/// and 9 (`runtime/tagptr_64bit.go`).
pub fn untag_poll_desc(data: u64, go_minor: u32) -> u64 {
    let (addr_bits, align) = if go_minor >= 25 { (49, 9) } else { (48, 3) };
    let tag_bits = 64 - addr_bits + align;
    (((data as i64) >> tag_bits) << align) as u64
}

/// Where the runtime records its signal state (`runtime/signal_unix.go`, `runtime1.go`,
/// `proc.go`): global variables located by symbol, fields inside them from DWARF.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignalLayout {
    /// Offset of `asyncpreemptoff` (int32) in the `runtime.debug` variable (`GODEBUG`
    /// settings), found through the variable's anonymous struct type.
    pub debug_asyncpreemptoff: Option<u64>,
    /// Offset of `hz` (`atomic.Int32`, the CPU profiling rate; 0 when off) in `runtime.prof`.
    pub prof_hz: Option<u64>,
}

/// Global variables of the runtime's signal handling, by symbol name. The same in Go 1.21–1.27.
pub mod signal_symbols {
    /// `[_NSIG]uint32`, indexed by signal number: non-zero while Go's own handler is installed.
    pub const HANDLING_SIG: &str = "runtime.handlingSig";
    /// `[_NSIG]uintptr`: the handler found before Go installed its own (0 `SIG_DFL`, 1
    /// `SIG_IGN`, else an address), to which Go forwards signals it does not want.
    pub const FWD_SIG: &str = "runtime.fwdSig";
    /// The `GODEBUG` settings struct.
    pub const DEBUG: &str = "runtime.debug";
    /// `struct { signalLock; hz }`: the CPU profiler's state.
    pub const PROF: &str = "runtime.prof";
    /// Linked only when something can start the CPU profiler (`runtime/pprof.StartCPUProfile`,
    /// which `net/http/pprof` reaches): dead-code elimination drops it otherwise.
    pub const CPU_PROFILER_ENTRY: &str = "runtime.SetCPUProfileRate";
}

/// Every offset the extractor needs, for one binary.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct RuntimeLayout {
    pub g: GLayout,
    pub m: MLayout,
    pub p: PLayout,
    pub sched: SchedLayout,
    pub sudog: SudogLayout,
    pub hchan: HchanLayout,
    pub poll_desc: Option<PollDescLayout>,
    pub sema: Option<SemaLayout>,
    pub mem: MemLayout,
    pub signals: SignalLayout,
    pub heap: Result<HeapLayout, String>,
    pub sync: SyncLayout,
}

/// Where the `sync` types keep their semaphores and wait lists, to turn the semaphore address a
/// goroutine waits on into the object it belongs to, and to find a `Cond` waiter's list. Each
/// member is `None` when the program does not use the type (its DWARF does not describe it).
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncLayout {
    /// `sync.Mutex`: offset of the semaphore (`sema`, or `mu.sema` from Go 1.24).
    pub mutex_sema: Option<u64>,
    /// `sync.Mutex`: offset of `state` (bit 0: locked).
    pub mutex_state: Option<u64>,
    /// `sync.RWMutex`: offsets of `w` (its writers' mutex), `writerSem` and `readerSem`.
    pub rw_w: Option<u64>,
    /// See [`SyncLayout::rw_w`].
    pub rw_writer_sem: Option<u64>,
    /// See [`SyncLayout::rw_w`].
    pub rw_reader_sem: Option<u64>,
    /// `sync.RWMutex.readerCount` (number of readers, minus `rwmutexMaxReaders` while a writer
    /// is pending).
    pub rw_reader_count: Option<u64>,
    /// `sync.WaitGroup`: offsets of `state` (counter in the high 32 bits) and `sema`.
    pub wg_state: Option<u64>,
    /// See [`SyncLayout::wg_state`].
    pub wg_sema: Option<u64>,
    /// `sync.Cond.notify`: the `runtime.notifyList` inside a `Cond`.
    pub cond_notify: Option<u64>,
    /// `runtime.notifyList.head`: the first parked waiter's sudog (chained through `next`).
    pub notify_head: Option<u64>,
}

/// Where the heap keeps its spans and the binary its pointer bitmaps (`runtime/mheap.go`,
/// `mbitmap.go`, `symtab.go`): what the reachability mark needs. Built only when every member is
/// described; otherwise [`RuntimeLayout::heap`] says which one is missing.
#[derive(Debug, Clone)]
pub struct HeapLayout {
    /// `mheap.arenas`: the L1 array of pointers to L2 arrays of `*heapArena`.
    pub mheap_arenas: u64,
    /// `heapArena.spans`: `[pagesPerArena]*mspan`.
    pub arena_spans: u64,
    /// Heap page size (`_PageSize`).
    pub page_size: u64,
    /// `heapArenaBytes`.
    pub arena_bytes: u64,
    /// `arenaBaseOffset`.
    pub arena_base_offset: u64,
    /// `sizeof(mspan)`.
    pub span_size: u64,
    /// `mspan.startAddr`.
    pub span_start: u64,
    /// `mspan.npages`.
    pub span_npages: u64,
    /// `mspan.elemsize`.
    pub span_elemsize: u64,
    /// `mspan.nelems` and its width in bytes (uintptr up to Go 1.21, uint16 after).
    pub span_nelems: (u64, u64),
    /// `mspan.spanclass` (uint8: size class << 1 | noscan).
    pub span_class: u64,
    /// `mspan.state` (a `uint8` inside atomic wrappers).
    pub span_state: u64,
    /// `mspan.specials` (finalizers and cleanups hang here).
    pub span_specials: u64,
    /// `special.offset` and its width.
    pub special_offset: (u64, u64),
    /// `special.kind`.
    pub special_kind: u64,
    /// `sizeof(special)`: the kind-specific record follows it.
    pub special_size: u64,
    /// `_KindSpecialFinalizer`.
    pub kind_finalizer: u8,
    /// `_KindSpecialCleanup` (Go 1.24+).
    pub kind_cleanup: Option<u8>,
    /// `moduledata.data`, `edata`, `bss`, `ebss`.
    pub md_data: [u64; 4],
    /// `moduledata.gcdatamask` and `gcbssmask` (`bitvector{n int32; bytedata *uint8}`).
    pub md_masks: [u64; 2],
    /// `moduledata.next`.
    pub md_next: u64,
    /// `moduledata.rodata`: the base of stack objects' pointer bitmaps.
    pub md_rodata: Option<u64>,
    /// `mSpanInUse`: spans of garbage-collected heap objects.
    pub span_in_use: u8,
    /// `sudog.c` and `sudog.elem` as (offset, size): the slots Go's leak detector hides from the
    /// mark for blocked goroutines (both words of a `maybeTraceablePtr`).
    pub sudog_hidden: [(u64, u64); 2],
    /// Where the heap records which words of an object hold pointers.
    pub bits: HeapBits,
}

/// How the heap records which words of an object hold pointers: what a precise mark reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeapBits {
    /// One bit per heap word in each arena's `heapArena.bitmap` (Go 1.20–1.21).
    ArenaBitmap {
        /// Offset of `bitmap` in `runtime.heapArena`.
        bitmap: u64,
    },
    /// Objects up to `max_in_span` bytes: one bit per word of the span, in a bitmap at the
    /// span's end (before `inline_mark_bits` bytes of mark bits when the GC keeps them there);
    /// bigger objects start with a header pointing at their type, and a span of one large
    /// object names its type in `mspan.largeType` (Go 1.22+).
    Headers {
        /// Largest object size without a header (`minSizeForMallocHeader`).
        max_in_span: u64,
        /// Bytes of `spanInlineMarkBits` at the span's end for objects of 16 bytes and more
        /// up to `max_in_span` (the Green Tea collector); 0 otherwise.
        inline_mark_bits: u64,
        /// Offset of `mspan.largeType`.
        large_type: u64,
        /// Where `abi.Type` keeps what the mark needs.
        ty: TypeLayout,
    },
    /// Not described: objects are scanned conservatively.
    Unknown,
}

impl HeapBits {
    /// Completes what the DWARF may not say, from the functions the binary holds: the Green Tea
    /// collector (default from Go 1.26) keeps `spanInlineMarkBits` at the end of small-object
    /// spans; its scanning code (`scanObjectsSmall`) exists only then. 128 bytes:
    /// `scans [63]uint8; owned uint8; marks [63]uint8; class spanClass`.
    pub fn with_code(self, has_func: impl Fn(&str) -> bool) -> HeapBits {
        match self {
            HeapBits::Headers {
                max_in_span,
                inline_mark_bits: 0,
                large_type,
                ty,
            } if has_func("runtime.scanObjectsSmall") => HeapBits::Headers {
                max_in_span,
                inline_mark_bits: 128,
                large_type,
                ty,
            },
            other => other,
        }
    }
}

/// Members of `internal/abi.Type` the mark reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeLayout {
    /// Offset of `Size_`.
    pub size: u64,
    /// Offset of `PtrBytes` (bytes of the type that may hold pointers).
    pub ptr_bytes: u64,
    /// Offset of `TFlag`.
    pub tflag: u64,
    /// Offset of `Kind_`.
    pub kind: u64,
    /// Offset of `GCData` (the pointer bitmap, one bit per word of `PtrBytes`).
    pub gcdata: u64,
    /// `abi.KindGCProg`: `GCData` is a program, not a bitmap (Go ≤ 1.23).
    pub kind_gc_prog: Option<u8>,
    /// `abi.TFlagGCMaskOnDemand`: `GCData` points to a pointer to the bitmap, built by the
    /// runtime on first use (Go 1.24+).
    pub tflag_mask_on_demand: Option<u8>,
    /// How to build such a bitmap from the type's structure when the runtime has not yet.
    pub composite: Option<CompositeLayout>,
}

/// Members of `internal/abi.ArrayType`, `StructType` and `StructField`, and the kind numbers of
/// arrays and structs: enough to build a type's pointer bitmap from its elements and fields, as
/// `runtime.buildGCMask` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompositeLayout {
    /// `abi.Array`.
    pub kind_array: u8,
    /// `abi.Struct`.
    pub kind_struct: u8,
    /// Bits of `Kind_` that hold the kind (`abi.KindMask` before Go 1.26; the whole byte after).
    pub kind_mask: u8,
    /// Offset of `ArrayType.Elem`.
    pub array_elem: u64,
    /// Offset of `ArrayType.Len`.
    pub array_len: u64,
    /// Offset of `StructType.Fields` (a slice).
    pub struct_fields: u64,
    /// Size of one `StructField`.
    pub field_size: u64,
    /// Offset of `StructField.Typ`.
    pub field_typ: u64,
    /// Offset of `StructField.Offset`.
    pub field_offset: u64,
}

/// Offset and size of a member path (`idle.count`) of a named type in the binary's DWARF, and
/// the type's size: how library structures are read (see `gostall-libs`). `None` when the
/// binary does not describe the type or member.
pub fn member(d: &dyn TypeInfo, ty: &str, path: &str) -> Option<(u64, u64, u64)> {
    let mut layout = d.struct_layout(ty)?;
    let size = layout.size;
    let mut total = 0u64;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let f = layout.fields.iter().find(|f| f.name == part)?.clone();
        total += f.offset;
        if parts.peek().is_some() {
            layout = d.struct_layout(&f.type_name)?;
        } else {
            return Some((total, f.size, size));
        }
    }
    None
}

struct Types<'a>(&'a dyn TypeInfo);

impl Types<'_> {
    fn get(&self, ty: &str) -> Result<StructLayout, LayoutError> {
        self.0
            .struct_layout(ty)
            .ok_or_else(|| LayoutError::MissingType(ty.to_string()))
    }

    /// Offset of a member path like `sched.sp` or `atomicstatus` (atomic wrappers resolve to their
    /// `value` member, which sits at offset 0 after a zero-size `noCopy`).
    fn off(&self, ty: &str, path: &str) -> Result<u64, LayoutError> {
        self.try_off(ty, path)
            .ok_or_else(|| LayoutError::MissingField {
                ty: ty.to_string(),
                field: path.to_string(),
            })
    }

    fn try_off(&self, ty: &str, path: &str) -> Option<u64> {
        let mut layout = self.0.struct_layout(ty)?;
        let mut total = 0u64;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            let f = layout.fields.iter().find(|f| f.name == part)?;
            total += f.offset;
            if parts.peek().is_some() {
                layout = self.0.struct_layout(&f.type_name)?;
            }
        }
        Some(total)
    }

    /// Offset of an integer member that may be an atomic wrapper (`atomic.Uint64`, whose `value`
    /// member holds the number) or a plain integer (`sysMemStat`).
    fn try_int_off(&self, ty: &str, path: &str) -> Option<u64> {
        self.try_off(ty, &format!("{path}.value"))
            .or_else(|| self.try_off(ty, path))
    }

    /// Offset of a pointer member. Go 1.26+ wraps some sudog pointers in `maybeTraceablePtr`
    /// (`{vp unsafe.Pointer; vu uintptr}`) whose source of truth is `vu`: resolve to it.
    fn ptr_off(&self, ty: &str, field: &str) -> Result<u64, LayoutError> {
        let base = self.off(ty, field)?;
        let layout = self.0.struct_layout(ty);
        let fty = layout
            .as_ref()
            .and_then(|l| l.fields.iter().find(|f| f.name == field))
            .map(|f| f.type_name.clone());
        if let Some(inner) = fty.and_then(|t| self.0.struct_layout(&t)) {
            if let Some(vu) = inner.fields.iter().find(|f| f.name == "vu") {
                return Ok(base + vu.offset);
            }
            if let Some(emb) = inner.fields.iter().find(|f| f.name == "maybeTraceablePtr") {
                if let Some(vu) = self
                    .0
                    .struct_layout(&emb.type_name)
                    .and_then(|l| l.fields.iter().find(|f| f.name == "vu").map(|f| f.offset))
                {
                    return Ok(base + emb.offset + vu);
                }
            }
        }
        Ok(base)
    }

    fn size(&self, ty: &str) -> Result<u64, LayoutError> {
        Ok(self.get(ty)?.size)
    }
}

impl RuntimeLayout {
    /// Reads every offset from the binary's DWARF.
    pub fn from_dwarf(d: &Dwarf) -> Result<Self, LayoutError> {
        Self::from_types(d)
    }

    /// Reads every offset from a source of type information: the binary's DWARF, or a table
    /// recorded from the DWARF of a binary built by the same Go version ([`crate::tables`]).
    pub fn from_types(d: &dyn TypeInfo) -> Result<Self, LayoutError> {
        let t = Types(d);
        let g = GLayout {
            size: t.size("runtime.g")?,
            stack_lo: t.off("runtime.g", "stack.lo")?,
            stack_hi: t.off("runtime.g", "stack.hi")?,
            m: t.off("runtime.g", "m")?,
            sched_sp: t.off("runtime.g", "sched.sp")?,
            sched_pc: t.off("runtime.g", "sched.pc")?,
            sched_bp: t.off("runtime.g", "sched.bp")?,
            syscallsp: t.off("runtime.g", "syscallsp")?,
            syscallpc: t.off("runtime.g", "syscallpc")?,
            atomicstatus: t.off("runtime.g", "atomicstatus")?,
            goid: t.off("runtime.g", "goid")?,
            waitsince: t.off("runtime.g", "waitsince")?,
            waitreason: t.off("runtime.g", "waitreason")?,
            lockedm: t.off("runtime.g", "lockedm")?,
            parent_goid: t.off("runtime.g", "parentGoid")?,
            gopc: t.off("runtime.g", "gopc")?,
            startpc: t.off("runtime.g", "startpc")?,
            waiting: t.off("runtime.g", "waiting")?,
            labels: t.try_off("runtime.g", "labels"),
        };
        let m = MLayout {
            size: t.size("runtime.m")?,
            g0: t.off("runtime.m", "g0")?,
            curg: t.off("runtime.m", "curg")?,
            p: t.off("runtime.m", "p")?,
            id: t.off("runtime.m", "id")?,
            procid: t.off("runtime.m", "procid")?,
            lockedg: t.off("runtime.m", "lockedg")?,
            spinning: t.off("runtime.m", "spinning")?,
            blocked: t.off("runtime.m", "blocked")?,
            incgo: t.off("runtime.m", "incgo")?,
            ncgo: t.try_off("runtime.m", "ncgo"),
            isextra: t.try_off("runtime.m", "isextra"),
            is_extra_in_c: t.try_off("runtime.m", "isExtraInC"),
            alllink: t.off("runtime.m", "alllink")?,
            signal_pending: t.try_off("runtime.m", "signalPending"),
            preempt_gen: t.try_off("runtime.m", "preemptGen"),
        };
        let p = PLayout {
            size: t.size("runtime.p")?,
            id: t.off("runtime.p", "id")?,
            status: t.off("runtime.p", "status")?,
            schedtick: t.off("runtime.p", "schedtick")?,
            syscalltick: t.off("runtime.p", "syscalltick")?,
            m: t.off("runtime.p", "m")?,
            runqhead: t.off("runtime.p", "runqhead")?,
            runqtail: t.off("runtime.p", "runqtail")?,
            runq: t.off("runtime.p", "runq")?,
            runnext: t.off("runtime.p", "runnext")?,
        };
        let sched = SchedLayout {
            size: t.size("runtime.schedt")?,
            runqsize: t.off("runtime.schedt", "runqsize").or_else(|_| {
                // Go 1.25+ keeps the global run queue's size inside the queue.
                t.off("runtime.schedt", "runq.size")
            })?,
            runq_head: t.off("runtime.schedt", "runq.head")?,
            npidle: t.off("runtime.schedt", "npidle")?,
            nmspinning: t.off("runtime.schedt", "nmspinning")?,
            nmidle: t.off("runtime.schedt", "nmidle")?,
            gcwaiting: t.try_off("runtime.schedt", "gcwaiting"),
            stopwait: t.try_off("runtime.schedt", "stopwait"),
        };
        let sudog = SudogLayout {
            size: t.size("runtime.sudog")?,
            next: t.off("runtime.sudog", "next")?,
            prev: t.off("runtime.sudog", "prev")?,
            g: t.off("runtime.sudog", "g")?,
            elem: t.ptr_off("runtime.sudog", "elem")?,
            c: t.ptr_off("runtime.sudog", "c")?,
            waitlink: t.off("runtime.sudog", "waitlink")?,
            is_select: t.off("runtime.sudog", "isSelect")?,
        };
        let hchan = HchanLayout {
            size: t.size("runtime.hchan")?,
            qcount: t.off("runtime.hchan", "qcount")?,
            dataqsiz: t.off("runtime.hchan", "dataqsiz")?,
            closed: t.off("runtime.hchan", "closed")?,
            elemsize: t.off("runtime.hchan", "elemsize")?,
        };
        let poll_desc = (|| {
            Some(PollDescLayout {
                size: t.size("runtime.pollDesc").ok()?,
                fd: t.try_off("runtime.pollDesc", "fd")?,
                rg: t.try_off("runtime.pollDesc", "rg")?,
                wg: t.try_off("runtime.pollDesc", "wg")?,
                rd: t.try_off("runtime.pollDesc", "rd")?,
                wd: t.try_off("runtime.pollDesc", "wd")?,
            })
        })();
        let sema = t
            .try_off("runtime.semaRoot", "treap")
            .map(|treap| SemaLayout {
                // semTabSize: 251 in every supported version (runtime/sema.go).
                entries: 251,
                treap,
            });
        let mem = mem_layout(&t);
        let heap = heap_layout(&t, &mem);
        // Both variables have anonymous struct types; DWARF spells the type out as its name.
        let var_field = |var: &str, field: &str| {
            let ty = d.variable_type(var)?;
            t.try_off(&ty, field)
        };
        let signals = SignalLayout {
            debug_asyncpreemptoff: var_field(signal_symbols::DEBUG, "asyncpreemptoff"),
            prof_hz: var_field(signal_symbols::PROF, "hz"),
        };
        let sync = SyncLayout {
            mutex_sema: t
                .try_off("sync.Mutex", "sema")
                .or_else(|| t.try_off("sync.Mutex", "mu.sema")),
            mutex_state: t
                .try_off("sync.Mutex", "state")
                .or_else(|| t.try_off("sync.Mutex", "mu.state")),
            rw_w: t.try_off("sync.RWMutex", "w"),
            rw_writer_sem: t.try_off("sync.RWMutex", "writerSem"),
            rw_reader_sem: t.try_off("sync.RWMutex", "readerSem"),
            rw_reader_count: t.try_int_off("sync.RWMutex", "readerCount"),
            wg_state: t.try_int_off("sync.WaitGroup", "state"),
            wg_sema: t.try_off("sync.WaitGroup", "sema"),
            cond_notify: t.try_off("sync.Cond", "notify"),
            // `notifyList{wait, notify uint32; lock mutex; head, tail *sudog}`: the same in every
            // supported version, and not described when no variable has the type.
            notify_head: t.try_off("runtime.notifyList", "head").or(Some(16)),
        };
        Ok(RuntimeLayout {
            sync,
            heap,
            mem,
            signals,
            sema,
            poll_desc,
            g,
            m,
            p,
            sched,
            sudog,
            hchan,
        })
    }
}

fn heap_layout(t: &Types<'_>, mem: &MemLayout) -> Result<HeapLayout, String> {
    let off = |ty: &str, path: &str| t.off(ty, path).map_err(|e| e.to_string());
    // An integer member that may sit inside atomic wrappers (`mSpanStateBox{s atomic.Uint8}`).
    let int_off = |ty: &str, path: &str| {
        t.try_off(ty, &format!("{path}.value"))
            .or_else(|| t.try_off(ty, path))
            .ok_or_else(|| format!("the binary's DWARF type {ty} has no member {path}"))
    };
    let width = |ty: &str, field: &str| -> Result<(u64, u64), String> {
        let l = t.get(ty).map_err(|e| e.to_string())?;
        let f = l
            .field(field)
            .ok_or_else(|| format!("the binary's DWARF type {ty} has no member {field}"))?;
        Ok((f.offset, if f.size == 0 { 8 } else { f.size }))
    };
    let konst = |name: &str| t.0.constant(name);
    const S: &str = "runtime.mspan";
    const MD: &str = "runtime.moduledata";
    // linux/amd64 has a one-entry L1 arena map (arenaL1Bits = 0); others are not read.
    if konst("runtime.arenaL1Bits").is_some_and(|v| v != 0) {
        return Err("the heap's arena map has more than one level".to_string());
    }
    Ok(HeapLayout {
        mheap_arenas: off("runtime.mheap", "arenas")?,
        arena_spans: off("runtime.heapArena", "spans")?,
        page_size: konst("runtime._PageSize")
            .or_else(|| konst("runtime.pageSize"))
            .filter(|&v| v > 0)
            .map_or(8192, |v| v as u64),
        arena_bytes: mem.arena_bytes,
        arena_base_offset: mem.arena_base_offset,
        span_size: t.size(S).map_err(|e| e.to_string())?,
        span_start: off(S, "startAddr")?,
        span_npages: off(S, "npages")?,
        span_elemsize: off(S, "elemsize")?,
        span_nelems: width(S, "nelems")?,
        span_class: off(S, "spanclass")?,
        span_state: int_off(S, "state.s")?,
        span_specials: off(S, "specials")?,
        special_offset: width("runtime.special", "offset")?,
        special_kind: off("runtime.special", "kind")?,
        special_size: t.size("runtime.special").map_err(|e| e.to_string())?,
        kind_finalizer: konst("runtime._KindSpecialFinalizer").map_or(1, |v| v as u8),
        kind_cleanup: konst("runtime._KindSpecialCleanup").map(|v| v as u8),
        md_data: [
            off(MD, "data")?,
            off(MD, "edata")?,
            off(MD, "bss")?,
            off(MD, "ebss")?,
        ],
        md_masks: [off(MD, "gcdatamask")?, off(MD, "gcbssmask")?],
        md_next: off(MD, "next")?,
        md_rodata: t.try_off(MD, "rodata"),
        span_in_use: konst("runtime.mSpanInUse").map_or(1, |v| v as u8),
        sudog_hidden: [
            width("runtime.sudog", "c")?,
            width("runtime.sudog", "elem")?,
        ],
        bits: heap_bits(t),
    })
}

/// Which pointer-bitmap scheme the binary's runtime uses, read from its DWARF: the arena
/// bitmap member exists only where it is used, `mspan.largeType` only with malloc headers.
fn heap_bits(t: &Types<'_>) -> HeapBits {
    if let Some(bitmap) = t.try_off("runtime.heapArena", "bitmap") {
        return HeapBits::ArenaBitmap { bitmap };
    }
    const TY: &str = "internal/abi.Type";
    let ty = || -> Option<TypeLayout> {
        let konst = |n: &str| t.0.constant(n).and_then(|v| u8::try_from(v).ok());
        Some(TypeLayout {
            size: t.try_off(TY, "Size_")?,
            ptr_bytes: t.try_off(TY, "PtrBytes")?,
            tflag: t.try_off(TY, "TFlag")?,
            kind: t.try_off(TY, "Kind_")?,
            gcdata: t.try_off(TY, "GCData")?,
            kind_gc_prog: konst("internal/abi.KindGCProg"),
            tflag_mask_on_demand: konst("internal/abi.TFlagGCMaskOnDemand"),
            composite: konst("internal/abi.TFlagGCMaskOnDemand").and_then(|_| {
                Some(CompositeLayout {
                    kind_array: konst("internal/abi.Array")?,
                    kind_struct: konst("internal/abi.Struct")?,
                    kind_mask: konst("internal/abi.KindMask").unwrap_or(u8::MAX),
                    array_elem: t.try_off("internal/abi.ArrayType", "Elem")?,
                    array_len: t.try_off("internal/abi.ArrayType", "Len")?,
                    struct_fields: t.try_off("internal/abi.StructType", "Fields")?,
                    field_size: t.size("internal/abi.StructField").ok()?,
                    field_typ: t.try_off("internal/abi.StructField", "Typ")?,
                    field_offset: t.try_off("internal/abi.StructField", "Offset")?,
                })
            }),
        })
    };
    match (t.try_off("runtime.mspan", "largeType"), ty()) {
        (Some(large_type), Some(ty)) => HeapBits::Headers {
            // goarch.PtrSize * goarch.PtrBits on linux/amd64.
            max_in_span: t
                .0
                .constant("runtime.minSizeForMallocHeader")
                .and_then(|v| u64::try_from(v).ok())
                .unwrap_or(512),
            // The linker describes the type only when some variable uses it (not in builds
            // with `-gcflags=all=-dwarf=false`): [`HeapBits::with_code`] completes it.
            inline_mark_bits: t.size("runtime.spanInlineMarkBits").unwrap_or(0),
            large_type,
            ty,
        },
        _ => HeapBits::Unknown,
    }
}

fn mem_layout(t: &Types<'_>) -> MemLayout {
    const GC: &str = "runtime.gcControllerState";
    const MS: &str = "runtime.mstats";
    const DELTA: &str = "runtime.heapStatsDelta";
    let sys_stats = [
        ("stacks_sys", "stacks"),
        ("mspan_sys", "mspan"),
        ("mcache_sys", "mcache"),
        ("buckhash_sys", "buckhash"),
        ("gcMiscSys", "gc_misc"),
        ("other_sys", "other"),
    ]
    .into_iter()
    .filter_map(|(field, name)| t.try_int_off(MS, field).map(|o| (name, o)))
    .collect();
    let in_arena_stats = [
        ("inStacks", "stacks"),
        ("inWorkBufs", "gc_work_bufs"),
        ("inPtrScalarBits", "gc_prog_bits"),
    ]
    .into_iter()
    .filter_map(|(field, name)| t.try_off(DELTA, field).map(|o| (name, o)))
    .collect();
    let arena_lists = ["allArenas", "heapArenas", "userArenaArenas"]
        .into_iter()
        .filter_map(|f| t.try_off("runtime.mheap", f))
        .collect();
    MemLayout {
        heap_in_use: t.try_int_off(GC, "heapInUse"),
        heap_free: t.try_int_off(GC, "heapFree"),
        heap_released: t.try_int_off(GC, "heapReleased"),
        mapped_ready: t.try_int_off(GC, "mappedReady"),
        sys_stats,
        heap_stats: t.try_off(MS, "heapStats.stats"),
        heap_stats_delta_size: t.size(DELTA).unwrap_or(0),
        in_arena_stats,
        arena_lists,
        // Constants the compiler emits into DWARF; the fallbacks are linux/amd64's values.
        arena_bytes: t
            .0
            .constant("runtime.heapArenaBytes")
            .filter(|&v| v > 0)
            .map_or(64 << 20, |v| v as u64),
        arena_base_offset: t
            .0
            .constant("runtime.arenaBaseOffsetUintptr")
            .map_or(0xffff_8000_0000_0000, |v| v as u64),
    }
}

/// `runtime.g.atomicstatus` values (Go 1.21–1.27; `_Gleaked` and `_Gdeadextra` exist from 1.26).
pub mod gstatus {
    /// The scan bit, or-ed onto a status while the GC scans the stack.
    pub const SCAN: u32 = 0x1000;
    use gostall_model::GoState;

    /// The model state of a raw status (scan bit removed), and whether it is `_Gleaked`.
    pub fn state(raw: u32) -> (GoState, bool) {
        match raw & !SCAN {
            0 => (GoState::Idle, false),
            1 => (GoState::Runnable, false),
            2 => (GoState::Running, false),
            3 => (GoState::Syscall, false),
            4 => (GoState::Waiting, false),
            6 => (GoState::Dead, false),
            8 | 9 => (GoState::Preempted, false),
            10 => (GoState::Waiting, true),
            11 => (GoState::Dead, false),
            _ => (GoState::Unknown, false),
        }
    }
}

/// `runtime.p.status` names.
pub fn pstatus_name(s: u32) -> &'static str {
    match s {
        0 => "idle",
        1 => "running",
        2 => "syscall",
        3 => "gcstop",
        4 => "dead",
        _ => "unknown",
    }
}
