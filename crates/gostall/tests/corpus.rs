//! End-to-end: build the scenario corpus with real Go toolchains, run every scenario, capture what Go
//! emits, and check `gostall diagnose` against the manifest.
//!
//! Go versions: `GOSTALL_GO_VERSIONS` (comma-separated or `all`); default 1.21.13 and 1.27.3.
//! Every failure across all scenarios and artifacts is collected and reported at the end.

use gostall_corpus::{self as corpus, Captured, Scenario};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

fn diagnose(inputs: &[&Path]) -> Result<Value, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_gostall"))
        .arg("diagnose")
        .arg("--format")
        .arg("json")
        .args(inputs)
        .output()
        .map_err(|e| format!("cannot run gostall: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "gostall diagnose {:?} failed: {}",
            inputs,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("bad JSON from gostall: {e}"))
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

fn summary(doc: &Value) -> String {
    findings(doc)
        .iter()
        .map(|(k, s, f)| format!("{s} {k} @ {f}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Checks one artifact set against the scenario. `full`: the artifact carries ids, states and
/// created-by (SIGQUIT, debug=2), so every expectation must hold.
fn check(sc: &Scenario, what: &str, inputs: &[&Path], full: bool, errors: &mut Vec<String>) {
    let doc = match diagnose(inputs) {
        Ok(d) => d,
        Err(e) => {
            errors.push(format!("{}/{what}: {e}", sc.name));
            return;
        }
    };
    assert_eq!(doc["schema"], "gostall/1");
    if doc["summary"]["goroutines"].as_u64().unwrap_or(0) == 0 {
        errors.push(format!("{}/{what}: no goroutines read", sc.name));
    }
    let got = findings(&doc);
    if sc.control {
        let bad: Vec<_> = got.iter().filter(|(_, s, _)| s != "info").collect();
        if !bad.is_empty() {
            errors.push(format!(
                "{}/{what}: control has warning/critical findings: {}",
                sc.name,
                summary(&doc)
            ));
        }
        return;
    }
    if !full {
        return;
    }
    for e in sc.expect.iter().filter(|e| !e.live_only) {
        let ok = got.iter().any(|(k, s, f)| e.matches(k, f) && s != "info");
        if !ok {
            errors.push(format!(
                "{}/{what}: expected {} @ {} (warning or critical), got: [{}]",
                sc.name,
                e.kind,
                e.function,
                summary(&doc)
            ));
        }
    }
}

fn check_captured(sc: &Scenario, cap: &Captured, errors: &mut Vec<String>) {
    check(sc, "sigquit", &[&cap.sigquit], true, errors);
    if let Some(d2) = &cap.debug2 {
        check(sc, "debug=2", &[d2], true, errors);
        // A dump combined with the profiles of the same process.
        let mut all: Vec<&Path> = vec![d2];
        for p in [&cap.mutex, &cap.block, &cap.threadcreate]
            .into_iter()
            .flatten()
        {
            all.push(p);
        }
        check(sc, "debug=2+profiles", &all, true, errors);
    }
    // Stack-only sources: must parse, and controls must stay clean.
    for (what, p) in [("debug=1", &cap.debug1), ("goroutine.pb", &cap.goroutine)] {
        if let Some(p) = p {
            check(sc, what, &[p], false, errors);
        }
    }
}

#[test]
fn corpus_scenarios_are_diagnosed() {
    let manifest = corpus::manifest().expect("manifest");
    assert!(manifest.scenarios.len() >= 15, "corpus is incomplete");
    let errors = Mutex::new(Vec::new());
    for version in corpus::versions_from_env() {
        let bin = corpus::build(&version).unwrap_or_else(|e| panic!("{e:#}"));
        let out_root: PathBuf = corpus::work_dir(&version).join("captures");
        corpus::run_scenarios(&manifest.scenarios, |sc: &Scenario| {
            let mut errs = Vec::new();
            match corpus::capture(&bin, sc, &out_root.join(&sc.name)) {
                Ok(cap) => check_captured(sc, &cap, &mut errs),
                Err(e) => errs.push(format!("{} (Go {version}): {e:#}", sc.name)),
            }
            let mut all = errors.lock().unwrap();
            all.extend(errs.into_iter().map(|e| format!("Go {version}: {e}")));
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
