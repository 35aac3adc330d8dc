//! `thread_explosion`: far more OS threads than GOMAXPROCS.
//!
//! The thread count comes from the threadcreate profile when given, else from the highest M id in
//! crash headers, else from the goroutines that each hold a thread (in syscalls, in cgo calls, or
//! locked and blocked). A warning from [`WARN`] threads (or 8×GOMAXPROCS when known), critical from
//! [`CRITICAL`] (Go aborts at 10000).

use crate::{Context, Rule};
use gostall_model::{Finding, FindingKind, GoState, Severity, ThreadOrigin, WaitReason};

/// The thread-explosion rule.
pub struct ThreadExplosion;

/// Threads that make a warning when GOMAXPROCS is unknown.
pub const WARN: u64 = 64;
/// Threads that make it critical.
pub const CRITICAL: u64 = 1000;

impl Rule for ThreadExplosion {
    fn kind(&self) -> FindingKind {
        FindingKind::ThreadExplosion
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let p = &cx.snap.process;
        let in_syscall =
            cx.select(|g, _| g.state == GoState::Syscall && g.wait_reason != Some(WaitReason::Cgo));
        let in_cgo = cx.select(|g, _| g.wait_reason == Some(WaitReason::Cgo));
        let locked = cx.select(|g, _| g.locked_to_thread && g.state == GoState::Waiting);
        let holders: Vec<u32> = in_syscall
            .iter()
            .chain(&in_cgo)
            .chain(&locked)
            .copied()
            .collect();
        let held = cx.count(&holders);
        let (threads, how) = if !cx.snap.threads.is_empty() {
            let whence = if cx.snap.core.is_some() {
                "threads in the core"
            } else {
                "threads in /proc"
            };
            (cx.snap.threads.len() as u64, whence)
        } else if let Some(n) = p.threads_created {
            (n, "threadcreate profile")
        } else if let Some(m) = p.max_m_id.filter(|&m| m + 1 >= held) {
            (m + 1, "highest M id in the dump")
        } else {
            (held, "goroutines each holding an OS thread")
        };
        let limit = p
            .gomaxprocs
            .map(|n| (8 * u64::from(n)).max(32))
            .unwrap_or(WARN);
        if threads < limit {
            return Vec::new();
        }
        let mut evidence = vec![format!("{threads} OS threads ({how})")];
        if let Some(n) = p.gomaxprocs {
            evidence.push(format!("GOMAXPROCS is {n}"));
        }
        if cx.snap.threads.is_empty() {
            evidence.push(format!(
                "threads held by goroutines: {} in system calls, {} in cgo calls, {} locked to a thread and blocked",
                cx.count(&in_syscall),
                cx.count(&in_cgo),
                cx.count(&locked)
            ));
        } else {
            // The real threads, each joined to its M and goroutine.
            let state_of: rustc_hash::FxHashMap<u64, (GoState, Option<WaitReason>)> = cx
                .snap
                .goroutines
                .iter()
                .map(|g| (g.id, (g.state, g.wait_reason)))
                .collect();
            let (mut sys, mut cgo, mut lock, mut running, mut idle, mut foreign, mut callback) =
                (0, 0, 0, 0, 0, 0, 0);
            for t in &cx.snap.threads {
                let g = t.goroutine.and_then(|id| state_of.get(&id)).copied();
                match (t.m, g) {
                    (None, _) => foreign += 1,
                    (Some(_), _) if t.origin == ThreadOrigin::CCallback => callback += 1,
                    (Some(_), _) if t.in_cgo => cgo += 1,
                    (Some(_), Some((_, Some(WaitReason::Cgo)))) => cgo += 1,
                    (Some(_), Some((GoState::Syscall, _))) => sys += 1,
                    (Some(_), Some(_)) => running += 1,
                    (Some(_), None) if t.locked_goroutine.is_some() => lock += 1,
                    (Some(_), None) => idle += 1,
                }
            }
            let mut line = format!(
                "threads: {sys} in system calls, {cgo} in cgo calls, {lock} locked to a blocked goroutine, {running} running Go code, {idle} idle Ms"
            );
            if callback > 0 {
                line.push_str(&format!(
                    ", {callback} created by C and bound to Go (callbacks)"
                ));
            }
            line.push_str(&format!(
                ", {foreign} not known to the Go runtime (created by C)"
            ));
            evidence.push(line);
            // Threads Go did not create, by name: a C library's pool shows up as one name.
            let mut names: Vec<(&str, u64)> = Vec::new();
            for t in cx
                .snap
                .threads
                .iter()
                .filter(|t| t.origin != ThreadOrigin::Go)
            {
                match names.iter_mut().find(|(n, _)| *n == t.name) {
                    Some(e) => e.1 += 1,
                    None => names.push((&t.name, 1)),
                }
            }
            if !names.is_empty() {
                names.sort_by_key(|e| std::cmp::Reverse(e.1));
                let list: Vec<String> = names
                    .iter()
                    .take(4)
                    .map(|(n, c)| format!("{c} \"{n}\""))
                    .collect();
                evidence.push(format!(
                    "threads created by C, by name: {}",
                    list.join(", ")
                ));
            }
        }
        let sites = cx.by_site(&holders);
        for (site, ms) in sites.iter().take(3) {
            let g = cx.g(ms[0]);
            let what = if g.locked_to_thread && g.state == GoState::Waiting {
                "locked and blocked"
            } else if g.wait_reason == Some(WaitReason::Cgo) {
                "in cgo calls"
            } else {
                "in system calls"
            };
            evidence.push(format!(
                "{} goroutines {what} at {}",
                cx.count(ms),
                cx.short(*site)
            ));
        }
        let sev = if threads >= CRITICAL {
            Severity::Critical
        } else {
            Severity::Warning
        };
        vec![cx.finding(
            FindingKind::ThreadExplosion,
            sev,
            format!("{threads} OS threads: far more than the program can run at once"),
            "Every goroutine blocked in a system call or cgo call (or locked to its thread) keeps an OS thread, and the runtime creates new ones to keep running Go code. Threads cost memory and scheduler time, and Go aborts the process at 10000 (debug.SetMaxThreads).".into(),
            &holders,
            sites.first().map(|s| s.0),
            evidence,
            "Stop goroutines from blocking in the kernel or in C without bound: use netpoller-backed I/O (os.File, net.Conn) with deadlines, and cap concurrent blocking calls with a worker pool or semaphore sized to what the system can serve.",
        )]
    }
}
