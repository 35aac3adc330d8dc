//! The counted text form of count profiles (`/debug/pprof/goroutine?debug=1`, `threadcreate?debug=1`):
//!
//! ```text
//! goroutine profile: total 6
//! 3 @ 0x43d0e5 0x40731f 0x4a1c5e 0x46f9e1
//! # labels: {"worker":"7"}
//! #<TAB>0x4a1c5d<TAB>main.worker+0x3d<TAB>/src/app/main.go:10
//! ```
//!
//! Entries carry no goroutine ids or states; the state is inferred from the stack.

use crate::{note_skipped, IngestError};
use gostall_goruntime as rt;
use gostall_model::{GoState, Goroutine, Snapshot, StackId};
use std::io::{BufRead, BufReader, Read};

/// Is this the start of a `debug=1` count profile?
pub(crate) fn looks_like_debug1(head: &[u8]) -> bool {
    let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    first.ends_with(b"profile: total ".as_slice()) || {
        memchr::memmem::find(first, b" profile: total ").is_some()
            && first
                .rsplit(|&b| b == b' ')
                .next()
                .is_some_and(|n| !n.is_empty() && n.iter().all(u8::is_ascii_digit))
    }
}

struct Entry {
    count: u32,
    frames: Vec<gostall_model::FrameId>,
    labels: Vec<(gostall_model::Sym, gostall_model::Sym)>,
}

/// Parses a `debug=1` count profile.
pub(crate) fn parse(
    name: &str,
    reader: impl Read,
    source: u16,
    snap: &mut Snapshot,
) -> Result<(), IngestError> {
    let mut r = BufReader::with_capacity(1 << 20, reader);
    let mut line = Vec::with_capacity(256);
    let mut line_no = 0u64;
    let mut profile = String::new();
    let mut cur: Option<Entry> = None;
    let mut added = 0usize;
    loop {
        line.clear();
        let n = (&mut r)
            .take(crate::dump::MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .map_err(|source| IngestError::Io {
                name: name.to_string(),
                source,
            })?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if line.last() != Some(&b'\n') && n == crate::dump::MAX_LINE {
            note_skipped(snap, source, || {
                format!("line {line_no}: too long, skipped")
            });
            // Drop the remainder of the long line.
            loop {
                let buf = r.fill_buf().map_err(|source| IngestError::Io {
                    name: name.to_string(),
                    source,
                })?;
                if buf.is_empty() {
                    break;
                }
                match memchr::memchr(b'\n', buf) {
                    Some(i) => {
                        r.consume(i + 1);
                        break;
                    }
                    None => {
                        let l = buf.len();
                        r.consume(l);
                    }
                }
            }
            continue;
        }
        let l = trim_end(&line);
        if line_no == 1 {
            if let Some(i) = memchr::memmem::find(l, b" profile: total ") {
                profile = String::from_utf8_lossy(&l[..i]).into_owned();
                if profile == "threadcreate" {
                    let total = std::str::from_utf8(&l[i + 16..])
                        .ok()
                        .and_then(|t| t.trim().parse().ok());
                    snap.process.threads_created = total;
                }
            }
            continue;
        }
        if l.is_empty() {
            added += flush(snap, source, &profile, cur.take());
            continue;
        }
        if let Some(rest) = l.strip_prefix(b"# labels: ") {
            if let Some(e) = cur.as_mut() {
                e.labels = parse_labels(snap, rest);
            }
            continue;
        }
        if let Some(rest) = l.strip_prefix(b"#") {
            let Some(e) = cur.as_mut() else { continue };
            let mut fields = rest
                .split(|&b| b == b'\t' || b == b' ')
                .filter(|f| !f.is_empty());
            let _pc = fields.next();
            let (Some(func), Some(loc)) = (fields.next(), fields.next()) else {
                continue;
            };
            let func = match memchr::memrchr(b'+', func) {
                Some(i) => &func[..i],
                None => func,
            };
            let (file, lineno) = match memchr::memrchr(b':', loc) {
                Some(i) => (
                    &loc[..i],
                    std::str::from_utf8(&loc[i + 1..])
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0),
                ),
                None => (loc, 0),
            };
            let f = snap.tables.intern_bytes(func);
            let file = snap.tables.intern_bytes(file);
            let id = snap.tables.intern_frame(gostall_model::Frame {
                function: f,
                file,
                line: lineno,
            });
            if e.frames.len() < crate::dump::MAX_FRAMES {
                e.frames.push(id);
            }
            continue;
        }
        // `N @ 0x... 0x...`
        if let Some(at) = memchr::memmem::find(l, b" @") {
            added += flush(snap, source, &profile, cur.take());
            let count = std::str::from_utf8(&l[..at])
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok());
            match count {
                Some(c) => {
                    cur = Some(Entry {
                        count: c.min(u64::from(u32::MAX)) as u32,
                        frames: Vec::new(),
                        labels: Vec::new(),
                    })
                }
                None => note_skipped(snap, source, || {
                    format!("line {line_no}: expected `COUNT @ PCs`")
                }),
            }
            continue;
        }
        note_skipped(snap, source, || format!("line {line_no}: not understood"));
    }
    added += flush(snap, source, &profile, cur.take());
    if let Some(s) = snap.sources.get_mut(source as usize) {
        s.goroutines += added;
    }
    Ok(())
}

fn trim_end(l: &[u8]) -> &[u8] {
    let mut l = l;
    while let [rest @ .., b'\n' | b'\r' | b' '] = l {
        l = rest;
    }
    l
}

fn flush(snap: &mut Snapshot, source: u16, profile: &str, e: Option<Entry>) -> usize {
    let Some(e) = e else { return 0 };
    if profile != "goroutine" {
        return 0;
    }
    let stack = snap.tables.intern_stack(&e.frames);
    let tables = &snap.tables;
    let funcs = e
        .frames
        .iter()
        .map(|&f| tables.str(tables.frame(f).function));
    let (state, wait_reason) = rt::infer_from_stack(funcs).unwrap_or((GoState::Unknown, None));
    let stack = if e.frames.is_empty() {
        StackId(0)
    } else {
        stack
    };
    snap.goroutines.push(Goroutine {
        state,
        wait_reason,
        labels: e.labels,
        ..Goroutine::new(0, e.count, stack, source)
    });
    1
}

/// `{"k":"v", "k2":"v2"}` (Go's labelMap formatting).
fn parse_labels(snap: &mut Snapshot, s: &[u8]) -> Vec<(gostall_model::Sym, gostall_model::Sym)> {
    let text = String::from_utf8_lossy(s);
    let mut strings = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' {
            let mut cur = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            cur.push(n);
                        }
                    }
                    '"' => break,
                    c => cur.push(c),
                }
            }
            strings.push(cur);
        }
    }
    strings
        .chunks_exact(2)
        .take(64)
        .map(|kv| (snap.tables.intern(&kv[0]), snap.tables.intern(&kv[1])))
        .collect()
}
