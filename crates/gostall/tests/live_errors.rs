//! The error paths of `gostall diagnose --pid` / `gostall dump --pid`, end to end through the built
//! binary: a missing pid, a program that is not Go, another
//! user's process, a process that exits before or while it is read, a thread id, and — the one
//! successes here — a process inside its own PID namespace, a binary without DWARF and a
//! stripped one.
//!
//! Every error must exit with status 2 and print one `gostall: error:` message that says what
//! happened and what to do: no panic, no Rust debug formatting, no cause repeated. The Go version
//! check (1.21–1.27; no other toolchain is installable) is unit-tested in
//! `crates/extract/src/program.rs`.

use gostall_corpus::{self as corpus, Scenario, Variant};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// The Go version the programs are built with: the newest of the default run.
fn version() -> &'static str {
    corpus::DEFAULT_VERSIONS
        .last()
        .expect("at least one default version")
}

const SCENARIO: &str = "control-worker-pool";

/// Builds (once per test binary) the corpus in a variant; tests run in parallel threads and must not
/// write the same binaries at once.
fn bin_dir(variant: Variant) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<&'static str, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let map = built.get_or_insert_with(HashMap::new);
    if let Some(p) = map.get(variant.name()) {
        return p.clone();
    }
    let dir = corpus::build_variant(version(), variant).unwrap_or_else(|e| panic!("{e:#}"));
    map.insert(variant.name(), dir.clone());
    dir
}

fn scenario() -> Scenario {
    corpus::scenario(SCENARIO).expect("scenario in the manifest")
}

fn start(variant: Variant) -> corpus::Running {
    corpus::start(&bin_dir(variant), &scenario(), Stdio::null()).unwrap_or_else(|e| panic!("{e:#}"))
}

fn gostall(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gostall"))
        .args(args)
        .output()
        .expect("run gostall")
}

/// Asserts a clean error: exit status 2, one message on stderr beginning `gostall: error:`,
/// containing every `want`, nothing on stdout, no panic, no debug formatting, no repetition.
/// Returns the message.
fn assert_error(out: &Output, want: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "exit status {:?}, stderr: {stderr}",
        out.status
    );
    assert!(stdout.is_empty(), "stdout on error: {stdout}");
    assert!(
        stderr.starts_with("gostall: error: "),
        "stderr does not start with the error prefix: {stderr}"
    );
    assert_eq!(
        stderr.matches("gostall: error:").count(),
        1,
        "one message: {stderr}"
    );
    for bad in [
        "panicked",
        "RUST_BACKTRACE",
        "Os {",
        "code:",
        "kind:",
        "Error {",
        "Some(",
        "Unmapped {",
    ] {
        assert!(!stderr.contains(bad), "stderr contains {bad:?}: {stderr}");
    }
    for w in want {
        assert!(stderr.contains(w), "stderr lacks {w:?}: {stderr}");
    }
    // No cause repeated: every longer clause appears once.
    for clause in stderr
        .trim_start_matches("gostall: error: ")
        .split([':', ';', '\n'])
        .map(str::trim)
        .filter(|c| c.len() >= 24)
    {
        assert_eq!(
            stderr.matches(clause).count(),
            1,
            "clause {clause:?} repeated: {stderr}"
        );
    }
    eprintln!("{stderr}");
    stderr
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|u| u.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn kill(pid: i32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// A pid no process has.
fn unused_pid() -> i32 {
    let max: i32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(32768);
    (300..max)
        .rev()
        .find(|p| !Path::new(&format!("/proc/{p}")).exists())
        .expect("a free pid")
}

#[test]
fn pid_not_found() {
    let pid = unused_pid().to_string();
    for cmd in ["diagnose", "dump"] {
        let out = gostall(&[cmd, "--pid", &pid]);
        assert_error(
            &out,
            &["no such process", &format!("no process with pid {pid}")],
        );
    }
    // Not a pid at all: refused by the argument parser (also exit status 2).
    for bad in ["0", "-5", "abc"] {
        let out = gostall(&["dump", &format!("--pid={bad}")]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("invalid value '{bad}' for '--pid <PID>'")),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn not_a_go_program() {
    let mut child = Command::new("sleep")
        .arg("30")
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn sleep");
    let pid = child.id().to_string();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .expect("exe of sleep")
        .display()
        .to_string();
    for cmd in ["diagnose", "dump"] {
        let out = gostall(&[cmd, "--pid", &pid]);
        assert_error(
            &out,
            &[
                &format!("process {pid} ({exe}) is not a Go program"),
                "gostall reads only programs built by the Go toolchain",
                &format!("ps -o pid,args -p {pid}"),
            ],
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Not an error any more: a binary built with `-ldflags=-w` is read with the runtime layouts
/// recorded for its Go version, and the report says so.
#[test]
fn go_binary_without_dwarf_is_read_with_recorded_layouts() {
    let r = start(Variant::NoDwarf);
    let pid = r.pid().to_string();
    let out = gostall(&["diagnose", "--pid", &pid, "--format", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(
        doc["summary"]["goroutines"].as_u64().unwrap_or(0) > 10,
        "{doc}"
    );
    let notes = doc["live"]["notes"].to_string();
    assert!(
        notes.contains(&format!(
            "the binary has no DWARF: runtime layouts from the table recorded for go{}",
            version()
        )),
        "{notes}"
    );
    assert!(doc["proof"]["heap_scan"] == "precise", "{}", doc["proof"]);
}

/// Not an error any more either: a stripped binary (`-ldflags='-s -w'`) is read, its runtime
/// globals found through the code that uses them, and the report says how.
#[test]
fn stripped_go_binary_is_read() {
    let r = start(Variant::Stripped);
    let pid = r.pid().to_string();
    let out = gostall(&["diagnose", "--pid", &pid, "--format", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(
        doc["summary"]["goroutines"].as_u64().unwrap_or(0) > 10,
        "{doc}"
    );
    let notes = doc["live"]["notes"].to_string();
    assert!(notes.contains("no symbol table"), "{notes}");
    assert!(doc["proof"]["heap_scan"] == "precise", "{}", doc["proof"]);
}

/// A copy of the gostall binary that user `nobody` can execute, removed on drop.
struct NobodyCopy(PathBuf);

impl NobodyCopy {
    fn new() -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(format!("gostall-live-errors-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        let exe = dir.join("gostall");
        std::fs::copy(env!("CARGO_BIN_EXE_gostall"), &exe)?;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755))?;
        Ok(NobodyCopy(dir))
    }

    fn exe(&self) -> PathBuf {
        self.0.join("gostall")
    }
}

impl Drop for NobodyCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A command that runs `exe` as uid/gid 65534 (nobody) without capabilities, if this machine can.
fn as_nobody(exe: &Path) -> Option<Command> {
    let setpriv = |prog: &Path| {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(prog);
        c
    };
    let runuser = |prog: &Path| {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(prog);
        c
    };
    for make in [&setpriv as &dyn Fn(&Path) -> Command, &runuser] {
        let works = make(Path::new("true"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if works {
            return Some(make(exe));
        }
    }
    None
}

#[test]
fn another_users_process() {
    if !is_root() {
        eprintln!("skipping permission-denied: the test must run as root to start a root-owned target and switch to nobody");
        return;
    }
    let copy = NobodyCopy::new().expect("copy gostall for nobody");
    if as_nobody(&copy.exe()).is_none() {
        eprintln!("skipping permission-denied: neither setpriv nor runuser can switch to nobody");
        return;
    }
    let r = start(Variant::Default);
    let pid = r.pid().to_string();
    for cmd in ["diagnose", "dump"] {
        let out = as_nobody(&copy.exe())
            .expect("checked above")
            .args([cmd, "--pid", &pid])
            .output()
            .expect("run gostall as nobody");
        assert_error(
            &out,
            &[
                &format!("cannot read the memory of process {pid}: permission denied"),
                "gostall runs as uid 65534",
                "without CAP_SYS_PTRACE",
                "the target runs as uid 0 (root), gostall as uid 65534",
                "to fix it, any of:",
                "sudo gostall",
                "cap_sys_ptrace",
            ],
        );
    }
}

/// Messages a process that is gone, or going, may produce.
const GONE: &[&str] = &[
    "no such process",
    "exited while gostall was reading it",
    "has exited",
];

fn assert_gone(out: &Output) {
    let msg = assert_error(out, &[]);
    assert!(
        GONE.iter().any(|g| msg.contains(g)),
        "not a 'gone' message: {msg}"
    );
}

#[test]
fn process_exits_before_or_while_read() {
    // Killed and not yet reaped: a zombie.
    let r = start(Variant::Default);
    let pid = r.pid();
    kill(pid, "KILL");
    let out = gostall(&["dump", "--pid", &pid.to_string()]);
    assert_gone(&out);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
    }) {
        assert!(
            Instant::now() < deadline,
            "process {pid} did not become a zombie"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = gostall(&["dump", "--pid", &pid.to_string()]);
    assert_error(
        &out,
        &[
            &format!("process {pid} has exited"),
            "zombie",
            "run gostall while the program is still running",
        ],
    );
    // Reaped: gone.
    drop(r);
    let out = gostall(&["diagnose", "--pid", &pid.to_string()]);
    assert_error(&out, &["no such process"]);

    // Killed while gostall reads it, at several delays: a clean report or a clean 'gone' error.
    for delay_ms in [0u64, 1, 3, 10, 30, 100] {
        for pause in [false, true] {
            let r = start(Variant::Default);
            let pid = r.pid().to_string();
            let mut args = vec!["dump", "--pid", &pid, "--format", "json"];
            if pause {
                args.push("--pause");
            }
            let child = Command::new(env!("CARGO_BIN_EXE_gostall"))
                .args(&args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run gostall");
            std::thread::sleep(Duration::from_millis(delay_ms));
            kill(r.pid(), "KILL");
            let out = child.wait_with_output().expect("gostall output");
            let stderr = String::from_utf8_lossy(&out.stderr);
            eprintln!(
                "killed after {delay_ms} ms (pause {pause}): exit {:?} {stderr}",
                out.status.code()
            );
            match out.status.code() {
                Some(0) => {
                    assert!(!stderr.contains("panicked"), "{stderr}");
                    serde_json::from_slice::<Value>(&out.stdout).expect("a complete JSON report");
                }
                _ => assert_gone(&out),
            }
        }
    }
}

#[test]
fn thread_id_instead_of_pid() {
    let r = start(Variant::Default);
    let pid = r.pid();
    let tid = std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("task list")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .find(|&t| t != pid)
        .expect("a Go program has more than one thread");
    for cmd in ["diagnose", "dump"] {
        let out = gostall(&[cmd, "--pid", &tid.to_string()]);
        assert_error(
            &out,
            &[
                &format!("pid {tid} is a thread of process {pid}, not a process"),
                &format!("run gostall with --pid {pid}"),
            ],
        );
    }
}

/// A scenario run as pid 1 of a new PID namespace; killed (which ends the namespace) on drop.
struct InNamespace {
    unshare: Child,
    pid: i32,
}

impl Drop for InNamespace {
    fn drop(&mut self) {
        kill(self.pid, "KILL");
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}

fn unshare_works() -> bool {
    is_root()
        && Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

#[test]
fn process_in_its_own_pid_namespace() {
    if !unshare_works() {
        eprintln!("skipping PID namespace: `unshare --pid --fork --mount-proc` is unavailable here (needs root and unshare)");
        return;
    }
    let exe = bin_dir(Variant::Default).join(SCENARIO);
    let mut unshare = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(&exe)
        .env("GOTRACEBACK", "all")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start unshare");
    let stdout = unshare.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("GOSTALL_READY") {
                let _ = tx.send(());
            }
        }
    });
    let upid = unshare.id();
    // unshare forks once; its child execs the scenario as pid 1 of the new namespace.
    let children = format!("/proc/{upid}/task/{upid}/children");
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid = loop {
        let found = std::fs::read_to_string(&children)
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<i32>().ok());
        if let Some(p) = found {
            break p;
        }
        assert!(Instant::now() < deadline, "unshare started no child");
        std::thread::sleep(Duration::from_millis(10));
    };
    let target = InNamespace { unshare, pid };
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the scenario printed its readiness line");
    std::thread::sleep(Duration::from_millis(300));
    let out = gostall(&[
        "diagnose",
        "--pid",
        &target.pid.to_string(),
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "diagnose --pid of a process in its own PID namespace failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let live = &doc["live"];
    assert_eq!(live["pid"].as_i64(), Some(i64::from(target.pid)), "{live}");
    let ns_pid = live["ns_pid"]
        .as_i64()
        .unwrap_or_else(|| panic!("no ns_pid: {live}"));
    assert!((1..=10).contains(&ns_pid), "ns_pid {ns_pid}: {live}");
    assert!(
        doc["summary"]["goroutines"].as_u64().unwrap_or(0) > 0,
        "no goroutines read"
    );
    eprintln!("host pid {} is pid {ns_pid} in its namespace", target.pid);
}
