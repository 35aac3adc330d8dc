//! `gostall demo`: starts small Go programs bundled in the binary (builds of corpus scenarios) and
//! diagnoses them live, the way `gostall diagnose --pid` does; then diagnoses real artifacts
//! (dumps, profiles) recorded from the corpus. Where this machine does not allow reading another
//! process's memory (ptrace restrictions, a container without CAP_SYS_PTRACE, a `noexec` temporary
//! directory), it says so in one line and diagnoses the artifacts recorded from the same programs
//! instead. The first run needs nothing but the repository. Re-record everything with
//! `cargo run -p gostall-corpus --example record-demo`.
//!
//! A live demo writes its program to a private directory (mode 0700, unique name) under the
//! temporary directory, starts it, waits for its readiness line, reads it, and then kills it and
//! removes the directory — on success, on error, and on Ctrl-C (SIGINT, SIGTERM and SIGHUP are
//! caught while a demo program runs; the signal is delivered again once it is cleaned up). Should
//! gostall be killed outright, the kernel kills the program (`PR_SET_PDEATHSIG`).

use crate::{emit, Format, OutputArgs};
use anyhow::{anyhow, Context as _, Result};
use gostall_access::{AccessError, MemError, TargetError};
use gostall_extract::live::{LiveError, LiveOptions};
use gostall_extract::ExtractError;
use nix::errno::Errno;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use std::io::{BufRead, BufReader, Write as _};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One demo: artifacts recorded from one process, diagnosed together — or, when `live` is set and
/// the machine allows it, a bundled build of the same program started and read live.
struct Demo {
    title: &'static str,
    files: &'static [(&'static str, &'static [u8])],
    live: Option<Live>,
}

/// A bundled program: a gzip-compressed linux/amd64 build of a corpus scenario that prints
/// `GOSTALL_READY pprof=ADDR` once its pathology is in place.
struct Live {
    name: &'static str,
    title: &'static str,
    gz: &'static [u8],
}

include!(concat!(env!("CARGO_MANIFEST_DIR"), "/demo/demo.rs"));

/// How long a bundled program may take to print its readiness line.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after the readiness line, so the goroutine that printed it parks again.
const SETTLE: Duration = Duration::from_millis(300);
const READY_PREFIX: &str = "GOSTALL_READY pprof=";

pub(crate) fn run(out: &OutputArgs) -> Result<ExitCode> {
    let text = matches!(out.format, Format::Text);
    let total = DEMOS.len();
    let heading = |i: usize, title: &str| {
        if text {
            println!(
                "{}━━ demo {}/{total} ━━ {title}",
                if i == 0 { "" } else { "\n" },
                i + 1,
            );
        }
    };
    // Why live demos fall back to recorded artifacts, once one could not run.
    let mut refused: Option<String> = None;
    let mut told = false;
    let mut worst = ExitCode::SUCCESS;
    for (i, d) in DEMOS.iter().enumerate() {
        let mut code = None;
        if let Some(live) = &d.live {
            if refused.is_none() && !cfg!(target_arch = "x86_64") {
                refused = Some(format!(
                    "the bundled programs are linux/amd64 builds and this machine is {}",
                    std::env::consts::ARCH
                ));
            }
            if refused.is_none() {
                let res = run_live(live);
                // A signal that arrived after the last check inside, before its handlers were
                // restored: deliver it now.
                if let Some(sig) = interrupted() {
                    return Err(reraise(sig));
                }
                match res {
                    Ok((pid, snap)) => {
                        heading(i, &format!("{} (live, pid {pid})", live.title));
                        code = Some(emit(&snap, out)?);
                    }
                    Err(Failure::Refused(why)) => refused = Some(why),
                    Err(Failure::Interrupted(sig)) => return Err(reraise(sig)),
                    Err(Failure::Error(e)) => return Err(e),
                }
            }
            if code.is_none() && !told {
                told = true;
                let why = refused.as_deref().unwrap_or_default().replace('\n', " ");
                let line = format!(
                    "live demo not possible here: {why}; showing recorded artifacts of the same \
                     programs instead"
                );
                if text {
                    println!("{line}");
                } else {
                    eprintln!("gostall: {line}");
                }
            }
        }
        let code = match code {
            Some(c) => c,
            None => {
                heading(i, d.title);
                let mut snap = gostall_ingest::new_snapshot();
                for (name, bytes) in d.files {
                    gostall_ingest::ingest_reader(name, *bytes, &mut snap)?;
                }
                emit(&snap, out)?
            }
        };
        if code != ExitCode::SUCCESS {
            worst = code;
        }
    }
    Ok(worst)
}

/// Why a live demo did not produce a snapshot.
enum Failure {
    /// Live reading (or starting the program) is not allowed here: fall back, saying why.
    Refused(String),
    /// SIGINT, SIGTERM or SIGHUP arrived; the program is already gone.
    Interrupted(i32),
    /// Anything else is a real error.
    Error(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Error(e)
    }
}

/// Starts a bundled program, waits until it is ready, reads it live, and stops it. Returns its pid
/// and the snapshot.
fn run_live(live: &Live) -> Result<(u32, gostall_model::Snapshot), Failure> {
    // Declared first, so dropped last: the program is gone before the handlers are restored.
    let _signals = Interrupts::install();
    let mut session = match Session::new() {
        Ok(s) => s,
        Err(e) if is_refusal(&e) => {
            return Err(Failure::Refused(format!(
                "cannot create a directory in {} ({e})",
                std::env::temp_dir().display()
            )))
        }
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!(
                    "creating a directory in {}",
                    std::env::temp_dir().display()
                ))
                .into())
        }
    };
    let exe = session.dir.join(live.name);
    write_program(live, &exe).with_context(|| format!("writing {}", exe.display()))?;
    let stderr_path = session.dir.join("stderr.txt");
    let stderr = std::fs::File::create(&stderr_path)
        .with_context(|| format!("creating {}", stderr_path.display()))?;
    let child = match spawn(&exe, &session.dir, stderr) {
        Ok(c) => c,
        Err(e) if is_refusal(&e) => {
            return Err(Failure::Refused(format!(
                "executing a program from {} is not permitted ({}; is it mounted noexec? TMPDIR \
                 selects another directory)",
                session.dir.parent().unwrap_or(&session.dir).display(),
                e.kind()
            )))
        }
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("starting {}", exe.display()))
                .into())
        }
    };
    let pid = child.id();
    let child = session.child.insert(child);
    wait_ready(live, child, &stderr_path)?;
    let snap = gostall_extract::live::snapshot_pid(pid as i32, &LiveOptions::default());
    drop(session);
    if let Some(sig) = interrupted() {
        return Err(Failure::Interrupted(sig));
    }
    match snap {
        Ok(s) => Ok((pid, s)),
        Err(e) => match refusal(&e) {
            Some(why) => Err(Failure::Refused(why)),
            None => Err(anyhow::Error::new(e)
                .context(format!(
                    "reading the demo program {} (pid {pid})",
                    live.name
                ))
                .into()),
        },
    }
}

/// Waits for the readiness line (at most [`READY_TIMEOUT`]), then [`SETTLE`].
fn wait_ready(live: &Live, child: &mut Child, stderr_path: &Path) -> Result<(), Failure> {
    let stdout = child.stdout.take().context("the program's stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.starts_with(READY_PREFIX) {
                let _ = tx.send(());
            }
        }
    });
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(sig) = interrupted() {
            return Err(Failure::Interrupted(sig));
        }
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(()) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Its stdout is closed: it is exiting.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(Duration::from_millis(50))
            }
        }
        if let Some(status) = child.try_wait().context("waiting for the demo program")? {
            let err = std::fs::read_to_string(stderr_path).unwrap_or_default();
            let denied = err.lines().find(|l| {
                let l = l.to_ascii_lowercase();
                l.contains("operation not permitted") || l.contains("permission denied")
            });
            if let Some(l) = denied {
                return Err(Failure::Refused(format!(
                    "the demo program {} was not allowed to run: {}",
                    live.name,
                    l.trim()
                )));
            }
            return Err(anyhow!(
                "the demo program {} exited ({status}) before it was ready{}",
                live.name,
                tail(&err)
            )
            .into());
        }
        if Instant::now() > deadline {
            let err = std::fs::read_to_string(stderr_path).unwrap_or_default();
            return Err(anyhow!(
                "the demo program {} did not report ready within {} s{}",
                live.name,
                READY_TIMEOUT.as_secs(),
                tail(&err)
            )
            .into());
        }
    }
    let settled = Instant::now() + SETTLE;
    while Instant::now() < settled {
        if let Some(sig) = interrupted() {
            return Err(Failure::Interrupted(sig));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The last lines of a program's stderr, for an error message.
fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    format!(
        "; its stderr ends with:\n  {}",
        lines[lines.len().saturating_sub(5)..].join("\n  ")
    )
}

fn write_program(live: &Live, exe: &Path) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o700)
        .open(exe)?;
    std::io::copy(&mut flate2::read::GzDecoder::new(live.gz), &mut f)?;
    f.flush()
}

fn spawn(exe: &Path, dir: &Path, stderr: std::fs::File) -> std::io::Result<Child> {
    let mut cmd = Command::new(exe);
    cmd.current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    // The program dies with gostall, even when gostall is killed outright.
    let parent = nix::unistd::getpid();
    // SAFETY: prctl(2) and getppid(2) are async-signal-safe, touch nothing but the child itself,
    // and the error path does not allocate.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            if nix::unistd::getppid() != parent {
                // gostall died before the death signal was armed.
                return Err(std::io::Error::from_raw_os_error(Errno::ESRCH as i32));
            }
            Ok(())
        });
    }
    // ETXTBSY: another thread's fork may briefly hold a copy of the file's write descriptor.
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(Errno::ETXTBSY as i32) && tries < 20 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            r => return r,
        }
    }
}

/// Whether an I/O error means "not allowed" rather than "broken".
fn is_refusal(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::PermissionDenied
        || e.raw_os_error() == Some(Errno::EROFS as i32)
}

/// A private directory holding a demo program, and the running program. Dropping it kills and
/// reaps the program and removes the directory.
struct Session {
    dir: PathBuf,
    child: Option<Child>,
}

impl Session {
    /// Creates `$TMPDIR/gostall-demo-PID-NONCE` with mode 0700; never reuses an existing path.
    fn new() -> std::io::Result<Session> {
        let base = std::env::temp_dir();
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        for attempt in 0u32..100 {
            let dir = base.join(format!(
                "gostall-demo-{}-{:x}",
                std::process::id(),
                nonce.wrapping_add(attempt.wrapping_mul(0x9e37_79b9))
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {
                    return Ok(Session { dir, child: None });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "no unused directory name",
        ))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The terminating signal received while a demo program ran (0: none).
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: nix::libc::c_int) {
    INTERRUPTED.store(sig, Ordering::SeqCst);
}

fn interrupted() -> Option<i32> {
    match INTERRUPTED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// While alive, SIGINT, SIGTERM and SIGHUP only set [`INTERRUPTED`] (signals that were ignored
/// stay ignored); dropping it restores the previous dispositions.
struct Interrupts {
    saved: Vec<(Signal, SigAction)>,
}

impl Interrupts {
    fn install() -> Interrupts {
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        let mut saved = Vec::new();
        for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            // SAFETY: `on_signal` only stores to an atomic, which is async-signal-safe.
            if let Ok(prev) = unsafe { sigaction(sig, &action) } {
                if prev.handler() == SigHandler::SigIgn {
                    // SAFETY: reinstates the disposition that was in place.
                    let _ = unsafe { sigaction(sig, &prev) };
                } else {
                    saved.push((sig, prev));
                }
            }
        }
        Interrupts { saved }
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        for (sig, prev) in self.saved.drain(..) {
            // SAFETY: reinstates the disposition that was in place before `install`.
            let _ = unsafe { sigaction(sig, &prev) };
        }
    }
}

/// Delivers a caught signal again, now to the previous disposition (usually: the process ends as
/// if gostall had never caught it); returns the error to report if the process goes on.
fn reraise(sig: i32) -> anyhow::Error {
    if let Ok(s) = Signal::try_from(sig) {
        let _ = nix::sys::signal::raise(s);
    }
    anyhow!("interrupted by signal {sig}")
}

/// If a live read failed because the kernel does not allow it, why, in one line.
fn refusal(e: &LiveError) -> Option<String> {
    match e {
        LiveError::Access(a) | LiveError::Target(TargetError::Access(a)) => access_refusal(a),
        LiveError::Target(t) => target_refusal(t),
        LiveError::Extract {
            source: ExtractError::Read { source, .. },
            ..
        } => mem_refusal(source),
        _ => None,
    }
}

fn access_refusal(e: &AccessError) -> Option<String> {
    match e {
        // The first reason, without its explanation: "kernel.yama.ptrace_scope is 3", "the target
        // runs as uid 1000 (ann), gostall as uid 1001", ...
        AccessError::PermissionDenied { reasons, .. } => Some(
            reasons
                .first()
                .map(|r| {
                    let r = r.to_string();
                    r.split(": ").next().unwrap_or_default().to_string()
                })
                .unwrap_or_else(|| "the kernel denies reading another process's memory".into()),
        ),
        AccessError::Unreadable { source, .. } => mem_refusal(source),
        AccessError::Proc { path, source, .. }
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            Some(format!("reading {} is not permitted", path.display()))
        }
        _ => None,
    }
}

fn target_refusal(e: &TargetError) -> Option<String> {
    match e {
        TargetError::Mem(m) => mem_refusal(m),
        TargetError::Ptrace { op, errno, .. } if matches!(errno, Errno::EPERM | Errno::EACCES) => {
            Some(format!("{op} is not permitted ({errno})"))
        }
        TargetError::Proc { path, source }
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            Some(format!("reading {} is not permitted", path.display()))
        }
        _ => None,
    }
}

fn mem_refusal(e: &MemError) -> Option<String> {
    match e {
        MemError::PermissionDenied { .. } => {
            Some("the kernel denies reading another process's memory".into())
        }
        MemError::Os { errno, .. } if matches!(errno, Errno::EPERM | Errno::EACCES) => Some(
            format!("reading another process's memory is not permitted ({errno})"),
        ),
        _ => None,
    }
}
