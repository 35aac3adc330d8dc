//! The GoKer benchmark as an acceptance test: the strict and must-not-leak cases of Go's own
//! goroutine-leak corpus (`runtime/testdata/testgoroutineleakprofile` of Go 1.27.3, judged as
//! `runtime/goroutineleakprofile_test.go` judges Go's detector), each run live once and read with
//! `gostall diagnose --pid`, on Go 1.21.13 and 1.27.3 by default (`GOSTALL_GO_VERSIONS`).
//!
//! What gostall proves leaked (`proof.leaked`) must find all strict cases but at most one, report
//! no leak in a must-not-leak case and no leak outside a case's expected or flaky regexes, and,
//! where Go has its own detector (1.27), flag at least 95 % of the goroutines Go flagged in the
//! same processes, with the same function and wait reason. `scripts/goker.sh` runs the same cases
//! and the flaky ones, and prints the table.

use gostall_corpus::{self as corpus, goker};

#[test]

fn goker_strict_cases_are_proved() {
    let cases: Vec<goker::Case> = goker::cases()
        .unwrap_or_else(|e| panic!("{e:#}"))
        .into_iter()
        .filter(|c| c.kind != goker::Kind::Flaky)
        .collect();
    let versions = corpus::versions_from_env();
    let builds: Vec<goker::Build> = versions
        .iter()
        .map(|v| goker::build(v, &cases).unwrap_or_else(|e| panic!("{e:#}")))
        .collect();
    let work: Vec<(&goker::Build, &goker::Case)> = builds
        .iter()
        .flat_map(|b| cases.iter().map(move |c| (b, c)))
        .collect();
    let opts = goker::RunOptions::new(env!("CARGO_BIN_EXE_gostall"));
    let results = goker::run_all(&work, 2, goker::Repeat::Times(1), &opts, &|_| {});

    let mut problems = Vec::new();
    let mut tables = String::new();
    for v in &versions {
        let s = goker::summarize(v, &results);
        let t = &s.gostall;
        if !s.errors.is_empty() {
            problems.push(format!("Go {v}: {} harness error(s)", s.errors.len()));
        }
        if t.strict_found + 1 < t.strict {
            problems.push(format!(
                "Go {v}: strict cases found {}/{} (all but one required)",
                t.strict_found, t.strict
            ));
        }
        if t.false_cases() > 0 {
            problems.push(format!(
                "Go {v}: {} false case(s): {} must-not-leak case(s) with leaks, {} case(s) with \
                 unexpected leak strings",
                t.false_cases(),
                t.noleak_false,
                t.unexpected_cases
            ));
        }
        if s.go.is_some() {
            let c = t.coverage;
            if c.go == 0 || c.same * 100 < c.go * 95 {
                problems.push(format!(
                    "Go {v}: {}/{} of the goroutines Go flagged flagged by gostall with the same \
                     function and wait reason (95 % required)",
                    c.same, c.go
                ));
            }
        }
        tables.push_str(&goker::table(v, &results));
        tables.push('\n');
    }
    assert!(problems.is_empty(), "{}\n\n{tables}", problems.join("\n"));
}
