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
        let members = cx.select(|g, f| {
            if f.user_frame.is_none() || g.wait_reason != Some(WaitReason::IoWait) {
                return false;
            }
            if !matches!(f.net_op, Some("read" | "write")) {
                return false;
            }
            let server_side = g.created_by.is_some_and(|c| {
                let creator = t.frame(c.frame).function;
                acceptors.contains(&creator)
                    || rt::code_origin(t.str(creator)) != rt::CodeOrigin::User
            });
            !server_side
        });
        let mut out = Vec::new();
        for (site, ms) in cx.by_site(&members) {
            let n = cx.count(&ms);
            let mins = cx.max_minutes(&ms);
            let sev = if mins.is_some_and(|m| m >= 10) {
                Severity::Critical
            } else if n >= 3 || mins.is_some() {
                Severity::Warning
            } else {
                Severity::Info
            };
            let op = cx.facts(cx.g(ms[0])).net_op.unwrap_or("read");
            let func = cx.func(t.frame(site).function);
            out.push(cx.finding(
                FindingKind::NetIoWait,
                sev,
                format!("{n} goroutine{} waiting on a network {op} in {func}", plural(n)),
                format!("Application code is blocked on a network {op}, waiting for a peer. Without a deadline this wait has no end: if the peer hangs or the packets are lost, so does every caller."),
                &ms,
                Some(site),
                vec![format!("{} in IO wait ({op}) at {}{}", cx.id_list(&ms), cx.short(site), cx.minutes_suffix(&ms))],
                "Set a deadline before each blocking call (conn.SetReadDeadline / SetWriteDeadline, or SetDeadline), or use a context-aware API; choose timeouts from your latency budget and handle the timeout error.",
            ));
        }
        out
    }
}
