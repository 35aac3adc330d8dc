//! Which semaphore each goroutine blocked in a lock, WaitGroup or `semacquire` waits on.
//!
//! The runtime keeps such waiters in `runtime.semtable`: 251 roots, each a treap of sudogs (one per
//! distinct semaphore address, children in `prev`/`next`) with the other waiters on the same
//! address chained through `waitlink`. Every sudog names its goroutine (`g`) and the semaphore
//! address (`elem`). Walking it gives goroutine → address, so waiters on the same lock group
//! together. The walk is bounded and tolerates a table that changes while it is read.

use crate::Program;
use gostall_access::Memory;
use rustc_hash::{FxHashMap, FxHashSet};

/// Most sudogs visited (a corrupt or racing table must not make the walk unbounded).
const MAX_NODES: usize = 4_000_000;

/// Goroutine address → semaphore address, for every goroutine parked in the semaphore table.
pub(crate) fn waiters<M: Memory + ?Sized>(prog: &Program<'_>, mem: &M) -> FxHashMap<u64, u64> {
    waiters_with_sudogs(prog, mem)
        .into_iter()
        .map(|(g, (_, elem))| (g, elem))
        .collect()
}

/// Goroutine address → (its sudog, semaphore address), for every goroutine parked in the
/// semaphore table.
pub(crate) fn waiters_with_sudogs<M: Memory + ?Sized>(
    prog: &Program<'_>,
    mem: &M,
) -> FxHashMap<u64, (u64, u64)> {
    let mut out = FxHashMap::default();
    let (Some(l), Some((table, size))) = (prog.layout.sema, prog.sym.semtable) else {
        return out;
    };
    let stride = size / l.entries;
    if stride == 0 {
        return out;
    }
    let su = &prog.layout.sudog;
    let mut raw = vec![0u8; size as usize];
    if mem.read(table, &mut raw).is_err() {
        return out;
    }
    let mut stack: Vec<u64> = (0..l.entries)
        .map(|i| crate::u64_at(&raw, i * stride + l.treap))
        .filter(|&p| p != 0)
        .collect();
    let mut seen = FxHashSet::default();
    let mut buf = vec![0u8; su.size as usize];
    while let Some(node) = stack.pop() {
        if seen.len() >= MAX_NODES || !seen.insert(node) || mem.read(node, &mut buf).is_err() {
            continue;
        }
        let (g, elem) = (crate::u64_at(&buf, su.g), crate::u64_at(&buf, su.elem));
        if g != 0 && elem != 0 {
            out.insert(g, (node, elem));
        }
        for child in [su.prev, su.next, su.waitlink] {
            let c = crate::u64_at(&buf, child);
            if c != 0 {
                stack.push(c);
            }
        }
    }
    out
}
