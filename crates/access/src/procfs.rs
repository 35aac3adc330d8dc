//! Readers of `/proc/PID/...` files: threads (`task/TID/{stat,status,syscall,wchan,stack}`), memory
//! maps and process status.
//!
//! Threads come and go while we read: a thread that exits between the directory listing and the
//! reading of its files is skipped, never an error. Files that need more privileges than we have
//! (`stack` needs `CAP_SYS_ADMIN`; `syscall` needs ptrace access) give `None` for that field.
//!
//! The parsers (`parse_*`) take bytes and do no I/O, so they are tested on literal file contents.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use crate::error::TargetError;

/// One thread (task) of a target, as `/proc/PID/task/TID/` describes it at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadInfo {
    /// Thread id, as seen from our PID namespace.
    pub tid: i32,
    /// Thread name (`comm`, at most 15 bytes; Go names its threads after the binary).
    pub name: String,
    /// Scheduler state: `R` running, `S` sleeping, `D` uninterruptible (disk, some locks), `T`
    /// stopped by a signal, `t` stopped by a tracer, `Z` zombie, `X` dead, `I` idle kernel thread.
    pub state: char,
    /// The system call the thread is in (`/proc/.../syscall`). `None` when it is running on a CPU
    /// (the kernel says "running") or the file was not readable.
    pub syscall: Option<SyscallInfo>,
    /// The kernel function the thread sleeps in (`wchan`), e.g. `pipe_read`, `futex_wait_queue`;
    /// `None` when running or when the kernel hides symbols.
    pub wchan: Option<String>,
    /// The thread's kernel stack (`/proc/.../stack`), innermost first, e.g. `pipe_read+0x2f1/0x3e0`.
    /// Usually readable by root only.
    pub kernel_stack: Option<Vec<String>>,
    /// Context switches the thread asked for (blocking, sleeping).
    pub voluntary_ctxt_switches: u64,
    /// Context switches forced by the scheduler (preemption).
    pub nonvoluntary_ctxt_switches: u64,
    /// Time spent in user mode, in clock ticks (see [`ThreadInfo::utime`]).
    pub utime_ticks: u64,
    /// Time spent in the kernel, in clock ticks (see [`ThreadInfo::stime`]).
    pub stime_ticks: u64,
    /// When the thread started, in clock ticks since boot.
    pub start_ticks: u64,
    /// The CPU the thread last ran on.
    pub processor: Option<u32>,
    /// The pid of the process tracing this thread, 0 when none.
    pub tracer_pid: i32,
    /// Signals blocked in this thread (`SigBlk`), bit `n-1` for signal `n`.
    pub sig_blocked: u64,
    /// Signals pending for this thread alone (`SigPnd`).
    pub sig_pending: u64,
}

impl ThreadInfo {
    /// Time spent in user mode.
    pub fn utime(&self) -> Duration {
        ticks_to_duration(self.utime_ticks)
    }

    /// Time spent in the kernel.
    pub fn stime(&self) -> Duration {
        ticks_to_duration(self.stime_ticks)
    }

    /// User plus kernel time.
    pub fn cpu_time(&self) -> Duration {
        ticks_to_duration(self.utime_ticks + self.stime_ticks)
    }
}

/// A system call in progress, from `/proc/PID/task/TID/syscall`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyscallInfo {
    /// The system call number (x86-64: 0 `read`, 202 `futex`, 232 `epoll_wait`, 281
    /// `epoll_pwait`...), or -1 when the thread is blocked but not in a system call (for instance
    /// stopped by a tracer while running user code); the arguments are then all zero.
    pub nr: i64,
    /// The six argument registers.
    pub args: [u64; 6],
    /// User stack pointer.
    pub sp: u64,
    /// User program counter (the instruction after the `syscall` instruction).
    pub pc: u64,
}

impl SyscallInfo {
    /// Whether the thread is inside a system call (`nr >= 0`).
    pub fn in_syscall(&self) -> bool {
        self.nr >= 0
    }
}

/// One line of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Access rights.
    pub perms: Perms,
    /// Offset in the mapped file.
    pub offset: u64,
    /// Device major number of the mapped file.
    pub dev_major: u32,
    /// Device minor number of the mapped file.
    pub dev_minor: u32,
    /// Inode of the mapped file, 0 for anonymous mappings.
    pub inode: u64,
    /// The mapped file, or a pseudo name like `[heap]`, `[stack]`, `[vdso]`; `None` for anonymous
    /// mappings. A ` (deleted)` suffix is removed and recorded in [`Mapping::deleted`].
    pub path: Option<PathBuf>,
    /// The mapped file was deleted (or replaced) after it was mapped.
    pub deleted: bool,
}

impl Mapping {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether the mapping is empty (never, for mappings the kernel reports).
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// Whether `addr` lies inside.
    pub fn contains(&self, addr: u64) -> bool {
        (self.start..self.end).contains(&addr)
    }
}

/// Access rights of a [`Mapping`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Perms {
    /// Readable.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub exec: bool,
    /// Shared (`s`) rather than private copy-on-write (`p`).
    pub shared: bool,
}

impl std::fmt::Display for Perms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = |b, ch| if b { ch } else { '-' };
        write!(
            f,
            "{}{}{}{}",
            c(self.read, 'r'),
            c(self.write, 'w'),
            c(self.exec, 'x'),
            if self.shared { 's' } else { 'p' }
        )
    }
}

/// The fields of `/proc/PID/status` (or of one task's) that gostall uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcStatus {
    /// `Name:`.
    pub name: String,
    /// First letter of `State:`.
    pub state: char,
    /// `Tgid:`, the process a thread belongs to.
    pub tgid: i32,
    /// `TracerPid:`, 0 when not traced.
    pub tracer_pid: i32,
    /// `Uid:` real, effective, saved, filesystem.
    pub uid: [u32; 4],
    /// `Gid:` real, effective, saved, filesystem.
    pub gid: [u32; 4],
    /// `NSpid:`: the pid in each PID namespace from ours down to the process's own; one entry when
    /// the process lives in our namespace.
    pub nspid: Vec<i32>,
    /// `CapPrm:` permitted capabilities.
    pub cap_prm: u64,
    /// `CapEff:` effective capabilities.
    pub cap_eff: u64,
    /// `CapBnd:` capability bounding set.
    pub cap_bnd: u64,
    /// `Seccomp:` mode: 0 none, 1 strict, 2 filter.
    pub seccomp: u32,
    /// `voluntary_ctxt_switches:`.
    pub voluntary_ctxt_switches: u64,
    /// `nonvoluntary_ctxt_switches:`.
    pub nonvoluntary_ctxt_switches: u64,
    /// `SigPnd:` signals pending for this thread (for a process's status: its main thread), bit
    /// `n-1` for signal `n`.
    pub sig_pnd: u64,
    /// `ShdPnd:` signals pending for the whole process.
    pub shd_pnd: u64,
    /// `SigBlk:` signals blocked (in this thread; for a process's status: its main thread).
    pub sig_blk: u64,
    /// `SigIgn:` signals ignored (process-wide disposition).
    pub sig_ign: u64,
    /// `SigCgt:` signals with a handler installed (process-wide disposition).
    pub sig_cgt: u64,
}

/// The fields of `/proc/PID/stat` that gostall uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcStat {
    /// `comm`, between the parentheses.
    pub comm: String,
    /// State letter.
    pub state: char,
    /// Parent pid.
    pub ppid: i32,
    /// User time in clock ticks.
    pub utime: u64,
    /// System time in clock ticks.
    pub stime: u64,
    /// Number of threads.
    pub num_threads: u64,
    /// Start time in clock ticks since boot.
    pub starttime: u64,
    /// CPU last run on.
    pub processor: Option<u32>,
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on every Linux in practice).
pub fn clock_ticks_per_second() -> u64 {
    static TCK: OnceLock<u64> = OnceLock::new();
    *TCK.get_or_init(
        || match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
            Ok(Some(t)) if t > 0 => t as u64,
            _ => 100,
        },
    )
}

fn ticks_to_duration(ticks: u64) -> Duration {
    let hz = clock_ticks_per_second();
    Duration::from_secs(ticks / hz) + Duration::from_nanos((ticks % hz) * 1_000_000_000 / hz)
}

/// Whether an I/O error on a `/proc` file means the process or thread is gone.
pub(crate) fn is_gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(nix::libc::ESRCH)
}

fn proc_err(path: &Path, source: io::Error) -> TargetError {
    TargetError::Proc {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads `/proc/PID/stat` and `/proc/PID/status` of a process.
///
/// # Errors
/// [`TargetError::ProcessExited`] when the process is gone.
pub fn status(pid: i32) -> Result<ProcStatus, TargetError> {
    let path = PathBuf::from(format!("/proc/{pid}/status"));
    match std::fs::read(&path) {
        Ok(b) => Ok(parse_status(&b)),
        Err(e) if is_gone(&e) => Err(TargetError::ProcessExited { pid }),
        Err(e) => Err(proc_err(&path, e)),
    }
}

/// Reads `/proc/PID/stat`.
///
/// # Errors
/// [`TargetError::ProcessExited`] when the process is gone, [`TargetError::Parse`] on content we do
/// not understand.
pub fn stat(pid: i32) -> Result<ProcStat, TargetError> {
    let path = PathBuf::from(format!("/proc/{pid}/stat"));
    match std::fs::read(&path) {
        Ok(b) => parse_stat(&b).ok_or_else(|| TargetError::Parse {
            path,
            what: "no ')' followed by the state field".into(),
        }),
        Err(e) if is_gone(&e) => Err(TargetError::ProcessExited { pid }),
        Err(e) => Err(proc_err(&path, e)),
    }
}

/// Whether the process exists and is not a zombie.
pub fn is_alive(pid: i32) -> bool {
    match std::fs::read(format!("/proc/{pid}/stat")) {
        Ok(b) => parse_stat(&b).is_some_and(|s| !matches!(s.state, 'Z' | 'X' | 'x')),
        Err(_) => false,
    }
}

/// The thread ids of a process, from `/proc/PID/task`, in ascending order.
///
/// # Errors
/// [`TargetError::ProcessExited`] when the process is gone.
pub fn task_ids(pid: i32) -> Result<Vec<i32>, TargetError> {
    let path = PathBuf::from(format!("/proc/{pid}/task"));
    let dir = match std::fs::read_dir(&path) {
        Ok(d) => d,
        Err(e) if is_gone(&e) => return Err(TargetError::ProcessExited { pid }),
        Err(e) => return Err(proc_err(&path, e)),
    };
    let mut tids = Vec::new();
    for entry in dir {
        let entry = match entry {
            Ok(e) => e,
            // The directory of an exiting process can vanish while we iterate.
            Err(e) if is_gone(&e) => return Err(TargetError::ProcessExited { pid }),
            Err(e) => return Err(proc_err(&path, e)),
        };
        if let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        {
            tids.push(tid);
        }
    }
    tids.sort_unstable();
    Ok(tids)
}

/// Every thread of a process. Threads that exit while we read are skipped.
///
/// # Errors
/// [`TargetError::ProcessExited`] when the process is gone.
pub fn threads(pid: i32) -> Result<Vec<ThreadInfo>, TargetError> {
    let tids = task_ids(pid)?;
    let mut out = Vec::with_capacity(tids.len());
    for tid in tids {
        if let Some(t) = thread(pid, tid)? {
            out.push(t);
        }
    }
    if out.is_empty() && !Path::new(&format!("/proc/{pid}")).exists() {
        return Err(TargetError::ProcessExited { pid });
    }
    Ok(out)
}

/// One thread of a process; `Ok(None)` when it exited (or never existed).
///
/// # Errors
/// Only for unexpected failures (unparsable files, I/O errors other than "gone").
pub fn thread(pid: i32, tid: i32) -> Result<Option<ThreadInfo>, TargetError> {
    let dir = PathBuf::from(format!("/proc/{pid}/task/{tid}"));
    // Required files: gone → skip the thread.
    let stat_path = dir.join("stat");
    let stat = match std::fs::read(&stat_path) {
        Ok(b) => match parse_stat(&b) {
            Some(s) => s,
            None => {
                return Err(TargetError::Parse {
                    path: stat_path,
                    what: "no ')' followed by the state field".into(),
                })
            }
        },
        Err(e) if is_gone(&e) => return Ok(None),
        Err(e) => return Err(proc_err(&stat_path, e)),
    };
    let status_path = dir.join("status");
    let status = match std::fs::read(&status_path) {
        Ok(b) => parse_status(&b),
        Err(e) if is_gone(&e) => return Ok(None),
        Err(e) => return Err(proc_err(&status_path, e)),
    };
    // Optional files: gone → skip the thread; not permitted → None.
    let syscall = match optional(&dir.join("syscall")) {
        Optional::Gone => return Ok(None),
        Optional::Missing => None,
        Optional::Bytes(b) => parse_syscall(&b),
    };
    let wchan = match optional(&dir.join("wchan")) {
        Optional::Gone => return Ok(None),
        Optional::Missing => None,
        Optional::Bytes(b) => parse_wchan(&b),
    };
    let kernel_stack = match optional(&dir.join("stack")) {
        Optional::Gone => return Ok(None),
        Optional::Missing => None,
        Optional::Bytes(b) => Some(parse_kernel_stack(&b)),
    };
    Ok(Some(ThreadInfo {
        tid,
        name: stat.comm,
        state: stat.state,
        syscall,
        wchan,
        kernel_stack,
        voluntary_ctxt_switches: status.voluntary_ctxt_switches,
        nonvoluntary_ctxt_switches: status.nonvoluntary_ctxt_switches,
        utime_ticks: stat.utime,
        stime_ticks: stat.stime,
        start_ticks: stat.starttime,
        processor: stat.processor,
        tracer_pid: status.tracer_pid,
        sig_blocked: status.sig_blk,
        sig_pending: status.sig_pnd,
    }))
}

/// The status of one thread (`/proc/PID/task/TID/status`), for a second look at fields that
/// change (signal masks, context switches); `None` when the thread is gone or unreadable.
pub fn thread_status(pid: i32, tid: i32) -> Option<ProcStatus> {
    std::fs::read(format!("/proc/{pid}/task/{tid}/status"))
        .ok()
        .map(|b| parse_status(&b))
}

enum Optional {
    Bytes(Vec<u8>),
    Gone,
    Missing,
}

fn optional(path: &Path) -> Optional {
    match std::fs::read(path) {
        Ok(b) => Optional::Bytes(b),
        // A missing task directory means the thread exited; a missing file in a present
        // directory (kernel without CONFIG_STACKTRACE, say) is just unavailable.
        Err(e) if is_gone(&e) => {
            if path.parent().is_some_and(Path::exists) {
                Optional::Missing
            } else {
                Optional::Gone
            }
        }
        Err(_) => Optional::Missing,
    }
}

/// The memory mappings of a process.
///
/// # Errors
/// [`TargetError::ProcessExited`] when the process is gone; [`TargetError::Proc`] when the file is
/// not readable (another user's process without `CAP_SYS_PTRACE`).
pub fn maps(pid: i32) -> Result<Vec<Mapping>, TargetError> {
    let path = PathBuf::from(format!("/proc/{pid}/maps"));
    match std::fs::read(&path) {
        Ok(b) => parse_maps(&b).map_err(|line| TargetError::Parse {
            path,
            what: format!("line {line}"),
        }),
        Err(e) if is_gone(&e) => Err(TargetError::ProcessExited { pid }),
        Err(e) => Err(proc_err(&path, e)),
    }
}

/// Parses `/proc/PID/stat`. The command name may contain spaces and parentheses, so fields are
/// counted from the last `)`.
pub fn parse_stat(b: &[u8]) -> Option<ProcStat> {
    let open = memchr::memchr(b'(', b)?;
    let close = memchr::memrchr(b')', b)?;
    if close < open {
        return None;
    }
    let comm = String::from_utf8_lossy(&b[open + 1..close]).into_owned();
    let rest = std::str::from_utf8(&b[close + 1..]).ok()?;
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    // f[0] is field 3 (state): field N is f[N - 3].
    let num = |n: usize| f.get(n - 3).and_then(|s| s.parse::<u64>().ok());
    let state = f.first()?.chars().next()?;
    Some(ProcStat {
        comm,
        state,
        ppid: f.get(1).and_then(|s| s.parse().ok()).unwrap_or(0),
        utime: num(14).unwrap_or(0),
        stime: num(15).unwrap_or(0),
        num_threads: num(20).unwrap_or(0),
        starttime: num(22).unwrap_or(0),
        processor: num(39).and_then(|p| u32::try_from(p).ok()),
    })
}

/// Parses `/proc/PID/status` (or a task's). Unknown or malformed lines are ignored.
pub fn parse_status(b: &[u8]) -> ProcStatus {
    let mut s = ProcStatus::default();
    for line in b.split(|&c| c == b'\n') {
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let key = &line[..colon];
        let val = String::from_utf8_lossy(&line[colon + 1..]);
        let val = val.trim();
        let ints = |v: &str| -> Vec<i64> {
            v.split_ascii_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        };
        let four = |v: &str| -> [u32; 4] {
            let mut out = [0u32; 4];
            for (o, x) in out.iter_mut().zip(v.split_ascii_whitespace()) {
                *o = x.parse().unwrap_or(0);
            }
            out
        };
        let hex = |v: &str| u64::from_str_radix(v, 16).unwrap_or(0);
        match key {
            b"Name" => s.name = val.to_string(),
            b"State" => s.state = val.chars().next().unwrap_or('?'),
            b"Tgid" => s.tgid = val.parse().unwrap_or(0),
            b"TracerPid" => s.tracer_pid = val.parse().unwrap_or(0),
            b"Uid" => s.uid = four(val),
            b"Gid" => s.gid = four(val),
            b"NSpid" => s.nspid = ints(val).into_iter().map(|x| x as i32).collect(),
            b"CapPrm" => s.cap_prm = hex(val),
            b"CapEff" => s.cap_eff = hex(val),
            b"CapBnd" => s.cap_bnd = hex(val),
            b"SigPnd" => s.sig_pnd = hex(val),
            b"ShdPnd" => s.shd_pnd = hex(val),
            b"SigBlk" => s.sig_blk = hex(val),
            b"SigIgn" => s.sig_ign = hex(val),
            b"SigCgt" => s.sig_cgt = hex(val),
            b"Seccomp" => s.seccomp = val.parse().unwrap_or(0),
            b"voluntary_ctxt_switches" => s.voluntary_ctxt_switches = val.parse().unwrap_or(0),
            b"nonvoluntary_ctxt_switches" => {
                s.nonvoluntary_ctxt_switches = val.parse().unwrap_or(0)
            }
            _ => {}
        }
    }
    s
}

/// Parses `/proc/PID/task/TID/syscall`: `running` → `None`; `-1 SP PC` → not in a system call;
/// otherwise `NR ARG1..ARG6 SP PC` (numbers in hex with `0x`, the syscall number in decimal).
pub fn parse_syscall(b: &[u8]) -> Option<SyscallInfo> {
    let s = std::str::from_utf8(b).ok()?.trim();
    if s.is_empty() || s == "running" {
        return None;
    }
    let f: Vec<&str> = s.split_ascii_whitespace().collect();
    let nr: i64 = f.first()?.parse().ok()?;
    let hex = |x: &str| u64::from_str_radix(x.trim_start_matches("0x"), 16).ok();
    let mut args = [0u64; 6];
    let (sp, pc) = if nr < 0 {
        (hex(f.get(1)?)?, hex(f.get(2)?)?)
    } else {
        for (i, a) in args.iter_mut().enumerate() {
            *a = hex(f.get(1 + i)?)?;
        }
        (hex(f.get(7)?)?, hex(f.get(8)?)?)
    };
    Some(SyscallInfo { nr, args, sp, pc })
}

/// Parses `/proc/PID/task/TID/wchan`: `0` or empty → `None`.
pub fn parse_wchan(b: &[u8]) -> Option<String> {
    let s = String::from_utf8_lossy(b);
    let s = s.trim();
    (!s.is_empty() && s != "0").then(|| s.to_string())
}

/// Parses `/proc/PID/task/TID/stack`: lines like `[<0>] pipe_read+0x2f1/0x3e0`, returned without the
/// bracketed address (which the kernel zeroes anyway).
pub fn parse_kernel_stack(b: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(b)
        .lines()
        .map(|l| match l.find("] ") {
            Some(i) if l.starts_with('[') => l[i + 2..].trim().to_string(),
            _ => l.trim().to_string(),
        })
        .filter(|l| !l.is_empty())
        .collect()
}

/// Parses `/proc/PID/maps`. On a malformed line, returns its 1-based number.
pub fn parse_maps(b: &[u8]) -> Result<Vec<Mapping>, usize> {
    let mut out = Vec::new();
    for (i, line) in b.split(|&c| c == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        out.push(parse_maps_line(line).ok_or(i + 1)?);
    }
    Ok(out)
}

fn parse_maps_line(line: &[u8]) -> Option<Mapping> {
    // Splits off one space-delimited field, returning it and the rest (leading spaces kept).
    fn field(s: &[u8]) -> Option<(&[u8], &[u8])> {
        let s = trim_start(s);
        let end = memchr::memchr(b' ', s).unwrap_or(s.len());
        (end > 0).then(|| (&s[..end], &s[end..]))
    }
    fn trim_start(s: &[u8]) -> &[u8] {
        let n = s.iter().take_while(|c| **c == b' ' || **c == b'\t').count();
        &s[n..]
    }
    let hex = |s: &[u8]| u64::from_str_radix(std::str::from_utf8(s).ok()?, 16).ok();
    let (range, rest) = field(line)?;
    let (perms, rest) = field(rest)?;
    let (offset, rest) = field(rest)?;
    let (dev, rest) = field(rest)?;
    let (inode, rest) = field(rest)?;
    let dash = memchr::memchr(b'-', range)?;
    let colon = memchr::memchr(b':', dev)?;
    if perms.len() < 4 {
        return None;
    }
    let mut path = trim_start(rest);
    let mut deleted = false;
    const DELETED: &[u8] = b" (deleted)";
    if path.ends_with(DELETED) {
        path = &path[..path.len() - DELETED.len()];
        deleted = true;
    }
    Some(Mapping {
        start: hex(&range[..dash])?,
        end: hex(&range[dash + 1..])?,
        perms: Perms {
            read: perms[0] == b'r',
            write: perms[1] == b'w',
            exec: perms[2] == b'x',
            shared: perms[3] == b's',
        },
        offset: hex(offset)?,
        dev_major: u32::try_from(hex(&dev[..colon])?).ok()?,
        dev_minor: u32::try_from(hex(&dev[colon + 1..])?).ok()?,
        inode: std::str::from_utf8(inode).ok()?.parse().ok()?,
        path: (!path.is_empty()).then(|| PathBuf::from(OsStr::from_bytes(path))),
        deleted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_parens_and_spaces_in_comm() {
        let s = b"1234 (my (odd) prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 25 7 0 0 20 0 3 0 98765 1000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        let st = parse_stat(s).unwrap();
        assert_eq!(st.comm, "my (odd) prog");
        assert_eq!(st.state, 'S');
        assert_eq!(st.ppid, 1);
        assert_eq!((st.utime, st.stime), (25, 7));
        assert_eq!(st.num_threads, 3);
        assert_eq!(st.starttime, 98765);
        assert_eq!(st.processor, Some(1));
        assert!(parse_stat(b"garbage").is_none());
    }

    #[test]
    fn status_fields() {
        let s = b"Name:\tgo-app\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t42\nNgid:\t0\nPid:\t43\nPPid:\t1\nTracerPid:\t0\nUid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\nNSpid:\t4242\t7\nCapPrm:\t0000000000000000\nCapEff:\t0000000000080000\nCapBnd:\t000001ffffffffff\nSeccomp:\t2\nvoluntary_ctxt_switches:\t150\nnonvoluntary_ctxt_switches:\t545\nSigQ:\t0/127635\nSigPnd:\t0000000000400000\nShdPnd:\t0000000000000200\nSigBlk:\t0000000000400001\nSigIgn:\t0000000000001000\nSigCgt:\tfffffffe7fc1feff\n";
        let st = parse_status(s);
        assert_eq!(st.name, "go-app");
        assert_eq!(st.state, 'S');
        assert_eq!(st.tgid, 42);
        assert_eq!(st.uid, [1000; 4]);
        assert_eq!(st.gid, [100; 4]);
        assert_eq!(st.nspid, vec![4242, 7]);
        assert_eq!(st.cap_eff, 1 << 19);
        assert_eq!(st.cap_bnd, 0x1ff_ffff_ffff);
        assert_eq!(st.seccomp, 2);
        assert_eq!(st.voluntary_ctxt_switches, 150);
        assert_eq!(st.nonvoluntary_ctxt_switches, 545);
        // SIGURG (23) pending and blocked, SIGHUP (1) blocked, SIGPIPE (13) ignored, SIGUSR1 (10)
        // pending process-wide.
        assert_eq!(st.sig_pnd, 1 << 22);
        assert_eq!(st.sig_blk, (1 << 22) | 1);
        assert_eq!(st.shd_pnd, 1 << 9);
        assert_eq!(st.sig_ign, 1 << 12);
        assert_eq!(st.sig_cgt, 0xfffffffe7fc1feff);
    }

    #[test]
    fn syscall_forms() {
        assert_eq!(parse_syscall(b"running\n"), None);
        let s =
            parse_syscall(b"0 0x3 0x7ffd1000 0x7 0x0 0x0 0x0 0x7ffd0ff8 0x7f12345678\n").unwrap();
        assert_eq!(s.nr, 0);
        assert_eq!(s.args, [3, 0x7ffd1000, 7, 0, 0, 0]);
        assert_eq!((s.sp, s.pc), (0x7ffd0ff8, 0x7f12345678));
        assert!(s.in_syscall());
        let s = parse_syscall(b"-1 0x7ffd0ff8 0x401000\n").unwrap();
        assert_eq!(s.nr, -1);
        assert_eq!(s.args, [0; 6]);
        assert_eq!((s.sp, s.pc), (0x7ffd0ff8, 0x401000));
        assert!(!s.in_syscall());
        assert_eq!(parse_syscall(b"0 0x1\n"), None);
    }

    #[test]
    fn wchan_and_stack() {
        assert_eq!(parse_wchan(b"0"), None);
        assert_eq!(parse_wchan(b""), None);
        assert_eq!(parse_wchan(b"pipe_read"), Some("pipe_read".into()));
        assert_eq!(
            parse_kernel_stack(b"[<0>] pipe_read+0x2f1/0x3e0\n[<0>] vfs_read+0x2b6/0x2f0\n"),
            vec!["pipe_read+0x2f1/0x3e0", "vfs_read+0x2b6/0x2f0"]
        );
    }

    #[test]
    fn maps_lines() {
        let m = parse_maps(
            b"55d4c5a00000-55d4c5a02000 r--p 00000000 08:01 1234                       /usr/bin/my prog\n\
              7f0000000000-7f0000021000 rw-p 00000000 00:00 0 \n\
              7ffd1000-7ffd2000 rw-p 00000000 00:00 0                          [stack]\n\
              400000-401000 r-xs 00001000 fd:1a 99 /tmp/x (deleted)\n",
        )
        .unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].start, 0x55d4c5a00000);
        assert_eq!(m[0].len(), 0x2000);
        assert_eq!(m[0].perms.to_string(), "r--p");
        assert_eq!(m[0].inode, 1234);
        assert_eq!(m[0].path.as_deref(), Some(Path::new("/usr/bin/my prog")));
        assert_eq!(m[1].path, None);
        assert_eq!(m[2].path.as_deref(), Some(Path::new("[stack]")));
        assert!(m[3].deleted && m[3].perms.shared && m[3].perms.exec);
        assert_eq!(
            (m[3].dev_major, m[3].dev_minor, m[3].offset),
            (0xfd, 0x1a, 0x1000)
        );
        assert_eq!(parse_maps(b"zzz\n"), Err(1));
    }

    #[test]
    fn ticks() {
        let hz = clock_ticks_per_second();
        assert_eq!(
            ticks_to_duration(hz * 3 + hz / 2),
            Duration::from_millis(3500)
        );
    }

    #[test]
    fn own_threads_are_listed() {
        let pid = std::process::id() as i32;
        let t = threads(pid).unwrap();
        assert!(t.iter().any(|t| t.tid == pid));
        assert!(threads(i32::MAX).is_err());
    }
}
