//! The reachability proof: which blocked goroutines nothing that can still run can ever wake.
//!
//! The same fixed point as Go 1.27's leak detector (`runtime/mgc.go`: `findGoroutineLeaks`,
//! `isMaybeRunnable`), computed from outside on any Go 1.21–1.27 program:
//!
//! 1. Every goroutine is classified by what it waits on ([`crate::waits`]): goroutines that are
//!    running, runnable, in a system call, in the netpoller, asleep or parked for the runtime's
//!    own reasons *may run*; goroutines blocked on channels, locks, WaitGroups, Conds and
//!    semaphores wait on objects; nil-channel operations and `select {}` wait forever.
//! 2. The heap's span map is read ([`gostall_heap::Heap`]) and the mark starts from the roots: the
//!    data and bss of every module (with the linker's pointer bitmaps), the finalizers and
//!    cleanups the runtime keeps, and the stacks of goroutines that may run (with the
//!    compiler's stack maps). The blocked goroutines' `sudog.c` and `sudog.elem` are hidden, as
//!    Go hides them, so the runtime's own wait queues keep nothing alive.
//! 3. A blocked goroutine whose object gets marked (or lives outside the heap) may be woken: its
//!    stack becomes a root too, and marking goes on until nothing changes.
//! 4. The blocked goroutines left are leaked: nothing that can run reaches what they wait on.
//!
//! Heap objects are scanned conservatively (every word that points into an object keeps it):
//! that can only keep more alive, so it may miss a leak but never invents one. Reads race with
//! the running program, so without a pause the proof is taken twice, apart, and a goroutine is
//! reported only when both marks found it leaked with its wait unchanged.

use crate::stackscan::{scan_stack, PcCache, ScanStats};
use crate::waits::{self, Blocking, WaitObj};
use crate::{Extra, GRaw, Options, Program};
use gostall_access::{Activity, Memory, ReadReq};
use gostall_goruntime::layout::gstatus::state as gstatus_state;
use gostall_heap::{Heap, Marker, ObjRef};
use gostall_model::{
    GoState, ObjectHome, ObjectKind, ObjectState, ProofFacts, Reach, Reacher, ScanMethod, Snapshot,
    SyncObject, WaitEdge, WaitReason,
};
use rustc_hash::{FxHashMap, FxHashSet};
use std::time::{Duration, Instant};

/// How to take the proof.
#[derive(Debug, Clone, Copy)]
pub struct ProofOptions {
    /// Marks taken (at least 1); a goroutine counts as leaked only if every one agrees. The
    /// second and later marks are taken only when the first found a leak.
    pub passes: u32,
    /// Time between marks.
    pub interval: Duration,
    /// The target is stopped during the whole proof: one mark is a consistent view.
    pub paused: bool,
}

impl Default for ProofOptions {
    fn default() -> Self {
        ProofOptions {
            passes: 2,
            interval: Duration::from_millis(50),
            paused: false,
        }
    }
}

/// What the proof adds to a snapshot.
#[derive(Debug, Default)]
pub struct Proof {
    /// The summary: leaked goroutines, how memory was scanned.
    pub facts: Option<ProofFacts>,
    /// The objects blocked goroutines wait on.
    pub objects: Vec<SyncObject>,
    /// Goroutine → object edges, sorted by goroutine.
    pub waits: Vec<WaitEdge>,
}

impl Proof {
    /// Moves the proof's facts into the snapshot.
    pub fn apply(self, snap: &mut Snapshot) {
        snap.proof = self.facts;
        snap.objects = self.objects;
        snap.waits = self.waits;
    }
}

/// One goroutine as a pass sees it (its raw fields where they were read: 200k goroutines are
/// not copied for each pass).
#[derive(Clone, Copy)]
struct GIn<'r> {
    id: u64,
    raw: &'r GRaw,
    state: GoState,
    /// Normalised wait reason; `None` for goroutines that may run.
    reason: Option<WaitReason>,
    /// Index into the snapshot's goroutines (for stack functions), if it is there.
    snap_index: Option<u32>,
}

/// A pass's verdict on one blocked goroutine: its objects are `objects[first..first + n]` of
/// its [`Verdicts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Verdict {
    id: u64,
    first: u32,
    n: u32,
    leaked: bool,
}

/// A pass's verdicts on the blocked goroutines, sorted by goroutine id, with their objects and
/// how each was reached in flat arrays (200k goroutines: no allocation each).
#[derive(Debug, Default)]
struct Verdicts {
    list: Vec<Verdict>,
    objects: Vec<WaitObj>,
    /// Which of the objects were reached, and from where (None: unreachable).
    reached: Vec<Option<Reacher>>,
}

impl Verdicts {
    fn get(&self, id: u64) -> Option<&Verdict> {
        self.list
            .binary_search_by_key(&id, |v| v.id)
            .ok()
            .map(|i| &self.list[i])
    }

    fn objects(&self, v: &Verdict) -> &[WaitObj] {
        &self.objects[v.first as usize..(v.first + v.n) as usize]
    }

    fn reached(&self, v: &Verdict) -> &[Option<Reacher>] {
        &self.reached[v.first as usize..(v.first + v.n) as usize]
    }

    /// Sorts the list by id; of two verdicts on one id, the later made counts.
    fn finish(&mut self) {
        self.list.reverse();
        self.list.sort_by_key(|v| v.id);
        self.list.dedup_by_key(|v| v.id);
    }
}

struct PassOut {
    verdicts: Verdicts,
    /// Object pieces scanned with the runtime's metadata, and conservatively.
    heap_counts: (u64, u64),
    /// Objects' heap homes: object address → (base, size).
    homes: FxHashMap<u64, (u64, u64)>,
    /// Objects' referrers: object address → goroutines whose live frames point into the heap
    /// object holding it (ascending, bounded).
    refs: FxHashMap<u64, Vec<u64>>,
    marked: u64,
    scanned: u64,
    spans: u64,
    stats: ScanStats,
    notes: Vec<String>,
}

/// Bytes of a goroutine's stack read at most.
const MAX_STACK: u64 = 64 << 20;
/// Goroutine stacks read per vectored batch.
const STACK_BATCH: usize = 2048;
/// Goroutines whose waits are read ahead together.
const WAIT_BATCH: usize = 1024;
/// Sudogs of a select's chain read ahead (later ones are read one by one).
const SUDOG_ROUNDS: usize = 4;
/// Largest module data or bss section scanned.
const MAX_SECTION: u64 = 1 << 30;
/// Most direct referrers kept per object.
const MAX_REFERRERS: usize = 64;

impl<'p> Program<'p> {
    /// Takes the reachability proof over the goroutines `extra` read into `snap`.
    ///
    /// # Errors
    /// A sentence saying why no proof could be made (the heap's layout is not described, the
    /// heap could not be read); the caller notes it and reports without a proof.
    pub fn prove<M: Memory + Sync + ?Sized>(
        &self,
        mem: &M,
        snap: &Snapshot,
        extra: &Extra,
        opts: &ProofOptions,
    ) -> Result<Proof, String> {
        self.prove_with_roots(mem, snap, extra, opts, &[], None)
    }

    /// [`Program::prove`] of a running target whose activity can be stamped: when the target ran
    /// nothing during the first mark ([`Activity::idle_since`]), that mark read a consistent view
    /// and the confirming marks are not needed.
    ///
    /// # Errors
    /// As [`Program::prove`].
    pub fn prove_watching<M: Memory + Sync + ?Sized>(
        &self,
        mem: &M,
        snap: &Snapshot,
        extra: &Extra,
        opts: &ProofOptions,
        activity: &dyn Fn() -> Option<Activity>,
    ) -> Result<Proof, String> {
        self.prove_with_roots(mem, snap, extra, opts, &[], Some(activity))
    }

    /// [`Program::prove`] with extra root words: the registers of threads stopped by a pause,
    /// which may hold the only pointer to an object a running goroutine uses; and, for a running
    /// target, a stamp of its activity ([`Program::prove_watching`]).
    ///
    /// # Errors
    /// As [`Program::prove`].
    pub fn prove_with_roots<M: Memory + Sync + ?Sized>(
        &self,
        mem: &M,
        snap: &Snapshot,
        extra: &Extra,
        opts: &ProofOptions,
        roots: &[u64],
        activity: Option<&dyn Fn() -> Option<Activity>>,
    ) -> Result<Proof, String> {
        let t0 = Instant::now();
        let first: Vec<GIn> = extra
            .graws
            .iter()
            .enumerate()
            .filter_map(|(k, raw)| {
                let i = extra.first_goroutine + k;
                let g = snap.goroutines.get(i)?;
                let blocked = g.state == GoState::Waiting;
                Some(GIn {
                    id: g.id,
                    raw,
                    state: g.state,
                    reason: if blocked { g.wait_reason } else { None },
                    snap_index: u32::try_from(i).ok(),
                })
            })
            .collect();
        let on_stack = |gi: &GIn, name: &str| {
            gi.snap_index.is_some_and(|i| {
                let i = i as usize;
                let t = &snap.tables;
                t.stack(snap.goroutines[i].stack)
                    .iter()
                    .any(|&f| t.str(t.frame(f).function) == name)
            })
        };
        let before = activity.and_then(|a| a());
        let mut p1 = self.pass(mem, &first, &on_stack, roots, None)?;
        // The target ran nothing during the mark: it read memory as still as a pause leaves it.
        let quiescent = !opts.paused
            && before
                .as_ref()
                .is_some_and(|b| activity.and_then(|a| a()).is_some_and(|a| a.idle_since(b)));
        let mut passes = 1;
        let mut verdicts = std::mem::take(&mut p1.verdicts);
        let mut disagreed = 0u32;
        let mut notes = p1.notes.clone();
        let any_leak = verdicts.list.iter().any(|v| v.leaked);
        // Later marks only confirm these: their other outputs are not used.
        let candidates: FxHashSet<u64> = verdicts
            .list
            .iter()
            .filter(|v| v.leaked)
            .map(|v| v.id)
            .collect();
        if any_leak && quiescent {
            // The goroutines' states were read before the mark: a leaked one must still be in the
            // wait it was read in (as a confirming mark requires).
            let headers = self
                .read_headers(mem, &Options::default())
                .map_err(|e| format!("the goroutines could not be read again: {e}"))?;
            let now: FxHashMap<u64, &GRaw> = headers.raws.iter().map(|r| (r.addr, r)).collect();
            let then: FxHashMap<u64, &GRaw> = first.iter().map(|g| (g.id, g.raw)).collect();
            for v in verdicts.list.iter_mut().filter(|v| v.leaked) {
                let same = then
                    .get(&v.id)
                    .is_some_and(|a| now.get(&a.addr).is_some_and(|b| same_wait(a, b)));
                if !same {
                    v.leaked = false;
                    disagreed += 1;
                }
            }
            notes.push(
                "the program ran no instruction during the mark (no thread runnable, none with more CPU time or another timeslice in /proc/PID/task/*/schedstat): one mark is a consistent view, as under a pause".to_string(),
            );
        }
        if any_leak && !opts.paused && !quiescent && opts.passes >= 2 {
            for _ in 1..opts.passes {
                let t_trim = Instant::now();
                release_free_memory();
                let t_trim = t_trim.elapsed();
                std::thread::sleep(opts.interval);
                let t_next = Instant::now();
                let headers = self
                    .read_headers(mem, &Options::default())
                    .map_err(|e| format!("the goroutines could not be read again: {e}"))?;
                // The goroutines as read again: those in the same wait as they are (their first
                // read), the others as read now (kept, the rest of the read dropped).
                let mut order: Vec<Result<usize, usize>> = Vec::with_capacity(headers.raws.len());
                let mut fresh: Vec<GRaw> = Vec::new();
                {
                    let mut by_addr: FxHashMap<u64, (usize, bool)> = headers
                        .raws
                        .iter()
                        .enumerate()
                        .map(|(j, r)| (r.addr, (j, false)))
                        .collect();
                    let add = |j: usize, fresh: &mut Vec<GRaw>| {
                        fresh.push(headers.raws[j]);
                        Err(fresh.len() - 1)
                    };
                    for (k, gi) in first.iter().enumerate() {
                        let Some((j, known)) = by_addr.get_mut(&gi.raw.addr) else {
                            continue;
                        };
                        *known = true;
                        let j = *j;
                        order.push(if same_wait(gi.raw, &headers.raws[j]) {
                            Ok(k)
                        } else {
                            add(j, &mut fresh)
                        });
                    }
                    for (j, r) in headers.raws.iter().enumerate() {
                        if by_addr.get(&r.addr).is_some_and(|&(_, known)| !known) {
                            order.push(add(j, &mut fresh));
                        }
                    }
                }
                drop(headers);
                let next: Vec<GIn> = order
                    .iter()
                    .map(|o| match *o {
                        Ok(k) => first[k],
                        Err(n) => {
                            let r = &fresh[n];
                            GIn {
                                id: r.goid,
                                raw: r,
                                state: gstatus_state(r.status).0,
                                reason: None,
                                snap_index: None,
                            }
                        }
                    })
                    .collect();
                drop(order);
                if crate::timing() {
                    eprintln!(
                        "proof: memory returned in {t_trim:?}; goroutines read again and compared in {:?}",
                        t_next.elapsed()
                    );
                }
                let p = self.pass(mem, &next, &on_stack, &[], Some(&candidates))?;
                passes += 1;
                let Verdicts { list, objects, .. } = &mut verdicts;
                for v in list.iter_mut() {
                    if v.leaked {
                        let mine = &objects[v.first as usize..(v.first + v.n) as usize];
                        let agree = p
                            .verdicts
                            .get(v.id)
                            .is_some_and(|w| w.leaked && p.verdicts.objects(w) == mine);
                        if !agree {
                            v.leaked = false;
                            disagreed += 1;
                        }
                    }
                }
                for n in p.notes {
                    if !notes.contains(&n) {
                        notes.push(n);
                    }
                }
            }
        }
        let running = first.iter().filter(|g| g.state == GoState::Running).count();
        if running > 0 && roots.is_empty() {
            notes.push(format!(
                "{running} goroutine(s) were running: their stacks were scanned whole and conservatively; values held only in their registers are not seen"
            ));
        }
        let mut leaked: Vec<u64> = verdicts
            .list
            .iter()
            .filter(|v| v.leaked)
            .map(|v| v.id)
            .collect();
        leaked.sort_unstable();
        // Go's rule: the main goroutine parked in `select {}` is not reported.
        leaked.retain(|&id| {
            !(id == 1
                && first
                    .iter()
                    .any(|g| g.id == 1 && g.reason == Some(WaitReason::SelectNoCases)))
        });
        let t_end = Instant::now();
        let (mut objects, waits) = graph(&verdicts, &p1.homes, &leaked);
        let t_graph = t_end.elapsed();
        self.complete_objects(mem, &mut objects, &waits, &p1.refs);
        let t_complete = t_end.elapsed();
        crate::defers::refine_holders(self, mem, &extra.graws, &mut objects, &p1.homes);
        if crate::timing() {
            eprintln!(
                "proof: wait-for graph {t_graph:?} ({} objects, {} edges), objects' state {:?}, lock holders from defers {:?}",
                objects.len(),
                waits.len(),
                t_complete - t_graph,
                t_end.elapsed() - t_complete
            );
        }
        let stack_scan = if p1.stats.conservative_frames == 0 {
            ScanMethod::Precise
        } else {
            ScanMethod::Mixed
        };
        Ok(Proof {
            facts: Some(ProofFacts {
                leaked,
                heap_scan: match p1.heap_counts {
                    (_, 0) => ScanMethod::Precise,
                    (0, _) => ScanMethod::Conservative,
                    _ => ScanMethod::Mixed,
                },
                stack_scan,
                passes,
                disagreed,
                paused: opts.paused,
                quiescent,
                objects_marked: p1.marked,
                bytes_scanned: p1.scanned,
                spans: p1.spans,
                took_us: t0.elapsed().as_micros() as u64,
                notes,
            }),
            objects,
            waits,
        })
    }

    /// One full mark over the goroutines `gs`.
    ///
    /// With `only`, a mark that confirms: verdicts are made for those goroutines alone, and the
    /// objects' homes and referrers are not collected.
    fn pass<M: Memory + Sync + ?Sized>(
        &self,
        mem: &M,
        gs: &[GIn],
        on_stack: &dyn Fn(&GIn, &str) -> bool,
        extra_roots: &[u64],
        only: Option<&FxHashSet<u64>>,
    ) -> Result<PassOut, String> {
        let full = only.is_none();
        let wanted = |id: u64| only.is_none_or(|o| o.contains(&id));
        let t0 = Instant::now();
        let hl = self
            .layout
            .heap
            .as_ref()
            .map_err(|e| format!("the heap's layout is not described: {e}"))?;
        let mheap = self
            .sym
            .mheap
            .ok_or("the binary does not name runtime.mheap_")?;
        let arenas = self.read_go_memory(mem).arenas;
        let mut bases = Vec::new();
        for &(lo, hi) in &arenas {
            let mut a = lo;
            while a < hi && bases.len() < (1 << 20) {
                bases.push(a);
                a += hl.arena_bytes;
            }
        }
        let heap = Heap::read(mem, hl, mheap, &bases).map_err(|e| e.to_string())?;
        let t_heap = t0.elapsed();
        let mut rss = vec![rss_mib()];
        let mut notes = Vec::new();
        let modules = self.modules(mem, hl, &mut notes);
        let in_modules = |p: u64| modules.iter().any(|m| m.contains(p));
        let semas = waits::sema_waiters(self, mem);
        // What each goroutine waits on: their sudogs (and the tops of the stacks of Cond
        // waiters) read ahead in vectored reads, a chunk of goroutines at a time.
        let mut blocking: Vec<Blocking> = Vec::with_capacity(gs.len());
        let su = &self.layout.sudog;
        for chunk in gs.chunks(WAIT_BATCH) {
            let blocked = |gi: &&GIn| gi.state != GoState::Dead && gi.reason.is_some();
            let mut ahead = ReadAhead::new(mem);
            let mut reqs: Vec<ReadReq> = chunk
                .iter()
                .filter(blocked)
                .filter(|gi| gi.raw.waiting != 0)
                .map(|gi| ReadReq {
                    addr: gi.raw.waiting,
                    len: su.size as usize,
                })
                .collect();
            // Selects wait on a chain of sudogs.
            for _ in 0..SUDOG_ROUNDS {
                if reqs.is_empty() {
                    break;
                }
                let first = ahead.ranges.len();
                ahead.add(&reqs);
                reqs = ahead.ranges[first..]
                    .iter()
                    .map(|&(_, _, off)| crate::u64_at(&ahead.buf[off..], su.waitlink))
                    .filter(|&next| next != 0 && !ahead.covers(next, su.size))
                    .map(|addr| ReadReq {
                        addr,
                        len: su.size as usize,
                    })
                    .collect();
            }
            let tops: Vec<ReadReq> = chunk
                .iter()
                .filter(blocked)
                .filter(|gi| gi.reason == Some(WaitReason::CondWait))
                .map(|gi| {
                    let (_, sp) = crate::unwind::start(gi.raw);
                    ReadReq {
                        addr: sp,
                        len: 4096.min(gi.raw.stack_hi.saturating_sub(sp)) as usize,
                    }
                })
                .collect();
            let mut top_buf = vec![0u8; tops.iter().map(|r| r.len).sum()];
            let mut top_ok = Vec::new();
            mem.read_batch(&tops, &mut top_buf, &mut top_ok);
            let (mut top_k, mut top_at) = (0usize, 0usize);
            for gi in chunk {
                if gi.state == GoState::Dead {
                    blocking.push(Blocking::MayRun);
                    continue;
                }
                let b = match gi.reason {
                    None => Blocking::MayRun,
                    Some(WaitReason::CondWait) => {
                        let len = tops[top_k].len;
                        let top: &[u8] = if top_ok.get(top_k).copied().unwrap_or(false) {
                            &top_buf[top_at..top_at + len]
                        } else {
                            &[]
                        };
                        top_k += 1;
                        top_at += len;
                        waits::blocking(
                            self,
                            &ahead,
                            gi.raw,
                            gi.reason,
                            &semas,
                            &|n| on_stack(gi, n),
                            top,
                            &|p| heap.contains(p) || in_modules(p),
                        )
                    }
                    Some(_) => waits::blocking(
                        self,
                        &ahead,
                        gi.raw,
                        gi.reason,
                        &semas,
                        &|n| on_stack(gi, n),
                        &[],
                        &|_| false,
                    ),
                };
                blocking.push(b);
            }
        }
        let t_blocking = t0.elapsed();
        rss.push(rss_mib());
        let mut marker = Marker::new(&heap);
        let trace = std::env::var_os("GOSTALL_PROOF_TRACE").is_some();
        if trace {
            marker.trace();
        }
        // Goroutines waiting on each watched heap object.
        let mut waiters: FxHashMap<ObjRef, Vec<usize>> = FxHashMap::default();
        let mut roots: Vec<usize> = Vec::new();
        // Per goroutine whose verdict is made: where its objects' reach is recorded in
        // `reached` (u32::MAX: nowhere).
        let mut reach_at: Vec<u32> = vec![u32::MAX; gs.len()];
        let mut reached: Vec<Option<Reacher>> = Vec::new();
        let mut homes: FxHashMap<u64, (u64, u64)> = FxHashMap::default();
        let (hide_c, hide_elem) = (hl.sudog_hidden[0], hl.sudog_hidden[1]);
        marker.reserve_hidden(
            blocking
                .iter()
                .map(|b| match b {
                    Blocking::On { sudogs, .. } => sudogs.len(),
                    _ => 0,
                })
                .sum::<usize>()
                * (hide_c.1.div_ceil(8) + hide_elem.1.div_ceil(8)) as usize,
        );
        for (i, b) in blocking.iter().enumerate() {
            match b {
                Blocking::MayRun | Blocking::Unknown => {
                    if gs[i].state != GoState::Dead {
                        roots.push(i);
                    }
                }
                Blocking::Forever => {}
                Blocking::On { objects, sudogs } => {
                    for &s in sudogs {
                        marker.hide(s + hide_c.0, hide_c.1);
                        marker.hide(s + hide_elem.0, hide_elem.1);
                    }
                    let at = reached.len();
                    let keep = wanted(gs[i].id);
                    if keep {
                        reach_at[i] = at as u32;
                        reached.resize(at + objects.len(), None);
                    }
                    let mut runnable = false;
                    for (k, o) in objects.iter().enumerate() {
                        match marker.watch(o.addr) {
                            Some(obj) => {
                                if full {
                                    homes.insert(o.object, heap.object(obj));
                                }
                                waiters.entry(obj).or_default().push(i);
                            }
                            None => {
                                if keep {
                                    reached[at + k] = Some(Reacher::NotInHeap);
                                }
                                runnable = true;
                            }
                        }
                    }
                    if runnable {
                        roots.push(i);
                    }
                }
            }
        }
        let mut promoted = Promoted(vec![false; gs.len()]);
        for &i in &roots {
            promoted.insert(i);
        }
        let mut stats = ScanStats::default();
        let rodata = hl
            .md_rodata
            .and_then(|o| {
                self.sym
                    .firstmoduledata
                    .and_then(|md| mem.read_u64(md + o).ok())
            })
            .map(|r| r.wrapping_sub(self.bias));
        // Globals, and the registers of stopped threads.
        for m in &modules {
            m.scan(mem, &mut marker, &mut notes);
        }
        for &v in extra_roots {
            marker.consider(0, v);
        }
        marker.drain(mem);
        let attribute = |marker: &mut Marker<'_>,
                         via: &dyn Fn(ObjRef) -> Reacher,
                         reached: &mut Vec<Option<Reacher>>|
         -> Vec<usize> {
            let mut woken = Vec::new();
            for obj in marker.take_hits() {
                for &i in waiters.get(&obj).into_iter().flatten() {
                    let at = reach_at[i];
                    if let (true, Blocking::On { objects, .. }) = (at != u32::MAX, &blocking[i]) {
                        for (k, o) in objects.iter().enumerate() {
                            let r = &mut reached[at as usize + k];
                            if r.is_none() && heap.object_of(o.addr) == Some(obj) {
                                *r = Some(via(obj));
                            }
                        }
                    }
                    woken.push(i);
                }
            }
            woken
        };
        let mut woken = attribute(
            &mut marker,
            &|_| Reacher::Global { symbol: None },
            &mut reached,
        );
        // Finalizers and cleanups: what their objects point to, and the records themselves.
        for (obj, rec, finalizer) in heap.finalizers(mem, hl) {
            if finalizer {
                marker.scan_contents(obj);
            }
            let mut b = vec![0u8; (hl.special_size + 32) as usize];
            if mem.read(rec, &mut b).is_ok() {
                marker.scan_root(rec, &b[hl.special_size as usize..], None);
            }
        }
        marker.drain(mem);
        woken.extend(attribute(
            &mut marker,
            &|_| Reacher::Finalizer,
            &mut reached,
        ));
        let t_roots = t0.elapsed();
        rss.push(rss_mib());
        // Stacks of goroutines that may run, then the fixed point.
        let mut pcs = PcCache::default();
        let mut direct: FxHashMap<ObjRef, Vec<u64>> = FxHashMap::default();
        let mut queue: Vec<usize> = roots;
        for i in woken {
            if promoted.insert(i) {
                queue.push(i);
            }
        }
        while !queue.is_empty() {
            // Each chunk's stacks are read while the one before is scanned and drained.
            let chunks: Vec<&[usize]> = queue.chunks(STACK_BATCH).collect();
            std::thread::scope(|sc| {
                let read = |k: usize| read_stacks(mem, chunks[k].iter().map(|&i| &gs[i]));
                let mut next = Some(sc.spawn(move || read(0)));
                for k in 0..chunks.len() {
                    let cur = match next.take().map(|h| h.join()) {
                        Some(Ok(cur)) => cur,
                        Some(Err(p)) => std::panic::resume_unwind(p),
                        None => read(k),
                    };
                    if k + 1 < chunks.len() {
                        next = Some(sc.spawn(move || read(k + 1)));
                    }
                    self.scan_stacks(
                        &mut pcs,
                        &mut marker,
                        true,
                        cur,
                        rodata,
                        &mut stats,
                        &mut direct,
                    );
                    marker.drain(mem);
                }
            });
            queue.clear();
            let via = |obj: ObjRef| match direct.get(&obj).and_then(|v| v.first()) {
                Some(&id) => Reacher::Goroutine { id },
                None => Reacher::Goroutines,
            };
            for i in attribute(&mut marker, &via, &mut reached) {
                if promoted.insert(i) {
                    queue.push(i);
                }
            }
        }
        let t_fixed = t0.elapsed();
        rss.push(rss_mib());
        let mut left_stats = ScanStats::default();
        // The goroutines still blocked: which objects their own frames point at (a lock's
        // holder may itself be blocked), without marking anything.
        let left: Vec<usize> = (0..gs.len())
            .filter(|i| {
                full && !promoted.contains(*i)
                    && matches!(blocking[*i], Blocking::On { .. } | Blocking::Forever)
            })
            .collect();
        for chunk in left.chunks(STACK_BATCH) {
            self.scan_stacks(
                &mut pcs,
                &mut marker,
                false,
                read_stacks(mem, chunk.iter().map(|&i| &gs[i])),
                rodata,
                &mut left_stats,
                &mut direct,
            );
        }
        let t_left = t0.elapsed();
        rss.push(rss_mib());
        if crate::timing() {
            let ms = marker.stats;
            eprintln!(
                "proof pass: heap map {t_heap:?} ({} spans), waits {:?}, globals+finalizers {:?}, stacks and fixed point {:?} ({} stacks, {} MiB read in {:?}), blocked stacks {:?} ({} stacks, {} MiB in {:?}); mark: {} objects, {} MiB scanned, {} waves (largest {} objects), {} reads of {} ranges, {} MiB read in {:?}, bitmaps and types {:?}, scan {:?}, batching {:?}, waiting for turns {:?}, drains {:?} (two threads {:?}); RSS after each phase {:?} MiB",
                heap.spans.len(),
                t_blocking - t_heap,
                t_roots - t_blocking,
                t_fixed - t_roots,
                stats.stacks_read,
                stats.stack_bytes >> 20,
                stats.read,
                t_left - t_fixed,
                left_stats.stacks_read,
                left_stats.stack_bytes >> 20,
                left_stats.read,
                marker.marked,
                marker.bytes_scanned >> 20,
                ms.waves,
                ms.max_wave,
                ms.batches,
                ms.ranges,
                ms.bytes_read >> 20,
                ms.read,
                ms.maps,
                ms.scan,
                ms.build,
                ms.wait,
                ms.drain,
                ms.parallel,
                rss,
            );
        }
        let mut refs: FxHashMap<u64, Vec<u64>> = FxHashMap::default();
        for b in blocking.iter().filter(|_| full) {
            if let Blocking::On { objects, .. } = b {
                for o in objects {
                    if let Some(list) = heap.object_of(o.addr).and_then(|r| direct.get(&r)) {
                        let mut l = list.clone();
                        l.sort_unstable();
                        l.dedup();
                        refs.insert(o.object, l);
                    }
                }
            }
        }
        if trace {
            if let Ok(list) = std::env::var("GOSTALL_PROOF_TRACE") {
                for a in list
                    .split(',')
                    .filter_map(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok())
                {
                    eprintln!(
                        "proof trace: {a:#x} marked={:?} span={:?}",
                        marker.is_marked(a),
                        heap.span_of(a).map(|s| heap.spans[s as usize])
                    );
                }
            }
            for obj in waiters.keys() {
                if marker.is_marked_ref(*obj) {
                    let path: Vec<String> = marker
                        .path(*obj)
                        .iter()
                        .map(|a| {
                            let name = self.global_at(*a).unwrap_or_default();
                            format!("{a:#x} {name}")
                        })
                        .collect();
                    eprintln!(
                        "proof trace: {:#x} reached via {}",
                        heap.object(*obj).0,
                        path.join(" -> ")
                    );
                }
            }
        }
        let mut verdicts = Verdicts::default();
        for (i, b) in blocking.into_iter().enumerate() {
            let gi = &gs[i];
            if !wanted(gi.id) {
                continue;
            }
            let first = verdicts.objects.len() as u32;
            match b {
                Blocking::Forever => verdicts.list.push(Verdict {
                    id: gi.id,
                    first,
                    n: 0,
                    leaked: true,
                }),
                Blocking::On { objects, .. } => {
                    let n = objects.len();
                    let at = reach_at[i] as usize;
                    verdicts.objects.extend(objects);
                    verdicts.reached.extend(
                        reached
                            .get_mut(at..at + n)
                            .into_iter()
                            .flatten()
                            .map(Option::take),
                    );
                    verdicts.reached.resize(verdicts.objects.len(), None);
                    verdicts.list.push(Verdict {
                        id: gi.id,
                        first,
                        n: n as u32,
                        leaked: !promoted.contains(i),
                    });
                }
                _ => {}
            }
        }
        verdicts.finish();
        Ok(PassOut {
            heap_counts: marker.scan_counts(),
            verdicts,
            homes,
            refs,
            marked: marker.marked,
            scanned: marker.bytes_scanned,
            spans: heap.spans.len() as u64,
            stats,
            notes,
        })
    }

    /// Scans stacks read by [`read_stacks`]: with `mark`, as roots; records which goroutines
    /// point straight at each watched object.
    #[allow(clippy::too_many_arguments)]
    fn scan_stacks(
        &self,
        pcs: &mut PcCache<'p>,
        marker: &mut Marker<'_>,
        mark: bool,
        stacks: Stacks<'_, '_>,
        rodata: Option<u64>,
        stats: &mut ScanStats,
        direct: &mut FxHashMap<ObjRef, Vec<u64>>,
    ) {
        let Stacks {
            plan,
            reqs,
            buf,
            ok,
            read,
        } = stacks;
        stats.read += read;
        stats.stacks_read += reqs.len() as u64;
        stats.stack_bytes += buf.len() as u64;
        let mut at = 0usize;
        for (k, (gi, pc, sp, precise)) in plan.into_iter().enumerate() {
            let len = reqs[k].len;
            let bytes = &buf[at..at + len];
            at += len;
            if !ok.get(k).copied().unwrap_or(false) {
                continue;
            }
            let id = gi.id;
            let mut on_word = |at: u64, v: u64| {
                if let Some(obj) = marker.consider_watched(at, v, mark) {
                    let l = direct.entry(obj).or_default();
                    if l.len() < MAX_REFERRERS && l.last() != Some(&id) {
                        l.push(id);
                    }
                }
            };
            if precise {
                scan_stack(self, pcs, pc, sp, bytes, rodata, stats, &mut on_word);
            } else {
                stats.conservative_frames += 1;
                for (i, w) in bytes.chunks_exact(8).enumerate() {
                    let v = u64::from_le_bytes(w.try_into().expect("8 bytes"));
                    on_word(sp + 8 * i as u64, v);
                }
            }
        }
    }

    /// The modules' data and bss, from the moduledata list.
    fn modules<M: Memory + ?Sized>(
        &self,
        mem: &M,
        hl: &gostall_goruntime::layout::HeapLayout,
        notes: &mut Vec<String>,
    ) -> Vec<ModuleRoots> {
        let mut out = Vec::new();
        let Some(mut md) = self.sym.firstmoduledata else {
            notes.push(
                "the module list is unknown (no runtime.firstmoduledata): globals were not scanned"
                    .to_string(),
            );
            return out;
        };
        let need = [hl.md_data[3], hl.md_masks[1], hl.md_next]
            .into_iter()
            .max()
            .unwrap_or(0)
            + 16;
        let mut buf = vec![0u8; need as usize];
        let mut seen = 0;
        while md != 0 && seen < 64 {
            seen += 1;
            if mem.read(md, &mut buf).is_err() {
                notes.push(format!("module data at {md:#x} could not be read"));
                break;
            }
            let w = |o: u64| crate::u64_at(&buf, o);
            let mask = |o: u64| (crate::u32_at(&buf, o) as u64, w(o + 8));
            out.push(ModuleRoots {
                data: (w(hl.md_data[0]), w(hl.md_data[1])),
                bss: (w(hl.md_data[2]), w(hl.md_data[3])),
                masks: [mask(hl.md_masks[0]), mask(hl.md_masks[1])],
            });
            md = w(hl.md_next);
        }
        out
    }
}

/// One module's global roots.
struct ModuleRoots {
    data: (u64, u64),
    bss: (u64, u64),
    /// (bits, bitmap address) for data and bss.
    masks: [(u64, u64); 2],
}

impl ModuleRoots {
    fn contains(&self, p: u64) -> bool {
        (p >= self.data.0 && p < self.data.1) || (p >= self.bss.0 && p < self.bss.1)
    }

    fn scan<M: Memory + ?Sized>(&self, mem: &M, marker: &mut Marker<'_>, notes: &mut Vec<String>) {
        for (k, &(lo, hi)) in [self.data, self.bss].iter().enumerate() {
            if hi <= lo || hi - lo > MAX_SECTION {
                continue;
            }
            let mut bytes = vec![0u8; (hi - lo) as usize];
            if mem.read(lo, &mut bytes).is_err() {
                notes.push(format!(
                    "module {} at {lo:#x} could not be read: scanned nothing there",
                    if k == 0 { "data" } else { "bss" }
                ));
                continue;
            }
            let (nbits, at) = self.masks[k];
            let mut bits = vec![0u8; nbits.div_ceil(8) as usize];
            let precise = nbits > 0
                && nbits.div_ceil(8) <= (hi - lo).div_ceil(8)
                && mem.read(at, &mut bits).is_ok();
            marker.scan_root(lo, &bytes, precise.then_some(&bits[..]));
        }
    }
}

impl Program<'_> {
    /// Each object's own state (a channel's buffer, a lock's bits, a WaitGroup's counter), who
    /// else points at it, and — for locks — who likely holds it.
    fn complete_objects<M: Memory + ?Sized>(
        &self,
        mem: &M,
        objects: &mut [SyncObject],
        waits: &[WaitEdge],
        refs: &FxHashMap<u64, Vec<u64>>,
    ) {
        let sy = &self.layout.sync;
        let hc = &self.layout.hchan;
        let u32_at = |a: u64| mem.read_u32(a).ok();
        // The goroutines waiting on each object, grouped once (ascending, deduplicated).
        let mut waiting: Vec<Vec<u64>> = vec![Vec::new(); objects.len()];
        for w in waits {
            if let Some(l) = waiting.get_mut(w.object as usize) {
                l.push(w.goroutine);
            }
        }
        for l in &mut waiting {
            l.sort_unstable();
            l.dedup();
        }
        for (i, o) in objects.iter_mut().enumerate() {
            let a = o.addr;
            o.state = match o.kind {
                ObjectKind::Channel => ObjectState {
                    len: mem.read_u64(a + hc.qcount).ok(),
                    capacity: mem.read_u64(a + hc.dataqsiz).ok(),
                    closed: u32_at(a + hc.closed).map(|c| c != 0),
                    ..ObjectState::default()
                },
                ObjectKind::Mutex => ObjectState {
                    locked: sy
                        .mutex_state
                        .and_then(|s| u32_at(a + s))
                        .map(|v| v & 1 != 0),
                    ..ObjectState::default()
                },
                ObjectKind::RWMutex => ObjectState {
                    locked: sy
                        .mutex_state
                        .zip(sy.rw_w)
                        .and_then(|(s, w)| u32_at(a + w + s))
                        .map(|v| v & 1 != 0),
                    readers: sy.rw_reader_count.and_then(|r| u32_at(a + r)).map(|v| {
                        let v = i64::from(v as i32);
                        // A pending writer subtracts rwmutexMaxReaders.
                        if v < 0 {
                            v + (1 << 30)
                        } else {
                            v
                        }
                    }),
                    ..ObjectState::default()
                },
                ObjectKind::WaitGroup => ObjectState {
                    counter: sy
                        .wg_state
                        .and_then(|s| mem.read_u64(a + s).ok())
                        .map(|v| i64::from((v >> 32) as i32)),
                    ..ObjectState::default()
                },
                _ => ObjectState::default(),
            };
            let waiting = &waiting[i];
            o.referrers = refs
                .get(&a)
                .map(|l| {
                    l.iter()
                        .copied()
                        .filter(|g| waiting.binary_search(g).is_err())
                        .collect()
                })
                .unwrap_or_default();
            let held = o.state.locked == Some(true) || o.state.readers.is_some_and(|r| r > 0);
            if matches!(o.kind, ObjectKind::Mutex | ObjectKind::RWMutex) && held {
                o.holders = o.referrers.clone();
            }
        }
    }
}

/// The header fields that say a goroutine is still in the same wait.
pub(crate) fn same_wait(a: &GRaw, b: &GRaw) -> bool {
    a.goid == b.goid
        && a.status == b.status
        && a.waitreason == b.waitreason
        && a.waiting == b.waiting
        && a.sched_sp == b.sched_sp
        && a.sched_pc == b.sched_pc
        && a.syscallsp == b.syscallsp
}

/// The wait-for graph's objects and edges from the verdicts.
fn graph(
    verdicts: &Verdicts,
    homes: &FxHashMap<u64, (u64, u64)>,
    leaked: &[u64],
) -> (Vec<SyncObject>, Vec<WaitEdge>) {
    let mut objects: Vec<SyncObject> = Vec::new();
    let mut index: FxHashMap<u64, u32> = FxHashMap::default();
    let mut edges = Vec::new();
    for v in &verdicts.list {
        let id = &v.id;
        let is_leaked = leaked.binary_search(id).is_ok();
        let reached = verdicts.reached(v);
        for (k, o) in verdicts.objects(v).iter().enumerate() {
            let idx = *index.entry(o.object).or_insert_with(|| {
                objects.push(SyncObject {
                    addr: o.object,
                    kind: o.kind,
                    home: match homes.get(&o.object) {
                        Some(&(base, size)) => ObjectHome::Heap {
                            base,
                            size,
                            type_name: None,
                        },
                        None => ObjectHome::Unknown,
                    },
                    state: ObjectState::default(),
                    reach: Reach::Unknown,
                    holders: Vec::new(),
                    holders_deferred: false,
                    referrers: Vec::new(),
                });
                (objects.len() - 1) as u32
            });
            let obj = &mut objects[idx as usize];
            match reached.get(k).cloned().flatten() {
                Some(via) => obj.reach = Reach::Reachable { via },
                None if is_leaked && obj.reach == Reach::Unknown => obj.reach = Reach::Unreachable,
                None => {}
            }
            if obj.kind == ObjectKind::Semaphore && o.kind != ObjectKind::Semaphore {
                obj.kind = o.kind;
            }
            edges.push(WaitEdge {
                goroutine: *id,
                object: idx,
                op: o.op,
            });
        }
    }
    (objects, edges)
}

/// Memory with some ranges read ahead in vectored reads: a read inside one of them is served
/// from that copy, any other from the target.
struct ReadAhead<'m, M: ?Sized> {
    mem: &'m M,
    /// (start, end, offset in `buf`) of the ranges read, in the order read.
    ranges: Vec<(u64, u64, usize)>,
    /// Indices into `ranges`, sorted by start.
    sorted: Vec<usize>,
    buf: Vec<u8>,
}

impl<'m, M: Memory + ?Sized> ReadAhead<'m, M> {
    fn new(mem: &'m M) -> Self {
        ReadAhead {
            mem,
            ranges: Vec::new(),
            sorted: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// Reads `reqs` in one vectored read and keeps those that were read.
    fn add(&mut self, reqs: &[ReadReq]) {
        let at = self.buf.len();
        self.buf
            .resize(at + reqs.iter().map(|r| r.len).sum::<usize>(), 0);
        let mut ok = Vec::new();
        self.mem.read_batch(reqs, &mut self.buf[at..], &mut ok);
        let mut off = at;
        for (k, r) in reqs.iter().enumerate() {
            if ok.get(k).copied().unwrap_or(false) {
                self.sorted.push(self.ranges.len());
                self.ranges.push((r.addr, r.addr + r.len as u64, off));
            }
            off += r.len;
        }
        let ranges = &self.ranges;
        self.sorted.sort_unstable_by_key(|&i| ranges[i].0);
    }

    /// The copy of `[addr, addr + len)`, if it lies in one range read.
    fn find(&self, addr: u64, len: u64) -> Option<&[u8]> {
        let i = self
            .sorted
            .partition_point(|&i| self.ranges[i].0 <= addr)
            .checked_sub(1)?;
        let (start, end, off) = self.ranges[self.sorted[i]];
        let o = off + (addr - start) as usize;
        (addr.checked_add(len)? <= end).then(|| &self.buf[o..o + len as usize])
    }

    fn covers(&self, addr: u64, len: u64) -> bool {
        self.find(addr, len).is_some()
    }
}

impl<M: Memory + ?Sized> Memory for ReadAhead<'_, M> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), gostall_access::MemError> {
        match self.find(addr, buf.len() as u64) {
            Some(b) => {
                buf.copy_from_slice(b);
                Ok(())
            }
            None => self.mem.read(addr, buf),
        }
    }
}

/// gostall's resident memory in MiB, for timing reports (0 when only timing is off or unknown).
fn rss_mib() -> u64 {
    if !crate::timing() {
        return 0;
    }
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb >> 10)
}

/// Goroutine stacks read for a scan.
struct Stacks<'g, 'r> {
    /// (goroutine, pc, sp, precise) for each stack read.
    plan: Vec<(&'g GIn<'r>, u64, u64, bool)>,
    reqs: Vec<ReadReq>,
    buf: Vec<u8>,
    ok: Vec<bool>,
    /// Time the read took.
    read: Duration,
}

/// Reads the stacks of `gs` (from the saved stack pointer up; running goroutines' whole stacks)
/// in one vectored read.
fn read_stacks<'g, 'r: 'g, M: Memory + ?Sized>(
    mem: &M,
    gs: impl Iterator<Item = &'g GIn<'r>>,
) -> Stacks<'g, 'r> {
    let mut plan = Vec::new();
    let mut reqs: Vec<ReadReq> = Vec::new();
    for gi in gs {
        let r = &gi.raw;
        if r.stack_hi <= r.stack_lo || r.stack_hi - r.stack_lo > MAX_STACK {
            continue;
        }
        let (pc, sp, precise) = if gi.state == GoState::Running {
            (0, r.stack_lo, false)
        } else {
            let (pc, sp) = crate::unwind::start(r);
            if sp < r.stack_lo || sp >= r.stack_hi {
                (0, r.stack_lo, false)
            } else {
                (pc, sp, true)
            }
        };
        plan.push((gi, pc, sp, precise));
        reqs.push(ReadReq {
            addr: sp,
            len: (r.stack_hi - sp) as usize,
        });
    }
    let total: usize = reqs.iter().map(|r| r.len).sum();
    let mut buf = vec![0u8; total];
    let mut ok = Vec::new();
    let t = Instant::now();
    mem.read_batch(&reqs, &mut buf, &mut ok);
    Stacks {
        plan,
        reqs,
        buf,
        ok,
        read: t.elapsed(),
    }
}

/// Gives the memory the last pass freed back to the system (glibc keeps freed memory, in the
/// arena of each thread that used it, for reuse): the next pass's allocations would otherwise
/// add to it.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of the allocator's arenas to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Goroutines (by index) that may run or were woken in the fixed point.
struct Promoted(Vec<bool>);

impl Promoted {
    /// Marks `i`; `true` if it was not before.
    fn insert(&mut self, i: usize) -> bool {
        !std::mem::replace(&mut self.0[i], true)
    }

    fn contains(&self, i: usize) -> bool {
        self.0[i]
    }
}
