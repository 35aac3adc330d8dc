//! `gostall demo`: diagnoses real artifacts recorded from the scenario corpus and embedded in the
//! binary, so the first run needs nothing but the repository. Re-record them with
//! `cargo run -p gostall-corpus --example record-demo`.

use crate::{emit, Format, OutputArgs};
use anyhow::Result;
use std::process::ExitCode;

/// One recorded case: several artifacts of one process, diagnosed together.
struct Demo {
    title: &'static str,
    files: &'static [(&'static str, &'static [u8])],
}

include!(concat!(env!("CARGO_MANIFEST_DIR"), "/demo/demo.rs"));

pub(crate) fn run(out: &OutputArgs) -> Result<ExitCode> {
    let mut worst = ExitCode::SUCCESS;
    for (i, d) in DEMOS.iter().enumerate() {
        if matches!(out.format, Format::Text) {
            println!(
                "{}━━ demo {}/{} ━━ {}",
                if i == 0 { "" } else { "\n" },
                i + 1,
                DEMOS.len(),
                d.title
            );
        }
        let mut snap = gostall_ingest::new_snapshot();
        for (name, bytes) in d.files {
            gostall_ingest::ingest_reader(name, *bytes, &mut snap)?;
        }
        let code = emit(&snap, out)?;
        if code != ExitCode::SUCCESS {
            worst = code;
        }
    }
    Ok(worst)
}
