//! Format detection and every reader behind it (text dumps, `debug=1`, pprof) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut snap = gostall_ingest::new_snapshot();
    let _ = gostall_ingest::ingest_reader("fuzz", data, &mut snap);
});
