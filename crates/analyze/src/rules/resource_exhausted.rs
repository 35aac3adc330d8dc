//! `resource_exhausted`: goroutines queue for a bounded resource that is all taken — a database
//! or Redis connection pool, a semaphore's permits, a Transport's connections to one host.
//!
//! The wait is recognised from the stack through the library table (`gostall-libs`): the
//! goroutine is parked at the library's acquire point. Live, the library's own structure says
//! how full the resource is (limit, open, idle, held), and the goroutines that could give a
//! resource back are looked for: none inside the library's code other than the waiters means
//! the resources were taken and never returned (Rows or a Tx not closed, a connection never
//! released). Flags: live, a resource at its limit with waiters blocked at least a sample
//! apart; from a dump, three or more waiters at one acquire point, or any waiting for minutes.
//! Leaves alone: pools with spare capacity, a single waiter caught for a moment (normal under
//! load), unlimited pools.

use crate::context::plural;
use crate::{Context, Rule};
use gostall_libs::{BlockingPoint, Wait};
use gostall_model::{Finding, FindingKind, LibState, Severity};

/// The resource-exhaustion rule.
pub struct ResourceExhausted;

/// Live: a waiter counts when blocked at least this long (two reads a sample apart).
const MIN_WAIT_NS: u64 = 50_000_000;
/// From a dump: waiters at one acquire point that make a queue.
const QUEUE: u64 = 3;

impl Rule for ResourceExhausted {
    fn kind(&self) -> FindingKind {
        FindingKind::ResourceExhausted
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let members = cx.select(|_, f| {
            f.user_frame.is_some()
                && f.blocking.is_some_and(|(b, _)| {
                    matches!(b.wait, Wait::PoolAcquire | Wait::ConnSlot | Wait::Permit)
                })
        });
        let live = cx.snap.live.is_some();
        let mut out = Vec::new();
        for (site, ms) in cx.by_site(&members) {
            // One finding per blocking point (and, live, per structure) at this site.
            let mut by_point: Vec<(&'static BlockingPoint, Option<&LibState>, Vec<u32>)> =
                Vec::new();
            for &i in &ms {
                let g = cx.g(i);
                let Some((b, _)) = cx.facts(g).blocking else {
                    continue;
                };
                let state = cx
                    .snap
                    .lib_states
                    .iter()
                    .find(|s| s.function == b.function && s.waiters.contains(&g.id));
                match by_point.iter_mut().find(|(p, s, _)| {
                    p.function == b.function && s.map(|s| s.object) == state.map(|s| s.object)
                }) {
                    Some((_, _, v)) => v.push(i),
                    None => by_point.push((b, state, vec![i])),
                }
            }
            for (point, state, group) in by_point {
                let n = cx.count(&group);
                let long = group
                    .iter()
                    .filter(|&&i| cx.g(i).wait_ns.is_some_and(|w| w >= MIN_WAIT_NS))
                    .count();
                let minutes = cx.max_minutes(&group).unwrap_or(0);
                let full = state.map(at_limit);
                let flagged = if live {
                    // The structure says whether it is full; without it, a queue that stays.
                    match full {
                        Some(full) => full && long >= 1 && (n >= 2 || long as u64 == n),
                        None => long >= 2,
                    }
                } else {
                    n >= QUEUE || minutes >= 1
                };
                if !flagged {
                    continue;
                }
                out.push(finding(cx, point, state, &group, site));
            }
        }
        out
    }
}

/// The resource is taken up to its limit.
fn at_limit(s: &LibState) -> bool {
    let Some(limit) = s.limit.filter(|&l| l > 0) else {
        return false;
    };
    match (s.held, s.open, s.idle) {
        (Some(held), _, _) => held >= limit,
        (None, Some(open), idle) => open >= limit && idle.unwrap_or(0) == 0,
        // Only a limit (a per-host connection cap): the queue itself says it is full.
        (None, None, _) => true,
    }
}

fn finding(
    cx: &Context<'_>,
    point: &'static BlockingPoint,
    state: Option<&LibState>,
    group: &[u32],
    site: gostall_model::FrameId,
) -> Finding {
    let n = cx.count(group);
    let func = cx.func(cx.snap.tables.frame(site).function).to_string();
    let mut evidence = cx.library_wait_lines(group, site, point);
    let mut fullness = String::new();
    if let Some(s) = state {
        let limit = s.limit.unwrap_or(0);
        let line = match (s.held, s.open, s.idle) {
            (Some(held), _, _) => format!(
                "the semaphore has {held} of {limit} held{}",
                s.lib_waiters
                    .map(|w| format!(", {w} waiter{} queued", plural(w as u64)))
                    .unwrap_or_default()
            ),
            (None, Some(open), idle) => {
                let idle = idle.unwrap_or(0);
                format!(
                    "the pool has {} of {limit} connections in use, {idle} idle",
                    open - idle
                )
            }
            _ => format!("the limit is {limit}"),
        };
        fullness = line.clone();
        evidence.push(format!(
            "{line} ({} = {limit}; {} {:#x})",
            point.limit_setting, s.type_name, s.object
        ));
    }
    if state.is_none() {
        evidence.push(format!(
            "bounded by {}; {}",
            point.limit_setting,
            if cx.snap.live.is_some() {
                "its state could not be read from this binary"
            } else {
                "a dump does not show how much of it is taken — `gostall diagnose --pid` reads the library's own counters"
            }
        ));
    }
    // Who could give a resource back: goroutines inside the same library's code that are not
    // waiting at the acquire point.
    let library_pkg = package(point.function);
    let users: Vec<u32> = cx.select(|g, f| {
        f.blocking.map(|b| b.0.function) != Some(point.function)
            && cx
                .snap
                .tables
                .stack(g.stack)
                .iter()
                .any(|&fr| package(cx.func(cx.snap.tables.frame(fr).function)) == library_pkg)
    });
    let users: Vec<u32> = users
        .into_iter()
        .filter(|&i| cx.facts(cx.g(i)).app)
        .collect();
    let open_tx: Vec<u32> =
        cx.select(|g, _| {
            cx.snap.tables.stack(g.stack).iter().any(|&fr| {
                cx.func(cx.snap.tables.frame(fr).function) == gostall_libs::OPEN_TX_WATCHER
            })
        });
    if !open_tx.is_empty() && library_pkg == "database/sql" {
        let owners: Vec<String> = open_tx
            .iter()
            .filter_map(|&i| cx.g(i).created_by.and_then(|c| c.goroutine))
            .take(3)
            .map(|id| cx.describe_goroutine(id))
            .collect();
        evidence.push(format!(
            "{} transaction{} still open (goroutine{} in {}){}",
            open_tx.len(),
            if open_tx.len() == 1 { " is" } else { "s are" },
            plural(open_tx.len() as u64),
            gostall_libs::OPEN_TX_WATCHER,
            if owners.is_empty() {
                String::new()
            } else {
                format!(", begun by {}", owners.join("; "))
            }
        ));
    }
    if users.is_empty() {
        evidence.push(format!(
            "no goroutine is using one: none is inside {library_pkg} other than the waiters, so what is taken was never given back ({})",
            point.not_returned
        ));
    } else {
        evidence.push(format!(
            "{} hold{} or use {}: {}",
            cx.id_list(&users),
            if users.len() == 1 { "s" } else { "" },
            point.library,
            users
                .iter()
                .take(2)
                .map(|&i| cx.describe_goroutine(cx.g(i).id))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    let severity = if n >= 10 || cx.max_minutes(group).is_some_and(|m| m >= 1) {
        Severity::Critical
    } else {
        Severity::Warning
    };
    cx.finding(
        FindingKind::ResourceExhausted,
        severity,
        format!(
            "{n} goroutine{} in {func} wait for {}{}",
            plural(n),
            point.what,
            if fullness.is_empty() {
                String::new()
            } else {
                format!(": {fullness}")
            }
        ),
        format!(
            "{} is bounded ({}) and every unit of it is taken, so each new caller queues{}. Until one is given back, every request through this path hangs.",
            capitalise(point.what),
            point.limit_setting,
            if users.is_empty() {
                " — and no goroutine is using what is taken"
            } else {
                ""
            }
        ),
        group,
        Some(site),
        evidence,
        point.advice,
    )
}

/// `database/sql.(*DB).conn` → `database/sql`.
fn package(function: &str) -> &str {
    gostall_goruntime::package_of(function)
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
