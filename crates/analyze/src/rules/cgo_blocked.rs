//! `cgo_blocked`: goroutines inside cgo calls.
//!
//! Each goroutine in a cgo call holds an OS thread that the Go scheduler cannot use. Several at one
//! call site, or one for minutes, is a warning; a single short call is only info (a healthy program
//! that uses cgo may be caught mid-call).

use crate::context::plural;
use crate::{Context, Rule};
use gostall_model::{Finding, FindingKind, Severity, WaitReason};

/// The cgo rule.
pub struct CgoBlocked;

impl Rule for CgoBlocked {
    fn kind(&self) -> FindingKind {
        FindingKind::CgoBlocked
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let t = &cx.snap.tables;
        let members = cx.select(|g, _| g.wait_reason == Some(WaitReason::Cgo));
        let mut out = Vec::new();
        for (site, ms) in cx.by_site(&members) {
            let n = cx.count(&ms);
            let mins = cx.max_minutes(&ms);
            let sev = if mins.is_some_and(|m| m >= 5) || n >= 50 {
                Severity::Critical
            } else if n >= 2 || mins.is_some() {
                Severity::Warning
            } else {
                Severity::Info
            };
            let cfunc = cx
                .facts(cx.g(ms[0]))
                .cgo_fn
                .map(|s| {
                    let name = t.str(s);
                    match name.find("._Cfunc_") {
                        Some(i) => format!("C.{}", &name[i + 8..]),
                        None => name.to_string(),
                    }
                })
                .unwrap_or_else(|| "a C function".into());
            let func = cx.func(t.frame(site).function);
            out.push(cx.finding(
                FindingKind::CgoBlocked,
                sev,
                format!("{n} goroutine{} stuck in cgo call {cfunc} from {func}", plural(n)),
                format!("These goroutines are inside {cfunc}: while C code runs, each holds an OS thread and Go cannot preempt, time out or cancel it. If the C side blocks (a lock, a socket, a slow library), the goroutines and their callers wait with it."),
                &ms,
                Some(site),
                vec![format!("{} in syscall via runtime.cgocall → {cfunc} at {}{}", cx.id_list(&ms), cx.short(site), cx.minutes_suffix(&ms))],
                "Find why the C call blocks (gostall diagnose --pid shows the C stack). Give the C library a timeout if it has one; bound concurrent cgo calls with a worker pool or semaphore so a hung library cannot take every thread; prefer a pure-Go implementation where one exists.",
            ));
        }
        out
    }
}
