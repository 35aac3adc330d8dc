//! `gostall demo`: diagnoses real artifacts recorded from the scenario corpus and embedded in the
//! binary, so the first run needs nothing but the repository. `scripts/record-demo.sh` re-records
//! them.

use crate::{emit, OutputArgs};
use anyhow::Result;
use std::process::ExitCode;

/// One embedded artifact.
struct Artifact {
    title: &'static str,
    name: &'static str,
    bytes: &'static [u8],
}

include!(concat!(env!("CARGO_MANIFEST_DIR"), "/demo/demo.rs"));

pub(crate) fn run(out: &OutputArgs) -> Result<ExitCode> {
    let mut worst = ExitCode::SUCCESS;
    for (i, a) in ARTIFACTS.iter().enumerate() {
        if matches!(out.format, crate::Format::Text) {
            println!(
                "{}── demo {}/{}: {} ──",
                if i == 0 { "" } else { "\n" },
                i + 1,
                ARTIFACTS.len(),
                a.title
            );
        }
        let mut snap = gostall_ingest::new_snapshot();
        gostall_ingest::ingest_reader(a.name, a.bytes, &mut snap)?;
        let code = emit(&snap, out)?;
        if code != ExitCode::SUCCESS {
            worst = code;
        }
    }
    Ok(worst)
}
