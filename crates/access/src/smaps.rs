//! Resident memory of a process: totals from `/proc/PID/smaps_rollup` and the resident size of each
//! mapping from `/proc/PID/smaps`, so a caller can say which mappings hold the memory (a heap, thread
//! stacks, anonymous `mmap`s, files).
//!
//! Reading is streamed and bounded ([`MAX_MAPPINGS`]); a process that exits mid-read gives
//! [`TargetError::ProcessExited`], unreadable files [`TargetError::Proc`], never a panic. The parsers
//! take bytes and do no I/O, so they are tested on literal file contents.

use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::error::TargetError;
use crate::procfs::{is_gone, parse_maps, Mapping};

/// Mappings read from `smaps` at most; the rest are counted in [`Smaps::truncated`] only through
/// the totals of the rollup. The kernel's default `vm.max_map_count` is 65 530.
pub const MAX_MAPPINGS: usize = 1 << 18;

/// Process-wide resident totals (`/proc/PID/smaps_rollup`), bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rollup {
    /// Resident set size (`Rss`).
    pub rss: u64,
    /// Proportional set size (`Pss`): shared pages divided among their sharers.
    pub pss: u64,
    /// Resident anonymous memory (`Anonymous`): heap, stacks, anonymous mappings, copy-on-write
    /// pages of private file mappings.
    pub anonymous: u64,
    /// Swapped-out anonymous memory (`Swap`), not part of `rss`.
    pub swap: u64,
}

/// One mapping and how much of it is resident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingUsage {
    /// The mapping, as `/proc/PID/maps` shows it.
    pub map: Mapping,
    /// Resident bytes (`Rss`).
    pub rss: u64,
    /// Resident anonymous bytes (`Anonymous`).
    pub anonymous: u64,
    /// Swapped-out bytes (`Swap`).
    pub swap: u64,
}

/// The resident memory of a process: totals and per-mapping sizes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Smaps {
    /// Totals. From `smaps_rollup` when the kernel has it (4.14+), otherwise summed from the
    /// mappings.
    pub totals: Rollup,
    /// Every mapping with its resident size, in address order, at most [`MAX_MAPPINGS`].
    pub mappings: Vec<MappingUsage>,
    /// Mappings left out beyond [`MAX_MAPPINGS`].
    pub truncated: usize,
}

/// Reads `/proc/PID/smaps_rollup` and `/proc/PID/smaps`.
///
/// # Errors
/// [`TargetError::ProcessExited`] when the process is gone; [`TargetError::Proc`] when a file is not
/// readable (another user's process without `CAP_SYS_PTRACE`); [`TargetError::Parse`] on a line
/// that is neither a mapping nor a field.
pub fn read(pid: i32) -> Result<Smaps, TargetError> {
    let smaps_path = PathBuf::from(format!("/proc/{pid}/smaps"));
    let file = open(pid, &smaps_path)?;
    let (mappings, truncated) = parse_smaps(BufReader::with_capacity(1 << 16, file), MAX_MAPPINGS)
        .map_err(|e| match e {
            SmapsError::Io(e) if is_gone(&e) => TargetError::ProcessExited { pid },
            SmapsError::Io(e) => TargetError::Proc {
                path: smaps_path.clone(),
                source: e,
            },
            SmapsError::Line(line) => TargetError::Parse {
                path: smaps_path.clone(),
                what: format!("line {line} is neither a mapping nor a field"),
            },
        })?;
    let rollup_path = PathBuf::from(format!("/proc/{pid}/smaps_rollup"));
    let totals = match std::fs::read(&rollup_path) {
        Ok(b) => parse_rollup(&b),
        Err(e) if is_gone(&e) && !Path::new(&format!("/proc/{pid}")).exists() => {
            return Err(TargetError::ProcessExited { pid })
        }
        Err(_) => None,
    };
    // An empty smaps (a zombie, or a process that exited between the two reads) has no memory.
    if mappings.is_empty() && totals.is_none_or(|t| t.rss == 0) && !crate::procfs::is_alive(pid) {
        return Err(TargetError::ProcessExited { pid });
    }
    let totals = totals.unwrap_or_else(|| sum(&mappings));
    Ok(Smaps {
        totals,
        mappings,
        truncated,
    })
}

fn open(pid: i32, path: &Path) -> Result<std::fs::File, TargetError> {
    match std::fs::File::open(path) {
        Ok(f) => Ok(f),
        Err(e) if is_gone(&e) => Err(TargetError::ProcessExited { pid }),
        Err(e) => Err(TargetError::Proc {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

fn sum(mappings: &[MappingUsage]) -> Rollup {
    mappings.iter().fold(Rollup::default(), |mut t, m| {
        t.rss += m.rss;
        t.anonymous += m.anonymous;
        t.swap += m.swap;
        t
    })
}

/// Why `smaps` could not be parsed.
#[derive(Debug)]
pub enum SmapsError {
    /// Reading failed.
    Io(io::Error),
    /// This 1-based line is neither a mapping header nor a `Key: value` field.
    Line(usize),
}

/// Longest line accepted (paths are at most `PATH_MAX`, 4096 bytes).
const MAX_LINE: usize = 8192;

/// Parses `/proc/PID/smaps` from a reader: every mapping header with the `Rss`, `Anonymous` and
/// `Swap` fields that follow it. Keeps at most `max` mappings and returns how many more there were.
///
/// # Errors
/// [`SmapsError::Io`] when reading fails, [`SmapsError::Line`] on a line that is neither a mapping
/// nor a field, or a field before the first mapping.
pub fn parse_smaps<R: BufRead>(
    mut r: R,
    max: usize,
) -> Result<(Vec<MappingUsage>, usize), SmapsError> {
    let mut out: Vec<MappingUsage> = Vec::new();
    let mut skipped = 0usize;
    let mut line = Vec::with_capacity(256);
    let mut n = 0usize;
    // Whether the fields being read belong to a kept mapping.
    let mut keeping = false;
    loop {
        line.clear();
        let got = <&mut R as io::Read>::take(&mut r, MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .map_err(SmapsError::Io)?;
        if got == 0 {
            break;
        }
        n += 1;
        if line.last() != Some(&b'\n') && got == MAX_LINE {
            // Overlong line: skip to its end.
            let mut rest = Vec::new();
            r.read_until(b'\n', &mut rest).map_err(SmapsError::Io)?;
        }
        let l = trim_newline(&line);
        if l.is_empty() {
            continue;
        }
        if is_header(l) {
            if out.len() >= max {
                skipped += 1;
                keeping = false;
                continue;
            }
            let map = parse_maps(l)
                .ok()
                .and_then(|mut v| v.pop())
                .ok_or(SmapsError::Line(n))?;
            out.push(MappingUsage {
                map,
                rss: 0,
                anonymous: 0,
                swap: 0,
            });
            keeping = true;
            continue;
        }
        let Some((key, kb)) = field(l) else {
            return Err(SmapsError::Line(n));
        };
        if !keeping {
            if out.is_empty() && skipped == 0 {
                return Err(SmapsError::Line(n));
            }
            continue;
        }
        let m = out.last_mut().expect("keeping implies a mapping");
        match key {
            b"Rss" => m.rss = kb.saturating_mul(1024),
            b"Anonymous" => m.anonymous = kb.saturating_mul(1024),
            b"Swap" => m.swap = kb.saturating_mul(1024),
            _ => {}
        }
    }
    Ok((out, skipped))
}

/// Parses `/proc/PID/smaps_rollup`; `None` when it has no `Rss` line.
pub fn parse_rollup(b: &[u8]) -> Option<Rollup> {
    let mut t = Rollup::default();
    let mut seen = false;
    for l in b.split(|&c| c == b'\n') {
        let Some((key, kb)) = field(l) else { continue };
        let v = kb.saturating_mul(1024);
        match key {
            b"Rss" => {
                t.rss = v;
                seen = true;
            }
            b"Pss" => t.pss = v,
            b"Anonymous" => t.anonymous = v,
            b"Swap" => t.swap = v,
            _ => {}
        }
    }
    seen.then_some(t)
}

fn trim_newline(l: &[u8]) -> &[u8] {
    let mut l = l;
    while let Some((&c, rest)) = l.split_last() {
        if c == b'\n' || c == b'\r' {
            l = rest;
        } else {
            break;
        }
    }
    l
}

/// A mapping header starts with `START-END ` in hex; field keys never contain `-`.
fn is_header(l: &[u8]) -> bool {
    let first = l.split(|&c| c == b' ').next().unwrap_or_default();
    match memchr::memchr(b'-', first) {
        Some(d) => {
            d > 0
                && d + 1 < first.len()
                && first
                    .iter()
                    .enumerate()
                    .all(|(i, c)| i == d || c.is_ascii_hexdigit())
        }
        None => false,
    }
}

/// `Key:   123 kB` → (`Key`, 123). Fields without a number (`VmFlags: rd wr`) give 0.
fn field(l: &[u8]) -> Option<(&[u8], u64)> {
    let colon = memchr::memchr(b':', l)?;
    let key = &l[..colon];
    if key.is_empty() || !key.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_') {
        return None;
    }
    let val = std::str::from_utf8(&l[colon + 1..]).ok()?;
    let num = val
        .split_ascii_whitespace()
        .next()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    Some((key, num))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
00400000-00401000 r-xp 00000000 fe:00 123                                /usr/bin/prog
Size:                  4 kB
Rss:                   4 kB
Anonymous:             0 kB
Swap:                  0 kB
VmFlags: rd ex mr mw me
c000000000-c004000000 rw-p 00000000 00:00 0 
Size:              65536 kB
Rss:                2048 kB
Anonymous:          2048 kB
Swap:                 16 kB
THPeligible:    1
VmFlags: rd wr mr mw me ac
7ffd0000-7ffd2000 rw-p 00000000 00:00 0                                  [stack]
Rss:                   8 kB
Anonymous:             8 kB
";

    #[test]
    fn mappings_with_their_residency() {
        let (v, skipped) = parse_smaps(SMAPS.as_bytes(), 100).unwrap();
        assert_eq!(skipped, 0);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].map.path.as_deref(), Some(Path::new("/usr/bin/prog")));
        assert_eq!((v[0].rss, v[0].anonymous), (4096, 0));
        assert_eq!(v[1].map.start, 0xc000000000);
        assert_eq!(v[1].map.path, None);
        assert_eq!(
            (v[1].rss, v[1].anonymous, v[1].swap),
            (2 << 20, 2 << 20, 16 << 10)
        );
        assert_eq!(v[2].map.path.as_deref(), Some(Path::new("[stack]")));
        assert_eq!(sum(&v).rss, 4096 + (2 << 20) + 8192);
    }

    #[test]
    fn bounded_and_strict() {
        let (v, skipped) = parse_smaps(SMAPS.as_bytes(), 1).unwrap();
        assert_eq!((v.len(), skipped), (1, 2));
        assert_eq!(
            v[0].rss, 4096,
            "fields of skipped mappings are not mixed in"
        );
        assert!(matches!(
            parse_smaps("Rss: 4 kB\n".as_bytes(), 10),
            Err(SmapsError::Line(1))
        ));
        assert!(matches!(
            parse_smaps(
                "00400000-00401000 r-xp 00000000 fe:00 1 /x\n\u{1}garbage\n".as_bytes(),
                10
            ),
            Err(SmapsError::Line(2))
        ));
        // Empty input (a zombie's smaps) is no mapping, not an error.
        assert_eq!(parse_smaps(&b""[..], 10).unwrap().0.len(), 0);
        // An overlong line is skipped, not held.
        let long = format!("VmFlags: {}\n", "rd ".repeat(10_000));
        let text = format!("{SMAPS}{long}");
        assert_eq!(parse_smaps(text.as_bytes(), 10).unwrap().0.len(), 3);
    }

    #[test]
    fn rollup_totals() {
        let r = parse_rollup(
            b"5581a37b7000-7ffca8622000 ---p 00000000 00:00 0     [rollup]\nRss:    1684 kB\nPss:   453 kB\nAnonymous:   112 kB\nSwap: 0 kB\n",
        )
        .unwrap();
        assert_eq!(r.rss, 1684 * 1024);
        assert_eq!(r.pss, 453 * 1024);
        assert_eq!(r.anonymous, 112 * 1024);
        assert_eq!(parse_rollup(b"nothing here"), None);
    }

    #[test]
    fn own_process() {
        let s = read(std::process::id() as i32).unwrap();
        assert!(s.totals.rss > 0);
        assert!(!s.mappings.is_empty());
        let summed: u64 = s.mappings.iter().map(|m| m.rss).sum();
        // Both are read at slightly different moments; they agree to within a few MiB.
        assert!(
            summed.abs_diff(s.totals.rss) < 16 << 20,
            "{summed} vs {}",
            s.totals.rss
        );
    }
}
