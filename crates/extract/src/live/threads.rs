//! Threads outside Go and what goroutines wait on outside Go: native stacks of threads in C
//! (callbacks from C followed to their C caller), system calls decoded with their descriptors
//! and symbols, the owners of contended pthread mutexes, and each network wait's descriptor.

use super::Read;
use crate::native::{self, NativeUnwinder, StartRegs};
use crate::{Extra, Program, Target};
use gostall_access::{LiveProcess, Memory};
use gostall_model::Snapshot;
use std::time::Instant;

/// Unwinds the native stacks of threads in native code and of callback threads from C.
pub(crate) fn native_stacks<P: Target + ?Sized>(
    r: &Read<'_, '_, P>,
    nu: Option<&mut NativeUnwinder<'_, P>>,
    snap: &mut Snapshot,
    extra: &Extra,
    starts: &super::Starts,
    notes: &mut Vec<String>,
) {
    let Some(nu) = nu else {
        return;
    };
    let t = Instant::now();
    let in_c: rustc_hash::FxHashSet<i32> = extra
        .ms
        .iter()
        .filter(|m| m.isextra && m.extra_in_c)
        .map(|m| m.procid as i32)
        .collect();
    let n = native::unwind_threads(r.proc, nu, &mut snap.threads, starts, &|tid| {
        in_c.contains(&tid)
    });
    callback_callers(r.prog, r.proc, nu, extra, snap);
    notes.append(&mut nu.notes);
    if crate::timing() {
        eprintln!(
            "native: {n} thread(s) unwound in {:?}; objects loaded: {}",
            t.elapsed(),
            nu.loaded_objects().join(", ")
        );
    }
}

/// System calls decoded (descriptors resolved, addresses named by the objects' data symbols),
/// pthread mutex owners, and the descriptor, deadline and peer of every network wait.
pub(super) fn describe_waits(
    r: &Read<'_, '_>,
    nu: Option<&mut NativeUnwinder<'_, LiveProcess>>,
    snap: &mut Snapshot,
    extra: &Extra,
) {
    let fds = gostall_access::describe_fds(r.pid);
    let nu = std::cell::RefCell::new(nu);
    let symbol = |a: u64| nu.borrow_mut().as_mut().and_then(|n| n.data_symbol(a));
    for t in &mut snap.threads {
        if let Some(sc) = &mut t.syscall {
            sc.text =
                Some(gostall_access::syscalls::decode_with(sc.nr, &sc.args, &fds, &symbol).text);
        }
    }
    futex_owners(r.proc, snap);
    let waits = crate::netpoll::waits(r.prog, r.proc, r.pid, super::monotonic_ns(), &fds);
    if !waits.is_empty() {
        let by_id: rustc_hash::FxHashMap<u64, usize> = snap
            .goroutines
            .iter()
            .enumerate()
            .map(|(i, g)| (g.id, i))
            .collect();
        for (gaddr, w) in waits {
            if let Some(&i) = extra.g_addr_to_id.get(&gaddr).and_then(|id| by_id.get(id)) {
                snap.goroutines[i].net = Some(Box::new(w));
            }
        }
    }
}

/// C frames of threads C created that are inside a callback into Go: their registers are in Go
/// code, so native unwinding starts where `runtime.cgocallback` left the C caller
/// (`goruntime::cgo_callback_c_caller`), found through the extra M's `g0.sched.sp`.
fn callback_callers<P: Target + ?Sized>(
    prog: &Program<'_>,
    proc: &P,
    nu: &mut NativeUnwinder<'_, P>,
    extra: &Extra,
    snap: &mut Snapshot,
) {
    let pcln = &prog.pcln;
    let bias = prog.bias;
    let Some(cb) = pcln.func_by_name("runtime.cgocallback") else {
        return;
    };
    let Some(frame) = pcln.max_sp_delta(&cb).and_then(|d| u64::try_from(d).ok()) else {
        return;
    };
    let sp_delta = |pc: u64| {
        let f = pcln.find_func(pc.wrapping_sub(bias))?;
        u64::try_from(pcln.sp_delta(&f, pc.wrapping_sub(bias))?).ok()
    };
    let is_go = |pc: u64| pcln.find_func(pc.wrapping_sub(bias)).is_some();
    let read = |a: u64| proc.read_u64(a).ok();
    for m in extra
        .ms
        .iter()
        .filter(|m| m.isextra && !m.extra_in_c && (m.curg != 0 || m.lockedg != 0))
    {
        let Some(t) = snap
            .threads
            .iter_mut()
            .find(|t| t.tid as u64 == m.procid && t.native_stack.is_empty())
        else {
            continue;
        };
        let Some(g0) = read(m.addr.wrapping_add(prog.layout.m.g0)) else {
            continue;
        };
        let Some(sched_sp) = read(g0.wrapping_add(prog.layout.g.sched_sp)) else {
            continue;
        };
        let Some((pc, sp)) =
            gostall_goruntime::cgo_callback_c_caller(sched_sp, frame, sp_delta, is_go, read)
        else {
            continue;
        };
        let (frames, note) = nu.unwind(proc, StartRegs { pc, sp, bp: None }, None);
        if !frames.is_empty() {
            t.native_stack = frames;
            t.native_note = note;
        }
    }
}

/// For threads waiting on a futex, the thread that owns the lock behind it, when the futex word
/// is a glibc `pthread_mutex_t` (`__lock`, `__count`, `__owner`: the owner's tid 8 bytes in) or a
/// priority-inheritance futex (owner tid in the word's low 30 bits). Only tids of this process
/// count; whether the word really is a mutex is for the rules to judge from the native stack.
pub(crate) fn futex_owners<M: Memory + ?Sized>(mem: &M, snap: &mut Snapshot) {
    const FUTEX: i64 = 202;
    let tids: rustc_hash::FxHashSet<i32> = snap.threads.iter().map(|t| t.tid).collect();
    for t in &mut snap.threads {
        let Some(sc) = t.syscall.as_ref().filter(|s| s.nr == FUTEX) else {
            continue;
        };
        let (addr, op) = (sc.args[0], sc.args[1] & 0x7f);
        let owner = match op {
            // FUTEX_WAIT, FUTEX_WAIT_BITSET
            0 | 9 => mem.read_u32(addr.wrapping_add(8)).ok().map(|o| o as i32),
            // FUTEX_LOCK_PI, FUTEX_LOCK_PI2
            6 | 13 => mem.read_u32(addr).ok().map(|w| (w & 0x3fff_ffff) as i32),
            _ => None,
        };
        t.futex_owner = owner.filter(|o| *o != t.tid && tids.contains(o));
    }
}
