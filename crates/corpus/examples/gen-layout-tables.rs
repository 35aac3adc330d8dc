//! Records the layout tables of `crates/goruntime/tables/`: for each supported Go version, builds
//! the probe program (`crates/goruntime/tables/probe`) with that toolchain, reads every layout
//! from its DWARF through a recorder, and writes what was asked and answered to
//! `crates/goruntime/tables/go1.MINOR.json`. Run after adding a Go version or when the layout
//! reader asks for more:
//!
//! ```sh
//! cargo run --release -p gostall-corpus --example gen-layout-tables [VERSION…]
//! ```

use anyhow::{bail, Context, Result};
use gostall_binfmt::GoBinary;
use gostall_corpus::{goroot, repo_root, ALL_VERSIONS};
use gostall_goruntime::layout::RuntimeLayout;
use gostall_goruntime::tables::{Recorder, Table};
use std::path::Path;
use std::process::Command;

/// Builds the probe with `version` and records its table.
fn record(version: &str, out_dir: &Path) -> Result<Table> {
    let root = goroot(version)?;
    let probe = repo_root().join("crates/goruntime/tables/probe");
    let exe = out_dir.join(format!("probe-{version}"));
    let status = Command::new(root.join("bin/go"))
        .args(["build", "-o"])
        .arg(&exe)
        .arg(".")
        .current_dir(&probe)
        .env("GOROOT", &root)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .env("CGO_ENABLED", "0")
        .env("GOCACHE", out_dir.join("gocache"))
        .status()
        .context("running go build")?;
    if !status.success() {
        bail!("building the probe with Go {version} failed");
    }
    let data = std::fs::read(&exe)?;
    let bin = GoBinary::parse(&data)?;
    let dwarf = bin.dwarf()?.context("the probe has no DWARF")?;
    let rec = Recorder::new(&dwarf, &format!("go{version}"));
    RuntimeLayout::from_types(&rec)?;
    Ok(rec.into_table())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let versions: Vec<String> = if args.is_empty() {
        ALL_VERSIONS.iter().map(|s| s.to_string()).collect()
    } else {
        args
    };
    let tmp = std::env::temp_dir().join(format!("gostall-tables-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    for v in &versions {
        let minor = v.split('.').nth(1).context("a version like 1.27.3")?;
        let table = record(v, &tmp)?;
        let path = repo_root().join(format!("crates/goruntime/tables/go1.{minor}.json"));
        let mut text = serde_json::to_string_pretty(&table)?;
        text.push('\n');
        std::fs::write(&path, text)?;
        println!(
            "{}: {} types, {} constants, {} variables",
            path.display(),
            table.structs.len(),
            table.constants.len(),
            table.variables.len()
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}
