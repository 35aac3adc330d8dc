//! `net_io_wait`: application code waiting on a network read or write to a peer.
//!
//! Flags goroutines whose own code called `Read`/`Write` on a connection and is parked in `IO wait`
//! — a client waiting for an upstream that does not answer. Three or more at one site, or any for
//! minutes, is a warning; one or two is info. Leaves alone: listeners in `Accept`, connections
//! served by `net/http` and other server loops (idle keep-alive connections are normal), and
//! per-connection handlers started by an accept loop that is still running.

use crate::context::plural;
use crate::{Context, Rule};
use gostall_goruntime as rt;
use gostall_model::{Finding, FindingKind, Severity, WaitReason};

/// Live: a waiter counts when blocked at least this long (two reads a sample apart).
const MIN_WAIT_NS: u64 = 50_000_000;

/// Goroutines that `lock_contention` explains: they wait for a database that waits on a lock
/// an open transaction of the program holds.
fn database_lock_waiters(cx: &Context<'_>) -> rustc_hash::FxHashSet<u64> {
    if crate::rules::lock_contention::database_lock_holder(cx).is_none() {
        return Default::default();
    }
    cx.snap
        .goroutines
        .iter()
        .filter(|g| {
            cx.facts(g)
                .blocking
                .is_some_and(|(b, _)| b.wait == gostall_libs::Wait::DbAnswer)
        })
        .map(|g| g.id)
        .collect()
}

/// Application goroutines waiting inside a library for a peer's answer to a request already
/// sent (an HTTP response, a gRPC call's headers): the library's knowledge says what they wait
/// for, the connections the library reads from say whether anything bounds the wait.
fn peer_responses(cx: &Context<'_>) -> Vec<Finding> {
    use gostall_libs::Wait;
    let live = cx.snap.live.is_some();
    let members = cx.select(|_, f| {
        f.app
            && f.blocking
                .is_some_and(|(b, _)| b.wait == Wait::PeerResponse)
    });
    let mut out = Vec::new();
    for (site, ms) in cx.by_site(&members) {
        let Some((point, _)) = cx.facts(cx.g(ms[0])).blocking else {
            continue;
        };
        let ms: Vec<u32> = ms
            .into_iter()
            .filter(|&i| cx.facts(cx.g(i)).blocking.map(|b| b.0.function) == Some(point.function))
            .collect();
        let n = cx.count(&ms);
        let long = ms
            .iter()
            .filter(|&&i| cx.g(i).wait_ns.is_some_and(|w| w >= MIN_WAIT_NS))
            .count() as u64;
        let mins = cx.max_minutes(&ms);
        let flagged = if live {
            long >= 2
                || (long == 1 && n == 1 && cx.g(ms[0]).wait_ns.is_some_and(|w| w >= 1_000_000_000))
        } else {
            n >= 3 || mins.is_some()
        };
        if !flagged {
            continue;
        }
        let lib = gostall_goruntime::package_of(point.function);
        // The library's own connections: goroutines with no application code that wait on the
        // network inside the same library (net/http's read loops, gRPC's readers).
        let conns: Vec<&gostall_model::NetWait> = cx
            .snap
            .goroutines
            .iter()
            .filter(|g| !cx.facts(g).app && g.wait_reason == Some(WaitReason::IoWait))
            .filter(|g| {
                let t = &cx.snap.tables;
                t.stack(g.stack).iter().any(|&f| {
                    let name = t.str(t.frame(f).function);
                    gostall_goruntime::package_of(name).starts_with(
                        lib.split('/')
                            .take(3)
                            .collect::<Vec<_>>()
                            .join("/")
                            .as_str(),
                    )
                })
            })
            .filter_map(|g| g.net.as_deref())
            .collect();
        let no_deadline = conns.iter().filter(|w| w.deadline_in_ns.is_none()).count();
        let mut peers: Vec<&str> = conns.iter().filter_map(|w| w.peer.as_deref()).collect();
        peers.sort_unstable();
        peers.dedup();
        let mut evidence = cx.library_wait_lines(&ms, site, point);
        if !conns.is_empty() {
            evidence.push(format!(
                "{} of {} {} connection{} wait in a read with no deadline{}",
                no_deadline,
                conns.len(),
                point.library,
                plural(conns.len() as u64),
                if peers.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", to {}",
                        peers.iter().take(3).copied().collect::<Vec<_>>().join(", ")
                    )
                }
            ));
        }
        evidence.push(format!(
            "nothing bounds the wait: likely no {} is set",
            point.limit_setting
        ));
        let sev = if n >= 10 || mins.is_some_and(|m| m >= 1) {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let func = cx.func(cx.snap.tables.frame(site).function);
        out.push(cx.finding(
            FindingKind::NetIoWait,
            sev,
            format!(
                "{n} goroutine{} in {func} wait for {} with no deadline",
                plural(n),
                point.what
            ),
            format!(
                "The request went out and the peer never answered; nothing bounds the wait ({} is not set), so every caller through this path hangs with it.",
                point.limit_setting
            ),
            &ms,
            Some(site),
            evidence,
            point.advice,
        ));
    }
    out
}

/// The network-wait rule.
pub struct NetIoWait;

impl Rule for NetIoWait {
    fn kind(&self) -> FindingKind {
        FindingKind::NetIoWait
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let t = &cx.snap.tables;
        // Functions that run accept loops: connections they start are server-side.
        let acceptors: rustc_hash::FxHashSet<_> = cx
            .snap
            .goroutines
            .iter()
            .filter(|g| cx.facts(g).net_op == Some("accept"))
            .flat_map(|g| cx.facts(g).user_funcs.iter().copied())
            .collect();
        let mut out = peer_responses(cx);
        let claimed = database_lock_waiters(cx);
        let members = cx.select(|g, f| {
            if !f.app || g.wait_reason != Some(WaitReason::IoWait) || claimed.contains(&g.id) {
                return false;
            }
            // Live, a read caught in flight is not a wait: it must hold across two reads.
            if cx.snap.live.is_some() && g.wait_ns.is_none_or(|w| w < MIN_WAIT_NS) {
                return false;
            }
            if !matches!(f.net_op, Some("read" | "write")) {
                return false;
            }
            // Live reads know the socket: a connection accepted by this process is server-side.
            if let Some(n) = &g.net {
                return !n.accepted && n.state.as_deref() != Some("LISTEN");
            }
            let server_side = g.created_by.is_some_and(|c| {
                let creator = t.frame(c.frame).function;
                acceptors.contains(&creator)
                    || rt::code_origin(t.str(creator)) != rt::CodeOrigin::User
            });
            !server_side
        });
        for (site, ms) in cx.by_site(&members) {
            let n = cx.count(&ms);
            let mins = cx.max_minutes(&ms);
            let nets: Vec<&gostall_model::NetWait> =
                ms.iter().filter_map(|&i| cx.g(i).net.as_deref()).collect();
            let no_deadline = nets.iter().filter(|w| w.deadline_in_ns.is_none()).count();
            let all_have_deadline = !nets.is_empty() && no_deadline == 0;
            let sev = if mins.is_some_and(|m| m >= 10) && !all_have_deadline {
                Severity::Critical
            } else if all_have_deadline {
                // Every wait will end at its deadline.
                Severity::Info
            } else if n >= 3 || mins.is_some() {
                Severity::Warning
            } else {
                Severity::Info
            };
            let op = nets
                .first()
                .map(|w| w.op.as_str())
                .or(cx.facts(cx.g(ms[0])).net_op)
                .unwrap_or("read");
            let func = cx.func(t.frame(site).function);
            let mut evidence = vec![format!(
                "{} in IO wait ({op}) at {}{}",
                cx.id_list(&ms),
                cx.short(site),
                cx.minutes_suffix(&ms)
            )];
            if !nets.is_empty() {
                if no_deadline > 0 {
                    evidence.push(format!(
                        "{no_deadline} of {} have no {op} deadline set: the wait never times out",
                        nets.len()
                    ));
                }
                let mut shown = 0;
                for &i in &ms {
                    let g = cx.g(i);
                    let Some(w) = g.net.as_deref() else { continue };
                    if shown == 3 {
                        break;
                    }
                    shown += 1;
                    let peer = w
                        .peer
                        .as_deref()
                        .map(|p| format!(" → {p}"))
                        .unwrap_or_default();
                    let state = w
                        .state
                        .as_deref()
                        .map(|s| format!(" ({s})"))
                        .unwrap_or_default();
                    let deadline = match w.deadline_in_ns {
                        None => "no deadline".to_string(),
                        Some(d) if d < 0 => "deadline passed".to_string(),
                        Some(d) => format!("deadline in {:.1}s", d as f64 / 1e9),
                    };
                    evidence.push(format!(
                        "goroutine {}: fd {} {}{peer}{state}, {deadline}",
                        g.id, w.fd, w.kind
                    ));
                }
                if nets.len() > shown {
                    evidence.push(format!(
                        "… and {} more connections (--format json lists them)",
                        nets.len() - shown
                    ));
                }
            }
            let title = if no_deadline > 0 && no_deadline == nets.len() {
                format!(
                    "{n} goroutine{} waiting on a network {op} with no deadline in {func}",
                    plural(n)
                )
            } else {
                format!(
                    "{n} goroutine{} waiting on a network {op} in {func}",
                    plural(n)
                )
            };
            out.push(cx.finding(
                FindingKind::NetIoWait,
                sev,
                title,
                format!("Application code is blocked on a network {op}, waiting for a peer. Without a deadline this wait has no end: if the peer hangs or the packets are lost, so does every caller."),
                &ms,
                Some(site),
                evidence,
                "Set a deadline before each blocking call (conn.SetReadDeadline / SetWriteDeadline, or SetDeadline), or use a context-aware API; choose timeouts from your latency budget and handle the timeout error.",
            ));
        }
        out
    }
}
