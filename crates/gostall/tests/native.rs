//! Native (C) stacks end to end, on the `cgo-blocked` scenario built by real Go toolchains
//! (default and PIE builds; Go 1.21.13 and 1.27.3 unless `GOSTALL_GO_VERSIONS` says otherwise):
//! goroutines in cgo calls carry the C frames of their threads, joined into one stack; reading
//! them never stops or traces a thread unless `--pause` is given; a hundred threads in C are
//! unwound well within a second; threads a C library created show their C frames, also when they
//! are stuck in a callback into Go (`cgo-callback-thread`).

use gostall_corpus::{self as corpus, Scenario, Variant};
use serde_json::Value;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

fn gostall(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gostall"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run gostall")
}

fn scenario(name: &str) -> Scenario {
    corpus::scenario(name).unwrap_or_else(|e| panic!("{e:#}"))
}

fn dump_json(pid: i32, pause: bool) -> Value {
    let pid = pid.to_string();
    let mut args = vec!["dump", "--pid", &pid, "--format", "json"];
    if pause {
        args.push("--pause");
    }
    let out = gostall(&args, &[]);
    assert!(
        out.status.success(),
        "gostall {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// The goroutines whose joined C frames include the scenario's C function.
fn in_c(doc: &Value) -> Vec<&Value> {
    doc["goroutines"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|g| {
            g["native_stack"]
                .as_array()
                .is_some_and(|n| n.iter().any(|f| s(&f["function"]) == "lic_check_feature"))
        })
        .collect()
}

/// Everything wrong with one goroutine's joined stack.
fn check_goroutine(g: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let native = g["native_stack"].as_array().unwrap();
    let pos = |pred: &dyn Fn(&Value) -> bool| native.iter().position(pred);
    let lic = pos(&|f| s(&f["function"]) == "lic_check_feature").unwrap();
    let f = &native[lic];
    if !s(&f["file"]).ends_with("licensed.c") || f["line"].as_u64().unwrap_or(0) == 0 {
        errs.push(format!("lic_check_feature without licensed.c:line: {f}"));
    }
    if !s(&f["object"]).contains("cgo-blocked") {
        errs.push(format!("lic_check_feature not in the executable: {f}"));
    }
    // The libc read(2) wrapper it blocks in, inner to it.
    match pos(&|f| s(&f["function"]).ends_with("read") && s(&f["object"]).contains("libc")) {
        Some(r) if r < lic => {}
        other => errs.push(format!(
            "no libc read frame inside lic_check_feature ({other:?}): {native:?}"
        )),
    }
    // The Go part: from runtime.cgocall to the first user frame, Check.
    let stack: Vec<&str> = g["stack"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| s(&f["function"]))
        .collect();
    if stack.first() != Some(&"runtime.cgocall") {
        errs.push(format!(
            "Go stack does not start at runtime.cgocall: {stack:?}"
        ));
    }
    let user = stack
        .iter()
        .find(|f| !f.starts_with("runtime.") && !f.contains("_Cfunc_") && !f.contains("_cgo"));
    if user != Some(&"main.(*LicenseClient).Check") {
        errs.push(format!("Go part does not end in Check: {stack:?}"));
    }
    errs
}

#[test]
fn goroutines_in_cgo_calls_carry_their_c_frames() {
    let sc = scenario("cgo-blocked");
    let mut errors = Vec::new();
    for version in corpus::versions_from_env() {
        for variant in [Variant::Default, Variant::Pie] {
            let bin = corpus::build_variant(&version, variant).unwrap_or_else(|e| panic!("{e:#}"));
            let r = corpus::start(&bin, &sc, Stdio::null()).unwrap();
            let at = format!("Go {version} {variant:?}");
            let doc = dump_json(r.pid(), false);
            let gs = in_c(&doc);
            if gs.len() != 6 {
                errors.push(format!(
                    "{at}: {} goroutines with C frames, want 6",
                    gs.len()
                ));
            }
            for g in gs {
                errors.extend(check_goroutine(g).into_iter().map(|e| format!("{at}: {e}")));
            }
            for t in doc["threads"].as_array().unwrap() {
                if t["in_cgo"] == true
                    && (t["native_stack"].as_array().is_none_or(|n| n.is_empty())
                        || !t["native_note"].is_null())
                {
                    errors.push(format!("{at}: cgo thread without a full native stack: {t}"));
                }
            }
            // Futex words in the runtime's data are named (m0, sched, sig notes).
            let named = doc["threads"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| s(&t["syscall"]["text"]).contains(" <runtime."));
            if !named {
                errors.push(format!("{at}: no system call argument named by symbol"));
            }
            // Text: C frames first, then the Go frames from runtime.cgocall, one stack.
            let pid = r.pid().to_string();
            let out = gostall(&["dump", "--pid", &pid], &[]);
            let text = String::from_utf8_lossy(&out.stdout);
            let lines: Vec<&str> = text.lines().map(str::trim).collect();
            let find = |p: &dyn Fn(&str) -> bool| lines.iter().position(|l| p(l));
            let read = find(&|l| l.starts_with("[C] read+") && l.contains("libc"));
            let lic =
                find(&|l| l.starts_with("[C] lic_check_feature+") && l.contains("licensed.c:"));
            let cgocall = find(&|l| l.starts_with("runtime.cgocall "));
            let check = find(&|l| l.starts_with("main.(*LicenseClient).Check "));
            match (read, lic, cgocall, check) {
                (Some(a), Some(b), Some(c), Some(d)) if a < b && b < c && c < d => {}
                other => errors.push(format!(
                    "{at}: text dump lacks the joined stack ({other:?}):\n{text}"
                )),
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// Polls every `/proc/PID/task/*/status` as fast as it can; counts sweeps, and sweeps that saw a
/// traced or stopped thread.
struct Watcher {
    sweeps: AtomicU64,
    traced: AtomicU64,
    stopped: AtomicU64,
    stop: AtomicBool,
}

impl Watcher {
    fn run(&self, pid: i32) {
        while !self.stop.load(Ordering::Relaxed) {
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                return;
            };
            let (mut traced, mut stopped) = (false, false);
            for t in tasks.flatten() {
                let Ok(status) = std::fs::read_to_string(t.path().join("status")) else {
                    continue;
                };
                for line in status.lines() {
                    if let Some(v) = line.strip_prefix("TracerPid:") {
                        traced |= v.trim() != "0";
                    } else if let Some(v) = line.strip_prefix("State:") {
                        stopped |= matches!(v.trim().chars().next(), Some('t' | 'T'));
                    }
                }
            }
            self.sweeps.fetch_add(1, Ordering::Relaxed);
            if traced {
                self.traced.fetch_add(1, Ordering::Relaxed);
            }
            if stopped {
                self.stopped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn take(&self) -> (u64, u64, u64) {
        (
            self.sweeps.swap(0, Ordering::Relaxed),
            self.traced.swap(0, Ordering::Relaxed),
            self.stopped.swap(0, Ordering::Relaxed),
        )
    }
}

/// Threads a C library created: one that never calls into Go (`foreign`) and three stuck in a
/// callback into Go (`c_callback`, their C caller found below `runtime.cgocallback`).
#[test]
fn threads_created_by_c_show_their_c_frames() {
    let sc = scenario("cgo-callback-thread");
    let mut errors = Vec::new();
    for version in corpus::versions_from_env() {
        for variant in [Variant::Default, Variant::Pie] {
            let bin = corpus::build_variant(&version, variant).unwrap_or_else(|e| panic!("{e:#}"));
            let r = corpus::start(&bin, &sc, Stdio::null()).unwrap();
            let at = format!("Go {version} {variant:?}");
            let doc = dump_json(r.pid(), false);
            let threads = doc["threads"].as_array().unwrap();
            let frames = |t: &Value| -> Vec<(String, String)> {
                t["native_stack"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| (s(&f["function"]).to_string(), s(&f["file"]).to_string()))
                    .collect()
            };
            let has = |t: &Value, func: &str| {
                frames(t)
                    .iter()
                    .any(|(f, file)| f == func && file.ends_with("events.c"))
            };
            let hotplug: Vec<&Value> = threads
                .iter()
                .filter(|t| t["name"] == "ev-hotplug")
                .collect();
            if hotplug.len() != 1
                || hotplug[0]["origin"] != "foreign"
                || !has(hotplug[0], "ev_housekeeping")
                || !s(&hotplug[0]["syscall"]["name"]).starts_with("poll")
            {
                errors.push(format!("{at}: housekeeping thread: {hotplug:?}"));
            }
            // A thread takes its name from the thread that created it: an M the runtime starts
            // while running a callback on an ev-worker thread is named ev-worker too, and is
            // rightly a Go thread. The three C threads must still all be found as callbacks.
            let workers: Vec<&Value> = threads
                .iter()
                .filter(|t| t["name"] == "ev-worker" && t["origin"] != "go")
                .collect();
            if workers.len() != 3 {
                errors.push(format!("{at}: {} ev-worker threads, want 3", workers.len()));
            }
            for t in workers {
                if t["origin"] != "c_callback" || !has(t, "ev_worker") {
                    errors.push(format!(
                        "{at}: callback thread {} ({}): {:?}",
                        t["tid"],
                        t["origin"],
                        frames(t)
                    ));
                }
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn native_stacks_are_read_without_stopping_threads_unless_paused() {
    let sc = scenario("cgo-blocked");
    for version in corpus::versions_from_env() {
        let bin = corpus::build(&version).unwrap();
        let r = corpus::start(&bin, &sc, Stdio::null()).unwrap();
        let pid = r.pid();
        let w = Watcher {
            sweeps: AtomicU64::new(0),
            traced: AtomicU64::new(0),
            stopped: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        };
        std::thread::scope(|scope| {
            scope.spawn(|| w.run(pid));
            std::thread::sleep(Duration::from_millis(50));
            w.take();
            for _ in 0..5 {
                let doc = dump_json(pid, false);
                assert_eq!(
                    in_c(&doc).len(),
                    6,
                    "Go {version}: native stacks without --pause"
                );
            }
            let (sweeps, traced, stopped) = w.take();
            assert!(
                sweeps >= 20,
                "Go {version}: the watcher ran only {sweeps} sweeps"
            );
            assert_eq!(
                (traced, stopped),
                (0, 0),
                "Go {version}: without --pause a thread was traced or stopped ({sweeps} sweeps)"
            );
            // With --pause the watcher sees it: it would see a pause without it too.
            let pid_s = pid.to_string();
            for _ in 0..3 {
                let out = gostall(
                    &["dump", "--pid", &pid_s, "--pause", "--format", "json"],
                    &[("GOSTALL_TEST_HOLD_PAUSE_MS", "30")],
                );
                assert!(out.status.success());
                let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
                assert_eq!(
                    in_c(&doc).len(),
                    6,
                    "Go {version}: native stacks with --pause"
                );
            }
            let (sweeps, traced, stopped) = w.take();
            w.stop.store(true, Ordering::Relaxed);
            assert!(
                traced > 0 && stopped > 0,
                "Go {version}: the watcher saw no pause ({sweeps} sweeps, {traced} traced, {stopped} stopped)"
            );
        });
    }
}

/// Parses a `Duration` as `{:?}` prints it (`37.8ms`, `950.1µs`, `1.2s`).
fn debug_duration(s: &str) -> Option<Duration> {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_alphabetic())?);
    let v: f64 = num.parse().ok()?;
    let secs = match unit {
        "s" => v,
        "ms" => v / 1e3,
        "µs" | "us" => v / 1e6,
        "ns" => v / 1e9,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

#[test]
fn a_hundred_threads_in_c_are_unwound_quickly() {
    let mut sc = scenario("cgo-blocked");
    sc.env.insert("LICENSE_WORKERS".into(), "100".into());
    for version in corpus::versions_from_env() {
        let bin = corpus::build(&version).unwrap();
        let r = corpus::start(&bin, &sc, Stdio::null()).unwrap();
        let pid = r.pid().to_string();
        let out = gostall(
            &["dump", "--pid", &pid, "--format", "json", "--no-goroutines"],
            &[("GOSTALL_TIMING", "1")],
        );
        assert!(out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err
            .lines()
            .find(|l| l.starts_with("native: "))
            .unwrap_or_else(|| panic!("no native timing line:\n{err}"));
        eprintln!("Go {version}: {line}");
        let n: usize = line["native: ".len()..]
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap();
        let took = line
            .split(" unwound in ")
            .nth(1)
            .and_then(|r| r.split(';').next())
            .and_then(debug_duration)
            .unwrap();
        assert!(n >= 100, "Go {version}: {n} threads unwound: {line}");
        assert!(took < Duration::from_secs(1), "Go {version}: {line}");
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        let full = doc["threads"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| {
                t["native_stack"]
                    .as_array()
                    .is_some_and(|n| n.iter().any(|f| s(&f["function"]) == "lic_check_feature"))
            })
            .count();
        assert_eq!(full, 100, "Go {version}: threads with lic_check_feature");
    }
}
