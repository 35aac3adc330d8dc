//! The recorded layout tables (`crates/goruntime/tables/`) give exactly the layouts the DWARF of
//! a binary built by the same Go version gives: the probe the tables were recorded from is built
//! again with each toolchain under test (`GOSTALL_GO_VERSIONS`, default oldest and newest) and
//! read both ways.

use gostall_binfmt::GoBinary;
use gostall_corpus as corpus;
use gostall_goruntime::layout::RuntimeLayout;
use gostall_goruntime::tables::table_for;
use std::process::Command;

#[test]
fn every_supported_version_has_a_table() {
    for v in corpus::ALL_VERSIONS {
        let minor: u32 = v.split('.').nth(1).unwrap().parse().unwrap();
        let t = table_for(minor).unwrap_or_else(|| panic!("no table for Go {v}"));
        assert_eq!(
            t.go_version,
            format!("go{v}"),
            "Go {v}: re-record the tables"
        );
        RuntimeLayout::from_types(&t).unwrap_or_else(|e| panic!("Go {v}: {e}"));
    }
}

#[test]
fn tables_match_the_dwarf_of_each_version() {
    for v in corpus::versions_from_env() {
        let root = corpus::goroot(&v).unwrap_or_else(|e| panic!("{e:#}"));
        let dir = corpus::work_dir(&v).join("probe");
        std::fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("probe");
        let status = Command::new(root.join("bin/go"))
            .args(["build", "-o"])
            .arg(&exe)
            .arg(".")
            .current_dir(corpus::repo_root().join("crates/goruntime/tables/probe"))
            .env("GOROOT", &root)
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "-mod=mod")
            .env("CGO_ENABLED", "0")
            .status()
            .expect("go build");
        assert!(status.success(), "Go {v}: building the probe failed");
        let data = std::fs::read(&exe).unwrap();
        let bin = GoBinary::parse(&data).unwrap();
        let dwarf = bin.dwarf().unwrap().expect("DWARF");
        let from_dwarf = RuntimeLayout::from_dwarf(&dwarf).unwrap();
        let minor = bin.go_version().unwrap().1;
        let table = table_for(minor).unwrap();
        let from_table = RuntimeLayout::from_types(&table).unwrap();
        assert_eq!(
            format!("{from_dwarf:?}"),
            format!("{from_table:?}"),
            "Go {v}: the recorded table differs from the probe's DWARF: re-record the tables"
        );
        // Any other program of the same version has the same runtime layouts: a cgo program
        // and a server from the scenario corpus.
        let bins = corpus::build(&v).unwrap_or_else(|e| panic!("{e:#}"));
        for name in ["cgo-blocked", "control-idle-server"] {
            let data = std::fs::read(bins.join(name)).unwrap();
            let bin = GoBinary::parse(&data).unwrap();
            let dwarf = bin.dwarf().unwrap().expect("DWARF");
            let other = RuntimeLayout::from_dwarf(&dwarf).unwrap();
            assert_eq!(
                format!("{other:?}"),
                format!("{from_table:?}"),
                "Go {v}: {name}'s layouts differ from the table"
            );
        }
    }
}
