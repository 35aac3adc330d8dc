//! `lock_contention`: many goroutines queue on the same lock call site; with a mutex or block
//! profile, where the delay goes.
//!
//! A site with at least [`WARN`] waiters is a warning (critical from [`CRITICAL`]). Evidence names
//! the goroutines that run the same code without waiting for the lock — the likely holders — and what
//! they are doing (a holder sleeping or doing I/O inside the critical section is the classic cause).
//! Lock waiters that form a lock-order cycle are reported by `deadlock` instead.
//!
//! Locks held in a database count too: goroutines waiting for the database to answer (a known
//! driver blocking point, `gostall-libs`) while a goroutine of the program keeps a transaction
//! open and is itself blocked — the classic row lock held across a wait in Go.

use crate::context::plural;
use crate::{Context, Rule};
use gostall_goruntime as rt;
use gostall_model::{ContentionKind, Finding, FindingKind, Severity, WaitReason};

/// A goroutine of the program that keeps a database transaction open while it is blocked on
/// something else (and so cannot commit): the likely holder of the database's locks. Returns
/// (holder, the watcher goroutine of its transaction).
pub(crate) fn database_lock_holder(cx: &Context<'_>) -> Option<(u64, u64)> {
    cx.open_transactions().into_iter().find(|&(owner, _)| {
        cx.by_id.get(&owner).is_some_and(|&i| {
            let g = cx.g(i);
            cx.facts(g).app && !cx.progressing(g) && cx.facts(g).blocking.is_none()
        })
    })
}

/// Goroutines waiting for the database's answer while a blocked goroutine of the program keeps
/// a transaction open.
fn database_locks(cx: &Context<'_>) -> Vec<Finding> {
    let Some((holder, watcher)) = database_lock_holder(cx) else {
        return Vec::new();
    };
    let live = cx.snap.live.is_some();
    let members = cx.select(|g, f| {
        f.app
            && f.blocking
                .is_some_and(|(b, _)| b.wait == gostall_libs::Wait::DbAnswer)
            && (!live || g.wait_ns.is_some_and(|w| w >= 50_000_000))
    });
    let mut out = Vec::new();
    for (site, ms) in cx.by_site(&members) {
        let n = cx.count(&ms);
        let Some((point, _)) = cx.facts(cx.g(ms[0])).blocking else {
            continue;
        };
        let func = cx.func(cx.snap.tables.frame(site).function);
        let holder_desc = cx.describe_goroutine(holder);
        out.push(cx.finding(
            FindingKind::LockContention,
            if n >= WARN { Severity::Critical } else { Severity::Warning },
            format!(
                "{n} goroutine{} in {func} wait for the database, likely on a lock held by an open transaction of goroutine {holder}",
                plural(n)
            ),
            format!(
                "These goroutines sent a statement and wait for {}, which does not come: the database is waiting too, most likely for a row or table lock. A goroutine of this program keeps a transaction open and is blocked on something else, so it can neither commit nor roll back — and the lock is never released.",
                point.what
            ),
            &ms,
            Some(site),
            cx.library_wait_lines(&ms, site, point)
                .into_iter()
                .chain([
                    format!(
                        "a transaction is open (goroutine {watcher} in {}), begun by {holder_desc}",
                        gostall_libs::OPEN_TX_WATCHER
                    ),
                ])
                .collect(),
            point.advice,
        ));
    }
    out
}

/// The lock-contention rule.
pub struct LockContention;

/// Waiters at one site that make a warning.
pub const WARN: u64 = 4;
/// Waiters at one site that make it critical.
pub const CRITICAL: u64 = 100;

impl Rule for LockContention {
    fn kind(&self) -> FindingKind {
        FindingKind::LockContention
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let mut out = database_locks(cx);
        // Waiters proved leaked wait for a lock nobody will ever release: that is a leak (or a
        // deadlock), reported as such, not a slow holder.
        let waiters = cx.select(|g, f| {
            f.user_frame.is_some()
                && g.wait_reason.is_some_and(WaitReason::is_lock)
                && !cx.proven_leaked.contains(&g.id)
        });
        let profile = profile_evidence(cx);
        for (site, ms) in cx.by_site(&waiters) {
            let n = cx.count(&ms);
            if n < WARN {
                continue;
            }
            let site_func = cx.snap.tables.frame(site).function;
            let reason = cx.g(ms[0]).wait_reason.unwrap_or(WaitReason::MutexLock);
            let mut evidence = vec![format!(
                "{} blocked in {} at {}{}",
                cx.id_list(&ms),
                reason.as_str(),
                cx.short(site),
                cx.minutes_suffix(&ms)
            )];
            if let Some(line) = cx.waited_objects(&ms, "lock") {
                evidence.push(line);
            }
            // Likely holders: goroutines inside the same function that are not waiting for a lock.
            let holders: Vec<u32> = cx
                .by_user_func
                .get(&site_func)
                .map(|gs| {
                    gs.iter()
                        .copied()
                        .filter(|&h| !cx.g(h).wait_reason.is_some_and(WaitReason::is_lock))
                        .collect()
                })
                .unwrap_or_default();
            let mut holder_desc = String::new();
            for &h in holders.iter().take(3) {
                let hg = cx.g(h);
                let what = hg
                    .wait_reason
                    .map(|r| r.as_str().to_string())
                    .unwrap_or_else(|| format!("{:?}", hg.state).to_lowercase());
                let at = cx
                    .facts(hg)
                    .user_frame
                    .map(|f| cx.short(f))
                    .unwrap_or_default();
                let inner = cx
                    .snap
                    .frames(hg)
                    .find(|f| rt::code_origin(f.function) != rt::CodeOrigin::Runtime)
                    .map(|f| f.function.to_string())
                    .unwrap_or_default();
                evidence.push(format!(
                    "goroutine {} is also inside {} and not waiting for the lock: now at {at}, in {what} ({inner}) — likely the holder",
                    hg.id,
                    cx.func(site_func)
                ));
                if holder_desc.is_empty() {
                    holder_desc = format!(" The likely holder (goroutine {}) is in {what} inside the critical section.", hg.id);
                }
            }
            evidence.extend(profile.iter().cloned());
            let sev = if n >= CRITICAL || cx.max_minutes(&ms).is_some_and(|m| m >= 5) {
                Severity::Critical
            } else {
                Severity::Warning
            };
            out.push(cx.finding(
                FindingKind::LockContention,
                sev,
                format!("{n} goroutine{} queue for the same lock in {}", plural(n), cx.func(site_func)),
                format!("Goroutines pile up acquiring a lock at one call site: whoever holds it keeps it too long, so every request through this path is serialised behind it.{holder_desc}"),
                &ms,
                Some(site),
                evidence,
                "Do not hold the lock across slow work (I/O, network calls, sleeps, channel operations): copy what you need under the lock, unlock, then do the slow part. Consider a sync.RWMutex for read-mostly data, sharding the lock, or singleflight for cache fills.",
            ));
        }
        if out.is_empty() {
            if let Some(f) = profile_only(cx) {
                out.push(f);
            }
        }
        out
    }
}

/// Top mutex-profile sites by delay, as evidence lines.
fn profile_evidence(cx: &Context<'_>) -> Vec<String> {
    let total: u64 = cx
        .snap
        .contention
        .iter()
        .filter(|c| c.kind == ContentionKind::Mutex)
        .map(|c| c.delay_ns)
        .sum();
    if total == 0 {
        return Vec::new();
    }
    top_sites(cx, ContentionKind::Mutex)
        .into_iter()
        .take(3)
        .map(|(site, delay, count)| {
            format!(
                "mutex profile: {:.0}% of {} contention delay ({count} events) at {site}",
                delay as f64 * 100.0 / total as f64,
                human_ns(total)
            )
        })
        .collect()
}

/// Contention samples aggregated by innermost user frame: (site, delay, count), largest first.
fn top_sites(cx: &Context<'_>, kind: ContentionKind) -> Vec<(String, u64, u64)> {
    let t = &cx.snap.tables;
    let mut by: rustc_hash::FxHashMap<gostall_model::FrameId, (u64, u64)> = Default::default();
    for c in cx.snap.contention.iter().filter(|c| c.kind == kind) {
        let site = t
            .stack(c.stack)
            .iter()
            .copied()
            .find(|&f| rt::is_user_function(t.str(t.frame(f).function)));
        if let Some(site) = site {
            let e = by.entry(site).or_default();
            e.0 += c.delay_ns;
            e.1 += c.count;
        }
    }
    let mut v: Vec<_> = by.into_iter().collect();
    v.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(&b.0)));
    v.into_iter()
        .map(|(f, (d, c))| (cx.short(f), d, c))
        .collect()
}

/// With only a mutex profile (no goroutine states), report where the delay goes when it is large.
fn profile_only(cx: &Context<'_>) -> Option<Finding> {
    let t = &cx.snap.tables;
    let mut best: Option<(gostall_model::FrameId, u64, u64)> = None;
    let mut by: rustc_hash::FxHashMap<gostall_model::FrameId, (u64, u64)> = Default::default();
    for c in cx
        .snap
        .contention
        .iter()
        .filter(|c| c.kind == ContentionKind::Mutex)
    {
        if let Some(site) = t
            .stack(c.stack)
            .iter()
            .copied()
            .find(|&f| rt::is_user_function(t.str(t.frame(f).function)))
        {
            let e = by.entry(site).or_default();
            e.0 += c.delay_ns;
            e.1 += c.count;
        }
    }
    for (f, (d, c)) in by {
        if best.is_none_or(|b| d > b.1) {
            best = Some((f, d, c));
        }
    }
    let (site, delay, count) = best?;
    let sev = if delay >= 1_000_000_000 {
        Severity::Warning
    } else {
        Severity::Info
    };
    Some(cx.finding(
        FindingKind::LockContention,
        sev,
        format!("Most mutex contention is caused at {}", cx.func(t.frame(site).function)),
        "The mutex profile records how long goroutines waited for locks released at each call site; this one caused the most delay.".into(),
        &[],
        Some(site),
        vec![format!("{} total delay over {count} contention events at {}", human_ns(delay), cx.short(site))],
        "Shorten the critical section at this site: move slow work out from under the lock, or split the lock.",
    ))
}

/// `1.2s`, `340ms`, `15µs`.
pub fn human_ns(ns: u64) -> String {
    let f = ns as f64;
    if f >= 1e9 {
        format!("{:.1}s", f / 1e9)
    } else if f >= 1e6 {
        format!("{:.0}ms", f / 1e6)
    } else if f >= 1e3 {
        format!("{:.0}µs", f / 1e3)
    } else {
        format!("{ns}ns")
    }
}
