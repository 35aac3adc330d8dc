//! Text goroutine dumps in every form Go 1.21–1.27 prints them.
//!
//! Handles SIGQUIT/crash output (`goroutine 7 gp=0x… m=4 mp=0x… [syscall]:`, `fp= sp= pc=` frame
//! suffixes, register dumps, `SIGQUIT: quit` preambles, `goroutine running on other thread; stack
//! unavailable`), `fatal error: all goroutines are asleep - deadlock!`, panics, `runtime.Stack` and
//! `debug=2` output, `[N minutes]`, `locked to thread`, `(scan)`, `(durable)`, `(leaked)`,
//! `synctest bubble N`, labels, `created by X in goroutine N`, both elided-frames forms,
//! `[originating from goroutine N]` ancestry, CRLF line ends, and dumps embedded in longer logs.
//!
//! The parser streams: it reads fixed-size blocks, finds lines with `memchr`, and keeps only the
//! goroutine being built plus the interned tables. Memory is bounded by the model, not the input.

use crate::{note_skipped, IngestError};
use gostall_goruntime as rt;
use gostall_model::{
    CreatedBy, Frame, FrameId, GoFlags, GoState, Goroutine, Snapshot, StackId, Sym,
};
use rustc_hash::FxHashMap;
use std::io::Read;

/// Size of the read buffer.
const BLOCK: usize = 4 << 20;
/// Lines longer than this are skipped (no Go dump line is anywhere near it).
pub const MAX_LINE: usize = 64 * 1024;
/// Frames kept per goroutine; deeper stacks are cut and the cut is recorded as elided frames.
pub const MAX_FRAMES: usize = 4096;

/// What a parse saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct DumpStats {
    /// Goroutines added to the snapshot.
    pub goroutines: usize,
    /// Lines read.
    pub lines: u64,
    /// Bytes read.
    pub bytes: u64,
}

/// Does this buffer contain a goroutine header line anywhere?
pub fn contains_header(buf: &[u8]) -> bool {
    memchr::memmem::find_iter(buf, b"goroutine ").any(|i| {
        (i == 0 || buf[i - 1] == b'\n' || buf[i - 1] == b' ')
            && parse_header_prefix(&buf[i..]).is_some()
    })
}

/// `goroutine N ` followed by `[` or `gp=`: returns the id and the rest after the id.
fn parse_header_prefix(line: &[u8]) -> Option<(u64, &[u8])> {
    let rest = line.strip_prefix(b"goroutine ")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 20 {
        return None;
    }
    let id = parse_u64(&rest[..digits])?;
    let rest = rest[digits..].strip_prefix(b" ")?;
    if rest.starts_with(b"[") || rest.starts_with(b"gp=") {
        Some((id, rest))
    } else {
        None
    }
}

fn parse_u64(d: &[u8]) -> Option<u64> {
    if d.is_empty() || d.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in d {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

/// The goroutine being assembled.
struct Pending {
    g: Goroutine,
    frames: Vec<FrameId>,
    /// A function line waiting for its file line.
    func: Option<Sym>,
    /// The next file line belongs to `created by`.
    expect_created_file: Option<(Sym, Option<u64>)>,
    /// Frames now belong to an ancestor (`[originating from goroutine N]`): skip them.
    in_ancestor: bool,
    header_line: u64,
}

/// Parser state across lines.
struct Parser<'s> {
    snap: &'s mut Snapshot,
    source: u16,
    name: &'s str,
    cur: Option<Pending>,
    /// Cache from the raw bytes of `function\0file:line` to the interned frame: one hash lookup per
    /// frame on the hot path instead of three.
    frame_cache: FxHashMap<Box<[u8]>, FrameId>,
    key: Vec<u8>,
    goroutines: usize,
    line_no: u64,
    /// Stack ids of `runtime.goexit`-only tails are common; keep the frame vec allocation.
    spare_frames: Vec<FrameId>,
}

/// Parses a text goroutine dump from a stream into the snapshot.
pub fn parse(
    name: &str,
    mut reader: impl Read,
    source: u16,
    snap: &mut Snapshot,
) -> Result<DumpStats, IngestError> {
    let mut p = Parser {
        snap,
        source,
        name,
        cur: None,
        frame_cache: FxHashMap::default(),
        key: Vec::with_capacity(256),
        goroutines: 0,
        line_no: 0,
        spare_frames: Vec::with_capacity(64),
    };
    let mut buf = vec![0u8; BLOCK];
    let mut filled = 0usize; // bytes valid in buf
    let mut bytes = 0u64;
    let mut skipping_long = false;
    loop {
        let n = read_full(&mut reader, &mut buf[filled..]).map_err(|source| IngestError::Io {
            name: name.to_string(),
            source,
        })?;
        bytes += n as u64;
        filled += n;
        let eof = n == 0;
        let mut start = 0usize;
        let data = &buf[..filled];
        for nl in memchr::memchr_iter(b'\n', data) {
            let line = &data[start..nl];
            start = nl + 1;
            if skipping_long {
                skipping_long = false;
                continue;
            }
            p.line(line);
        }
        if eof {
            if start < filled && !skipping_long {
                let line = buf[start..filled].to_vec();
                p.line(&line);
            }
            break;
        }
        // Keep the incomplete last line.
        let rest = filled - start;
        if rest >= MAX_LINE || (start == 0 && filled == buf.len()) {
            // A line longer than any Go dump line: drop it, and what follows up to its newline.
            if !skipping_long {
                p.line_no += 1;
                let at = p.line_no;
                note_skipped(p.snap, source, || {
                    format!("line {at}: longer than {MAX_LINE} bytes, skipped")
                });
                p.finish();
            }
            skipping_long = true;
            filled = 0;
        } else {
            buf.copy_within(start..filled, 0);
            filled = rest;
        }
    }
    p.finish_at_eof();
    let stats = DumpStats {
        goroutines: p.goroutines,
        lines: p.line_no,
        bytes,
    };
    if let Some(s) = p.snap.sources.get_mut(source as usize) {
        s.goroutines += p.goroutines;
    }
    Ok(stats)
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl Parser<'_> {
    fn line(&mut self, mut line: &[u8]) {
        self.line_no += 1;
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        let Some(&first) = line.first() else {
            // Blank line: ends a goroutine.
            self.finish();
            return;
        };
        if first == b'\t' {
            self.tab_line(&line[1..]);
            return;
        }
        if first == b'g' {
            if let Some((id, rest)) = parse_header_prefix(line) {
                self.finish();
                self.header(id, rest);
                return;
            }
        }
        if self.cur.is_some() {
            if self.body_line(line) {
                return;
            }
            // Not part of a goroutine: unrelated log text ends it.
            self.finish();
        }
        self.outside_line(line);
    }

    /// A line starting with a tab: a file line, or the "stack unavailable" note.
    fn tab_line(&mut self, rest: &[u8]) {
        let Some(cur) = self.cur.as_mut() else {
            return;
        };
        if let Some((func, creator)) = cur.expect_created_file.take() {
            let (file, line) = split_file_line(rest);
            let file = self.snap.tables.intern_bytes(file);
            let frame = self.snap.tables.intern_frame(Frame {
                function: func,
                file,
                line,
            });
            cur.g.created_by = Some(CreatedBy {
                frame,
                goroutine: creator,
            });
            return;
        }
        if rest.starts_with(b"goroutine running on other thread") {
            cur.g.stack_unavailable = true;
            return;
        }
        let Some(func) = cur.func.take() else {
            return;
        };
        if cur.in_ancestor {
            return;
        }
        let (file_bytes, line) = split_file_line(rest);
        // Hot path: one lookup keyed by function id + file:line bytes.
        self.key.clear();
        self.key.extend_from_slice(&func.0.to_le_bytes());
        self.key.extend_from_slice(file_bytes);
        self.key.extend_from_slice(&line.to_le_bytes());
        let id = match self.frame_cache.get(self.key.as_slice()) {
            Some(&id) => id,
            None => {
                let file = self.snap.tables.intern_bytes(file_bytes);
                let id = self.snap.tables.intern_frame(Frame {
                    function: func,
                    file,
                    line,
                });
                self.frame_cache.insert(self.key.as_slice().into(), id);
                id
            }
        };
        if cur.frames.len() < MAX_FRAMES {
            cur.frames.push(id);
        } else {
            cur.g.elided_frames = cur.g.elided_frames.saturating_add(1);
        }
    }

    /// A non-tab line inside a goroutine: a function line, `created by`, elision or ancestry marker.
    /// Returns false when the line is not part of a goroutine.
    fn body_line(&mut self, line: &[u8]) -> bool {
        let cur = self.cur.as_mut().expect("checked by caller");
        if let Some(rest) = line.strip_prefix(b"created by ") {
            let (func, creator) = match memchr::memmem::rfind(rest, b" in goroutine ") {
                Some(i) => (&rest[..i], parse_u64(&rest[i + 14..])),
                None => (rest, None),
            };
            let func = self.snap.tables.intern_bytes(func);
            let cur = self.cur.as_mut().expect("present");
            cur.func = None;
            if cur.in_ancestor {
                return true;
            }
            cur.expect_created_file = Some((func, creator));
            return true;
        }
        if line.starts_with(b"...") && line.ends_with(b"elided...") {
            if !cur.in_ancestor {
                let n = line
                    .strip_prefix(b"...")
                    .and_then(|r| r.split(|&b| b == b' ').next())
                    .and_then(parse_u64);
                cur.g.elided_frames = match n {
                    Some(n) => cur
                        .g
                        .elided_frames
                        .saturating_add(n.min(u64::from(u32::MAX - 1)) as u32),
                    None => u32::MAX,
                };
            }
            return true;
        }
        if let Some(rest) = line.strip_prefix(b"[originating from goroutine ") {
            if cur.g.originating_from.is_none() {
                let d = rest.iter().take_while(|b| b.is_ascii_digit()).count();
                cur.g.originating_from = parse_u64(&rest[..d]);
            }
            cur.in_ancestor = true;
            cur.func = None;
            return true;
        }
        // A function line: `pkg.Func(args)` or `pkg.Func(...)`; in ancestor sections `pkg.Func(...)`.
        if let Some(func) = function_name(line) {
            let func = self.snap.tables.intern_bytes(func);
            self.cur.as_mut().expect("present").func = Some(func);
            return true;
        }
        false
    }

    /// Lines outside goroutines: the dump's preamble and epilogue.
    fn outside_line(&mut self, line: &[u8]) {
        let facts = &mut self.snap.process;
        if let Some(rest) = line.strip_prefix(b"fatal error: ") {
            if facts.fatal_error.is_none() {
                facts.fatal_error = Some(String::from_utf8_lossy(rest).into_owned());
            }
        } else if let Some(rest) = line.strip_prefix(b"panic: ") {
            if facts.panic.is_none() {
                facts.panic = Some(String::from_utf8_lossy(rest).into_owned());
            }
        } else if line.starts_with(b"SIG") {
            if let Some(i) = memchr::memchr(b':', line) {
                let sig = &line[..i];
                if sig.len() <= 10
                    && sig
                        .iter()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
                    && facts.signal.is_none()
                {
                    facts.signal = Some(String::from_utf8_lossy(line).into_owned());
                }
            }
        }
    }

    fn header(&mut self, id: u64, rest: &[u8]) {
        let header_line = self.line_no;
        let mut g = Goroutine {
            id,
            count: 1,
            state: GoState::Unknown,
            wait_reason: None,
            raw_status: None,
            wait_minutes: None,
            locked_to_thread: false,
            stack_unavailable: false,
            flags: GoFlags::default(),
            synctest_bubble: None,
            stack: StackId(0),
            elided_frames: 0,
            created_by: None,
            originating_from: None,
            labels: Vec::new(),
            m: None,
            source: self.source,
        };
        // Optional crash fields before the bracket: gp=0x… m=N|nil mp=0x…
        let Some(open) = memchr::memchr(b'[', rest) else {
            self.skip_header(header_line, "no `[status]`");
            return;
        };
        for field in rest[..open].split(|&b| b == b' ') {
            if let Some(m) = field.strip_prefix(b"m=") {
                g.m = parse_u64(m);
                if let Some(m) = g.m {
                    let max = &mut self.snap.process.max_m_id;
                    *max = Some(max.map_or(m, |x| x.max(m)));
                }
            }
        }
        let after = &rest[open + 1..];
        let Some(close) = memchr::memchr(b']', after) else {
            self.skip_header(header_line, "unterminated `[status`");
            return;
        };
        let inside = &after[..close];
        let tail = &after[close + 1..];
        let mut parts = inside.split(|&b| b == b',');
        let status = parts.next().unwrap_or_default();
        let mut status = trim(status);
        // Flags printed right after the status.
        loop {
            if let Some(s) = status.strip_suffix(b" (scan)") {
                g.flags.scan = true;
                status = s;
            } else if let Some(s) = status.strip_suffix(b" (leaked)") {
                g.flags.leaked = true;
                status = s;
            } else {
                break;
            }
        }
        let status_str = String::from_utf8_lossy(status);
        let st = rt::parse_status(&status_str);
        g.state = st.state;
        g.wait_reason = st.wait_reason;
        g.flags.durable = st.durable;
        g.raw_status = Some(self.snap.tables.intern(&status_str));
        for part in parts {
            let part = trim(part);
            if part == b"locked to thread" {
                g.locked_to_thread = true;
            } else if let Some(n) = part.strip_suffix(b" minutes") {
                g.wait_minutes = parse_u64(n).map(|v| v.min(u64::from(u32::MAX)) as u32);
            } else if let Some(n) = part.strip_prefix(b"synctest bubble ") {
                g.synctest_bubble = parse_u64(n);
            } else if part == b"(durable)" {
                g.flags.durable = true;
            }
        }
        // Labels: ` {k: v, k2: "v 2"}:`
        let tail = trim(tail);
        if let Some(labels) = tail.strip_prefix(b"{") {
            if let Some(end) = memchr::memrchr(b'}', labels) {
                self.parse_labels(&labels[..end], &mut g);
            }
        }
        let mut frames = std::mem::take(&mut self.spare_frames);
        frames.clear();
        self.cur = Some(Pending {
            g,
            frames,
            func: None,
            expect_created_file: None,
            in_ancestor: false,
            header_line,
        });
    }

    fn parse_labels(&mut self, s: &[u8], g: &mut Goroutine) {
        // Values are quoted only when needed; split on `, ` outside quotes.
        let mut items = Vec::new();
        let (mut start, mut in_q, mut esc) = (0usize, false, false);
        for (i, &b) in s.iter().enumerate() {
            if esc {
                esc = false;
            } else if b == b'\\' && in_q {
                esc = true;
            } else if b == b'"' {
                in_q = !in_q;
            } else if b == b',' && !in_q {
                items.push(&s[start..i]);
                start = i + 1;
            }
        }
        items.push(&s[start..]);
        for item in items.into_iter().take(64) {
            let item = trim(item);
            if item.is_empty() {
                continue;
            }
            let (k, v) = match memchr::memmem::find(item, b": ") {
                Some(i) => (&item[..i], &item[i + 2..]),
                None => (item, &b""[..]),
            };
            let unq = |x: &[u8]| -> Vec<u8> {
                let x = trim(x);
                if x.len() >= 2 && x[0] == b'"' && x[x.len() - 1] == b'"' {
                    x[1..x.len() - 1].to_vec()
                } else {
                    x.to_vec()
                }
            };
            let k = self.snap.tables.intern_bytes(&unq(k));
            let v = self.snap.tables.intern_bytes(&unq(v));
            g.labels.push((k, v));
        }
    }

    fn skip_header(&mut self, line: u64, why: &str) {
        note_skipped(self.snap, self.source, || {
            format!("line {line}: goroutine header not understood ({why})")
        });
    }

    /// Completes the goroutine being built and adds it to the snapshot.
    fn finish(&mut self) {
        let Some(mut cur) = self.cur.take() else {
            return;
        };
        if cur.frames.is_empty() && !cur.g.stack_unavailable && cur.g.created_by.is_none() {
            let (id, at) = (cur.g.id, cur.header_line);
            note_skipped(self.snap, self.source, || {
                format!("line {at}: goroutine {id} has no frames")
            });
        }
        cur.g.stack = self.snap.tables.intern_stack(&cur.frames);
        if let Some(reason) = cur.g.wait_reason {
            let tables = &self.snap.tables;
            let funcs = cur
                .frames
                .iter()
                .map(|&f| tables.str(tables.frame(f).function));
            cur.g.wait_reason = Some(rt::refine_wait_reason(reason, funcs));
        } else if cur.g.state == GoState::Unknown {
            let tables = &self.snap.tables;
            let funcs = cur
                .frames
                .iter()
                .map(|&f| tables.str(tables.frame(f).function));
            if let Some((state, reason)) = rt::infer_from_stack(funcs) {
                cur.g.state = state;
                cur.g.wait_reason = reason;
            }
        }
        if cur.g.state == GoState::Syscall {
            let tables = &self.snap.tables;
            if cur
                .frames
                .iter()
                .any(|&f| rt::is_cgocall(tables.str(tables.frame(f).function)))
            {
                cur.g.wait_reason = Some(gostall_model::WaitReason::Cgo);
            }
        }
        self.snap.goroutines.push(cur.g);
        self.goroutines += 1;
        self.spare_frames = cur.frames;
    }

    fn finish_at_eof(&mut self) {
        if let Some(cur) = &self.cur {
            if cur.func.is_some() || cur.expect_created_file.is_some() {
                let (id, name) = (cur.g.id, self.name.to_string());
                note_skipped(self.snap, self.source, || {
                    format!("{name} ends inside goroutine {id}: the dump looks truncated")
                });
            }
        }
        self.finish();
    }
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The function name of a frame line `name(args)`: everything before the `(` that opens the final
/// parenthesised argument list. Rejects lines that do not have that shape.
fn function_name(line: &[u8]) -> Option<&[u8]> {
    if line.last() != Some(&b')') {
        return None;
    }
    let mut depth = 0i32;
    for i in (0..line.len()).rev() {
        match line[i] {
            b')' => depth += 1,
            b'(' => {
                depth -= 1;
                if depth == 0 {
                    let name = &line[..i];
                    if name.is_empty()
                        || name.contains(&b' ')
                        || name.contains(&b'\t')
                        || !(name.contains(&b'.') || name == b"panic")
                    {
                        return None;
                    }
                    return Some(name);
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits `path/to/file.go:123 +0x1f fp=… sp=… pc=…` into the path and line.
fn split_file_line(rest: &[u8]) -> (&[u8], u32) {
    // The location ends at " +0x" (offset) or at the first " fp=" / end of line.
    let end = memchr::memmem::find(rest, b" +0x")
        .or_else(|| memchr::memmem::find(rest, b" fp="))
        .unwrap_or(rest.len());
    let loc = trim(&rest[..end]);
    match memchr::memrchr(b':', loc) {
        Some(i) => {
            let line = parse_u64(&loc[i + 1..])
                .unwrap_or(0)
                .min(u64::from(u32::MAX)) as u32;
            if line == 0 && !loc[i + 1..].iter().all(u8::is_ascii_digit) {
                (loc, 0)
            } else {
                (&loc[..i], line)
            }
        }
        None => (loc, 0),
    }
}

#[cfg(test)]
mod tests;
