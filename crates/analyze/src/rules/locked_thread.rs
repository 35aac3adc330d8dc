//! `locked_thread`: goroutines locked to an OS thread (`runtime.LockOSThread`) and blocked.
//!
//! A locked goroutine that blocks keeps its thread idle and unusable by anything else. Two or more
//! at one site, a wait that can never end, or a wait of minutes is a warning; a single one is info
//! (a GUI or render loop waiting for events is normal).

use crate::context::plural;
use crate::{Context, Rule};
use gostall_model::{Finding, FindingKind, GoState, Severity};

/// The locked-thread rule.
pub struct LockedThread;

impl Rule for LockedThread {
    fn kind(&self) -> FindingKind {
        FindingKind::LockedThread
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let members = cx.select(|g, f| {
            // Callbacks from C are locked to the C thread by the runtime itself: cgo_blocked
            // reports those.
            f.user_frame.is_some() && g.locked_to_thread && g.state == GoState::Waiting
        });
        let members: Vec<u32> = members
            .into_iter()
            .filter(|&i| !cx.is_cgo_callback(cx.g(i)))
            .collect();
        let mut out = Vec::new();
        for (site, ms) in cx.by_site(&members) {
            let n = cx.count(&ms);
            let g = cx.g(ms[0]);
            let forever = g.wait_reason.is_some_and(|r| r.is_forever());
            let sev = if n >= 2 || forever || cx.max_minutes(&ms).is_some() {
                Severity::Warning
            } else {
                Severity::Info
            };
            let reason = g.wait_reason.map(|r| r.as_str()).unwrap_or("waiting");
            let func = cx.func(cx.snap.tables.frame(site).function);
            out.push(cx.finding(
                FindingKind::LockedThread,
                sev,
                format!("{n} goroutine{} locked to OS threads and blocked in {func}", plural(n)),
                format!("These goroutines called runtime.LockOSThread and now wait ({reason}). A locked goroutine owns its thread: while it waits, that thread does nothing else, and the runtime needs another thread for everything else."),
                &ms,
                Some(site),
                vec![format!("{} in {reason}, locked to thread, at {}{}", cx.id_list(&ms), cx.short(site), cx.minutes_suffix(&ms))],
                "Lock only around the work that needs the thread (defer runtime.UnlockOSThread()), and make the locked goroutine wait on something that will arrive — or exit, so its thread is released.",
            ));
        }
        out
    }
}
