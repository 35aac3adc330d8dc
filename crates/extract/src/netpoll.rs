//! Which descriptor each goroutine in `IO wait` waits on, with its deadline and peer.
//!
//! The netpoller registers every descriptor with epoll, storing a tagged `*pollDesc` as the event
//! data; the kernel shows that data in `/proc/PID/fdinfo/<epoll fd>`. Each pollDesc names the
//! goroutine parked for reading (`rg`) or writing (`wg`) and the deadlines (`rd`, `wd`: a
//! `nanotime` instant, 0 for none, negative once expired). Descriptors are described by
//! `gostall_access::fds` (sockets with their addresses and state). Everything is read, nothing
//! written.

use crate::Program;
use gostall_access::{FdKind, FdTable, Memory, ReadReq};
use gostall_goruntime::layout::untag_poll_desc;
use gostall_model::NetWait;
use rustc_hash::{FxHashMap, FxHashSet};
use std::fs;

/// Goroutine address → the descriptor it waits on. `fds` is the process's descriptor table.
pub(crate) fn waits<M: Memory + ?Sized>(
    prog: &Program<'_>,
    mem: &M,
    pid: i32,
    now_ns: u64,
    fds: &FdTable,
) -> FxHashMap<u64, NetWait> {
    let mut out = FxHashMap::default();
    let Some(l) = prog.layout.poll_desc else {
        return out;
    };
    // Every pollDesc registered with an epoll instance of the process: the event data in the
    // epoll fd's fdinfo `tfd:` lines.
    let mut pds: Vec<u64> = Vec::new();
    for d in fds
        .iter()
        .filter(|d| matches!(d.kind, FdKind::Epoll { .. }))
    {
        let Ok(info) = fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", d.fd)) else {
            continue;
        };
        for line in info.lines().filter(|l| l.starts_with("tfd:")) {
            let data = line
                .split_whitespace()
                .skip_while(|w| *w != "data:")
                .nth(1)
                .and_then(|h| u64::from_str_radix(h, 16).ok());
            if let Some(d) = data {
                pds.push(untag_poll_desc(d, prog.go_minor));
            }
        }
    }
    if pds.is_empty() {
        return out;
    }
    // Ports this process listens on: a connection on one of them was accepted here.
    let listening: FxHashSet<&str> = fds
        .iter()
        .filter_map(|d| match &d.kind {
            FdKind::Socket { local, state, .. } if state == "LISTEN" => local.rsplit(':').next(),
            _ => None,
        })
        .collect();
    let len = l.size as usize;
    let reqs: Vec<ReadReq> = pds.iter().map(|&addr| ReadReq { addr, len }).collect();
    let mut buf = vec![0u8; len * reqs.len()];
    let mut ok = Vec::new();
    mem.read_batch(&reqs, &mut buf, &mut ok);
    for (k, _) in pds.iter().enumerate() {
        if !ok.get(k).copied().unwrap_or(false) {
            continue;
        }
        let b = &buf[k * len..(k + 1) * len];
        let fd = crate::u64_at(b, l.fd) as i32;
        for (op, gaddr, deadline) in [
            (
                "read",
                crate::u64_at(b, l.rg),
                crate::u64_at(b, l.rd) as i64,
            ),
            (
                "write",
                crate::u64_at(b, l.wg),
                crate::u64_at(b, l.wd) as i64,
            ),
        ] {
            // pdNil (0), pdReady (1) and pdWait (2) are not goroutines.
            if gaddr <= 2 {
                continue;
            }
            let deadline_in_ns = match deadline {
                0 => None,
                d if d < 0 => Some(-1),
                d => Some(d - now_ns as i64),
            };
            let mut w = NetWait {
                fd,
                op: op.to_string(),
                deadline_in_ns,
                ..NetWait::default()
            };
            match fds.get(fd).map(|d| &d.kind) {
                Some(FdKind::Socket {
                    proto,
                    local,
                    peer,
                    state,
                    ..
                }) => {
                    w.kind = if proto.is_empty() { "socket" } else { proto }.to_string();
                    w.local = (!local.is_empty()).then(|| local.clone());
                    w.peer = (!peer.is_empty()).then(|| peer.clone());
                    w.state = (!state.is_empty()).then(|| state.clone());
                    w.accepted = state != "LISTEN"
                        && local
                            .rsplit(':')
                            .next()
                            .is_some_and(|p| listening.contains(p));
                }
                Some(FdKind::Pipe { .. }) => w.kind = "pipe".into(),
                Some(FdKind::File { path }) => w.kind = path.clone(),
                Some(other) => w.kind = format!("{other:?}").to_lowercase(),
                None => w.kind = "fd".into(),
            }
            out.insert(gaddr, w);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_pointers() {
        // Go ≤ 1.24: ptr << 16 | 19-bit tag.
        let pd: u64 = 0x7f5d_8746_ce08;
        assert_eq!(untag_poll_desc((pd << 16) | 0x1234, 21), pd);
        // Go ≥ 1.25: ptr << 15 | 24-bit tag, 512-byte aligned; a value read from a real process.
        assert_eq!(untag_poll_desc(0x3fa9_2e36_8a00_0001, 27), 0x7f52_5c6d_1400);
    }
}
