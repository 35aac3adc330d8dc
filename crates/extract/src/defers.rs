//! Who holds a lock, read rather than guessed: a goroutine whose frame has a pending
//! `defer mu.Unlock()` (an open-coded defer that has run and not yet been called) holds `mu`.
//! Locks the program releases that way — most of them — get certain holders; the others keep
//! the inference from who points at the lock.

use crate::stackscan::frames;
use crate::{GRaw, Program};
use gostall_access::Memory;
use gostall_goruntime::defers::{open_defers, releases_lock};
use gostall_model::{ObjectKind, SyncObject};
use rustc_hash::{FxHashMap, FxHashSet};

/// Largest stack read to look for defers.
const MAX_STACK: u64 = 1 << 20;

/// A pending deferred unlock: the words the deferred function value captured (a method
/// value's receiver, a wrapper closure's captured lock pointer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Unlock {
    captured: [u64; 2],
    /// `sync`'s own unlock (a captured word is the lock), rather than a promoted method of a
    /// type that embeds a lock (a captured word points at the object containing it).
    direct: bool,
}

/// Whether the function at `fnpc` releases a lock (see `goruntime::defers::releases_lock`),
/// from its name, the functions inlined into it and those it calls directly.
fn releases(
    prog: &Program<'_>,
    fnpc: u64,
    memo: &mut FxHashMap<u64, Option<bool>>,
) -> Option<bool> {
    if let Some(&r) = memo.get(&fnpc) {
        return r;
    }
    let pcln = &prog.pcln;
    let r = fnpc
        .checked_sub(prog.bias)
        .and_then(|l| pcln.find_func(l))
        .and_then(|f| {
            let mut names = vec![pcln.name(&f)];
            names.extend(pcln.inlined_callees(&f));
            if let Some(code) = pcln.code(&f) {
                for t in gostall_binfmt::code::call_targets(code, pcln.entry(&f)) {
                    if let Some(g) = pcln.find_func(t) {
                        names.push(pcln.name(&g));
                    }
                }
            }
            releases_lock(names)
        });
    memo.insert(fnpc, r);
    r
}

/// The deferred unlocks pending in the frames of goroutine `g`.
fn pending_unlocks<M: Memory + ?Sized>(
    prog: &Program<'_>,
    mem: &M,
    g: &GRaw,
    memo: &mut FxHashMap<u64, Option<bool>>,
) -> Vec<Unlock> {
    let (pc, sp) = crate::unwind::start(g);
    if sp < g.stack_lo || sp >= g.stack_hi || g.stack_hi - sp > MAX_STACK {
        return Vec::new();
    }
    let Ok(bytes) = mem.read_vec(sp, (g.stack_hi - sp) as usize) else {
        return Vec::new();
    };
    let word = |at: u64| -> Option<u64> {
        let off = at.checked_sub(sp)? as usize;
        Some(u64::from_le_bytes(
            bytes.get(off..off + 8)?.try_into().ok()?,
        ))
    };
    let mut out = Vec::new();
    for f in frames(prog, pc, sp, &bytes) {
        let Some(d) = prog
            .pcln
            .open_defer_info(&f.func)
            .and_then(|info| open_defers(prog.go_minor, info))
        else {
            continue;
        };
        let mut varp = f.fp - 8;
        if varp > f.sp {
            varp -= 8;
        }
        let Some(bits) = varp
            .checked_sub(d.bits_off)
            .and_then(|a| a.checked_sub(sp))
            .and_then(|o| bytes.get(o as usize).copied())
        else {
            continue;
        };
        for (i, off) in d.slot_off.iter().enumerate() {
            if bits >> i & 1 == 0 {
                continue;
            }
            let Some(fv) = varp.checked_sub(*off).and_then(word).filter(|&v| v != 0) else {
                continue;
            };
            let Ok(fnpc) = mem.read_u64(fv) else {
                continue;
            };
            let Some(direct) = releases(prog, fnpc, memo) else {
                continue;
            };
            let captured = [
                mem.read_u64(fv + 8).unwrap_or(0),
                mem.read_u64(fv + 16).unwrap_or(0),
            ];
            out.push(Unlock { captured, direct });
        }
    }
    out
}

/// Narrows the likely holders of each held lock to the goroutines with a pending deferred
/// unlock of it, when there are any (`holders_deferred`). `homes` gives the heap object each
/// lock lives in (a promoted `Unlock` of the object that embeds the lock counts).
pub(crate) fn refine_holders<M: Memory + ?Sized>(
    prog: &Program<'_>,
    mem: &M,
    graws: &[GRaw],
    objects: &mut [SyncObject],
    homes: &FxHashMap<u64, (u64, u64)>,
) {
    let locks = |o: &SyncObject| matches!(o.kind, ObjectKind::Mutex | ObjectKind::RWMutex);
    let candidates: FxHashSet<u64> = objects
        .iter()
        .filter(|o| locks(o) && !o.holders.is_empty())
        .flat_map(|o| o.holders.iter().chain(&o.referrers).copied())
        .collect();
    if candidates.is_empty() {
        return;
    }
    let mut memo = FxHashMap::default();
    let unlocks: Vec<(u64, Vec<Unlock>)> = graws
        .iter()
        .filter(|g| candidates.contains(&g.goid))
        .map(|g| (g.goid, pending_unlocks(prog, mem, g, &mut memo)))
        .filter(|(_, u)| !u.is_empty())
        .collect();
    for o in objects
        .iter_mut()
        .filter(|o| locks(o) && !o.holders.is_empty())
    {
        let base = homes.get(&o.addr).map(|&(b, _)| b);
        let mut certain: Vec<u64> = unlocks
            .iter()
            .filter(|(_, us)| {
                us.iter().any(|u| {
                    u.captured
                        .iter()
                        .any(|&c| c != 0 && (c == o.addr || (!u.direct && base == Some(c))))
                })
            })
            .map(|(id, _)| *id)
            .collect();
        if !certain.is_empty() {
            certain.sort_unstable();
            o.holders = certain;
            o.holders_deferred = true;
        }
    }
}
