//! Resident memory of a live process against what the Go runtime manages.
//!
//! Two views are joined. The kernel's: how much of each mapping is resident (`smaps`). The Go
//! runtime's: what it holds from the OS (`gcController.mappedReady` and its parts: heap in use and
//! free, stacks, GC buffers, span and cache structures, GC metadata, …) and where its heap arenas
//! are (`mheap_.allArenas`, or `heapArenas` and `userArenaArenas` from Go 1.25). Everything the
//! runtime reads is located through `goruntime::layout::MemLayout`; a member a Go version lacks is
//! left out with a note.
//!
//! # The non-Go estimate
//!
//! `non_go_estimate` = resident `[heap]` (brk: `malloc`'s main arena) + resident `[stack]` (the
//! main thread's stack) + max(0, resident private anonymous memory outside the Go heap arenas
//! (other `malloc` arenas, `mmap`s, thread stacks) − the Go runtime's own memory outside its
//! arenas (`stacks_sys + mspan_sys + mcache_sys + buckhash_sys + gcMiscSys + other_sys`)).
//!
//! It counts what is resident, mapping by mapping, rather than subtracting the runtime's counters
//! from the whole RSS: the runtime's heap counters count pages it has mapped, not pages that are
//! resident (a large allocation never written, or heap pages backed by transparent huge pages),
//! so `RSS − Go runtime` drifts by the size of the Go heap, while the arenas' residency is read
//! directly and set aside whole. File-backed memory (the executable, libraries, mapped files),
//! the executable's and libraries' own data (`.bss`) and shared memory are not counted: they are
//! not allocations. What remains uncertain is the runtime's off-arena memory, which is subtracted
//! as mapped, though a little of it may not be resident: the estimate errs low by at most that
//! (a few MiB).

use crate::Program;
use gostall_access::{Memory, Smaps};
use gostall_model::MemoryFacts;

/// What the Go runtime says about its memory, read from the target.
#[derive(Debug, Clone, Default)]
pub struct GoMemory {
    /// `gcController.mappedReady`: everything the runtime holds from the OS, not released.
    pub mapped_ready: Option<u64>,
    /// Parts of it: (stat name, bytes), see [`MemoryFacts::go_breakdown`].
    pub breakdown: Vec<(String, u64)>,
    /// The part of it mapped outside the heap arenas (the `*_sys` statistics).
    pub off_arena: u64,
    /// Heap memory returned to the OS (`gcController.heapReleased`).
    pub released: Option<u64>,
    /// Heap arenas as sorted, merged address ranges `[start, end)`.
    pub arenas: Vec<(u64, u64)>,
    /// What could not be read.
    pub notes: Vec<String>,
}

impl GoMemory {
    /// Everything the runtime holds: `mappedReady` when readable, else the sum of the parts.
    pub fn total(&self) -> u64 {
        self.mapped_ready
            .unwrap_or_else(|| self.breakdown.iter().map(|(_, v)| v).sum())
    }
}

/// Most heap arenas listed (64 MiB each: 64 TiB).
const MAX_ARENAS: u64 = 1 << 20;

impl Program<'_> {
    /// Reads the runtime's memory statistics and heap arena list. Never fails: what cannot be read
    /// is noted and left out.
    pub fn read_go_memory<M: Memory + ?Sized>(&self, mem: &M) -> GoMemory {
        let l = &self.layout.mem;
        let mut out = GoMemory::default();
        let read_u64 = |addr: u64| mem.read_u64(addr).ok();
        // The heap's counters live in the GC controller.
        let gc = self.sym.gc_controller;
        if gc.is_none() {
            out.notes.push(
                "memory: runtime.gcController not found; the Go heap's size is unknown".to_string(),
            );
        }
        let mut unreadable = false;
        let mut heap = |name: &str, off: Option<u64>| -> Option<u64> {
            let base = gc?;
            let Some(off) = off else {
                out.notes.push(format!(
                    "memory: this Go version's runtime has no gcController.{name}; left out"
                ));
                return None;
            };
            let v = read_u64(base + off);
            unreadable |= v.is_none();
            v
        };
        let in_use = heap("heapInUse", l.heap_in_use);
        let free = heap("heapFree", l.heap_free);
        let released = heap("heapReleased", l.heap_released);
        let mapped_ready = heap("mappedReady", l.mapped_ready);
        if unreadable {
            out.notes
                .push("memory: the Go runtime's heap counters could not be read".to_string());
        }
        out.mapped_ready = mapped_ready;
        out.released = released;
        let mut parts: Vec<(String, u64)> = Vec::new();
        if let Some(v) = in_use {
            add(&mut parts, "heap_in_use", v);
        }
        if let Some(v) = free {
            add(&mut parts, "heap_free", v);
        }
        // Memory carved out of the arenas for stacks and GC buffers: the three-slot delta ring of
        // memstats.heapStats, summed (writers add to one slot, readers fold one into the next).
        if let (Some(ms), Some(off)) = (self.sym.memstats, l.heap_stats) {
            let n = l.heap_stats_delta_size as usize;
            let mut buf = vec![0u8; n * 3];
            if n > 0 && mem.read(ms + off, &mut buf).is_ok() {
                for (name, o) in &l.in_arena_stats {
                    let sum: i64 = (0..3)
                        .map(|i| crate::u64_at(&buf, (i * n) as u64 + o) as i64)
                        .fold(0i64, i64::saturating_add);
                    add(&mut parts, name, sum.max(0) as u64);
                }
            } else {
                out.notes
                    .push("memory: memstats.heapStats could not be read".to_string());
            }
        }
        // Memory the runtime maps outside the arenas.
        if let Some(ms) = self.sym.memstats {
            for (name, o) in &l.sys_stats {
                if let Some(v) = read_u64(ms + o) {
                    out.off_arena += v;
                    add(&mut parts, name, v);
                }
            }
        } else {
            out.notes.push(
                "memory: runtime.memstats not found; the Go runtime's own structures are not subtracted"
                    .to_string(),
            );
        }
        out.breakdown = parts;
        out.arenas = self.read_arenas(mem, &mut out.notes);
        out
    }

    fn read_arenas<M: Memory + ?Sized>(&self, mem: &M, notes: &mut Vec<String>) -> Vec<(u64, u64)> {
        let l = &self.layout.mem;
        let Some(mheap) = self.sym.mheap.filter(|_| !l.arena_lists.is_empty()) else {
            notes.push("memory: the heap arena list is unknown in this binary".to_string());
            return Vec::new();
        };
        let mut starts = Vec::new();
        for off in &l.arena_lists {
            let mut hdr = [0u8; 16];
            if mem.read(mheap + off, &mut hdr).is_err() {
                notes.push("memory: the heap arena list could not be read".to_string());
                continue;
            }
            let ptr = crate::u64_at(&hdr, 0);
            let len = crate::u64_at(&hdr, 8).min(MAX_ARENAS) as usize;
            if len == 0 {
                continue;
            }
            let mut raw = vec![0u8; len * 8];
            if mem.read(ptr, &mut raw).is_err() {
                notes.push("memory: the heap arena list could not be read".to_string());
                continue;
            }
            starts.extend(
                raw.chunks_exact(8)
                    .map(|c| l.arena_base(u64::from_le_bytes(c.try_into().expect("8")))),
            );
        }
        merge_ranges(starts, l.arena_bytes)
    }
}

/// Adds `v` to the part called `name`, creating it.
fn add(parts: &mut Vec<(String, u64)>, name: &str, v: u64) {
    match parts.iter_mut().find(|(n, _)| n == name) {
        Some(p) => p.1 += v,
        None => parts.push((name.to_string(), v)),
    }
}

/// Sorted arena start addresses → merged `[start, end)` ranges.
fn merge_ranges(mut starts: Vec<u64>, size: u64) -> Vec<(u64, u64)> {
    starts.sort_unstable();
    starts.dedup();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for s in starts {
        let e = s.saturating_add(size);
        match out.last_mut() {
            Some(last) if last.1 >= s => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// The C functions a Go binary's own code (not the standard library's resolver) calls through
/// cgo, from its generated trampolines (`main._Cfunc_tc_render` → `C.tc_render`); outside package
/// `main` the package is named (`C.sqlite3_open (github.com/mattn/go-sqlite3)`). At most `max`,
/// sorted.
pub fn cgo_functions(pcln: &gostall_binfmt::Pclntab<'_>, max: usize) -> Vec<String> {
    use gostall_goruntime::{cgo_c_function, code_origin, package_of, CodeOrigin};
    let mut out: Vec<String> = Vec::new();
    for f in pcln.funcs() {
        let name = pcln.name(&f);
        let Some(c) = cgo_c_function(name) else {
            continue;
        };
        if code_origin(name) != CodeOrigin::User {
            continue;
        }
        let s = match package_of(name) {
            "main" => format!("C.{c}"),
            pkg => format!("C.{c} ({pkg})"),
        };
        if !out.contains(&s) {
            out.push(s);
            if out.len() >= max {
                break;
            }
        }
    }
    out.sort();
    out
}

/// Kinds of resident memory, in report order.
const KINDS: [&str; 10] = [
    "go heap",
    "[heap]",
    "[stack]",
    "thread stacks",
    "anon",
    "executable",
    "libraries",
    "files",
    "shared",
    "other",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    GoHeap = 0,
    Brk = 1,
    MainStack = 2,
    ThreadStacks = 3,
    Anon = 4,
    Executable = 5,
    Libraries = 6,
    Files = 7,
    Shared = 8,
    Other = 9,
}

/// Joins the kernel's view and the runtime's into [`MemoryFacts`] (without samples).
///
/// `exe_pc` is an address inside the executable's text (to recognise its mappings) and
/// `thread_sps` the stack pointers of threads blocked in system calls (to recognise their stacks).
pub fn facts(smaps: &Smaps, go: &GoMemory, exe_pc: u64, thread_sps: &[u64]) -> MemoryFacts {
    let exe = smaps
        .mappings
        .iter()
        .find(|m| m.map.contains(exe_pc) && m.map.inode != 0)
        .map(|m| (m.map.dev_major, m.map.dev_minor, m.map.inode));
    let mut by = [0u64; KINDS.len()];
    let mut prev: Option<(u64, Kind)> = None;
    for u in &smaps.mappings {
        let m = &u.map;
        let name = m.path.as_ref().map(|p| p.to_string_lossy());
        let named_anon = name
            .as_deref()
            .is_some_and(|n| n.starts_with("[anon:") || n.starts_with("[anon_shmem:"));
        let anonymous = m.inode == 0 && (name.is_none() || named_anon);
        let kind = if m.perms.shared {
            if anonymous
                || name.as_deref().is_some_and(|n| {
                    n.starts_with("/dev/zero")
                        || n.starts_with("/SYSV")
                        || n.starts_with("/memfd:")
                        || n.starts_with("/dev/shm/")
                })
            {
                Kind::Shared
            } else {
                Kind::Files
            }
        } else if !anonymous {
            match name.as_deref() {
                Some("[heap]") => Kind::Brk,
                Some("[stack]") => Kind::MainStack,
                Some(n) if n.starts_with('[') => Kind::Other,
                _ if Some((m.dev_major, m.dev_minor, m.inode)) == exe => Kind::Executable,
                Some(n) if n.contains(".so") => Kind::Libraries,
                _ => Kind::Files,
            }
        } else {
            match prev {
                // The zero-filled data (.bss) after a binary's last file-backed segment.
                Some((end, k @ (Kind::Executable | Kind::Libraries))) if end == m.start => k,
                _ => Kind::Anon,
            }
        };
        prev = Some((m.end, kind));
        if kind != Kind::Anon {
            by[kind as usize] += u.rss;
            continue;
        }
        // Anonymous: the part inside Go heap arenas is Go's (pro rata when a mapping straddles an
        // arena boundary, which Go's own mappings do not).
        let inside: u64 = go
            .arenas
            .iter()
            .map(|&(s, e)| e.min(m.end).saturating_sub(s.max(m.start)))
            .sum();
        let len = m.end.saturating_sub(m.start).max(1);
        let go_part = ((u128::from(u.rss) * u128::from(inside.min(len))) / u128::from(len)) as u64;
        by[Kind::GoHeap as usize] += go_part;
        let rest = u.rss - go_part;
        if inside == 0 && thread_sps.iter().any(|&sp| m.contains(sp)) {
            by[Kind::ThreadStacks as usize] += rest;
        } else {
            by[Kind::Anon as usize] += rest;
        }
    }
    let rss = smaps.totals.rss;
    let anon = smaps.totals.anonymous;
    let shared = by[Kind::Shared as usize];
    let go_runtime = go.total();
    let outside = by[Kind::Anon as usize] + by[Kind::ThreadStacks as usize];
    let off_go = if go.arenas.is_empty() {
        // Arenas unknown: the heap is somewhere in the anonymous memory; take all of Go's out.
        outside.saturating_sub(go_runtime) + by[Kind::GoHeap as usize]
    } else {
        outside.saturating_sub(go.off_arena)
    };
    let non_go_estimate = by[Kind::Brk as usize] + by[Kind::MainStack as usize] + off_go;
    MemoryFacts {
        rss,
        anon,
        file: rss.saturating_sub(anon).saturating_sub(shared),
        by_kind: KINDS
            .iter()
            .zip(by)
            .filter(|(_, v)| *v > 0)
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        go_runtime,
        go_breakdown: go.breakdown.clone(),
        go_released: go.released.unwrap_or(0),
        non_go_estimate,
        ..MemoryFacts::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gostall_access::procfs::{Mapping, Perms};
    use gostall_access::{MappingUsage, Rollup};
    use std::path::PathBuf;

    fn map(start: u64, end: u64, perms: &str, inode: u64, path: Option<&str>) -> Mapping {
        let p = perms.as_bytes();
        Mapping {
            start,
            end,
            perms: Perms {
                read: p[0] == b'r',
                write: p[1] == b'w',
                exec: p[2] == b'x',
                shared: p[3] == b's',
            },
            offset: 0,
            dev_major: 8,
            dev_minor: 1,
            inode,
            path: path.map(PathBuf::from),
            deleted: false,
        }
    }

    fn usage(m: Mapping, rss_kb: u64, anon_kb: u64) -> MappingUsage {
        MappingUsage {
            map: m,
            rss: rss_kb << 10,
            anonymous: anon_kb << 10,
            swap: 0,
        }
    }

    const MIB: u64 = 1 << 20;

    fn process() -> Smaps {
        let mappings = vec![
            usage(map(0x400000, 0x500000, "r-xp", 7, Some("/srv/app")), 900, 0),
            usage(map(0x500000, 0x540000, "rw-p", 7, Some("/srv/app")), 40, 40),
            // The executable's .bss.
            usage(map(0x540000, 0x580000, "rw-p", 0, None), 200, 200),
            usage(
                map(0x1000000, 0x3000000, "rw-p", 0, Some("[heap]")),
                30 << 10,
                30 << 10,
            ),
            // Go heap arena.
            usage(
                map(0xc000000000, 0xc004000000, "rw-p", 0, None),
                12 << 10,
                12 << 10,
            ),
            // malloc arena of another thread, and Go's off-arena structures, merged.
            usage(
                map(0x7f0000000000, 0x7f0010000000, "rw-p", 0, None),
                205 << 10,
                205 << 10,
            ),
            // A thread stack (its thread is in a system call).
            usage(map(0x7f0020000000, 0x7f0020800000, "rw-p", 0, None), 64, 64),
            usage(
                map(
                    0x7f0030000000,
                    0x7f0030200000,
                    "r-xp",
                    9,
                    Some("/usr/lib/libc.so.6"),
                ),
                1500,
                0,
            ),
            usage(
                map(
                    0x7f0030200000,
                    0x7f0030210000,
                    "rw-p",
                    9,
                    Some("/usr/lib/libc.so.6"),
                ),
                16,
                16,
            ),
            usage(map(0x7f0030210000, 0x7f0030220000, "rw-p", 0, None), 8, 8),
            usage(
                map(0x7f0040000000, 0x7f0041000000, "rw-s", 0, Some("/dev/zero")),
                4 << 10,
                0,
            ),
            usage(
                map(0x7ffd00000000, 0x7ffd00021000, "rw-p", 0, Some("[stack]")),
                132,
                132,
            ),
            usage(
                map(0x7ffd10000000, 0x7ffd10002000, "r-xp", 0, Some("[vdso]")),
                8,
                0,
            ),
        ];
        let rss = mappings.iter().map(|m| m.rss).sum();
        let anonymous = mappings.iter().map(|m| m.anonymous).sum();
        Smaps {
            totals: Rollup {
                rss,
                anonymous,
                ..Rollup::default()
            },
            mappings,
            truncated: 0,
        }
    }

    fn go() -> GoMemory {
        GoMemory {
            mapped_ready: Some(20 * MIB),
            breakdown: vec![("heap_in_use".into(), 12 * MIB), ("mspan".into(), 5 * MIB)],
            off_arena: 5 * MIB,
            released: Some(MIB),
            arenas: vec![(0xc000000000, 0xc004000000)],
            notes: Vec::new(),
        }
    }

    fn kind(f: &MemoryFacts, k: &str) -> u64 {
        f.by_kind
            .iter()
            .find(|(n, _)| n == k)
            .map_or(0, |(_, v)| *v)
    }

    #[test]
    fn mappings_are_classified_and_go_is_set_aside() {
        let f = facts(&process(), &go(), 0x401000, &[0x7f0020700000]);
        assert_eq!(kind(&f, "go heap"), 12 * MIB);
        assert_eq!(kind(&f, "[heap]"), 30 * MIB);
        assert_eq!(kind(&f, "[stack]"), 132 << 10);
        assert_eq!(kind(&f, "thread stacks"), 64 << 10);
        assert_eq!(kind(&f, "anon"), 205 * MIB);
        assert_eq!(kind(&f, "executable"), (900 + 40 + 200) << 10);
        assert_eq!(kind(&f, "libraries"), (1500 + 16 + 8) << 10);
        assert_eq!(kind(&f, "shared"), 4 * MIB);
        assert_eq!(kind(&f, "other"), 8 << 10);
        assert_eq!(f.by_kind.iter().map(|(_, v)| v).sum::<u64>(), f.rss);
        // [heap] + [stack] + (anon + thread stacks − Go's off-arena memory).
        assert_eq!(
            f.non_go_estimate,
            30 * MIB + (132 << 10) + 205 * MIB + (64 << 10) - 5 * MIB
        );
        assert_eq!(f.go_runtime, 20 * MIB);
        assert_eq!(f.go_released, MIB);
        assert_eq!(f.file, f.rss - f.anon - 4 * MIB);
    }

    #[test]
    fn without_arenas_all_of_go_is_subtracted() {
        let g = GoMemory {
            arenas: Vec::new(),
            ..go()
        };
        let f = facts(&process(), &g, 0x401000, &[]);
        assert_eq!(kind(&f, "go heap"), 0);
        assert_eq!(
            f.non_go_estimate,
            30 * MIB + (132 << 10) + (12 + 205) * MIB + (64 << 10) - 20 * MIB
        );
    }

    #[test]
    fn a_pure_go_process_has_no_non_go_memory() {
        let mut s = process();
        s.mappings.retain(|m| {
            m.map.path.as_deref() != Some(std::path::Path::new("[heap]"))
                && m.map.start != 0x7f0000000000
        });
        s.mappings.push(usage(
            map(0x7f0000000000, 0x7f0000400000, "rw-p", 0, None),
            3 << 10,
            3 << 10,
        ));
        let f = facts(&s, &go(), 0x401000, &[]);
        // Less resident outside the arenas than Go says it mapped there: clamped, not negative.
        assert_eq!(f.non_go_estimate, 132 << 10);
    }

    #[test]
    fn arena_ranges_merge() {
        assert_eq!(
            merge_ranges(
                vec![0xc004000000, 0xc000000000, 0xc010000000, 0xc000000000],
                0x4000000
            ),
            vec![(0xc000000000, 0xc008000000), (0xc010000000, 0xc014000000)]
        );
        let l = gostall_goruntime::layout::MemLayout {
            arena_bytes: 64 << 20,
            arena_base_offset: 0xffff_8000_0000_0000,
            ..Default::default()
        };
        // arenaIndex(0xc000000000) on linux/amd64.
        let idx = (0xc000000000u64.wrapping_sub(0xffff_8000_0000_0000)) / (64 << 20);
        assert_eq!(l.arena_base(idx), 0xc000000000);
    }
}
