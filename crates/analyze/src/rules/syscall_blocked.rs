//! `syscall_blocked`: goroutines in raw blocking system calls (not the netpoller), each holding an
//! OS thread.
//!
//! At least [`WARN`] goroutines at one site, or one for minutes, is a warning; fewer is info (file
//! reads are short blocking syscalls in healthy programs). cgo calls are `cgo_blocked`'s.

use crate::context::plural;
use crate::{Context, Rule};
use gostall_model::{Finding, FindingKind, GoState, Severity, WaitReason};

/// The raw-syscall rule.
pub struct SyscallBlocked;

/// Goroutines in syscalls at one site that make a warning.
pub const WARN: u64 = 3;

impl Rule for SyscallBlocked {
    fn kind(&self) -> FindingKind {
        FindingKind::SyscallBlocked
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let t = &cx.snap.tables;
        let members =
            cx.select(|g, _| g.state == GoState::Syscall && g.wait_reason != Some(WaitReason::Cgo));
        let mut out = Vec::new();
        for (site, ms) in cx.by_site(&members) {
            let n = cx.count(&ms);
            let mins = cx.max_minutes(&ms);
            let sev = if mins.is_some_and(|m| m >= 5) || n >= 100 {
                Severity::Critical
            } else if n >= WARN || mins.is_some() {
                Severity::Warning
            } else {
                Severity::Info
            };
            let call = cx
                .facts(cx.g(ms[0]))
                .syscall_fn
                .map(|s| t.str(s).to_string())
                .unwrap_or_else(|| "a system call".into());
            let func = cx.func(t.frame(site).function);
            out.push(cx.finding(
                FindingKind::SyscallBlocked,
                sev,
                format!("{n} goroutine{} blocked in {call} from {func}", plural(n)),
                "These goroutines sit in a blocking system call outside Go's network poller. Each one pins an OS thread; the runtime starts new threads to keep running other goroutines, so the thread count grows with every stuck call.".into(),
                &ms,
                Some(site),
                vec![format!("{} in syscall ({call}) at {}{}", cx.id_list(&ms), cx.short(site), cx.minutes_suffix(&ms))],
                "Use non-blocking I/O that goes through the netpoller (os.File on pipes and sockets, net.Conn) with deadlines instead of raw syscall.Read/Write on blocking descriptors; bound the number of goroutines that may block in syscalls at once.",
            ));
        }
        out
    }
}
