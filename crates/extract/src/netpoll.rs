//! Which descriptor each goroutine in `IO wait` waits on, with its deadline and peer.
//!
//! The netpoller registers every descriptor with epoll, storing a tagged `*pollDesc` as the event
//! data; the kernel shows that data in `/proc/PID/fdinfo/<epoll fd>`. Each pollDesc names the
//! goroutine parked for reading (`rg`) or writing (`wg`) and the deadlines (`rd`, `wd`: a
//! `nanotime` instant, 0 for none, negative once expired). Sockets are joined to their addresses
//! through `/proc/PID/net/{tcp,tcp6,udp,udp6,unix}` by inode. Everything is read, nothing written.

use crate::Program;
use gostall_goruntime::layout::untag_poll_desc;
use gostall_model::NetWait;
use gostall_target::{Memory, ReadReq};
use rustc_hash::{FxHashMap, FxHashSet};
use std::fs;

/// Goroutine address → the descriptor it waits on.
pub(crate) fn waits<M: Memory + ?Sized>(
    prog: &Program<'_>,
    mem: &M,
    pid: i32,
    now_ns: u64,
) -> FxHashMap<u64, NetWait> {
    let mut out = FxHashMap::default();
    let Some(l) = prog.layout.poll_desc else {
        return out;
    };
    let fd_dir = format!("/proc/{pid}/fd");
    let Ok(entries) = fs::read_dir(&fd_dir) else {
        return out;
    };
    let mut links: FxHashMap<i32, String> = FxHashMap::default();
    for e in entries.flatten() {
        let Some(fd) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(target) = fs::read_link(e.path()) {
            links.insert(fd, target.display().to_string());
        }
    }
    // Every pollDesc registered with an epoll instance of the process.
    let mut pds: Vec<u64> = Vec::new();
    for (&fd, link) in &links {
        if link != "anon_inode:[eventpoll]" {
            continue;
        }
        let Ok(info) = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")) else {
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
    let len = l.size as usize;
    let reqs: Vec<ReadReq> = pds.iter().map(|&addr| ReadReq { addr, len }).collect();
    let mut buf = vec![0u8; len * reqs.len()];
    let mut ok = Vec::new();
    mem.read_batch(&reqs, &mut buf, &mut ok);
    let sockets = Sockets::read(pid);
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
            let link = links.get(&fd).cloned().unwrap_or_default();
            let mut w = NetWait {
                fd,
                op: op.to_string(),
                deadline_in_ns,
                kind: describe(&link),
                ..NetWait::default()
            };
            if let Some(ino) = link
                .strip_prefix("socket:[")
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|n| n.parse::<u64>().ok())
            {
                if let Some(s) = sockets.by_inode.get(&ino) {
                    w.kind = s.kind.to_string();
                    w.local = s.local.clone();
                    w.peer = s.peer.clone();
                    w.state = s.state.clone();
                    w.accepted = s.local_port.is_some_and(|p| sockets.listening.contains(&p))
                        && s.state.as_deref() != Some("LISTEN");
                }
            }
            out.insert(gaddr, w);
        }
    }
    out
}

fn describe(link: &str) -> String {
    if link.starts_with("pipe:") {
        "pipe".into()
    } else if link.starts_with("socket:") {
        "socket".into()
    } else if let Some(k) = link.strip_prefix("anon_inode:") {
        k.trim_matches(|c| c == '[' || c == ']').to_string()
    } else {
        link.to_string()
    }
}

struct Socket {
    kind: &'static str,
    local: Option<String>,
    local_port: Option<u16>,
    peer: Option<String>,
    state: Option<String>,
}

#[derive(Default)]
struct Sockets {
    by_inode: FxHashMap<u64, Socket>,
    /// Ports in LISTEN state.
    listening: FxHashSet<u16>,
}

const TCP_STATES: [&str; 12] = [
    "",
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "CLOSING",
];

impl Sockets {
    fn read(pid: i32) -> Sockets {
        let mut s = Sockets::default();
        for (file, kind) in [
            ("tcp", "tcp"),
            ("tcp6", "tcp6"),
            ("udp", "udp"),
            ("udp6", "udp6"),
        ] {
            let Ok(text) = fs::read_to_string(format!("/proc/{pid}/net/{file}")) else {
                continue;
            };
            for line in text.lines().skip(1) {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() < 10 {
                    continue;
                }
                let Ok(ino) = f[9].parse::<u64>() else {
                    continue;
                };
                let local = parse_addr(f[1]);
                let peer = parse_addr(f[2]).filter(|(_, p)| *p != 0);
                let state = u8::from_str_radix(f[3], 16)
                    .ok()
                    .and_then(|n| TCP_STATES.get(n as usize))
                    .filter(|_| kind.starts_with("tcp"))
                    .map(|s| s.to_string());
                if state.as_deref() == Some("LISTEN") {
                    if let Some((_, port)) = &local {
                        s.listening.insert(*port);
                    }
                }
                s.by_inode.insert(
                    ino,
                    Socket {
                        kind,
                        local_port: local.as_ref().map(|l| l.1),
                        local: local.map(|(a, p)| format!("{a}:{p}")),
                        peer: peer.map(|(a, p)| format!("{a}:{p}")),
                        state,
                    },
                );
            }
        }
        if let Ok(text) = fs::read_to_string(format!("/proc/{pid}/net/unix")) {
            for line in text.lines().skip(1) {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() < 7 {
                    continue;
                }
                let Ok(ino) = f[6].parse::<u64>() else {
                    continue;
                };
                s.by_inode.insert(
                    ino,
                    Socket {
                        kind: "unix",
                        local: f.get(7).map(|p| p.to_string()),
                        local_port: None,
                        peer: None,
                        state: None,
                    },
                );
            }
        }
        s
    }
}

/// `0100007F:1F90` → (`127.0.0.1`, 8080); IPv6 in the kernel's four little-endian words.
fn parse_addr(s: &str) -> Option<(String, u16)> {
    let (a, p) = s.split_once(':')?;
    let port = u16::from_str_radix(p, 16).ok()?;
    let addr = match a.len() {
        8 => {
            let v = u32::from_str_radix(a, 16).ok()?;
            std::net::Ipv4Addr::from(v.swap_bytes()).to_string()
        }
        32 => {
            let mut bytes = [0u8; 16];
            for w in 0..4 {
                let v = u32::from_str_radix(&a[w * 8..w * 8 + 8], 16).ok()?;
                bytes[w * 4..w * 4 + 4].copy_from_slice(&v.to_le_bytes());
            }
            let ip = std::net::Ipv6Addr::from(bytes);
            match ip.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => format!("[{ip}]"),
            }
        }
        _ => return None,
    };
    Some((addr, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_addresses() {
        assert_eq!(
            parse_addr("0100007F:1F90"),
            Some(("127.0.0.1".into(), 8080))
        );
        assert_eq!(
            parse_addr("0000000000000000FFFF00000100007F:0050"),
            Some(("127.0.0.1".into(), 80))
        );
        assert_eq!(
            parse_addr("00000000000000000000000001000000:0016"),
            Some(("[::1]".into(), 22))
        );
        assert_eq!(parse_addr("zz"), None);
    }

    #[test]
    fn tagged_pointers() {
        // Go ≤ 1.24: ptr << 16 | 19-bit tag.
        let pd: u64 = 0x7f5d_8746_ce08;
        assert_eq!(untag_poll_desc((pd << 16) | 0x1234, 21), pd);
        // Go ≥ 1.25: ptr << 15 | 24-bit tag, 512-byte aligned; a value read from a real process.
        assert_eq!(untag_poll_desc(0x3fa9_2e36_8a00_0001, 27), 0x7f52_5c6d_1400);
    }
}
