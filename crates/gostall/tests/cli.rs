//! The command line as a user meets it: inputs from files and stdin, several inputs combined,
//! exit codes of --fail-on, clear errors for bad input, and the demo.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn demo(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("demo")
        .join(name)
}

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gostall"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gostall");
    if let Some(data) = stdin {
        let mut w = child.stdin.take().unwrap();
        w.write_all(data).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn reads_stdin_and_files_alike() {
    let path = demo("mutex-slow-call.sigquit.txt");
    let bytes = std::fs::read(&path).unwrap();
    let from_file = json(&run(
        &["diagnose", "--format", "json", path.to_str().unwrap()],
        None,
    ));
    let from_stdin = json(&run(&["diagnose", "--format", "json", "-"], Some(&bytes)));
    assert_eq!(from_file["findings"], from_stdin["findings"]);
    assert_eq!(from_file["findings"][0]["kind"], "lock_contention");
}

#[test]
fn a_dump_and_a_profile_combine() {
    let d = demo("abba-deadlock.debug2.txt");
    let m = demo("abba-deadlock.mutex.pb.gz");
    let doc = json(&run(
        &[
            "diagnose",
            "--format",
            "json",
            d.to_str().unwrap(),
            m.to_str().unwrap(),
        ],
        None,
    ));
    let kinds: Vec<&str> = doc["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["goroutine_dump", "pprof_mutex"]);
    assert_eq!(doc["findings"][0]["kind"], "deadlock");
    assert_eq!(doc["findings"][0]["severity"], "critical");
}

#[test]
fn fail_on_sets_the_exit_code() {
    let sick = demo("abba-deadlock.debug2.txt");
    let healthy = demo("control-idle-server.sigquit.txt");
    let code = |args: &[&str]| run(args, None).status.code().unwrap();
    assert_eq!(
        code(&["diagnose", "--fail-on", "critical", sick.to_str().unwrap()]),
        1
    );
    assert_eq!(
        code(&["diagnose", "--fail-on", "warning", sick.to_str().unwrap()]),
        1
    );
    assert_eq!(
        code(&[
            "diagnose",
            "--fail-on",
            "warning",
            healthy.to_str().unwrap()
        ]),
        0
    );
    assert_eq!(code(&["diagnose", sick.to_str().unwrap()]), 0);
}

#[test]
fn bad_input_gets_a_clear_error_and_exit_code_2() {
    let dir = std::env::temp_dir().join(format!("gostall-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.join("notes.txt");
    std::fs::write(&text, b"just some log lines\nnothing to see\n").unwrap();
    let binary = dir.join("blob.bin");
    std::fs::write(
        &binary,
        (0..4096u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    for (file, want) in [
        (empty.to_str().unwrap(), "is empty"),
        (text.to_str().unwrap(), "is not a Go goroutine dump"),
        (binary.to_str().unwrap(), "is not a Go goroutine dump"),
        ("/nonexistent/dump.txt", "cannot read"),
    ] {
        let out = run(&["diagnose", file], None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {err}");
        assert!(err.contains(want), "{file}: {err}");
        assert!(!err.contains("panicked"), "{file}: {err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn output_to_a_pipe_has_no_colour_and_the_demo_runs() {
    let out = run(&["demo"], None);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains('\u{1b}'), "escape codes in piped output");
    assert!(text.contains("lock_contention") && text.contains("deadlock"));
    assert!(
        text.contains("no problems found"),
        "the healthy control is reported healthy"
    );
    let forced = run(&["demo", "--color", "always", "--findings-only"], None);
    assert!(String::from_utf8_lossy(&forced.stdout).contains('\u{1b}'));
}
