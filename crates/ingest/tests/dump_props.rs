//! Property tests of the dump parser: it never panics, and what a well-formed dump says is what it
//! reads back, whatever the line endings and the unrelated log lines around it.

use gostall_ingest::{ingest_reader, new_snapshot};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct G {
    id: u64,
    status: &'static str,
    minutes: Option<u32>,
    locked: bool,
    frames: Vec<(String, String, u32)>,
    creator: Option<(String, u64)>,
}

const STATUSES: &[&str] = &[
    "running",
    "runnable",
    "syscall",
    "chan receive",
    "chan send",
    "select",
    "select (no cases)",
    "sync.Mutex.Lock",
    "sync.WaitGroup.Wait",
    "semacquire",
    "IO wait",
    "sleep",
    "chan receive (nil chan)",
];

fn ident() -> impl Strategy<Value = String> {
    "[a-z][a-zA-Z0-9_]{0,12}"
}

fn frame() -> impl Strategy<Value = (String, String, u32)> {
    (
        prop_oneof![Just("main".to_string()), "[a-z]{1,8}\\.com/[a-z]{1,6}"],
        prop::option::of(ident()),
        ident(),
        "/[a-z]{1,8}(/[a-z0-9_]{1,8}){0,3}",
        1u32..100_000,
    )
        .prop_map(|(pkg, recv, name, dir, line)| {
            let func = match recv {
                Some(r) => format!("{pkg}.(*{r}).{name}"),
                None => format!("{pkg}.{name}"),
            };
            (func, format!("{dir}/file.go"), line)
        })
}

fn goroutine() -> impl Strategy<Value = G> {
    (
        1u64..1_000_000_000,
        prop::sample::select(STATUSES),
        prop::option::of(1u32..10_000),
        any::<bool>(),
        prop::collection::vec(frame(), 1..12),
        prop::option::of((ident(), 1u64..1000)),
    )
        .prop_map(|(id, status, minutes, locked, frames, creator)| G {
            id,
            status,
            minutes,
            locked,
            frames,
            creator: creator.map(|(f, g)| (format!("main.{f}"), g)),
        })
}

fn render(gs: &[G], crash_form: bool, crlf: bool, noise: bool) -> String {
    let nl = if crlf { "\r\n" } else { "\n" };
    let mut s = String::new();
    if noise {
        s.push_str(&format!(
            "2024/05/01 10:00:00 server starting (pid 1){nl}level=info msg=\"x\"{nl}"
        ));
    }
    for g in gs {
        s.push_str(&format!("goroutine {}", g.id));
        if crash_form {
            s.push_str(" gp=0xc000123456 m=nil");
        }
        s.push_str(&format!(" [{}", g.status));
        if let Some(m) = g.minutes {
            s.push_str(&format!(", {m} minutes"));
        }
        if g.locked {
            s.push_str(", locked to thread");
        }
        s.push_str(&format!("]:{nl}"));
        for (f, file, line) in &g.frames {
            s.push_str(&format!(
                "{f}(0xc000010000, {{0x1, 0x2}}){nl}\t{file}:{line} +0x1d"
            ));
            if crash_form {
                s.push_str(" fp=0xc000050f80 sp=0xc000050f60 pc=0x4a1c5d");
            }
            s.push_str(nl);
        }
        if let Some((f, gid)) = &g.creator {
            s.push_str(&format!(
                "created by {f} in goroutine {gid}{nl}\t/src/main.go:7 +0x25{nl}"
            ));
        }
        s.push_str(nl);
    }
    if noise {
        s.push_str(&format!("exit status 2{nl}"));
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..4096)) {
        let mut snap = new_snapshot();
        let _ = ingest_reader("fuzz", data.as_slice(), &mut snap);
    }

    #[test]
    fn arbitrary_text_with_headers_never_panics(lines in prop::collection::vec(
        prop_oneof![
            "goroutine [0-9]{1,3} \\[[a-z ,()0-9]{0,20}\\]?:?",
            "[a-z./()*]{0,30}\\([0-9a-fx, .{}]{0,20}\\)",
            "\t[a-z/]{0,20}\\.go:[0-9]{0,6}( \\+0x[0-9a-f]{1,4})?",
            "created by [a-z.]{0,10}( in goroutine [0-9]{0,4})?",
            "\\.\\.\\.[0-9]{0,3} frames elided\\.\\.\\.",
            "\\[originating from goroutine [0-9]{0,3}\\]:",
            ".{0,40}",
        ], 0..60)) {
        let mut snap = new_snapshot();
        let _ = ingest_reader("fuzz", lines.join("\n").as_bytes(), &mut snap);
    }

    #[test]
    fn well_formed_dumps_round_trip(
        gs in prop::collection::vec(goroutine(), 1..20),
        crash_form in any::<bool>(),
        crlf in any::<bool>(),
        noise in any::<bool>(),
    ) {
        let text = render(&gs, crash_form, crlf, noise);
        let mut snap = new_snapshot();
        ingest_reader("gen", text.as_bytes(), &mut snap).unwrap();
        prop_assert_eq!(snap.goroutines.len(), gs.len());
        prop_assert!(snap.sources[0].skipped.is_empty(), "{:?}", snap.sources[0].skipped);
        for (want, got) in gs.iter().zip(&snap.goroutines) {
            prop_assert_eq!(got.id, want.id);
            prop_assert_eq!(got.wait_minutes, want.minutes);
            prop_assert_eq!(got.locked_to_thread, want.locked);
            prop_assert_eq!(snap.tables.str(got.raw_status.unwrap()), want.status);
            let frames: Vec<(String, String, u32)> = snap
                .frames(got)
                .map(|f| (f.function.to_string(), f.file.to_string(), f.line))
                .collect();
            prop_assert_eq!(&frames, &want.frames);
            match (&want.creator, got.created_by) {
                (Some((f, id)), Some(cb)) => {
                    prop_assert_eq!(snap.tables.frame_ref(cb.frame).function, f.as_str());
                    prop_assert_eq!(cb.goroutine, Some(*id));
                }
                (None, None) => {}
                (w, g) => prop_assert!(false, "creator mismatch: {:?} vs {:?}", w, g.is_some()),
            }
        }
    }
}
