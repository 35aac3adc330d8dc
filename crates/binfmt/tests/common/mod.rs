//! Builds `testdata/prog` with each Go toolchain in each variant, once per test process, and
//! runs the Go tools that give the ground truth (`go version -m`, `go tool nm`,
//! `go tool objdump`).
#![allow(dead_code)]

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// How a test binary is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// `go build` (non-PIE; cgo enabled, so the net package's cgo resolver is linked).
    Default,
    /// `-buildmode=pie`.
    Pie,
    /// `-ldflags=-w`: no DWARF.
    NoDwarf,
    /// `CGO_ENABLED=0`.
    NoCgo,
    /// `-ldflags=-s -w`: no symbol table, no DWARF.
    Stripped,
    /// `-ldflags=-linkmode=external`: linked by the C toolchain (`runtime.text` is not at the
    /// start of `.text`; DWARF rewritten by the system linker).
    External,
}

impl Variant {
    /// Every variant.
    pub const ALL: [Variant; 6] = [
        Variant::Default,
        Variant::Pie,
        Variant::NoDwarf,
        Variant::NoCgo,
        Variant::Stripped,
        Variant::External,
    ];

    /// Directory name under `target/binfmt-test/VERSION/`.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Default => "default",
            Variant::Pie => "pie",
            Variant::NoDwarf => "nodwarf",
            Variant::NoCgo => "nocgo",
            Variant::Stripped => "stripped",
            Variant::External => "external",
        }
    }

    fn args(self) -> &'static [&'static str] {
        match self {
            Variant::Default | Variant::NoCgo => &[],
            Variant::Pie => &["-buildmode=pie"],
            Variant::NoDwarf => &["-ldflags=-w"],
            Variant::Stripped => &["-ldflags=-s -w"],
            Variant::External => &["-ldflags=-linkmode=external"],
        }
    }

    /// Whether the binary has DWARF.
    pub fn has_dwarf(self) -> bool {
        matches!(
            self,
            Variant::Default | Variant::Pie | Variant::NoCgo | Variant::External
        )
    }

    /// Whether the binary has `.symtab`.
    pub fn has_symtab(self) -> bool {
        self != Variant::Stripped
    }
}

/// One built test binary.
#[derive(Debug, Clone)]
pub struct Built {
    /// Toolchain version, e.g. `1.27.3`.
    pub version: String,
    /// `(1, 27, 3)`.
    pub triple: (u32, u32, u32),
    /// Build variant.
    pub variant: Variant,
    /// The executable.
    pub path: PathBuf,
    /// The toolchain's GOROOT.
    pub goroot: PathBuf,
}

impl Built {
    /// Reads the executable.
    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.path).unwrap_or_else(|e| panic!("{}: {e}", self.path.display()))
    }

    /// `go1.27.3/pie`, for messages.
    pub fn label(&self) -> String {
        format!("go{}/{}", self.version, self.variant.name())
    }

    /// Runs `go ARGS... PATH` with this toolchain and returns stdout.
    pub fn go_tool(&self, args: &[&str]) -> String {
        let out = Command::new(self.goroot.join("bin/go"))
            .args(args)
            .arg(&self.path)
            .env("GOROOT", &self.goroot)
            .env("GOTOOLCHAIN", "local")
            .output()
            .unwrap_or_else(|e| panic!("running go {args:?}: {e}"));
        assert!(
            out.status.success(),
            "go {args:?} {} failed: {}",
            self.path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("go tool output is UTF-8")
    }
}

/// The crate's `testdata/prog`.
pub fn prog_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/prog")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| gostall_corpus::repo_root().join("target"))
}

fn mtime(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn build_one(version: &str, goroot: &Path, variant: Variant) -> Result<PathBuf> {
    let dir = target_dir().join("binfmt-test").join(version);
    let out_dir = dir.join(variant.name());
    std::fs::create_dir_all(&out_dir)?;
    let out = out_dir.join("binfmtprog");
    let src = prog_dir();
    let newest_src = ["main.go", "go.mod"]
        .iter()
        .filter_map(|f| mtime(&src.join(f)))
        .max();
    if let (Some(b), Some(s)) = (mtime(&out), newest_src) {
        if b > s {
            return Ok(out);
        }
    }
    // Build to a temporary name, then rename: concurrent test processes never see half a file.
    let tmp = out_dir.join(format!("binfmtprog.tmp{}", std::process::id()));
    let mut cmd = Command::new(goroot.join("bin/go"));
    cmd.args(["build", "-buildvcs=false", "-o"])
        .arg(&tmp)
        .args(variant.args())
        .arg(".")
        .current_dir(&src)
        .env("GOROOT", goroot)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .env("GOCACHE", dir.join("gocache"))
        .env("GOPATH", dir.join("gopath"))
        .env(
            "CGO_ENABLED",
            if variant == Variant::NoCgo { "0" } else { "1" },
        );
    let status = cmd.status().context("running go build")?;
    if !status.success() {
        bail!("go build ({version}, {}) failed", variant.name());
    }
    std::fs::rename(&tmp, &out)?;
    Ok(out)
}

/// Every test binary: the versions of `GOSTALL_GO_VERSIONS` (default: oldest and newest) ×
/// every variant. Built once per test process; a failure to build panics.
pub fn builds() -> &'static [Built] {
    static BUILDS: OnceLock<Vec<Built>> = OnceLock::new();
    BUILDS.get_or_init(|| {
        let versions = gostall_corpus::versions_from_env();
        let per_version: Vec<Result<Vec<Built>>> = std::thread::scope(|s| {
            let handles: Vec<_> = versions
                .iter()
                .map(|v| {
                    s.spawn(move || -> Result<Vec<Built>> {
                        let goroot = gostall_corpus::goroot(v)?;
                        let triple = gostall_binfmt::parse_go_version(&format!("go{v}"))
                            .context("version")?;
                        Variant::ALL
                            .iter()
                            .map(|&variant| {
                                Ok(Built {
                                    version: v.clone(),
                                    triple,
                                    variant,
                                    path: build_one(v, &goroot, variant)?,
                                    goroot: goroot.clone(),
                                })
                            })
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("build thread"))
                .collect()
        });
        per_version
            .into_iter()
            .flat_map(|r| r.unwrap_or_else(|e| panic!("building test binaries: {e:#}")))
            .collect()
    })
}

/// `go tool nm -size`: name → (address, size, type letter), names that occur once only.
pub fn nm(b: &Built) -> HashMap<String, (u64, u64, char)> {
    let text = b.go_tool(&["tool", "nm", "-size"]);
    let mut seen: HashMap<String, Option<(u64, u64, char)>> = HashMap::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(addr), Some(size), Some(kind)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let name: Vec<&str> = it.collect();
        if name.is_empty() {
            continue;
        }
        let (Ok(addr), Ok(size)) = (u64::from_str_radix(addr, 16), size.parse::<u64>()) else {
            continue;
        };
        let kind = kind.chars().next().unwrap_or('?');
        seen.entry(name.join(" "))
            .and_modify(|e| *e = None)
            .or_insert(Some((addr, size, kind)));
    }
    seen.into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
}

/// One instruction of `go tool objdump`.
#[derive(Debug, Clone)]
pub struct Insn {
    /// Enclosing function (from the `TEXT` line).
    pub func: String,
    /// File base name.
    pub file: String,
    /// Line.
    pub line: u32,
    /// Link-time address.
    pub pc: u64,
    /// Disassembly text.
    pub asm: String,
}

/// `go tool objdump -s REGEX`.
pub fn objdump(b: &Built, regex: &str) -> Vec<Insn> {
    let text = b.go_tool(&["tool", "objdump", "-s", regex]);
    let mut out = Vec::new();
    let mut func = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("TEXT ") {
            func = rest
                .split_whitespace()
                .next()
                .unwrap_or("")
                .trim_end_matches("(SB)")
                .to_string();
            continue;
        }
        let cols: Vec<&str> = line.trim().split('\t').filter(|c| !c.is_empty()).collect();
        if cols.len() < 3 {
            continue;
        }
        let Some((file, l)) = cols[0].rsplit_once(':') else {
            continue;
        };
        let (Ok(l), Some(pc)) = (
            l.parse::<u32>(),
            cols[1]
                .strip_prefix("0x")
                .and_then(|h| u64::from_str_radix(h, 16).ok()),
        ) else {
            continue;
        };
        out.push(Insn {
            func: func.clone(),
            file: file.to_string(),
            line: l,
            pc,
            asm: cols.get(3).copied().unwrap_or("").trim().to_string(),
        });
    }
    out
}

/// The 1-based line of `testdata/prog/main.go` containing `needle`.
pub fn src_line(needle: &str) -> u32 {
    let src = std::fs::read_to_string(prog_dir().join("main.go")).expect("main.go");
    let i = src
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in main.go"));
    i as u32 + 1
}

/// The file name after the last `/`.
pub fn base(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A copy of an ELF file without section headers (as `sstrip` leaves it): only program headers
/// remain to find anything.
pub fn without_section_headers(data: &[u8]) -> Vec<u8> {
    let mut d = data.to_vec();
    d[0x28..0x30].fill(0); // e_shoff
    d[0x3c..0x40].fill(0); // e_shnum, e_shstrndx
    d
}
