//! The pprof decoder on arbitrary bytes, gzipped or not, whether or not they look like a profile.
#![no_main]

use gostall_model::{SourceInfo, SourceKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gostall_ingest::pprof::looks_like_profile(data);
    let mut snap = gostall_ingest::new_snapshot();
    snap.sources.push(SourceInfo {
        name: "fuzz".into(),
        kind: SourceKind::PprofOther,
        goroutines: 0,
        skipped: Vec::new(),
        skipped_more: 0,
    });
    let _ = gostall_ingest::pprof::ingest_profile("fuzz", data, 0, &mut snap);
});
