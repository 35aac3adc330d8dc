//! What each blocked goroutine waits on, from the runtime's own records: the channels of its
//! sudogs (`g.waiting`, chained through `waitlink`: one per case of a `select`), the semaphore a
//! lock, `WaitGroup` or `semacquire` waiter sleeps on (`sudog.elem`, from `g.waiting` where the
//! runtime sets it, else from the semaphore table), and the `notifyList` of a `Cond` waiter
//! (`sudog.elem` where set; else the list that holds the waiter's sudog, found through the
//! pointers on the waiter's own stack and checked by walking the list).
//!
//! These are the objects Go's own leak detector tests (`isMaybeRunnable`): a goroutine can only
//! be woken by someone who can reach one of them.

use crate::{GRaw, Program};
use gostall_access::Memory;
use gostall_model::{ObjectKind, WaitOp, WaitReason};
use rustc_hash::FxHashMap;

/// Most sudogs followed on one goroutine's `waitlink` chain (a `select` has one per case).
const MAX_CASES: usize = 65_536;
/// Most sudogs walked on one `notifyList`.
const MAX_LIST: usize = 100_000;
/// Bytes of a `Cond` waiter's stack searched for the pointer to its `Cond`.
const COND_SEARCH: usize = 4096;

/// One object a goroutine waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WaitObj {
    /// The address the runtime parks on: the channel, the semaphore word, the `notifyList`.
    pub addr: u64,
    /// The `sync` value it belongs to (the mutex, WaitGroup, Cond), when the layout says;
    /// else `addr`.
    pub object: u64,
    pub kind: ObjectKind,
    pub op: WaitOp,
}

/// What a goroutine's wait depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Blocking {
    /// Not blocked on something only another goroutine can release: it may run (a root).
    MayRun,
    /// Blocked for good whatever happens: nil channel operations, `select {}`.
    Forever,
    /// Blocked on these objects; the sudogs whose `c`/`elem` the mark must not follow.
    On {
        objects: Vec<WaitObj>,
        sudogs: Vec<u64>,
    },
    /// Blocked on a primitive whose object could not be found: treated as able to run.
    Unknown,
}

/// Semaphore waiters: goroutine address → (sudog, semaphore address).
pub(crate) fn sema_waiters<M: Memory + ?Sized>(
    prog: &Program<'_>,
    mem: &M,
) -> FxHashMap<u64, (u64, u64)> {
    crate::sema::waiters_with_sudogs(prog, mem)
}

/// Works out what goroutine `g` (normalised wait reason `reason`) waits on.
/// `on_stack(name)` tells whether a function is on its stack; `stack` is its stack read from
/// `g.sched.sp` (may be empty); `plausible(addr)` filters candidate `Cond` pointers.
#[allow(clippy::too_many_arguments)]
pub(crate) fn blocking<M: Memory + ?Sized>(
    prog: &Program<'_>,
    mem: &M,
    g: &GRaw,
    reason: Option<WaitReason>,
    semas: &FxHashMap<u64, (u64, u64)>,
    on_stack: &dyn Fn(&str) -> bool,
    stack: &[u8],
    plausible: &dyn Fn(u64) -> bool,
) -> Blocking {
    use WaitReason as W;
    let Some(reason) = reason else {
        return Blocking::MayRun;
    };
    let su = &prog.layout.sudog;
    let sy = &prog.layout.sync;
    match reason {
        W::ChanReceiveNil | W::ChanSendNil | W::SelectNoCases => Blocking::Forever,
        W::ChanReceive | W::ChanSend | W::Select => {
            let op = match reason {
                W::ChanReceive => WaitOp::Receive,
                W::ChanSend => WaitOp::Send,
                _ => WaitOp::Select,
            };
            let mut objects = Vec::new();
            let mut sudogs = Vec::new();
            let mut s = g.waiting;
            let mut buf = vec![0u8; su.size as usize];
            while s != 0 && sudogs.len() < MAX_CASES {
                if mem.read(s, &mut buf).is_err() {
                    return Blocking::Unknown;
                }
                let c = crate::u64_at(&buf, su.c);
                sudogs.push(s);
                if c != 0 && !objects.iter().any(|o: &WaitObj| o.addr == c) {
                    objects.push(WaitObj {
                        addr: c,
                        object: c,
                        kind: ObjectKind::Channel,
                        op,
                    });
                }
                s = crate::u64_at(&buf, su.waitlink);
            }
            if objects.is_empty() {
                Blocking::Unknown
            } else {
                Blocking::On { objects, sudogs }
            }
        }
        W::MutexLock | W::RWMutexLock | W::RWMutexRLock | W::WaitGroupWait | W::Semacquire => {
            // Go 1.27 records the semaphore in g.waiting; every version keeps it in the table.
            let (sudog, addr) = match waiting_elem(prog, mem, g) {
                Some(x) => x,
                None => match semas.get(&g.addr) {
                    Some(&x) => x,
                    None => return Blocking::Unknown,
                },
            };
            let sub = |off: Option<u64>| off.map_or(addr, |o| addr.wrapping_sub(o));
            let (kind, op, object) = match reason {
                W::MutexLock if on_stack("sync.(*RWMutex).Lock") => (
                    ObjectKind::RWMutex,
                    WaitOp::Lock,
                    sub(sy.mutex_sema.zip(sy.rw_w).map(|(a, b)| a + b)),
                ),
                W::MutexLock => (ObjectKind::Mutex, WaitOp::Lock, sub(sy.mutex_sema)),
                W::RWMutexLock => (ObjectKind::RWMutex, WaitOp::Lock, sub(sy.rw_writer_sem)),
                W::RWMutexRLock => (ObjectKind::RWMutex, WaitOp::RLock, sub(sy.rw_reader_sem)),
                W::WaitGroupWait => (ObjectKind::WaitGroup, WaitOp::Wait, sub(sy.wg_sema)),
                _ => (ObjectKind::Semaphore, WaitOp::Acquire, addr),
            };
            Blocking::On {
                objects: vec![WaitObj {
                    addr,
                    object,
                    kind,
                    op,
                }],
                sudogs: vec![sudog],
            }
        }
        W::CondWait => {
            let found =
                waiting_elem(prog, mem, g).or_else(|| cond_list(prog, mem, g, stack, plausible));
            match found {
                Some((sudog, list)) => Blocking::On {
                    objects: vec![WaitObj {
                        addr: list,
                        object: sy.cond_notify.map_or(list, |o| list.wrapping_sub(o)),
                        kind: ObjectKind::Cond,
                        op: WaitOp::Wait,
                    }],
                    sudogs: vec![sudog],
                },
                None => Blocking::Unknown,
            }
        }
        _ => Blocking::MayRun,
    }
}

/// `g.waiting.elem` where the runtime sets it for semaphore and `Cond` waits (Go 1.27):
/// (sudog, elem).
fn waiting_elem<M: Memory + ?Sized>(prog: &Program<'_>, mem: &M, g: &GRaw) -> Option<(u64, u64)> {
    if g.waiting == 0 {
        return None;
    }
    let su = &prog.layout.sudog;
    let elem = mem.read_u64(g.waiting + su.elem).ok()?;
    let sg = mem.read_u64(g.waiting + su.g).ok()?;
    (elem != 0 && sg == g.addr).then_some((g.waiting, elem))
}

/// The `notifyList` holding `g`'s sudog: every word near the top of its stack is tried as a
/// pointer to a `notifyList` or to a `Cond`, and kept when walking that list meets a sudog of
/// `g`. Returns (sudog, list address).
fn cond_list<M: Memory + ?Sized>(
    prog: &Program<'_>,
    mem: &M,
    g: &GRaw,
    stack: &[u8],
    plausible: &dyn Fn(u64) -> bool,
) -> Option<(u64, u64)> {
    let sy = &prog.layout.sync;
    let su = &prog.layout.sudog;
    let head_off = sy.notify_head?;
    let mut tried = rustc_hash::FxHashSet::default();
    for w in stack[..stack.len().min(COND_SEARCH)].chunks_exact(8) {
        let v = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        if v == 0 || v % 4 != 0 || !plausible(v) {
            continue;
        }
        for list in [Some(v), sy.cond_notify.map(|o| v.wrapping_add(o))]
            .into_iter()
            .flatten()
        {
            if !tried.insert(list) {
                continue;
            }
            let Ok(mut s) = mem.read_u64(list.wrapping_add(head_off)) else {
                continue;
            };
            // The list's `tail` follows `head`; a real list ends at it (a word that only looks
            // like a list — its `head` being another list's `tail` — does not).
            let Ok(tail) = mem.read_u64(list.wrapping_add(head_off + 8)) else {
                continue;
            };
            let mut found = None;
            let mut last = 0;
            let mut n = 0;
            while s != 0 && n < MAX_LIST {
                n += 1;
                last = s;
                match mem.read_u64(s + su.g) {
                    Ok(sg) if sg == g.addr => found = Some(s),
                    Ok(_) => {}
                    Err(_) => break,
                }
                match mem.read_u64(s + su.next) {
                    Ok(next) => s = next,
                    Err(_) => break,
                }
            }
            if let Some(sudog) = found.filter(|_| s == 0 && last == tail) {
                return Some((sudog, list));
            }
        }
    }
    None
}
