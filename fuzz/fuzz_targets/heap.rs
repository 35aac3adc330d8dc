//! The heap reader and the mark (`gostall_heap::Heap::read`, `finalizers`, `Marker`) against
//! hostile memory, with Go 1.27's recorded layout. The arena map's two levels are laid out so the
//! one arena at 0xc000000000 has a `heapArena` record; everything past that is the input's: which
//! span each page belongs to, every `mspan` header (its start kept inside the mapped arena so
//! spans can overlap, nest and lie), the specials lists, and the arena's words that the mark
//! follows as pointers.
#![no_main]

use gostall_access::FakeMemory;
use gostall_goruntime::layout::{HeapLayout, RuntimeLayout};
use gostall_heap::{Heap, Marker};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const MHEAP: u64 = 0x1000_0000;
const SLOT: u64 = 0x1100_0000;
const RECORD: u64 = 0x2000_0000;
const SPANS: u64 = 0x3000_0000;
const ARENA: u64 = 0xc0_0000_0000;
/// Bytes of the arena mapped (the rest of its 64 MiB reads as unmapped).
const ARENA_MAPPED: u64 = 256 << 10;
/// Span records the page map can point at.
const NSPANS: u64 = 64;

fn layout() -> Option<&'static HeapLayout> {
    static L: OnceLock<Option<HeapLayout>> = OnceLock::new();
    L.get_or_init(|| {
        let t = gostall_goruntime::tables::table_for(27)?;
        RuntimeLayout::from_types(&t).ok()?.heap.ok()
    })
    .as_ref()
}

fn tiled(data: &[u8], len: usize) -> Vec<u8> {
    data.iter().copied().cycle().take(len).collect()
}

fn word(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    for (k, x) in w.iter_mut().enumerate() {
        *x = b.get((at + k) % b.len().max(1)).copied().unwrap_or(0);
    }
    u64::from_le_bytes(w)
}

fuzz_target!(|data: &[u8]| {
    let Some(l) = layout() else {
        return;
    };
    if data.len() < 32 {
        return;
    }
    let (ctl, body) = data.split_at(data.len() / 4);
    let mut mem = FakeMemory::new();
    // mheap_.arenas → L2 → *heapArena of the arena at ARENA.
    let idx = ARENA.wrapping_sub(l.arena_base_offset) / l.arena_bytes;
    let l2 = SLOT.wrapping_sub(idx.wrapping_mul(8));
    let mut mheap = vec![0u8; (l.mheap_arenas + 8) as usize];
    mheap[l.mheap_arenas as usize..].copy_from_slice(&l2.to_le_bytes());
    mem.add(MHEAP, mheap);
    mem.add(SLOT, RECORD.to_le_bytes().to_vec());
    // The page → span map, from the control bytes.
    let pages = (l.arena_bytes / l.page_size) as usize;
    let mut record = vec![0u8; l.arena_spans as usize + pages * 8];
    for p in 0..pages {
        let c = ctl[p % ctl.len()];
        let span = if c & 0x80 != 0 {
            0
        } else {
            SPANS + u64::from(c) % NSPANS * l.span_size
        };
        let at = l.arena_spans as usize + p * 8;
        record[at..at + 8].copy_from_slice(&span.to_le_bytes());
    }
    mem.add(RECORD, record);
    // Span headers from the body, each one's start inside the mapped arena.
    let mut spans = tiled(body, (NSPANS * l.span_size) as usize);
    for k in 0..NSPANS as usize {
        let at = k * l.span_size as usize + l.span_start as usize;
        let start = ARENA + word(&spans, at) % ARENA_MAPPED;
        spans[at..at + 8].copy_from_slice(&start.to_le_bytes());
    }
    mem.add(SPANS, spans);
    // The arena's words: those with a set top bit point back into the arena.
    let mut arena = tiled(body, ARENA_MAPPED as usize);
    for w in arena.chunks_exact_mut(8) {
        let v = u64::from_le_bytes(w.try_into().unwrap());
        if v >> 63 != 0 {
            w.copy_from_slice(&(ARENA + v % ARENA_MAPPED).to_le_bytes());
        }
    }
    mem.add(ARENA, arena);
    let Ok(heap) = Heap::read(&mem, l, MHEAP, &[ARENA]) else {
        return;
    };
    let _ = heap.finalizers(&mem, l);
    let mut marker = Marker::new(&heap);
    for k in 0..ctl.len().min(64) {
        marker.consider(0, ARENA + word(ctl, k * 8) % ARENA_MAPPED);
    }
    marker.drain(&mem);
    let _ = marker.scan_counts();
});
