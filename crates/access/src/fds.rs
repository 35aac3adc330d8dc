//! The open file descriptors of a process, described for humans: what each fd points at (a file,
//! a pipe, a TCP connection with both ends, an epoll set and what it watches...), read from
//! `/proc/PID/fd` (link targets), `/proc/PID/fdinfo` (flags, position, epoll targets) and
//! `/proc/PID/net/{tcp,tcp6,udp,udp6,unix}` (socket ends and states, matched by inode).
//!
//! Read-only and best-effort: a process that exits while being read gives an empty (or partial)
//! table, an fd closed mid-read is left out, and nothing here panics on odd input. The parsers
//! (`parse_*`) take text and do no I/O.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// What one file descriptor refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FdKind {
    /// A path in the file system (regular file, device, directory...). Deleted files keep the
    /// kernel's ` (deleted)` suffix.
    File {
        /// The link target of `/proc/PID/fd/N`.
        path: String,
    },
    /// One end of a pipe or FIFO created by `pipe(2)`.
    Pipe {
        /// The pipe's inode; both ends share it.
        inode: u64,
    },
    /// A socket. `proto` is empty when the socket was found in none of the tables read (netlink,
    /// packet, another network namespace...).
    Socket {
        /// The socket inode.
        inode: u64,
        /// `"tcp"`, `"tcp6"`, `"udp"`, `"udp6"`, `"unix"`, or `""` when unknown.
        proto: &'static str,
        /// Local end: `ip:port` (`[v6]:port`), or a unix socket's path (`@name` when abstract,
        /// empty when unnamed).
        local: String,
        /// Remote end (`ip:port`); empty for unix sockets and when not connected.
        peer: String,
        /// State: `ESTABLISHED`, `LISTEN`, `CLOSE_WAIT`... for inet sockets; `CONNECTED`,
        /// `UNCONNECTED`, `LISTEN`... for unix sockets.
        state: String,
    },
    /// An `eventfd(2)`.
    EventFd,
    /// An epoll instance.
    Epoll {
        /// The fds in its interest list (from `tfd:` lines of fdinfo), in the kernel's order.
        watched: Vec<i32>,
    },
    /// A `timerfd_create(2)` timer.
    TimerFd,
    /// A `signalfd(2)`.
    SignalFd,
    /// An inotify instance.
    Inotify,
    /// Another anonymous inode (`anon_inode:[pidfd]`, `[io_uring]`, `[userfaultfd]`...): its name
    /// without brackets.
    Anon(String),
    /// Anything else (`net:[...]`, `mnt:[...]`...): the raw link target.
    Other(String),
}

/// One open file descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdDesc {
    /// The descriptor number.
    pub fd: i32,
    /// What it refers to.
    pub kind: FdKind,
    /// The file status flags (`O_RDONLY`, `O_NONBLOCK`, `O_APPEND`...; fdinfo `flags:`), 0 when
    /// unknown. See [`FdDesc::flag_names`].
    pub flags: u32,
    /// The file position (fdinfo `pos:`).
    pub pos: u64,
}

/// `O_*` flag bits of x86-64 Linux, in the order they are shown.
const FLAG_NAMES: &[(u32, &str)] = &[
    (0o4000, "O_NONBLOCK"),
    (0o2000, "O_APPEND"),
    (0o20000, "O_ASYNC"),
    (0o40000, "O_DIRECT"),
    (0o4010000, "O_SYNC"),
    (0o10000, "O_DSYNC"),
    (0o1000000, "O_NOATIME"),
    (0o2000000, "O_CLOEXEC"),
    (0o10000000, "O_PATH"),
    (0o100000, "O_LARGEFILE"),
    (0o200000, "O_DIRECTORY"),
];

/// Renders open flags as `O_RDWR|O_NONBLOCK|O_CLOEXEC` (access mode first, unknown bits in hex).
pub fn open_flag_names(flags: u32) -> String {
    let mut out = String::from(match flags & 3 {
        0 => "O_RDONLY",
        1 => "O_WRONLY",
        2 => "O_RDWR",
        _ => "O_ACCMODE",
    });
    let mut rest = flags & !3;
    for &(bit, name) in FLAG_NAMES {
        if rest & bit == bit {
            out.push('|');
            out.push_str(name);
            rest &= !bit;
        }
    }
    // Creation flags are not kept by the kernel after open, except these.
    for &(bit, name) in &[
        (0o100u32, "O_CREAT"),
        (0o200, "O_EXCL"),
        (0o400, "O_NOCTTY"),
        (0o1000, "O_TRUNC"),
        (0o400000, "O_NOFOLLOW"),
        (0o20000000, "O_TMPFILE"),
    ] {
        if rest & bit == bit {
            out.push('|');
            out.push_str(name);
            rest &= !bit;
        }
    }
    if rest != 0 {
        out.push_str(&format!("|{rest:#o}"));
    }
    out
}

impl FdDesc {
    /// Whether `O_NONBLOCK` is set.
    pub fn nonblocking(&self) -> bool {
        self.flags & 0o4000 != 0
    }

    /// The flags as `O_RDWR|O_NONBLOCK|O_CLOEXEC`.
    pub fn flag_names(&self) -> String {
        open_flag_names(self.flags)
    }
}

impl fmt::Display for FdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FdKind::File { path } => f.write_str(path),
            FdKind::Pipe { inode } => write!(f, "pipe:[{inode}]"),
            FdKind::Socket {
                inode,
                proto,
                local,
                peer,
                state,
            } => {
                if proto.is_empty() {
                    return write!(f, "socket:[{inode}]");
                }
                f.write_str(proto)?;
                if local.is_empty() && peer.is_empty() {
                    write!(f, ":[{inode}]")?;
                } else {
                    write!(f, " {local}")?;
                    if !peer.is_empty() {
                        write!(f, " → {peer}")?;
                    }
                }
                if !state.is_empty() {
                    write!(f, " ({state})")?;
                }
                Ok(())
            }
            FdKind::EventFd => f.write_str("eventfd"),
            FdKind::Epoll { watched } => {
                f.write_str("epoll")?;
                if !watched.is_empty() {
                    f.write_str(" (watching ")?;
                    for (i, w) in watched.iter().enumerate() {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        write!(f, "{w}")?;
                    }
                    f.write_str(")")?;
                }
                Ok(())
            }
            FdKind::TimerFd => f.write_str("timerfd"),
            FdKind::SignalFd => f.write_str("signalfd"),
            FdKind::Inotify => f.write_str("inotify"),
            FdKind::Anon(s) => write!(f, "anon_inode:[{s}]"),
            FdKind::Other(s) => f.write_str(s),
        }
    }
}

impl fmt::Display for FdDesc {
    /// `fd 5 → /var/run/app.lock`, `fd 7 → tcp 127.0.0.1:44832 → 127.0.0.1:34749 (ESTABLISHED)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fd {} → {}", self.fd, self.kind)
    }
}

/// The open file descriptors of a process at one moment, by number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FdTable {
    fds: BTreeMap<i32, FdDesc>,
}

impl FdTable {
    /// A table of the given descriptors (tests, core files).
    pub fn from_descs(descs: impl IntoIterator<Item = FdDesc>) -> FdTable {
        FdTable {
            fds: descs.into_iter().map(|d| (d.fd, d)).collect(),
        }
    }

    /// The descriptor `fd`, if open.
    pub fn get(&self, fd: i32) -> Option<&FdDesc> {
        self.fds.get(&fd)
    }

    /// Every descriptor, in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = &FdDesc> {
        self.fds.values()
    }

    /// How many descriptors.
    pub fn len(&self) -> usize {
        self.fds.len()
    }

    /// Whether there are none (also when the process could not be read).
    pub fn is_empty(&self) -> bool {
        self.fds.is_empty()
    }

    /// `fd N → ...` for an fd argument: the description when known, else `fd N`.
    pub fn render(&self, fd: i64) -> String {
        match i32::try_from(fd).ok().and_then(|fd| self.get(fd)) {
            Some(d) => d.to_string(),
            None => format!("fd {fd}"),
        }
    }
}

/// Describes every open fd of process `pid`. Never fails: an unreadable or vanished process gives
/// an empty table, fds closed while reading are left out, unreadable fdinfo leaves flags and
/// position 0.
pub fn describe_fds(pid: i32) -> FdTable {
    let base = format!("/proc/{pid}");
    let Ok(dir) = std::fs::read_dir(format!("{base}/fd")) else {
        return FdTable::default();
    };
    let mut descs = Vec::new();
    for ent in dir.flatten() {
        let Some(fd) = ent.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(link) = std::fs::read_link(ent.path()) else {
            continue;
        };
        let link = link.to_string_lossy().into_owned();
        let mut kind = classify_link(&link);
        let info = std::fs::read_to_string(format!("{base}/fdinfo/{fd}")).unwrap_or_default();
        let fi = parse_fdinfo(&info);
        if let FdKind::Epoll { watched } = &mut kind {
            *watched = fi.epoll_targets;
        }
        descs.push(FdDesc {
            fd,
            kind,
            flags: fi.flags,
            pos: fi.pos,
        });
    }
    if descs
        .iter()
        .any(|d| matches!(d.kind, FdKind::Socket { .. }))
    {
        let socks = read_socket_tables(&base);
        for d in &mut descs {
            if let FdKind::Socket {
                inode,
                proto,
                local,
                peer,
                state,
            } = &mut d.kind
            {
                if let Some(s) = socks.get(inode) {
                    *proto = s.proto;
                    local.clone_from(&s.local);
                    peer.clone_from(&s.peer);
                    state.clone_from(&s.state);
                }
            }
        }
    }
    FdTable::from_descs(descs)
}

/// One socket from a `/proc/net` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SockEntry {
    /// `"tcp"`, `"tcp6"`, `"udp"`, `"udp6"` or `"unix"`.
    pub proto: &'static str,
    /// Local end (`ip:port`, or the unix path).
    pub local: String,
    /// Remote end, empty when none.
    pub peer: String,
    /// State name.
    pub state: String,
}

fn read_socket_tables(base: &str) -> HashMap<u64, SockEntry> {
    let mut map = HashMap::new();
    for proto in ["tcp", "tcp6", "udp", "udp6"] {
        if let Ok(text) = std::fs::read_to_string(format!("{base}/net/{proto}")) {
            map.extend(parse_inet_table(&text, proto));
        }
    }
    if let Ok(text) = std::fs::read_to_string(format!("{base}/net/unix")) {
        map.extend(parse_unix_table(&text));
    }
    map
}

/// Classifies a `/proc/PID/fd/N` link target.
pub fn classify_link(link: &str) -> FdKind {
    let bracketed = |prefix: &str| -> Option<&str> {
        link.strip_prefix(prefix)?
            .strip_prefix('[')?
            .strip_suffix(']')
    };
    if let Some(n) = bracketed("pipe:").and_then(|s| s.parse().ok()) {
        return FdKind::Pipe { inode: n };
    }
    if let Some(n) = bracketed("socket:").and_then(|s| s.parse().ok()) {
        return FdKind::Socket {
            inode: n,
            proto: "",
            local: String::new(),
            peer: String::new(),
            state: String::new(),
        };
    }
    if let Some(rest) = link.strip_prefix("anon_inode:") {
        let name = rest
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(rest);
        return match name {
            "eventfd" => FdKind::EventFd,
            "eventpoll" => FdKind::Epoll {
                watched: Vec::new(),
            },
            "timerfd" => FdKind::TimerFd,
            "signalfd" => FdKind::SignalFd,
            "inotify" => FdKind::Inotify,
            other => FdKind::Anon(other.to_string()),
        };
    }
    if link.starts_with('/') {
        return FdKind::File {
            path: link.to_string(),
        };
    }
    FdKind::Other(link.to_string())
}

/// What `/proc/PID/fdinfo/N` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FdInfo {
    /// `pos:` (decimal).
    pub pos: u64,
    /// `flags:` (octal).
    pub flags: u32,
    /// The `tfd:` of each epoll target line.
    pub epoll_targets: Vec<i32>,
}

/// Parses the text of `/proc/PID/fdinfo/N`.
pub fn parse_fdinfo(text: &str) -> FdInfo {
    let mut fi = FdInfo::default();
    for line in text.lines() {
        let Some((key, val)) = line.split_once(':') else {
            continue;
        };
        let val = val.trim();
        match key.trim() {
            "pos" => fi.pos = val.parse().unwrap_or(0),
            "flags" => fi.flags = u32::from_str_radix(val, 8).unwrap_or(0),
            "tfd" => {
                if let Some(n) = val.split_whitespace().next().and_then(|s| s.parse().ok()) {
                    fi.epoll_targets.push(n);
                }
            }
            _ => {}
        }
    }
    fi
}

/// The kernel's TCP state names (`include/net/tcp_states.h`); UDP uses the same numbers
/// (`ESTABLISHED` when connected, `CLOSE` otherwise).
fn tcp_state(n: u8) -> String {
    match n {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECV",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        7 => "CLOSE",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        12 => "NEW_SYN_RECV",
        _ => return format!("state {n:#x}"),
    }
    .to_string()
}

/// Parses an address of a `/proc/net/{tcp,udp}[6]` table, `HEXIP:HEXPORT`: IPv4 as one
/// little-endian (host-order) 32-bit word, IPv6 as four such words. v4-mapped IPv6 addresses come
/// back as IPv4.
pub fn parse_hex_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(ip, 16).ok()?.to_le_bytes(),
        )),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                let w = u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok()?;
                b[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
            }
            let v6 = Ipv6Addr::from(b);
            match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            }
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Parses `/proc/net/{tcp,tcp6,udp,udp6}` into entries by inode. Malformed lines are skipped.
pub fn parse_inet_table(text: &str, proto: &'static str) -> HashMap<u64, SockEntry> {
    let mut map = HashMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
        if f.len() < 10 {
            continue;
        }
        let (Some(local), Some(rem), Ok(st), Ok(inode)) = (
            parse_hex_addr(f[1]),
            parse_hex_addr(f[2]),
            u8::from_str_radix(f[3], 16),
            f[9].parse::<u64>(),
        ) else {
            continue;
        };
        if inode == 0 {
            continue;
        }
        let peer = if rem.port() == 0 && rem.ip().is_unspecified() {
            String::new()
        } else {
            rem.to_string()
        };
        map.insert(
            inode,
            SockEntry {
                proto,
                local: local.to_string(),
                peer,
                state: tcp_state(st),
            },
        );
    }
    map
}

/// Parses `/proc/net/unix` into entries by inode. Malformed lines are skipped.
pub fn parse_unix_table(text: &str) -> HashMap<u64, SockEntry> {
    let mut map = HashMap::new();
    for line in text.lines().skip(1) {
        // Num RefCount Protocol Flags Type St Inode [Path]
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 7 {
            continue;
        }
        let (Ok(flags), Ok(st), Ok(inode)) = (
            u32::from_str_radix(f[3], 16),
            u8::from_str_radix(f[5], 16),
            f[6].parse::<u64>(),
        ) else {
            continue;
        };
        let state = if flags & 0x10000 != 0 {
            "LISTEN"
        } else {
            match st {
                1 => "UNCONNECTED",
                2 => "CONNECTING",
                3 => "CONNECTED",
                4 => "DISCONNECTING",
                _ => "",
            }
        };
        map.insert(
            inode,
            SockEntry {
                proto: "unix",
                local: f.get(7..).map(|p| p.join(" ")).unwrap_or_default(),
                peer: String::new(),
                state: state.to_string(),
            },
        );
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_addresses() {
        assert_eq!(
            parse_hex_addr("0100007F:ADB0").unwrap().to_string(),
            "127.0.0.1:44464"
        );
        assert_eq!(
            parse_hex_addr("00000000:1F90").unwrap().to_string(),
            "0.0.0.0:8080"
        );
        // ::1
        assert_eq!(
            parse_hex_addr("00000000000000000000000001000000:0050")
                .unwrap()
                .to_string(),
            "[::1]:80"
        );
        // ::ffff:10.1.2.3 shown as v4
        assert_eq!(
            parse_hex_addr("0000000000000000FFFF00000302010A:01BB")
                .unwrap()
                .to_string(),
            "10.1.2.3:443"
        );
        // fe80::1
        assert_eq!(
            parse_hex_addr("000080FE000000000000000001000000:0016")
                .unwrap()
                .to_string(),
            "[fe80::1]:22"
        );
        assert_eq!(parse_hex_addr("0100007F"), None);
        assert_eq!(parse_hex_addr("zz00007F:0001"), None);
        assert_eq!(parse_hex_addr("0100007F:0001:2"), None);
        assert_eq!(parse_hex_addr("é100007F:0001"), None);
    }

    #[test]
    fn inet_and_unix_tables() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:ADB0 0100007F:87AD 01 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0 20 4 30 10 -1\n\
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1 0 100 0 0 10 0\n\
   garbage\n";
        let m = parse_inet_table(tcp, "tcp");
        assert_eq!(m.len(), 2);
        let e = &m[&4242];
        assert_eq!(
            (e.local.as_str(), e.peer.as_str(), e.state.as_str()),
            ("127.0.0.1:44464", "127.0.0.1:34733", "ESTABLISHED")
        );
        assert_eq!(m[&77].peer, "");
        assert_eq!(m[&77].state, "LISTEN");

        let unix = "Num       RefCount Protocol Flags    Type St Inode Path\n\
00000000f1ac1e93: 00000002 00000000 00010000 0001 01   179 /run/app.sock\n\
00000000759a6ee0: 00000003 00000000 00000000 0001 03   178\n\
0000000011111111: 00000003 00000000 00000000 0001 03   180 @abstract name\n";
        let u = parse_unix_table(unix);
        assert_eq!(u[&179].local, "/run/app.sock");
        assert_eq!(u[&179].state, "LISTEN");
        assert_eq!(u[&178].local, "");
        assert_eq!(u[&178].state, "CONNECTED");
        assert_eq!(u[&180].local, "@abstract name");
    }

    #[test]
    fn links_fdinfo_and_display() {
        assert_eq!(classify_link("pipe:[12345]"), FdKind::Pipe { inode: 12345 });
        assert_eq!(classify_link("anon_inode:[eventfd]"), FdKind::EventFd);
        assert_eq!(classify_link("anon_inode:inotify"), FdKind::Inotify);
        assert_eq!(
            classify_link("anon_inode:[pidfd]"),
            FdKind::Anon("pidfd".into())
        );
        assert_eq!(
            classify_link("net:[4026531840]"),
            FdKind::Other("net:[4026531840]".into())
        );
        assert_eq!(classify_link("pipe:[x]"), FdKind::Other("pipe:[x]".into()));

        let fi = parse_fdinfo(
            "pos:\t0\nflags:\t02004002\nmnt_id:\t15\nino:\t1057\n\
tfd:        3 events:       19 data:                3  pos:0 ino:41 sdev:d\n\
tfd:        5 events:       19 data:     7f0000000005  pos:0 ino:42 sdev:d\n\
tfd:        7 events:       19 data: 7  pos:0 ino:43 sdev:d\n",
        );
        assert_eq!(fi.flags, 0o2004002);
        assert_eq!(fi.epoll_targets, [3, 5, 7]);
        assert_eq!(open_flag_names(fi.flags), "O_RDWR|O_NONBLOCK|O_CLOEXEC");
        assert_eq!(
            parse_fdinfo("flags: nonsense\npos: -1\n"),
            FdInfo::default()
        );

        let t = FdTable::from_descs([
            FdDesc {
                fd: 4,
                kind: FdKind::Epoll {
                    watched: fi.epoll_targets.clone(),
                },
                flags: fi.flags,
                pos: 0,
            },
            FdDesc {
                fd: 5,
                kind: classify_link("/var/run/app.lock"),
                flags: 0o2,
                pos: 0,
            },
            FdDesc {
                fd: 7,
                kind: FdKind::Socket {
                    inode: 9,
                    proto: "tcp",
                    local: "127.0.0.1:44832".into(),
                    peer: "127.0.0.1:34749".into(),
                    state: "ESTABLISHED".into(),
                },
                flags: 0o2,
                pos: 0,
            },
            FdDesc {
                fd: 8,
                kind: classify_link("socket:[99]"),
                flags: 0o2,
                pos: 0,
            },
        ]);
        assert!(t.get(4).unwrap().nonblocking());
        assert_eq!(
            t.get(4).unwrap().to_string(),
            "fd 4 → epoll (watching 3, 5, 7)"
        );
        assert_eq!(t.get(5).unwrap().to_string(), "fd 5 → /var/run/app.lock");
        assert_eq!(
            t.get(7).unwrap().to_string(),
            "fd 7 → tcp 127.0.0.1:44832 → 127.0.0.1:34749 (ESTABLISHED)"
        );
        assert_eq!(t.get(8).unwrap().to_string(), "fd 8 → socket:[99]");
        assert_eq!(t.render(3), "fd 3");
        assert_eq!(t.render(-100), "fd -100");
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn own_process_and_vanished_pid() {
        let t = describe_fds(std::process::id() as i32);
        assert!(t.get(0).is_some() || t.get(1).is_some() || t.get(2).is_some());
        assert!(describe_fds(-5).is_empty());
        assert!(describe_fds(i32::MAX).is_empty());
    }
}
