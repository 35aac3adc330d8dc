//! Resident memory read live, against ground truth: the scenario `cgo-malloc-leak` leaks through a
//! vendored C library that counts every byte it allocates (`GET /thumbcache/stats`), so the non-Go
//! estimate can be checked against what C really holds. Then sampling over time on the same
//! program leaking at a fixed rate, Ctrl-C during sampling, and a pure-Go control.
//!
//! Go versions: `GOSTALL_GO_VERSIONS` (comma-separated or `all`); default 1.21.13 and 1.27.3.

use gostall_corpus::{self as corpus, Scenario};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

fn gostall(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_gostall"))
        .args(args)
        .output()
        .expect("run gostall");
    assert!(
        out.status.success(),
        "gostall {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn scenario(name: &str) -> Scenario {
    corpus::scenario(name).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Bytes the scenario's C library holds (allocated − freed), from its own accounting.
fn c_bytes(addr: &str) -> u64 {
    let body = corpus::http_get(addr, "/thumbcache/stats", Duration::from_secs(10)).unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    v["live"].as_u64().unwrap()
}

fn finding<'a>(doc: &'a Value, kind: &str) -> Option<&'a Value> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == kind)
}

fn named(list: &Value, name: &str) -> Option<u64> {
    list.as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["bytes"].as_u64())
}

#[test]
fn non_go_estimate_matches_what_c_allocated() {
    let sc = scenario("cgo-malloc-leak");
    for version in corpus::versions_from_env() {
        let bin = corpus::build(&version).unwrap_or_else(|e| panic!("{e:#}"));
        let r = corpus::start(&bin, &sc, Stdio::null()).unwrap();
        let before = c_bytes(&r.addr);
        let pid = r.pid().to_string();
        let doc = gostall(&["diagnose", "--pid", &pid, "--format", "json"]);
        assert_eq!(
            before,
            c_bytes(&r.addr),
            "Go {version}: the scenario kept allocating"
        );
        assert!(
            before >= 300 * MIB,
            "Go {version}: the scenario allocated only {before}"
        );
        let m = &doc["memory"];
        let est = m["non_go_estimate"].as_u64().unwrap();
        let err = est.abs_diff(before) as f64 / before as f64;
        assert!(
            err <= 0.10,
            "Go {version}: non-Go estimate {est} is {:.1}% off the {before} bytes C allocated: {m}",
            err * 100.0
        );
        let rss = m["rss"].as_u64().unwrap();
        assert!(rss >= est, "Go {version}: estimate above RSS: {m}");
        assert!(m["go_runtime"].as_u64().unwrap() > 0, "Go {version}: {m}");
        for part in [
            "heap_in_use",
            "heap_free",
            "stacks",
            "mspan",
            "mcache",
            "gc_misc",
        ] {
            assert!(
                named(&m["go_breakdown"], part).is_some(),
                "Go {version}: no {part} in the Go runtime's breakdown: {m}"
            );
        }
        assert!(
            named(&m["by_kind"], "go heap").unwrap_or(0) > 0,
            "Go {version}: Go heap arenas not found: {m}"
        );
        assert!(
            m["cgo_functions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == "C.tc_render"),
            "Go {version}: {m}"
        );
        let notes = doc["live"]["notes"].to_string();
        assert!(!notes.contains("memory:"), "Go {version}: {notes}");
        let f = finding(&doc, "c_memory_growth")
            .unwrap_or_else(|| panic!("Go {version}: no c_memory_growth finding"));
        assert_eq!(f["severity"], "warning", "Go {version}: {f}");
    }
}

#[test]
fn a_pure_go_program_has_almost_no_non_go_memory() {
    let sc = scenario("control-idle-server");
    for version in corpus::versions_from_env() {
        let bin = corpus::build(&version).unwrap_or_else(|e| panic!("{e:#}"));
        let r = corpus::start(&bin, &sc, Stdio::null()).unwrap();
        let doc = gostall(&[
            "diagnose",
            "--pid",
            &r.pid().to_string(),
            "--format",
            "json",
        ]);
        let m = &doc["memory"];
        let est = m["non_go_estimate"].as_u64().unwrap();
        assert!(
            est < 4 * MIB,
            "Go {version}: {est} bytes of non-Go memory: {m}"
        );
        assert!(finding(&doc, "c_memory_growth").is_none(), "Go {version}");
    }
}

#[test]
fn samples_show_a_leak_growing() {
    let mut sc = scenario("cgo-malloc-leak");
    // About 100 MiB per second after readiness.
    sc.env
        .insert("THUMB_LEAK_MIB_PER_SEC".to_string(), "100".to_string());
    for version in corpus::versions_from_env() {
        let bin = corpus::build(&version).unwrap_or_else(|e| panic!("{e:#}"));
        let r = corpus::start(&bin, &sc, Stdio::null()).unwrap();
        let pid = r.pid().to_string();
        let doc = gostall(&[
            "diagnose",
            "--pid",
            &pid,
            "--format",
            "json",
            "--samples",
            "3",
            "--interval",
            "300ms",
        ]);
        let samples = doc["memory"]["samples"].as_array().unwrap().clone();
        assert_eq!(samples.len(), 3, "Go {version}: {samples:?}");
        let ms: Vec<u64> = samples.iter().map(|s| s["ms"].as_u64().unwrap()).collect();
        assert_eq!(ms[0], 0);
        assert!(
            ms[1] >= 300 && ms[2] >= 600 && ms[2] < 3000,
            "Go {version}: {ms:?}"
        );
        let non_go: Vec<u64> = samples
            .iter()
            .map(|s| s["non_go_estimate"].as_u64().unwrap())
            .collect();
        assert!(
            non_go[0] < non_go[1] && non_go[1] < non_go[2],
            "Go {version}: no growth: {non_go:?}"
        );
        assert!(
            non_go[2] - non_go[0] >= 32 * MIB,
            "Go {version}: grew only {} bytes: {non_go:?}",
            non_go[2] - non_go[0]
        );
        let f = finding(&doc, "c_memory_growth")
            .unwrap_or_else(|| panic!("Go {version}: no c_memory_growth finding"));
        assert_eq!(f["severity"], "critical", "Go {version}: {f}");
        assert!(
            f["title"]
                .as_str()
                .unwrap()
                .starts_with("non-Go memory grew"),
            "Go {version}: {f}"
        );
        // `dump` samples too.
        let doc = gostall(&[
            "dump",
            "--pid",
            &pid,
            "--format",
            "json",
            "--no-goroutines",
            "--samples",
            "2",
            "--interval",
            "100ms",
        ]);
        assert_eq!(doc["memory"]["samples"].as_array().unwrap().len(), 2);
    }
}

#[test]
fn ctrl_c_ends_sampling_and_reports_what_was_measured() {
    let version = corpus::DEFAULT_VERSIONS[1];
    let bin = corpus::build(version).unwrap_or_else(|e| panic!("{e:#}"));
    let r = corpus::start(&bin, &scenario("control-idle-server"), Stdio::null()).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_gostall"))
        .args([
            "diagnose",
            "--pid",
            &r.pid().to_string(),
            "--format",
            "json",
        ])
        .args(["--samples", "100", "--interval", "1s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "gostall went on sampling after Ctrl-C"
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let n = doc["memory"]["samples"].as_array().unwrap().len();
    assert!((2..10).contains(&n), "{n} samples");
    assert!(doc["summary"]["goroutines"].as_u64().unwrap() > 0);
    assert!(
        doc["live"]["notes"]
            .to_string()
            .contains("sampling stopped early"),
        "{}",
        doc["live"]["notes"]
    );
}

#[test]
fn sampling_arguments_are_bounded() {
    for args in [
        &["--samples", "0"][..],
        &["--samples", "1001"],
        &["--interval", "10ms"],
        &["--interval", "11m"],
        &["--interval", "2 parsecs"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_gostall"))
            .args(["diagnose", "--pid", "1"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--samples") || err.contains("--interval"),
            "{args:?}: {err}"
        );
    }
}
