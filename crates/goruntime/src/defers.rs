//! Open-coded defers: which `defer` statements of a frame have run and are still pending, and
//! what each will call — read from a frame as the runtime's panic path reads it
//! (`runtime/panic.go`). A goroutine with a pending `defer mu.Unlock()` holds `mu`: this is how
//! gostall knows a lock's holder rather than guessing it from who points at the lock.
//!
//! `FUNCDATA_OpenCodedDeferInfo` holds varints. Go 1.22+: `deferBitsOffset`, `slotsOffset` —
//! the byte at `varp - deferBitsOffset` has bit `i` set while defer `i` is pending, and its
//! function value is the word at `varp - slotsOffset + 8*i`. Go 1.21: `deferBitsOffset`,
//! `nDefers`, then one `closureOffset` per defer from the last to the first — defer `i`'s
//! function value is the word at `varp - closureOffset_i`.

/// Where a frame keeps its open-coded defers, as offsets below its `varp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenDefers {
    /// The defer-bits byte is at `varp - bits_off`.
    pub bits_off: u64,
    /// Defer `i`'s function value (a `*funcval`) is the word at `varp - slot_off[i]`.
    pub slot_off: Vec<u64>,
}

/// Most open-coded defers in one function (the compiler's limit: one bit each in a byte).
const MAX_OPEN_DEFERS: u64 = 8;

/// Reads the open-coded defer information of a function built by Go `1.minor`.
pub fn open_defers(minor: u32, info: &[u8]) -> Option<OpenDefers> {
    let mut p = info;
    let bits_off = uvarint(&mut p)?;
    if minor >= 22 {
        let slots = uvarint(&mut p)?;
        return Some(OpenDefers {
            bits_off,
            // Slots lie below varp: as many as fit (defer bits past them are never set).
            slot_off: (0..MAX_OPEN_DEFERS)
                .map_while(|i| slots.checked_sub(8 * i).filter(|&o| o > 0))
                .collect(),
        });
    }
    let n = uvarint(&mut p)?;
    if n == 0 || n > MAX_OPEN_DEFERS {
        return None;
    }
    // Listed from the last defer to the first.
    let mut slot_off = vec![0u64; n as usize];
    for i in (0..n as usize).rev() {
        slot_off[i] = uvarint(&mut p)?;
    }
    Some(OpenDefers { bits_off, slot_off })
}

/// Whether a deferred call releases a lock, from the names of the function it calls and the
/// functions inlined into it or called from it (`defer mu.Unlock()` compiles to a method value
/// `sync.(*Mutex).Unlock-fm`, a wrapper closure `f.deferwrap1` (Go 1.22+) or `f.func1`
/// (Go 1.21) with `Unlock` inlined): `Some(true)` when it is `sync`'s own `Unlock`/`RUnlock`
/// (the captured receiver is the lock itself), `Some(false)` for another type's `Unlock`
/// (an embedded lock's promoted method: the receiver contains the lock), `None` when no unlock
/// is called.
pub fn releases_lock<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<bool> {
    let mut found = None;
    for n in names {
        let m = n.strip_suffix("-fm").unwrap_or(n);
        if !(m.ends_with(".Unlock") || m.ends_with(".RUnlock")) {
            continue;
        }
        let own = [
            "sync.(*Mutex).",
            "sync.(*RWMutex).",
            "internal/sync.(*Mutex).",
        ]
        .iter()
        .any(|p| m.starts_with(p));
        found = Some(found.unwrap_or(false) || own);
    }
    found
}

fn uvarint(p: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for (i, &b) in p.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            *p = &p[i + 1..];
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_layouts() {
        // 1.22+: bits at varp-0x11, slots at varp-0x10: slot i at varp-0x10+8i.
        let d = open_defers(27, &[0x11, 0x10]).unwrap();
        assert_eq!(d.bits_off, 0x11);
        assert_eq!(&d.slot_off[..2], &[0x10, 0x08]);
        // 1.21: two defers, listed last first.
        let d = open_defers(21, &[0x19, 2, 0x10, 0x18]).unwrap();
        assert_eq!(d.slot_off, vec![0x18, 0x10]);
        assert!(open_defers(21, &[0x19, 9]).is_none());
        assert!(open_defers(21, &[0x80]).is_none());
    }

    #[test]
    fn unlocks() {
        assert_eq!(releases_lock(["sync.(*Mutex).Unlock-fm"]), Some(true));
        assert_eq!(
            releases_lock(["main.f.deferwrap1", "sync.(*RWMutex).RUnlock"]),
            Some(true)
        );
        assert_eq!(releases_lock(["main.(*Cache).Unlock-fm"]), Some(false));
        assert_eq!(releases_lock(["main.main.func1", "fmt.Println"]), None);
    }
}
