//! pprof protobuf profiles: goroutine, mutex, block and threadcreate (gzipped or not).
//!
//! The schema is the upstream `profile.proto` (vendored in `proto/`, compiled by `build.rs`). The
//! decoder trusts nothing in the input: every string, location and function reference is checked, a
//! sample whose references do not resolve is skipped and noted on the input's [`SourceInfo`], and
//! decompression and stack expansion are bounded.
//!
//! What each profile contributes to the [`Snapshot`]:
//!
//! | profile | recognised by (sample types) | adds |
//! |---|---|---|
//! | goroutine | `goroutine/count` | one [`Goroutine`] per sample (id 0, `count` = value) |
//! | mutex | `contentions/count`, `delay/nanoseconds` | [`ContentionSample`]s, `mutex_delay_ns` |
//! | block | the same | [`ContentionSample`]s, `block_delay_ns` |
//! | threadcreate | `threadcreate/count` | `threads_created` |
//! | anything else | | nothing ([`SourceKind::PprofOther`]) |
//!
//! Across several inputs, `mutex_delay_ns`/`block_delay_ns` add up (each always equals the sum of the
//! [`ContentionSample`]s of its kind) and `threads_created` keeps the largest total (the count only
//! grows over a process's life). Goroutine states come from [`gostall_goruntime::infer_from_stack`]
//! (a pprof profile carries no status); a stack it cannot place is [`GoState::Unknown`].
//!
//! # Mutex or block?
//!
//! Go writes both with `printCountCycleProfile(w, "contentions", "delay", ...)` in
//! `runtime/pprof/pprof.go`: period type `contentions/count`, period 1, sample types
//! `contentions/count` and `delay/nanoseconds`. Nothing in the encoded profile differs, so the
//! stacks decide. The runtime records a mutex-profile event when the lock is *released*
//! (`semrelease1` → `mutexevent`, or `runtime.unlock` for runtime-internal locks), so every mutex
//! sample's innermost frames are an unlock (`sync.(*Mutex).Unlock`, `sync.(*RWMutex).RUnlock`,
//! `runtime.unlock`, `runtime._LostContendedRuntimeLock`, ...). A block-profile event is recorded
//! where a goroutine *waited* (`sync.(*Mutex).Lock`, `runtime.chanrecv1`, `runtime.selectgo`,
//! `sync.(*WaitGroup).Wait`, ...), never in an unlock. The rule, in order:
//!
//! 1. a hint from the caller ([`ingest_profile_with_hint`]) wins;
//! 2. otherwise each sample votes *mutex* when one of its 3 innermost frames is an unlock function
//!    and *block* otherwise; the majority wins;
//! 3. with no votes (no samples, or a tie) the input's file name decides when it contains `mutex`
//!    or `block` (as `/debug/pprof/mutex` downloads usually do);
//! 4. otherwise it is taken for a mutex profile.
//!
//! [`SourceInfo`]: gostall_model::SourceInfo

use crate::{note_skipped, IngestError};
use gostall_goruntime as rt;
use gostall_model::{
    ContentionKind, ContentionSample, FrameId, GoState, Goroutine, Snapshot, SourceKind, Sym,
};
use prost::Message;
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;

#[allow(missing_docs, clippy::all, clippy::pedantic, dead_code)]
mod proto {
    include!(concat!(env!("OUT_DIR"), "/perftools.profiles.rs"));
}

use proto::{Function, Location, Profile, Sample};

/// Largest profile (compressed or decompressed) gostall loads.
pub const MAX_PROFILE_BYTES: u64 = 1 << 30;

/// Longest stack kept for one sample; Go itself records at most 1024 frames (`profstackdepth`).
const MAX_STACK_FRAMES: usize = 4096;

/// Total frames the samples of one profile may expand to (bounds work on hostile input, where a
/// one-byte location reference can stand for thousands of inlined frames).
const MAX_TOTAL_FRAMES: usize = 1 << 26;

/// How many innermost frames of a contention sample are checked for an unlock function.
const UNLOCK_DEPTH: usize = 3;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Does this look like a pprof profile (gzip, or a protobuf that starts like `Profile`)?
///
/// An uncompressed head must parse as a sequence of `Profile` fields with the right wire types
/// (a field running past the end of `head` is accepted: `head` is only the start of the input) and
/// must not be mostly printable text, so text goroutine dumps are never taken for profiles.
pub fn looks_like_profile(head: &[u8]) -> bool {
    if head.starts_with(&GZIP_MAGIC) {
        return true;
    }
    if head.is_empty() || is_mostly_text(head) {
        return false;
    }
    let scan = scan_fields(head);
    scan.fields > 0
        && match scan.stop {
            Stop::End => true,
            Stop::Truncated { .. } => true,
            Stop::Invalid { .. } => false,
        }
}

/// Decodes a profile into the snapshot.
pub fn ingest_profile(
    name: &str,
    bytes: &[u8],
    source: u16,
    snap: &mut Snapshot,
) -> Result<SourceKind, IngestError> {
    ingest_profile_with_hint(name, bytes, source, snap, None)
}

/// Like [`ingest_profile`], for a caller that knows whether a contention profile came from the mutex
/// or the block profile (the encoded profiles are identical in form; see the module docs). The hint
/// is ignored for other profiles.
pub fn ingest_profile_with_hint(
    name: &str,
    bytes: &[u8],
    source: u16,
    snap: &mut Snapshot,
    hint: Option<ContentionKind>,
) -> Result<SourceKind, IngestError> {
    ingest_limited(name, bytes, source, snap, hint, MAX_PROFILE_BYTES)
}

fn bad(name: &str, offset: u64, detail: impl Into<String>) -> IngestError {
    IngestError::BadProfile {
        name: name.to_string(),
        offset,
        detail: detail.into(),
    }
}

fn ingest_limited(
    name: &str,
    bytes: &[u8],
    source: u16,
    snap: &mut Snapshot,
    hint: Option<ContentionKind>,
    limit: u64,
) -> Result<SourceKind, IngestError> {
    if bytes.is_empty() {
        return Err(IngestError::Empty {
            name: name.to_string(),
        });
    }
    let data = decompress(name, bytes, limit)?;
    let profile = decode(name, &data)?;
    drop(data);
    Ok(Ingest::new(name, &profile, source, snap).run(hint))
}

/// The protobuf bytes: `bytes` itself, or its gzip content bounded by `limit`.
fn decompress<'a>(name: &str, bytes: &'a [u8], limit: u64) -> Result<Cow<'a, [u8]>, IngestError> {
    let too_large = |what: &str| IngestError::TooLarge {
        name: name.to_string(),
        what: what.to_string(),
        limit,
    };
    if bytes.len() as u64 > limit {
        return Err(too_large("the profile"));
    }
    if !bytes.starts_with(&GZIP_MAGIC) {
        return Ok(Cow::Borrowed(bytes));
    }
    let mut out = Vec::new();
    let res = flate2::read::MultiGzDecoder::new(bytes)
        .take(limit.saturating_add(1))
        .read_to_end(&mut out);
    if let Err(e) = res {
        return Err(bad(
            name,
            out.len() as u64,
            format!("the gzip stream is corrupt or truncated ({e})"),
        ));
    }
    if out.len() as u64 > limit {
        return Err(too_large("the decompressed profile"));
    }
    if out.is_empty() {
        return Err(bad(name, 0, "the gzip stream decompresses to nothing"));
    }
    if is_mostly_text(&out) {
        return Err(IngestError::Unrecognized {
            name: name.to_string(),
            detail:
                "it is gzip-compressed text, not a protobuf profile; if it is a goroutine dump, \
                     decompress it first"
                    .into(),
        });
    }
    Ok(Cow::Owned(out))
}

fn decode(name: &str, data: &[u8]) -> Result<Profile, IngestError> {
    let profile = match Profile::decode(data) {
        Ok(p) => p,
        Err(e) => {
            let (offset, detail) = diagnose(data, &e);
            return Err(bad(name, offset, detail));
        }
    };
    match profile.string_table.first() {
        None => Err(bad(
            name,
            0,
            "it has no string table, so it is not a pprof Profile message",
        )),
        Some(s) if !s.is_empty() => Err(bad(
            name,
            0,
            "string_table[0] is not the empty string, so it is not a pprof Profile message",
        )),
        Some(_) => Ok(profile),
    }
}

/// Where and why a profile failed to decode: the top-level field that is broken, and prost's error.
fn diagnose(data: &[u8], err: &prost::DecodeError) -> (u64, String) {
    let scan = scan_fields(data);
    match scan.stop {
        Stop::Invalid { offset, reason } => (offset as u64, format!("{reason} ({err})")),
        Stop::Truncated { offset, field } => (
            offset as u64,
            format!(
                "field `{}` runs past the end of the data: the profile is truncated ({err})",
                field_name(field)
            ),
        ),
        Stop::End => {
            // Every top-level field is well-formed; find the one whose content does not decode.
            for f in &scan.messages {
                let body = &data[f.body.clone()];
                let r = match f.field {
                    1 | 11 => proto::ValueType::decode(body).map(drop),
                    2 => Sample::decode(body).map(drop),
                    3 => proto::Mapping::decode(body).map(drop),
                    4 => Location::decode(body).map(drop),
                    5 => Function::decode(body).map(drop),
                    6 => std::str::from_utf8(body).map(drop).map_err(|_| {
                        prost::DecodeError::new("a string_table entry is not valid UTF-8")
                    }),
                    _ => Ok(()),
                };
                if let Err(e) = r {
                    return (
                        f.start as u64,
                        format!("field `{}` does not decode: {e}", field_name(f.field)),
                    );
                }
            }
            (0, err.to_string())
        }
    }
}

fn field_name(field: u64) -> &'static str {
    match field {
        1 => "sample_type",
        2 => "sample",
        3 => "mapping",
        4 => "location",
        5 => "function",
        6 => "string_table",
        7 => "drop_frames",
        8 => "keep_frames",
        9 => "time_nanos",
        10 => "duration_nanos",
        11 => "period_type",
        12 => "period",
        13 => "comment",
        14 => "default_sample_type",
        _ => "unknown",
    }
}

/// Text (printable ASCII, whitespace, or UTF-8 continuation-ish high bytes) making up at least 90%
/// of the first 4 KiB.
fn is_mostly_text(buf: &[u8]) -> bool {
    let head = &buf[..buf.len().min(4096)];
    if head.is_empty() {
        return false;
    }
    let text = head
        .iter()
        .filter(|&&b| matches!(b, b'\t' | b'\n' | b'\r' | 0x20..=0x7e))
        .count();
    text * 10 >= head.len() * 9
}

/// How a scan of top-level `Profile` fields ended.
#[derive(Debug)]
enum Stop {
    /// All bytes consumed.
    End,
    /// A field's declared length (or varint) runs past the end of the buffer.
    Truncated { offset: usize, field: u64 },
    /// Something that cannot be a `Profile` field.
    Invalid { offset: usize, reason: String },
}

#[derive(Debug)]
struct LenField {
    field: u64,
    start: usize,
    body: std::ops::Range<usize>,
}

#[derive(Debug)]
struct Scan {
    fields: usize,
    messages: Vec<LenField>,
    stop: Stop,
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let b = *buf.get(*pos + i)?;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            *pos += i + 1;
            return Some(v);
        }
    }
    None
}

/// Walks the top-level fields of a serialized `Profile`, checking field numbers and wire types.
fn scan_fields(buf: &[u8]) -> Scan {
    let mut pos = 0;
    let mut fields = 0;
    let mut messages = Vec::new();
    let stop = loop {
        if pos >= buf.len() {
            break Stop::End;
        }
        let start = pos;
        let Some(tag) = read_varint(buf, &mut pos) else {
            break if buf.len() - start < 10 {
                Stop::Truncated {
                    offset: start,
                    field: 0,
                }
            } else {
                Stop::Invalid {
                    offset: start,
                    reason: "invalid field tag".into(),
                }
            };
        };
        let (field, wire) = (tag >> 3, tag & 7);
        let len_ok = matches!(field, 1..=6 | 11 | 13);
        let varint_ok = matches!(field, 7..=10 | 12..=14);
        let ok = match wire {
            0 => varint_ok,
            2 => len_ok,
            _ => false,
        };
        if !ok {
            break Stop::Invalid {
                offset: start,
                reason: if (1..=14).contains(&field) {
                    format!(
                        "field `{}` has wire type {wire}, which it cannot have",
                        field_name(field)
                    )
                } else {
                    format!("field number {field} (wire type {wire}) is not a Profile field")
                },
            };
        }
        if wire == 0 {
            if read_varint(buf, &mut pos).is_none() {
                break if buf.len() - pos < 10 {
                    Stop::Truncated {
                        offset: start,
                        field,
                    }
                } else {
                    Stop::Invalid {
                        offset: start,
                        reason: format!("field `{}` has an invalid varint", field_name(field)),
                    }
                };
            }
        } else {
            let Some(len) = read_varint(buf, &mut pos) else {
                break Stop::Truncated {
                    offset: start,
                    field,
                };
            };
            let remaining = (buf.len() - pos) as u64;
            if len > remaining {
                break Stop::Truncated {
                    offset: start,
                    field,
                };
            }
            let end = pos + len as usize;
            messages.push(LenField {
                field,
                start,
                body: pos..end,
            });
            pos = end;
        }
        fields += 1;
    };
    Scan {
        fields,
        messages,
        stop,
    }
}

/// `mutex` or `block` in the input's base name.
fn kind_from_name(name: &str) -> Option<ContentionKind> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let base = base.to_ascii_lowercase();
    match (base.contains("mutex"), base.contains("block")) {
        (true, false) => Some(ContentionKind::Mutex),
        (false, true) => Some(ContentionKind::Block),
        _ => None,
    }
}

/// A location's frames (`start`, `len` into [`Ingest::frames`]), or why they cannot be resolved.
type Resolved = Result<(u32, u32), String>;

/// One profile being added to the snapshot.
struct Ingest<'a> {
    name: &'a str,
    p: &'a Profile,
    source: u16,
    snap: &'a mut Snapshot,
    locations: HashMap<u64, usize>,
    functions: HashMap<u64, usize>,
    resolved: Vec<Option<Resolved>>,
    /// Flat storage for resolved locations' frames.
    frames: Vec<FrameId>,
    /// Frames expanded so far over all samples.
    budget_used: usize,
}

/// A sample's stack, innermost first.
struct Stack {
    frames: Vec<FrameId>,
    /// Frames dropped beyond [`MAX_STACK_FRAMES`].
    elided: usize,
}

impl<'a> Ingest<'a> {
    fn new(name: &'a str, p: &'a Profile, source: u16, snap: &'a mut Snapshot) -> Self {
        let mut locations = HashMap::with_capacity(p.location.len());
        for (i, l) in p.location.iter().enumerate() {
            locations.entry(l.id).or_insert(i);
        }
        let mut functions = HashMap::with_capacity(p.function.len());
        for (i, f) in p.function.iter().enumerate() {
            functions.entry(f.id).or_insert(i);
        }
        Ingest {
            name,
            p,
            source,
            snap,
            locations,
            functions,
            resolved: vec![None; p.location.len()],
            frames: Vec::new(),
            budget_used: 0,
        }
    }

    fn string(&self, idx: i64) -> Option<&'a str> {
        let p: &'a Profile = self.p;
        usize::try_from(idx)
            .ok()
            .and_then(|i| p.string_table.get(i))
            .map(String::as_str)
    }

    /// `(type, unit)` of each sample value; unresolvable indexes read as `""`.
    fn sample_types(&self) -> Vec<(&'a str, &'a str)> {
        self.p
            .sample_type
            .iter()
            .map(|vt| {
                (
                    self.string(vt.r#type).unwrap_or(""),
                    self.string(vt.unit).unwrap_or(""),
                )
            })
            .collect()
    }

    fn note(&mut self, text: impl FnOnce() -> String) {
        note_skipped(self.snap, self.source, text);
    }

    fn run(mut self, hint: Option<ContentionKind>) -> SourceKind {
        let types = self.sample_types();
        let index_of = |t: &str, u: &str| types.iter().position(|&(a, b)| a == t && b == u);
        if let Some(i) = index_of("goroutine", "count") {
            self.goroutines(i);
            SourceKind::PprofGoroutine
        } else if let (Some(c), Some(d)) = (
            index_of("contentions", "count"),
            index_of("delay", "nanoseconds"),
        ) {
            match self.contention(c, d, hint) {
                ContentionKind::Mutex => SourceKind::PprofMutex,
                ContentionKind::Block => SourceKind::PprofBlock,
            }
        } else if let Some(i) = index_of("threadcreate", "count") {
            self.threadcreate(i);
            SourceKind::PprofThreadcreate
        } else {
            SourceKind::PprofOther
        }
    }

    /// The value at `index` of a sample, or a note and `None` when the sample has too few values.
    fn value(&mut self, n: usize, s: &Sample, index: usize) -> Option<i64> {
        match s.value.get(index) {
            Some(&v) => Some(v),
            None => {
                let (have, want) = (s.value.len(), self.p.sample_type.len());
                self.note(|| {
                    format!("sample {n}: {have} values where the profile declares {want}, skipped")
                });
                None
            }
        }
    }

    fn goroutines(&mut self, index: usize) {
        let p = self.p;
        let mut added = 0usize;
        for (n, s) in p.sample.iter().enumerate() {
            let Some(v) = self.value(n, s, index) else {
                continue;
            };
            if v <= 0 {
                self.note(|| format!("sample {n}: goroutine count {v}, skipped"));
                continue;
            }
            let count = u32::try_from(v).unwrap_or(u32::MAX);
            let labels = match self.labels(n, s) {
                Some(l) => l,
                None => continue,
            };
            let stack = match self.stack(n, s) {
                Ok(st) => st,
                Err(Over) => {
                    self.over_budget(n);
                    break;
                }
            };
            let Some(stack) = stack else { continue };
            let id = self.snap.tables.intern_stack(&stack.frames);
            let (state, wait_reason) =
                rt::infer_from_stack(self.snap.tables.stack_frames(id).map(|f| f.function))
                    .unwrap_or((GoState::Unknown, None));
            self.snap.goroutines.push(Goroutine {
                state,
                wait_reason,
                elided_frames: u32::try_from(stack.elided).unwrap_or(u32::MAX),
                labels,
                ..Goroutine::new(0, count, id, self.source)
            });
            added += 1;
        }
        if let Some(src) = self.snap.sources.get_mut(self.source as usize) {
            src.goroutines = added;
        }
    }

    fn contention(&mut self, ci: usize, di: usize, hint: Option<ContentionKind>) -> ContentionKind {
        let p = self.p;
        let mut samples = Vec::with_capacity(p.sample.len());
        let (mut mutex_votes, mut block_votes) = (0usize, 0usize);
        for (n, s) in p.sample.iter().enumerate() {
            let (Some(count), Some(delay)) = (self.value(n, s, ci), self.value(n, s, di)) else {
                continue;
            };
            let stack = match self.stack(n, s) {
                Ok(st) => st,
                Err(Over) => {
                    self.over_budget(n);
                    break;
                }
            };
            let Some(stack) = stack else { continue };
            if !stack.frames.is_empty() {
                let tables = &self.snap.tables;
                let unlock =
                    stack.frames.iter().take(UNLOCK_DEPTH).any(|&f| {
                        gostall_goruntime::is_unlock_function(tables.frame_ref(f).function)
                    });
                if unlock {
                    mutex_votes += 1;
                } else {
                    block_votes += 1;
                }
            }
            let id = self.snap.tables.intern_stack(&stack.frames);
            samples.push((id, count.max(0) as u64, delay.max(0) as u64));
        }
        let kind = hint.unwrap_or_else(|| {
            if mutex_votes > block_votes {
                ContentionKind::Mutex
            } else if block_votes > mutex_votes {
                ContentionKind::Block
            } else {
                kind_from_name(self.name).unwrap_or(ContentionKind::Mutex)
            }
        });
        let mut total = 0u64;
        for (stack, count, delay_ns) in samples {
            total = total.saturating_add(delay_ns);
            self.snap.contention.push(ContentionSample {
                kind,
                stack,
                count,
                delay_ns,
            });
        }
        let facts = &mut self.snap.process;
        let slot = match kind {
            ContentionKind::Mutex => &mut facts.mutex_delay_ns,
            ContentionKind::Block => &mut facts.block_delay_ns,
        };
        *slot = Some(slot.unwrap_or(0).saturating_add(total));
        kind
    }

    fn threadcreate(&mut self, index: usize) {
        let p = self.p;
        let mut total = 0u64;
        for (n, s) in p.sample.iter().enumerate() {
            if let Some(v) = self.value(n, s, index) {
                total = total.saturating_add(v.max(0) as u64);
            }
        }
        let slot = &mut self.snap.process.threads_created;
        *slot = Some(slot.map_or(total, |t| t.max(total)));
    }

    fn over_budget(&mut self, n: usize) {
        let rest = self.p.sample.len() - n;
        self.note(|| {
            format!(
                "samples {n}..: {rest} samples skipped, the profile expands to more than \
                 {MAX_TOTAL_FRAMES} frames"
            )
        });
    }

    /// String labels of a sample (numeric labels are ignored); `None` (after a note) when a label
    /// references a string that does not exist.
    fn labels(&mut self, n: usize, s: &Sample) -> Option<Vec<(Sym, Sym)>> {
        let mut out = Vec::new();
        for l in &s.label {
            if l.num != 0 || l.num_unit != 0 {
                continue;
            }
            match (self.string(l.key), self.string(l.str)) {
                (Some(k), Some(v)) => {
                    let k = self.snap.tables.intern(k);
                    let v = self.snap.tables.intern(v);
                    out.push((k, v));
                }
                _ => {
                    let (k, v) = (l.key, l.str);
                    self.note(|| {
                        format!("sample {n}: label references string {k} or {v}, which does not exist; skipped")
                    });
                    return None;
                }
            }
        }
        Some(out)
    }

    /// A sample's stack, innermost first; `Ok(None)` (after a note) when a reference is missing,
    /// `Err(Over)` when the frame budget is exhausted.
    fn stack(&mut self, n: usize, s: &Sample) -> Result<Option<Stack>, Over> {
        let mut frames = Vec::new();
        let mut elided = 0usize;
        for &loc in &s.location_id {
            let Some(&li) = self.locations.get(&loc) else {
                self.note(|| format!("sample {n}: location id {loc} does not exist; skipped"));
                return Ok(None);
            };
            let (start, len) = match self.location(li) {
                Ok((start, len)) => (start as usize, len as usize),
                Err(why) => {
                    self.note(|| format!("sample {n}: location id {loc}: {why}; skipped"));
                    return Ok(None);
                }
            };
            self.budget_used = self.budget_used.saturating_add(len.max(1));
            if self.budget_used > MAX_TOTAL_FRAMES {
                return Err(Over);
            }
            let room = MAX_STACK_FRAMES - frames.len();
            let take = len.min(room);
            frames.extend_from_slice(&self.frames[start..start + take]);
            elided += len - take;
        }
        Ok(Some(Stack { frames, elided }))
    }

    /// Resolves (once) the frames of `self.p.location[li]`: its `line` entries, innermost first, or
    /// its address when it has no line information.
    fn location(&mut self, li: usize) -> Resolved {
        match self.resolved.get(li) {
            Some(Some(r)) => return r.clone(),
            Some(None) => {}
            None => return Err("internal index out of range".into()),
        }
        let p: &'a Profile = self.p;
        let loc: &Location = &p.location[li];
        let start = self.frames.len();
        let r = if loc.line.is_empty() {
            let f = self
                .snap
                .tables
                .frame_from(&format!("{:#x}", loc.address), "", 0);
            self.frames.push(f);
            Ok((start as u32, 1))
        } else {
            let mut missing = None;
            for line in loc.line.iter().take(MAX_STACK_FRAMES) {
                let Some(&fi) = self.functions.get(&line.function_id) else {
                    missing = Some(format!("function id {} does not exist", line.function_id));
                    break;
                };
                let f: &Function = &p.function[fi];
                let name = match self.string(f.name) {
                    Some("") => self.string(f.system_name),
                    other => other,
                };
                let (Some(function), Some(file)) = (name, self.string(f.filename)) else {
                    missing = Some(format!(
                        "function id {} references a string that does not exist",
                        f.id
                    ));
                    break;
                };
                let line_no = u32::try_from(line.line.max(0)).unwrap_or(u32::MAX);
                let id = self.snap.tables.frame_from(function, file, line_no);
                self.frames.push(id);
            }
            match missing {
                Some(why) => {
                    self.frames.truncate(start);
                    Err(why)
                }
                None => Ok((start as u32, (self.frames.len() - start) as u32)),
            }
        };
        if let Some(slot) = self.resolved.get_mut(li) {
            *slot = Some(r.clone());
        }
        r
    }
}

/// The frame budget of a profile is exhausted.
struct Over;

#[cfg(test)]
mod tests {
    use super::proto::{Label, Line, ValueType};
    use super::*;
    use gostall_model::{SourceInfo, WaitReason};
    use std::io::Write;

    macro_rules! testdata {
        ($f:literal) => {
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/pprof/", $f)).as_slice()
        };
    }
    const GOROUTINE: &[u8] = testdata!("goroutine.pb.gz");
    const MUTEX: &[u8] = testdata!("mutex.pb.gz");
    const BLOCK: &[u8] = testdata!("block.pb.gz");
    const THREADCREATE: &[u8] = testdata!("threadcreate.pb.gz");
    const HEAP: &[u8] = testdata!("heap.pb.gz");

    fn snapshot() -> (Snapshot, u16) {
        let mut snap = crate::new_snapshot();
        snap.sources.push(SourceInfo {
            name: "test".into(),
            kind: SourceKind::PprofOther,
            goroutines: 0,
            skipped: Vec::new(),
            skipped_more: 0,
        });
        (snap, 0)
    }

    fn ingest(name: &str, bytes: &[u8]) -> (Result<SourceKind, IngestError>, Snapshot) {
        let (mut snap, source) = snapshot();
        let r = ingest_profile(name, bytes, source, &mut snap);
        (r, snap)
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn functions(snap: &Snapshot, stack: gostall_model::StackId) -> Vec<String> {
        snap.tables
            .stack_frames(stack)
            .map(|f| f.function.to_string())
            .collect()
    }

    fn labels(snap: &Snapshot, g: &Goroutine) -> Vec<(String, String)> {
        g.labels
            .iter()
            .map(|&(k, v)| (snap.tables.str(k).into(), snap.tables.str(v).into()))
            .collect()
    }

    fn check_goroutine_profile(snap: &Snapshot) {
        assert_eq!(snap.sources[0].goroutines, snap.goroutines.len());
        assert!(snap.goroutines.iter().all(|g| g.id == 0 && g.source == 0));
        // 5 labelled goroutines in main.blockedForever, 1 in main.waitForever, main itself.
        assert!(snap.total_goroutines() >= 7, "{}", snap.total_goroutines());
        let stuck: Vec<_> = snap
            .goroutines
            .iter()
            .filter(|g| {
                functions(snap, g.stack)
                    .iter()
                    .any(|f| f == "main.blockedForever")
            })
            .collect();
        assert_eq!(stuck.len(), 1);
        let g = stuck[0];
        assert_eq!(g.count, 5);
        assert_eq!(labels(snap, g), [("worker".into(), "stuck".into())]);
        assert_eq!(g.state, GoState::Waiting);
        assert_eq!(g.wait_reason, Some(WaitReason::ChanReceive));
        let fs = functions(snap, g.stack);
        assert_eq!(fs[0], "runtime.gopark", "innermost frame first: {fs:?}");
        assert_eq!(fs.last().map(String::as_str), Some("runtime/pprof.Do"));
        let frame = snap
            .tables
            .stack_frames(g.stack)
            .find(|f| f.function == "main.blockedForever");
        let frame = frame.unwrap();
        assert!(frame.file.ends_with("main.go"), "{}", frame.file);
        assert!(frame.line > 0);

        let wg: Vec<_> = snap
            .goroutines
            .iter()
            .filter(|g| {
                functions(snap, g.stack)
                    .iter()
                    .any(|f| f == "main.waitForever")
            })
            .collect();
        assert_eq!(wg.len(), 1);
        assert_eq!(wg[0].count, 1);
        assert!(wg[0].labels.is_empty());
        assert_eq!(wg[0].wait_reason, Some(WaitReason::WaitGroupWait));
        // runtime.goparkunlock is inlined into runtime.semacquire1: line[] is innermost first.
        let fs = functions(snap, wg[0].stack);
        let i = fs.iter().position(|f| f == "runtime.goparkunlock").unwrap();
        assert_eq!(fs[i + 1], "runtime.semacquire1", "{fs:?}");
        let w = fs
            .iter()
            .position(|f| f == "sync.(*WaitGroup).Wait")
            .unwrap();
        assert!(w < fs.iter().position(|f| f == "main.waitForever").unwrap());
    }

    #[test]
    fn goroutine_profile() {
        let (r, snap) = ingest("goroutine.pb.gz", GOROUTINE);
        assert_eq!(r.unwrap(), SourceKind::PprofGoroutine);
        check_goroutine_profile(&snap);
        assert!(
            snap.sources[0].skipped.is_empty(),
            "{:?}",
            snap.sources[0].skipped
        );
        assert!(snap.contention.is_empty());
    }

    #[test]
    fn uncompressed_goroutine_profile() {
        let raw = gunzip(GOROUTINE);
        assert!(looks_like_profile(&raw));
        assert!(looks_like_profile(&raw[..raw.len().min(64)]));
        let (r, snap) = ingest("x", &raw);
        assert_eq!(r.unwrap(), SourceKind::PprofGoroutine);
        check_goroutine_profile(&snap);
    }

    fn check_contention(snap: &Snapshot, kind: ContentionKind, user_fn: &str) {
        assert!(!snap.contention.is_empty());
        assert!(snap.contention.iter().all(|c| c.kind == kind));
        assert!(snap.goroutines.is_empty());
        let total: u64 = snap.contention.iter().map(|c| c.delay_ns).sum();
        assert!(total > 0);
        let (this, other) = match kind {
            ContentionKind::Mutex => (snap.process.mutex_delay_ns, snap.process.block_delay_ns),
            ContentionKind::Block => (snap.process.block_delay_ns, snap.process.mutex_delay_ns),
        };
        assert_eq!(this, Some(total));
        assert_eq!(other, None);
        assert!(snap.contention.iter().all(|c| c.count > 0));
        assert!(snap
            .contention
            .iter()
            .any(|c| functions(snap, c.stack).iter().any(|f| f == user_fn)));
    }

    #[test]
    fn mutex_profile_told_by_its_stacks() {
        // A neutral name: the stacks alone must decide.
        let (r, snap) = ingest("profile", MUTEX);
        assert_eq!(r.unwrap(), SourceKind::PprofMutex);
        check_contention(&snap, ContentionKind::Mutex, "main.contend");
    }

    #[test]
    fn block_profile_told_by_its_stacks() {
        let (r, snap) = ingest("profile", BLOCK);
        assert_eq!(r.unwrap(), SourceKind::PprofBlock);
        check_contention(&snap, ContentionKind::Block, "main.waitOnChannel");
        // Stacks and names deliberately disagree: the stacks win.
        let (r, _) = ingest("mutex.pb.gz", BLOCK);
        assert_eq!(r.unwrap(), SourceKind::PprofBlock);
    }

    #[test]
    fn contention_hint_wins() {
        let (mut snap, source) = snapshot();
        let r =
            ingest_profile_with_hint("p", BLOCK, source, &mut snap, Some(ContentionKind::Mutex));
        assert_eq!(r.unwrap(), SourceKind::PprofMutex);
        assert!(snap.process.mutex_delay_ns.is_some());
    }

    #[test]
    fn threadcreate_profile() {
        let (r, snap) = ingest("threadcreate.pb.gz", THREADCREATE);
        assert_eq!(r.unwrap(), SourceKind::PprofThreadcreate);
        let n = snap.process.threads_created.unwrap();
        assert!((1..10_000).contains(&n), "{n}");
        assert!(snap.goroutines.is_empty() && snap.contention.is_empty());
    }

    #[test]
    fn other_profiles_are_accepted_and_unused() {
        let (r, snap) = ingest("heap.pb.gz", HEAP);
        assert_eq!(r.unwrap(), SourceKind::PprofOther);
        assert!(snap.goroutines.is_empty() && snap.contention.is_empty());
        assert_eq!(snap.sources[0].goroutines, 0);
    }

    #[test]
    fn through_ingest_reader() {
        let mut snap = crate::new_snapshot();
        for (name, bytes, kind) in [
            ("g", GOROUTINE, SourceKind::PprofGoroutine),
            ("m", MUTEX, SourceKind::PprofMutex),
            ("b", BLOCK, SourceKind::PprofBlock),
            ("t", THREADCREATE, SourceKind::PprofThreadcreate),
        ] {
            assert_eq!(crate::ingest_reader(name, bytes, &mut snap).unwrap(), kind);
        }
        assert_eq!(snap.sources.len(), 4);
        assert_eq!(snap.sources[1].kind, SourceKind::PprofMutex);
        assert_eq!(snap.sources[0].goroutines, snap.goroutines.len());
        assert!(snap.process.threads_created.is_some());
        assert!(snap.process.mutex_delay_ns.is_some() && snap.process.block_delay_ns.is_some());
    }

    #[test]
    fn text_is_never_a_profile() {
        let texts: &[&[u8]] = &[
            b"goroutine 1 [running]:\nmain.main()\n\t/x/main.go:5 +0x1d\n",
            b"\ngoroutine 1 [running]:\nmain.main()\n",
            b"\n\ngoroutine 1 [chan receive]:\n",
            b"panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n",
            b"2024/01/02 15:04:05 starting\nSIGQUIT: quit\nPC=0x0 m=0 sigcode=0\n\ngoroutine 0 [idle]:\n",
            b"goroutine profile: total 7\n5 @ 0x43d0e5 0x40731f\n#\t0x4a1c5d\tmain.worker+0x3d\t/a.go:10\n",
            b"*goroutine 1 [running]:\n",
            b"Z goroutine 1 [running]:\n",
            b"j\x10goroutine 1 [select]:\n",
            b"fatal error: all goroutines are asleep - deadlock!\n\ngoroutine 1 [chan receive]:\n",
            b"hello",
            b"",
        ];
        for t in texts {
            assert!(!looks_like_profile(t), "{:?}", String::from_utf8_lossy(t));
        }
        assert!(looks_like_profile(GOROUTINE));
        assert!(looks_like_profile(&GOROUTINE[..2]));
        for p in [MUTEX, BLOCK, THREADCREATE, HEAP] {
            assert!(looks_like_profile(&gunzip(p)));
        }
    }

    fn expect_bad((r, _): (Result<SourceKind, IngestError>, Snapshot)) -> String {
        match r {
            Err(e @ IngestError::BadProfile { .. }) => e.to_string(),
            other => panic!("expected BadProfile, got {other:?}"),
        }
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let (r, _) = ingest("e", b"");
        assert!(matches!(r, Err(IngestError::Empty { .. })), "{r:?}");

        // Gzip magic, then garbage.
        let msg = expect_bad(ingest("g", b"\x1f\x8bnot really gzip at all"));
        assert!(msg.contains("gzip"), "{msg}");

        // Truncated gzip.
        let msg = expect_bad(ingest("t", &GOROUTINE[..GOROUTINE.len() / 2]));
        assert!(msg.contains("truncated"), "{msg}");

        // Truncated protobuf, compressed or not.
        let raw = gunzip(GOROUTINE);
        let cut = &raw[..raw.len() * 2 / 3];
        let msg = expect_bad(ingest("p", cut));
        assert!(msg.contains("truncated"), "{msg}");
        expect_bad(ingest("p", &gzip(cut)));

        // Garbage bytes that look like nothing.
        expect_bad(ingest(
            "x",
            b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        ));
        expect_bad(ingest("x", &[0u8; 100]));
        expect_bad(ingest("x", &[0xffu8; 100]));

        // A valid protobuf that is not a Profile (no string table).
        let msg = expect_bad(ingest("x", &[0x48, 0x01]));
        assert!(msg.contains("string table"), "{msg}");

        // Gzipped text is reported as such.
        let (r, _) = ingest("d.gz", &gzip(b"goroutine 1 [running]:\nmain.main()\n"));
        assert!(matches!(r, Err(IngestError::Unrecognized { .. })), "{r:?}");

        // Empty gzip member.
        expect_bad(ingest("z", &gzip(b"")));
    }

    #[test]
    fn zero_stream_is_an_error() {
        // 64 MiB of zeros compresses to ~64 KiB: decoding stops at the first (invalid) tag 0.
        let zeros = gzip(&vec![0u8; 64 << 20]);
        assert!(zeros.len() < 1 << 20);
        expect_bad(ingest("zeros", &zeros));
        // Beyond the decompression limit it is refused before decoding.
        let (mut snap, source) = snapshot();
        let r = ingest_limited("zeros", &zeros, source, &mut snap, None, 1 << 20);
        assert!(
            matches!(&r, Err(IngestError::TooLarge { what, .. }) if what.contains("decompressed")),
            "{r:?}"
        );
        let r = ingest_limited("big", &[0x0a; 100], source, &mut snap, None, 10);
        assert!(matches!(r, Err(IngestError::TooLarge { .. })), "{r:?}");
    }

    fn vt(t: i64, u: i64) -> ValueType {
        ValueType { r#type: t, unit: u }
    }

    /// A goroutine profile with one good sample and several with broken references.
    fn hostile_profile() -> Profile {
        let strings = [
            "",
            "goroutine",
            "count",
            "main.ok",
            "/x/main.go",
            "k",
            "v",
            "runtime.gopark",
        ];
        let line = |function_id, line| Line {
            function_id,
            line,
            column: 0,
        };
        let loc = |id, line: Vec<Line>| Location {
            id,
            line,
            ..Location::default()
        };
        let sample = |location_id: Vec<u64>, value: Vec<i64>, label: Vec<Label>| Sample {
            location_id,
            value,
            label,
        };
        let func = |id, name, filename| Function {
            id,
            name,
            system_name: 0,
            filename,
            start_line: 0,
        };
        let label = |key, s| Label {
            key,
            str: s,
            num: 0,
            num_unit: 0,
        };
        Profile {
            sample_type: vec![vt(1, 2)],
            period_type: Some(vt(1, 2)),
            string_table: strings.iter().map(|s| s.to_string()).collect(),
            function: vec![func(1, 3, 4), func(2, 7, 4), func(3, 99, 4), func(4, 3, -1)],
            location: vec![
                loc(1, vec![line(2, 10), line(1, 20)]),
                loc(2, vec![line(9, 1)]),
                loc(3, vec![line(3, 1)]),
                loc(4, vec![line(4, 1)]),
                loc(5, vec![]),
                loc(6, vec![line(1, -5), line(1, i64::MAX)]),
            ],
            sample: vec![
                sample(vec![1], vec![3], vec![label(5, 6)]),
                sample(vec![42], vec![1], vec![]),
                sample(vec![2], vec![1], vec![]),
                sample(vec![3], vec![1], vec![]),
                sample(vec![4], vec![1], vec![]),
                sample(vec![1], vec![1], vec![label(5, 1000)]),
                sample(vec![1], vec![1], vec![label(-1, 6)]),
                sample(vec![1], vec![], vec![]),
                sample(vec![1], vec![0], vec![]),
                sample(vec![1], vec![i64::MAX], vec![]),
                sample(vec![5, 6, 1], vec![1], vec![]),
            ],
            ..Profile::default()
        }
    }

    #[test]
    fn broken_references_skip_samples() {
        let bytes = hostile_profile().encode_to_vec();
        let (r, snap) = ingest("hostile", &bytes);
        assert_eq!(r.unwrap(), SourceKind::PprofGoroutine);
        let skipped = &snap.sources[0].skipped;
        assert_eq!(snap.goroutines.len(), 3, "{skipped:?}");
        assert_eq!(skipped.len(), 8, "{skipped:?}");
        assert!(
            skipped.iter().any(|s| s.contains("location id 42")),
            "{skipped:?}"
        );
        assert!(
            skipped.iter().any(|s| s.contains("function id 9")),
            "{skipped:?}"
        );
        let g = &snap.goroutines[0];
        assert_eq!(g.count, 3);
        assert_eq!(functions(&snap, g.stack), ["runtime.gopark", "main.ok"]);
        assert_eq!(labels(&snap, g), [("k".into(), "v".into())]);
        assert_eq!(snap.goroutines[1].count, u32::MAX);
        let fs: Vec<_> = snap.tables.stack_frames(snap.goroutines[2].stack).collect();
        assert_eq!(fs[0].function, "0x0");
        assert_eq!((fs[1].line, fs[2].line), (0, u32::MAX));
        assert_eq!(fs.len(), 5);
        assert_eq!(snap.sources[0].goroutines, 3);
    }

    #[test]
    fn empty_contention_profile_uses_the_name() {
        let p = Profile {
            sample_type: vec![vt(1, 2), vt(3, 4)],
            period_type: Some(vt(1, 2)),
            string_table: ["", "contentions", "count", "delay", "nanoseconds"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            ..Profile::default()
        };
        let bytes = gzip(&p.encode_to_vec());
        for (name, kind) in [
            ("/tmp/block.pb.gz", SourceKind::PprofBlock),
            ("http://h/debug/pprof/mutex", SourceKind::PprofMutex),
            ("profile", SourceKind::PprofMutex),
        ] {
            let (r, snap) = ingest(name, &bytes);
            assert_eq!(r.unwrap(), kind, "{name}");
            assert!(snap.contention.is_empty());
        }
    }

    #[test]
    fn deep_inlining_is_bounded() {
        let mut p = hostile_profile();
        p.location = vec![Location {
            id: 1,
            line: vec![
                Line {
                    function_id: 1,
                    line: 1,
                    column: 0
                };
                MAX_STACK_FRAMES + 10
            ],
            ..Location::default()
        }];
        p.sample = vec![Sample {
            location_id: vec![1; 100],
            value: vec![1],
            label: vec![],
        }];
        let (r, snap) = ingest("deep", &p.encode_to_vec());
        assert_eq!(r.unwrap(), SourceKind::PprofGoroutine);
        let g = &snap.goroutines[0];
        assert_eq!(snap.tables.stack(g.stack).len(), MAX_STACK_FRAMES);
        assert_eq!(g.elided_frames as usize, 99 * MAX_STACK_FRAMES);
    }

    #[test]
    fn real_profiles_survive_mutation() {
        // Every single-byte change of a real profile decodes or fails cleanly.
        let raw = gunzip(MUTEX);
        for i in 0..raw.len() {
            for b in [0x00, 0x7f, 0x80, 0xff] {
                let mut m = raw.clone();
                m[i] = b;
                let _ = ingest("m", &m);
                let _ = looks_like_profile(&m);
            }
        }
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
                let _ = looks_like_profile(&bytes);
                let _ = ingest("r", &bytes);
                let _ = ingest("r", &gzip(&bytes));
            }

            #[test]
            fn random_tail_after_valid_prefix(cut in 0usize..4096, tail in proptest::collection::vec(any::<u8>(), 0..256)) {
                let mut raw = gunzip(GOROUTINE);
                raw.truncate(cut.min(raw.len()));
                raw.extend_from_slice(&tail);
                let _ = looks_like_profile(&raw);
                let _ = ingest("r", &raw);
            }

            #[test]
            fn printable_text_is_never_a_profile(text in "[ -~\t\n]{0,400}") {
                let t = format!("{text}\ngoroutine 1 [running]:\n{text}");
                prop_assert!(!looks_like_profile(t.as_bytes()));
            }
        }
    }
}
