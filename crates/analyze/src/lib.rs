//! Diagnosis rules over a [`Snapshot`]: one module per pathology, each producing [`Finding`]s with a
//! stable kind, the goroutines involved, the root-cause frame in the user's code, evidence and advice.
//!
//! Rules read only the model and ask `gostall-goruntime` anything runtime-specific. A healthy
//! program (idle servers, worker pools waiting for jobs, GC workers, timers, signal handling) must get
//! no warning or critical finding; each rule documents what it deliberately ignores.
#![deny(missing_docs)]

mod context;
mod groups;
pub mod rules;

pub use context::{human_bytes, human_duration, Context, GInfo};
pub use groups::{group_goroutines, Group};

use gostall_model::{Finding, FindingKind, Snapshot};

/// A diagnosis rule.
pub trait Rule: Sync {
    /// The kind of finding this rule produces.
    fn kind(&self) -> FindingKind;
    /// Examines the snapshot and returns findings (possibly none).
    fn check(&self, cx: &Context<'_>) -> Vec<Finding>;
}

/// The result of analysing a snapshot.
#[derive(Debug)]
pub struct Analysis {
    /// Findings, most important first.
    pub findings: Vec<Finding>,
    /// Goroutines grouped by identical stack and state, largest group first.
    pub groups: Vec<Group>,
}

/// Every rule, in a fixed order.
pub fn all_rules() -> Vec<Box<dyn Rule>> {
    use rules::*;
    vec![
        Box::new(deadlock::Deadlock),
        Box::new(goroutine_leak::GoroutineLeak),
        Box::new(lock_contention::LockContention),
        Box::new(resource_exhausted::ResourceExhausted),
        Box::new(channel_blocked::ChannelBlocked),
        Box::new(cgo_blocked::CgoBlocked),
        Box::new(syscall_blocked::SyscallBlocked),
        Box::new(net_io_wait::NetIoWait),
        Box::new(thread_explosion::ThreadExplosion),
        Box::new(scheduler_starvation::SchedulerStarvation),
        Box::new(locked_thread::LockedThread),
        Box::new(c_memory_growth::CMemoryGrowth),
        Box::new(signal_conflict::SignalConflict),
    ]
}

/// Runs every rule and ranks the findings: critical before warning before info, then by the number
/// of goroutines involved, then by kind.
pub fn analyze(snap: &Snapshot) -> Analysis {
    let cx = Context::new(snap);
    let mut findings: Vec<Finding> = all_rules().iter().flat_map(|r| r.check(&cx)).collect();
    drop_subsumed(&mut findings);
    rank(&mut findings);
    Analysis {
        findings,
        groups: group_goroutines(snap),
    }
}

/// Sorts findings most important first.
pub fn rank(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.goroutine_count.cmp(&a.goroutine_count))
            .then(a.kind.cmp(&b.kind))
            .then(a.title.cmp(&b.title))
    });
}

/// A finding whose goroutines are all explained by a more specific one says nothing new: a lock
/// pile-up inside a deadlock, a proved leak of goroutines queued for an exhausted pool or caught
/// in a deadlock (the proof then becomes evidence of the finding that explains them).
fn drop_subsumed(findings: &mut Vec<Finding>) {
    let explained_by = |kinds: &[FindingKind]| -> std::collections::HashSet<u64> {
        findings
            .iter()
            .filter(|f| kinds.contains(&f.kind))
            .flat_map(|f| f.goroutines.iter().copied())
            .collect()
    };
    let in_deadlock = explained_by(&[FindingKind::Deadlock]);
    let specific = explained_by(&[FindingKind::Deadlock, FindingKind::ResourceExhausted]);
    let covered = |f: &Finding, set: &std::collections::HashSet<u64>| {
        !f.goroutines.is_empty() && f.goroutines.iter().all(|g| set.contains(g))
    };
    let proved: Vec<Finding> = findings
        .iter()
        .filter(|f| f.kind == FindingKind::GoroutineLeak && covered(f, &specific))
        .cloned()
        .collect();
    findings.retain(|f| match f.kind {
        FindingKind::LockContention => !covered(f, &in_deadlock),
        FindingKind::GoroutineLeak => !covered(f, &specific),
        _ => true,
    });
    for leak in proved {
        if let Some(f) = findings.iter_mut().find(|f| {
            f.kind == FindingKind::ResourceExhausted
                && leak
                    .goroutines
                    .iter()
                    .any(|g| f.goroutines.binary_search(g).is_ok())
        }) {
            f.evidence.push(format!(
                "proved from memory: nothing that can still run can give one back — {} of these goroutines are leaked for good",
                leak.goroutine_count
            ));
        }
    }
}
