//! The GoKer benchmark: runs the cases of Go's goroutine-leak corpus and compares gostall's
//! verdicts (its reachability `proof`, and its findings) with Go 1.27's built-in leak detector on
//! the same processes. See `gostall_corpus::goker`.
//!
//! Run: `scripts/goker.sh [--go VERSION[,VERSION]|all] [--cases strict|all] [--case NAME[,NAME]]
//! [--jobs N] [--repeat N|go] [--timeout SECONDS] [--gostall PATH] [--leaks]`
//!
//! - `--go`: Go versions (default: `GOSTALL_GO_VERSIONS`, else the oldest and newest supported).
//! - `--cases strict`: the strict and must-not-leak cases (what the test suite runs); `all` (the
//!   default) adds the flaky ones.
//! - `--repeat N`: run each case N times (default 1) and judge the union of their leaks, as Go's
//!   test does; `go`: as often as Go's test (3 strict, 11 flaky).
//! - `--gostall`: the gostall executable (default: `GOSTALL_BIN`, else `target/release/gostall`).
//! - `--leaks`: also list every distinct leak (function and wait reason) per case: Go's, gostall's
//!   proof, gostall's findings.
//!
//! Exits 0 when every case ran (whatever the verdicts), 1 on harness errors, 2 on bad usage.

use anyhow::{bail, Context, Result};
use gostall_corpus::{self as corpus, goker};
use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Args {
    versions: Vec<String>,
    all_cases: bool,
    only: Vec<String>,
    jobs: usize,
    repeat: goker::Repeat,
    timeout: Duration,
    gostall: PathBuf,
    leaks: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: goker [--go VERSION[,VERSION]|all] [--cases strict|all] [--case NAME[,NAME]] \
         [--jobs N] [--repeat N|go] [--timeout SECONDS] [--gostall PATH] [--leaks]"
    );
    std::process::exit(2);
}

fn parse_args() -> Result<Args> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| corpus::repo_root().join("target"));
    let mut a = Args {
        versions: corpus::versions_from_env(),
        all_cases: true,
        only: Vec::new(),
        jobs: 2,
        repeat: goker::Repeat::Times(1),
        timeout: Duration::from_secs(20),
        gostall: std::env::var_os("GOSTALL_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| target.join("release/gostall")),
        leaks: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            usage();
        }
        if flag == "--leaks" {
            a.leaks = true;
            continue;
        }
        let Some(value) = it.next() else { usage() };
        match flag.as_str() {
            "--go" if value == "all" => {
                a.versions = corpus::ALL_VERSIONS.iter().map(|s| s.to_string()).collect();
            }
            "--go" => a.versions = value.split(',').map(|s| s.trim().to_string()).collect(),
            "--cases" => match value.as_str() {
                "strict" => a.all_cases = false,
                "all" => a.all_cases = true,
                _ => usage(),
            },
            "--case" => a
                .only
                .extend(value.split(',').map(|s| s.trim().to_string())),
            "--jobs" => a.jobs = value.parse().context("--jobs")?,
            "--repeat" if value == "go" => a.repeat = goker::Repeat::AsGo,
            "--repeat" => a.repeat = goker::Repeat::Times(value.parse().context("--repeat")?),
            "--timeout" => a.timeout = Duration::from_secs_f64(value.parse().context("--timeout")?),
            "--gostall" => a.gostall = PathBuf::from(value),
            _ => usage(),
        }
    }
    Ok(a)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    if !args.gostall.is_file() {
        bail!(
            "no gostall executable at {} (build it: cargo build --release -p gostall)",
            args.gostall.display()
        );
    }
    let mut cases = goker::cases()?;
    let counts = |k| cases.iter().filter(|c| c.kind == k).count();
    eprintln!(
        "goker: {} cases in Go {}'s goroutineleakprofile_test.go: {} strict, {} flaky, {} must-not-leak",
        cases.len(),
        goker::CORPUS_GO,
        counts(goker::Kind::Strict),
        counts(goker::Kind::Flaky),
        counts(goker::Kind::NoLeak)
    );
    if !args.all_cases {
        cases.retain(|c| c.kind != goker::Kind::Flaky);
    }
    if !args.only.is_empty() {
        for name in &args.only {
            if !cases.iter().any(|c| &c.name == name) {
                bail!("no case {name}");
            }
        }
        cases.retain(|c| args.only.contains(&c.name));
    }

    let mut builds = Vec::new();
    for v in &args.versions {
        let t = Instant::now();
        builds.push(goker::build(v, &cases)?);
        eprintln!(
            "goker: built with Go {v} in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let work: Vec<(&goker::Build, &goker::Case)> = builds
        .iter()
        .flat_map(|b| cases.iter().map(move |c| (b, c)))
        .collect();
    let opts = goker::RunOptions {
        gostall: args.gostall.clone(),
        ready_timeout: args.timeout,
    };
    let total = work.len();
    let done_count = std::sync::atomic::AtomicUsize::new(0);
    let start = Instant::now();
    let results = goker::run_all(&work, args.jobs, args.repeat, &opts, &|r| {
        let n = done_count.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        eprintln!(
            "goker: [{n}/{total}] Go {} {} ({:.0} s)",
            r.version,
            r.case.name,
            start.elapsed().as_secs_f64()
        );
    });
    let mut errors = 0;
    for b in &builds {
        if args.leaks {
            println!(
                "leaks, Go {}:\n{}",
                b.version,
                goker::leak_listing(&b.version, &results)
            );
        }
        println!("{}", goker::table(&b.version, &results));
        errors += goker::summarize(&b.version, &results).errors.len();
    }
    println!(
        "wall time {:.1} s for {total} case runs ({} jobs)",
        start.elapsed().as_secs_f64(),
        args.jobs
    );
    if errors > 0 {
        eprintln!("goker: {errors} harness error(s)");
        std::process::exit(1);
    }
    Ok(())
}
