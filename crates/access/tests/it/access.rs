//! Attach errors: missing, zombie, thread ids, and another user's process (a helper run as
//! `nobody` through `setpriv`).

use std::io::BufReader;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use gostall_access::{AccessError, LiveProcess};

use crate::util::{helper_at, helper_line, wait_until, Target};

#[test]
fn no_such_process() {
    let e = LiveProcess::attach(i32::MAX).unwrap_err();
    assert!(matches!(
        e,
        AccessError::NoSuchProcess { pid: i32::MAX, .. }
    ));
    assert!(e.to_string().starts_with(&format!(
        "no such process: there is no process with pid {}",
        i32::MAX
    )));
}

#[test]
fn zombie() {
    let mut t = Target::spawn(0);
    t.child.kill().unwrap();
    wait_until(Duration::from_secs(5), || {
        gostall_access::procfs::stat(t.pid).is_ok_and(|s| s.state == 'Z')
    });
    let e = LiveProcess::attach(t.pid).unwrap_err();
    assert!(
        matches!(e, AccessError::Zombie { pid, .. } if pid == t.pid),
        "{e}"
    );
    assert!(e.to_string().contains("zombie"));
}

#[test]
fn thread_id_is_not_a_process() {
    let t = Target::spawn(0);
    let e = LiveProcess::attach(t.reader).unwrap_err();
    assert!(
        matches!(e, AccessError::NotAProcess { tgid, .. } if tgid == t.pid),
        "{e}"
    );
}

#[test]
fn self_is_refused() {
    assert!(matches!(
        LiveProcess::attach(std::process::id() as i32),
        Err(AccessError::IsSelf { .. })
    ));
}

/// A copy of this test binary that user `nobody` can execute, removed on drop.
struct NobodyCopy(PathBuf);

impl NobodyCopy {
    fn new() -> Option<Self> {
        let dir =
            std::env::temp_dir().join(format!("gostall-access-nobody-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).ok()?;
        let exe = dir.join("tests");
        std::fs::copy(std::env::current_exe().ok()?, &exe).ok()?;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).ok()?;
        Some(NobodyCopy(dir))
    }

    /// The helper in `mode`, run as uid/gid 65534 without capabilities.
    fn helper(&self, mode: &str) -> Command {
        let inner = helper_at(&self.0.join("tests"), mode);
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(inner.get_program())
        .args(inner.get_args())
        .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped());
        c
    }
}

impl Drop for NobodyCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn can_switch_to_nobody() -> bool {
    nix::unistd::geteuid().is_root()
        && Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "true"])
            .status()
            .is_ok_and(|s| s.success())
}

#[test]
fn another_users_process_explains_why() {
    if !can_switch_to_nobody() {
        eprintln!("skipping: not root or no setpriv; the messages are unit-tested in access.rs");
        return;
    }
    let Some(copy) = NobodyCopy::new() else {
        eprintln!("skipping: cannot copy the test binary for nobody");
        return;
    };
    // Target runs as root, the helper as nobody.
    let t = Target::spawn(0);
    let mut h = copy.helper(&format!("attach:{}", t.pid)).spawn().unwrap();
    let mut out = BufReader::new(h.stdout.take().unwrap());
    assert_eq!(helper_line(&mut out), "uid=65534 capeff=0");
    let attach = helper_line(&mut out);
    let freeze = helper_line(&mut out);
    assert!(h.wait().unwrap().success());
    eprintln!("{}", attach.replace("\\n", "\n"));
    eprintln!("{}", freeze.replace("\\n", "\n"));
    let want = [
        format!(
            "cannot read the memory of process {}: permission denied",
            t.pid
        ),
        "gostall runs as uid 65534".into(),
        "without CAP_SYS_PTRACE".into(),
        "the target runs as uid 0 (root), gostall as uid 65534".into(),
        "sudo gostall".into(),
    ];
    for w in &want {
        assert!(
            attach.contains(w.as_str()),
            "attach message lacks {w:?}: {attach}"
        );
        assert!(
            freeze.contains(w.as_str()),
            "freeze message lacks {w:?}: {freeze}"
        );
    }
    if let Some(scope) = gostall_access::ptrace_scope() {
        if scope >= 1 {
            assert!(attach.contains("ptrace_scope"), "{attach}");
        }
    }
    // The same user can read its own process without privileges (when Yama allows it).
    if gostall_access::ptrace_scope().unwrap_or(0) == 0 {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(crate::util::fixture())
        .arg("0");
        // The fixture lives under the target directory; nobody must be able to execute it.
        if std::fs::metadata(crate::util::fixture())
            .is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
        {
            let own = Target::spawn_cmd(cmd, 2);
            let mut h = copy.helper(&format!("attach:{}", own.pid)).spawn().unwrap();
            let mut out = BufReader::new(h.stdout.take().unwrap());
            helper_line(&mut out);
            assert_eq!(helper_line(&mut out), "attach ok");
            assert_eq!(helper_line(&mut out), "freeze ok");
            assert!(h.wait().unwrap().success());
        }
    }
}
