//! Why a process cannot be read, explained with what to run.
//!
//! The kernel answers every refusal with the same `EPERM`. [`AccessContext::gather`] collects what
//! the kernel's decision depends on (`kernel.yama.ptrace_scope`, uids and gids, capabilities,
//! dumpability, ancestry), and [`AccessContext::diagnose`] replays the kernel's checks
//! (`__ptrace_may_access`, `cap_ptrace_access_check`, Yama) on it. The context is plain data, so the
//! messages are tested on synthetic contexts.

use std::fmt;
use std::path::PathBuf;

use crate::error::MemError;
use crate::procfs;

/// Bit of `CAP_SYS_PTRACE` in the capability masks of `/proc/PID/status`.
pub const CAP_SYS_PTRACE_BIT: u32 = 19;

const FIX_ROOT: &str =
    "run gostall as root (`sudo gostall ...`) or with CAP_SYS_PTRACE (`sudo setcap \
                        cap_sys_ptrace=ep $(command -v gostall)`; in a container: `docker run \
                        --cap-add=SYS_PTRACE ...`)";

/// A process could not be opened for reading.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// No process has this pid in our PID namespace.
    #[error("no such process: {}", render_missing(*pid, hint.as_deref()))]
    NoSuchProcess {
        /// The pid asked for.
        pid: i32,
        /// Why it may not be visible (gostall runs inside a container), when that applies.
        hint: Option<String>,
    },
    /// The process has exited and waits for its parent to reap it: it has no memory any more.
    #[error("process {pid} has exited: it is a zombie that only waits for its parent (pid {ppid}) to reap it, so there is no memory left to read; run gostall while the program is still running")]
    Zombie {
        /// The pid asked for.
        pid: i32,
        /// Its parent.
        ppid: i32,
    },
    /// The process exited while it was being opened (its memory is already gone).
    #[error("process {pid} exited while gostall was reading it; run gostall while the program is still running")]
    Exited {
        /// The pid asked for.
        pid: i32,
    },
    /// The pid is a thread of another process.
    #[error(
        "pid {pid} is a thread of process {tgid}, not a process: run gostall with --pid {tgid}"
    )]
    NotAProcess {
        /// The pid asked for.
        pid: i32,
        /// The process it belongs to.
        tgid: i32,
    },
    /// gostall cannot inspect itself this way.
    #[error("process {pid} is gostall itself: give the pid of the Go program to read")]
    IsSelf {
        /// Our pid.
        pid: i32,
    },
    /// The kernel refused access; the reasons say why and what to run.
    #[error("{}", render_denied(*pid, context, reasons))]
    PermissionDenied {
        /// The pid asked for.
        pid: i32,
        /// What we found out about both processes.
        context: Box<AccessContext>,
        /// The reasons, most important first (never empty).
        reasons: Vec<DenyReason>,
    },
    /// A kernel thread: it has no user-space memory (and so no Go runtime).
    #[error("process {pid} ({name}) is a kernel thread, not a Go program: it has no user-space memory to read")]
    KernelThread {
        /// The pid asked for.
        pid: i32,
        /// Its name (`comm`).
        name: String,
    },
    /// The process exists and is accessible, but a test read of its memory failed.
    #[error("memory of process {pid} is not readable: {source}")]
    Unreadable {
        /// The pid asked for.
        pid: i32,
        /// The failed read.
        source: MemError,
    },
    /// A `/proc` file could not be read for another reason.
    #[error("process {pid}: reading {}: {source}", path.display())]
    Proc {
        /// The pid asked for.
        pid: i32,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// What the kernel's ptrace access decision depends on, for one tracer and one target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessContext {
    /// The target.
    pub pid: i32,
    /// `kernel.yama.ptrace_scope`, `None` without Yama.
    pub ptrace_scope: Option<u32>,
    /// Our real, effective, saved and filesystem uids.
    pub our_uid: [u32; 4],
    /// Our real, effective, saved and filesystem gids.
    pub our_gid: [u32; 4],
    /// Our effective capabilities (`CapEff`).
    pub our_cap_eff: u64,
    /// Our permitted capabilities (`CapPrm`).
    pub our_cap_prm: u64,
    /// Our capability bounding set (`CapBnd`).
    pub our_cap_bnd: u64,
    /// The target's uids, when its status was readable.
    pub target_uid: Option<[u32; 4]>,
    /// The target's gids, when its status was readable.
    pub target_gid: Option<[u32; 4]>,
    /// The target's permitted capabilities.
    pub target_cap_prm: Option<u64>,
    /// Whether the target is dumpable; inferred from the owner of `/proc/PID`, which the kernel sets
    /// to root for non-dumpable processes.
    pub target_dumpable: Option<bool>,
    /// Whether the target descends from us (Yama scope 1 allows that).
    pub target_is_descendant: bool,
    /// Whether we seem to run inside a container.
    pub in_container: bool,
}

/// One reason the kernel refuses access, with the remedy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyReason {
    /// Yama restricts ptrace (`kernel.yama.ptrace_scope` = `scope`, 1 to 3).
    Yama {
        /// The setting.
        scope: u32,
    },
    /// The target runs as another user (one of its real, effective or saved uids differs from our
    /// real uid) and we lack `CAP_SYS_PTRACE`.
    OtherUser {
        /// Our real uid.
        ours: u32,
        /// The target's first uid that differs.
        theirs: u32,
    },
    /// Same as [`DenyReason::OtherUser`] for groups (a setgid program).
    OtherGroup {
        /// Our real gid.
        ours: u32,
        /// The target's first gid that differs.
        theirs: u32,
    },
    /// The target is not dumpable (setuid/setgid, or `prctl(PR_SET_DUMPABLE, 0)`).
    NotDumpable,
    /// The target has capabilities we do not have.
    MoreCapabilities {
        /// The target's permitted set.
        theirs: u64,
        /// Our permitted set.
        ours: u64,
    },
    /// `CAP_SYS_PTRACE` is not in our bounding set, so even root cannot get it: a container started
    /// without `--cap-add=SYS_PTRACE`.
    NoPtraceInBoundingSet,
    /// None of the above explains the refusal.
    Unknown,
}

impl AccessContext {
    /// Collects the context for target `pid` from `/proc`. Missing pieces stay `None`.
    pub fn gather(pid: i32) -> Self {
        let me = procfs::status(std::process::id() as i32).unwrap_or_default();
        let target = procfs::status(pid).ok();
        let owner = std::fs::metadata(format!("/proc/{pid}")).ok();
        let target_dumpable = match (&target, &owner) {
            (Some(t), Some(o)) => {
                use std::os::unix::fs::MetadataExt;
                // A non-dumpable process's /proc directory belongs to root.
                Some(!(o.uid() == 0 && t.uid[1] != 0))
            }
            _ => None,
        };
        AccessContext {
            pid,
            ptrace_scope: crate::ptrace_scope(),
            our_uid: me.uid,
            our_gid: me.gid,
            our_cap_eff: me.cap_eff,
            our_cap_prm: me.cap_prm,
            our_cap_bnd: me.cap_bnd,
            target_uid: target.as_ref().map(|t| t.uid),
            target_gid: target.as_ref().map(|t| t.gid),
            target_cap_prm: target.as_ref().map(|t| t.cap_prm),
            target_dumpable,
            target_is_descendant: is_descendant(pid, std::process::id() as i32),
            in_container: in_container(),
        }
    }

    /// Whether we hold `CAP_SYS_PTRACE`.
    pub fn has_cap_sys_ptrace(&self) -> bool {
        self.our_cap_eff & (1 << CAP_SYS_PTRACE_BIT) != 0
    }

    /// The reasons the kernel refuses access, most important first; [`DenyReason::Unknown`] alone
    /// when nothing here explains it.
    pub fn diagnose(&self) -> Vec<DenyReason> {
        let cap = self.has_cap_sys_ptrace();
        let mut r = Vec::new();
        match self.ptrace_scope {
            Some(3) => r.push(DenyReason::Yama { scope: 3 }),
            Some(2) if !cap => r.push(DenyReason::Yama { scope: 2 }),
            Some(1) if !cap && !self.target_is_descendant => r.push(DenyReason::Yama { scope: 1 }),
            _ => {}
        }
        if !cap {
            let ours = self.our_uid[0];
            if let Some(u) = self.target_uid {
                if let Some(&theirs) = u[..3].iter().find(|&&x| x != ours) {
                    r.push(DenyReason::OtherUser { ours, theirs });
                }
            }
            let ours = self.our_gid[0];
            if let Some(g) = self.target_gid {
                if let Some(&theirs) = g[..3].iter().find(|&&x| x != ours) {
                    r.push(DenyReason::OtherGroup { ours, theirs });
                }
            }
            if self.target_dumpable == Some(false) {
                r.push(DenyReason::NotDumpable);
            }
            if let Some(theirs) = self.target_cap_prm {
                if theirs & !self.our_cap_prm != 0 {
                    r.push(DenyReason::MoreCapabilities {
                        theirs,
                        ours: self.our_cap_prm,
                    });
                }
            }
            // Only worth saying when the capability is what is missing.
            if !r.is_empty()
                && !matches!(r[..], [DenyReason::Yama { scope: 3 }])
                && self.our_cap_bnd & (1 << CAP_SYS_PTRACE_BIT) == 0
            {
                r.push(DenyReason::NoPtraceInBoundingSet);
            }
        }
        if r.is_empty() {
            r.push(DenyReason::Unknown);
        }
        r
    }
}

impl DenyReason {
    /// What would lift this restriction, as alternatives (commands in backquotes).
    pub fn fixes(&self) -> Vec<String> {
        let root = FIX_ROOT.to_string();
        match self {
            DenyReason::Yama { scope: 1 } => vec![
                "`sudo sysctl kernel.yama.ptrace_scope=0` (until reboot)".into(),
                root,
            ],
            DenyReason::Yama { scope: 2 } => {
                vec![root, "`sudo sysctl kernel.yama.ptrace_scope=0`".into()]
            }
            DenyReason::Yama { .. } => vec![
                "set a lower kernel.yama.ptrace_scope in /etc/sysctl.d/ and reboot".into(),
                "meanwhile, capture a goroutine dump instead (`kill -QUIT PID`, or \
                 /debug/pprof/goroutine?debug=2)"
                    .into(),
            ],
            DenyReason::OtherUser { theirs, .. } if *theirs != 0 => vec![
                format!(
                    "run gostall as the target's user (`sudo -u {} gostall ...`)",
                    user_name(*theirs).unwrap_or_else(|| format!("'#{theirs}'"))
                ),
                root,
            ],
            DenyReason::OtherUser { .. }
            | DenyReason::OtherGroup { .. }
            | DenyReason::NotDumpable
            | DenyReason::MoreCapabilities { .. } => vec![root],
            DenyReason::NoPtraceInBoundingSet => vec![
                "start the container with `--cap-add=SYS_PTRACE` (Docker, Podman), or add \
                 SYS_PTRACE to the pod's securityContext.capabilities.add (Kubernetes)"
                    .into(),
            ],
            DenyReason::Unknown => vec![
                "check the audit log (`journalctl -k`, `ausearch -m avc`) for a denial".into(),
                "in Docker, try `--cap-add=SYS_PTRACE --security-opt seccomp=unconfined`".into(),
            ],
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyReason::Yama { scope: 1 } => write!(
                f,
                "kernel.yama.ptrace_scope is 1: a process may only read the memory of its own \
                 descendants unless it has CAP_SYS_PTRACE, and the target was not started by gostall"
            ),
            DenyReason::Yama { scope: 2 } => write!(
                f,
                "kernel.yama.ptrace_scope is 2: only processes with CAP_SYS_PTRACE may read another \
                 process's memory"
            ),
            DenyReason::Yama { scope: 3 } => write!(
                f,
                "kernel.yama.ptrace_scope is 3: reading another process's memory is disabled for \
                 everyone, root included, and the setting cannot be lowered until reboot"
            ),
            DenyReason::Yama { scope } => {
                write!(f, "kernel.yama.ptrace_scope is {scope} (unknown value)")
            }
            DenyReason::OtherUser { ours, theirs } => write!(
                f,
                "the target runs as {}, gostall as {}: without CAP_SYS_PTRACE a process may only \
                 read processes of its own user",
                user_label(*theirs),
                user_label(*ours),
            ),
            DenyReason::OtherGroup { ours, theirs } => write!(
                f,
                "the target runs with group id {theirs}, gostall with {ours}: without \
                 CAP_SYS_PTRACE they must match"
            ),
            DenyReason::NotDumpable => write!(
                f,
                "the target is not dumpable (a setuid/setgid program, changed credentials, or \
                 prctl(PR_SET_DUMPABLE, 0)): only a process with CAP_SYS_PTRACE may read it"
            ),
            DenyReason::MoreCapabilities { theirs, ours } => write!(
                f,
                "the target holds capabilities gostall lacks (CapPrm {theirs:016x}, ours \
                 {ours:016x}): the kernel then requires CAP_SYS_PTRACE"
            ),
            DenyReason::NoPtraceInBoundingSet => write!(
                f,
                "CAP_SYS_PTRACE is not even in gostall's capability bounding set, as in a container \
                 started with the default capabilities: being root inside it is not enough"
            ),
            DenyReason::Unknown => write!(
                f,
                "uids, capabilities and ptrace_scope all allow access, so a security module \
                 (SELinux, AppArmor) or a seccomp profile probably denies it"
            ),
        }
    }
}

fn render_denied(pid: i32, ctx: &AccessContext, reasons: &[DenyReason]) -> String {
    let mut s = format!(
        "cannot read the memory of process {pid}: permission denied (gostall runs as {}, {} \
         CAP_SYS_PTRACE, CapEff {:016x})",
        user_label(ctx.our_uid[0]),
        if ctx.has_cap_sys_ptrace() {
            "with"
        } else {
            "without"
        },
        ctx.our_cap_eff
    );
    for r in reasons {
        s.push_str("\n  - ");
        s.push_str(&r.to_string());
    }
    let mut fixes: Vec<String> = Vec::new();
    for f in reasons.iter().flat_map(DenyReason::fixes) {
        if !fixes.contains(&f) {
            fixes.push(f);
        }
    }
    if !fixes.is_empty() {
        s.push_str("\nto fix it, any of:");
        for f in fixes {
            s.push_str("\n  - ");
            s.push_str(&f);
        }
    }
    s
}

fn render_missing(pid: i32, hint: Option<&str>) -> String {
    let mut s = format!(
        "there is no process with pid {pid} (it may have exited); find the Go program's pid with \
         `pgrep -a NAME` or `ps -e`"
    );
    if let Some(h) = hint {
        s.push_str(". ");
        s.push_str(h);
    }
    s
}

fn user_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

fn user_label(uid: u32) -> String {
    match user_name(uid) {
        Some(n) => format!("uid {uid} ({n})"),
        None => format!("uid {uid}"),
    }
}

/// Whether `pid` descends from `ancestor`, following parent pids in `/proc`.
fn is_descendant(pid: i32, ancestor: i32) -> bool {
    let mut p = pid;
    for _ in 0..4096 {
        if p == ancestor {
            return p != pid;
        }
        match procfs::stat(p) {
            Ok(s) if s.ppid > 0 => p = s.ppid,
            _ => return false,
        }
    }
    false
}

/// Whether we seem to run in a container: a container runtime's marker file, the `container`
/// variable (systemd-nspawn, Podman), or a `/proc` mounted from an outer PID namespace.
pub(crate) fn in_container() -> bool {
    std::path::Path::new("/.dockerenv").exists()
        || std::path::Path::new("/run/.containerenv").exists()
        || std::env::var_os("container").is_some()
        || procfs::status(std::process::id() as i32).is_ok_and(|s| s.nspid.len() > 1)
}

/// The hint for a pid that is not visible.
pub(crate) fn not_visible_hint() -> Option<String> {
    in_container().then(|| {
        "gostall seems to run inside a container, which sees only the processes of its own PID \
         namespace: if the program runs outside it, run gostall on the host, or share the \
         program's PID namespace (`docker run --pid=host` or `--pid=container:NAME`, Kubernetes \
         `shareProcessNamespace: true`)"
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_CAPS: u64 = 0x1ff_ffff_ffff;

    fn user() -> AccessContext {
        AccessContext {
            pid: 4242,
            ptrace_scope: Some(1),
            our_uid: [1000; 4],
            our_gid: [1000; 4],
            our_cap_bnd: ALL_CAPS,
            target_uid: Some([1000; 4]),
            target_gid: Some([1000; 4]),
            target_cap_prm: Some(0),
            target_dumpable: Some(true),
            ..Default::default()
        }
    }

    fn message(ctx: AccessContext) -> String {
        let reasons = ctx.diagnose();
        AccessError::PermissionDenied {
            pid: ctx.pid,
            context: Box::new(ctx),
            reasons,
        }
        .to_string()
    }

    #[test]
    fn yama_scope_1_same_user_not_descendant() {
        let ctx = user();
        assert_eq!(ctx.diagnose(), vec![DenyReason::Yama { scope: 1 }]);
        let m = message(ctx);
        assert!(
            m.starts_with("cannot read the memory of process 4242: permission denied"),
            "{m}"
        );
        assert!(m.contains("without CAP_SYS_PTRACE"), "{m}");
        assert!(m.contains("ptrace_scope is 1"), "{m}");
        assert!(m.contains("sudo sysctl kernel.yama.ptrace_scope=0"), "{m}");
        assert!(m.contains("--cap-add=SYS_PTRACE"), "{m}");
    }

    #[test]
    fn yama_scope_1_allows_descendants_and_cap() {
        let mut ctx = user();
        ctx.target_is_descendant = true;
        assert_eq!(ctx.diagnose(), vec![DenyReason::Unknown]);
        let mut ctx = user();
        ctx.our_cap_eff = 1 << CAP_SYS_PTRACE_BIT;
        ctx.target_uid = Some([0; 4]);
        assert_eq!(ctx.diagnose(), vec![DenyReason::Unknown]);
    }

    #[test]
    fn yama_scope_2_and_3() {
        let mut ctx = user();
        ctx.ptrace_scope = Some(2);
        let m = message(ctx.clone());
        assert!(
            m.contains("ptrace_scope is 2: only processes with CAP_SYS_PTRACE"),
            "{m}"
        );
        ctx.our_cap_eff = ALL_CAPS;
        ctx.ptrace_scope = Some(3);
        assert_eq!(ctx.diagnose(), vec![DenyReason::Yama { scope: 3 }]);
        let m = message(ctx);
        assert!(m.contains("root included"), "{m}");
        assert!(m.contains("with CAP_SYS_PTRACE"), "{m}");
    }

    #[test]
    fn other_user_names_both_uids() {
        let mut ctx = user();
        ctx.ptrace_scope = Some(0);
        ctx.our_uid = [65534; 4];
        ctx.target_uid = Some([0; 4]);
        ctx.target_cap_prm = Some(ALL_CAPS);
        ctx.our_gid = [65534; 4];
        ctx.target_gid = Some([0; 4]);
        assert_eq!(
            ctx.diagnose(),
            vec![
                DenyReason::OtherUser {
                    ours: 65534,
                    theirs: 0
                },
                DenyReason::OtherGroup {
                    ours: 65534,
                    theirs: 0
                },
                DenyReason::MoreCapabilities {
                    theirs: ALL_CAPS,
                    ours: 0
                },
            ]
        );
        let m = message(ctx);
        assert!(m.contains("the target runs as uid 0 (root)"), "{m}");
        assert!(m.contains("gostall as uid 65534"), "{m}");
        assert!(!m.contains("sudo -u"), "{m}");
        assert!(
            m.contains("to fix it, any of:\n  - run gostall as root (`sudo gostall ...`)"),
            "{m}"
        );
        assert_eq!(
            m.matches("sudo gostall").count(),
            1,
            "fixes are listed once: {m}"
        );
        let mut ctx = user();
        ctx.ptrace_scope = None;
        ctx.target_uid = Some([1001; 4]);
        let m = message(ctx);
        assert!(
            m.contains("`sudo -u '#1001' gostall ...`") || m.contains("`sudo -u "),
            "{m}"
        );
    }

    #[test]
    fn setuid_target_is_other_user_and_not_dumpable() {
        let mut ctx = user();
        ctx.ptrace_scope = None;
        ctx.target_uid = Some([1000, 0, 0, 0]);
        ctx.target_dumpable = Some(false);
        assert_eq!(
            ctx.diagnose(),
            vec![
                DenyReason::OtherUser {
                    ours: 1000,
                    theirs: 0
                },
                DenyReason::NotDumpable
            ]
        );
    }

    #[test]
    fn container_without_cap_in_bounding_set() {
        let mut ctx = user();
        ctx.ptrace_scope = Some(2);
        ctx.our_uid = [0; 4];
        ctx.target_uid = Some([0; 4]);
        ctx.our_cap_bnd = ALL_CAPS & !(1 << CAP_SYS_PTRACE_BIT);
        assert_eq!(
            ctx.diagnose(),
            vec![
                DenyReason::Yama { scope: 2 },
                DenyReason::NoPtraceInBoundingSet
            ]
        );
        assert!(message(ctx).contains("bounding set"));
    }

    #[test]
    fn unknown_points_at_lsm() {
        let mut ctx = user();
        ctx.ptrace_scope = Some(0);
        let m = message(ctx);
        assert!(m.contains("security module"), "{m}");
    }

    #[test]
    fn other_errors_read_well() {
        assert_eq!(
            AccessError::Zombie { pid: 5, ppid: 1 }.to_string(),
            "process 5 has exited: it is a zombie that only waits for its parent (pid 1) to reap \
             it, so there is no memory left to read; run gostall while the program is still running"
        );
        assert_eq!(
            AccessError::NoSuchProcess { pid: 7, hint: None }.to_string(),
            "no such process: there is no process with pid 7 (it may have exited); find the Go \
             program's pid with `pgrep -a NAME` or `ps -e`"
        );
        assert_eq!(
            AccessError::NoSuchProcess {
                pid: 7,
                hint: Some("x".into())
            }
            .to_string(),
            "no such process: there is no process with pid 7 (it may have exited); find the Go \
             program's pid with `pgrep -a NAME` or `ps -e`. x"
        );
        assert_eq!(
            AccessError::NotAProcess { pid: 8, tgid: 6 }.to_string(),
            "pid 8 is a thread of process 6, not a process: run gostall with --pid 6"
        );
        assert_eq!(
            AccessError::KernelThread {
                pid: 2,
                name: "kthreadd".into()
            }
            .to_string(),
            "process 2 (kthreadd) is a kernel thread, not a Go program: it has no user-space \
             memory to read"
        );
    }
}
