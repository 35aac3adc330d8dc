//! Test support for the scenario corpus (`scenarios/`): installs a Go toolchain through
//! `scripts/install-go.sh`, builds every scenario, runs one until it prints its readiness line, and
//! captures what Go emits — the `debug=2`/`debug=1` dumps and goroutine/mutex/block/threadcreate
//! profiles over HTTP, then the SIGQUIT dump with `GOTRACEBACK=all`.
//!
//! Used by the integration tests, the demo recorder and the benchmark scripts. [`realworld`] does
//! the same for the real-world corpus (`realworld/`): its Debian packages, its build, its
//! PostgreSQL and Redis servers.
#![deny(missing_docs)]

pub mod goker;
pub mod realworld;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Go versions the default test run uses: the oldest and the newest supported.
pub const DEFAULT_VERSIONS: &[&str] = &["1.21.13", "1.27.3"];
/// Every supported Go version.
pub const ALL_VERSIONS: &[&str] = &[
    "1.21.13", "1.22.10", "1.23.9", "1.24.11", "1.25.5", "1.26.6", "1.27.3",
];

/// The corpus manifest (`scenarios/manifest.json`; `realworld/manifest.json` has the same shape,
/// read by [`realworld::manifest`]).
#[derive(Debug, Deserialize)]
pub struct Manifest {
    /// Every scenario.
    pub scenarios: Vec<Scenario>,
}

/// One scenario program and what gostall must find in it.
#[derive(Debug, Clone, Deserialize)]
pub struct Scenario {
    /// Directory name under `scenarios/`.
    pub name: String,
    /// A healthy control: no warning or critical finding allowed.
    #[serde(default)]
    pub control: bool,
    /// Needs cgo.
    #[serde(default)]
    pub cgo: bool,
    /// Extra environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Whether the pprof endpoint answers once the pathology is in place.
    #[serde(default = "yes")]
    pub http: bool,
    /// Findings that must be present.
    #[serde(default)]
    pub expect: Vec<Expect>,
    /// Real-world corpus: the servers it needs (`postgres`, `redis`); only those get their
    /// settings in the environment.
    #[serde(default)]
    pub servers: Vec<String>,
}

fn yes() -> bool {
    true
}

/// An expected finding.
#[derive(Debug, Clone, Deserialize)]
pub struct Expect {
    /// Finding kind id, e.g. `lock_contention`.
    pub kind: String,
    /// Function of the finding's location; empty: any (findings about threads or memory may have
    /// no Go location).
    #[serde(default)]
    pub function: String,
    /// Only a live read can show it (signal masks, native stacks, resident memory).
    #[serde(default)]
    pub live_only: bool,
    /// Texts that must appear in the live finding's title or evidence (C function, syscall, fd
    /// target…).
    #[serde(default)]
    pub evidence: Vec<String>,
    /// Real-world corpus: how many goroutines are stuck under `function` (and `frame`); the
    /// finding must cover at least that many.
    #[serde(default)]
    pub waiters: Option<usize>,
    /// Real-world corpus: a function that must also be on the stuck goroutines' stacks, to tell
    /// them from other goroutines under the same application function.
    #[serde(default)]
    pub frame: Option<String>,
    /// Real-world corpus: a `debug=2` dump alone shows enough, so the diagnosis of the dump must
    /// satisfy this expectation too (otherwise it is checked live only).
    #[serde(default)]
    pub offline: bool,
}

impl Expect {
    /// Whether a finding of `kind` located at `function` satisfies this expectation (evidence
    /// aside).
    pub fn matches(&self, kind: &str, function: &str) -> bool {
        kind == self.kind && (self.function.is_empty() || function == self.function)
    }
}

/// What one run of a scenario produced.
#[derive(Debug, Default, Clone)]
pub struct Captured {
    /// SIGQUIT dump (stderr of the process).
    pub sigquit: PathBuf,
    /// `/debug/pprof/goroutine?debug=2`, when the endpoint answers.
    pub debug2: Option<PathBuf>,
    /// `/debug/pprof/goroutine?debug=1`.
    pub debug1: Option<PathBuf>,
    /// Goroutine profile (protobuf).
    pub goroutine: Option<PathBuf>,
    /// Mutex profile (protobuf).
    pub mutex: Option<PathBuf>,
    /// Block profile (protobuf).
    pub block: Option<PathBuf>,
    /// Threadcreate profile (protobuf).
    pub threadcreate: Option<PathBuf>,
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/corpus is two levels below the root")
        .to_path_buf()
}

/// Reads the manifest.
pub fn manifest() -> Result<Manifest> {
    let path = repo_root().join("scenarios/manifest.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The manifest's scenario `name`.
///
/// # Errors
/// When the manifest cannot be read or has no such scenario.
pub fn scenario(name: &str) -> Result<Scenario> {
    manifest()?
        .scenarios
        .into_iter()
        .find(|s| s.name == name)
        .with_context(|| format!("no scenario {name} in scenarios/manifest.json"))
}

/// Versions to test: `GOSTALL_GO_VERSIONS` (comma-separated, or `all`), else [`DEFAULT_VERSIONS`].
pub fn versions_from_env() -> Vec<String> {
    match std::env::var("GOSTALL_GO_VERSIONS") {
        Ok(v) if v.trim() == "all" => ALL_VERSIONS.iter().map(|s| s.to_string()).collect(),
        Ok(v) if !v.trim().is_empty() => v.split(',').map(|s| s.trim().to_string()).collect(),
        _ => DEFAULT_VERSIONS.iter().map(|s| s.to_string()).collect(),
    }
}

/// Installs (if needed) and returns the GOROOT of a Go version, through `scripts/install-go.sh`.
pub fn goroot(version: &str) -> Result<PathBuf> {
    let script = repo_root().join("scripts/install-go.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(version)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("{} {version} failed", script.display());
    }
    let root = String::from_utf8(out.stdout)?.trim().to_string();
    Ok(PathBuf::from(root))
}

/// Where build outputs for a version go: `target/corpus/VERSION`.
pub fn work_dir(version: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    target.join("corpus").join(version)
}

/// How the corpus is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// `go build` defaults: non-PIE, cgo enabled.
    Default,
    /// `-buildmode=pie`.
    Pie,
    /// `CGO_ENABLED=0` (scenarios that need cgo are skipped).
    NoCgo,
    /// `-ldflags=-w`: no DWARF (the symbol table stays).
    NoDwarf,
    /// `-ldflags=-s -w`: no DWARF and no symbol table.
    Stripped,
    /// A release build: `-trimpath -buildvcs=false -ldflags=-s -w` (module-relative file
    /// names, no version-control stamp, no DWARF, no symbol table).
    Release,
}

impl Variant {
    /// Every variant.
    pub const ALL: [Variant; 6] = [
        Variant::Default,
        Variant::Pie,
        Variant::NoCgo,
        Variant::NoDwarf,
        Variant::Stripped,
        Variant::Release,
    ];

    /// The variants the environment variable `var` names ([`Variant::name`]s, comma-separated),
    /// when it names any.
    pub fn from_env(var: &str) -> Option<Vec<Variant>> {
        let v = std::env::var(var).ok().filter(|v| !v.trim().is_empty())?;
        Some(
            Variant::ALL
                .into_iter()
                .filter(|a| v.split(',').any(|n| n.trim() == a.name()))
                .collect(),
        )
    }

    /// Directory name.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Default => "bin",
            Variant::Pie => "bin-pie",
            Variant::NoCgo => "bin-nocgo",
            Variant::NoDwarf => "bin-nodwarf",
            Variant::Stripped => "bin-stripped",
            Variant::Release => "bin-release",
        }
    }
}

/// Builds every scenario with a Go version into `work_dir(version)/bin`; returns that directory.
pub fn build(version: &str) -> Result<PathBuf> {
    build_variant(version, Variant::Default)
}

/// Builds every scenario in a variant into `work_dir(version)/<variant>`; returns that directory.
pub fn build_variant(version: &str, variant: Variant) -> Result<PathBuf> {
    // The cgo scenarios need a C compiler: a fresh machine gets it (and the other Debian packages
    // the tests use) from scripts/install-realworld.sh.
    let has_cc = Command::new("gcc")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_cc {
        realworld::install().context("installing a C compiler for the cgo scenarios")?;
    }
    let root = goroot(version)?;
    let dir = work_dir(version);
    let bin = dir.join(variant.name());
    std::fs::create_dir_all(&bin)?;
    let go = root.join("bin/go");
    let mut cmd = Command::new(&go);
    cmd.arg("build");
    match variant {
        Variant::Pie => {
            cmd.arg("-buildmode=pie");
        }
        Variant::NoDwarf => {
            cmd.arg("-ldflags=-w");
        }
        Variant::Stripped => {
            cmd.arg("-ldflags=-s -w");
        }
        Variant::Release => {
            cmd.args(["-trimpath", "-buildvcs=false", "-ldflags=-s -w"]);
        }
        Variant::Default | Variant::NoCgo => {}
    }
    let mut pkgs = vec!["./...".to_string()];
    if variant == Variant::NoCgo {
        pkgs = manifest()?
            .scenarios
            .iter()
            .filter(|s| !s.cgo)
            .map(|s| format!("./{}", s.name))
            .collect();
    }
    let status = cmd
        .arg("-o")
        .arg(&bin)
        .args(&pkgs)
        .current_dir(repo_root().join("scenarios"))
        .env("GOROOT", &root)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .env("GOCACHE", dir.join("gocache"))
        .env("GOPATH", dir.join("gopath"))
        .env(
            "CGO_ENABLED",
            if variant == Variant::NoCgo { "0" } else { "1" },
        )
        .env("PATH", path_with(&root.join("bin")))
        .status()
        .with_context(|| format!("running {}", go.display()))?;
    if !status.success() {
        bail!("go build of the scenario corpus ({variant:?}) failed with Go {version}");
    }
    Ok(bin)
}

fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut p = dir.as_os_str().to_owned();
    if let Some(old) = std::env::var_os("PATH") {
        p.push(":");
        p.push(old);
    }
    p
}

/// A running scenario; killed on drop, so a failing test never leaves one behind.
pub struct Running {
    child: Child,
    /// Address of its pprof endpoint.
    pub addr: String,
    /// A private directory of the program's (its `TMPDIR`), removed on drop.
    tmp: Option<PathBuf>,
}

impl Running {
    /// Process id.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for the process to exit, at most `timeout`; `None` when it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Option<std::process::ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() > deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(tmp) = &self.tmp {
            let _ = std::fs::remove_dir_all(tmp);
        }
    }
}

/// Starts a built scenario and waits until its pathology is in place. Its stderr goes to `stderr`.
pub fn start(bin_dir: &Path, sc: &Scenario, stderr: Stdio) -> Result<Running> {
    start_with(bin_dir, sc, stderr, &StartOptions::default())
}

/// What [`start_with`] changes in how a scenario runs.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Environment set after the scenario's own (`GOTRACEBACK=crash`, say).
    pub env: Vec<(String, String)>,
    /// Working directory (where the kernel writes a core when `core_pattern` is relative).
    pub cwd: Option<PathBuf>,
    /// Raise the soft core-size limit to the hard one, so a crash dumps core.
    pub dump_core: bool,
}

/// [`start`], with the changes `opts` asks for.
pub fn start_with(
    bin_dir: &Path,
    sc: &Scenario,
    stderr: Stdio,
    opts: &StartOptions,
) -> Result<Running> {
    let mut cmd = Command::new(bin_dir.join(&sc.name));
    cmd.env("GOTRACEBACK", "all")
        .envs(&sc.env)
        .envs(opts.env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = &opts.cwd {
        cmd.current_dir(dir);
    }
    if opts.dump_core {
        use nix::sys::resource::{getrlimit, setrlimit, Resource};
        use std::os::unix::process::CommandExt;
        let (_, hard) = getrlimit(Resource::RLIMIT_CORE).context("getrlimit(RLIMIT_CORE)")?;
        // SAFETY: the closure runs in the child between fork and exec and makes one system
        // call, which is async-signal-safe; it allocates nothing and takes no lock.
        unsafe {
            cmd.pre_exec(move || {
                setrlimit(Resource::RLIMIT_CORE, hard, hard).map_err(std::io::Error::from)
            });
        }
    }
    run_to_ready(cmd, &sc.name, stderr)
}

/// Spawns a corpus program (stdin closed, stdout read here, stderr to `stderr`) and waits for its
/// `GOSTALL_READY pprof=ADDR` line.
fn run_to_ready(mut cmd: Command, name: &str, stderr: Stdio) -> Result<Running> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", Path::new(cmd.get_program()).display()))?;
    let stdout = child.stdout.take().expect("piped");
    let mut running = Running {
        child,
        addr: String::new(),
        tmp: None,
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = line.strip_prefix("GOSTALL_READY pprof=") {
                let _ = tx.send(addr.trim().to_string());
            }
        }
    });
    running.addr = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(addr) => addr,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            bail!("{name}: no GOSTALL_READY line within 60 s")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // Its stdout closed: it is exiting, or gone.
            std::thread::sleep(Duration::from_millis(100));
            match running.child.try_wait()? {
                Some(status) => bail!("{name}: exited ({status}) without a GOSTALL_READY line"),
                None => bail!("{name}: closed its stdout without a GOSTALL_READY line"),
            }
        }
    };
    // Let the goroutine that printed the line park again before anything is captured.
    std::thread::sleep(Duration::from_millis(300));
    Ok(running)
}

/// Runs a built scenario until ready, captures every artifact into `out_dir`, and stops it with
/// SIGQUIT.
pub fn capture(bin_dir: &Path, sc: &Scenario, out_dir: &Path) -> Result<Captured> {
    std::fs::create_dir_all(out_dir)?;
    let sigquit = out_dir.join("sigquit.txt");
    let stderr = std::fs::File::create(&sigquit)?;
    let mut guard = start(bin_dir, sc, Stdio::from(stderr))?;
    let addr = guard.addr.clone();
    let mut cap = Captured {
        sigquit: sigquit.clone(),
        ..Captured::default()
    };
    if sc.http {
        let get = |path: &str, file: &str| -> Result<PathBuf> {
            let body = http_get(&addr, path, Duration::from_secs(20))
                .with_context(|| format!("{}: GET {path}", sc.name))?;
            let p = out_dir.join(file);
            std::fs::write(&p, body)?;
            Ok(p)
        };
        cap.debug2 = Some(get("/debug/pprof/goroutine?debug=2", "debug2.txt")?);
        cap.debug1 = Some(get("/debug/pprof/goroutine?debug=1", "debug1.txt")?);
        cap.goroutine = Some(get("/debug/pprof/goroutine", "goroutine.pb.gz")?);
        cap.mutex = Some(get("/debug/pprof/mutex", "mutex.pb.gz")?);
        cap.block = Some(get("/debug/pprof/block", "block.pb.gz")?);
        cap.threadcreate = Some(get("/debug/pprof/threadcreate", "threadcreate.pb.gz")?);
    }
    let pid = nix::unistd::Pid::from_raw(guard.pid());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGQUIT)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if guard.child.try_wait()?.is_some() {
            break;
        }
        if Instant::now() > deadline {
            bail!("{}: did not exit within 30 s of SIGQUIT", sc.name);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(cap)
}

/// A minimal HTTP/1.0 GET (the server closes the connection, so no chunking).
pub fn http_get(addr: &str, path: &str, timeout: Duration) -> Result<Vec<u8>> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("no HTTP header end"))?;
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    if !head.starts_with("HTTP/1.") || head.split(' ').nth(1).is_none_or(|c| c != "200") {
        bail!("unexpected response: {}", head.lines().next().unwrap_or(""));
    }
    Ok(buf[split + 4..].to_vec())
}

/// Runs `run` for every scenario: four at a time, except scenarios that keep every CPU busy (no
/// pprof endpoint, or CPU-bound), which run alone so they do not starve the others.
pub fn run_scenarios<'a>(
    scenarios: impl IntoIterator<Item = &'a Scenario>,
    run: impl Fn(&Scenario) + Sync,
) {
    let (alone, shared): (Vec<&Scenario>, Vec<&Scenario>) = scenarios
        .into_iter()
        .partition(|s| !s.http || s.name.contains("cpu"));
    for chunk in shared.chunks(4) {
        std::thread::scope(|s| {
            for sc in chunk {
                s.spawn(|| run(sc));
            }
        });
    }
    for sc in alone {
        run(sc);
    }
}

/// `(kind, function)` of every warning and critical finding of a JSON report: what a live read, a
/// core and a capture of the same process must agree on.
pub fn serious_findings(doc: &serde_json::Value) -> std::collections::BTreeSet<(String, String)> {
    doc["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["severity"] != "info")
        .map(|f| {
            (
                f["kind"].as_str().unwrap_or_default().to_string(),
                f["location"]["function"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}
