//! The Go heap read from outside, and a mark over it.
//!
//! [`Heap::read`] reads the span map of every heap arena (`mheap_.arenas[0][i].spans`) and the
//! `mspan` headers it points to, keeping the spans of garbage-collected objects (`mSpanInUse`):
//! base, object size, count and whether the size class holds pointers at all (`noscan`). Any
//! address then maps to the object that contains it in O(1), as the runtime's own `spanOf` does.
//!
//! [`Marker`] marks objects reachable from the roots it is given. Roots come with a pointer bitmap
//! (globals, stack frames) or without one (scanned conservatively); heap objects of scan size
//! classes are scanned conservatively: every aligned word that points into an object keeps that
//! object. That can keep garbage alive — so a proof built on it may miss a leak — but it never
//! loses a reachable object. Words can be hidden from the mark (the slots Go's own leak detector
//! hides: a blocked goroutine's `sudog.c` and `sudog.elem`).
//!
//! Everything goes through [`Memory`], so a core file can use the same code. Reads are vectored
//! and bounded; memory use is one bit per heap object plus the work list.
#![deny(missing_docs)]

use gostall_access::{Memory, ReadReq};
use gostall_goruntime::layout::{HeapBits, HeapLayout, TypeLayout};
use rustc_hash::{FxHashMap, FxHashSet};

/// Why the heap could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HeapError {
    /// A structure every heap read needs was unreadable.
    #[error("cannot read {what} at {addr:#x}")]
    Read {
        /// What.
        what: &'static str,
        /// Where.
        addr: u64,
    },
    /// The heap's structures do not look like a Go heap.
    #[error("the heap looks inconsistent: {0}")]
    Inconsistent(String),
}

/// Most arenas read (a 64 MiB arena each: 16 TiB).
const MAX_ARENAS: usize = 1 << 18;
/// Arenas one span may cover (64 GiB with 64 MiB arenas): more is not a span of a real heap.
const MAX_SPAN_ARENAS: u64 = 1 << 10;
/// Bytes read per vectored batch while marking.
const BATCH_BYTES: usize = 2 << 20;
/// Requests per vectored batch.
const BATCH_REQS: usize = 1024;
/// Objects (pieces) per vectored batch.
const BATCH_PIECES: usize = 16 << 10;

/// A span of heap objects of one size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First object's address.
    pub base: u64,
    /// End of the span's pages.
    pub end: u64,
    /// Object size.
    pub elemsize: u64,
    /// Number of objects.
    pub nelems: u32,
    /// The size class holds no pointers: its objects are never scanned.
    pub noscan: bool,
    /// Head of the span's specials list (finalizers, cleanups, profiling records).
    pub specials: u64,
    /// Size class 0: one large object.
    pub large: bool,
    /// For a large object with malloc headers: `mspan.largeType` (0: unknown).
    pub large_type: u64,
    /// The span's object count matches the layout this reader assumes for its trailing
    /// pointer bitmap (Go 1.22+ small objects); when not, the span is scanned conservatively
    /// rather than with bits read from the wrong place.
    pub bits_at_end: bool,
}

/// An object: its span and index in the span. Spans are numbered in address order, so objects
/// order by address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjRef {
    /// Index into [`Heap::spans`].
    pub span: u32,
    /// Object index within the span.
    pub index: u32,
}

/// Most entries of the dense arena index (4 MiB); arenas spread wider are looked up by hash.
const MAX_DENSE_ARENAS: u64 = 1 << 20;

/// Arena index → position of the arena's page map: a vector over the arenas' range (one load per
/// lookup), or a hash map when the arenas are spread too far apart for one.
#[derive(Debug, Default)]
struct ArenaIndex {
    /// First arena index covered by `dense`.
    lo: u64,
    /// Position + 1 per arena index from `lo` (0: no arena).
    dense: Vec<u32>,
    sparse: FxHashMap<u64, u32>,
}

impl ArenaIndex {
    fn new(entries: &[(u64, u32)]) -> Self {
        let lo = entries.iter().map(|e| e.0).min().unwrap_or(0);
        let hi = entries.iter().map(|e| e.0).max().unwrap_or(0);
        let mut index = ArenaIndex {
            lo,
            ..ArenaIndex::default()
        };
        if entries.is_empty() {
            return index;
        }
        if hi - lo < MAX_DENSE_ARENAS {
            index.dense = vec![0; (hi - lo + 1) as usize];
            for &(i, pos) in entries {
                index.dense[(i - lo) as usize] = pos + 1;
            }
        } else {
            index.sparse = entries.iter().copied().collect();
        }
        index
    }

    #[inline]
    fn get(&self, i: u64) -> Option<u32> {
        if self.sparse.is_empty() {
            let p = *self.dense.get(i.wrapping_sub(self.lo) as usize)?;
            (p != 0).then(|| p - 1)
        } else {
            self.sparse.get(&i).copied()
        }
    }
}

/// The heap's span map, as read at one moment.
#[derive(Debug, Default)]
pub struct Heap {
    arena_bytes: u64,
    /// log2 of `arena_bytes` when it is a power of two (it is on every Go platform).
    arena_shift: Option<u32>,
    arena_base_offset: u64,
    page_shift: u32,
    /// Arena index → position of its pages in `pages`.
    arenas: ArenaIndex,
    /// Pages per arena.
    arena_pages: usize,
    /// Per arena (`arena_pages` entries each), per page: span index + 1 (0: no in-use span).
    pages: Vec<u32>,
    /// In-use spans, in address order.
    pub spans: Vec<Span>,
    /// Per span, what the mark's hot path needs, in one small record.
    hot: Vec<HotSpan>,
    /// Words of a bitmap with one bit per object slot of every span ([`HotSpan::bit_word`]).
    object_words: usize,
    lo: u64,
    hi: u64,
    /// Bytes of all in-use spans.
    pub span_bytes: u64,
    /// How the heap records pointer words.
    bits: Option<HeapBits>,
    /// Arena index → its `heapArena` record (for the arena bitmap).
    arena_records: FxHashMap<u64, u64>,
}

/// The mark's bits of 64 object slots.
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(32))]
struct ObjBits {
    mark: u64,
    watched: u64,
    /// Marked, of a scan span, not scanned yet.
    grey: u64,
}

/// A span's fields the mark reads for every pointer.
#[derive(Debug, Clone, Copy, Default)]
struct HotSpan {
    base: u64,
    elemsize: u64,
    nelems: u32,
    /// First word of the span's bits in bitmaps over every object slot (marks, watched objects).
    bit_word: u32,
    noscan: bool,
}

fn u64_at(b: &[u8], off: u64) -> u64 {
    let o = off as usize;
    b.get(o..o + 8)
        .map_or(0, |s| u64::from_le_bytes(s.try_into().expect("8 bytes")))
}

fn uint_at(b: &[u8], off: u64, width: u64) -> u64 {
    let o = off as usize;
    match width {
        1 => b.get(o).map_or(0, |&v| u64::from(v)),
        2 => b
            .get(o..o + 2)
            .map_or(0, |s| u64::from(u16::from_le_bytes([s[0], s[1]]))),
        4 => b.get(o..o + 4).map_or(0, |s| {
            u64::from(u32::from_le_bytes(s.try_into().expect("4 bytes")))
        }),
        _ => u64_at(b, off),
    }
}

impl Heap {
    /// Reads the span map of the arenas starting at `arena_bases` (from `mheap_`'s arena lists)
    /// from the heap at `mheap` (the `runtime.mheap_` variable).
    pub fn read<M: Memory + ?Sized>(
        mem: &M,
        l: &HeapLayout,
        mheap: u64,
        arena_bases: &[u64],
    ) -> Result<Heap, HeapError> {
        if l.page_size == 0 || !l.page_size.is_power_of_two() || l.arena_bytes < l.page_size {
            return Err(HeapError::Inconsistent("page or arena size".to_string()));
        }
        let pages_per_arena = (l.arena_bytes / l.page_size) as usize;
        let mut l1 = [0u8; 8];
        mem.read(mheap + l.mheap_arenas, &mut l1)
            .map_err(|_| HeapError::Read {
                what: "the heap's arena map",
                addr: mheap + l.mheap_arenas,
            })?;
        let l2 = u64::from_le_bytes(l1);
        if l2 == 0 {
            return Ok(Heap::default());
        }
        let mut idxs: Vec<u64> = arena_bases
            .iter()
            .map(|b| b.wrapping_sub(l.arena_base_offset) / l.arena_bytes)
            .collect();
        idxs.sort_unstable();
        idxs.dedup();
        idxs.truncate(MAX_ARENAS);
        // *heapArena of each arena, then each arena's span map.
        let reqs: Vec<ReadReq> = idxs
            .iter()
            .map(|&i| ReadReq {
                addr: l2.wrapping_add(i.wrapping_mul(8)),
                len: 8,
            })
            .collect();
        let mut buf = vec![0u8; reqs.len() * 8];
        let mut ok = Vec::new();
        mem.read_batch(&reqs, &mut buf, &mut ok);
        let mut arenas: Vec<(u64, u64)> = Vec::new();
        let mut arena_records: FxHashMap<u64, u64> = FxHashMap::default();
        for (k, &i) in idxs.iter().enumerate() {
            let ha = u64_at(&buf, (k * 8) as u64);
            if ok.get(k).copied().unwrap_or(false) && ha != 0 {
                arenas.push((i, ha));
                arena_records.insert(i, ha);
            }
        }
        let map_len = pages_per_arena * 8;
        let mut heap = Heap {
            arena_bytes: l.arena_bytes,
            arena_shift: l
                .arena_bytes
                .is_power_of_two()
                .then(|| l.arena_bytes.trailing_zeros()),
            arena_base_offset: l.arena_base_offset,
            page_shift: l.page_size.trailing_zeros(),
            arena_pages: pages_per_arena,
            lo: u64::MAX,
            bits: Some(l.bits),
            arena_records,
            ..Heap::default()
        };
        let mut span_index: FxHashMap<u64, u32> = FxHashMap::default();
        let mut span_addrs: Vec<u64> = Vec::new();
        let mut raw_maps: Vec<(u64, Vec<u64>)> = Vec::with_capacity(arenas.len());
        for chunk in arenas.chunks(64) {
            let reqs: Vec<ReadReq> = chunk
                .iter()
                .map(|&(_, ha)| ReadReq {
                    addr: ha + l.arena_spans,
                    len: map_len,
                })
                .collect();
            let mut buf = vec![0u8; reqs.len() * map_len];
            mem.read_batch(&reqs, &mut buf, &mut ok);
            for (k, &(i, _)) in chunk.iter().enumerate() {
                if !ok.get(k).copied().unwrap_or(false) {
                    continue;
                }
                let map: Vec<u64> = buf[k * map_len..(k + 1) * map_len]
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect();
                for &s in &map {
                    if s != 0 && !span_index.contains_key(&s) {
                        span_index.insert(s, span_addrs.len() as u32);
                        span_addrs.push(s);
                    }
                }
                raw_maps.push((i, map));
            }
        }
        // The mspan headers, in vectored batches.
        let slen = l.span_size as usize;
        let mut parsed: Vec<Option<Span>> = Vec::with_capacity(span_addrs.len());
        let mut sbuf = vec![0u8; BATCH_REQS * slen];
        for chunk in span_addrs.chunks(BATCH_REQS) {
            let reqs: Vec<ReadReq> = chunk
                .iter()
                .map(|&a| ReadReq { addr: a, len: slen })
                .collect();
            mem.read_batch(&reqs, &mut sbuf[..reqs.len() * slen], &mut ok);
            for k in 0..chunk.len() {
                let b = &sbuf[k * slen..(k + 1) * slen];
                parsed.push(
                    ok.get(k)
                        .copied()
                        .unwrap_or(false)
                        .then(|| parse_span(l, b))
                        .flatten(),
                );
            }
        }
        // Keep in-use spans whose pages all map to them, as the runtime keeps every page of an
        // in-use span (`mheap.setSpans` before the span is published): a header recycled for
        // another span since the map was read, or a hostile one claiming pages of others, is
        // dropped rather than read over objects it does not hold. In address order (as found,
        // since the arenas and their pages are walked in order); map their pages.
        let maps_by_arena: FxHashMap<u64, &[u64]> =
            raw_maps.iter().map(|(i, m)| (*i, m.as_slice())).collect();
        let owns_pages = |addr: u64, s: &Span| -> bool {
            let mut p = s.base;
            while p < s.end {
                let off = p.wrapping_sub(l.arena_base_offset);
                let (ai, within) = (off / l.arena_bytes, off % l.arena_bytes);
                let arena_end = p - within + l.arena_bytes;
                let stop = s.end.min(arena_end);
                if let Some(map) = maps_by_arena.get(&ai) {
                    let first = (within / l.page_size) as usize;
                    let n = (stop - p).div_ceil(l.page_size) as usize;
                    match map.get(first..first + n) {
                        Some(pages) if pages.iter().all(|&x| x == addr) => {}
                        _ => return false,
                    }
                } else if s.end - s.base > MAX_SPAN_ARENAS * l.arena_bytes {
                    // Pages in arenas not read are taken on trust, up to a bound on the walk.
                    return false;
                }
                p = stop;
            }
            true
        };
        let mut kept: Vec<(u64, usize)> = parsed
            .iter()
            .enumerate()
            .filter_map(|(k, s)| {
                s.filter(|s| owns_pages(span_addrs[k], s))
                    .map(|s| (s.base, k))
            })
            .collect();
        if !kept.is_sorted() {
            kept.sort_unstable();
        }
        let mut new_index: Vec<u32> = vec![0; parsed.len()];
        for (_, k) in kept {
            let s = parsed[k].expect("kept spans were parsed");
            heap.spans.push(s);
            new_index[k] = heap.spans.len() as u32;
            heap.lo = heap.lo.min(s.base);
            heap.hi = heap.hi.max(s.end);
            heap.span_bytes += s.end - s.base;
        }
        let mut positions: Vec<(u64, u32)> = Vec::with_capacity(raw_maps.len());
        heap.pages.reserve(raw_maps.len() * pages_per_arena);
        for (i, map) in raw_maps {
            positions.push((i, positions.len() as u32));
            heap.pages.extend(map.iter().map(|&s| {
                if s == 0 {
                    0
                } else {
                    span_index.get(&s).map_or(0, |&k| new_index[k as usize])
                }
            }));
        }
        heap.arenas = ArenaIndex::new(&positions);
        if heap.spans.is_empty() {
            heap.lo = 0;
        }
        heap.index_spans();
        Ok(heap)
    }

    /// Fills the hot records and bitmap offsets of `spans`.
    fn index_spans(&mut self) {
        let mut word = 0usize;
        self.hot = self
            .spans
            .iter()
            .map(|s| {
                let h = HotSpan {
                    base: s.base,
                    elemsize: s.elemsize,
                    nelems: s.nelems,
                    bit_word: word as u32,
                    noscan: s.noscan,
                };
                word += (s.nelems as usize).div_ceil(64);
                h
            })
            .collect();
        self.object_words = word;
    }

    /// Where the pointer words of the piece at `a` (bytes `bytes`) are described.
    /// (The piece lies in span `span`; `None`: in none.)
    fn source_in(&self, span: Option<u32>, a: u64, bytes: &[u8]) -> Source {
        let heap = self;
        let Some(s) = span else {
            return Source::All;
        };
        let span = &heap.spans[s as usize];
        match heap.bits {
            Some(HeapBits::ArenaBitmap { .. }) => {
                let off = a.wrapping_sub(heap.arena_base_offset);
                let ai = off / heap.arena_bytes;
                Source::Bits {
                    key: MapKey::Arena(ai),
                    first: (off % heap.arena_bytes) / 8,
                }
            }
            Some(HeapBits::Headers { max_in_span, .. }) => {
                if span.elemsize <= max_in_span && !span.large {
                    if !span.bits_at_end {
                        return Source::All;
                    }
                    return Source::Bits {
                        key: MapKey::Span(s),
                        first: (a - span.base) / 8,
                    };
                }
                if span.large {
                    if span.large_type == 0 {
                        return Source::None;
                    }
                    return Source::Typed {
                        ty: span.large_type,
                        data: span.base,
                    };
                }
                // A header: the object's first word names its type.
                let base = span.base + (a - span.base) / span.elemsize * span.elemsize;
                if base != a {
                    return Source::All;
                }
                match bytes.get(..8) {
                    Some(w) => {
                        let ty = u64::from_le_bytes(w.try_into().expect("8 bytes"));
                        if ty == 0 {
                            Source::All
                        } else {
                            Source::Typed { ty, data: a + 8 }
                        }
                    }
                    None => Source::All,
                }
            }
            _ => Source::All,
        }
    }

    /// Word and bit of object `r` in a bitmap over every object slot.
    #[inline]
    fn bit_of(&self, r: ObjRef) -> (usize, u64) {
        let h = &self.hot[r.span as usize];
        (
            h.bit_word as usize + (r.index / 64) as usize,
            1 << (r.index % 64),
        )
    }

    /// The allocated-or-free object slot of an in-use span that contains `p`, if any. Free slots
    /// count: an object allocated after the span was read must not be lost.
    #[inline]
    pub fn object_of(&self, p: u64) -> Option<ObjRef> {
        let s = self.span_of(p)?;
        let span = &self.hot[s as usize];
        let off = p.checked_sub(span.base)?;
        let index = if span.nelems == 1 {
            if off >= span.elemsize {
                return None;
            }
            0
        } else if off <= u64::from(u32::MAX) && span.elemsize <= u64::from(u32::MAX) {
            // A 32-bit division: the offsets in small-object spans are small.
            u64::from(off as u32 / span.elemsize as u32)
        } else {
            off / span.elemsize
        };
        if index >= u64::from(span.nelems) {
            return None;
        }
        Some(ObjRef {
            span: s,
            index: index as u32,
        })
    }

    /// Index into [`Heap::spans`] of the in-use span holding `p`.
    #[inline]
    pub fn span_of(&self, p: u64) -> Option<u32> {
        if p < self.lo || p >= self.hi {
            return None;
        }
        let off = p.wrapping_sub(self.arena_base_offset);
        let (arena, within) = match self.arena_shift {
            Some(sh) => (off >> sh, off & (self.arena_bytes - 1)),
            None => (off / self.arena_bytes, off % self.arena_bytes),
        };
        let pos = self.arenas.get(arena)? as usize;
        let page = (within >> self.page_shift) as usize;
        if page >= self.arena_pages {
            return None;
        }
        let s = *self.pages.get(pos * self.arena_pages + page)?;
        s.checked_sub(1)
    }

    /// Whether `a` and `b` lie in the same in-use span.
    pub fn same_span(&self, a: u64, b: u64) -> bool {
        self.span_of(a).is_some_and(|s| Some(s) == self.span_of(b))
    }

    /// Start and size of an object.
    pub fn object(&self, r: ObjRef) -> (u64, u64) {
        let s = &self.spans[r.span as usize];
        (s.base + u64::from(r.index) * s.elemsize, s.elemsize)
    }

    /// Whether `p` is inside the heap's in-use spans.
    pub fn contains(&self, p: u64) -> bool {
        self.object_of(p).is_some()
    }

    /// The finalizer and cleanup records of every span: (object, record address, whether it is a
    /// finalizer), walked with a bound per span. These are roots (`markrootSpans`): the record's
    /// function always; for a finalizer also what the object points to (`gcScanFinalizer`), not
    /// the object itself; a cleanup does not keep its object's contents alive (`gcScanCleanup`).
    pub fn finalizers<M: Memory + ?Sized>(
        &self,
        mem: &M,
        l: &HeapLayout,
    ) -> Vec<(ObjRef, u64, bool)> {
        let mut out = Vec::new();
        let hdr = (l.special_size as usize).max(16);
        let mut buf = vec![0u8; hdr];
        for (si, s) in self.spans.iter().enumerate() {
            let mut at = s.specials;
            let mut n = 0;
            while at != 0 && n < 100_000 {
                n += 1;
                if mem.read(at, &mut buf).is_err() {
                    break;
                }
                let kind = buf.get(l.special_kind as usize).copied().unwrap_or(0);
                let offset = uint_at(&buf, l.special_offset.0, l.special_offset.1);
                if kind == l.kind_finalizer || Some(kind) == l.kind_cleanup {
                    if let Some(r) = self.object_of(s.base + offset) {
                        if r.span as usize == si {
                            out.push((r, at, kind == l.kind_finalizer));
                        }
                    }
                }
                at = u64_at(&buf, 0);
            }
        }
        out
    }
}

fn parse_span(l: &HeapLayout, b: &[u8]) -> Option<Span> {
    if uint_at(b, l.span_state, 1) as u8 != l.span_in_use {
        return None;
    }
    let base = u64_at(b, l.span_start);
    let npages = u64_at(b, l.span_npages);
    let elemsize = u64_at(b, l.span_elemsize);
    let nelems = uint_at(b, l.span_nelems.0, l.span_nelems.1);
    let class = uint_at(b, l.span_class, 1);
    let end = base.checked_add(npages.checked_mul(l.page_size)?)?;
    // No span of Go's holds more than 1024 objects (8-byte objects in an 8 KiB span); the bound
    // keeps a hostile span from sizing the per-span bitmaps.
    if base == 0 || npages == 0 || elemsize < 8 || nelems == 0 || nelems > 1 << 20 {
        return None;
    }
    if nelems.checked_mul(elemsize)? > end - base {
        return None;
    }
    Some(Span {
        base,
        end,
        elemsize,
        nelems: nelems as u32,
        noscan: class & 1 != 0,
        specials: u64_at(b, l.span_specials),
        large: class >> 1 == 0,
        bits_at_end: match l.bits {
            HeapBits::Headers {
                max_in_span,
                inline_mark_bits,
                ..
            } if class & 1 == 0 && class >> 1 != 0 && elemsize <= max_in_span => {
                // mheap.initSpan: the bitmap and (Green Tea) the inline mark bits are carved
                // off the span's end before it is divided into objects.
                let size = end - base;
                let marks = if elemsize >= 16 { inline_mark_bits } else { 0 };
                (size - size / 64 - marks) / elemsize == nelems
            }
            _ => false,
        },
        large_type: match l.bits {
            HeapBits::Headers { large_type, .. } => u64_at(b, large_type),
            _ => 0,
        },
    })
}

/// What a mark read, for timing reports.
#[derive(Debug, Default, Clone, Copy)]
pub struct MarkStats {
    /// Rounds of [`Marker::drain`]: each takes every queued object.
    pub waves: u64,
    /// Most objects queued in one round.
    pub max_wave: u64,
    /// Vectored reads of objects.
    pub batches: u64,
    /// Ranges read.
    pub ranges: u64,
    /// Bytes read (objects and the gaps between those read together).
    pub bytes_read: u64,
    /// Time spent reading objects.
    pub read: std::time::Duration,
    /// Time spent reading pointer bitmaps and types.
    pub maps: std::time::Duration,
    /// Time spent scanning what was read (on whichever thread).
    pub scan: std::time::Duration,
    /// Time spent sorting rounds.
    pub sort: std::time::Duration,
    /// Wall time of [`Marker::drain`].
    pub drain: std::time::Duration,
    /// Time threads waited with nothing to read or scan.
    pub wait: std::time::Duration,
    /// Time threads spent scanning (with the lock on the mark).
    pub scanned: std::time::Duration,
    /// Time spent cutting rounds into batches.
    pub build: std::time::Duration,
    /// Wall time of the rounds read by two threads.
    pub parallel: std::time::Duration,
}

/// Marks objects reachable from the roots it is given.
///
/// Marked objects of scan size classes wait in a queue; [`Marker::drain`] reads them span by
/// span (nearby objects of one span in one range, many ranges in one vectored read of at most
/// [`BATCH_BYTES`]) and scans their words, until nothing is left. Objects can be *watched*:
/// marking one is logged, so a fixed point over blocked goroutines learns which of their
/// blocking objects became reachable without testing all of them after every drain.
#[derive(Debug)]
pub struct Marker<'h> {
    heap: &'h Heap,
    /// Mark, watch and grey bits of every object slot, 64 slots a record
    /// ([`HotSpan::bit_word`]): one cache line for what marking an object touches.
    bits: Vec<ObjBits>,
    /// Per span: some object in it is grey (marked, of a scan span, not scanned yet).
    grey_spans: Vec<u64>,
    /// Grey objects.
    n_grey: usize,
    /// The grey bits of the round being drained (taken from `grey`; all clear between rounds).
    wave_bits: Vec<u64>,
    wave_spans: Vec<u64>,
    /// Parts of huge objects still to scan: (address, length).
    pending_ranges: Vec<(u64, u64)>,
    hidden: FxHashSet<u64>,
    /// Bit `(addr >> 12) % HIDDEN_FILTER_BITS` set for every hidden word: most words scanned lie
    /// on pages without one and skip the hash lookup.
    hidden_pages: Vec<u64>,
    /// Per span: a word in it is hidden; and whether a hidden word lies outside every span.
    hidden_spans: Vec<u64>,
    hidden_outside: bool,
    /// Objects watched.
    n_watched: usize,
    /// Watched objects marked since the last [`Marker::take_hits`].
    hits: Vec<ObjRef>,
    /// With [`Marker::trace`]: for each marked object, the address of the word that marked it.
    parents: Option<FxHashMap<ObjRef, u64>>,
    /// Objects marked so far.
    pub marked: u64,
    /// Bytes scanned so far (roots and objects).
    pub bytes_scanned: u64,
    /// Bytes of objects that could not be read.
    pub unreadable: u64,
    /// What the mark read, and how long that took.
    pub stats: MarkStats,
    /// Pointer values whose objects are marked, direct-mapped by a hash of the value (0: none;
    /// 0 is never in the heap), so repeated pointers to one object skip its lookup.
    seen: Vec<u64>,
    maps: PtrMaps,
    /// Per thread draining: its reading state.
    readers: Vec<Reader>,
    /// Buffers of batches, reused.
    chunks: Vec<Chunk>,
    /// Which bitmaps and types were read.
    wanted: Wanted,
    /// Batches read so far (their numbers order the scan).
    batches: u64,
}

/// Objects of one span at most this far apart are read as one range.
const COALESCE_GAP: u64 = 1024;

/// log2 of the entries of the cache of pointer values whose objects are marked (64 KiB: it
/// stays in the L2 cache; 512 KiB missed it and was slower, 8 KiB hit less).
const SEEN_BITS: u32 = 13;

/// The slot of pointer value `v` in [`Marker`]'s cache of values whose objects are marked.
#[inline]
fn seen_slot(v: u64) -> usize {
    (v.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SEEN_BITS)) as usize
}

/// Pages (4 KiB) told apart by the hidden words' filter: 128 KiB of bits.
const HIDDEN_FILTER_BITS: u64 = 1 << 20;

/// Whether bit `i` is set in a bitmap of `u64` words.
#[inline]
fn bit_at(bits: &[u64], i: u64) -> bool {
    bits.get((i / 64) as usize)
        .is_some_and(|w| w >> (i % 64) & 1 != 0)
}

impl<'h> Marker<'h> {
    /// A mark with nothing marked.
    pub fn new(heap: &'h Heap) -> Self {
        Marker {
            heap,
            bits: vec![ObjBits::default(); heap.object_words],
            grey_spans: vec![0; heap.spans.len().div_ceil(64)],
            n_grey: 0,
            wave_bits: vec![0; heap.object_words],
            wave_spans: vec![0; heap.spans.len().div_ceil(64)],
            pending_ranges: Vec::new(),
            hidden: FxHashSet::default(),
            hidden_pages: Vec::new(),
            hidden_spans: vec![0; heap.spans.len().div_ceil(64)],
            hidden_outside: false,
            n_watched: 0,
            hits: Vec::new(),
            parents: None,
            marked: 0,
            bytes_scanned: 0,
            unreadable: 0,
            stats: MarkStats::default(),
            seen: vec![0; 1 << SEEN_BITS],
            maps: PtrMaps::new(heap.spans.len()),
            readers: Vec::new(),
            chunks: Vec::new(),
            wanted: Wanted::default(),
            batches: 0,
        }
    }

    /// The heap being marked.
    pub fn heap(&self) -> &'h Heap {
        self.heap
    }

    /// Makes room for `words` more hidden words.
    pub fn reserve_hidden(&mut self, words: usize) {
        self.hidden.reserve(words);
    }

    /// Hides the words in `[addr, addr + len)` from the mark: pointers stored there are not
    /// followed.
    pub fn hide(&mut self, addr: u64, len: u64) {
        if self.hidden_pages.is_empty() {
            self.hidden_pages = vec![0; (HIDDEN_FILTER_BITS / 64) as usize];
        }
        let mut a = addr & !7;
        while a < addr.saturating_add(len) {
            match self.heap.span_of(a) {
                Some(s) => self.hidden_spans[(s / 64) as usize] |= 1 << (s % 64),
                None => self.hidden_outside = true,
            }
            self.hidden.insert(a);
            let page = (a >> 12) % HIDDEN_FILTER_BITS;
            self.hidden_pages[(page / 64) as usize] |= 1 << (page % 64);
            a += 8;
        }
    }

    /// Whether the word at `at` is hidden.
    #[inline]
    fn is_hidden(&self, at: u64) -> bool {
        if self.hidden.is_empty() {
            return false;
        }
        let page = (at >> 12) % HIDDEN_FILTER_BITS;
        bit_at(&self.hidden_pages, page) && self.hidden.contains(&at)
    }

    /// Watches the object containing `p`: when it gets marked, [`Marker::take_hits`] returns it.
    /// Returns the object, or `None` when `p` is not in the heap.
    pub fn watch(&mut self, p: u64) -> Option<ObjRef> {
        let r = self.heap.object_of(p)?;
        let (w, bit) = self.heap.bit_of(r);
        if self.bits[w].watched & bit == 0 {
            self.bits[w].watched |= bit;
            self.n_watched += 1;
        }
        Some(r)
    }

    /// Remembers, for every object marked from now on, the word that marked it, so
    /// [`Marker::path`] can say how an object was reached (costs a map entry per object).
    pub fn trace(&mut self) {
        self.parents.get_or_insert_with(FxHashMap::default);
    }

    /// With [`Marker::trace`]: the chain of words that led to object `r`, from the root word
    /// (the first element: a global or stack slot, or a heap word for objects marked before
    /// tracing began) to the word pointing at `r` (the last). Bounded.
    pub fn path(&self, r: ObjRef) -> Vec<u64> {
        let mut out = Vec::new();
        let Some(parents) = &self.parents else {
            return out;
        };
        let mut cur = r;
        while let Some(&at) = parents.get(&cur) {
            out.push(at);
            match self.heap.object_of(at) {
                Some(p) if out.len() < 64 => cur = p,
                _ => break,
            }
        }
        out.reverse();
        out
    }

    /// The watched object `v` points into, if any (cheap for unwatched spans).
    #[inline]
    pub fn watched_at(&self, v: u64) -> Option<ObjRef> {
        if v < self.heap.lo || v >= self.heap.hi || self.n_watched == 0 {
            return None;
        }
        let r = self.heap.object_of(v)?;
        self.is_watched(r).then_some(r)
    }

    /// Whether object `r` is watched.
    #[inline]
    fn is_watched(&self, r: ObjRef) -> bool {
        let (w, bit) = self.heap.bit_of(r);
        self.bits.get(w).is_some_and(|x| x.watched & bit != 0)
    }

    /// [`Marker::watched_at`]`(v)` and, with `mark`, [`Marker::consider`]`(at, v)`, looking the
    /// object up once.
    #[inline]
    pub fn consider_watched(&mut self, at: u64, v: u64, mark: bool) -> Option<ObjRef> {
        if v < self.heap.lo || v >= self.heap.hi {
            return None;
        }
        if self.n_watched == 0 {
            if mark {
                self.consider(at, v);
            }
            return None;
        }
        let r = self.heap.object_of(v);
        let watched = r.filter(|&r| self.is_watched(r));
        if mark {
            let slot = seen_slot(v);
            if self.seen[slot] != v && !self.is_hidden(at) {
                if let Some(r) = r {
                    if self.mark_ref(r) {
                        if let Some(p) = &mut self.parents {
                            p.insert(r, at);
                        }
                    }
                    self.seen[slot] = v;
                }
            }
        }
        watched
    }

    /// Watched objects marked since the last call.
    pub fn take_hits(&mut self) -> Vec<ObjRef> {
        std::mem::take(&mut self.hits)
    }

    /// Marks the object containing `p`; `true` if it was not marked before. Objects of scan
    /// size classes are queued for scanning.
    #[inline]
    pub fn mark(&mut self, p: u64) -> bool {
        match self.heap.object_of(p) {
            Some(r) => self.mark_ref(r),
            None => false,
        }
    }

    /// Marks object `r`; `true` if it was not marked before.
    pub fn mark_ref(&mut self, r: ObjRef) -> bool {
        let (w, bit) = self.heap.bit_of(r);
        let b = &mut self.bits[w];
        if b.mark & bit != 0 {
            return false;
        }
        b.mark |= bit;
        self.marked += 1;
        let watched = b.watched & bit != 0;
        if !self.heap.hot[r.span as usize].noscan {
            b.grey |= bit;
            self.grey_spans[(r.span / 64) as usize] |= 1 << (r.span % 64);
            self.n_grey += 1;
        }
        if watched {
            self.hits.push(r);
        }
        true
    }

    /// Whether the object containing `p` is marked; `None` when `p` is not in the heap (globals,
    /// stacks, memory the runtime does not manage).
    pub fn is_marked(&self, p: u64) -> Option<bool> {
        let r = self.heap.object_of(p)?;
        Some(self.is_marked_ref(r))
    }

    /// Whether object `r` is marked.
    pub fn is_marked_ref(&self, r: ObjRef) -> bool {
        if r.index >= self.heap.spans.get(r.span as usize).map_or(0, |s| s.nelems) {
            return false;
        }
        let (w, bit) = self.heap.bit_of(r);
        self.bits.get(w).is_some_and(|x| x.mark & bit != 0)
    }

    /// Queues an object's contents for scanning without marking it (a finalizer's object: its
    /// referents are kept alive, it itself is not).
    pub fn scan_contents(&mut self, r: ObjRef) {
        if !self.heap.hot[r.span as usize].noscan {
            let (base, size) = self.heap.object(r);
            self.pending_ranges.push((base, size));
        }
    }

    /// Scans root words read from the target at `addr`. With `bits`, only words whose bit is set
    /// hold pointers (bit `i` for the word at `addr + 8*i`); without, every word may.
    pub fn scan_root(&mut self, addr: u64, bytes: &[u8], bits: Option<&[u8]>) {
        self.bytes_scanned += bytes.len() as u64;
        for (i, w) in bytes.chunks_exact(8).enumerate() {
            if let Some(bits) = bits {
                match bits.get(i / 8) {
                    Some(b) if b >> (i % 8) & 1 != 0 => {}
                    Some(_) => continue,
                    None => break,
                }
            }
            let v = u64::from_le_bytes(w.try_into().expect("8 bytes"));
            self.consider(addr + 8 * i as u64, v);
        }
    }

    /// Treats the word `v`, stored at `at`, as a possible pointer: marks the object it points
    /// into unless the word is hidden.
    #[inline]
    pub fn consider(&mut self, at: u64, v: u64) {
        self.consider_in(at, v, true);
    }

    /// [`Marker::consider`]; `hidden: false` when no word where `at` lies can be hidden.
    #[inline]
    fn consider_in(&mut self, at: u64, v: u64, hidden: bool) {
        if v < self.heap.lo || v >= self.heap.hi {
            return;
        }
        // A value seen recently whose object was marked then: nothing to do (marks stay).
        let slot = seen_slot(v);
        if self.seen[slot] == v {
            return;
        }
        if hidden && self.is_hidden(at) {
            return;
        }
        let Some(r) = self.heap.object_of(v) else {
            return;
        };
        if self.mark_ref(r) {
            if let Some(p) = &mut self.parents {
                p.insert(r, at);
            }
        }
        self.seen[slot] = v;
    }

    /// Scans queued objects until none is left. Each round takes every queued object, in
    /// address order, and reads them in vectored batches of nearby ranges. Large rounds are
    /// read by two threads, each scanning what it read in turn: batches are scanned one at a
    /// time in address order, so the mark and the order of [`Marker::take_hits`] are those of
    /// one thread.
    pub fn drain<M: Memory + Sync + ?Sized>(&mut self, mem: &M) {
        let t0 = std::time::Instant::now();
        let heap = self.heap;
        let mut wanted = std::mem::take(&mut self.wanted);
        if wanted.span_bits.len() != heap.spans.len() {
            wanted.span_bits = vec![u64::MAX; heap.spans.len()];
        }
        let mut readers = std::mem::take(&mut self.readers);
        readers.resize_with(2, Reader::default);
        let mut chunks = std::mem::take(&mut self.chunks);
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        while self.n_grey > 0 || !self.pending_ranges.is_empty() {
            let objects = self.n_grey;
            self.stats.waves += 1;
            self.stats.max_wave = self
                .stats
                .max_wave
                .max((objects + self.pending_ranges.len()) as u64);
            // Objects marked while this round is scanned are grey for the next one. The round's
            // objects come out of their bitmap in (span, index) order: address order.
            self.take_grey();
            self.n_grey = 0;
            let mut wave_bits = std::mem::take(&mut self.wave_bits);
            let mut wave_spans = std::mem::take(&mut self.wave_spans);
            std::mem::swap(&mut ranges, &mut self.pending_ranges);
            let ts = std::time::Instant::now();
            ranges.sort_unstable();
            self.stats.sort += ts.elapsed();
            let first = self.batches;
            let builder = std::sync::Mutex::new((
                Builder::new(heap, &mut wave_bits, &mut wave_spans, &ranges),
                first,
            ));
            {
                let wanted_lock = std::sync::Mutex::new(&mut wanted);
                // Every buffer a batch needs, allocated here rather than by the threads (whose
                // allocator arenas would each keep what they freed).
                chunks.resize_with(IN_FLIGHT, Chunk::new);
                let queue = std::sync::Mutex::new(Queue {
                    next: first,
                    free: std::mem::take(&mut chunks),
                    ..Queue::default()
                });
                let cv = std::sync::Condvar::new();
                let marker = std::sync::Mutex::new(&mut *self);
                let shared = Shared {
                    builder: &builder,
                    wanted: &wanted_lock,
                    queue: &queue,
                    cv: &cv,
                    marker: &marker,
                };
                let (r0, rest) = readers.split_first_mut().expect("two readers");
                if threads < 2 || objects + ranges.len() < PARALLEL_ROUND {
                    shared.work(mem, heap, r0);
                } else {
                    let r1 = &mut rest[0];
                    let tp = std::time::Instant::now();
                    std::thread::scope(|sc| {
                        let other = sc.spawn(|| shared.work(mem, heap, r1));
                        shared.work(mem, heap, r0);
                        if let Err(p) = other.join() {
                            std::panic::resume_unwind(p);
                        }
                    });
                    r1.stats.parallel += tp.elapsed();
                }
                if let Ok(q) = queue.into_inner() {
                    chunks = q.free;
                }
            }
            let next = builder.into_inner().map_or(first, |(_, k)| k);
            self.batches = next;
            // The builder cleared the bits it took; clear any left by a failed round.
            if wave_spans.iter().any(|&w| w != 0) {
                wave_bits.fill(0);
                wave_spans.fill(0);
            }
            self.wave_bits = wave_bits;
            self.wave_spans = wave_spans;
            ranges.clear();
        }
        for r in &mut readers {
            let rs = std::mem::take(&mut r.stats);
            self.stats.read += rs.read;
            self.stats.maps += rs.maps;
            self.stats.batches += rs.batches;
            self.stats.ranges += rs.ranges;
            self.stats.bytes_read += rs.bytes_read;
            self.stats.wait += rs.wait;
            self.stats.scanned += rs.scanned;
            self.stats.build += rs.build;
            self.stats.parallel += rs.parallel;
        }
        self.readers = readers;
        self.chunks = chunks;
        self.wanted = wanted;
        self.stats.drain += t0.elapsed();
    }

    /// Moves the grey bits to the round's bitmap (`wave_bits`, `wave_spans`, both clear).
    fn take_grey(&mut self) {
        for (i, word) in self.grey_spans.iter_mut().enumerate() {
            let mut spans = *word;
            while spans != 0 {
                let s = i * 64 + spans.trailing_zeros() as usize;
                spans &= spans - 1;
                let h = &self.heap.hot[s];
                let first = h.bit_word as usize;
                for w in first..first + (h.nelems as usize).div_ceil(64) {
                    self.wave_bits[w] = std::mem::take(&mut self.bits[w].grey);
                }
            }
            self.wave_spans[i] = std::mem::take(word);
        }
    }

    /// Scans the pieces of a chunk read by [`Reader::fill`].
    fn scan_chunk(&mut self, c: &mut Chunk) {
        let t0 = std::time::Instant::now();
        // The first read of a bitmap or type counts (a later batch may have read it again).
        for (key, bits) in c.bitmaps.drain(..) {
            if self.maps.bitmap(key).is_none() {
                self.maps.set_bitmap(key, bits);
            }
        }
        for (ty, info) in c.types.drain(..) {
            self.maps.types.entry(ty).or_insert(info);
        }
        // The maps are set aside while scanning, so marking can borrow the rest of the mark.
        let mut maps = std::mem::take(&mut self.maps);
        let heap = self.heap;
        let batch = &c.batch;
        let mut at = 0usize;
        for (k, run) in batch.runs.iter().enumerate() {
            let len = (run.end - run.start) as usize;
            if !c.ok.get(k).copied().unwrap_or(false) {
                self.unreadable += len as u64;
                at += len;
                continue;
            }
            // A range lies in one span: only a span with hidden words needs them checked.
            let hidden = !self.hidden.is_empty()
                && match heap.span_of(run.start) {
                    Some(s) => self.hidden_spans[(s / 64) as usize] >> (s % 64) & 1 != 0,
                    None => self.hidden_outside,
                };
            for m in run.members.clone() {
                let (a, n) = batch.members[m];
                let off = at + (a - run.start) as usize;
                self.bytes_scanned += n;
                let bytes = &c.buf[off..off + n as usize];
                // The piece's pointer words that point into the heap, found with the piece's
                // metadata looked up once, marked as found.
                maps.candidates(batch.sources[m], a, bytes, heap, &mut |at, v| {
                    self.consider_in(at, v, hidden)
                });
            }
            at += len;
        }
        self.maps = maps;
        self.stats.scan += t0.elapsed();
    }
}

/// Rounds with fewer objects are read and scanned on one thread.
const PARALLEL_ROUND: usize = 2048;

/// What the threads draining one round share.
struct Shared<'s, 'h, 'w> {
    /// The round's batches, handed out in address order, and the next batch's number.
    builder: &'s std::sync::Mutex<(Builder<'w>, u64)>,
    /// Which bitmaps and types some batch reads.
    wanted: &'s std::sync::Mutex<&'w mut Wanted>,
    /// The batches read and not scanned yet.
    queue: &'s std::sync::Mutex<Queue>,
    /// Signalled when a batch is scanned or a thread stops.
    cv: &'s std::sync::Condvar,
    /// The mark: locked by the thread whose turn it is to scan (see [`Queue::scanning`]).
    marker: &'s std::sync::Mutex<&'s mut Marker<'h>>,
}

/// Batches read, waiting to be scanned in order.
#[derive(Default)]
struct Queue {
    /// The number of the next batch to scan.
    next: u64,
    /// Batches read, by number.
    filled: Vec<(u64, Chunk)>,
    /// Batches being read or read and not scanned (bounded: each holds a buffer).
    in_flight: usize,
    /// Chunks to reuse.
    free: Vec<Chunk>,
    /// A thread is scanning.
    scanning: bool,
    /// The builder has no batch left.
    built: bool,
    /// A thread failed: the others stop.
    aborted: bool,
}

/// Batches read ahead of the scan, at most (each up to [`BATCH_BYTES`]).
const IN_FLIGHT: usize = 3;

/// Stops the other threads when a thread panics.
struct AbortOnPanic<'a>(&'a std::sync::Mutex<Queue>, &'a std::sync::Condvar);

impl Drop for AbortOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Ok(mut q) = self.0.lock() {
                q.aborted = true;
            }
            self.1.notify_all();
        }
    }
}

impl Shared<'_, '_, '_> {
    /// Until the round is done: scans the next batch when it has been read and no other thread
    /// is scanning, else reads another batch (at most [`IN_FLIGHT`] ahead), else waits; after a
    /// scan, reads first, so both threads read and scan in turn (each mostly scanning what it
    /// read). Batches are scanned one at a time, in their order, by whichever thread is free.
    fn work<M: Memory + ?Sized>(&self, mem: &M, heap: &Heap, reader: &mut Reader) {
        let _guard = AbortOnPanic(self.queue, self.cv);
        let Ok(mut q) = self.queue.lock() else {
            return;
        };
        let mut scanned = false;
        loop {
            if q.aborted {
                return;
            }
            let can_read = !q.built && q.in_flight < IN_FLIGHT;
            // After a scan, read first (if there is anything to read).
            let read_first = scanned && can_read;
            if !q.scanning && !read_first {
                let next = q.next;
                if let Some(pos) = q.filled.iter().position(|(k, _)| *k == next) {
                    let (_, mut c) = q.filled.swap_remove(pos);
                    q.scanning = true;
                    drop(q);
                    let tw = std::time::Instant::now();
                    match self.marker.lock() {
                        Ok(mut m) => m.scan_chunk(&mut c),
                        Err(_) => return,
                    }
                    reader.stats.scanned += tw.elapsed();
                    c.batch.clear();
                    q = match self.queue.lock() {
                        Ok(q) => q,
                        Err(_) => return,
                    };
                    q.next += 1;
                    q.scanning = false;
                    q.in_flight -= 1;
                    q.free.push(c);
                    self.cv.notify_all();
                    scanned = true;
                    continue;
                }
            }
            scanned = false;
            if can_read {
                q.in_flight += 1;
                let mut c = q.free.pop().unwrap_or_default();
                drop(q);
                let tb = std::time::Instant::now();
                let k = match self.builder.lock() {
                    Ok(mut b) => {
                        let (builder, next) = &mut *b;
                        builder.next(&mut c.batch).then(|| {
                            *next += 1;
                            *next - 1
                        })
                    }
                    Err(_) => return,
                };
                reader.stats.build += tb.elapsed();
                if let Some(k) = k {
                    reader.fill(mem, heap, &mut c, k, self.wanted);
                }
                q = match self.queue.lock() {
                    Ok(q) => q,
                    Err(_) => return,
                };
                match k {
                    Some(k) => q.filled.push((k, c)),
                    None => {
                        q.built = true;
                        q.in_flight -= 1;
                        q.free.push(c);
                    }
                }
                self.cv.notify_all();
                continue;
            }
            // Nothing to read; the batch to scan is being read or scanned by the other thread.
            if q.built && q.in_flight == 0 {
                return;
            }
            let tw = std::time::Instant::now();
            q = match self.cv.wait(q) {
                Ok(q) => q,
                Err(_) => return,
            };
            reader.stats.wait += tw.elapsed();
        }
    }
}

/// Cuts a round (objects `wave` and ranges `ranges`, both sorted) into the batches of its
/// vectored reads, in address order: nearby pieces of one span share a range, huge objects are
/// cut into pieces of at most [`BATCH_BYTES`].
struct Builder<'w> {
    heap: &'w Heap,
    /// The round's grey bits and grey spans, cleared as they are taken.
    bits: &'w mut [u64],
    spans: &'w mut [u64],
    ranges: &'w [(u64, u64)],
    /// The object after the last one taken: its span, and the span's bits left in this word.
    span: u32,
    word: usize,
    left: u64,
    /// Where the current span's bits end.
    span_end: usize,
    /// The next object, looked at but not taken.
    peeked: Option<ObjRef>,
    j: usize,
    /// The object being cut into pieces: next piece's start, the object's end.
    cur: Option<(u64, u64)>,
    /// The range being built, and its pieces.
    open: Option<(u64, u64)>,
    open_members: Vec<(u64, u64)>,
    /// A closed range the last batch had no room for, and its pieces: the next batch starts
    /// with it.
    carry: Option<(u64, u64)>,
    carry_members: Vec<(u64, u64)>,
}

impl<'w> Builder<'w> {
    fn new(
        heap: &'w Heap,
        bits: &'w mut [u64],
        spans: &'w mut [u64],
        ranges: &'w [(u64, u64)],
    ) -> Self {
        Builder {
            heap,
            bits,
            spans,
            ranges,
            span: 0,
            word: 0,
            left: 0,
            span_end: 0,
            peeked: None,
            j: 0,
            cur: None,
            open: None,
            open_members: Vec::new(),
            carry: None,
            carry_members: Vec::new(),
        }
    }

    /// The next piece to read, in (address, length) order of the objects and ranges.
    fn next_piece(&mut self) -> Option<(u64, u64)> {
        loop {
            if let Some((a, end)) = self.cur {
                let piece = (end - a).min(BATCH_BYTES as u64);
                self.cur = (a + piece < end).then_some((a + piece, end));
                return Some((a, piece));
            }
            if self.peeked.is_none() {
                self.peeked = self.next_grey();
            }
            let obj = self.peeked.map(|r| self.heap.object(r));
            let range = self.ranges.get(self.j).copied();
            let (addr, len) = match (obj, range) {
                (Some(o), Some(r)) if r < o => {
                    self.j += 1;
                    r
                }
                (Some(o), _) => {
                    self.peeked = None;
                    o
                }
                (None, Some(r)) => {
                    self.j += 1;
                    r
                }
                (None, None) => return None,
            };
            let end = addr.saturating_add(len);
            if addr < end {
                self.cur = Some((addr, end));
            }
        }
    }

    /// The next grey object of the round, in (span, index) order, its bit cleared.
    fn next_grey(&mut self) -> Option<ObjRef> {
        loop {
            if self.left != 0 {
                let b = self.left.trailing_zeros();
                self.left &= self.left - 1;
                let first = self.heap.hot[self.span as usize].bit_word as usize;
                return Some(ObjRef {
                    span: self.span,
                    index: ((self.word - first) * 64) as u32 + b,
                });
            }
            if self.word + 1 < self.span_end {
                self.word += 1;
                self.left = std::mem::take(&mut self.bits[self.word]);
                continue;
            }
            // The next span with grey objects.
            let mut w = if self.span_end > 0 {
                self.span as usize + 1
            } else {
                0
            };
            let found = loop {
                let i = w / 64;
                let Some(word) = self.spans.get_mut(i) else {
                    break None;
                };
                let rest = *word >> (w % 64);
                if rest == 0 {
                    w = (i + 1) * 64;
                    continue;
                }
                let s = w + rest.trailing_zeros() as usize;
                *word &= !(1 << (s % 64));
                break Some(s);
            };
            let s = found?;
            let h = &self.heap.hot[s];
            self.span = s as u32;
            self.word = h.bit_word as usize;
            self.span_end = self.word + (h.nelems as usize).div_ceil(64);
            self.left = std::mem::take(&mut self.bits[self.word]);
        }
    }

    /// Fills `out` (emptied first) with the next batch; `false` when the round is done.
    fn next(&mut self, out: &mut Batch) -> bool {
        out.clear();
        if let Some(run) = self.carry.take() {
            out.push(run, &mut self.carry_members);
        }
        loop {
            let Some((a, piece)) = self.next_piece() else {
                if let Some(run) = self.open.take() {
                    if out.fits(run, self.open_members.len()) {
                        out.push(run, &mut self.open_members);
                    } else {
                        self.carry = Some(run);
                        std::mem::swap(&mut self.carry_members, &mut self.open_members);
                    }
                }
                return !out.runs.is_empty();
            };
            if let Some((start, rend)) = &mut self.open {
                if a >= *rend
                    && a - *rend <= COALESCE_GAP
                    && a + piece - *start <= BATCH_BYTES as u64
                    && self.open_members.len() < BATCH_PIECES
                    && self.heap.same_span(*start, a)
                {
                    *rend = a + piece;
                    self.open_members.push((a, piece));
                    continue;
                }
            }
            let full = match self.open.take() {
                Some(run) if out.fits(run, self.open_members.len()) => {
                    out.push(run, &mut self.open_members);
                    false
                }
                Some(run) => {
                    self.carry = Some(run);
                    std::mem::swap(&mut self.carry_members, &mut self.open_members);
                    true
                }
                None => false,
            };
            self.open = Some((a, a + piece));
            self.open_members.clear();
            self.open_members.push((a, piece));
            if full {
                return true;
            }
        }
    }
}

/// A batch read, with the pointer metadata its pieces need that no earlier batch read.
#[derive(Debug, Default)]
struct Chunk {
    batch: Batch,
    buf: Vec<u8>,
    ok: Vec<bool>,
    bitmaps: Vec<(MapKey, Bitmap)>,
    types: Vec<(u64, Option<TypeInfo>)>,
}

impl Chunk {
    /// A chunk with room for a full batch.
    fn new() -> Self {
        Chunk {
            batch: Batch {
                runs: Vec::with_capacity(BATCH_REQS),
                members: Vec::with_capacity(BATCH_PIECES),
                sources: Vec::with_capacity(BATCH_PIECES),
                total: 0,
            },
            buf: vec![0; BATCH_BYTES],
            ok: Vec::with_capacity(BATCH_REQS),
            bitmaps: Vec::new(),
            types: Vec::new(),
        }
    }
}

/// Which bitmaps and types are read, by which batch (the lowest number wins: batches are
/// scanned in order, so a batch can rely on what an earlier one reads).
#[derive(Debug, Default)]
struct Wanted {
    /// Per span: the batch that reads its bitmap (`u64::MAX`: none).
    span_bits: Vec<u64>,
    arena_bits: FxHashMap<u64, u64>,
    types: FxHashMap<u64, u64>,
}

impl Wanted {
    /// Whether batch `k` must read bitmap `key` itself (then it is noted as the reader).
    fn bitmap(&mut self, key: MapKey, k: u64) -> bool {
        let slot = match key {
            MapKey::Span(s) => match self.span_bits.get_mut(s as usize) {
                Some(slot) => slot,
                None => return false,
            },
            MapKey::Arena(a) => self.arena_bits.entry(a).or_insert(u64::MAX),
        };
        if *slot <= k {
            return false;
        }
        *slot = k;
        true
    }

    /// Whether batch `k` must read type `ty` itself.
    fn ty(&mut self, ty: u64, k: u64) -> bool {
        let slot = self.types.entry(ty).or_insert(u64::MAX);
        if *slot <= k {
            return false;
        }
        *slot = k;
        true
    }
}

/// One thread's reading side of the mark.
#[derive(Debug, Default)]
struct Reader {
    reqs: Vec<ReadReq>,
    keys: Vec<MapKey>,
    types: Vec<u64>,
    stats: MarkStats,
}

impl Reader {
    /// Reads the ranges of `c.batch` (batch number `k`), finds where each piece's pointer words
    /// are described, and reads the bitmaps and types no earlier batch reads.
    fn fill<M: Memory + ?Sized>(
        &mut self,
        mem: &M,
        heap: &Heap,
        c: &mut Chunk,
        k: u64,
        wanted: &std::sync::Mutex<&mut Wanted>,
    ) {
        let t = std::time::Instant::now();
        let batch = &mut c.batch;
        let total = batch.total;
        self.reqs.clear();
        self.reqs.extend(batch.runs.iter().map(|r| ReadReq {
            addr: r.start,
            len: (r.end - r.start) as usize,
        }));
        if c.buf.len() < total {
            c.buf.resize(total, 0);
        }
        mem.read_batch(&self.reqs, &mut c.buf[..total], &mut c.ok);
        let t2 = std::time::Instant::now();
        self.stats.read += t2 - t;
        self.stats.batches += 1;
        self.stats.ranges += batch.runs.len() as u64;
        self.stats.bytes_read += total as u64;
        let (keys, types) = (&mut self.keys, &mut self.types);
        keys.clear();
        types.clear();
        let mut at = 0usize;
        batch.sources.clear();
        batch.sources.resize(batch.members.len(), Source::None);
        for (i, run) in batch.runs.iter().enumerate() {
            let len = (run.end - run.start) as usize;
            if c.ok.get(i).copied().unwrap_or(false) {
                // A range lies in one span.
                let span = heap.span_of(run.start);
                for m in run.members.clone() {
                    let (a, n) = batch.members[m];
                    let off = at + (a - run.start) as usize;
                    let src = heap.source_in(span, a, &c.buf[off..off + n as usize]);
                    batch.sources[m] = src;
                    match src {
                        Source::Bits { key, .. } => keys.push(key),
                        Source::Typed { ty, .. } => types.push(ty),
                        _ => {}
                    }
                }
            }
            at += len;
        }
        keys.sort_unstable_by_key(|k| match k {
            MapKey::Span(s) => (0, u64::from(*s)),
            MapKey::Arena(a) => (1, *a),
        });
        keys.dedup();
        types.sort_unstable();
        types.dedup();
        if let Ok(mut w) = wanted.lock() {
            keys.retain(|&key| w.bitmap(key, k));
            types.retain(|&ty| w.ty(ty, k));
        }
        // Bitmaps: a span's trailing heap bits, or an arena's bitmap.
        let mut reqs = Vec::with_capacity(keys.len());
        for key in keys.iter() {
            let req = match (*key, heap.bits) {
                (
                    MapKey::Span(s),
                    Some(HeapBits::Headers {
                        inline_mark_bits, ..
                    }),
                ) => {
                    let span = &heap.spans[s as usize];
                    let size = span.end - span.base;
                    let bits = size / 64;
                    let marks = if span.elemsize >= 16 {
                        inline_mark_bits
                    } else {
                        0
                    };
                    ReadReq {
                        addr: span.end - bits - marks,
                        len: bits as usize,
                    }
                }
                (MapKey::Arena(ai), Some(HeapBits::ArenaBitmap { bitmap })) => {
                    match heap.arena_records.get(&ai) {
                        Some(&rec) => ReadReq {
                            addr: rec + bitmap,
                            len: (heap.arena_bytes / 64) as usize,
                        },
                        None => ReadReq { addr: 0, len: 0 },
                    }
                }
                _ => ReadReq { addr: 0, len: 0 },
            };
            reqs.push(req);
        }
        let mut done = 0;
        while done < reqs.len() {
            // Batches of at most BATCH_BYTES (an arena bitmap is 1 MiB).
            let mut end = done;
            let mut total = 0usize;
            while end < reqs.len()
                && (end == done || total + reqs[end].len <= BATCH_BYTES)
                && end - done < BATCH_REQS
            {
                total += reqs[end].len;
                end += 1;
            }
            let mut b = vec![0u8; total];
            let mut okb = Vec::new();
            mem.read_batch(&reqs[done..end], &mut b, &mut okb);
            let mut at = 0usize;
            for (i, r) in reqs[done..end].iter().enumerate() {
                let good = r.len > 0 && okb.get(i).copied().unwrap_or(false);
                c.bitmaps
                    .push((keys[done + i], good.then(|| b[at..at + r.len].into())));
                at += r.len;
            }
            done = end;
        }
        // Types: their headers, then their masks.
        if let Some(HeapBits::Headers { ty: tl, .. }) = heap.bits {
            for &ty in types.iter() {
                c.types.push((ty, read_type(mem, &tl, ty)));
            }
        }
        self.stats.maps += t2.elapsed();
    }
}

/// One range read in a single request: `[start, end)` and its objects (`members` of the batch).
#[derive(Debug, Clone)]
struct Run {
    start: u64,
    end: u64,
    members: std::ops::Range<usize>,
}

/// The ranges of one vectored read, in address order; at most [`BATCH_BYTES`] and
/// [`BATCH_REQS`] ranges.
#[derive(Debug, Default)]
struct Batch {
    runs: Vec<Run>,
    /// The pieces scanned: (address, length).
    members: Vec<(u64, u64)>,
    /// Where each member's pointer words are described (filled after the read).
    sources: Vec<Source>,
    /// Bytes of `runs`.
    total: usize,
}

impl Batch {
    /// Whether the range `run` with `pieces` pieces can join this batch.
    fn fits(&self, run: (u64, u64), pieces: usize) -> bool {
        self.runs.is_empty()
            || (self.total + (run.1 - run.0) as usize <= BATCH_BYTES
                && self.runs.len() < BATCH_REQS
                && self.members.len() + pieces <= BATCH_PIECES)
    }

    /// Adds the range `run` with its pieces `members` (taken).
    fn push(&mut self, run: (u64, u64), members: &mut Vec<(u64, u64)>) {
        let first = self.members.len();
        self.members.append(members);
        self.runs.push(Run {
            start: run.0,
            end: run.1,
            members: first..self.members.len(),
        });
        self.total += (run.1 - run.0) as usize;
    }

    fn clear(&mut self) {
        self.runs.clear();
        self.members.clear();
        self.sources.clear();
        self.total = 0;
    }
}

/// Which words of a piece of an object may hold pointers.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// None (a header-less object whose type has no pointers, a nil large type).
    None,
    /// Every word (no metadata could be read: conservative).
    All,
    /// Bit `first + i` of bitmap `key` for word `i` of the piece.
    Bits { key: MapKey, first: u64 },
    /// The words of type `ty` tiled from `data` (the object's first element).
    Typed { ty: u64, data: u64 },
}

/// A cached bitmap: a span's trailing heap bits, or an arena's bitmap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum MapKey {
    Span(u32),
    Arena(u64),
}

/// A type's pointer layout, as the heap's type headers describe it.
#[derive(Debug)]
struct TypeInfo {
    size: u64,
    ptr_words: u64,
    mask: Vec<u8>,
}

/// A bitmap read for the mark: `None` when it could not be read.
type Bitmap = Option<Box<[u8]>>;

/// The runtime's pointer metadata read so far, cached for the mark.
#[derive(Debug, Default)]
struct PtrMaps {
    /// Per span: its trailing heap bits, once read.
    span_bits: Vec<Option<Bitmap>>,
    /// Per arena: its bitmap (Go 1.21), once read.
    arena_bits: FxHashMap<u64, Bitmap>,
    types: FxHashMap<u64, Option<TypeInfo>>,
    /// Object pieces scanned with the runtime's metadata.
    precise: u64,
    /// Object pieces scanned conservatively.
    conservative: u64,
}

/// Largest pointer bitmap of one type read (a corrupt `PtrBytes` must not allocate without
/// bound): 1 GiB of pointer words.
const MAX_TYPE_MASK: u64 = 16 << 20;

impl PtrMaps {
    fn new(spans: usize) -> Self {
        PtrMaps {
            span_bits: vec![None; spans],
            ..PtrMaps::default()
        }
    }

    /// The cached bitmap `key`: `None` when not read yet.
    fn bitmap(&self, key: MapKey) -> Option<&Bitmap> {
        match key {
            MapKey::Span(s) => self.span_bits.get(s as usize)?.as_ref(),
            MapKey::Arena(a) => self.arena_bits.get(&a),
        }
    }

    fn set_bitmap(&mut self, key: MapKey, bits: Bitmap) {
        match key {
            MapKey::Span(s) => {
                if let Some(slot) = self.span_bits.get_mut(s as usize) {
                    *slot = Some(bits);
                }
            }
            MapKey::Arena(a) => {
                self.arena_bits.insert(a, bits);
            }
        }
    }

    /// Calls `out(address, value)` for the words of the piece `bytes` (read at `a`) that `src`
    /// says may hold pointers and whose values lie in the heap's range, in address order.
    fn candidates<F: FnMut(u64, u64)>(
        &mut self,
        src: Source,
        a: u64,
        bytes: &[u8],
        heap: &Heap,
        out: &mut F,
    ) {
        let (lo, hi) = (heap.lo, heap.hi);
        let n = bytes.len() / 8;
        let word =
            |i: usize| u64::from_le_bytes(bytes[8 * i..8 * i + 8].try_into().expect("8 bytes"));
        let mut push = |i: usize| {
            let v = word(i);
            if v >= lo && v < hi {
                out(a + 8 * i as u64, v);
            }
        };
        match src {
            Source::None => {}
            Source::All => {
                self.conservative += 1;
                (0..n).for_each(push);
            }
            Source::Bits { key, first } => {
                let read = match self.bitmap(key) {
                    Some(Some(b)) => {
                        // Bit `first + i` for word `i`; words past the bitmap's end count as
                        // pointers. Zero bytes are skipped whole.
                        let mut i = 0usize;
                        while i < n {
                            let j = first + i as u64;
                            let Some(&byte) = b.get((j / 8) as usize) else {
                                (i..n).for_each(&mut push);
                                break;
                            };
                            let rest = byte >> (j % 8);
                            if rest == 0 {
                                i += (8 - j % 8) as usize;
                                continue;
                            }
                            if rest & 1 != 0 {
                                push(i);
                            }
                            i += 1;
                        }
                        true
                    }
                    // Unreadable: every word may be a pointer.
                    _ => {
                        (0..n).for_each(push);
                        false
                    }
                };
                if read {
                    self.precise += 1;
                } else {
                    self.conservative += 1;
                }
            }
            Source::Typed { ty, data } => {
                // Words before `data` (a malloc header) are never pointers.
                let skip = if data > a {
                    (data - a).div_ceil(8).min(n as u64) as usize
                } else {
                    0
                };
                match self.types.get(&ty) {
                    Some(Some(t)) => {
                        self.precise += 1;
                        let size = t.size.max(8);
                        let first = a + 8 * skip as u64;
                        let is_ptr = |w: u64| {
                            w < t.ptr_words
                                && t.mask
                                    .get((w / 8) as usize)
                                    .is_some_and(|x| x >> (w % 8) & 1 != 0)
                        };
                        if size.is_multiple_of(8)
                            && first >= data
                            && (first - data).is_multiple_of(8)
                        {
                            // Word `w` of the element, counted along without a division.
                            let per = size / 8;
                            let mut w = ((first - data) % size) / 8;
                            for i in skip..n {
                                if is_ptr(w) {
                                    push(i);
                                }
                                w += 1;
                                if w == per {
                                    w = 0;
                                }
                            }
                        } else {
                            for i in skip..n {
                                let at = a + 8 * i as u64;
                                if at >= data && is_ptr(((at - data) % size) / 8) {
                                    push(i);
                                }
                            }
                        }
                    }
                    // The type could not be read: every word may be a pointer.
                    _ => {
                        self.conservative += 1;
                        (skip..n).for_each(push);
                    }
                }
            }
        }
    }
}

impl Marker<'_> {
    /// Objects scanned with the runtime's own pointer metadata, and conservatively.
    pub fn scan_counts(&self) -> (u64, u64) {
        (self.maps.precise, self.maps.conservative)
    }
}

/// A type's size and pointer bitmap, read from its `abi.Type`. `None` when it cannot be read
/// or its bitmap is a GC program (scanned conservatively then).
fn read_type<M: Memory + ?Sized>(mem: &M, tl: &TypeLayout, ty: u64) -> Option<TypeInfo> {
    let h = TypeHeader::read(mem, tl, ty)?;
    let (size, ptr_bytes) = (h.size, h.ptr_bytes);
    if tl.kind_gc_prog.is_some_and(|g| h.kind & g != 0) {
        return None;
    }
    let ptr_words = ptr_bytes / 8;
    if size == 0 || ptr_bytes > size || ptr_words > MAX_TYPE_MASK * 8 {
        return None;
    }
    if ptr_words == 0 {
        return Some(TypeInfo {
            size,
            ptr_words,
            mask: Vec::new(),
        });
    }
    let mask = if h.on_demand(tl) {
        // The runtime builds this bitmap on first use and records it in the slot GCData points
        // to; until then the slot is nil, and while a thread builds it, the address of a
        // sentinel byte. Build it from the type's structure the same way instead.
        let mut b = MaskBuilder {
            mem,
            tl,
            cl: tl.composite?,
            words: ptr_words,
            mask: vec![0u8; ptr_words.div_ceil(8) as usize],
            budget: MASK_BUILD_STEPS,
            headers: FxHashMap::default(),
            masks: FxHashMap::default(),
            mask_bytes: MASK_BUILD_BYTES,
        };
        b.put(ty, 0, 0)?;
        b.mask
    } else {
        let mut mask = vec![0u8; ptr_words.div_ceil(8) as usize];
        mem.read(h.gcdata, &mut mask).ok()?;
        mask
    };
    Some(TypeInfo {
        size,
        ptr_words,
        mask,
    })
}

/// Types, elements and fields visited to build one type's bitmap before giving up (the object
/// is then scanned conservatively): hostile memory must not make the build loop without bound.
const MASK_BUILD_STEPS: u64 = 1 << 20;

/// Bytes of element and field bitmaps read to build one type's bitmap before giving up.
const MASK_BUILD_BYTES: u64 = 16 << 20;

/// The words of one `abi.Type` that say where its pointers are.
#[derive(Debug, Clone, Copy)]
struct TypeHeader {
    size: u64,
    ptr_bytes: u64,
    kind: u8,
    tflag: u8,
    gcdata: u64,
}

impl TypeHeader {
    fn read<M: Memory + ?Sized>(mem: &M, tl: &TypeLayout, ty: u64) -> Option<TypeHeader> {
        let mut b = [0u8; 64];
        let need = (tl.gcdata + 8).max(tl.kind + 1).max(tl.tflag + 1) as usize;
        mem.read(ty, &mut b[..need.min(64)]).ok()?;
        Some(TypeHeader {
            size: u64_at(&b, tl.size),
            ptr_bytes: u64_at(&b, tl.ptr_bytes),
            kind: b[tl.kind as usize],
            tflag: b[tl.tflag as usize],
            gcdata: u64_at(&b, tl.gcdata),
        })
    }

    /// The runtime makes this type's bitmap on first use (`abi.TFlagGCMaskOnDemand`).
    fn on_demand(&self, tl: &TypeLayout) -> bool {
        tl.tflag_mask_on_demand.is_some_and(|f| self.tflag & f != 0)
    }
}

/// Builds the pointer bitmap of a type whose bitmap the runtime makes on demand
/// (`abi.TFlagGCMaskOnDemand`, Go 1.24+), as `runtime.buildGCMask` does: an array repeats its
/// element's bitmap, a struct places each field's at the field's offset, and any type with a
/// bitmap of its own contributes that.
struct MaskBuilder<'a, M: Memory + ?Sized> {
    mem: &'a M,
    tl: &'a TypeLayout,
    cl: gostall_goruntime::layout::CompositeLayout,
    /// Pointer words of the type being built: the bitmap's length in bits.
    words: u64,
    mask: Vec<u8>,
    budget: u64,
    headers: FxHashMap<u64, TypeHeader>,
    /// Bitmaps of the element and field types that have their own.
    masks: FxHashMap<u64, Vec<u8>>,
    /// Bytes of such bitmaps still allowed to be read (hostile types must not make it allocate
    /// without bound).
    mask_bytes: u64,
}

impl<M: Memory + ?Sized> MaskBuilder<'_, M> {
    fn header(&mut self, ty: u64) -> Option<TypeHeader> {
        if let Some(h) = self.headers.get(&ty) {
            return Some(*h);
        }
        let h = TypeHeader::read(self.mem, self.tl, ty)?;
        if h.ptr_bytes > h.size {
            return None;
        }
        self.headers.insert(ty, h);
        Some(h)
    }

    /// Sets the bits of type `ty` placed at word `at` of the type being built.
    fn put(&mut self, ty: u64, at: u64, depth: u32) -> Option<()> {
        self.budget = self.budget.checked_sub(1)?;
        if depth > 64 {
            return None;
        }
        let h = self.header(ty)?;
        let n = h.ptr_bytes / 8;
        if n == 0 {
            return Some(());
        }
        if at.checked_add(n)? > self.words {
            return None;
        }
        if !h.on_demand(self.tl) {
            let bits = match self.masks.get(&ty) {
                Some(b) => b,
                None => {
                    self.mask_bytes = self.mask_bytes.checked_sub(n.div_ceil(8))?;
                    let mut b = vec![0u8; n.div_ceil(8) as usize];
                    self.mem.read(h.gcdata, &mut b).ok()?;
                    self.masks.entry(ty).or_insert(b)
                }
            };
            for w in (0..n).filter(|w| bits[(w / 8) as usize] >> (w % 8) & 1 != 0) {
                let i = at + w;
                self.mask[(i / 8) as usize] |= 1 << (i % 8);
            }
            return Some(());
        }
        let cl = self.cl;
        let kind = h.kind & cl.kind_mask;
        if kind == cl.kind_array {
            let elem = self.mem.read_u64(ty + cl.array_elem).ok()?;
            let len = self.mem.read_u64(ty + cl.array_len).ok()?;
            let e = self.header(elem)?;
            if e.ptr_bytes == 0 {
                return Some(());
            }
            if !e.size.is_multiple_of(8) {
                return None;
            }
            let step = e.size / 8;
            for i in 0..len {
                let off = at.checked_add(i.checked_mul(step)?)?;
                if off >= at + n {
                    break;
                }
                self.put(elem, off, depth + 1)?;
            }
            Some(())
        } else if kind == cl.kind_struct {
            let fields = self.mem.read_u64(ty + cl.struct_fields).ok()?;
            let count = self.mem.read_u64(ty + cl.struct_fields + 8).ok()?;
            if count > 1 << 16 || cl.field_size == 0 {
                return None;
            }
            let mut buf = vec![0u8; (count * cl.field_size) as usize];
            self.mem.read(fields, &mut buf).ok()?;
            for f in buf.chunks_exact(cl.field_size as usize) {
                let fty = u64_at(f, cl.field_typ);
                let off = u64_at(f, cl.field_offset);
                if !off.is_multiple_of(8) && self.header(fty)?.ptr_bytes != 0 {
                    return None;
                }
                self.put(fty, at.checked_add(off / 8)?, depth + 1)?;
            }
            Some(())
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gostall_access::MemError;

    /// A flat memory image starting at `base`.
    struct Image {
        base: u64,
        bytes: Vec<u8>,
    }

    impl Memory for Image {
        fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
            let off = addr.checked_sub(self.base).ok_or(MemError::BadRange {
                addr,
                len: buf.len(),
            })? as usize;
            let src = self
                .bytes
                .get(off..off + buf.len())
                .ok_or(MemError::BadRange {
                    addr,
                    len: buf.len(),
                })?;
            buf.copy_from_slice(src);
            Ok(())
        }
    }

    fn heap_with(spans: Vec<Span>) -> Heap {
        let arena_bytes = 1 << 26;
        let mut pages = vec![0u32; (arena_bytes >> 13) as usize];
        let (mut lo, mut hi) = (u64::MAX, 0);
        for (k, s) in spans.iter().enumerate() {
            for p in ((s.base % arena_bytes) >> 13)..((s.end % arena_bytes) >> 13) {
                pages[p as usize] = k as u32 + 1;
            }
            lo = lo.min(s.base);
            hi = hi.max(s.end);
        }
        let arenas = ArenaIndex::new(&[(
            0xc000000000u64.wrapping_sub(0xffff_8000_0000_0000) / arena_bytes,
            0,
        )]);
        let mut heap = Heap {
            arena_bytes,
            arena_shift: Some(26),
            arena_base_offset: 0xffff_8000_0000_0000,
            page_shift: 13,
            arenas,
            arena_pages: pages.len(),
            pages,
            spans,
            hot: Vec::new(),
            object_words: 0,
            lo,
            hi,
            span_bytes: 0,
            bits: None,
            arena_records: FxHashMap::default(),
        };
        heap.index_spans();
        heap
    }

    #[test]
    fn marks_through_scan_objects_but_not_noscan_or_hidden_words() {
        let base = 0xc000000000u64;
        let scan = Span {
            base,
            end: base + 8192,
            elemsize: 32,
            nelems: 256,
            noscan: false,
            specials: 0,
            large: false,
            large_type: 0,
            bits_at_end: false,
        };
        let noscan = Span {
            base: base + 8192,
            end: base + 16384,
            elemsize: 16,
            nelems: 512,
            noscan: true,
            specials: 0,
            large: false,
            large_type: 0,
            bits_at_end: false,
        };
        let heap = heap_with(vec![scan, noscan]);
        let mut img = Image {
            base,
            bytes: vec![0; 16384],
        };
        let put = |img: &mut Image, at: u64, v: u64| {
            let o = (at - base) as usize;
            img.bytes[o..o + 8].copy_from_slice(&v.to_le_bytes());
        };
        // obj0 → obj1 (interior pointer) → noscan obj whose word looks like a pointer to obj3.
        put(&mut img, base, base + 32 + 8);
        put(&mut img, base + 32 + 16, base + 8192 + 16);
        put(&mut img, base + 8192 + 16, base + 96);
        // obj2's second word points at obj4, but is hidden.
        put(&mut img, base + 64 + 8, base + 128);
        let mut m = Marker::new(&heap);
        m.hide(base + 64 + 8, 8);
        m.scan_root(0x1000, &base.to_le_bytes(), None);
        m.scan_root(0x2000, &(base + 64).to_le_bytes(), Some(&[1]));
        m.scan_root(0x3000, &(base + 160).to_le_bytes(), Some(&[0]));
        m.drain(&img);
        assert_eq!(m.is_marked(base), Some(true));
        assert_eq!(m.is_marked(base + 40), Some(true));
        assert_eq!(m.is_marked(base + 8192 + 16), Some(true));
        assert_eq!(
            m.is_marked(base + 96),
            Some(false),
            "noscan objects are not scanned"
        );
        assert_eq!(m.is_marked(base + 64), Some(true));
        assert_eq!(m.is_marked(base + 128), Some(false), "hidden word");
        assert_eq!(
            m.is_marked(base + 160),
            Some(false),
            "bit clear in the root's bitmap"
        );
        assert_eq!(m.is_marked(0x1000), None);
        assert_eq!(m.marked, 4);
    }

    /// `internal/abi` as Go 1.27 lays it out on linux/amd64.
    fn abi_layout() -> TypeLayout {
        TypeLayout {
            size: 0,
            ptr_bytes: 8,
            tflag: 20,
            kind: 23,
            gcdata: 32,
            kind_gc_prog: None,
            tflag_mask_on_demand: Some(16),
            composite: Some(gostall_goruntime::layout::CompositeLayout {
                kind_array: 17,
                kind_struct: 25,
                kind_mask: u8::MAX,
                array_elem: 48,
                array_len: 64,
                struct_fields: 56,
                field_size: 24,
                field_typ: 8,
                field_offset: 16,
            }),
        }
    }

    /// Writes an `abi.Type` header at `at`.
    fn put_type(
        img: &mut Image,
        at: u64,
        size: u64,
        ptr_bytes: u64,
        kind: u8,
        tflag: u8,
        gcdata: u64,
    ) {
        let o = (at - img.base) as usize;
        img.bytes[o..o + 8].copy_from_slice(&size.to_le_bytes());
        img.bytes[o + 8..o + 16].copy_from_slice(&ptr_bytes.to_le_bytes());
        img.bytes[o + 20] = tflag;
        img.bytes[o + 23] = kind;
        img.bytes[o + 32..o + 40].copy_from_slice(&gcdata.to_le_bytes());
    }

    fn put_u64(img: &mut Image, at: u64, v: u64) {
        let o = (at - img.base) as usize;
        img.bytes[o..o + 8].copy_from_slice(&v.to_le_bytes());
    }

    /// `struct { x int; arr [3]struct{ a int; b *T }; p *T; y uint32 }`, whose bitmap and its
    /// array field's the runtime builds on demand.
    fn on_demand_image(slot: u64) -> Image {
        let mut img = Image {
            base: 0x10000,
            bytes: vec![0; 0x1000],
        };
        put_type(&mut img, 0x10000, 8, 8, 22, 0, 0x10f00); // *T
        img.bytes[0xf00] = 0b1;
        put_type(&mut img, 0x10100, 8, 0, 2, 0, 0); // int
        put_type(&mut img, 0x10180, 4, 0, 10, 0, 0); // uint32
        put_type(&mut img, 0x10200, 16, 16, 25, 0, 0x10f08); // the pair, with its own bitmap
        img.bytes[0xf08] = 0b10;
        put_type(&mut img, 0x10300, 48, 48, 17, 16, 0x10f10); // [3]pair, on demand
        put_u64(&mut img, 0x10300 + 48, 0x10200);
        put_u64(&mut img, 0x10300 + 64, 3);
        put_type(&mut img, 0x10400, 72, 64, 25, 16, 0x10f18); // the struct, on demand
        put_u64(&mut img, 0x10400 + 56, 0x10600);
        put_u64(&mut img, 0x10400 + 64, 4);
        for (i, (ty, off)) in [(0x10100, 0), (0x10300, 8), (0x10000, 56), (0x10180, 64)]
            .into_iter()
            .enumerate()
        {
            put_u64(&mut img, 0x10600 + 24 * i as u64 + 8, ty);
            put_u64(&mut img, 0x10600 + 24 * i as u64 + 16, off);
        }
        // The runtime's slots: nil (not built yet), or the address of its sentinel byte.
        put_u64(&mut img, 0x10f10, slot);
        put_u64(&mut img, 0x10f18, slot);
        img
    }

    #[test]
    fn a_bitmap_made_on_demand_is_built_from_the_types_structure() {
        let tl = abi_layout();
        for slot in [0, 0x10ff0] {
            let mut img = on_demand_image(slot);
            img.bytes[0xff0] = 0xff; // what a sentinel byte may hold: not a bitmap
            let t = read_type(&img, &tl, 0x10400).expect("built");
            assert_eq!((t.size, t.ptr_words), (72, 8));
            // arr's pointers at words 1+1, 1+3, 1+5; p at word 7.
            assert_eq!(t.mask, vec![0b1101_0100]);
        }
        // A type that contains itself is refused, not followed forever.
        let mut img = on_demand_image(0);
        put_u64(&mut img, 0x10300 + 48, 0x10300);
        put_u64(&mut img, 0x10300 + 64, 1);
        assert!(read_type(&img, &tl, 0x10300).is_none());
        // A field past the type's pointer words is refused.
        let mut img = on_demand_image(0);
        put_u64(&mut img, 0x10600 + 24 * 2 + 16, 64);
        assert!(read_type(&img, &tl, 0x10400).is_none());
    }
}
