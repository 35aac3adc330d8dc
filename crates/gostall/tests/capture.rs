//! `gostall capture`: every scenario is captured into a core while it runs, the process is
//! killed, and the core alone must give what the live read gave — every finding the manifest
//! expects, with all its evidence (the capture keeps what only `/proc` knew: descriptors, thread
//! names, wait channels, signal dispositions), no warning on the controls, and the same set of
//! (kind, function) findings as the live read just before. Go 1.21.13 and 1.27.3 by default
//! (`GOSTALL_GO_VERSIONS=all` for seven), default builds. gdb opens a capture; a capture of a
//! process that is not Go is refused with a clear error and leaves no file.

use gostall_corpus::{self as corpus, Scenario, Variant};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;

fn gostall(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gostall"))
        .args(args)
        .output()
        .expect("run gostall")
}

fn json(args: &[&str]) -> Result<Value, String> {
    let out = gostall(args);
    if !out.status.success() {
        return Err(format!(
            "gostall {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("bad JSON: {e}"))
}

fn check(sc: &Scenario, pid: i32, dir: &Path) -> Vec<String> {
    let pid_s = pid.to_string();
    let live = match json(&["diagnose", "--pid", &pid_s, "--format", "json"]) {
        Ok(d) => d,
        Err(e) => return vec![format!("{}: live: {e}", sc.name)],
    };
    let core = dir.join(format!("{}.core", sc.name));
    let core_s = core.display().to_string();
    let out = gostall(&["capture", "--pid", &pid_s, "-o", &core_s]);
    if !out.status.success() {
        return vec![format!(
            "{}: capture failed: {}",
            sc.name,
            String::from_utf8_lossy(&out.stderr)
        )];
    }
    // The process is not needed any more: the core alone must do.
    let _ = nix_kill(pid);
    let doc = match json(&["diagnose", &core_s, "--format", "json"]) {
        Ok(d) => d,
        Err(e) => return vec![format!("{}: core: {e}", sc.name)],
    };
    let _ = std::fs::remove_file(&core);
    let mut errs = Vec::new();
    if doc["core"]["writer"] != "gostall" {
        errs.push(format!("{}: core not recognised as a capture", sc.name));
    }
    let got = corpus::serious_findings(&doc);
    if sc.control {
        if !got.is_empty() {
            errs.push(format!("{}: control has findings: {got:?}", sc.name));
        }
    } else {
        for e in &sc.expect {
            let hit = doc["findings"].as_array().into_iter().flatten().find(|f| {
                f["severity"] != "info"
                    && e.matches(
                        f["kind"].as_str().unwrap_or_default(),
                        f["location"]["function"].as_str().unwrap_or_default(),
                    )
            });
            let Some(f) = hit else {
                errs.push(format!(
                    "{}: expected {} @ {}, got {got:?}",
                    sc.name, e.kind, e.function
                ));
                continue;
            };
            let text = format!("{} {}", f["title"], f["evidence"]);
            for want in &e.evidence {
                if !text.contains(want.as_str()) {
                    errs.push(format!(
                        "{}: {} finding lacks {want:?}: {text}",
                        sc.name, e.kind
                    ));
                }
            }
        }
    }
    let was = corpus::serious_findings(&live);
    if got != was {
        errs.push(format!(
            "{}: live findings {was:?}, the capture's {got:?}",
            sc.name
        ));
    }
    errs
}

fn nix_kill(pid: i32) -> std::io::Result<()> {
    Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .map(|_| ())
}

#[test]
fn captures_give_the_live_findings() {
    let manifest = corpus::manifest().expect("manifest");
    let dir = corpus::work_dir("captures");
    std::fs::create_dir_all(&dir).expect("capture dir");
    let errors = Mutex::new(Vec::new());
    for version in corpus::versions_from_env() {
        let bin =
            corpus::build_variant(&version, Variant::Default).unwrap_or_else(|e| panic!("{e:#}"));
        corpus::run_scenarios(&manifest.scenarios, |sc: &Scenario| {
            let errs = match corpus::start(&bin, sc, Stdio::null()) {
                Ok(r) => check(sc, r.pid(), &dir),
                Err(e) => vec![format!("{}: {e:#}", sc.name)],
            };
            errors
                .lock()
                .unwrap()
                .extend(errs.into_iter().map(|e| format!("Go {version}: {e}")));
        });
    }
    let errors = errors.into_inner().unwrap();
    assert!(
        errors.is_empty(),
        "{} problem(s):\n{}",
        errors.len(),
        errors.join("\n")
    );
}

#[test]
fn gdb_opens_a_capture_and_non_go_processes_are_refused() {
    let version = corpus::versions_from_env().pop().expect("a Go version");
    let bin = corpus::build(&version).unwrap_or_else(|e| panic!("{e:#}"));
    let sc = corpus::scenario("cgo-blocked").unwrap_or_else(|e| panic!("{e:#}"));
    let dir = corpus::work_dir("captures");
    std::fs::create_dir_all(&dir).expect("capture dir");
    let core = dir.join("gdb.core");
    let core_s = core.display().to_string();
    let r = corpus::start(&bin, &sc, Stdio::null()).unwrap_or_else(|e| panic!("{e:#}"));
    let out = gostall(&["capture", "--pid", &r.pid().to_string(), "-o", &core_s]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let threads = std::fs::read_dir(format!("/proc/{}/task", r.pid()))
        .map(|d| d.count())
        .unwrap_or(0);
    drop(r);
    corpus::realworld::install().unwrap_or_else(|e| panic!("installing gdb: {e:#}"));
    let exe = bin.join("cgo-blocked");
    let out = Command::new("gdb")
        .args(["-batch", "-nx", "-ex", "info threads"])
        .arg(&exe)
        .arg(&core)
        .output()
        .expect("gdb");
    let text = String::from_utf8_lossy(&out.stdout);
    let listed = text.lines().filter(|l| l.contains("LWP")).count();
    assert!(
        listed >= threads.min(2) && listed > 0,
        "gdb lists {listed} threads of {threads}:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("cgo-blocked") || text.contains("main.") || text.contains("runtime."),
        "gdb does not symbolise the capture:\n{text}"
    );
    let _ = std::fs::remove_file(&core);
    // A process that is not Go: a clear error, no file.
    let mut sleeper = Command::new("sleep").arg("30").spawn().expect("sleep");
    let out = gostall(&["capture", "--pid", &sleeper.id().to_string(), "-o", &core_s]);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a Go program"), "{err}");
    assert!(!core.exists(), "a refused capture left {}", core.display());
}
