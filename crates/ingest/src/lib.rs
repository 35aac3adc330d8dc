//! Sources that read what Go already emits: text goroutine dumps (SIGQUIT/crash output, panics,
//! `runtime.Stack`, `debug=2`), the counted `debug=1` form, and pprof protobuf profiles.
//!
//! Inputs are recognised by content, never by name. Every input adds to one [`Snapshot`], so a dump
//! and the mutex and threadcreate profiles of the same process combine into one diagnosis. Nothing
//! here panics on bad input: it returns an [`IngestError`] or records what it skipped on the input's
//! [`SourceInfo`].
#![deny(missing_docs)]

mod debug1;
pub mod dump;
mod error;
pub mod pprof;

pub use error::IngestError;

use gostall_model::{Snapshot, SourceInfo, SourceKind, Tables};
use std::io::Read;
use std::path::Path;

/// How many skipped-part notes are kept per input; the rest are counted.
pub const MAX_NOTES: usize = 20;

/// An empty snapshot ready to be filled.
pub fn new_snapshot() -> Snapshot {
    Snapshot {
        tables: Tables::new(),
        ..Snapshot::default()
    }
}

/// Reads a file (or standard input for `-`) into the snapshot and returns the detected kind.
pub fn ingest_path(path: &Path, snap: &mut Snapshot) -> Result<SourceKind, IngestError> {
    let name = path.display().to_string();
    if name == "-" {
        return ingest_reader(&name, std::io::stdin().lock(), snap);
    }
    let file = std::fs::File::open(path).map_err(|source| IngestError::Io {
        name: name.clone(),
        source,
    })?;
    ingest_reader(&name, file, snap)
}

/// Reads one input from a stream into the snapshot and returns the detected kind.
pub fn ingest_reader(
    name: &str,
    mut reader: impl Read,
    snap: &mut Snapshot,
) -> Result<SourceKind, IngestError> {
    let io = |source| IngestError::Io {
        name: name.to_string(),
        source,
    };
    // Peek enough to recognise the format.
    let mut head = Vec::with_capacity(64 * 1024);
    (&mut reader)
        .take(64 * 1024)
        .read_to_end(&mut head)
        .map_err(io)?;
    if head.is_empty() {
        return Err(IngestError::Empty {
            name: name.to_string(),
        });
    }
    if pprof::looks_like_profile(&head) {
        let mut all = head;
        (&mut reader)
            .take(pprof::MAX_PROFILE_BYTES + 1)
            .read_to_end(&mut all)
            .map_err(io)?;
        if all.len() as u64 > pprof::MAX_PROFILE_BYTES {
            return Err(IngestError::TooLarge {
                name: name.to_string(),
                what: "the profile".into(),
                limit: pprof::MAX_PROFILE_BYTES,
            });
        }
        let source = push_source(snap, name, SourceKind::PprofOther);
        let kind = pprof::ingest_profile(name, &all, source, snap)?;
        snap.sources[source as usize].kind = kind;
        return Ok(kind);
    }
    if debug1::looks_like_debug1(&head) {
        let source = push_source(snap, name, SourceKind::GoroutineDebug1);
        debug1::parse(name, head.as_slice().chain(reader), source, snap)?;
        return Ok(SourceKind::GoroutineDebug1);
    }
    if head.iter().take(4096).filter(|&&b| b == 0).count() > 0 && !dump::contains_header(&head) {
        return Err(IngestError::Unrecognized {
            name: name.to_string(),
            detail: "it is binary data".into(),
        });
    }
    let source = push_source(snap, name, SourceKind::GoroutineDump);
    let stats = dump::parse(name, head.as_slice().chain(reader), source, snap)?;
    if stats.goroutines == 0 {
        snap.sources.pop();
        return Err(IngestError::Unrecognized {
            name: name.to_string(),
            detail: format!(
                "no line of the form `goroutine N [status]:` in {} lines",
                stats.lines
            ),
        });
    }
    Ok(SourceKind::GoroutineDump)
}

fn push_source(snap: &mut Snapshot, name: &str, kind: SourceKind) -> u16 {
    snap.sources.push(SourceInfo {
        name: name.to_string(),
        kind,
        goroutines: 0,
        skipped: Vec::new(),
        skipped_more: 0,
    });
    (snap.sources.len() - 1) as u16
}

/// Records a skipped part on an input, keeping at most [`MAX_NOTES`] texts.
pub(crate) fn note_skipped(snap: &mut Snapshot, source: u16, text: impl FnOnce() -> String) {
    if let Some(s) = snap.sources.get_mut(source as usize) {
        if s.skipped.len() < MAX_NOTES {
            s.skipped.push(text());
        } else {
            s.skipped_more += 1;
        }
    }
}
