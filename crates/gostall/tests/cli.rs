//! The command line as a user meets it: inputs from files and stdin, several inputs combined,
//! exit codes of --fail-on, clear errors for bad input, and the demo — live where the kernel lets
//! gostall read its own child, recorded where it refuses.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn demo(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("demo")
        .join(name)
}

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gostall"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gostall");
    if let Some(data) = stdin {
        let mut w = child.stdin.take().unwrap();
        w.write_all(data).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn reads_stdin_and_files_alike() {
    let path = demo("mutex-slow-call.sigquit.txt");
    let bytes = std::fs::read(&path).unwrap();
    let from_file = json(&run(
        &["diagnose", "--format", "json", path.to_str().unwrap()],
        None,
    ));
    let from_stdin = json(&run(&["diagnose", "--format", "json", "-"], Some(&bytes)));
    assert_eq!(from_file["findings"], from_stdin["findings"]);
    assert_eq!(from_file["findings"][0]["kind"], "lock_contention");
}

#[test]
fn a_dump_and_a_profile_combine() {
    let d = demo("abba-deadlock.debug2.txt");
    let m = demo("abba-deadlock.mutex.pb.gz");
    let doc = json(&run(
        &[
            "diagnose",
            "--format",
            "json",
            d.to_str().unwrap(),
            m.to_str().unwrap(),
        ],
        None,
    ));
    let kinds: Vec<&str> = doc["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["goroutine_dump", "pprof_mutex"]);
    assert_eq!(doc["findings"][0]["kind"], "deadlock");
    assert_eq!(doc["findings"][0]["severity"], "critical");
}

#[test]
fn fail_on_sets_the_exit_code() {
    let sick = demo("abba-deadlock.debug2.txt");
    let healthy = demo("control-idle-server.sigquit.txt");
    let code = |args: &[&str]| run(args, None).status.code().unwrap();
    assert_eq!(
        code(&["diagnose", "--fail-on", "critical", sick.to_str().unwrap()]),
        1
    );
    assert_eq!(
        code(&["diagnose", "--fail-on", "warning", sick.to_str().unwrap()]),
        1
    );
    assert_eq!(
        code(&[
            "diagnose",
            "--fail-on",
            "warning",
            healthy.to_str().unwrap()
        ]),
        0
    );
    assert_eq!(code(&["diagnose", sick.to_str().unwrap()]), 0);
}

#[test]
fn bad_input_gets_a_clear_error_and_exit_code_2() {
    let dir = std::env::temp_dir().join(format!("gostall-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.join("notes.txt");
    std::fs::write(&text, b"just some log lines\nnothing to see\n").unwrap();
    let binary = dir.join("blob.bin");
    std::fs::write(
        &binary,
        (0..4096u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    for (file, want) in [
        (empty.to_str().unwrap(), "is empty"),
        (text.to_str().unwrap(), "is not a Go goroutine dump"),
        (binary.to_str().unwrap(), "is not a Go goroutine dump"),
        ("/nonexistent/dump.txt", "cannot read"),
    ] {
        let out = run(&["diagnose", file], None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {err}");
        assert!(err.contains(want), "{file}: {err}");
        assert!(!err.contains("panicked"), "{file}: {err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn output_to_a_pipe_has_no_colour_and_the_demo_runs() {
    let out = run(&["demo"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains('\u{1b}'), "escape codes in piped output");
    assert!(text.contains("lock_contention") && text.contains("deadlock"));
    assert!(
        text.contains("no problems found"),
        "the healthy control is reported healthy"
    );
    let forced = run(&["demo", "--color", "always", "--findings-only"], None);
    assert!(String::from_utf8_lossy(&forced.stdout).contains('\u{1b}'));
}

/// Every JSON document of a `demo --format json` run (one per demo, back to back).
fn json_stream(out: &Output) -> Vec<serde_json::Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<serde_json::Value>()
        .map(|d| d.expect("a JSON document"))
        .collect()
}

fn kind_at(doc: &serde_json::Value) -> Vec<String> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} @ {}",
                f["kind"].as_str().unwrap(),
                f["location"]["function"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

/// The demo starts its bundled programs and reads them live (this needs a kernel that lets a
/// process read its own child: true for an ordinary user unless `kernel.yama.ptrace_scope` is 3 or
/// a container's seccomp profile forbids it), then shows the recorded artifacts.
#[test]
fn the_demo_diagnoses_its_bundled_programs_live() {
    let out = run(&["demo", "--color", "never", "--findings-only"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("live demo not possible"), "{text}");
    let headings: Vec<&str> = text.lines().filter(|l| l.starts_with("━━ demo")).collect();
    assert_eq!(headings.len(), 4, "{text}");
    assert!(headings[0].contains("mutex-slow-call") && headings[0].contains("(live, pid "));
    assert!(headings[1].contains("abba-deadlock") && headings[1].contains("(live, pid "));
    assert!(headings[2].contains("abandoned-senders") && headings[2].contains("dump"));
    assert!(headings[3].contains("control-idle-server") && headings[3].contains("dump"));
    assert!(text.contains("(live process)"), "{text}");
    assert!(text.contains("no problems found"), "{text}");

    let docs = json_stream(&run(&["demo", "--format", "json", "--no-goroutines"], None));
    assert_eq!(docs.len(), 4);
    for (doc, want) in docs[..2].iter().zip([
        ("mutex-slow-call", "lock_contention @ main.(*Cache).Get"),
        ("abba-deadlock", "deadlock @ main.transfer"),
    ]) {
        assert_eq!(doc["sources"][0]["kind"], "live_process", "{doc}");
        let exe = doc["live"]["exe"].as_str().unwrap();
        assert!(exe.ends_with(&format!("/{}", want.0)), "{exe}");
        assert!(doc["threads"].as_array().is_some_and(|t| !t.is_empty()));
        assert_eq!(kind_at(doc).first().map(String::as_str), Some(want.1));
        // The program and its private directory are gone.
        let pid = doc["live"]["pid"].as_i64().unwrap();
        let running = std::fs::read_link(format!("/proc/{pid}/exe"))
            .is_ok_and(|p| p.to_string_lossy().starts_with(exe));
        assert!(!running, "pid {pid} still runs {exe}");
        let dir = std::path::Path::new(exe).parent().unwrap();
        assert!(!dir.exists(), "{} was not removed", dir.display());
    }
    assert_eq!(
        kind_at(&docs[2]),
        ["goroutine_leak @ main.fetchWithTimeout.func1"]
    );
    assert!(kind_at(&docs[3]).is_empty());
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// A scratch directory anyone may enter, holding a copy of gostall (the target directory may not
/// be reachable by other users) and an empty world-writable `tmp` for the demo's TMPDIR.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("gostall-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
        std::fs::copy(env!("CARGO_BIN_EXE_gostall"), dir.join("gostall")).unwrap();
        std::fs::set_permissions(dir.join("gostall"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        Scratch(dir)
    }
    fn bin(&self) -> PathBuf {
        self.0.join("gostall")
    }
    fn tmp(&self) -> PathBuf {
        self.0.join("tmp")
    }
    fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.tmp())
            .map(|r| {
                r.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The recorded demo, as shown when live reading is refused: exactly one line says why.
fn assert_recorded_fallback(out: &Output, why: &str) {
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}\n{err}");
    let notes: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("live demo not possible here: "))
        .collect();
    assert_eq!(notes.len(), 1, "{text}");
    assert!(notes[0].contains(why), "{}", notes[0]);
    assert!(
        notes[0].contains("showing recorded artifacts"),
        "{}",
        notes[0]
    );
    assert!(!text.contains("(live, pid"), "{text}");
    let headings: Vec<&str> = text.lines().filter(|l| l.starts_with("━━ demo")).collect();
    assert_eq!(headings.len(), 4, "{text}");
    assert!(headings[0].contains("mutex-slow-call") && headings[0].contains("(SIGQUIT dump)"));
    assert!(headings[1].contains("abba-deadlock") && headings[1].contains("mutex profile"));
    assert!(text.contains("lock_contention") && text.contains("main.(*Cache).Get"));
    assert!(text.contains("deadlock") && text.contains("main.transfer"));
    assert!(text.contains("no problems found"), "{text}");
}

/// Live reading really refused by the kernel: gostall runs with real uid 65534 and effective uid
/// 65533 and no capabilities (`setpriv`), so the program it starts runs with mixed uids too; the
/// kernel makes such a program non-dumpable and refuses gostall (real uid 65534 ≠ the target's
/// effective uid) both `process_vm_readv` and `/proc/PID/mem`. Needs root and `setpriv`; skipped
/// otherwise.
#[test]
fn the_demo_falls_back_to_recordings_when_the_kernel_refuses_live_reading() {
    if !is_root() || Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("skipped: needs root and setpriv(1) to run gostall as another user");
        return;
    }
    let scratch = Scratch::new("refused");
    let out = Command::new("setpriv")
        .args([
            "--ruid=65534",
            "--euid=65533",
            "--rgid=65534",
            "--egid=65533",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(scratch.bin())
        .args(["demo", "--color", "never", "--findings-only"])
        .env("TMPDIR", scratch.tmp())
        .current_dir(&scratch.0)
        .stdin(Stdio::null())
        .output()
        .expect("run setpriv");
    assert_recorded_fallback(&out, "the target runs as uid 65533");
    // The program was started, refused, killed, and its directory removed.
    assert_eq!(scratch.leftovers(), Vec::<String>::new());
}

/// Starting the program really refused: the temporary directory is a `noexec` tmpfs (in a private
/// mount namespace made by `unshare`). Needs root and unshare(1); skipped otherwise.
#[test]
fn the_demo_falls_back_to_recordings_when_it_may_not_start_programs() {
    if !is_root()
        || !Command::new("unshare")
            .args(["--mount", "true"])
            .status()
            .is_ok_and(|s| s.success())
    {
        eprintln!("skipped: needs root and unshare(1) to mount a noexec tmpfs");
        return;
    }
    let scratch = Scratch::new("noexec");
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(
            "mount -t tmpfs -o noexec,mode=1777 gostall-test \"$1\" || exit 99; \
             TMPDIR=\"$1\" exec \"$2\" demo --color never --findings-only",
        )
        .arg("sh")
        .arg(scratch.tmp())
        .arg(scratch.bin())
        .stdin(Stdio::null())
        .output()
        .expect("run unshare");
    if out.status.code() == Some(99) {
        eprintln!(
            "skipped: cannot mount a tmpfs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    assert_recorded_fallback(&out, "is not permitted");
    assert_recorded_fallback(&out, "noexec");
}
