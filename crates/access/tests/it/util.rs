//! Test support: the C fixture program, a running instance of it, and helper processes (this test
//! binary re-executed in a helper mode).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The fixture, compiled once per test run with `cc -pthread`.
pub fn fixture() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/target.c");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gostall-access");
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("cfixture");
        let tmp = dir.join(format!("cfixture.{}", std::process::id()));
        let st = Command::new("cc")
            .args(["-O1", "-pthread", "-o"])
            .arg(&tmp)
            .arg(&src)
            .status()
            .expect("running cc (is a C compiler installed?)");
        assert!(st.success(), "cc failed on {}", src.display());
        std::fs::rename(&tmp, &out).unwrap();
        out
    })
}

/// A running fixture and the addresses it printed.
pub struct Target {
    pub child: Child,
    pub pid: i32,
    pub counter: u64,
    pub marker: u64,
    pub pipe_fd: u64,
    pub readbuf: u64,
    pub edge: u64,
    pub page: u64,
    pub reader: i32,
    pub rtcount: u64,
    pub vforker: i32,
    /// Keeps the pipe open so the fixture never gets SIGPIPE.
    _stdout: ChildStdout,
}

impl Target {
    /// Starts the fixture with `idle` idle threads (so `idle + 2` threads in all) and waits until all
    /// threads exist.
    pub fn spawn(idle: usize) -> Target {
        let mut cmd = Command::new(fixture());
        cmd.arg(idle.to_string());
        Self::spawn_cmd(cmd, idle + 2)
    }

    /// Starts `cmd`, which must run the fixture, and reads its first line. `threads` is the number
    /// of threads to wait for (0: don't wait).
    pub fn spawn_cmd(mut cmd: Command, threads: usize) -> Target {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let field = |name: &str| -> u64 {
            let v = line
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("no {name}= in {line:?}"));
            match v.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16).unwrap(),
                None => v.parse().unwrap(),
            }
        };
        let t = Target {
            pid: child.id() as i32,
            counter: field("counter"),
            marker: field("marker"),
            pipe_fd: field("pipe"),
            readbuf: field("readbuf"),
            edge: field("edge"),
            page: field("page"),
            reader: field("reader") as i32,
            rtcount: field("rtcount"),
            vforker: field("vforker") as i32,
            child,
            _stdout: stdout.into_inner(),
        };
        if threads > 0 {
            wait_until(Duration::from_secs(10), || task_count(t.pid) == threads);
        }
        t
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn task_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Polls `f` every millisecond until it holds; panics after `limit`.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < limit,
            "condition not met within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// State letters of every thread of `pid`.
pub fn thread_states(pid: i32) -> Vec<char> {
    gostall_access::procfs::threads(pid)
        .unwrap()
        .iter()
        .map(|t| t.state)
        .collect()
}

/// Whether no thread of `pid` is stopped (by a tracer or a signal) or traced.
pub fn running_untraced(pid: i32) -> bool {
    gostall_access::procfs::threads(pid)
        .unwrap()
        .iter()
        .all(|t| !matches!(t.state, 't' | 'T') && t.tracer_pid == 0)
}

/// This test binary, re-executed to run `helper_main` with the given mode.
pub fn helper(mode: &str) -> Command {
    helper_at(&std::env::current_exe().unwrap(), mode)
}

/// Like [`helper`], for a copy of the test binary at `exe`.
pub fn helper_at(exe: &Path, mode: &str) -> Command {
    let mut c = Command::new(exe);
    c.args([
        "helper_main",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("GOSTALL_TARGET_HELPER", mode)
    .stdin(Stdio::null())
    .stdout(Stdio::piped());
    c
}

/// Reads lines from a helper until one contains `HELPER:` (libtest may print `test helper_main ...`
/// before it on the same line); returns what follows.
pub fn helper_line(r: &mut impl BufRead) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = r.read_line(&mut line).unwrap();
        assert!(n > 0, "helper ended without a HELPER: line");
        if let Some(i) = line.find("HELPER:") {
            return line[i + "HELPER:".len()..].trim().to_string();
        }
    }
}
