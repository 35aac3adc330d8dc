//! Core files end to end: every corpus scenario is diagnosed from a core of it and must give the
//! findings the manifest expects, as the live process does. Two kinds of core:
//!
//! - gdb's `gcore` of the running program, taken right after diagnosing it live (`--pid`): every
//!   thread stopped where it was. gdb writes gigabytes of zeros for the runtime's reserved address
//!   space (about 1.8 GB a core here, four at a time), so each core goes to a directory under the
//!   target directory and is removed as soon as it is read;
//! - the kernel's core of a Go crash: the program runs with `GOTRACEBACK=crash`, the soft core
//!   limit raised to the hard one and a fresh working directory, gets SIGQUIT once its pathology is
//!   in place, prints every goroutine and aborts itself. Every thread is then in Go's signal
//!   handler (the runtime relays SIGQUIT until each M has taken it) and the world is frozen
//!   (`runtime.freezetheworld`); the reader takes each thread's state from its signal frame.
//!   Where `kernel.core_pattern` pipes cores to a program, these are skipped, saying so.
//!
//! In the default build on every Go version under test (`GOSTALL_GO_VERSIONS`), and in the
//! stripped build (`-ldflags=-s -w`) on the newest (`GOSTALL_CORE_VARIANTS` names others, as
//! `Variant::name`, comma-separated). The evidence the manifest asks of a live read is checked
//! too, except what only `/proc` or a second look at the running process can give
//! ([`NEEDS_PROCESS`], [`KINDS_NEED_PROCESS`]) and what gdb leaves out of its cores
//! ([`GDB_LACKS`]), each with why; the run prints what it did not check. Each core's warnings and
//! criticals are compared with the live read's by kind and function: a difference those lists do
//! not explain fails, and every failure message shows the difference.

use gostall_corpus::{self as corpus, Expect, Scenario, StartOptions, Variant};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Evidence texts (as the manifest words them) that a core cannot hold, and why: a core has the
/// process's memory and each thread's registers and signal masks, nothing of what the kernel
/// shows about a process only while it runs. `whole` marks evidence the finding itself rests on:
/// the expectation is not checked against a core at all.
struct Skip {
    text: &'static str,
    why: &'static str,
    whole: bool,
}

const NEEDS_PROCESS: &[Skip] = &[
    Skip {
        text: "pipe:[",
        why: "what a descriptor refers to is the link /proc/PID/fd/N",
        whole: false,
    },
    Skip {
        text: "gostall-spool-",
        why: "the file a descriptor has open is the link /proc/PID/fd/N",
        whole: false,
    },
    Skip {
        text: "wchan",
        why: "a thread's kernel wait channel is /proc/PID/task/TID/wchan",
        whole: false,
    },
    Skip {
        text: "ev-worker",
        why: "thread names are /proc/PID/task/TID/comm; a core records only the process's name",
        whole: false,
    },
    Skip {
        text: "blocked ≥",
        why: "how long a goroutine has waited needs the clock at the dump, which neither gdb nor the kernel records (gostall capture does)",
        whole: false,
    },
    Skip {
        text: "a preemption request stuck",
        why: "a request is stuck when m.preemptGen stays unchanged over a second look at the running process",
        whole: false,
    },
    Skip {
        text: "taken over by another handler",
        why: "the finding is that a handler other than Go's receives SIGURG: it rests on the process's signal dispositions (SigCgt in /proc/PID/status) and on a second look (m.preemptGen unchanged), neither in a core",
        whole: true,
    },
    Skip {
        text: "never acknowledged",
        why: "a second look at the running process",
        whole: false,
    },
];

/// Evidence gdb's cores cannot hold, though the kernel's do: (text, why). The finding rests on it.
const GDB_LACKS: &[(&str, &str)] = &[(
    "SIGURG blocked",
    "gdb writes no signal masks into its cores (bfd's elfcore_write_prstatus fills in only the thread id, the stop signal and the registers), so no blocked signal shows",
)];

/// Finding kinds no core can give, and why.
const KINDS_NEED_PROCESS: &[(&str, &str)] = &[(
    "c_memory_growth",
    "memory outside Go's heap is measured from what is resident (/proc/PID/smaps) and its growth over samples; a core has the mappings, not residency nor growth",
)];

fn gostall(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gostall"))
        .args(args)
        .output()
        .expect("run gostall")
}

fn diagnose(args: &[&str]) -> Result<Value, String> {
    let mut all = vec!["diagnose"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let out = gostall(&all);
    if !out.status.success() {
        return Err(format!(
            "gostall {} failed: {}",
            all.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("bad JSON: {e}"))
}

fn summary(doc: &Value) -> String {
    doc["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            format!(
                "{} {} @ {}",
                f["severity"].as_str().unwrap_or_default(),
                f["kind"].as_str().unwrap_or_default(),
                f["location"]["function"].as_str().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why an expectation cannot be checked against a core from `source`, if it cannot.
fn unreachable_in_core(e: &Expect, source: Source) -> Option<&'static str> {
    if let Some((_, why)) = KINDS_NEED_PROCESS.iter().find(|(k, _)| *k == e.kind) {
        return Some(why);
    }
    if source == Source::Gcore {
        if let Some((_, why)) = GDB_LACKS
            .iter()
            .find(|(text, _)| e.evidence.iter().any(|w| w.contains(text)))
        {
            return Some(why);
        }
    }
    NEEDS_PROCESS
        .iter()
        .find(|s| s.whole && e.evidence.iter().any(|w| w.contains(s.text)))
        .map(|s| s.why)
}

/// Checks a core's report against the manifest: the expected findings with the evidence a core
/// can hold (per build, as the live test: no file:line for C without DWARF, no names of the
/// executable's own C functions and data without a symbol table); no warning on a control.
fn check(sc: &Scenario, doc: &Value, variant: Variant, source: Source, log: &Log) -> Vec<String> {
    let c_lines = !matches!(
        variant,
        Variant::NoDwarf | Variant::Stripped | Variant::Release
    );
    let c_names = !matches!(variant, Variant::Stripped | Variant::Release);
    let mut errs = Vec::new();
    if doc["summary"]["goroutines"].as_u64().unwrap_or(0) == 0 {
        errs.push("no goroutines read".to_string());
    }
    if doc["threads"].as_array().map_or(0, |t| t.len()) == 0 {
        errs.push("no threads listed".to_string());
    }
    if doc["core"].is_null() {
        errs.push("no core section".to_string());
    }
    if sc.control {
        if !corpus::serious_findings(doc).is_empty() {
            errs.push(format!(
                "control has warning/critical findings: {}",
                summary(doc)
            ));
        }
        return errs;
    }
    for e in &sc.expect {
        if let Some(why) = unreachable_in_core(e, source) {
            log.skipped.lock().unwrap().insert(format!(
                "{} {} {} @ {}: {why}",
                source.name(),
                sc.name,
                e.kind,
                e.function
            ));
            continue;
        }
        let hit = doc["findings"].as_array().into_iter().flatten().find(|f| {
            e.matches(
                f["kind"].as_str().unwrap_or_default(),
                f["location"]["function"].as_str().unwrap_or_default(),
            ) && f["severity"] != "info"
        });
        let Some(f) = hit else {
            errs.push(format!(
                "expected {} @ {}, got [{}]",
                e.kind,
                e.function,
                summary(doc)
            ));
            continue;
        };
        let text = format!("{} {}", f["title"], f["evidence"]);
        for want in e
            .evidence
            .iter()
            .filter(|w| c_lines || !w.contains(".c:"))
            .filter(|w| c_names || !(w.starts_with("C ") || w.starts_with('<')))
        {
            if let Some(s) = NEEDS_PROCESS.iter().find(|s| want.contains(s.text)) {
                log.skipped
                    .lock()
                    .unwrap()
                    .insert(format!("{}: evidence {want:?}: {}", sc.name, s.why));
                continue;
            }
            if !text.contains(want.as_str()) {
                errs.push(format!("{} finding lacks {want:?}: {text}", e.kind));
            }
        }
    }
    errs
}

/// What the live report and the core's differ in (warning and critical findings by kind and
/// function): `(text, explained)`, `None` when they agree. A finding only the live read has is
/// explained when the manifest expects it and a core cannot hold what it rests on (see
/// [`unreachable_in_core`]); anything else is not.
fn differences(
    sc: &Scenario,
    source: Source,
    live: &Value,
    core: &Value,
) -> Option<(String, bool)> {
    let (l, c) = (
        corpus::serious_findings(live),
        corpus::serious_findings(core),
    );
    let only_live: Vec<&(String, String)> = l.difference(&c).collect();
    let only_core: Vec<&(String, String)> = c.difference(&l).collect();
    if only_live.is_empty() && only_core.is_empty() {
        return None;
    }
    let explained = only_core.is_empty()
        && only_live.iter().all(|(k, f)| {
            sc.expect
                .iter()
                .any(|e| e.matches(k, f) && unreachable_in_core(e, source).is_some())
        });
    let list = |v: &[&(String, String)]| {
        v.iter()
            .map(|(k, f)| format!("{k} @ {f}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    Some((
        format!(
            "live only: [{}]; core only: [{}]",
            list(&only_live),
            list(&only_core)
        ),
        explained,
    ))
}

/// What the run noted beside failures: expectations and evidence not checked against cores (and
/// why), and where a core's findings differ from the live ones.
#[derive(Default)]
struct Log {
    skipped: Mutex<BTreeSet<String>>,
    differences: Mutex<Vec<String>>,
}

/// Who wrote a core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// gdb's `gcore`, of the running program.
    Gcore,
    /// The kernel, as the program crashed (`GOTRACEBACK=crash`, SIGQUIT).
    Crash,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Gcore => "gcore",
            Source::Crash => "crash core",
        }
    }
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory under the target directory (cores are large: never under /tmp, which may
/// be a small tmpfs), removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "cores-{}-{what}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `gcore -o DIR/gc PID`: the core's path (`DIR/gc.PID`).
fn gcore(dir: &Path, pid: i32) -> Result<PathBuf, String> {
    let mut child = Command::new("gcore")
        .arg("-o")
        .arg(dir.join("gc"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running gcore (gdb): {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("gcore took over 120 s".to_string());
            }
        }
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let core = dir.join(format!("gc.{pid}"));
    if !out.status.success() || !core.exists() {
        return Err(format!(
            "gcore failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(core)
}

/// Where the kernel writes cores, from `/proc/sys/kernel/core_pattern`.
#[derive(Debug, Clone)]
enum CorePattern {
    /// A file: the pattern's directory (relative ones: the crashing process's working
    /// directory) and the file name as a glob, `%` specifiers expanded where the test knows
    /// their value and `*` elsewhere.
    File { dir: Option<PathBuf>, name: String },
    /// Piped to a program (systemd-coredump, apport…): the test cannot get the core.
    Pipe(String),
}

fn core_pattern() -> CorePattern {
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern")
        .unwrap_or_else(|_| "core".to_string())
        .trim_end()
        .to_string();
    if pattern.starts_with('|') {
        return CorePattern::Pipe(pattern);
    }
    let path = Path::new(&pattern);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(Path::to_path_buf);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "core".to_string());
    CorePattern::File { dir, name }
}

/// The name glob of the core of `pid` (command name `comm`) for a pattern's file name.
fn core_glob(name: &str, pid: i32, comm: &str) -> String {
    let uses_pid =
        std::fs::read_to_string("/proc/sys/kernel/core_uses_pid").is_ok_and(|s| s.trim() == "1");
    let mut out = String::new();
    let mut chars = name.chars();
    let mut has_pid = false;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('p') | Some('P') => {
                has_pid = true;
                out.push_str(&pid.to_string());
            }
            Some('e') => out.push_str(&comm.chars().take(15).collect::<String>()),
            _ => out.push('*'),
        }
    }
    if uses_pid && !has_pid {
        out.push_str(&format!(".{pid}"));
    }
    out
}

fn glob_match(glob: &str, name: &str) -> bool {
    match glob.split_once('*') {
        None => glob == name,
        Some((head, rest)) => {
            let Some(tail) = name.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|&i| tail.is_char_boundary(i))
                .any(|i| glob_match(rest, &tail[i..]))
        }
    }
}

/// Runs a scenario with `GOTRACEBACK=crash` in `dir`, sends it SIGQUIT once ready, and returns
/// the core the kernel wrote.
fn crash_core(
    bin: &Path,
    sc: &Scenario,
    dir: &Path,
    pattern: &CorePattern,
) -> Result<PathBuf, String> {
    let CorePattern::File {
        dir: core_dir,
        name,
    } = pattern
    else {
        unreachable!("checked by the caller");
    };
    let opts = StartOptions {
        env: vec![("GOTRACEBACK".to_string(), "crash".to_string())],
        cwd: Some(dir.to_path_buf()),
        dump_core: true,
    };
    let mut r = corpus::start_with(bin, sc, Stdio::null(), &opts).map_err(|e| format!("{e:#}"))?;
    let pid = r.pid();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGQUIT,
    )
    .map_err(|e| format!("SIGQUIT: {e}"))?;
    // Go's crash relays SIGQUIT to every M so each prints its stack, waiting up to 5 s for them.
    let status = r
        .wait_exit(Duration::from_secs(60))
        .map_err(|e| format!("{e:#}"))?
        .ok_or("still running 60 s after SIGQUIT")?;
    let core_dir = match core_dir {
        Some(d) if d.is_absolute() => d.clone(),
        Some(d) => dir.join(d),
        None => dir.to_path_buf(),
    };
    let glob = core_glob(name, pid, &sc.name);
    let found = std::fs::read_dir(&core_dir)
        .map_err(|e| format!("{}: {e}", core_dir.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| glob_match(&glob, &n.to_string_lossy()))
        });
    found.ok_or_else(|| {
        format!(
            "no core {glob} in {} after the crash ({status}; is the core size limit's hard value 0?)",
            core_dir.display()
        )
    })
}

/// The build variants: `GOSTALL_CORE_VARIANTS`, else the default build on every version and the
/// stripped build on the newest.
fn variants(version: &str, newest: &str) -> Vec<Variant> {
    match Variant::from_env("GOSTALL_CORE_VARIANTS") {
        Some(v) => v,
        None if version == newest => vec![Variant::Default, Variant::Stripped],
        None => vec![Variant::Default],
    }
}

/// Free space the gcore cores need under the target directory: four at a time, 1.8 GB each on
/// this corpus, with room to spare.
const DISK_NEEDED: u64 = 10 << 30;

#[test]
fn cores_give_the_live_findings() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(tmp).expect("target/tmp");
    let vfs = nix::sys::statvfs::statvfs(tmp).expect("statvfs");
    let free = vfs.blocks_available() * vfs.fragment_size();
    assert!(
        free >= DISK_NEEDED,
        "{}: {} GiB free; the gcore cores need {} GiB (gdb writes ~1.8 GB a core, four at a time)",
        tmp.display(),
        free >> 30,
        DISK_NEEDED >> 30
    );
    corpus::realworld::install().unwrap_or_else(|e| panic!("installing gdb: {e:#}"));
    assert!(
        Command::new("gcore")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok(),
        "gcore (gdb) is not installed, though scripts/install-realworld.sh ran: this test takes cores of the running scenarios with it (Debian: apt-get install gdb)"
    );
    let manifest = corpus::manifest().expect("manifest");
    let pattern = core_pattern();
    if let CorePattern::Pipe(p) = &pattern {
        eprintln!(
            "NOTE: kernel cores go to a pipe handler (core_pattern {p:?}), not to a file this test can read: the GOTRACEBACK=crash cores are not checked; only gcore's"
        );
    }
    let errors = Mutex::new(Vec::new());
    let log = Log::default();
    let started = Instant::now();
    let versions = corpus::versions_from_env();
    let newest = versions.last().cloned().unwrap_or_default();
    let mut cores = 0usize;
    for version in &versions {
        for variant in variants(version, &newest) {
            let bin = corpus::build_variant(version, variant).unwrap_or_else(|e| panic!("{e:#}"));
            let scenarios = manifest
                .scenarios
                .iter()
                .filter(|s| !(variant == Variant::NoCgo && s.cgo));
            cores += scenarios.clone().count() * 2;
            corpus::run_scenarios(scenarios, |sc: &Scenario| {
                let at = format!("Go {version} {variant:?} {}", sc.name);
                let errs = check_scenario(&bin, sc, variant, &pattern, &at, &log);
                errors
                    .lock()
                    .unwrap()
                    .extend(errs.into_iter().map(|e| format!("{at}: {e}")));
            });
        }
    }
    eprintln!(
        "{cores} cores of {} scenarios checked in {:.0?}",
        manifest.scenarios.len(),
        started.elapsed()
    );
    eprintln!("not checked against cores:");
    for s in log.skipped.into_inner().unwrap() {
        eprintln!("  {s}");
    }
    let differences = log.differences.into_inner().unwrap();
    if !differences.is_empty() {
        eprintln!("cores whose findings differ from the live read's:");
        for d in &differences {
            eprintln!("  {d}");
        }
    }
    let errors = errors.into_inner().unwrap();
    assert!(
        errors.is_empty(),
        "{} problem(s):\n{}",
        errors.len(),
        errors.join("\n")
    );
}

/// Diagnoses one scenario live, from its gcore, and from its crash core.
fn check_scenario(
    bin: &Path,
    sc: &Scenario,
    variant: Variant,
    pattern: &CorePattern,
    at: &str,
    log: &Log,
) -> Vec<String> {
    let mut errs = Vec::new();
    let live = {
        let r = match corpus::start(bin, sc, Stdio::null()) {
            Ok(r) => r,
            Err(e) => return vec![format!("{e:#}")],
        };
        let pid = r.pid().to_string();
        let live = match diagnose(&["--pid", &pid]) {
            Ok(d) => d,
            Err(e) => return vec![format!("live: {e}")],
        };
        let dir = TempDir::new(&sc.name);
        match gcore(&dir.0, r.pid()) {
            Ok(core) => {
                // The core is read, then removed at once: gdb writes gigabytes per core.
                drop(r);
                let core_s = core.display().to_string();
                let result = diagnose(&[&core_s]);
                let _ = std::fs::remove_file(&core);
                errs.extend(report(Source::Gcore, sc, &live, result, variant, at, log));
            }
            Err(e) => errs.push(format!("gcore: {e}")),
        }
        live
    };
    if matches!(pattern, CorePattern::File { .. }) {
        let dir = TempDir::new(&sc.name);
        match crash_core(bin, sc, &dir.0, pattern) {
            Ok(core) => {
                let core_s = core.display().to_string();
                let result = diagnose(&[&core_s]);
                let _ = std::fs::remove_file(&core);
                errs.extend(report(Source::Crash, sc, &live, result, variant, at, log));
            }
            Err(e) => errs.push(format!("crash core: {e}")),
        }
    }
    errs
}

fn report(
    source: Source,
    sc: &Scenario,
    live: &Value,
    result: Result<Value, String>,
    variant: Variant,
    at: &str,
    log: &Log,
) -> Vec<String> {
    let what = source.name();
    let doc = match result {
        Ok(d) => d,
        Err(e) => return vec![format!("{what}: {e}")],
    };
    let errs = check(sc, &doc, variant, source, log);
    let Some((diff, explained)) = differences(sc, source, live, &doc) else {
        return errs.into_iter().map(|e| format!("{what}: {e}")).collect();
    };
    log.differences.lock().unwrap().push(format!(
        "{at} {what}: {diff}{}",
        if explained { " (explained above)" } else { "" }
    ));
    let mut out: Vec<String> = errs
        .into_iter()
        .map(|e| format!("{what}: {e} (against the live read: {diff})"))
        .collect();
    if !explained {
        out.push(format!(
            "{what}: findings differ from the live read's: {diff}"
        ));
    }
    out
}
