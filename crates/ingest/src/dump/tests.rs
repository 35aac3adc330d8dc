use super::*;
use crate::{ingest_reader, new_snapshot};
use gostall_model::WaitReason;

fn parse_str(s: &str) -> Snapshot {
    let mut snap = new_snapshot();
    ingest_reader("test", s.as_bytes(), &mut snap).expect("parses");
    snap
}

fn funcs(snap: &Snapshot, g: &Goroutine) -> Vec<String> {
    snap.frames(g).map(|f| f.function.to_string()).collect()
}

#[test]
fn crash_header_form_with_frame_suffixes() {
    let snap = parse_str(
        "SIGQUIT: quit\nPC=0x49ad01 m=0 sigcode=0\n\n\
goroutine 17 gp=0xd862f802000 m=nil [sync.Mutex.Lock, 3 minutes]:\n\
runtime.gopark(0x0?, 0x0?, 0x0?, 0x0?, 0x0?)\n\
\t/go/src/runtime/proc.go:474 +0xca fp=0xd862f75c6d8 sp=0xd862f75c6b8 pc=0x4793ea\n\
sync.(*Mutex).Lock(...)\n\
\t/go/src/sync/mutex.go:46\n\
main.(*Cache).Get(0xc000010000, {0x4b1234, 0x3})\n\
\t/app/cache.go:22 +0x35 fp=0xd862f75c7e0 sp=0xd862f75c7c8 pc=0x49aef5\n\
created by main.main in goroutine 1\n\
\t/app/main.go:22 +0x5f\n\n\
goroutine 23 gp=0xd862f802b40 m=4 mp=0x576400 [running]:\n\
\tgoroutine running on other thread; stack unavailable\n\
created by main.main in goroutine 1\n\
\t/app/main.go:27 +0xb1\n\n\
rax    0x0\nrip    0x47b941\n",
    );
    assert_eq!(snap.goroutines.len(), 2);
    let g = &snap.goroutines[0];
    assert_eq!(g.id, 17);
    assert_eq!(g.wait_reason, Some(WaitReason::MutexLock));
    assert_eq!(g.wait_minutes, Some(3));
    assert_eq!(
        funcs(&snap, g),
        ["runtime.gopark", "sync.(*Mutex).Lock", "main.(*Cache).Get"]
    );
    let f = snap.frames(g).nth(2).unwrap();
    assert_eq!((f.file, f.line), ("/app/cache.go", 22));
    let cb = g.created_by.unwrap();
    assert_eq!(cb.goroutine, Some(1));
    assert_eq!(snap.tables.frame_ref(cb.frame).function, "main.main");
    let r = &snap.goroutines[1];
    assert!(r.stack_unavailable);
    assert_eq!(r.m, Some(4));
    assert_eq!(r.state, GoState::Running);
    assert_eq!(snap.process.max_m_id, Some(4));
    assert_eq!(snap.process.signal.as_deref(), Some("SIGQUIT: quit"));
}

#[test]
fn flags_labels_bubbles_and_crlf() {
    let snap = parse_str(
        "goroutine 9 [select (no cases), locked to thread]:\r\n\
main.main.func2()\r\n\t/a/main.go:25 +0x14\r\n\r\n\
goroutine 10 [chan receive (durable), synctest bubble 3] {worker: 7, \"route\": \"/a b\"}:\r\n\
main.w()\r\n\t/a/main.go:5 +0x14\r\n\r\n\
goroutine 11 [semacquire (scan), 12 minutes]:\n\
runtime.gopark(0x0?)\n\t/go/src/runtime/proc.go:398 +0xce\n\
sync.runtime_Semacquire(0xc0000a4018?)\n\t/go/src/runtime/sema.go:62 +0x25\n\
sync.(*WaitGroup).Wait(0xc0000a4010?)\n\t/go/src/sync/waitgroup.go:116 +0x48\n\
main.processBatch({0xc000010000, 0x5, 0x5})\n\t/a/batch.go:30 +0x1a\n\n\
goroutine 12 [chan send (leaked)]:\nmain.x()\n\t/a/x.go:1 +0x1\n",
    );
    let g = &snap.goroutines;
    assert_eq!(g.len(), 4);
    assert!(g[0].locked_to_thread);
    assert_eq!(g[0].wait_reason, Some(WaitReason::SelectNoCases));
    assert_eq!(funcs(&snap, &g[0]), ["main.main.func2"]);
    assert!(g[1].flags.durable);
    assert_eq!(g[1].synctest_bubble, Some(3));
    let labels: Vec<_> = g[1]
        .labels
        .iter()
        .map(|&(k, v)| (snap.tables.str(k), snap.tables.str(v)))
        .collect();
    assert_eq!(labels, [("worker", "7"), ("route", "/a b")]);
    assert!(g[2].flags.scan);
    assert_eq!(g[2].wait_minutes, Some(12));
    assert_eq!(g[2].wait_reason, Some(WaitReason::WaitGroupWait));
    assert!(g[3].flags.leaked);
    assert_eq!(g[3].wait_reason, Some(WaitReason::ChanSend));
}

#[test]
fn elided_frames_ancestors_and_embedded_in_logs() {
    let snap = parse_str(
        "2024/01/01 12:00:00 starting server\nsome unrelated line (with parens)\n\
goroutine 5 [chan receive]:\n\
main.rec(0x0)\n\t/a/main.go:17 +0x39\n\
...26 frames elided...\n\
main.rec(0x77)\n\t/a/main.go:17 +0x47\n\
created by main.main in goroutine 1\n\t/a/main.go:28 +0xc5\n\
[originating from goroutine 1]:\n\
main.main(...)\n\t/a/main.go:28 +0xc5\n\
2024/01/01 12:00:01 next log line\n\
goroutine 6 [running]:\nmain.spin()\n\t/a/main.go:1 +0x1\n\
...additional frames elided...\n\
level=info msg=\"done\"\n",
    );
    let g = &snap.goroutines;
    assert_eq!(g.len(), 2);
    assert_eq!(g[0].elided_frames, 26);
    assert_eq!(funcs(&snap, &g[0]), ["main.rec", "main.rec"]);
    assert_eq!(g[0].originating_from, Some(1));
    assert_eq!(g[1].elided_frames, u32::MAX);
    assert!(
        snap.sources[0].skipped.is_empty(),
        "{:?}",
        snap.sources[0].skipped
    );
}

#[test]
fn fatal_deadlock_and_panic_preambles() {
    let snap = parse_str(
        "fatal error: all goroutines are asleep - deadlock!\n\n\
goroutine 1 [chan receive]:\nmain.main()\n\t/a/main.go:5 +0x1d\nexit status 2\n",
    );
    assert_eq!(
        snap.process.fatal_error.as_deref(),
        Some("all goroutines are asleep - deadlock!")
    );
    let snap = parse_str(
        "panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n\t/a/main.go:5 +0x1d\nexit status 2\n",
    );
    assert_eq!(snap.process.panic.as_deref(), Some("boom"));
}

#[test]
fn truncated_and_damaged_input_is_reported_not_fatal() {
    let snap = parse_str(
        "goroutine 1 [chan receive:\nmain.main()\n\t/a/main.go:5 +0x1d\n\n\
goroutine 2 [sleep]:\ntime.Sleep(0x1)\n\t/go/src/runtime/time.go:195 +0x1\nmain.f(",
    );
    assert_eq!(snap.goroutines.len(), 1);
    let skipped = &snap.sources[0].skipped;
    assert!(
        skipped.iter().any(|s| s.contains("header not understood")),
        "{skipped:?}"
    );
}

#[test]
fn real_dumps_parse_completely() {
    for (file, n) in [("sigquit-1.27.txt", 13), ("sigquit-1.21.txt", 13)] {
        let path = format!("{}/testdata/dumps/{file}", env!("CARGO_MANIFEST_DIR"));
        let mut snap = new_snapshot();
        crate::ingest_path(std::path::Path::new(&path), &mut snap).unwrap();
        assert_eq!(snap.goroutines.len(), n, "{file}");
        assert!(
            snap.sources[0].skipped.is_empty(),
            "{file}: {:?}",
            snap.sources[0].skipped
        );
        let wg = snap
            .goroutines
            .iter()
            .filter(|g| g.wait_reason == Some(WaitReason::WaitGroupWait))
            .count();
        assert_eq!(wg, 1, "{file}: semacquire normalised to WaitGroup.Wait");
    }
}

#[test]
fn binary_and_empty_inputs_are_errors() {
    let mut snap = new_snapshot();
    assert!(matches!(
        ingest_reader("e", &b""[..], &mut snap),
        Err(IngestError::Empty { .. })
    ));
    let garbage: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let err = ingest_reader("g", garbage.as_slice(), &mut snap).unwrap_err();
    assert!(err.to_string().contains("not a Go goroutine dump"), "{err}");
    let err = ingest_reader("t", &b"hello\nworld\n"[..], &mut snap).unwrap_err();
    assert!(err.to_string().contains("goroutine N [status]"), "{err}");
}

#[test]
fn huge_line_is_skipped_with_bounded_memory() {
    let mut data = b"goroutine 1 [sleep]:\nmain.a()\n\t/a.go:1 +0x1\n\n".to_vec();
    data.extend(std::iter::repeat_n(b'x', 10 << 20));
    data.extend_from_slice(b"\ngoroutine 2 [sleep]:\nmain.b()\n\t/b.go:2 +0x1\n");
    let snap = parse_str(std::str::from_utf8(&data).unwrap());
    assert_eq!(snap.goroutines.len(), 2);
    assert!(snap.sources[0].skipped[0].contains("longer than"));
}

#[test]
fn the_object_a_goroutine_waits_on_comes_from_the_runtime_frame() {
    let dump = "goroutine 6 [sync.Mutex.Lock]:\n\
runtime.gopark(0x582420?, 0x7f79d1188cc0?, 0x70?, 0x0?, 0x60?)\n\
\t/go/src/runtime/proc.go:474 +0xca\n\
runtime.semacquire1(0x21246c9f2094, 0x0, 0x3, 0x2, 0x16)\n\
\t/go/src/runtime/sema.go:192 +0x232\n\
main.transfer(0x21246c9f2078, 0x21246c9f2090, 0xa)\n\
\t/app/main.go:23 +0x9c\n\
\n\
goroutine 7 [chan receive]:\n\
runtime.gopark(0x0?, 0x0?, 0x0?, 0x0?, 0x0?)\n\
\t/go/src/runtime/proc.go:474 +0xca\n\
runtime.chanrecv(0xc000098060?, 0x0, 0x1)\n\
\t/go/src/runtime/chan.go:667 +0x4ae\n\
main.main()\n\
\t/app/main.go:44 +0x265\n";
    let snap = parse_str(dump);
    let by = |id: u64| {
        snap.goroutines
            .iter()
            .find(|g| g.id == id)
            .expect("goroutine")
    };
    assert_eq!(by(6).waiting_on, Some(0x21246c9f2094));
    // An argument printed with `?` may be stale: not used.
    assert_eq!(by(7).waiting_on, None);
}
