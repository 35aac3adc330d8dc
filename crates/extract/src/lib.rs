//! Reads a Go program's runtime state out of its memory into the same [`Snapshot`] the offline
//! sources fill: every goroutine from `runtime.allgs` with its status, wait reason, wait time, the
//! channel it waits on and its full stack (unwound with the binary's pclntab, inlined frames
//! expanded), every M from `runtime.allm` joined to its OS thread, every P from `runtime.allp`, and
//! the global scheduler state.
//!
//! Generic over [`Memory`], so a core file will reuse every line. It never writes to the target.
//! Reads race with the running program: each goroutine is read, its stack read, and the goroutine
//! read again; one that moved in between is re-read, and after a few tries marked, never reported
//! wrong.
#![deny(missing_docs)]

pub mod core;
mod defers;
mod globals;
mod libstate;
pub mod live;
pub mod memory;
pub mod native;
mod netpoll;
mod program;
pub mod proof;
mod sema;
mod signals;
mod stackscan;
mod unwind;
mod waits;

pub use program::{LayoutSource, Program, ProgramError, SymbolSource, VersionSource};
pub use signals::{PreemptSample, RuntimeSignals};

use gostall_access::{Memory, ReadReq};
use gostall_goruntime::layout::{gstatus, pstatus_name};
use gostall_goruntime::{self as rt};
use gostall_model::{
    CreatedBy, GoFlags, GoState, Goroutine, ProcFacts, SchedFacts, Snapshot, StackId, WaitReason,
};
use rustc_hash::FxHashMap;
use unwind::Symbolizer;

/// Errors that stop extraction altogether (a single unreadable goroutine does not: it is noted).
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// A runtime global could not be read.
    #[error("cannot read {what} at {addr:#x}: {source}")]
    Read {
        /// What was being read.
        what: &'static str,
        /// Where.
        addr: u64,
        /// Why.
        #[source]
        source: gostall_access::MemError,
    },
    /// The runtime's data does not look like what this Go version should have.
    #[error("runtime data looks inconsistent: {0}")]
    Inconsistent(String),
}

/// A target the readers take: a live process or a core file — memory, threads with their
/// registers, and the mapped objects.
pub trait Target:
    gostall_access::Memory + gostall_access::Threads + gostall_access::Objects + Sync
{
    /// Whether the target went away while being read (a live process that exited); a core
    /// never does.
    fn gone(&self) -> bool {
        false
    }
}

impl Target for gostall_access::LiveProcess {
    fn gone(&self) -> bool {
        !gostall_access::procfs::is_alive(self.pid())
    }
}

impl Target for gostall_access::CoreFile {}

/// Options of one extraction.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Maximum goroutines read (a corrupted `allglen` must not make us read forever).
    pub max_goroutines: usize,
    /// Maximum bytes of one goroutine's stack read.
    pub max_stack: u64,
    /// Current monotonic clock in nanoseconds (the runtime's `nanotime` clock), for wait durations.
    pub now_ns: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_goroutines: 10_000_000,
            max_stack: 64 << 20,
            now_ns: None,
        }
    }
}

/// Raw fields of one M, kept to join threads and goroutines.
#[derive(Debug, Clone, Copy)]
pub struct MRecord {
    /// Address of the m.
    pub addr: u64,
    /// Runtime M id.
    pub id: i64,
    /// OS thread id.
    pub procid: u64,
    /// Address of the running goroutine (0 if none).
    pub curg: u64,
    /// Address of the goroutine locked to it (0 if none).
    pub lockedg: u64,
    /// Address of the P it holds (0 if none).
    pub p: u64,
    /// Spinning.
    pub spinning: bool,
    /// Blocked on a note.
    pub blocked: bool,
    /// In a cgo call.
    pub incgo: bool,
    /// An extra M: bound to a thread C created, which called into Go (`m.isextra`).
    pub isextra: bool,
    /// An extra M whose thread is back in C with no Go frames (`m.isExtraInC`).
    pub extra_in_c: bool,
    /// `m.signalPending`: a preemption signal was sent and Go's handler has not acknowledged it.
    /// `None` when the binary's DWARF does not describe the field.
    pub signal_pending: Option<bool>,
    /// `m.preemptGen`: preemption signals acknowledged so far.
    pub preempt_gen: u32,
}

/// What extraction returns beside the snapshot: raw addresses callers need to join threads.
#[derive(Debug, Default)]
pub struct Extra {
    /// Every M.
    pub ms: Vec<MRecord>,
    /// Goroutine address → goroutine id.
    pub g_addr_to_id: FxHashMap<u64, u64>,
    /// P address → P id.
    pub p_addr_to_id: FxHashMap<u64, i32>,
    /// Goroutines re-read because they changed under us.
    pub reread: u64,
    /// Goroutines that stayed inconsistent.
    pub inconsistent: u64,
    /// Goroutine headers that could not be read at all.
    pub unreadable: u64,
    /// Raw records of the goroutines this extraction added to the snapshot, in the same order
    /// (the reachability proof needs their addresses, stacks and sudogs).
    pub(crate) graws: Vec<GRaw>,
    /// Index in the snapshot's goroutine list of the first goroutine this extraction added.
    pub(crate) first_goroutine: usize,
}

/// `GOSTALL_TIMING=1` prints where the time goes to stderr.
pub fn timing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        std::env::var_os("GOSTALL_TIMING").is_some_and(|v| !v.is_empty() && v != "0")
    })
}

/// Goroutines per vectored batch.
const BATCH: usize = 4096;
/// Largest merged range of goroutine headers.
const MAX_RANGE: usize = 1 << 20;
/// Largest gap between two goroutine headers read as one range.
const GAP: usize = 2048;
/// `runtime.freezeStopWait`: `sched.stopwait` once a crash froze the world (every Go version).
const FREEZE_STOP_WAIT: u32 = 0x7fff_ffff;

/// Phase-1 preparation, made before a pause.
#[derive(Debug)]
pub struct HeaderPlan {
    list_at: u64,
    addrs: Vec<u64>,
    sorted: Vec<u64>,
    ranges: Vec<(u64, usize, usize, usize)>,
    buf: Vec<u8>,
    raws: Vec<GRaw>,
}

/// Phase-1 result: every goroutine's header.
#[derive(Debug, Default)]
pub struct Headers {
    raws: Vec<GRaw>,
    unreadable: u64,
}

fn u64_at(b: &[u8], off: u64) -> u64 {
    let o = off as usize;
    b.get(o..o + 8)
        .map(|s| u64::from_le_bytes(s.try_into().expect("8 bytes")))
        .unwrap_or(0)
}

fn u32_at(b: &[u8], off: u64) -> u32 {
    let o = off as usize;
    b.get(o..o + 4)
        .map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")))
        .unwrap_or(0)
}

fn u8_at(b: &[u8], off: u64) -> u8 {
    b.get(off as usize).copied().unwrap_or(0)
}

/// One goroutine's raw fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct GRaw {
    addr: u64,
    goid: u64,
    status: u32,
    waitreason: u8,
    waitsince: i64,
    stack_lo: u64,
    stack_hi: u64,
    sched_sp: u64,
    sched_pc: u64,
    syscallsp: u64,
    syscallpc: u64,
    m: u64,
    lockedm: u64,
    parent_goid: u64,
    gopc: u64,
    waiting: u64,
}

impl<'p> Program<'p> {
    fn parse_g(&self, addr: u64, b: &[u8]) -> GRaw {
        let l = &self.layout.g;
        GRaw {
            addr,
            goid: u64_at(b, l.goid),
            status: u32_at(b, l.atomicstatus),
            waitreason: u8_at(b, l.waitreason),
            waitsince: u64_at(b, l.waitsince) as i64,
            stack_lo: u64_at(b, l.stack_lo),
            stack_hi: u64_at(b, l.stack_hi),
            sched_sp: u64_at(b, l.sched_sp),
            sched_pc: u64_at(b, l.sched_pc),
            syscallsp: u64_at(b, l.syscallsp),
            syscallpc: u64_at(b, l.syscallpc),
            m: u64_at(b, l.m),
            lockedm: u64_at(b, l.lockedm),
            parent_goid: u64_at(b, l.parent_goid),
            gopc: u64_at(b, l.gopc),
            waiting: u64_at(b, l.waiting),
        }
    }

    fn read<M: Memory + ?Sized>(
        &self,
        mem: &M,
        what: &'static str,
        addr: u64,
        buf: &mut [u8],
    ) -> Result<(), ExtractError> {
        mem.read(addr, buf)
            .map_err(|source| ExtractError::Read { what, addr, source })
    }

    fn read_u64<M: Memory + ?Sized>(
        &self,
        mem: &M,
        what: &'static str,
        addr: u64,
    ) -> Result<u64, ExtractError> {
        let mut b = [0u8; 8];
        self.read(mem, what, addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// The runtime's goroutine list: addresses of every g.
    pub fn all_g_addrs<M: Memory + ?Sized>(
        &self,
        mem: &M,
        max: usize,
    ) -> Result<Vec<u64>, ExtractError> {
        Ok(self.all_g_list(mem, max)?.1)
    }

    /// The goroutine list with its backing array's address (to tell whether it changed).
    fn all_g_list<M: Memory + ?Sized>(
        &self,
        mem: &M,
        max: usize,
    ) -> Result<(u64, Vec<u64>), ExtractError> {
        let allgs = self.sym.allgs;
        let ptr = self.read_u64(mem, "runtime.allgs", allgs)?;
        let len = self.read_u64(mem, "runtime.allgs", allgs + 8)? as usize;
        if len > max {
            return Err(ExtractError::Inconsistent(format!(
                "runtime.allgs claims {len} goroutines"
            )));
        }
        let mut raw = vec![0u8; len * 8];
        self.read(mem, "the goroutine list", ptr, &mut raw)?;
        Ok((
            ptr,
            raw.chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                .filter(|&a| a != 0)
                .collect(),
        ))
    }

    /// Reads everything into a snapshot (headers, scheduler, then stacks).
    pub fn extract<M: Memory + ?Sized>(
        &self,
        mem: &M,
        snap: &mut Snapshot,
        opts: &Options,
    ) -> Result<Extra, ExtractError> {
        let headers = self.read_headers(mem, opts)?;
        let mut extra = Extra::default();
        self.read_sched(mem, snap, &mut extra, &headers)?;
        self.complete(mem, snap, opts, headers, &mut extra);
        Ok(extra)
    }

    /// Phase 1: every goroutine's header (the g struct), read in vectored batches. With the target
    /// paused this is the consistent snapshot of scheduler state.
    pub fn read_headers<M: Memory + ?Sized>(
        &self,
        mem: &M,
        opts: &Options,
    ) -> Result<Headers, ExtractError> {
        let plan = self.plan_headers(mem, opts)?;
        self.read_planned(mem, opts, plan)
    }

    /// Prepares phase 1 without needing a consistent view: lists the goroutines, merges nearby
    /// headers into ranges and allocates (and touches) the buffers, so that a paused read does only
    /// the reading.
    pub fn plan_headers<M: Memory + ?Sized>(
        &self,
        mem: &M,
        opts: &Options,
    ) -> Result<HeaderPlan, ExtractError> {
        let (list_at, addrs) = self.all_g_list(mem, opts.max_goroutines)?;
        let glen = self.g_read_len();
        // gs live in spans, mostly side by side: read runs of nearby gs as one range, so the
        // kernel pins each page once instead of once per goroutine.
        let mut sorted = addrs.clone();
        sorted.sort_unstable();
        sorted.dedup();
        // (range start, range len, first index into `sorted`, count)
        let mut ranges: Vec<(u64, usize, usize, usize)> = Vec::new();
        for (k, &a) in sorted.iter().enumerate() {
            match ranges.last_mut() {
                Some((start, len, _, n))
                    if a >= *start
                        && a - *start <= MAX_RANGE as u64
                        && a <= *start + *len as u64 + GAP as u64 =>
                {
                    *len = (a - *start) as usize + glen;
                    *n += 1;
                }
                _ => ranges.push((a, glen, k, 1)),
            }
        }
        let chunk_max = ranges
            .chunks(1024)
            .map(|c| c.iter().map(|r| r.1).sum::<usize>())
            .max()
            .unwrap_or(0);
        // vec![0; n] of zeroes may be lazily mapped; write to every page so the paused read does
        // not take the page faults.
        let mut buf = vec![1u8; chunk_max];
        buf.iter_mut().step_by(4096).for_each(|b| *b = 0);
        let mut raws: Vec<GRaw> = Vec::with_capacity(sorted.len());
        raws.resize(sorted.len(), GRaw::default());
        raws.clear();
        Ok(HeaderPlan {
            list_at,
            addrs,
            sorted,
            ranges,
            buf,
            raws,
        })
    }

    /// Reads the planned headers. If the goroutine list changed since it was planned, plans again.
    pub fn read_planned<M: Memory + ?Sized>(
        &self,
        mem: &M,
        opts: &Options,
        plan: HeaderPlan,
    ) -> Result<Headers, ExtractError> {
        let t0 = std::time::Instant::now();
        let (list_at, addrs) = self.all_g_list(mem, opts.max_goroutines)?;
        let mut plan = plan;
        if list_at != plan.list_at || addrs != plan.addrs {
            plan = self.plan_headers(mem, opts)?;
        }
        let t_list = t0.elapsed();
        let glen = self.g_read_len();
        let HeaderPlan {
            sorted,
            ranges,
            mut buf,
            mut raws,
            ..
        } = plan;
        let (unreadable, t_read) =
            self.read_ranges(mem, &ranges, &sorted, glen, &mut buf, &mut raws);
        if timing() {
            let bytes: usize = ranges.iter().map(|r| r.1).sum();
            eprintln!(
                "headers: list check {t_list:?}, {} ranges / {} MB read in {t_read:?}, total {:?}",
                ranges.len(),
                bytes >> 20,
                t0.elapsed()
            );
        }
        Ok(Headers { raws, unreadable })
    }

    /// Reads merged header ranges and parses the gs in them; returns them, how many could not be
    /// read, and the time spent in reads.
    fn read_ranges<M: Memory + ?Sized>(
        &self,
        mem: &M,
        ranges: &[(u64, usize, usize, usize)],
        sorted: &[u64],
        glen: usize,
        buf: &mut Vec<u8>,
        raws: &mut Vec<GRaw>,
    ) -> (u64, std::time::Duration) {
        let mut unreadable = 0u64;
        let mut t_read = std::time::Duration::ZERO;
        let mut ok = Vec::with_capacity(1024);
        for chunk in ranges.chunks(1024) {
            let reqs: Vec<ReadReq> = chunk
                .iter()
                .map(|&(addr, len, _, _)| ReadReq { addr, len })
                .collect();
            let total: usize = reqs.iter().map(|r| r.len).sum();
            // Grow only: every byte parsed below was just written by a successful read.
            if buf.len() < total {
                buf.resize(total, 0);
            }
            let tr = std::time::Instant::now();
            mem.read_batch(&reqs, &mut buf[..total], &mut ok);
            t_read += tr.elapsed();
            let mut at = 0usize;
            for (r, &(start, len, first, n)) in chunk.iter().enumerate() {
                let range_ok = ok.get(r).copied().unwrap_or(false);
                for &a in &sorted[first..first + n] {
                    if range_ok {
                        let o = at + (a - start) as usize;
                        raws.push(self.parse_g(a, &buf[o..o + glen]));
                    } else {
                        // A range that failed as a whole: read its gs one by one.
                        let mut one = vec![0u8; glen];
                        if mem.read(a, &mut one).is_ok() {
                            raws.push(self.parse_g(a, &one));
                        } else {
                            unreadable += 1;
                        }
                    }
                }
                at += len;
            }
        }
        (unreadable, t_read)
    }

    /// Bytes of a g that hold every field gostall reads.
    fn g_read_len(&self) -> usize {
        let l = &self.layout.g;
        let max = [
            l.stack_lo,
            l.stack_hi,
            l.m,
            l.sched_sp,
            l.sched_pc,
            l.sched_bp,
            l.syscallsp,
            l.syscallpc,
            l.atomicstatus,
            l.goid,
            l.waitsince,
            l.waitreason,
            l.lockedm,
            l.parent_goid,
            l.gopc,
            l.startpc,
            l.waiting,
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        ((max + 8).min(l.size.max(max + 8))) as usize
    }

    /// Phase 2: stacks, read in bounded chunks and validated against the headers (a goroutine
    /// whose header changed while its stack was read is re-read, then marked), unwound and
    /// symbolised; goroutines added to the snapshot.
    pub fn complete<M: Memory + ?Sized>(
        &self,
        mem: &M,
        snap: &mut Snapshot,
        opts: &Options,
        headers: Headers,
        extra: &mut Extra,
    ) {
        let mut sym = Symbolizer::new(self);
        let source = snap.sources.len().saturating_sub(1) as u16;
        let glen = self.g_read_len();
        let (mut t_read, mut t_unwind) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
        let t_all = std::time::Instant::now();
        let mut frames = Vec::with_capacity(64);
        let mut ok = Vec::new();
        let mut gbuf = vec![0u8; glen * BATCH];
        let mut stackbuf: Vec<u8> = Vec::new();
        let mut built: Vec<(GRaw, GoState, bool, bool, StackId)> =
            Vec::with_capacity(headers.raws.len());
        for raw in &headers.raws {
            extra.g_addr_to_id.insert(raw.addr, raw.goid);
        }
        let live: Vec<&GRaw> = headers
            .raws
            .iter()
            .filter(|r| gstatus::state(r.status).0 != GoState::Dead)
            .collect();
        for chunk in live.chunks(BATCH) {
            // Stacks of goroutines that are not running, [sp, hi), bounded.
            let mut reqs = Vec::with_capacity(chunk.len());
            let mut which = Vec::with_capacity(chunk.len());
            for (k, raw) in chunk.iter().enumerate() {
                let (state, _) = gstatus::state(raw.status);
                if state == GoState::Running {
                    continue;
                }
                let (_, sp) = unwind::start(raw);
                if sp >= raw.stack_lo && sp < raw.stack_hi && raw.stack_hi - sp <= opts.max_stack {
                    reqs.push(ReadReq {
                        addr: sp,
                        len: (raw.stack_hi - sp) as usize,
                    });
                    which.push(k);
                }
            }
            let total: usize = reqs.iter().map(|r| r.len).sum();
            stackbuf.clear();
            stackbuf.resize(total, 0);
            let tr = std::time::Instant::now();
            mem.read_batch(&reqs, &mut stackbuf, &mut ok);
            let stack_ok = ok.clone();
            // Re-read the headers: a goroutine that ran meanwhile has a different one.
            let greqs: Vec<ReadReq> = chunk
                .iter()
                .map(|r| ReadReq {
                    addr: r.addr,
                    len: glen,
                })
                .collect();
            let gb = &mut gbuf[..glen * chunk.len()];
            mem.read_batch(&greqs, gb, &mut ok);
            t_read += tr.elapsed();
            let tu = std::time::Instant::now();
            let mut offs = Vec::with_capacity(reqs.len());
            let mut at = 0usize;
            for r in &reqs {
                offs.push(at);
                at += r.len;
            }
            let mut slot = 0usize;
            for (k, raw) in chunk.iter().enumerate() {
                let (state, leaked) = gstatus::state(raw.status);
                let has_stack = which.get(slot) == Some(&k);
                let stack_range = if has_stack {
                    let r = (
                        offs[slot],
                        offs[slot] + reqs[slot].len,
                        stack_ok.get(slot).copied().unwrap_or(false),
                    );
                    slot += 1;
                    Some(r)
                } else {
                    None
                };
                let same = ok.get(k).copied().unwrap_or(false)
                    && self.parse_g(raw.addr, &gb[k * glen..(k + 1) * glen]) == **raw;
                frames.clear();
                let mut raw_now = **raw;
                let mut consistent = same;
                if state != GoState::Running {
                    match stack_range {
                        Some((s, e, true)) if same => {
                            let (pc, sp) = unwind::start(raw);
                            sym.unwind(
                                pc,
                                sp,
                                &stackbuf[s..e],
                                true,
                                &mut snap.tables,
                                &mut frames,
                            );
                        }
                        _ => {
                            // Slow path: read this one alone until its header holds still.
                            extra.reread += 1;
                            if let Some(r) = self.reread_one(
                                mem,
                                raw.addr,
                                opts,
                                &mut sym,
                                &mut snap.tables,
                                &mut frames,
                            ) {
                                raw_now = r;
                                consistent = true;
                            } else {
                                consistent = false;
                            }
                        }
                    }
                }
                let (state, leaked) = if raw_now == **raw {
                    (state, leaked)
                } else {
                    gstatus::state(raw_now.status)
                };
                if state == GoState::Dead {
                    continue;
                }
                if !consistent && state != GoState::Running {
                    extra.inconsistent += 1;
                }
                let unavailable = state == GoState::Running || !consistent;
                let stack = if frames.is_empty() {
                    StackId(0)
                } else {
                    snap.tables.intern_stack(&frames)
                };
                built.push((raw_now, state, leaked, unavailable, stack));
            }
            t_unwind += tu.elapsed();
        }
        let t_build = std::time::Instant::now();
        // The channel each waiter waits on: sudog.c of g.waiting, in one vectored read.
        let c_off = self.layout.sudog.c;
        let reqs: Vec<ReadReq> = built
            .iter()
            .filter(|b| b.0.waiting != 0)
            .map(|b| ReadReq {
                addr: b.0.waiting + c_off,
                len: 8,
            })
            .collect();
        let mut cbuf = vec![0u8; reqs.len() * 8];
        mem.read_batch(&reqs, &mut cbuf, &mut ok);
        let mut chans = Vec::with_capacity(reqs.len());
        for (k, _) in reqs.iter().enumerate() {
            let v = u64_at(&cbuf, (k * 8) as u64);
            chans.push((ok.get(k).copied().unwrap_or(false) && v != 0).then_some(v));
        }
        let mut chans = chans.into_iter();
        let semas = sema::waiters(self, mem);
        let mut reasons: FxHashMap<(StackId, u8, GoState), Option<WaitReason>> =
            FxHashMap::default();
        extra.first_goroutine = snap.goroutines.len();
        extra.graws.clear();
        extra.graws.reserve(built.len());
        for (raw, state, leaked, unavailable, stack) in built {
            extra.graws.push(raw);
            // Channel waits name their channel in g.waiting's sudog; semaphore waits (locks,
            // WaitGroups) sit in the semaphore table (newer runtimes set g.waiting for them too,
            // with no channel).
            let chan = if raw.waiting != 0 {
                chans.next().flatten()
            } else {
                None
            };
            let waiting_on = chan.or_else(|| semas.get(&raw.addr).copied());
            let wait_reason = *reasons
                .entry((stack, raw.waitreason, state))
                .or_insert_with(|| self.wait_reason(snap, raw, state, leaked, stack));
            self.push_goroutine(
                snap,
                opts,
                &mut sym,
                source,
                raw,
                (state, leaked, unavailable),
                stack,
                wait_reason,
                waiting_on,
            );
        }
        extra.unreadable = headers.unreadable;
        if let Some(s) = snap.sources.get_mut(source as usize) {
            s.goroutines = snap.goroutines.len();
        }
        if timing() {
            eprintln!(
                "stacks: read {t_read:?} (stacks + header re-check), unwind+symbolise {t_unwind:?}, goroutines built {:?}, total {:?}",
                t_build.elapsed(),
                t_all.elapsed()
            );
        }
    }

    /// Reads one goroutine and its stack until the header is the same before and after.
    fn reread_one<M: Memory + ?Sized>(
        &self,
        mem: &M,
        addr: u64,
        opts: &Options,
        sym: &mut Symbolizer<'_, '_>,
        tables: &mut gostall_model::Tables,
        frames: &mut Vec<gostall_model::FrameId>,
    ) -> Option<GRaw> {
        let glen = self.g_read_len();
        let mut gbuf = vec![0u8; glen];
        let mut stack = Vec::new();
        for _ in 0..3 {
            mem.read(addr, &mut gbuf).ok()?;
            let raw = self.parse_g(addr, &gbuf);
            let (state, _) = gstatus::state(raw.status);
            frames.clear();
            if state == GoState::Dead || state == GoState::Running {
                return Some(raw);
            }
            let (pc, sp) = unwind::start(&raw);
            stack.clear();
            if sp >= raw.stack_lo && sp < raw.stack_hi && raw.stack_hi - sp <= opts.max_stack {
                stack.resize((raw.stack_hi - sp) as usize, 0);
                if mem.read(sp, &mut stack).is_err() {
                    stack.clear();
                }
            }
            mem.read(addr, &mut gbuf).ok()?;
            if self.parse_g(addr, &gbuf) == raw {
                sym.unwind(pc, sp, &stack, true, tables, frames);
                return Some(raw);
            }
        }
        frames.clear();
        None
    }

    /// The normalised wait reason: the runtime's own string for this Go version, refined by the
    /// stack (`semacquire` → WaitGroup, cgo calls).
    fn wait_reason(
        &self,
        snap: &Snapshot,
        raw: GRaw,
        state: GoState,
        leaked: bool,
        stack: StackId,
    ) -> Option<WaitReason> {
        let text = self.reason_text(raw, state, leaked);
        let mut wait_reason = match state {
            GoState::Waiting => Some(
                text.map(|t| rt::parse_status(t).wait_reason.unwrap_or(WaitReason::Other))
                    .unwrap_or(WaitReason::Other),
            ),
            GoState::Syscall => Some(WaitReason::Syscall),
            _ => None,
        };
        let tables = &snap.tables;
        let funcs = tables
            .stack(stack)
            .iter()
            .map(|&f| tables.str(tables.frame(f).function));
        if let Some(r) = wait_reason {
            wait_reason = Some(rt::refine_wait_reason(r, funcs.clone()));
        }
        if state == GoState::Syscall && funcs.clone().any(rt::is_cgocall) {
            wait_reason = Some(WaitReason::Cgo);
        }
        wait_reason
    }

    fn reason_text(&self, raw: GRaw, state: GoState, leaked: bool) -> Option<&str> {
        (state == GoState::Waiting || leaked)
            .then(|| {
                self.wait_reasons
                    .get(raw.waitreason as usize)
                    .map(String::as_str)
            })
            .flatten()
    }

    #[allow(clippy::too_many_arguments)]
    fn push_goroutine(
        &self,
        snap: &mut Snapshot,
        opts: &Options,
        sym: &mut Symbolizer<'_, '_>,
        source: u16,
        raw: GRaw,
        (state, leaked, unavailable): (GoState, bool, bool),
        stack_id: StackId,
        wait_reason: Option<WaitReason>,
        waiting_on: Option<u64>,
    ) {
        let reason_text = self.reason_text(raw, state, leaked);
        let raw_status = Some(snap.tables.intern(match (reason_text, state) {
            (Some(t), _) if !t.is_empty() => t,
            (_, GoState::Running) => "running",
            (_, GoState::Runnable) => "runnable",
            (_, GoState::Syscall) => "syscall",
            (_, GoState::Idle) => "idle",
            (_, GoState::Preempted) => "preempted",
            _ => "waiting",
        }));
        let wait_ns = match (opts.now_ns, raw.waitsince) {
            (Some(now), since) if since > 0 && (now as i64) > since => {
                Some((now as i64 - since) as u64)
            }
            _ => None,
        };
        // Goroutine 1 is started by the runtime's bootstrap, which Go never prints.
        let created_by = (raw.gopc != 0 && raw.goid != 1)
            .then(|| sym.created_by(raw.gopc, &mut snap.tables))
            .flatten()
            .map(|frame| CreatedBy {
                frame,
                goroutine: (raw.parent_goid != 0).then_some(raw.parent_goid),
            });
        snap.goroutines.push(Goroutine {
            state,
            wait_reason,
            raw_status,
            wait_minutes: wait_ns
                .map(|ns| (ns / 60_000_000_000) as u32)
                .filter(|&m| m > 0),
            locked_to_thread: raw.lockedm != 0,
            stack_unavailable: unavailable,
            flags: GoFlags {
                scan: raw.status & gstatus::SCAN != 0,
                durable: false,
                leaked,
            },
            created_by,
            wait_ns,
            wait_since: if wait_ns.is_some() {
                gostall_model::WaitSince::RuntimeStamp
            } else {
                gostall_model::WaitSince::Unknown
            },
            waiting_on,
            ..Goroutine::new(raw.goid, 1, stack_id, source)
        });
    }

    /// Ms, Ps and the global scheduler. Part of the paused snapshot.
    pub fn read_sched<M: Memory + ?Sized>(
        &self,
        mem: &M,
        snap: &mut Snapshot,
        extra: &mut Extra,
        headers: &Headers,
    ) -> Result<(), ExtractError> {
        // allm
        let ml = &self.layout.m;
        let mut m = self.read_u64(mem, "runtime.allm", self.sym.allm)?;
        let mut buf = vec![0u8; ml.size as usize];
        let mut seen = 0;
        while m != 0 && seen < 100_000 {
            seen += 1;
            if mem.read(m, &mut buf).is_err() {
                break;
            }
            extra.ms.push(MRecord {
                addr: m,
                id: u64_at(&buf, ml.id) as i64,
                procid: u64_at(&buf, ml.procid),
                curg: u64_at(&buf, ml.curg),
                lockedg: u64_at(&buf, ml.lockedg),
                p: u64_at(&buf, ml.p),
                spinning: u8_at(&buf, ml.spinning) != 0,
                blocked: u8_at(&buf, ml.blocked) != 0,
                incgo: u8_at(&buf, ml.incgo) != 0,
                isextra: ml.isextra.is_some_and(|o| u8_at(&buf, o) != 0),
                extra_in_c: ml.is_extra_in_c.is_some_and(|o| u8_at(&buf, o) != 0),
                signal_pending: ml.signal_pending.map(|o| u32_at(&buf, o) != 0),
                preempt_gen: ml.preempt_gen.map_or(0, |o| u32_at(&buf, o)),
            });
            m = u64_at(&buf, ml.alllink);
        }
        // Goroutine ids of the goroutines Ms run or are locked to (one scan; no full map while the
        // target may be paused).
        let wanted: rustc_hash::FxHashSet<u64> = extra
            .ms
            .iter()
            .flat_map(|m| [m.curg, m.lockedg])
            .filter(|&a| a != 0)
            .collect();
        for raw in &headers.raws {
            if wanted.contains(&raw.addr) {
                extra.g_addr_to_id.insert(raw.addr, raw.goid);
            }
        }
        // allp
        let pl = &self.layout.p;
        let ptr = self.read_u64(mem, "runtime.allp", self.sym.allp)?;
        let len = self
            .read_u64(mem, "runtime.allp", self.sym.allp + 8)?
            .min(1 << 16) as usize;
        let mut praw = vec![0u8; len * 8];
        self.read(mem, "runtime.allp", ptr, &mut praw)?;
        let mut pbuf = vec![0u8; pl.size as usize];
        let m_by_addr: FxHashMap<u64, MRecord> = extra.ms.iter().map(|m| (m.addr, *m)).collect();
        for c in praw.chunks_exact(8) {
            let paddr = u64::from_le_bytes(c.try_into().expect("8"));
            if paddr == 0 || mem.read(paddr, &mut pbuf).is_err() {
                continue;
            }
            let id = u32_at(&pbuf, pl.id) as i32;
            extra.p_addr_to_id.insert(paddr, id);
            let head = u32_at(&pbuf, pl.runqhead);
            let tail = u32_at(&pbuf, pl.runqtail);
            let runnext = u64_at(&pbuf, pl.runnext);
            let mut runq_len = tail.wrapping_sub(head).min(256);
            if runnext != 0 {
                runq_len += 1;
            }
            snap.procs.push(ProcFacts {
                id,
                status: pstatus_name(u32_at(&pbuf, pl.status)).to_string(),
                schedtick: u32_at(&pbuf, pl.schedtick),
                schedtick_later: None,
                syscalltick: u32_at(&pbuf, pl.syscalltick),
                m: None,
                running: None,
                runq_len,
            });
            if let (Some(last), Some(m)) =
                (snap.procs.last_mut(), m_by_addr.get(&u64_at(&pbuf, pl.m)))
            {
                last.m = Some(m.id);
                last.running = extra.g_addr_to_id.get(&m.curg).copied();
            }
        }
        // sched
        let sl = &self.layout.sched;
        let mut sbuf = vec![0u8; sl.size as usize];
        self.read(mem, "runtime.sched", self.sym.sched, &mut sbuf)?;
        let gomaxprocs = match self.sym.gomaxprocs {
            Some(a) => {
                let mut b = [0u8; 4];
                self.read(mem, "runtime.gomaxprocs", a, &mut b)?;
                u32::from_le_bytes(b)
            }
            None => snap.procs.len() as u32,
        };
        snap.scheduler = Some(SchedFacts {
            gomaxprocs,
            global_runq: u32_at(&sbuf, sl.runqsize),
            idle_ps: u32_at(&sbuf, sl.npidle),
            spinning_ms: u32_at(&sbuf, sl.nmspinning),
            idle_ms: u32_at(&sbuf, sl.nmidle),
            // A crash freezes the world the same way (runtime.freezetheworld: gcwaiting set,
            // stopwait = freezeStopWait), in a core of it: no stop is pending then.
            gc_waiting: sl.gcwaiting.is_some_and(|o| u8_at(&sbuf, o) != 0)
                && sl
                    .stopwait
                    .is_none_or(|o| u32_at(&sbuf, o) != FREEZE_STOP_WAIT),
        });
        snap.process.gomaxprocs = Some(gomaxprocs);
        Ok(())
    }
}
