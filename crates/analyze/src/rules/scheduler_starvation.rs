//! `scheduler_starvation`: runnable goroutines wait for a P behind goroutines that do not yield.
//!
//! Flags a snapshot where at least [`BACKLOG`] goroutines are runnable and at least four times as many
//! as are running, counting only runnable goroutines that were woken or never started — not ones the
//! scheduler preempted (`asyncPreempt`, `Gosched` on their stack), which is ordinary time-slicing of
//! CPU-bound work. Names the running goroutines whose stacks the dump shows.

use crate::{Context, Rule};
use gostall_model::{Finding, FindingKind, GoState, Severity};

/// The starvation rule.
pub struct SchedulerStarvation;

/// Runnable goroutines waiting for a P that make a finding.
pub const BACKLOG: u64 = 20;

impl Rule for SchedulerStarvation {
    fn kind(&self) -> FindingKind {
        FindingKind::SchedulerStarvation
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let running = cx.select(|g, _| g.state == GoState::Running);
        let waiting = cx.select(|g, f| g.state == GoState::Runnable && !f.yielded);
        let (r, w) = (cx.count(&running), cx.count(&waiting));
        // Live: Ps whose goroutine ran through the whole sample interval with work queued.
        let global = cx.snap.scheduler.as_ref().map_or(0, |s| s.global_runq);
        let stuck: Vec<&gostall_model::ProcFacts> = cx
            .snap
            .procs
            .iter()
            .filter(|p| {
                p.status == "running"
                    && p.schedtick_later == Some(p.schedtick)
                    && (p.runq_len > 0 || global > 0)
            })
            .collect();
        if stuck.is_empty() && (r == 0 || w < BACKLOG || w < 4 * r) {
            return Vec::new();
        }
        let visible: Vec<u32> = running
            .iter()
            .copied()
            .filter(|&i| cx.facts(cx.g(i)).user_frame.is_some())
            .collect();
        let sites = cx.by_site(&visible);
        let mut evidence = vec![format!(
            "{w} goroutines runnable and waiting for a P; {r} running"
        )];
        if let Some(n) = cx.snap.process.gomaxprocs {
            evidence.push(format!("GOMAXPROCS is {n}"));
        }
        for (site, ms) in &sites {
            evidence.push(format!("{} running in {}", cx.id_list(ms), cx.short(*site)));
        }
        let hidden = running.len() - visible.len();
        if hidden > 0 {
            evidence.push(format!("{hidden} running goroutine(s) on other threads: stacks unavailable in this dump (gostall diagnose --pid shows them)"));
        }
        let mut members = running.clone();
        members.extend(&waiting);
        let hog = sites
            .first()
            .map(|s| cx.func(cx.snap.tables.frame(s.0).function).to_string());
        vec![cx.finding(
            FindingKind::SchedulerStarvation,
            Severity::Warning,
            format!(
                "{w} runnable goroutines starved behind {r} running {}",
                hog.map(|h| format!("goroutine(s) in {h}")).unwrap_or_else(|| "goroutine(s)".into())
            ),
            "Goroutines that were woken or created are waiting for a processor while the running goroutines keep every P. Loops without function calls cannot be preempted when asynchronous preemption is off (GODEBUG=asyncpreemptoff=1) or blocked by a signal mask, so timers, network handlers and the GC wait behind them.".into(),
            &members,
            sites.first().map(|s| s.0),
            evidence,
            "Make long loops yield: call runtime.Gosched() periodically or break the work into chunks; keep asynchronous preemption on (remove GODEBUG=asyncpreemptoff=1, and check C code does not block SIGURG); limit CPU-bound goroutines to fewer than GOMAXPROCS.",
        )]
    }
}
