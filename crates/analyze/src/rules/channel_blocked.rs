//! `channel_blocked`: goroutines piling up on one channel send — the consumer is stuck or too slow.
//!
//! Flags a send site with at least [`WARN`] blocked senders (critical from [`CRITICAL`]).
//! Leaves alone: receivers waiting for work (idle consumers and worker pools are normal) and
//! abandoned senders, which `goroutine_leak` reports.

use crate::context::plural;
use crate::rules::goroutine_leak::is_closure_of;
use crate::{Context, Rule};
use gostall_model::{Finding, FindingKind, Severity, WaitReason};

/// The channel pile-up rule.
pub struct ChannelBlocked;

/// Blocked senders at one site that make a warning.
pub const WARN: u64 = 5;
/// Blocked senders at one site that make it critical.
pub const CRITICAL: u64 = 1000;

impl Rule for ChannelBlocked {
    fn kind(&self) -> FindingKind {
        FindingKind::ChannelBlocked
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let t = &cx.snap.tables;
        let senders = cx.select(|g, f| {
            let Some(uf) = f.user_frame else { return false };
            if g.wait_reason != Some(WaitReason::ChanSend) {
                return false;
            }
            // Abandoned closures belong to goroutine_leak.
            let abandoned = g.created_by.is_some_and(|c| {
                let creator = t.frame(c.frame).function;
                is_closure_of(t.str(t.frame(uf).function), t.str(creator))
                    && !cx.live_funcs.contains(&creator)
            });
            !abandoned
        });
        let mut out = Vec::new();
        for (site, ms) in cx.by_site(&senders) {
            let n = cx.count(&ms);
            if n < WARN {
                continue;
            }
            let func = cx.func(t.frame(site).function);
            let sev = if n >= CRITICAL || cx.max_minutes(&ms).is_some_and(|m| m >= 5) {
                Severity::Critical
            } else {
                Severity::Warning
            };
            out.push(cx.finding(
                FindingKind::ChannelBlocked,
                sev,
                format!("{n} goroutine{} blocked sending on the same channel in {func}", plural(n)),
                "Senders pile up at one channel send: the channel's buffer is full (or it is unbuffered) and its receiver is not keeping up or is stuck. Everything upstream of this send stalls with it.".into(),
                &ms,
                Some(site),
                {
                    let mut ev = vec![format!("{} blocked in chan send at {}{}", cx.id_list(&ms), cx.short(site), cx.minutes_suffix(&ms))];
                    ev.extend(cx.waited_objects(&ms, "channel"));
                    ev
                },
                "Find the receiver of this channel and why it is not receiving (look for it in the goroutine groups below). Bound the wait with select on ctx.Done() or a timeout so callers fail fast instead of piling up, and size the buffer and consumer count for the load.",
            ));
        }
        out
    }
}
