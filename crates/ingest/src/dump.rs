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
    CreatedBy, Frame, FrameId, GoState, Goroutine, Snapshot, StackId, Sym, WaitReason,
};
use rustc_hash::FxHashMap;
use std::io::Read;
use std::sync::mpsc;

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

/// A goroutine's state and wait reason once its stack has been taken into account.
type Refined = (GoState, Option<WaitReason>);

/// Parser state across lines.
struct Parser<'s> {
    snap: &'s mut Snapshot,
    source: u16,
    name: &'s str,
    cur: Option<Pending>,
    /// Cache from the raw bytes of a frame (function name and `file:line` text, see [`Parser::key`])
    /// to the interned frame: one hash lookup per frame on the hot path.
    frame_cache: FxHashMap<Box<[u8]>, FrameId>,
    /// The function line whose file line comes next, not interned yet: the name's length (4 bytes,
    /// little endian) then the name; the file line appends its `file:line` text to make the
    /// [`Parser::frame_cache`] key. Valid while `name_pending`.
    key: Vec<u8>,
    /// `key` holds a function name that is not interned yet. Any line other than its file line
    /// interns it first ([`Parser::flush_name`]), so strings are interned in input order.
    name_pending: bool,
    /// Status text → its meaning and interned text.
    status_cache: FxHashMap<Box<[u8]>, (rt::Status, Sym)>,
    /// (stack, state, reason as printed) → state and reason refined by the stack.
    refine_cache: FxHashMap<(StackId, GoState, Option<WaitReason>), Refined>,
    in_goroutine: memchr::memmem::FinderRev<'static>,
    goroutines: usize,
    line_no: u64,
    /// Stack ids of `runtime.goexit`-only tails are common; keep the frame vec allocation.
    spare_frames: Vec<FrameId>,
}

/// Parses a text goroutine dump from a stream into the snapshot.
///
/// Input larger than one block is read on the calling thread while a second thread parses the
/// previous block, so reading (a copy out of the page cache) overlaps parsing.
pub fn parse(
    name: &str,
    reader: impl Read,
    source: u16,
    snap: &mut Snapshot,
) -> Result<DumpStats, IngestError> {
    parse_with(name, reader, source, snap, true)
}

/// [`parse`], with a second thread for parsing when `thread` and one can be started.
fn parse_with(
    name: &str,
    mut reader: impl Read,
    source: u16,
    snap: &mut Snapshot,
    thread: bool,
) -> Result<DumpStats, IngestError> {
    let mut p = Parser {
        snap,
        source,
        name,
        cur: None,
        frame_cache: FxHashMap::default(),
        key: Vec::with_capacity(256),
        name_pending: false,
        status_cache: FxHashMap::default(),
        refine_cache: FxHashMap::default(),
        in_goroutine: memchr::memmem::FinderRev::new(b" in goroutine "),
        goroutines: 0,
        line_no: 0,
        spare_frames: Vec::with_capacity(64),
    };
    let io = |source| IngestError::Io {
        name: name.to_string(),
        source,
    };
    let mut skipping_long = false;
    let mut buf = vec![0u8; BLOCK];
    let n = read_full(&mut reader, &mut buf).map_err(io)?;
    let mut bytes = n as u64;
    let (first, carry) = cut(buf, n, n == 0, &mut skipping_long);
    if matches!(first.tail, Tail::Eof { .. }) {
        // Small input: all of it is in the first block.
        p.block(&first);
    } else {
        let mut input = Input {
            reader: &mut reader,
            skipping_long,
            bytes: &mut bytes,
        };
        parse_rest(&mut p, &mut input, first, carry, thread).map_err(io)?;
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

/// The input being read, after its first block.
struct Input<'a, R> {
    reader: &'a mut R,
    /// A line longer than [`MAX_LINE`] is being skipped.
    skipping_long: bool,
    /// Bytes read so far.
    bytes: &'a mut u64,
}

/// Where the blocks read go: a parser thread, or the parser on this thread.
trait Blocks {
    /// A buffer to read the next block into; `None` when parsing has stopped.
    fn buffer(&mut self) -> Option<Vec<u8>>;
    /// Hands a block over; false when parsing has stopped.
    fn parse(&mut self, block: Block) -> bool;
}

/// Blocks go to a parser thread, and their buffers come back for reuse.
struct ToThread {
    to_parser: mpsc::SyncSender<Block>,
    returned: mpsc::Receiver<Vec<u8>>,
    /// Buffers allocated so far: at most [`READ_BUFFERS`].
    buffers: usize,
}

impl Blocks for ToThread {
    fn buffer(&mut self) -> Option<Vec<u8>> {
        match self.returned.try_recv() {
            Ok(b) => Some(b),
            Err(_) if self.buffers < READ_BUFFERS => {
                self.buffers += 1;
                Some(vec![0u8; BLOCK])
            }
            // Err: the parser thread has stopped (it panicked); joining it reports why.
            Err(_) => self.returned.recv().ok(),
        }
    }

    fn parse(&mut self, block: Block) -> bool {
        self.to_parser.send(block).is_ok()
    }
}

/// Blocks are parsed here, in turn with reading.
struct InPlace<'p, 's> {
    parser: &'p mut Parser<'s>,
    spare: Option<Vec<u8>>,
}

impl Blocks for InPlace<'_, '_> {
    fn buffer(&mut self) -> Option<Vec<u8>> {
        Some(self.spare.take().unwrap_or_else(|| vec![0u8; BLOCK]))
    }

    fn parse(&mut self, block: Block) -> bool {
        self.parser.block(&block);
        self.spare = Some(block.buf);
        true
    }
}

/// Parses the blocks after the first one: on a second thread while this one reads, or here when
/// no thread can be started (a process at its thread limit is a case gostall must diagnose).
fn parse_rest<R: Read>(
    p: &mut Parser<'_>,
    input: &mut Input<'_, R>,
    first: Block,
    carry: std::ops::Range<usize>,
    thread: bool,
) -> std::io::Result<()> {
    let (first, carry) = match std::thread::scope(|scope| {
        if !thread {
            return Err((first, carry));
        }
        let (to_parser, blocks) = mpsc::sync_channel::<Block>(1);
        let (give_back, returned) = mpsc::channel::<Vec<u8>>();
        let parser = &mut *p;
        let spawned = std::thread::Builder::new()
            .name("gostall-parse".into())
            .spawn_scoped(scope, move || {
                for b in blocks {
                    parser.block(&b);
                    // The reader may be gone after an error; the buffer is then simply dropped.
                    let _ = give_back.send(b.buf);
                }
            });
        let Ok(handle) = spawned else {
            return Err((first, carry));
        };
        let mut to_thread = ToThread {
            to_parser,
            returned,
            buffers: 1,
        };
        let read = read_blocks(input, first, carry, &mut to_thread);
        drop(to_thread);
        if let Err(panic) = handle.join() {
            std::panic::resume_unwind(panic);
        }
        Ok(read)
    }) {
        Ok(read) => return read,
        Err(no_thread) => no_thread,
    };
    let mut in_place = InPlace {
        parser: p,
        spare: None,
    };
    read_blocks(input, first, carry, &mut in_place)
}

/// Reads block after block, carrying each incomplete last line over to the next block, and hands
/// them over in order.
fn read_blocks<R: Read>(
    input: &mut Input<'_, R>,
    first: Block,
    mut carry: std::ops::Range<usize>,
    blocks: &mut impl Blocks,
) -> std::io::Result<()> {
    let mut cur = first;
    loop {
        let Some(mut next) = blocks.buffer() else {
            return Ok(());
        };
        // Keep the incomplete last line for the next block.
        let filled = carry.len();
        next[..filled].copy_from_slice(&cur.buf[carry]);
        if !blocks.parse(cur) {
            return Ok(());
        }
        let n = read_full(input.reader, &mut next[filled..])?;
        *input.bytes += n as u64;
        let eof = n == 0;
        (cur, carry) = cut(next, filled + n, eof, &mut input.skipping_long);
        if eof {
            blocks.parse(cur);
            return Ok(());
        }
    }
}

/// Read buffers in flight: one being filled, one queued, one being parsed.
const READ_BUFFERS: usize = 3;

/// A block of input, cut the way the reading loop always cuts: complete lines, then what follows
/// the last newline.
struct Block {
    buf: Vec<u8>,
    /// Complete lines end here (just after the last newline).
    lines_end: usize,
    /// Valid bytes in `buf`.
    filled: usize,
    /// The first line is the end of a long line being skipped.
    skip_first: bool,
    tail: Tail,
}

/// What follows the complete lines of a block.
#[derive(Clone, Copy)]
enum Tail {
    /// An incomplete line, carried over to the next block.
    Carried,
    /// A line longer than [`MAX_LINE`] starts here: it is skipped (and noted).
    LongLine,
    /// A long line already noted goes on.
    StillSkipping,
    /// End of input; `last_line` when a last line without a newline is to be parsed.
    Eof { last_line: bool },
}

/// Cuts a filled buffer into a [`Block`] and the range of the incomplete last line to carry over.
/// `skipping_long` is the state of long-line skipping across blocks.
fn cut(
    buf: Vec<u8>,
    filled: usize,
    eof: bool,
    skipping_long: &mut bool,
) -> (Block, std::ops::Range<usize>) {
    let lines_end = memchr::memrchr(b'\n', &buf[..filled]).map_or(0, |i| i + 1);
    let skip_first = *skipping_long;
    if lines_end > 0 {
        // The skipped line ends at the first newline.
        *skipping_long = false;
    }
    let (tail, carry) = if eof {
        let last_line = lines_end < filled && !*skipping_long;
        (Tail::Eof { last_line }, 0..0)
    } else if filled - lines_end >= MAX_LINE || (lines_end == 0 && filled == buf.len()) {
        // A line longer than any Go dump line: drop it, and what follows up to its newline.
        let tail = if *skipping_long {
            Tail::StillSkipping
        } else {
            Tail::LongLine
        };
        *skipping_long = true;
        (tail, 0..0)
    } else {
        (Tail::Carried, lines_end..filled)
    };
    let block = Block {
        buf,
        lines_end,
        filled,
        skip_first,
        tail,
    };
    (block, carry)
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
    /// Parses the lines of one block.
    fn block(&mut self, b: &Block) {
        let data = &b.buf[..b.lines_end];
        let mut start = 0usize;
        let mut skip = b.skip_first;
        for nl in memchr::memchr_iter(b'\n', data) {
            let line = &data[start..nl];
            start = nl + 1;
            if skip {
                skip = false;
                continue;
            }
            self.line(line);
        }
        match b.tail {
            Tail::Eof { last_line: true } => self.line(&b.buf[b.lines_end..b.filled]),
            Tail::LongLine => {
                self.line_no += 1;
                let at = self.line_no;
                note_skipped(self.snap, self.source, || {
                    format!("line {at}: longer than {MAX_LINE} bytes, skipped")
                });
                self.finish();
            }
            Tail::Carried | Tail::StillSkipping | Tail::Eof { last_line: false } => {}
        }
    }

    fn line(&mut self, mut line: &[u8]) {
        self.line_no += 1;
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        let Some(&first) = line.first() else {
            // Blank line: ends a goroutine.
            self.flush_name();
            self.finish();
            return;
        };
        if first == b'\t' {
            self.tab_line(&line[1..]);
            return;
        }
        self.flush_name();
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
        if self.name_pending {
            let cur = self.cur.as_ref().expect("a pending name has a goroutine");
            if cur.expect_created_file.is_none() && !cur.in_ancestor {
                self.frame_line(rest);
                return;
            }
            self.flush_name();
        }
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
        // A function line interned earlier (an elision marker came in between): no cache.
        let (file, line) = split_file_line(rest);
        let file = self.snap.tables.intern_bytes(file);
        let id = self.snap.tables.intern_frame(Frame {
            function: func,
            file,
            line,
        });
        push_frame(cur, id);
    }

    /// Hot path: the file line right after a function line. One cache lookup keyed by the raw
    /// function name and `file:line` text; only new frames are interned.
    fn frame_line(&mut self, rest: &[u8]) {
        if rest.starts_with(b"goroutine running on other thread") {
            // Not a file line after all.
            self.flush_name();
            let cur = self.cur.as_mut().expect("present");
            cur.g.stack_unavailable = true;
            return;
        }
        let loc = &rest[..loc_end(rest)];
        self.name_pending = false;
        let name_len = self.key.len();
        self.key.extend_from_slice(loc);
        let id = match self.frame_cache.get(self.key.as_slice()) {
            Some(&id) => id,
            None => {
                let name = &self.key[4..name_len];
                let function = self.snap.tables.intern_bytes(name);
                let (file, line) = split_loc(loc);
                let file = self.snap.tables.intern_bytes(file);
                let id = self.snap.tables.intern_frame(Frame {
                    function,
                    file,
                    line,
                });
                self.frame_cache.insert(self.key.as_slice().into(), id);
                id
            }
        };
        let cur = self.cur.as_mut().expect("present");
        cur.func = None;
        push_frame(cur, id);
    }

    /// Interns the function name of the last function line, if it is still pending.
    #[inline]
    fn flush_name(&mut self) {
        if self.name_pending {
            self.name_pending = false;
            let func = self.snap.tables.intern_bytes(&self.key[4..]);
            if let Some(cur) = self.cur.as_mut() {
                cur.func = Some(func);
            }
        }
    }

    /// A non-tab line inside a goroutine: a function line, `created by`, elision or ancestry marker.
    /// Returns false when the line is not part of a goroutine.
    fn body_line(&mut self, line: &[u8]) -> bool {
        let cur = self.cur.as_mut().expect("checked by caller");
        if let Some(rest) = line.strip_prefix(b"created by ") {
            let (func, creator) = match self.in_goroutine.rfind(rest) {
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
            // The object the goroutine waits on, where the runtime function's first argument
            // is it (printed exactly: no trailing `?`).
            if cur.g.waiting_on.is_none() && gostall_goruntime::waits_on_first_arg(func) {
                cur.g.waiting_on = first_hex_arg(&line[func.len()..]);
            }
            // Interned at its file line (or by the next line of any other kind).
            self.key.clear();
            self.key
                .extend_from_slice(&(func.len() as u32).to_le_bytes());
            self.key.extend_from_slice(func);
            self.name_pending = true;
            cur.func = None;
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
        let mut g = Goroutine::new(id, 1, StackId(0), self.source);
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
        let (st, raw) = match self.status_cache.get(status) {
            Some(&hit) => hit,
            None => {
                let status_str = String::from_utf8_lossy(status);
                let st = rt::parse_status(&status_str);
                let raw = self.snap.tables.intern(&status_str);
                self.status_cache.insert(status.into(), (st, raw));
                (st, raw)
            }
        };
        g.state = st.state;
        g.wait_reason = st.wait_reason;
        g.flags.durable = st.durable;
        g.raw_status = Some(raw);
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
        self.flush_name();
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
        // The refinement depends only on the stack and the printed status: once per distinct pair.
        let key = (cur.g.stack, cur.g.state, cur.g.wait_reason);
        let (state, reason) = match self.refine_cache.get(&key) {
            Some(&hit) => hit,
            None => {
                let r = refine(&self.snap.tables, &cur.frames, key.1, key.2);
                self.refine_cache.insert(key, r);
                r
            }
        };
        cur.g.state = state;
        cur.g.wait_reason = reason;
        self.snap.goroutines.push(cur.g);
        self.goroutines += 1;
        self.spare_frames = cur.frames;
    }

    fn finish_at_eof(&mut self) {
        self.flush_name();
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

/// Adds a frame to the goroutine being built, counting frames past [`MAX_FRAMES`] as elided.
#[inline]
fn push_frame(cur: &mut Pending, id: FrameId) {
    if cur.frames.len() < MAX_FRAMES {
        cur.frames.push(id);
    } else {
        cur.g.elided_frames = cur.g.elided_frames.saturating_add(1);
    }
}

/// State and wait reason of a goroutine given its stack and the state and reason its header printed.
fn refine(
    tables: &gostall_model::Tables,
    frames: &[FrameId],
    mut state: GoState,
    mut wait_reason: Option<WaitReason>,
) -> Refined {
    let funcs = frames.iter().map(|&f| tables.str(tables.frame(f).function));
    if let Some(reason) = wait_reason {
        wait_reason = Some(rt::refine_wait_reason(reason, funcs));
    } else if state == GoState::Unknown {
        if let Some((s, reason)) = rt::infer_from_stack(funcs) {
            state = s;
            wait_reason = reason;
        }
    }
    if state == GoState::Syscall
        && frames
            .iter()
            .any(|&f| rt::is_cgocall(tables.str(tables.frame(f).function)))
    {
        wait_reason = Some(WaitReason::Cgo);
    }
    (state, wait_reason)
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

/// The first argument of `(0xc000010018, 0x0, …)` when it is printed exactly (not `0x…?`).
fn first_hex_arg(args: &[u8]) -> Option<u64> {
    let a = args.strip_prefix(b"(0x")?;
    let end = a.iter().position(|b| !b.is_ascii_hexdigit())?;
    if !matches!(a.get(end), Some(b',' | b')')) || end == 0 || end > 16 {
        return None;
    }
    let mut v = 0u64;
    for &b in &a[..end] {
        v = v << 4 | u64::from((b as char).to_digit(16)?);
    }
    (v != 0).then_some(v)
}

/// The function name of a frame line `name(args)`: everything before the `(` that opens the final
/// parenthesised argument list. Rejects lines that do not have that shape.
fn function_name(line: &[u8]) -> Option<&[u8]> {
    let [body @ .., b')'] = line else {
        return None;
    };
    // Fast path: the argument list holds no parentheses (as Go prints it), so its `(` is the last
    // one on the line.
    let open = match last_open_paren(body) {
        Some(i) => i,
        None => return function_name_nested(line),
    };
    let name = &line[..open];
    valid_function_name(name).then_some(name)
}

/// The general form of [`function_name`]: matches parentheses from the end of the line.
fn function_name_nested(line: &[u8]) -> Option<&[u8]> {
    let mut depth = 0i32;
    for i in (0..line.len()).rev() {
        match line[i] {
            b')' => depth += 1,
            b'(' => {
                depth -= 1;
                if depth == 0 {
                    let name = &line[..i];
                    return valid_function_name(name).then_some(name);
                }
            }
            _ => {}
        }
    }
    None
}

/// A function name has no blank, and a `.` (or is the bare `panic`, or a cgo export wrapper such as
/// `_cgoexp_49d15d947803_goDeliver`, which Go prints without its package).
#[inline]
fn valid_function_name(name: &[u8]) -> bool {
    let (mut blank, mut dot) = (0u64, 0u64);
    let mut words = name.chunks_exact(8);
    for w in &mut words {
        let w = word(w);
        blank |= bytes_eq(w, b' ') | bytes_eq(w, b'\t');
        dot |= bytes_eq(w, b'.');
    }
    for &b in words.remainder() {
        blank |= u64::from(b == b' ' || b == b'\t');
        dot |= u64::from(b == b'.');
    }
    blank == 0
        && !name.is_empty()
        && (dot != 0 || name == b"panic" || name.starts_with(b"_cgoexp_"))
}

/// The index of the last `(` in `s` when no `)` follows it; `None` when a `)` comes first or there
/// is no `(`.
#[inline]
fn last_open_paren(s: &[u8]) -> Option<usize> {
    let mut end = s.len();
    while end >= 8 {
        let w = word(&s[end - 8..end]);
        let m = bytes_eq(w, b'(') | bytes_eq(w, b')');
        if m != 0 {
            let i = end - 8 + (63 - m.leading_zeros() as usize) / 8;
            return (s[i] == b'(').then_some(i);
        }
        end -= 8;
    }
    for i in (0..end).rev() {
        match s[i] {
            b'(' => return Some(i),
            b')' => return None,
            _ => {}
        }
    }
    None
}

/// Eight bytes as a little-endian word (byte `i` of the slice is byte `i` of the word).
#[inline]
fn word(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("eight bytes"))
}

/// `0x80` in every byte of `w` that equals `b`, `0` in the others (exact: no carries across bytes).
#[inline]
fn bytes_eq(w: u64, b: u8) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = w ^ (ONES * u64::from(b));
    !((x & LOW7).wrapping_add(LOW7) | x | LOW7)
}

/// Splits `path/to/file.go:123 +0x1f fp=… sp=… pc=…` into the path and line.
fn split_file_line(rest: &[u8]) -> (&[u8], u32) {
    split_loc(&rest[..loc_end(rest)])
}

/// Where the location of a file line ends: at the first ` +0x` (offset), else at the first ` fp=`,
/// else at the end of the line.
#[inline]
fn loc_end(rest: &[u8]) -> usize {
    match memchr::memchr(b' ', rest) {
        // The common case: the first blank starts the offset.
        Some(i) if rest[i + 1..].starts_with(b"+0x") => i,
        Some(_) => memchr::memmem::find(rest, b" +0x")
            .or_else(|| memchr::memmem::find(rest, b" fp="))
            .unwrap_or(rest.len()),
        None => rest.len(),
    }
}

/// Splits a location `path/to/file.go:123` into the path and line.
fn split_loc(loc: &[u8]) -> (&[u8], u32) {
    let loc = trim(loc);
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

/// The fast paths against the plain definitions they replace, and input spread over many blocks.
#[cfg(test)]
mod fast_path_tests {
    use super::*;
    use proptest::prelude::*;

    /// `function_name` as first written: parenthesis matching from the end, byte by byte.
    fn function_name_reference(line: &[u8]) -> Option<&[u8]> {
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
                            || !(name.contains(&b'.')
                                || name == b"panic"
                                || name.starts_with(b"_cgoexp_"))
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

    /// `loc_end` as first written: the first ` +0x`, else the first ` fp=`, else the end.
    fn loc_end_reference(rest: &[u8]) -> usize {
        memchr::memmem::find(rest, b" +0x")
            .or_else(|| memchr::memmem::find(rest, b" fp="))
            .unwrap_or(rest.len())
    }

    proptest! {
        #[test]
        fn function_name_matches_reference(line in "[a.( )\t\\[\\]{}*px0,?]{0,40}") {
            let line = line.as_bytes();
            prop_assert_eq!(function_name(line), function_name_reference(line));
        }

        #[test]
        fn loc_end_matches_reference(rest in "[ +0xfp=a:1]{0,40}") {
            let rest = rest.as_bytes();
            prop_assert_eq!(loc_end(rest), loc_end_reference(rest));
        }
    }

    #[test]
    fn function_names_of_real_frames() {
        for (line, name) in [
            (&b"main.main()"[..], Some(&b"main.main"[..])),
            (
                b"main.(*T).Run(0xc000010000, {0x4a1b2c, 0x3})",
                Some(b"main.(*T).Run"),
            ),
            (b"example.com/x.F[...](...)", Some(b"example.com/x.F[...]")),
            (b"panic({0x48a0e0?, 0x4d1f10?})", Some(b"panic")),
            (b"main.f(g(1))", Some(b"main.f")),
            (
                b"_cgoexp_49d15d947803_goDeliver(0x725490?)",
                Some(b"_cgoexp_49d15d947803_goDeliver"),
            ),
            (b"not a frame (x)", None),
            (b"created by main.main in goroutine 1", None),
        ] {
            assert_eq!(
                function_name(line),
                name,
                "{}",
                String::from_utf8_lossy(line)
            );
            assert_eq!(function_name(line), function_name_reference(line));
        }
    }

    #[test]
    fn bytes_eq_is_exact() {
        for b in 0..=255u8 {
            for other in [0u8, 1, 0x7f, 0x80, 0x81, 0xff, b.wrapping_add(1), b ^ 0x80] {
                for pos in 0..8 {
                    let mut bytes = [other; 8];
                    bytes[pos] = b;
                    let m = bytes_eq(u64::from_le_bytes(bytes), b);
                    let want: u64 = (0..8)
                        .filter(|&i| bytes[i] == b)
                        .map(|i| 0x80u64 << (8 * i))
                        .sum();
                    assert_eq!(m, want, "byte {b:#x} among {other:#x} at {pos}");
                }
            }
        }
    }

    /// Many blocks (parsed on a second thread, or in turn with reading when no thread can be had),
    /// goroutines cut across block boundaries, and a long line in the middle: every goroutine is
    /// read in order, and the skip is noted once, at its line.
    #[test]
    fn input_of_many_blocks() {
        for thread in [true, false] {
            many_blocks(thread);
        }
    }

    fn many_blocks(thread: bool) {
        let goroutine = |id: u64| {
            format!(
                "goroutine {id} gp=0xc000102000 m=nil [chan receive, 3 minutes]:\n\
                 runtime.gopark(0x0?, 0x0?, 0x0?, 0x0?, 0x0?)\n\
                 \t/usr/local/go/src/runtime/proc.go:474 +0xca fp=0xc0001 sp=0xc0002 pc=0x4793ea\n\
                 main.worker({id:#x}, 0x2)\n\
                 \t/app/main.go:{} +0x1f fp=0xc0003 sp=0xc0004 pc=0x49ad01\n\
                 created by main.main in goroutine 1\n\
                 \t/app/main.go:30 +0x45\n\n",
                10 + id % 7
            )
        };
        let mut text = String::from("SIGQUIT: quit\n\n");
        let mut lines = 2u64;
        let mut id = 0;
        while text.len() < 3 * BLOCK + BLOCK / 3 {
            id += 1;
            text.push_str(&goroutine(id));
            lines += 8;
        }
        let long_at = lines + 1;
        // Longer than a block, so it is skipped wherever it starts.
        text.push_str(&"x".repeat(BLOCK + 100));
        text.push('\n');
        lines += 1;
        let first_after = id + 1;
        while text.len() < 5 * BLOCK {
            id += 1;
            text.push_str(&goroutine(id));
            lines += 8;
        }
        let mut snap = crate::new_snapshot();
        snap.sources.push(gostall_model::SourceInfo {
            name: "many".into(),
            kind: gostall_model::SourceKind::GoroutineDump,
            goroutines: 0,
            skipped: Vec::new(),
            skipped_more: 0,
        });
        let stats = parse_with("many", text.as_bytes(), 0, &mut snap, thread).expect("parses");
        assert_eq!(stats.bytes, text.len() as u64);
        assert_eq!(stats.goroutines as u64, id);
        assert_eq!(stats.lines, lines);
        let ids: Vec<u64> = snap.goroutines.iter().map(|g| g.id).collect();
        assert_eq!(ids, (1..=id).collect::<Vec<_>>());
        let g = &snap.goroutines[(first_after - 1) as usize];
        let frames: Vec<_> = snap.frames(g).map(|f| (f.function, f.line)).collect();
        assert_eq!(
            frames,
            [
                ("runtime.gopark", 474),
                ("main.worker", 10 + (first_after % 7) as u32)
            ]
        );
        assert_eq!(g.wait_minutes, Some(3));
        assert!(g.created_by.is_some());
        assert_eq!(
            snap.tables.sizes().2,
            1 + 7,
            "one stack per line number, plus the empty one"
        );
        assert_eq!(snap.process.signal.as_deref(), Some("SIGQUIT: quit"));
        assert_eq!(
            snap.sources[0].skipped,
            [format!(
                "line {long_at}: longer than {MAX_LINE} bytes, skipped"
            )]
        );
        assert_eq!(snap.sources[0].goroutines as u64, id);
    }
}
