//! Live attach end to end: every corpus scenario is started and diagnosed with `--pid`, in six
//! builds (default, `-buildmode=pie`, `CGO_ENABLED=0`, `-ldflags=-w`, `-ldflags=-s -w`, and a release
//! build with `-trimpath -buildvcs=false -ldflags=-s -w`), on Go 1.21.13 and 1.27.3 by default
//! (`GOSTALL_GO_VERSIONS=all` for the seven). Plus the signal facts of a healthy program and of
//! the two whose C libraries take SIGURG away, and the safety tests: repeated pause/resume under
//! request load fails no request, and a gostall killed while holding the target paused leaves it
//! running.

use gostall_corpus::{self as corpus, Scenario, Variant};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

fn gostall(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gostall"))
        .args(args)
        .output()
        .expect("run gostall")
}

fn findings(doc: &Value) -> Vec<(String, String, String)> {
    doc["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["kind"].as_str().unwrap_or_default().to_string(),
                f["severity"].as_str().unwrap_or_default().to_string(),
                f["location"]["function"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

/// The build variants every scenario runs in: `GOSTALL_LIVE_VARIANTS` (names as
/// `Variant::name`, comma-separated) or all of them.
fn variants() -> Vec<Variant> {
    Variant::from_env("GOSTALL_LIVE_VARIANTS").unwrap_or_else(|| Variant::ALL.to_vec())
}

/// Checks one live scenario; what the evidence can say depends on the build: without DWARF C
/// functions have no file:line, without a symbol table the executable's own C functions and
/// data (`C name`, `<symbol>` in the manifest's evidence) have no name.
fn check_live(sc: &Scenario, pid: i32, pause: bool, variant: Variant) -> Vec<String> {
    let c_lines = !matches!(
        variant,
        Variant::NoDwarf | Variant::Stripped | Variant::Release
    );
    let c_names = !matches!(variant, Variant::Stripped | Variant::Release);
    let pid_s = pid.to_string();
    let mut args = vec!["diagnose", "--pid", &pid_s, "--format", "json"];
    if pause {
        args.push("--pause");
    }
    let out = gostall(&args);
    if !out.status.success() {
        return vec![format!(
            "{}: gostall diagnose --pid failed: {}",
            sc.name,
            String::from_utf8_lossy(&out.stderr)
        )];
    }
    let doc: Value = match serde_json::from_slice(&out.stdout) {
        Ok(d) => d,
        Err(e) => return vec![format!("{}: bad JSON: {e}", sc.name)],
    };
    let mut errs = Vec::new();
    if doc["summary"]["goroutines"].as_u64().unwrap_or(0) == 0 {
        errs.push(format!("{}: no goroutines read", sc.name));
    }
    if doc["threads"].as_array().map_or(0, |t| t.len()) == 0 {
        errs.push(format!("{}: no threads listed", sc.name));
    }
    // One pathology is said once: no two findings of a kind over the same goroutines.
    let mut seen: Vec<(String, Vec<u64>)> = Vec::new();
    for f in doc["findings"].as_array().into_iter().flatten() {
        let mut ids: Vec<u64> = f["goroutines"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .collect();
        ids.sort_unstable();
        let key = (f["kind"].as_str().unwrap_or_default().to_string(), ids);
        if !key.1.is_empty() && seen.contains(&key) {
            errs.push(format!(
                "{}: two {} findings over the same goroutines {:?}",
                sc.name, key.0, key.1
            ));
        }
        seen.push(key);
    }
    let got = findings(&doc);
    let summary: Vec<String> = got
        .iter()
        .map(|(k, s, f)| format!("{s} {k} @ {f}"))
        .collect();
    if sc.control {
        if got.iter().any(|(_, s, _)| s != "info") {
            errs.push(format!(
                "{}: control has warning/critical findings: {}",
                sc.name,
                summary.join("; ")
            ));
        }
    } else {
        for e in &sc.expect {
            let hit = doc["findings"].as_array().into_iter().flatten().find(|f| {
                e.matches(
                    f["kind"].as_str().unwrap_or_default(),
                    f["location"]["function"].as_str().unwrap_or_default(),
                ) && f["severity"] != "info"
            });
            let Some(f) = hit else {
                errs.push(format!(
                    "{}: expected {} @ {}, got [{}]",
                    sc.name,
                    e.kind,
                    e.function,
                    summary.join("; ")
                ));
                continue;
            };
            let text = format!("{} {}", f["title"], f["evidence"]);
            // Without DWARF, C functions are named from the symbol table but have no file:line.
            for want in e
                .evidence
                .iter()
                .filter(|w| c_lines || !w.contains(".c:"))
                .filter(|w| c_names || !(w.starts_with("C ") || w.starts_with('<')))
            {
                if !text.contains(want.as_str()) {
                    errs.push(format!(
                        "{}: {} finding lacks {want:?}: {text}",
                        sc.name, e.kind
                    ));
                }
            }
        }
    }
    errs
}

#[test]
fn live_scenarios_are_diagnosed() {
    let manifest = corpus::manifest().expect("manifest");
    let errors = Mutex::new(Vec::new());
    for version in corpus::versions_from_env() {
        for variant in variants() {
            let bin = corpus::build_variant(&version, variant).unwrap_or_else(|e| panic!("{e:#}"));
            let scenarios = manifest
                .scenarios
                .iter()
                .filter(|s| !(variant == Variant::NoCgo && s.cgo));
            corpus::run_scenarios(scenarios, |sc: &Scenario| {
                let errs = match corpus::start(&bin, sc, Stdio::null()) {
                    // Never --pause: where a running goroutine's stack is needed (starvation),
                    // gostall pauses on its own for a few milliseconds.
                    Ok(r) => check_live(sc, r.pid(), false, variant),
                    Err(e) => vec![format!("{}: {e:#}", sc.name)],
                };
                errors.lock().unwrap().extend(
                    errs.into_iter()
                        .map(|e| format!("Go {version} {variant:?}: {e}")),
                );
            });
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

fn scenario(name: &str) -> Scenario {
    corpus::scenario(name).unwrap_or_else(|e| panic!("{e:#}"))
}

fn mask(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or_else(|| panic!("not a mask: {v}"))
}

fn diagnose_json(pid: i32) -> Value {
    let out = gostall(&["diagnose", "--pid", &pid.to_string(), "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// The raw signal facts of a live read: the runtime's records (handlers Go installed, handlers it
/// forwards to, named from the executable's symbols) and per-thread masks and preemption state —
/// in a healthy program, and in the two programs whose C libraries take SIGURG away.
#[test]
fn live_signal_facts() {
    const URG: u64 = 1 << 22;
    const SEGV: u64 = 1 << 10;
    let needed = URG | SEGV | (1 << 26) | (1 << 6) | (1 << 7) | (1 << 3) | (1 << 4);
    for version in corpus::versions_from_env() {
        let bin = corpus::build(&version).unwrap();
        let go_threads = |doc: &Value| -> Vec<Value> {
            doc["threads"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| !t["m"].is_null() && t["in_cgo"] == false)
                .cloned()
                .collect()
        };

        let r = corpus::start(&bin, &scenario("control-idle-server"), Stdio::null()).unwrap();
        let doc = diagnose_json(r.pid());
        let sig = &doc["signals"];
        assert_eq!(
            mask(&sig["go_handled"]) & (URG | SEGV),
            URG | SEGV,
            "Go {version}: {sig}"
        );
        assert_eq!(
            mask(&sig["caught"]) & mask(&sig["go_handled"]),
            mask(&sig["go_handled"])
        );
        assert_eq!(sig["async_preempt_off"], false);
        assert_eq!(sig["cpu_profiler_linked"], true, "net/http/pprof is linked");
        for t in go_threads(&doc) {
            assert_eq!(mask(&t["sig_blocked"]) & needed, 0, "Go {version}: {t}");
            assert_eq!(t["preempt_signal_stuck"], false, "Go {version}: {t}");
            assert_eq!(t["origin"], "go");
        }
        drop(r);

        let r = corpus::start(&bin, &scenario("cgo-sigurg-blocked"), Stdio::null()).unwrap();
        let doc = diagnose_json(r.pid());
        let fwd = doc["signals"]["forwarded"].as_array().unwrap();
        assert!(
            fwd.iter()
                .any(|f| f["signal"] == 11 && f["symbol"] == "feed_crash_report"),
            "Go {version}: the C crash reporter installed before Go: {fwd:?}"
        );
        let stuck: Vec<Value> = go_threads(&doc)
            .into_iter()
            .filter(|t| t["preempt_signal_stuck"] == true)
            .collect();
        assert!(
            stuck.iter().any(|t| mask(&t["sig_blocked"]) & URG != 0
                && mask(&t["sig_pending"]) & URG != 0
                && !t["locked_goroutine"].is_null()),
            "Go {version}: the poller's thread blocks SIGURG with a preemption stuck: {stuck:?}"
        );
        drop(r);

        let r = corpus::start(&bin, &scenario("cgo-signal-handler"), Stdio::null()).unwrap();
        let doc = diagnose_json(r.pid());
        assert_ne!(mask(&doc["signals"]["caught"]) & URG, 0);
        let stuck: Vec<Value> = go_threads(&doc)
            .into_iter()
            .filter(|t| t["preempt_signal_stuck"] == true)
            .collect();
        assert!(
            stuck
                .iter()
                .any(|t| mask(&t["sig_blocked"]) & URG == 0 && !t["locked_goroutine"].is_null()),
            "Go {version}: the session thread's preemption went to the C handler: {stuck:?}"
        );
    }
}

fn thread_states(pid: i32) -> Vec<char> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for e in rd.flatten() {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            if let Some(i) = stat.rfind(')') {
                if let Some(c) = stat[i + 1..].trim_start().chars().next() {
                    v.push(c);
                }
            }
        }
    }
    v
}

#[test]
fn pausing_repeatedly_under_load_fails_no_request() {
    let version = corpus::DEFAULT_VERSIONS[1];
    let bin = corpus::build(version).unwrap();
    let sc = scenario("control-idle-server");
    let r = corpus::start(&bin, &sc, Stdio::null()).unwrap();
    let stop = AtomicBool::new(false);
    let ok = AtomicU64::new(0);
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let started = Instant::now();
                while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
                    match corpus::http_get(&r.addr, "/debug/pprof/", Duration::from_secs(5)) {
                        Ok(_) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => failed.lock().unwrap().push(format!("{e:#}")),
                    }
                }
            });
        }
        let pid = r.pid().to_string();
        for i in 0..20 {
            let args: &[&str] = if i % 2 == 0 {
                &[
                    "dump",
                    "--pid",
                    &pid,
                    "--pause",
                    "--format",
                    "json",
                    "--no-goroutines",
                ]
            } else {
                &["dump", "--pid", &pid, "--format", "json", "--no-goroutines"]
            };
            let out = gostall(args);
            assert!(
                out.status.success(),
                "gostall dump failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        stop.store(true, Ordering::Relaxed);
    });
    let failed = failed.into_inner().unwrap();
    assert!(failed.is_empty(), "requests failed: {failed:?}");
    assert!(ok.load(Ordering::Relaxed) > 20, "too few requests made");
    assert!(
        !thread_states(r.pid())
            .iter()
            .any(|c| *c == 't' || *c == 'T'),
        "a thread stayed stopped"
    );
}

#[test]
fn killing_gostall_while_paused_leaves_the_target_running() {
    let version = corpus::DEFAULT_VERSIONS[1];
    let bin = corpus::build(version).unwrap();
    let sc = scenario("control-idle-server");
    let r = corpus::start(&bin, &sc, Stdio::null()).unwrap();
    let pid = r.pid().to_string();
    let mut g = Command::new(env!("CARGO_BIN_EXE_gostall"))
        .args(["dump", "--pid", &pid, "--pause", "--pause-cap", "30000"])
        .env("GOSTALL_TEST_HOLD_PAUSE_MS", "20000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the target is frozen.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let st = thread_states(r.pid());
        if !st.is_empty() && st.iter().all(|c| *c == 't') {
            break;
        }
        assert!(Instant::now() < deadline, "target never paused: {st:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        corpus::http_get(&r.addr, "/debug/pprof/", Duration::from_millis(300)).is_err(),
        "a paused target answered"
    );
    g.kill().unwrap();
    g.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if corpus::http_get(&r.addr, "/debug/pprof/", Duration::from_secs(2)).is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "target did not resume after gostall was killed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!thread_states(r.pid())
        .iter()
        .any(|c| *c == 't' || *c == 'T'));
}
