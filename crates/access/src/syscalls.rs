//! x86-64 Linux system calls for humans: the name of a system call number and a one-line
//! rendering of a call in progress (from [`crate::SyscallInfo`]) in the style of strace, with file
//! descriptors resolved through an [`FdTable`]:
//! `read(fd 3 → pipe:[123], 0x7ffd5000, 4096)`, `flock(fd 5 → /var/run/app.lock, LOCK_EX)`,
//! `futex(0x7f1200, FUTEX_WAIT_PRIVATE, 0, NULL)`.
//!
//! Pure functions: no memory of the target is read, so pointer arguments (timespecs, buffers,
//! sigsets) are shown as addresses. Nothing here panics, whatever the numbers.

use std::borrow::Cow;
use std::fmt;

use crate::fds::{open_flag_names, FdTable};

/// A decoded system call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The system call's name (`read`, `futex`...), or `syscall_N` when unknown.
    pub name: Cow<'static, str>,
    /// The whole call: `name(arg, arg, ...)`.
    pub text: String,
}

impl fmt::Display for Decoded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The name of x86-64 system call `nr`, `None` when unknown (or negative).
pub fn name(nr: i64) -> Option<&'static str> {
    let n = usize::try_from(nr).ok()?;
    if n < NAMES_LOW.len() {
        Some(NAMES_LOW[n])
    } else {
        NAMES_HIGH.get(n.checked_sub(424)?).copied()
    }
}

/// Argument renderings, one letter per argument (see [`render_arg`]).
fn spec(nr: i64) -> Option<&'static str> {
    Some(match nr {
        0 | 1 => "fpu",                     // read, write
        2 => "pOo",                         // open
        3 => "f",                           // close
        4 | 6 => "pp",                      // stat, lstat
        5 => "fp",                          // fstat
        7 => "pui",                         // poll
        8 => "flW",                         // lseek
        9 => "pumMfx",                      // mmap
        10 => "pum",                        // mprotect
        11 => "pu",                         // munmap
        12 => "p",                          // brk
        13 => "sppu",                       // rt_sigaction
        14 => "ippu",                       // rt_sigprocmask
        17 | 18 => "fpul",                  // pread64, pwrite64
        19 | 20 => "fpu",                   // readv, writev
        21 => "po",                         // access
        22 => "p",                          // pipe
        23 => "ipppp",                      // select
        24 | 34 | 39 | 57 | 58 | 186 => "", // sched_yield, pause, getpid, fork, vfork, gettid
        25 => "puuxp",                      // mremap
        26 => "pux",                        // msync
        28 => "pui",                        // madvise
        32 => "f",                          // dup
        33 => "fi",                         // dup2
        35 => "pp",                         // nanosleep
        37 => "u",                          // alarm
        40 => "ffpu",                       // sendfile
        41 => "iii",                        // socket
        42 | 49 => "fpu",                   // connect, bind
        43 => "fpp",                        // accept
        44 => "fpuxpu",                     // sendto
        45 => "fpuxpp",                     // recvfrom
        46 | 47 => "fpx",                   // sendmsg, recvmsg
        48 | 50 => "fi",                    // shutdown, listen
        51 | 52 => "fpp",                   // getsockname, getpeername
        53 => "iiip",                       // socketpair
        54 => "fiipu",                      // setsockopt
        55 => "fiipp",                      // getsockopt
        56 => "Cpppp",                      // clone
        59 => "ppp",                        // execve
        60 | 231 => "i",                    // exit, exit_group
        61 => "ipwp",                       // wait4
        62 => "is",                         // kill
        73 => "fk",                         // flock
        74 | 75 => "f",                     // fsync, fdatasync
        76 => "pl",                         // truncate
        77 => "fl",                         // ftruncate
        78 | 217 => "fpu",                  // getdents, getdents64
        79 => "pu",                         // getcwd
        80 | 84 | 87 => "p",                // chdir, rmdir, unlink
        81 => "f",                          // fchdir
        82 => "pp",                         // rename
        83 => "po",                         // mkdir
        89 => "ppu",                        // readlink
        96 => "pp",                         // gettimeofday
        128 => "pppu",                      // rt_sigtimedwait
        130 => "pu",                        // rt_sigsuspend
        131 => "pp",                        // sigaltstack
        157 => "ixxxx",                     // prctl
        158 => "xp",                        // arch_prctl
        200 => "is",                        // tkill
        206 => "up",                        // io_setup
        207 => "x",                         // io_destroy
        208 => "xllpp",                     // io_getevents
        209 => "xlp",                       // io_submit
        213 => "i",                         // epoll_create
        218 => "p",                         // set_tid_address
        228 | 229 => "Kp",                  // clock_gettime, clock_getres
        230 => "KTpp",                      // clock_nanosleep
        232 => "fpii",                      // epoll_wait
        233 => "fefp",                      // epoll_ctl
        234 => "iis",                       // tgkill
        247 => "iipwp",                     // waitid
        257 => "dpOo",                      // openat
        258 => "dpo",                       // mkdirat
        262 => "dppx",                      // newfstatat
        263 => "dpx",                       // unlinkat
        267 => "dppu",                      // readlinkat
        270 => "ipppp",                     // pselect6
        271 => "pupp",                      // ppoll
        273 => "pu",                        // set_robust_list
        281 => "fpiipu",                    // epoll_pwait
        283 => "ix",                        // timerfd_create
        284 => "u",                         // eventfd
        288 => "fppS",                      // accept4
        290 => "uS",                        // eventfd2
        291 => "S",                         // epoll_create1
        292 => "ffO",                       // dup3
        293 => "pO",                        // pipe2
        295 | 296 => "fpul",                // preadv, pwritev
        299 => "fpuxp",                     // recvmmsg
        302 => "iipp",                      // prlimit64
        307 => "fpux",                      // sendmmsg
        318 => "pur",                       // getrandom
        319 => "px",                        // memfd_create
        332 => "dpxxp",                     // statx
        334 => "puxx",                      // rseq
        424 => "ifpx",                      // pidfd_send_signal
        425 => "up",                        // io_uring_setup
        426 => "fuuxpu",                    // io_uring_enter
        427 => "fupu",                      // io_uring_register
        434 => "ix",                        // pidfd_open
        435 => "pu",                        // clone3
        441 => "fpippu",                    // epoll_pwait2
        _ => return None,
    })
}

/// Renders system call `nr` with its six argument registers; fd arguments are described through
/// `fds` (pass an empty table to show bare numbers). Unknown numbers give `syscall_N(a0, ..., a5)`.
pub fn decode(nr: i64, args: &[u64; 6], fds: &FdTable) -> Decoded {
    decode_with(nr, args, fds, &|_| None)
}

/// Like [`decode`], and pointer arguments that point into a mapped object's static data are
/// followed by the symbol `symbol` names for them: `futex(0x55d0c0a01040 <lock_a>, …)`. `symbol`
/// returns the name (with `+offset` when not at its start) or `None`; the decoder does not know
/// how symbols are found.
pub fn decode_with(
    nr: i64,
    args: &[u64; 6],
    fds: &FdTable,
    symbol: &dyn Fn(u64) -> Option<String>,
) -> Decoded {
    let name: Cow<'static, str> = match name(nr) {
        Some(n) => Cow::Borrowed(n),
        None => Cow::Owned(format!("syscall_{nr}")),
    };
    let addr = |a: u64| match (a, symbol(a)) {
        (0, _) | (_, None) => None,
        (_, Some(s)) => Some(format!("{a:#x} <{s}>")),
    };
    let rendered: Vec<String> = match nr {
        16 => ioctl_args(args, fds),
        72 => fcntl_args(args, fds),
        202 => futex_args(args, &addr),
        _ => match spec(nr) {
            Some(s) => s
                .bytes()
                .zip(args.iter())
                .map(|(c, &a)| match c {
                    b'p' => addr(a).unwrap_or_else(|| render_arg(c, a, fds)),
                    _ => render_arg(c, a, fds),
                })
                .collect(),
            None => args.iter().map(|&a| hex(a)).collect(),
        },
    };
    let text = format!("{name}({})", rendered.join(", "));
    Decoded { name, text }
}

fn hex(a: u64) -> String {
    format!("{a:#x}")
}

fn ptr(a: u64) -> String {
    if a == 0 {
        "NULL".to_string()
    } else {
        hex(a)
    }
}

/// An `int` argument: the low 32 bits, signed.
fn int(a: u64) -> i32 {
    a as u32 as i32
}

fn fd(a: u64, fds: &FdTable) -> String {
    let n = int(a);
    if n < 0 {
        n.to_string()
    } else {
        fds.render(i64::from(n))
    }
}

/// Flags as `A|B|0x..`, `zero` when none is set.
fn bits(v: u64, table: &[(u64, &str)], zero: &str) -> String {
    if v == 0 {
        return zero.to_string();
    }
    let mut parts = Vec::new();
    let mut rest = v;
    for &(bit, n) in table {
        if bit != 0 && rest & bit == bit {
            parts.push(n.to_string());
            rest &= !bit;
        }
    }
    if rest != 0 {
        parts.push(hex(rest));
    }
    parts.join("|")
}

/// One argument. `f` fd, `d` dirfd, `p` pointer, `u` unsigned, `i` int, `l` long, `x` hex,
/// `o` octal mode, `O` open flags, `k` flock operation, `C` clone flags, `w` wait options,
/// `m` mmap protection, `M` mmap flags, `K` clock id, `T` clock_nanosleep flags, `s` signal,
/// `e` epoll_ctl operation, `r` getrandom flags, `W` lseek whence, `S` SOCK_/EFD_/EPOLL_ flags.
fn render_arg(c: u8, a: u64, fds: &FdTable) -> String {
    match c {
        b'f' => fd(a, fds),
        b'd' if int(a) == -100 => "AT_FDCWD".to_string(),
        b'd' => fd(a, fds),
        b'p' => ptr(a),
        b'u' => a.to_string(),
        b'i' => int(a).to_string(),
        b'l' => (a as i64).to_string(),
        b'o' => format!("{:#o}", a as u32),
        b'O' => open_flag_names(a as u32),
        b'k' => bits(
            a & 0xffff_ffff,
            &[
                (1, "LOCK_SH"),
                (2, "LOCK_EX"),
                (8, "LOCK_UN"),
                (4, "LOCK_NB"),
            ],
            "0",
        ),
        b'C' => clone_flags(a),
        b'w' => bits(
            a & 0xffff_ffff,
            &[
                (1, "WNOHANG"),
                (2, "WUNTRACED"),
                (4, "WEXITED"),
                (8, "WCONTINUED"),
                (0x0100_0000, "WNOWAIT"),
                (0x2000_0000, "__WNOTHREAD"),
                (0x4000_0000, "__WALL"),
                (0x8000_0000, "__WCLONE"),
            ],
            "0",
        ),
        b'm' => bits(
            a & 0xffff_ffff,
            &[(1, "PROT_READ"), (2, "PROT_WRITE"), (4, "PROT_EXEC")],
            "PROT_NONE",
        ),
        b'M' => bits(
            a & 0xffff_ffff,
            &[
                (0x01, "MAP_SHARED"),
                (0x02, "MAP_PRIVATE"),
                (0x10, "MAP_FIXED"),
                (0x20, "MAP_ANONYMOUS"),
                (0x100, "MAP_GROWSDOWN"),
                (0x800, "MAP_DENYWRITE"),
                (0x1000, "MAP_EXECUTABLE"),
                (0x2000, "MAP_LOCKED"),
                (0x4000, "MAP_NORESERVE"),
                (0x8000, "MAP_POPULATE"),
                (0x10000, "MAP_NONBLOCK"),
                (0x20000, "MAP_STACK"),
                (0x40000, "MAP_HUGETLB"),
                (0x100000, "MAP_FIXED_NOREPLACE"),
            ],
            "0",
        ),
        b'K' => clock_name(int(a)),
        b'T' => bits(a & 0xffff_ffff, &[(1, "TIMER_ABSTIME")], "0"),
        b's' => signal_name(int(a)),
        b'e' => match int(a) {
            1 => "EPOLL_CTL_ADD".to_string(),
            2 => "EPOLL_CTL_DEL".to_string(),
            3 => "EPOLL_CTL_MOD".to_string(),
            n => n.to_string(),
        },
        b'r' => bits(
            a & 0xffff_ffff,
            &[
                (1, "GRND_NONBLOCK"),
                (2, "GRND_RANDOM"),
                (4, "GRND_INSECURE"),
            ],
            "0",
        ),
        b'W' => match int(a) {
            0 => "SEEK_SET".to_string(),
            1 => "SEEK_CUR".to_string(),
            2 => "SEEK_END".to_string(),
            3 => "SEEK_DATA".to_string(),
            4 => "SEEK_HOLE".to_string(),
            n => n.to_string(),
        },
        // SOCK_NONBLOCK == EFD_NONBLOCK == O_NONBLOCK; SOCK_CLOEXEC == EFD_CLOEXEC ==
        // EPOLL_CLOEXEC == O_CLOEXEC.
        b'S' => bits(
            a & 0xffff_ffff,
            &[
                (0o4000, "O_NONBLOCK"),
                (0o2000000, "O_CLOEXEC"),
                (1, "EFD_SEMAPHORE"),
            ],
            "0",
        ),
        _ => hex(a),
    }
}

fn clock_name(id: i32) -> String {
    const CLOCKS: [&str; 12] = [
        "CLOCK_REALTIME",
        "CLOCK_MONOTONIC",
        "CLOCK_PROCESS_CPUTIME_ID",
        "CLOCK_THREAD_CPUTIME_ID",
        "CLOCK_MONOTONIC_RAW",
        "CLOCK_REALTIME_COARSE",
        "CLOCK_MONOTONIC_COARSE",
        "CLOCK_BOOTTIME",
        "CLOCK_REALTIME_ALARM",
        "CLOCK_BOOTTIME_ALARM",
        "",
        "CLOCK_TAI",
    ];
    usize::try_from(id)
        .ok()
        .and_then(|i| CLOCKS.get(i))
        .filter(|s| !s.is_empty())
        .map_or_else(|| id.to_string(), |s| (*s).to_string())
}

/// `SIGTERM`, `SIGRTMIN+3`, or the number.
pub fn signal_name(sig: i32) -> String {
    const SIGS: [&str; 32] = [
        "0",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    match sig {
        0..=31 => SIGS[sig as usize].to_string(),
        32 => "SIGRTMIN".to_string(),
        33..=64 => format!("SIGRTMIN+{}", sig - 32),
        _ => sig.to_string(),
    }
}

fn clone_flags(a: u64) -> String {
    let sig = (a & 0xff) as i32;
    let mut s = bits(
        a & !0xff,
        &[
            (0x100, "CLONE_VM"),
            (0x200, "CLONE_FS"),
            (0x400, "CLONE_FILES"),
            (0x800, "CLONE_SIGHAND"),
            (0x1000, "CLONE_PIDFD"),
            (0x2000, "CLONE_PTRACE"),
            (0x4000, "CLONE_VFORK"),
            (0x8000, "CLONE_PARENT"),
            (0x10000, "CLONE_THREAD"),
            (0x20000, "CLONE_NEWNS"),
            (0x40000, "CLONE_SYSVSEM"),
            (0x80000, "CLONE_SETTLS"),
            (0x100000, "CLONE_PARENT_SETTID"),
            (0x200000, "CLONE_CHILD_CLEARTID"),
            (0x400000, "CLONE_DETACHED"),
            (0x800000, "CLONE_UNTRACED"),
            (0x1000000, "CLONE_CHILD_SETTID"),
            (0x2000000, "CLONE_NEWCGROUP"),
            (0x4000000, "CLONE_NEWUTS"),
            (0x8000000, "CLONE_NEWIPC"),
            (0x10000000, "CLONE_NEWUSER"),
            (0x20000000, "CLONE_NEWPID"),
            (0x40000000, "CLONE_NEWNET"),
            (0x80000000, "CLONE_IO"),
        ],
        "",
    );
    if sig != 0 {
        if !s.is_empty() {
            s.push('|');
        }
        s.push_str(&signal_name(sig));
    }
    if s.is_empty() {
        s.push('0');
    }
    s
}

/// The futex operation: `FUTEX_WAIT_PRIVATE`, `FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME`.
pub fn futex_op_name(op: i32) -> String {
    const OPS: [&str; 14] = [
        "FUTEX_WAIT",
        "FUTEX_WAKE",
        "FUTEX_FD",
        "FUTEX_REQUEUE",
        "FUTEX_CMP_REQUEUE",
        "FUTEX_WAKE_OP",
        "FUTEX_LOCK_PI",
        "FUTEX_UNLOCK_PI",
        "FUTEX_TRYLOCK_PI",
        "FUTEX_WAIT_BITSET",
        "FUTEX_WAKE_BITSET",
        "FUTEX_WAIT_REQUEUE_PI",
        "FUTEX_CMP_REQUEUE_PI",
        "FUTEX_LOCK_PI2",
    ];
    let cmd = op & 0x7f;
    let mut s = match OPS.get(cmd as usize) {
        Some(n) => (*n).to_string(),
        None => format!("{cmd:#x}"),
    };
    if op & 128 != 0 {
        s.push_str("_PRIVATE");
    }
    if op & 256 != 0 {
        s.push_str("|FUTEX_CLOCK_REALTIME");
    }
    let rest = op & !(0x7f | 128 | 256);
    if rest != 0 {
        s.push_str(&format!("|{rest:#x}"));
    }
    s
}

/// Futex arguments; `addr` names an address by symbol when it can (the futex word, `uaddr2`).
fn futex_args(a: &[u64; 6], addr: &dyn Fn(u64) -> Option<String>) -> Vec<String> {
    let op = int(a[1]);
    let uaddr = |x: u64| addr(x).unwrap_or_else(|| hex(x));
    let mut v = vec![uaddr(a[0]), futex_op_name(op)];
    let val = || int(a[2]).to_string();
    match op & 0x7f {
        // WAIT: uaddr, op, val, timeout
        0 => v.extend([val(), ptr(a[3])]),
        // WAKE, FD
        1 | 2 => v.push(val()),
        // REQUEUE: val, val2, uaddr2
        3 => v.extend([val(), int(a[3]).to_string(), uaddr(a[4])]),
        // CMP_REQUEUE, CMP_REQUEUE_PI: val, val2, uaddr2, val3
        4 | 12 => v.extend([
            val(),
            int(a[3]).to_string(),
            uaddr(a[4]),
            int(a[5]).to_string(),
        ]),
        // WAKE_OP: val, val2, uaddr2, encoded op
        5 => v.extend([
            val(),
            int(a[3]).to_string(),
            uaddr(a[4]),
            hex(a[5] & 0xffff_ffff),
        ]),
        // LOCK_PI, LOCK_PI2, TRYLOCK_PI: timeout
        6 | 8 | 13 => v.push(ptr(a[3])),
        // UNLOCK_PI
        7 => {}
        // WAIT_BITSET: val, timeout, NULL, bitset
        9 => v.extend([val(), ptr(a[3]), ptr(a[4]), hex(a[5] & 0xffff_ffff)]),
        // WAKE_BITSET: val, NULL, NULL, bitset
        10 => v.extend([val(), ptr(a[3]), ptr(a[4]), hex(a[5] & 0xffff_ffff)]),
        // WAIT_REQUEUE_PI: val, timeout, uaddr2
        11 => v.extend([val(), ptr(a[3]), uaddr(a[4])]),
        _ => v.extend(a[2..].iter().map(|&x| hex(x))),
    }
    v
}

fn fcntl_args(a: &[u64; 6], fds: &FdTable) -> Vec<String> {
    let cmd = int(a[1]);
    let (name, arg) = match cmd {
        0 => ("F_DUPFD", Some(int(a[2]).to_string())),
        1 => ("F_GETFD", None),
        2 => (
            "F_SETFD",
            Some(bits(a[2] & 0xffff_ffff, &[(1, "FD_CLOEXEC")], "0")),
        ),
        3 => ("F_GETFL", None),
        4 => ("F_SETFL", Some(open_flag_names(a[2] as u32))),
        5 => ("F_GETLK", Some(ptr(a[2]))),
        6 => ("F_SETLK", Some(ptr(a[2]))),
        7 => ("F_SETLKW", Some(ptr(a[2]))),
        8 => ("F_SETOWN", Some(int(a[2]).to_string())),
        9 => ("F_GETOWN", None),
        36 => ("F_OFD_GETLK", Some(ptr(a[2]))),
        37 => ("F_OFD_SETLK", Some(ptr(a[2]))),
        38 => ("F_OFD_SETLKW", Some(ptr(a[2]))),
        1024 => ("F_SETLEASE", Some(int(a[2]).to_string())),
        1025 => ("F_GETLEASE", None),
        1030 => ("F_DUPFD_CLOEXEC", Some(int(a[2]).to_string())),
        1031 => ("F_SETPIPE_SZ", Some(int(a[2]).to_string())),
        1032 => ("F_GETPIPE_SZ", None),
        1033 => ("F_ADD_SEALS", Some(hex(a[2]))),
        1034 => ("F_GET_SEALS", None),
        _ => ("", Some(hex(a[2]))),
    };
    let mut v = vec![fd(a[0], fds)];
    v.push(if name.is_empty() {
        cmd.to_string()
    } else {
        name.to_string()
    });
    v.extend(arg);
    v
}

fn ioctl_args(a: &[u64; 6], fds: &FdTable) -> Vec<String> {
    let req = a[1] & 0xffff_ffff;
    let name = match req {
        0x5401 => "TCGETS",
        0x5402 => "TCSETS",
        0x5403 => "TCSETSW",
        0x540f => "TIOCGPGRP",
        0x5410 => "TIOCSPGRP",
        0x5413 => "TIOCGWINSZ",
        0x5414 => "TIOCSWINSZ",
        0x541b => "FIONREAD",
        0x5421 => "FIONBIO",
        0x5451 => "FIOCLEX",
        0x5450 => "FIONCLEX",
        _ => "",
    };
    vec![
        fd(a[0], fds),
        if name.is_empty() {
            hex(req)
        } else {
            name.to_string()
        },
        ptr(a[2]),
    ]
}

/// x86-64 system call names 0..=334, generated from the kernel's unistd_64.h.
const NAMES_LOW: [&str; 335] = [
    "read",
    "write",
    "open",
    "close",
    "stat",
    "fstat",
    "lstat",
    "poll",
    "lseek",
    "mmap",
    "mprotect",
    "munmap",
    "brk",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "ioctl",
    "pread64",
    "pwrite64",
    "readv",
    "writev",
    "access",
    "pipe",
    "select",
    "sched_yield",
    "mremap",
    "msync",
    "mincore",
    "madvise",
    "shmget",
    "shmat",
    "shmctl",
    "dup",
    "dup2",
    "pause",
    "nanosleep",
    "getitimer",
    "alarm",
    "setitimer",
    "getpid",
    "sendfile",
    "socket",
    "connect",
    "accept",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "shutdown",
    "bind",
    "listen",
    "getsockname",
    "getpeername",
    "socketpair",
    "setsockopt",
    "getsockopt",
    "clone",
    "fork",
    "vfork",
    "execve",
    "exit",
    "wait4",
    "kill",
    "uname",
    "semget",
    "semop",
    "semctl",
    "shmdt",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "fcntl",
    "flock",
    "fsync",
    "fdatasync",
    "truncate",
    "ftruncate",
    "getdents",
    "getcwd",
    "chdir",
    "fchdir",
    "rename",
    "mkdir",
    "rmdir",
    "creat",
    "link",
    "unlink",
    "symlink",
    "readlink",
    "chmod",
    "fchmod",
    "chown",
    "fchown",
    "lchown",
    "umask",
    "gettimeofday",
    "getrlimit",
    "getrusage",
    "sysinfo",
    "times",
    "ptrace",
    "getuid",
    "syslog",
    "getgid",
    "setuid",
    "setgid",
    "geteuid",
    "getegid",
    "setpgid",
    "getppid",
    "getpgrp",
    "setsid",
    "setreuid",
    "setregid",
    "getgroups",
    "setgroups",
    "setresuid",
    "getresuid",
    "setresgid",
    "getresgid",
    "getpgid",
    "setfsuid",
    "setfsgid",
    "getsid",
    "capget",
    "capset",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigqueueinfo",
    "rt_sigsuspend",
    "sigaltstack",
    "utime",
    "mknod",
    "uselib",
    "personality",
    "ustat",
    "statfs",
    "fstatfs",
    "sysfs",
    "getpriority",
    "setpriority",
    "sched_setparam",
    "sched_getparam",
    "sched_setscheduler",
    "sched_getscheduler",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_rr_get_interval",
    "mlock",
    "munlock",
    "mlockall",
    "munlockall",
    "vhangup",
    "modify_ldt",
    "pivot_root",
    "_sysctl",
    "prctl",
    "arch_prctl",
    "adjtimex",
    "setrlimit",
    "chroot",
    "sync",
    "acct",
    "settimeofday",
    "mount",
    "umount2",
    "swapon",
    "swapoff",
    "reboot",
    "sethostname",
    "setdomainname",
    "iopl",
    "ioperm",
    "create_module",
    "init_module",
    "delete_module",
    "get_kernel_syms",
    "query_module",
    "quotactl",
    "nfsservctl",
    "getpmsg",
    "putpmsg",
    "afs_syscall",
    "tuxcall",
    "security",
    "gettid",
    "readahead",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "getxattr",
    "lgetxattr",
    "fgetxattr",
    "listxattr",
    "llistxattr",
    "flistxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "tkill",
    "time",
    "futex",
    "sched_setaffinity",
    "sched_getaffinity",
    "set_thread_area",
    "io_setup",
    "io_destroy",
    "io_getevents",
    "io_submit",
    "io_cancel",
    "get_thread_area",
    "lookup_dcookie",
    "epoll_create",
    "epoll_ctl_old",
    "epoll_wait_old",
    "remap_file_pages",
    "getdents64",
    "set_tid_address",
    "restart_syscall",
    "semtimedop",
    "fadvise64",
    "timer_create",
    "timer_settime",
    "timer_gettime",
    "timer_getoverrun",
    "timer_delete",
    "clock_settime",
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "exit_group",
    "epoll_wait",
    "epoll_ctl",
    "tgkill",
    "utimes",
    "vserver",
    "mbind",
    "set_mempolicy",
    "get_mempolicy",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
    "kexec_load",
    "waitid",
    "add_key",
    "request_key",
    "keyctl",
    "ioprio_set",
    "ioprio_get",
    "inotify_init",
    "inotify_add_watch",
    "inotify_rm_watch",
    "migrate_pages",
    "openat",
    "mkdirat",
    "mknodat",
    "fchownat",
    "futimesat",
    "newfstatat",
    "unlinkat",
    "renameat",
    "linkat",
    "symlinkat",
    "readlinkat",
    "fchmodat",
    "faccessat",
    "pselect6",
    "ppoll",
    "unshare",
    "set_robust_list",
    "get_robust_list",
    "splice",
    "tee",
    "sync_file_range",
    "vmsplice",
    "move_pages",
    "utimensat",
    "epoll_pwait",
    "signalfd",
    "timerfd_create",
    "eventfd",
    "fallocate",
    "timerfd_settime",
    "timerfd_gettime",
    "accept4",
    "signalfd4",
    "eventfd2",
    "epoll_create1",
    "dup3",
    "pipe2",
    "inotify_init1",
    "preadv",
    "pwritev",
    "rt_tgsigqueueinfo",
    "perf_event_open",
    "recvmmsg",
    "fanotify_init",
    "fanotify_mark",
    "prlimit64",
    "name_to_handle_at",
    "open_by_handle_at",
    "clock_adjtime",
    "syncfs",
    "sendmmsg",
    "setns",
    "getcpu",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "finit_module",
    "sched_setattr",
    "sched_getattr",
    "renameat2",
    "seccomp",
    "getrandom",
    "memfd_create",
    "kexec_file_load",
    "bpf",
    "execveat",
    "userfaultfd",
    "membarrier",
    "mlock2",
    "copy_file_range",
    "preadv2",
    "pwritev2",
    "pkey_mprotect",
    "pkey_alloc",
    "pkey_free",
    "statx",
    "io_pgetevents",
    "rseq",
];

/// x86-64 system call names 424..=450.
const NAMES_HIGH: [&str; 27] = [
    "pidfd_send_signal",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "pidfd_open",
    "clone3",
    "close_range",
    "openat2",
    "pidfd_getfd",
    "faccessat2",
    "process_madvise",
    "epoll_pwait2",
    "mount_setattr",
    "quotactl_fd",
    "landlock_create_ruleset",
    "landlock_add_rule",
    "landlock_restrict_self",
    "memfd_secret",
    "process_mrelease",
    "futex_waitv",
    "set_mempolicy_home_node",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fds::{classify_link, FdDesc, FdKind};

    fn table() -> FdTable {
        FdTable::from_descs([
            FdDesc {
                fd: 3,
                kind: classify_link("pipe:[123]"),
                flags: 0,
                pos: 0,
            },
            FdDesc {
                fd: 5,
                kind: classify_link("/var/run/app.lock"),
                flags: 2,
                pos: 0,
            },
            FdDesc {
                fd: 4,
                kind: FdKind::Epoll {
                    watched: vec![3, 5],
                },
                flags: 0o2000000,
                pos: 0,
            },
        ])
    }

    fn d(nr: i64, a: [u64; 6]) -> String {
        decode(nr, &a, &table()).text
    }

    #[test]
    fn names() {
        assert_eq!(name(0), Some("read"));
        assert_eq!(name(202), Some("futex"));
        assert_eq!(name(232), Some("epoll_wait"));
        assert_eq!(name(281), Some("epoll_pwait"));
        assert_eq!(name(318), Some("getrandom"));
        assert_eq!(name(334), Some("rseq"));
        assert_eq!(name(335), None);
        assert_eq!(name(424), Some("pidfd_send_signal"));
        assert_eq!(name(426), Some("io_uring_enter"));
        assert_eq!(name(435), Some("clone3"));
        assert_eq!(name(441), Some("epoll_pwait2"));
        assert_eq!(name(450), Some("set_mempolicy_home_node"));
        assert_eq!(name(451), None);
        assert_eq!(name(-1), None);
        assert_eq!(name(i64::MAX), None);
        assert_eq!(name(i64::MIN), None);
    }

    #[test]
    fn fds_resolved() {
        assert_eq!(
            d(0, [3, 0x7ffd_1000, 4096, 0, 0, 0]),
            "read(fd 3 → pipe:[123], 0x7ffd1000, 4096)"
        );
        assert_eq!(
            d(73, [5, 2, 0, 0, 0, 0]),
            "flock(fd 5 → /var/run/app.lock, LOCK_EX)"
        );
        assert_eq!(
            d(73, [5, 6, 0, 0, 0, 0]),
            "flock(fd 5 → /var/run/app.lock, LOCK_EX|LOCK_NB)"
        );
        assert_eq!(
            d(72, [5, 7, 0x7ffc_0000, 0, 0, 0]),
            "fcntl(fd 5 → /var/run/app.lock, F_SETLKW, 0x7ffc0000)"
        );
        assert_eq!(
            d(72, [5, 4, 0o4002, 0, 0, 0]),
            "fcntl(fd 5 → /var/run/app.lock, F_SETFL, O_RDWR|O_NONBLOCK)"
        );
        assert_eq!(
            d(72, [5, 3, 9, 0, 0, 0]),
            "fcntl(fd 5 → /var/run/app.lock, F_GETFL)"
        );
        assert_eq!(
            d(281, [4, 0xc000_1000, 128, u64::MAX, 0, 8]),
            "epoll_pwait(fd 4 → epoll (watching 3, 5), 0xc0001000, 128, -1, NULL, 8)"
        );
        // Unknown fds stay numbers; the upper half of an int register is ignored.
        assert_eq!(d(3, [0xdead_0000_0009, 0, 0, 0, 0, 0]), "close(fd 9)");
        assert_eq!(
            d(257, [(-100i64) as u64, 0x4000, 0o2000102, 0o644, 0, 0]),
            "openat(AT_FDCWD, 0x4000, O_RDWR|O_CLOEXEC|O_CREAT, 0o644)"
        );
        assert_eq!(
            d(9, [0, 4096, 3, 0x22, u64::MAX, 0]),
            "mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0x0)"
        );
        assert_eq!(
            d(16, [1, 0x5413, 0x7ff0, 0, 0, 0]),
            "ioctl(fd 1, TIOCGWINSZ, 0x7ff0)"
        );
        assert_eq!(
            d(17, [5, 0x1000, 512, 8192, 0, 0]),
            "pread64(fd 5 → /var/run/app.lock, 0x1000, 512, 8192)"
        );
    }

    #[test]
    fn futexes() {
        assert_eq!(
            d(202, [0x7f00_1234, 128, 0, 0, 0, 0]),
            "futex(0x7f001234, FUTEX_WAIT_PRIVATE, 0, NULL)"
        );
        assert_eq!(
            d(202, [0xc000_0100, 0x81, 1, 0, 0, 0]),
            "futex(0xc0000100, FUTEX_WAKE_PRIVATE, 1)"
        );
        assert_eq!(
            d(202, [0x1000, 9 | 128 | 256, 2, 0x7ffe, 0, 0xffff_ffff]),
            "futex(0x1000, FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME, 2, 0x7ffe, NULL, 0xffffffff)"
        );
        assert_eq!(
            d(202, [0x1000, 6, 0, 0, 0, 0]),
            "futex(0x1000, FUTEX_LOCK_PI, NULL)"
        );
        assert_eq!(
            d(202, [0x1000, 7, 0, 0, 0, 0]),
            "futex(0x1000, FUTEX_UNLOCK_PI)"
        );
        assert_eq!(
            d(202, [0x1000, 0x7f, 1, 2, 3, 4]),
            "futex(0x1000, 0x7f, 0x1, 0x2, 0x3, 0x4)"
        );
    }

    #[test]
    fn others_and_unknown() {
        assert_eq!(
            d(35, [0x7ffd_0000, 0, 0, 0, 0, 0]),
            "nanosleep(0x7ffd0000, NULL)"
        );
        assert_eq!(
            d(230, [1, 1, 0x7ffd_0000, 0, 0, 0]),
            "clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, 0x7ffd0000, NULL)"
        );
        assert_eq!(d(24, [1, 2, 3, 4, 5, 6]), "sched_yield()");
        assert_eq!(d(34, [0; 6]), "pause()");
        assert_eq!(
            d(61, [u64::MAX, 0x7ff0, 0x4000_0000, 0, 0, 0]),
            "wait4(-1, 0x7ff0, __WALL, NULL)"
        );
        assert_eq!(
            d(56, [0x3d0f00, 0xc000, 0, 0, 0x7000, 0]),
            "clone(CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, 0xc000, NULL, NULL, 0x7000)"
        );
        assert_eq!(
            d(56, [17, 0, 0, 0, 0, 0]),
            "clone(SIGCHLD, NULL, NULL, NULL, NULL)"
        );
        assert_eq!(d(234, [10, 11, 34, 0, 0, 0]), "tgkill(10, 11, SIGRTMIN+2)");
        assert_eq!(
            d(318, [0x10, 16, 1, 0, 0, 0]),
            "getrandom(0x10, 16, GRND_NONBLOCK)"
        );
        assert_eq!(
            d(426, [7, 1, 1, 1, 0, 8]),
            "io_uring_enter(fd 7, 1, 1, 0x1, NULL, 8)"
        );
        assert_eq!(
            d(288, [5, 0, 0, 0o2004000, 0, 0]),
            "accept4(fd 5 → /var/run/app.lock, NULL, NULL, O_NONBLOCK|O_CLOEXEC)"
        );
        assert_eq!(
            d(99, [1, 2, 3, 4, 5, 6]),
            "sysinfo(0x1, 0x2, 0x3, 0x4, 0x5, 0x6)"
        );
        let u = decode(400, &[0, 1, 0xff, 0, 0, 0], &FdTable::default());
        assert_eq!(u.name, "syscall_400");
        assert_eq!(u.to_string(), "syscall_400(0x0, 0x1, 0xff, 0x0, 0x0, 0x0)");
        assert_eq!(decode(-1, &[0; 6], &FdTable::default()).name, "syscall_-1");
        for nr in -2..500 {
            let _ = decode(nr, &[u64::MAX; 6], &table());
            let _ = decode(nr, &[0; 6], &table());
        }
        assert_eq!(
            futex_op_name(-1),
            "0x7f_PRIVATE|FUTEX_CLOCK_REALTIME|0xfffffe00"
        );
        assert_eq!(signal_name(65), "65");
        assert_eq!(signal_name(-3), "-3");
    }

    #[test]
    fn addresses_named_by_symbol() {
        let sym = |a: u64| match a {
            0x5000..=0x5007 if a == 0x5000 => Some("lock_a".to_string()),
            0x5000..=0x5007 => Some(format!("lock_a+{}", a - 0x5000)),
            _ => None,
        };
        let f = |a: [u64; 6]| decode_with(202, &a, &table(), &sym).text;
        assert_eq!(
            f([0x5000, 128, 2, 0, 0, 0]),
            "futex(0x5000 <lock_a>, FUTEX_WAIT_PRIVATE, 2, NULL)"
        );
        assert_eq!(
            f([0x5004, 1 | 128, 1, 0, 0, 0]),
            "futex(0x5004 <lock_a+4>, FUTEX_WAKE_PRIVATE, 1)"
        );
        // Requeue target named too; values that merely look like addresses are not.
        assert_eq!(
            f([0x9000, 4, 1, 0x5000, 0x5000, 0x5000]),
            "futex(0x9000, FUTEX_CMP_REQUEUE, 1, 20480, 0x5000 <lock_a>, 20480)"
        );
        // Pointer arguments of other calls; NULL stays NULL.
        assert_eq!(
            decode_with(0, &[3, 0x5000, 8, 0, 0, 0], &table(), &sym).text,
            "read(fd 3 → pipe:[123], 0x5000 <lock_a>, 8)"
        );
        assert_eq!(
            decode_with(0, &[3, 0, 8, 0, 0, 0], &table(), &|_| Some("x".into())).text,
            "read(fd 3 → pipe:[123], NULL, 8)"
        );
    }
}
