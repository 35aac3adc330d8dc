//! The real-world corpus (`realworld/`) end to end: services on `database/sql` + `lib/pq`, SQLite
//! (cgo), pgx, redigo, net/http, gRPC and x/sync against a real PostgreSQL and Redis, stuck the way
//! production services get stuck, and healthy controls.
//!
//! For each Go version (`GOSTALL_GO_VERSIONS`, default 1.21.13 and 1.27.3) the corpus is built
//! (`scripts/install-realworld.sh` first: the Debian packages it needs), one pair of servers is
//! started for the whole run, and every program is run to its `GOSTALL_READY` line, a few at a
//! time, then diagnosed twice:
//!
//! - live, `gostall diagnose --pid PID --format json`: each expectation of the manifest needs a
//!   warning or critical finding of its `kind` located at its `function`, whose goroutines include
//!   at least `waiters` with `function` (and `frame`, when given) on their stack, and whose title
//!   and evidence contain every `evidence` string;
//! - offline, the `debug=2` dump from the program's pprof endpoint: the same, for the
//!   expectations marked `offline` (what a dump alone shows: pool waits, HTTP/gRPC waits).
//!
//! Controls must get no warning or critical finding, live or offline. Every check of every program
//! and version lands in one table, printed at the end (pass or fail; `--nocapture` shows it on
//! success); the test fails if any check did. The reports and dumps are kept in
//! `target/corpus/VERSION/realworld/PROGRAM/` (`live.json`, `debug2.txt`, `offline.json`,
//! `stderr.txt`).

use gostall_corpus::{self as corpus, realworld, Expect, Scenario};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Programs run at the same time (the machine has two cores; most of the time goes to waiting for
/// readiness and to gostall's reads).
const JOBS: usize = 3;
/// A gostall run that takes longer has hung.
const GOSTALL_TIMEOUT: Duration = Duration::from_secs(120);
/// Findings listed per row.
const MAX_FOUND: usize = 8;

/// One check: a program, a Go version, a mode and what was expected.
struct Row {
    /// Index in the manifest, to sort the table.
    order: usize,
    program: String,
    version: String,
    /// `start`, `live` or `offline`.
    mode: &'static str,
    expected: String,
    /// What gostall reported (or the program's last lines of stderr, when it did not start).
    found: Vec<String>,
    /// Empty: the check passed.
    problems: Vec<String>,
}

/// Runs gostall with `args`, saves its stdout to `save` and parses it as JSON.
fn gostall(args: &[&str], save: &Path) -> Result<Value, String> {
    let what = format!("gostall {}", args.join(" "));
    let mut child = Command::new(env!("CARGO_BIN_EXE_gostall"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("piped")));
    let err = reader(Box::new(child.stderr.take().expect("piped")));
    let deadline = Instant::now() + GOSTALL_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{what}: no answer within {} s",
                    GOSTALL_TIMEOUT.as_secs()
                ));
            }
            Err(e) => return Err(format!("{what}: {e}")),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let _ = std::fs::write(save, &stdout);
    if !status.success() {
        return Err(format!(
            "{what} failed ({status}): {}",
            String::from_utf8_lossy(&stderr).trim()
        ));
    }
    serde_json::from_slice(&stdout).map_err(|e| format!("{what}: bad JSON: {e}"))
}

fn findings(doc: &Value) -> &[Value] {
    doc["findings"].as_array().map_or(&[], |v| v.as_slice())
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// `severity kind @ function (N goroutines): title`.
fn describe(f: &Value) -> String {
    let function = match str_of(&f["location"]["function"]) {
        "" => "-",
        s => s,
    };
    format!(
        "{} {} @ {} ({} g): {}",
        str_of(&f["severity"]),
        str_of(&f["kind"]),
        function,
        f["goroutine_count"].as_u64().unwrap_or(0),
        str_of(&f["title"])
    )
}

fn found(doc: &Value) -> Vec<String> {
    let all = findings(doc);
    if all.is_empty() {
        return vec!["(no findings)".to_string()];
    }
    let mut v: Vec<String> = all.iter().take(MAX_FOUND).map(describe).collect();
    if all.len() > MAX_FOUND {
        v.push(format!("… and {} more", all.len() - MAX_FOUND));
    }
    v
}

/// Goroutine id → the functions on its stack.
fn stacks(doc: &Value) -> HashMap<u64, Vec<&str>> {
    doc["goroutines"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| {
            let id = g["id"].as_u64()?;
            let frames = g["stack"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|fr| str_of(&fr["function"]))
                .collect();
            Some((id, frames))
        })
        .collect()
}

fn expected_text(e: &Expect) -> String {
    let mut s = format!("{} @ {}", e.kind, e.function);
    if let Some(n) = e.waiters {
        let _ = write!(s, ", ≥ {n} goroutines");
        if let Some(frame) = &e.frame {
            let _ = write!(s, " via {frame}");
        }
    }
    if !e.evidence.is_empty() {
        let quoted: Vec<String> = e.evidence.iter().map(|x| format!("{x:?}")).collect();
        let _ = write!(s, ", evidence {}", quoted.join(" "));
    }
    s
}

/// What keeps finding `f` from satisfying `e` (kind and location already match).
fn shortfalls(f: &Value, e: &Expect, stacks: &HashMap<u64, Vec<&str>>) -> Vec<String> {
    let mut problems = Vec::new();
    let severity = str_of(&f["severity"]);
    if severity != "warning" && severity != "critical" {
        problems.push(format!("severity {severity}, want warning or critical"));
    }
    if let Some(want) = e.waiters {
        let ids: Vec<u64> = f["goroutines"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .collect();
        let covered = ids
            .iter()
            .filter(|id| {
                stacks.get(id).is_some_and(|st| {
                    st.contains(&e.function.as_str())
                        && e.frame.as_ref().is_none_or(|fr| st.contains(&fr.as_str()))
                })
            })
            .count();
        if covered < want {
            let via = e
                .frame
                .as_ref()
                .map(|fr| format!(" and {fr}"))
                .unwrap_or_default();
            problems.push(format!(
                "covers {covered} goroutines with {}{via} on their stack, want ≥ {want} (it lists {})",
                e.function,
                ids.len()
            ));
        }
    }
    let text = format!("{} {}", str_of(&f["title"]), f["evidence"]);
    let missing: Vec<String> = e
        .evidence
        .iter()
        .filter(|w| !text.contains(w.as_str()))
        .map(|w| format!("{w:?}"))
        .collect();
    if !missing.is_empty() {
        problems.push(format!("title/evidence lack {}", missing.join(" ")));
    }
    problems
}

/// The problems of one expectation against a report: empty when some finding satisfies it.
fn check_expect(doc: &Value, e: &Expect) -> Vec<String> {
    let stacks = stacks(doc);
    findings(doc)
        .iter()
        .filter(|f| e.matches(str_of(&f["kind"]), str_of(&f["location"]["function"])))
        .map(|f| shortfalls(f, e, &stacks))
        .min_by_key(Vec::len)
        .unwrap_or_else(|| vec![format!("no {} finding at {}", e.kind, e.function)])
}

/// The rows of one report (`mode`: `live` or `offline`) of a program.
fn judge(
    sc: &Scenario,
    base: &Row,
    mode: &'static str,
    doc: Result<Value, String>,
    checked: impl Fn(&Expect) -> bool,
) -> Vec<Row> {
    let row = |expected: String, found: Vec<String>, problems: Vec<String>| Row {
        order: base.order,
        program: base.program.clone(),
        version: base.version.clone(),
        mode,
        expected,
        found,
        problems,
    };
    let expects: Vec<&Expect> = sc.expect.iter().filter(|e| checked(e)).collect();
    let control = "no warning or critical finding".to_string();
    let doc = match doc {
        Ok(doc) => doc,
        Err(e) => {
            let expected = if sc.control {
                control
            } else if expects.is_empty() {
                "a diagnosis (expectations are checked live only)".to_string()
            } else {
                expects
                    .iter()
                    .map(|e| expected_text(e))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            return vec![row(expected, Vec::new(), vec![e])];
        }
    };
    let mut common = Vec::new();
    if doc["summary"]["goroutines"].as_u64().unwrap_or(0) == 0 {
        common.push("no goroutines read".to_string());
    }
    if sc.control {
        let mut problems = common;
        let loud = findings(&doc)
            .iter()
            .filter(|f| str_of(&f["severity"]) != "info")
            .count();
        if loud > 0 {
            problems.push(format!(
                "{loud} warning/critical finding(s) on a healthy program"
            ));
        }
        return vec![row(control, found(&doc), problems)];
    }
    if expects.is_empty() {
        if common.is_empty() {
            return Vec::new();
        }
        return vec![row(
            "a diagnosis (expectations are checked live only)".to_string(),
            found(&doc),
            common,
        )];
    }
    expects
        .into_iter()
        .map(|e| {
            let mut problems = common.clone();
            problems.extend(check_expect(&doc, e));
            row(expected_text(e), found(&doc), problems)
        })
        .collect()
}

fn tail(path: &Path, lines: usize) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| format!("stderr: {l}"))
        .collect()
}

/// Runs one program to readiness, diagnoses it live and from its `debug=2` dump, and judges both.
fn run_program(
    order: usize,
    sc: &Scenario,
    version: &str,
    bin: &Path,
    servers: &realworld::Servers,
    out: &Path,
) -> Vec<Row> {
    let base = Row {
        order,
        program: sc.name.clone(),
        version: version.to_string(),
        mode: "start",
        expected: "a GOSTALL_READY line".to_string(),
        found: Vec::new(),
        problems: Vec::new(),
    };
    let dir = out.join(&sc.name);
    let _ = std::fs::remove_dir_all(&dir);
    let prepared = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::File::create(dir.join("stderr.txt")))
        .map_err(|e| format!("{}: {e}", dir.display()));
    let running = prepared.and_then(|stderr| {
        realworld::start(bin, sc, Some(servers), Stdio::from(stderr)).map_err(|e| format!("{e:#}"))
    });
    let running = match running {
        Ok(r) => r,
        Err(e) => {
            return vec![Row {
                found: tail(&dir.join("stderr.txt"), 5),
                problems: vec![e],
                ..base
            }]
        }
    };
    let pid = running.pid().to_string();
    let live = gostall(
        &["diagnose", "--pid", &pid, "--format", "json"],
        &dir.join("live.json"),
    );
    let dump = dir.join("debug2.txt");
    let offline = corpus::http_get(
        &running.addr,
        "/debug/pprof/goroutine?debug=2",
        Duration::from_secs(20),
    )
    .map_err(|e| format!("GET debug=2 after the live read: {e:#}"))
    .and_then(|body| std::fs::write(&dump, body).map_err(|e| format!("{}: {e}", dump.display())))
    .and_then(|()| {
        let dump = dump.to_string_lossy();
        gostall(
            &["diagnose", "--format", "json", &dump],
            &dir.join("offline.json"),
        )
    });
    drop(running);
    let mut rows = judge(sc, &base, "live", live, |_| true);
    rows.extend(judge(sc, &base, "offline", offline, |e| e.offline));
    rows
}

fn table(rows: &[Row]) -> String {
    let w = rows
        .iter()
        .map(|r| r.program.len())
        .max()
        .unwrap_or(0)
        .max("program".len());
    let vw = rows
        .iter()
        .map(|r| r.version.len())
        .max()
        .unwrap_or(0)
        .max("Go".len());
    let indent = " ".repeat(4 + 2 + w + 2 + vw + 2 + 7 + 2);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<4}  {:<w$}  {:<vw$}  {:<7}  expected / found",
        "", "program", "Go", "mode"
    );
    for r in rows {
        let status = if r.problems.is_empty() { "ok" } else { "FAIL" };
        let _ = writeln!(
            s,
            "{status:<4}  {:<w$}  {:<vw$}  {:<7}  expected: {}",
            r.program, r.version, r.mode, r.expected
        );
        for p in &r.problems {
            let _ = writeln!(s, "{indent}problem:  {p}");
        }
        for (i, f) in r.found.iter().enumerate() {
            let label = if i == 0 { "found:" } else { "" };
            let _ = writeln!(s, "{indent}{label:<8}  {f}");
        }
    }
    s
}

#[test]
fn realworld_programs_are_diagnosed() {
    let manifest = realworld::manifest().unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        manifest.scenarios.len() >= 15,
        "the real-world corpus is incomplete"
    );
    let versions = corpus::versions_from_env();
    let started = Instant::now();
    let builds: Vec<(String, PathBuf)> = versions
        .iter()
        .map(|v| {
            let bin = realworld::build(v).unwrap_or_else(|e| panic!("{e:#}"));
            (v.clone(), bin)
        })
        .collect();
    let built = Instant::now();
    let servers = realworld::Servers::start().unwrap_or_else(|e| panic!("{e:#}"));
    let rows = Mutex::new(Vec::new());
    for (version, bin) in &builds {
        let out = corpus::work_dir(version).join("realworld");
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..JOBS {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(sc) = manifest.scenarios.get(i) else {
                        break;
                    };
                    let r = run_program(i, sc, version, bin, &servers, &out);
                    rows.lock().unwrap().extend(r);
                });
            }
        });
    }
    drop(servers);
    let mut rows = rows.into_inner().unwrap();
    rows.sort_by(|a, b| (a.order, &a.version, a.mode).cmp(&(b.order, &b.version, b.mode)));
    let failed = rows.iter().filter(|r| !r.problems.is_empty()).count();
    println!(
        "\nreal-world corpus, Go {}: {} checks, {failed} failed (build {:.0} s, programs and servers {:.0} s)\n\n{}",
        versions.join(", "),
        rows.len(),
        (built - started).as_secs_f64(),
        built.elapsed().as_secs_f64(),
        table(&rows)
    );
    assert_eq!(
        failed,
        0,
        "{failed} of {} real-world checks failed (table above)",
        rows.len()
    );
}
