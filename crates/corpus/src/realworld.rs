//! The real-world corpus (`realworld/`): Go services on real libraries (`database/sql` with
//! `lib/pq` and SQLite, pgx, redigo, net/http, gRPC, x/sync) against real PostgreSQL and Redis,
//! stuck the way production services get stuck, plus healthy controls. `realworld/README.md`
//! describes the programs and the manifest.
//!
//! Everything comes from the project's own scripts: [`install`] runs
//! `scripts/install-realworld.sh` once per process (the Debian packages: the libraries' Go
//! sources that `realworld/go.mod` replaces every module with, libsqlite3, PostgreSQL, Redis, gcc);
//! [`build`] builds every program with a Go toolchain from `scripts/install-go.sh`, offline, as
//! the README says; [`Servers`] runs a private PostgreSQL and Redis through
//! `scripts/realworld-servers.sh` and stops them when dropped — and, through a watchdog process,
//! when the test process dies without dropping them (^C, a kill). [`start`] runs a program to its
//! `GOSTALL_READY` line with the servers' settings in its environment when the manifest says it
//! needs them, and a private `TMPDIR`.

use crate::{goroot, path_with, repo_root, run_to_ready, work_dir, Manifest, Running, Scenario};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The variables `scripts/realworld-servers.sh` writes; removed from every program's environment
/// unless it needs the servers.
pub const SERVER_VARS: &[&str] = &[
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGDATABASE",
    "PGSSLMODE",
    "REDIS_ADDR",
];

/// The real-world corpus's Go module: `realworld/`.
pub fn dir() -> PathBuf {
    repo_root().join("realworld")
}

/// Reads `realworld/manifest.json`.
pub fn manifest() -> Result<Manifest> {
    let path = dir().join("manifest.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Runs `scripts/install-realworld.sh` (idempotent: installs only what is missing, through
/// apt-get) once per process; later calls return the first call's outcome.
pub fn install() -> Result<()> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let script = repo_root().join("scripts/install-realworld.sh");
        let status = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("running {}: {e}", script.display()))?;
        if !status.success() {
            return Err(format!("{} failed ({status})", script.display()));
        }
        Ok(())
    })
    .clone()
    .map_err(anyhow::Error::msg)
}

/// Installs what the corpus needs ([`install`]) and builds every program with a Go version into
/// `work_dir(version)/realworld-bin`; returns that directory. Like the scenarios, the build shares
/// the version's `GOCACHE`, so a rebuild takes seconds.
pub fn build(version: &str) -> Result<PathBuf> {
    install()?;
    let root = goroot(version)?;
    let work = work_dir(version);
    let bin = work.join("realworld-bin");
    std::fs::create_dir_all(&bin)?;
    let go = root.join("bin/go");
    let status = Command::new(&go)
        .arg("build")
        .arg("-o")
        .arg(&bin)
        .arg("./...")
        .current_dir(dir())
        .env("GOROOT", &root)
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOSUMDB", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOCACHE", work.join("gocache"))
        .env("GOPATH", work.join("gopath"))
        .env("CGO_ENABLED", "1")
        .env("PATH", path_with(&root.join("bin")))
        .status()
        .with_context(|| format!("running {}", go.display()))?;
    if !status.success() {
        bail!("go build of the real-world corpus failed with Go {version}");
    }
    Ok(bin)
}

/// A private PostgreSQL and Redis on loopback (`scripts/realworld-servers.sh start DIR`, DIR a
/// fresh temporary directory); stopped and DIR removed on drop.
///
/// The stopping is done by a watchdog: a shell in its own process group that waits for its stdin
/// to close, then runs `realworld-servers.sh stop DIR` and removes DIR. Drop closes that pipe and
/// waits for the watchdog; if the test process dies first, the kernel closes it.
pub struct Servers {
    dir: PathBuf,
    env: BTreeMap<String, String>,
    watchdog: Child,
    watchdog_stdin: Option<ChildStdin>,
}

impl Servers {
    /// Starts both servers and waits until they answer.
    ///
    /// # Errors
    /// When the script fails (nothing is left running then).
    pub fn start() -> Result<Servers> {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gostall-realworld-servers-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let script = repo_root().join("scripts/realworld-servers.sh");
        let mut watchdog = Command::new("sh")
            .arg("-c")
            .arg(r#"cat >/dev/null; bash "$0" stop "$1" >/dev/null 2>&1; rm -rf "$1""#)
            .arg(&script)
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("starting the servers' watchdog")?;
        let watchdog_stdin = watchdog.stdin.take();
        let mut servers = Servers {
            dir,
            env: BTreeMap::new(),
            watchdog,
            watchdog_stdin,
        };
        let status = Command::new("bash")
            .arg(&script)
            .arg("start")
            .arg(&servers.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .with_context(|| format!("running {}", script.display()))?;
        if !status.success() {
            bail!("{} start failed ({status})", script.display());
        }
        let env_file = servers.dir.join("env");
        let text = std::fs::read_to_string(&env_file)
            .with_context(|| format!("reading {}", env_file.display()))?;
        servers.env = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        Ok(servers)
    }

    /// Every connection setting (`PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`, `PGSSLMODE`,
    /// `REDIS_ADDR`).
    pub fn env(&self) -> &BTreeMap<String, String> {
        &self.env
    }

    /// The settings of one server: `postgres` (`PG…`) or `redis` (`REDIS_…`).
    pub fn env_for(&self, server: &str) -> impl Iterator<Item = (&String, &String)> {
        let prefix = match server {
            "postgres" => "PG",
            "redis" => "REDIS_",
            _ => "\0",
        };
        self.env.iter().filter(move |(k, _)| k.starts_with(prefix))
    }

    /// The servers' directory (data, logs, `env`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        // Closing the pipe tells the watchdog to stop the servers; it is done when it exits.
        drop(self.watchdog_stdin.take());
        let _ = self.watchdog.wait();
    }
}

/// Starts a built real-world program and waits for its `GOSTALL_READY` line. The settings of the
/// servers the manifest lists for it come from `servers` (an error if it needs some and there are
/// none); every other server variable is removed from its environment. It gets `GOTRACEBACK=all`
/// and a private `TMPDIR`, removed when the returned guard is dropped (which kills the program).
pub fn start(
    bin_dir: &Path,
    sc: &Scenario,
    servers: Option<&Servers>,
    stderr: Stdio,
) -> Result<Running> {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let mut cmd = Command::new(bin_dir.join(&sc.name));
    for var in SERVER_VARS {
        cmd.env_remove(var);
    }
    if !sc.servers.is_empty() {
        let Some(servers) = servers else {
            bail!(
                "{} needs servers ({}), none given",
                sc.name,
                sc.servers.join(", ")
            );
        };
        for server in &sc.servers {
            cmd.envs(servers.env_for(server));
        }
    }
    let tmp = std::env::temp_dir().join(format!(
        "gostall-realworld-{}-{}-{}",
        sc.name,
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    cmd.env("GOTRACEBACK", "all")
        .env("TMPDIR", &tmp)
        .envs(&sc.env);
    match run_to_ready(cmd, &sc.name, stderr) {
        Ok(mut running) => {
            running.tmp = Some(tmp);
            Ok(running)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}
