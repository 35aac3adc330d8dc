//! `goroutine_leak`: goroutines blocked forever, or piling up where nobody will release them.
//!
//! Flags: receives and sends on nil channels and `select {}` outside the main goroutine (can never
//! complete); goroutines blocked on a channel inside a closure whose enclosing function — the only
//! other owner of the channel — has returned (the abandoned-sender pattern after a timeout);
//! thousands of goroutines from one creation site blocked on channels; `WaitGroup.Wait` when every
//! goroutine the waiter started has exited (no one is left to call `Done`); `Cond.Wait` when no
//! application goroutine is making progress that could `Signal`.
//! Leaves alone: `select {}` in the main goroutine (a common way to park `main`), idle receivers.
//!
//! Live, with the reachability proof, the verdict is the proof's and nothing else: goroutines
//! blocked on an object that nothing able to run can reach are leaked (said as a fact), every
//! other blocked goroutine is not (the heuristics above are not applied). Goroutines in a
//! lock-order cycle are left to `deadlock`.

use crate::context::plural;
use crate::{Context, Rule};
use gostall_model::{
    Finding, FindingKind, FrameId, GoState, ObjectKind, ProofFacts, Reach, ScanMethod, Severity,
    Sym, WaitOp, WaitReason,
};
use rustc_hash::FxHashSet;

/// The goroutine-leak rule.
pub struct GoroutineLeak;

/// Pile-up size at one creation site that is a leak whatever the reason.
const PILEUP: u64 = 1000;

impl Rule for GoroutineLeak {
    fn kind(&self) -> FindingKind {
        FindingKind::GoroutineLeak
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        if let Some(proof) = &cx.snap.proof {
            proven(cx, proof, &mut out);
            return out;
        }
        let mut seen: FxHashSet<u32> = FxHashSet::default();
        forever(cx, &mut out, &mut seen);
        abandoned(cx, &mut out, &mut seen);
        pileups(cx, &mut out, &mut seen);
        waitgroups(cx, &mut out);
        stuck_children(cx, &mut out, &seen);
        conds(cx, &mut out);
        out
    }
}

/// Leaks proved by the reachability proof, one finding per root-cause site and wait.
fn proven(cx: &Context<'_>, proof: &ProofFacts, out: &mut Vec<Finding>) {
    let in_cycle: FxHashSet<u64> = cx.lock_cycles.iter().flatten().copied().collect();
    let members = cx.select(|g, _| cx.proven_leaked.contains(&g.id) && !in_cycle.contains(&g.id));
    // Group by site, then by wait reason within a site.
    let mut groups: Vec<(Option<FrameId>, WaitReason, Vec<u32>)> = Vec::new();
    for i in members {
        let g = cx.g(i);
        let site = cx.facts(g).user_frame;
        let reason = g.wait_reason.unwrap_or(WaitReason::Other);
        match groups
            .iter_mut()
            .find(|(s, r, _)| *s == site && *r == reason)
        {
            Some((_, _, v)) => v.push(i),
            None => groups.push((site, reason, vec![i])),
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(cx.count(&g.2)));
    let marks = if proof.paused {
        format!(
            "{} mark{} with the program stopped",
            proof.passes,
            plural(u64::from(proof.passes))
        )
    } else if proof.quiescent {
        "one mark while the program ran nothing (no thread used CPU)".to_string()
    } else {
        format!(
            "{} agreeing mark{}",
            proof.passes,
            plural(u64::from(proof.passes))
        )
    };
    let how = format!(
        "proved from the process's memory: heap scanned {}, stacks {}, {marks}",
        scan_word(proof.heap_scan),
        scan_word(proof.stack_scan),
    );
    for (site, reason, ms) in groups {
        // Library or runtime machinery with no application code on its stack (a pool's opener
        // goroutine, a transport's loops) leaks as a consequence of the leaks that are reported.
        if site.is_none() {
            continue;
        }
        let n = cx.count(&ms);
        let main = ms.iter().any(|&i| cx.g(i).id == 1);
        let g0 = cx.g(ms[0]);
        let objs: Vec<(&gostall_model::SyncObject, WaitOp)> = cx.waits_of(g0.id).collect();
        let what = objs
            .first()
            .map(|(o, _)| o.kind.as_str())
            .unwrap_or(match reason {
                WaitReason::ChanReceiveNil | WaitReason::ChanSendNil => "nil channel",
                _ => "object",
            });
        let at = site
            .map(|s| format!(" in {}", cx.func(cx.snap.tables.frame(s).function)))
            .unwrap_or_default();
        let title = format!(
            "{n} goroutine{} leaked{at}: blocked forever in {}",
            plural(n),
            reason.as_str()
        );
        let explanation = match reason {
            WaitReason::ChanReceiveNil | WaitReason::ChanSendNil | WaitReason::SelectNoCases => format!(
                "These goroutines {}: no other goroutine can ever wake them. Each one, and everything it references, is leaked for the life of the process.",
                match reason {
                    WaitReason::SelectNoCases => "wait in an empty `select {}`",
                    WaitReason::ChanSendNil => "send on a nil channel",
                    _ => "receive from a nil channel",
                }
            ),
            _ => format!(
                "Nothing that can still run — no other goroutine, global variable, timer or finalizer — holds a reference to the {what} these goroutines wait on, so nobody can ever {} it: they are blocked for good, with everything they reference.",
                completes(reason)
            ),
        };
        let mut evidence = vec![format!(
            "{} blocked in {}{}{}",
            cx.id_list(&ms),
            reason.as_str(),
            site.map(|s| format!(" at {}", cx.short(s)))
                .unwrap_or_default(),
            cx.minutes_suffix(&ms)
        )];
        if let Some(lib) = cx.facts(g0).lib_frame {
            evidence.push(format!("waiting inside {}", cx.short(lib)));
        }
        let distinct: FxHashSet<u64> = ms
            .iter()
            .flat_map(|&i| cx.waits_of(cx.g(i).id).map(|(o, _)| o.addr))
            .collect();
        for (o, _) in objs.iter().take(3) {
            evidence.push(describe_object(cx, o, distinct.len()));
        }
        if let Some(cb) = g0.created_by {
            let by = cb
                .goroutine
                .filter(|id| cx.by_id.contains_key(id))
                .map(|id| format!(" in {}", cx.describe_goroutine(id)))
                .unwrap_or_default();
            evidence.push(format!("created by {}{by}", cx.short(cb.frame)));
        }
        if reason == WaitReason::WaitGroupWait {
            // Who was to call Done: the goroutines the waiter started, and what they do now.
            let kids: Vec<u32> = cx
                .children
                .get(&g0.id)
                .map(|v| {
                    v.iter()
                        .copied()
                        .filter(|&k| cx.g(k).state != GoState::Dead)
                        .collect()
                })
                .unwrap_or_default();
            if !kids.is_empty() {
                evidence.push(format!(
                    "the goroutines it started are stuck themselves: {}",
                    kids.iter()
                        .take(3)
                        .map(|&k| cx.describe_goroutine(cx.g(k).id))
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
        }
        evidence.push(how.clone());
        // The main goroutine parked for good on a channel receive once its work is handed to
        // other goroutines (`<-make(chan struct{})`, like `select {}`) is how servers keep
        // running: said, but not as a problem. Main blocked on anything else stops the program.
        let parked_main =
            main && n == 1 && matches!(reason, WaitReason::ChanReceive | WaitReason::Select);
        let (title, explanation) = if parked_main {
            (
                format!(
                    "The main goroutine is parked for good{at} ({} nothing can complete)",
                    reason.as_str()
                ),
                "The main goroutine waits on a channel nothing that can still run refers to, so it never returns; the program runs on in its other goroutines. That is a common way to keep a server alive (like `select {}`); it is a problem only if main was meant to finish.".to_string(),
            )
        } else {
            (title, explanation)
        };
        out.push(
            cx.finding(
                FindingKind::GoroutineLeak,
                if parked_main {
                    Severity::Info
                } else if main || n >= PILEUP {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                title,
                explanation,
                &ms,
                site,
                evidence,
                leak_advice(reason),
            )
            .proved(),
        );
    }
}

fn scan_word(m: ScanMethod) -> &'static str {
    match m {
        ScanMethod::Precise => "precisely",
        ScanMethod::Conservative => "conservatively",
        ScanMethod::Mixed => "mostly precisely",
    }
}

/// What would release a goroutine in this wait.
fn completes(reason: WaitReason) -> &'static str {
    match reason {
        WaitReason::ChanSend => "receive from",
        WaitReason::ChanReceive => "send on or close",
        WaitReason::Select => "complete any case of",
        WaitReason::MutexLock | WaitReason::RWMutexLock | WaitReason::RWMutexRLock => "unlock",
        WaitReason::WaitGroupWait => "call Done on",
        WaitReason::CondWait => "Signal or Broadcast",
        _ => "release",
    }
}

/// `channel 0xc000123 (unbuffered), unreachable — the only one these goroutines wait on`, with
/// the lock's likely holder and what that holder does.
fn describe_object(cx: &Context<'_>, o: &gostall_model::SyncObject, distinct: usize) -> String {
    let st = &o.state;
    let mut parts: Vec<String> = Vec::new();
    match o.kind {
        ObjectKind::Channel => match (st.capacity, st.len) {
            (Some(0), _) => parts.push("unbuffered".into()),
            (Some(c), Some(l)) => parts.push(format!("buffer {l}/{c}")),
            _ => {}
        },
        ObjectKind::WaitGroup => {
            if let Some(c) = st.counter {
                parts.push(format!("counter {c}"));
            }
        }
        _ => {
            if st.locked == Some(true) {
                parts.push("locked".into());
            }
            if let Some(r) = st.readers.filter(|&r| r > 0) {
                parts.push(format!("{r} reader{}", plural(r as u64)));
            }
        }
    }
    if st.closed == Some(true) {
        parts.push("closed".into());
    }
    let state = if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    };
    let reach = match &o.reach {
        Reach::Unreachable => "nothing that can run reaches it".to_string(),
        Reach::Reachable { via } => format!("reachable from {via}"),
        Reach::Unknown => "reachability unknown".to_string(),
    };
    let mut line = format!("waits on {} {:#x}{state}: {reach}", o.kind.as_str(), o.addr);
    if distinct > 1 {
        line.push_str(&format!(" ({distinct} distinct objects in this group)"));
    }
    if let Some(&h) = o.holders.first() {
        line.push_str(&format!(
            "; {} {}",
            if o.holders_deferred {
                "held (a pending defer Unlock) by"
            } else {
                "likely held by"
            },
            cx.describe_goroutine(h)
        ));
    }
    line
}

fn leak_advice(reason: WaitReason) -> &'static str {
    match reason {
        WaitReason::ChanSend => "Nobody will ever receive this send. Give the channel a buffer big enough for every send (1 for a single result), or select on ctx.Done() or a done channel next to the send so the goroutine can exit when its receiver has gone.",
        WaitReason::ChanReceive => "Nobody will ever send on or close this channel. Close it when the producer is done (`defer close(ch)`), or select on ctx.Done() next to the receive so the goroutine can exit.",
        WaitReason::Select => "No case of this select can ever fire. Add a case on ctx.Done() or on a channel the owner closes when it stops, so the goroutine can always exit.",
        WaitReason::ChanReceiveNil | WaitReason::ChanSendNil => "Operations on a nil channel block forever. Initialise the channel (make) before use — typically in the constructor — or, if nil is meant to disable a select case, make sure another case can fire.",
        WaitReason::SelectNoCases => "An empty select blocks forever. Replace it with a wait on a context or a done channel so the goroutine can exit, or remove the goroutine.",
        WaitReason::MutexLock | WaitReason::RWMutexLock | WaitReason::RWMutexRLock => "The lock is never released: its holder returned, or is itself stuck, without Unlock. Call `defer mu.Unlock()` right after Lock, never Lock twice on one path (sync.Mutex is not reentrant), and don't hold a lock across a wait that may never end.",
        WaitReason::WaitGroupWait => "The WaitGroup counter never reaches zero: an Add without its Done. Call wg.Add(1) right before each go statement and `defer wg.Done()` first thing in the goroutine so every return path counts down.",
        WaitReason::CondWait => "Nothing will ever Signal or Broadcast this Cond. Make every exit path of the producer Broadcast (e.g. set a closed flag and Broadcast in a defer), or replace the Cond with a channel the producer closes.",
        _ => "Nothing can release these goroutines. Make sure whoever is meant to release them can always reach the object, or give the wait a context and a deadline.",
    }
}

fn forever(cx: &Context<'_>, out: &mut Vec<Finding>, seen: &mut FxHashSet<u32>) {
    let members = cx.select(|g, f| {
        f.user_frame.is_some()
            && g.state == GoState::Waiting
            && match g.wait_reason {
                Some(WaitReason::ChanReceiveNil | WaitReason::ChanSendNil) => true,
                Some(WaitReason::SelectNoCases) => g.id != 1 && !g.locked_to_thread,
                _ => false,
            }
    });
    for (site, ms) in cx.by_site(&members) {
        seen.extend(ms.iter().copied());
        let reason = cx.g(ms[0]).wait_reason.unwrap_or(WaitReason::Other);
        let n = cx.count(&ms);
        let (what, advice) = match reason {
            WaitReason::SelectNoCases => (
                "wait in an empty `select {}`",
                "An empty select blocks forever. Replace it with a wait on a context or a done channel so the goroutine can exit, or remove the goroutine.",
            ),
            _ => (
                if reason == WaitReason::ChanSendNil { "send on a nil channel" } else { "receive from a nil channel" },
                "Operations on a nil channel block forever. Initialise the channel (make) before use — typically in the constructor — or, if nil is meant to disable a select case, make sure another case can fire.",
            ),
        };
        out.push(cx.finding(
            FindingKind::GoroutineLeak,
            Severity::Warning,
            format!("{n} goroutine{} {what} and can never continue", plural(n)),
            format!("These goroutines {what}: nothing any other goroutine does can wake them. Each one, and everything it references, is leaked for the life of the process."),
            &ms,
            Some(site),
            vec![format!("{} in {} at {}{}", cx.id_list(&ms), reason.as_str(), cx.short(site), cx.minutes_suffix(&ms))],
            advice,
        ));
    }
}

/// `enclosing_function(func) == Some(creator)`, with a cheap test first: a closure's name starts
/// with its enclosing function's name and a dot.
pub(crate) fn is_closure_of(func: &str, creator: &str) -> bool {
    func.len() > creator.len()
        && func.as_bytes()[creator.len()] == b'.'
        && func.starts_with(creator)
        && enclosing_function(func) == Some(creator)
}

/// `main.f.func1` / `main.f.gowrap2` / `main.f.func1.3` → `main.f`.
pub(crate) fn enclosing_function(name: &str) -> Option<&str> {
    let mut cur = name;
    let mut stripped = false;
    while let Some(dot) = cur.rfind('.') {
        let last = &cur[dot + 1..];
        let is_closure = last.chars().all(|c| c.is_ascii_digit()) && !last.is_empty()
            || ["func", "gowrap"].iter().any(|p| {
                last.strip_prefix(p)
                    .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
            });
        if !is_closure {
            break;
        }
        cur = &cur[..dot];
        stripped = true;
    }
    stripped.then_some(cur)
}

fn abandoned(cx: &Context<'_>, out: &mut Vec<Finding>, seen: &mut FxHashSet<u32>) {
    let t = &cx.snap.tables;
    let members = cx.select(|g, f| {
        let Some(uf) = f.user_frame else { return false };
        if !matches!(
            g.wait_reason,
            Some(WaitReason::ChanSend | WaitReason::ChanReceive)
        ) {
            return false;
        }
        let Some(cb) = g.created_by else { return false };
        let creator: Sym = t.frame(cb.frame).function;
        let func = t.str(t.frame(uf).function);
        is_closure_of(func, t.str(creator)) && !cx.live_funcs.contains(&creator)
    });
    for (site, ms) in cx.by_site(&members) {
        seen.extend(ms.iter().copied());
        let g = cx.g(ms[0]);
        let creator = g
            .created_by
            .map(|c| t.frame_ref(c.frame).function)
            .unwrap_or("?");
        let op = g.wait_reason.unwrap_or(WaitReason::Other);
        let n = cx.count(&ms);
        out.push(cx.finding(
            FindingKind::GoroutineLeak,
            if n >= PILEUP { Severity::Critical } else { Severity::Warning },
            format!("{n} goroutine{} abandoned in {} after {creator} returned", plural(n), op.as_str()),
            format!("{creator} started these goroutines and shared a channel with them, then returned (typically after a timeout or an error). Nobody else holds the channel, so their {} can never complete: they leak, one per call.", op.as_str()),
            &ms,
            Some(site),
            vec![
                format!("{} blocked in {} at {}{}", cx.id_list(&ms), op.as_str(), cx.short(site), cx.minutes_suffix(&ms)),
                format!("created by {creator}, which is no longer on any goroutine's stack"),
            ],
            "Give the channel a buffer of 1 so the send completes even when nobody receives, or select on ctx.Done() alongside the send; cancel the work when the caller gives up.",
        ));
    }
}

fn pileups(cx: &Context<'_>, out: &mut Vec<Finding>, seen: &mut FxHashSet<u32>) {
    let members = cx.select(|g, f| {
        f.user_frame.is_some()
            && g.created_by.is_some()
            && matches!(
                g.wait_reason,
                Some(WaitReason::ChanSend | WaitReason::ChanReceive | WaitReason::Select)
            )
    });
    let mut by_creator: rustc_hash::FxHashMap<_, Vec<u32>> = Default::default();
    for i in members {
        if seen.contains(&i) {
            continue;
        }
        let g = cx.g(i);
        by_creator
            .entry((g.created_by.map(|c| c.frame), g.stack))
            .or_default()
            .push(i);
    }
    for ((creator, _), ms) in by_creator {
        let n = cx.count(&ms);
        if n < PILEUP {
            continue;
        }
        let site = cx.facts(cx.g(ms[0])).user_frame;
        let creator = creator.map(|c| cx.short(c)).unwrap_or_default();
        let reason = cx
            .g(ms[0])
            .wait_reason
            .unwrap_or(WaitReason::Other)
            .as_str();
        out.push(cx.finding(
            FindingKind::GoroutineLeak,
            Severity::Warning,
            format!("{n} goroutines from one creation site are blocked in {reason}"),
            "Thousands of goroutines started at the same place wait at the same channel operation. A pile-up of this size usually grows with traffic and never drains.".into(),
            &ms,
            site,
            vec![format!("{n} goroutines created by {creator}, all blocked in {reason}{}", site.map(|s| format!(" at {}", cx.short(s))).unwrap_or_default())],
            "Bound the number of goroutines (worker pool, semaphore) and make sure each one can exit: select on ctx.Done() next to every channel operation.",
        ));
    }
}

/// From a dump: a goroutine waits (WaitGroup, errgroup) for goroutines it started, and those are
/// blocked sending or receiving on channels that no goroutine outside that family is on the
/// other side of — the parent cannot complete them while it waits. Live, the proof decides.
fn stuck_children(cx: &Context<'_>, out: &mut Vec<Finding>, seen: &FxHashSet<u32>) {
    let parents =
        cx.select(|g, f| f.app && g.id != 0 && g.wait_reason == Some(WaitReason::WaitGroupWait));
    let mut family: FxHashSet<u64> = FxHashSet::default();
    let mut stuck: Vec<(u32, u32)> = Vec::new(); // (child, parent)
    for &p in &parents {
        let pg = cx.g(p);
        let kids: Vec<u32> = cx
            .children
            .get(&pg.id)
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|&k| cx.g(k).state != GoState::Dead && cx.facts(cx.g(k)).app)
                    .collect()
            })
            .unwrap_or_default();
        let all_on_channels = !kids.is_empty()
            && kids.iter().all(|&k| {
                matches!(
                    cx.g(k).wait_reason,
                    Some(WaitReason::ChanSend | WaitReason::ChanReceive)
                )
            });
        if all_on_channels {
            family.insert(pg.id);
            for &k in &kids {
                family.insert(cx.g(k).id);
                if !seen.contains(&k) {
                    stuck.push((k, p));
                }
            }
        }
    }
    if stuck.is_empty() {
        return;
    }
    // Someone outside the families on the other side of a channel could complete them (the
    // main goroutine parked on a channel at the end of main — waiting for a signal or a done
    // channel — is not such a partner).
    let other_side = |r: WaitReason| {
        cx.snap.goroutines.iter().any(|g| {
            !family.contains(&g.id)
                && g.id != 1
                && cx.facts(g).app
                && match r {
                    WaitReason::ChanSend => matches!(
                        g.wait_reason,
                        Some(WaitReason::ChanReceive | WaitReason::Select)
                    ),
                    _ => matches!(
                        g.wait_reason,
                        Some(WaitReason::ChanSend | WaitReason::Select)
                    ),
                }
        })
    };
    let kids: Vec<u32> = stuck
        .iter()
        .map(|&(k, _)| k)
        .filter(|&k| !other_side(cx.g(k).wait_reason.unwrap_or(WaitReason::Other)))
        .collect();
    for (site, ms) in cx.by_site(&kids) {
        let n = cx.count(&ms);
        let g0 = cx.g(ms[0]);
        let reason = g0.wait_reason.unwrap_or(WaitReason::Other);
        let parent = stuck
            .iter()
            .find(|&&(k, _)| k == ms[0])
            .map(|&(_, p)| cx.g(p).id)
            .unwrap_or(0);
        let creator = g0.created_by.map(|c| cx.short(c.frame)).unwrap_or_default();
        out.push(cx.finding(
            FindingKind::GoroutineLeak,
            Severity::Warning,
            format!(
                "{n} goroutine{} in {} likely leaked: blocked in {} while the goroutine that started them waits for them",
                plural(n),
                cx.func(cx.snap.tables.frame(site).function),
                reason.as_str()
            ),
            format!("These goroutines wait in {} for a partner that will not come: the goroutine that started them is itself waiting for them to finish, and no other goroutine is on the other side of a channel. Neither side can move.", reason.as_str()),
            &ms,
            Some(site),
            vec![
                format!("{} blocked in {} at {}{}", cx.id_list(&ms), reason.as_str(), cx.short(site), cx.minutes_suffix(&ms)),
                format!("created by {creator} in {}, which waits for them", cx.describe_goroutine(parent)),
                "no goroutine outside this family is on the other side of a channel".into(),
                "inferred from the stacks; a live read (`gostall diagnose --pid`) proves it from memory".into(),
            ],
            "A member of the group blocks on a channel whose other side has gone (the consumer returned on an error, or the parent stopped reading). Give the channel enough buffer for every send, or select on the group's context (errgroup.WithContext's ctx.Done()) next to every channel operation, so a failed group unwinds.",
        ));
    }
}

fn waitgroups(cx: &Context<'_>, out: &mut Vec<Finding>) {
    let waiters = cx.select(|g, f| {
        f.user_frame.is_some() && g.id != 0 && g.wait_reason == Some(WaitReason::WaitGroupWait)
    });
    let t = &cx.snap.tables;
    let orphaned: Vec<u32> = waiters
        .into_iter()
        .filter(|&w| {
            let g = cx.g(w);
            if has_live_descendants(cx, g.id, g.id) {
                return false;
            }
            // `go func() { wg.Wait(); close(out) }()`: the workers are the waiter's siblings.
            let closure = cx
                .facts(g)
                .user_frame
                .is_some_and(|f| enclosing_function(t.str(t.frame(f).function)).is_some());
            match g.created_by.and_then(|c| c.goroutine) {
                Some(parent) if closure => !has_live_descendants(cx, parent, g.id),
                _ => true,
            }
        })
        .collect();
    for (site, ms) in cx.by_site(&orphaned) {
        let n = cx.count(&ms);
        let main = ms.iter().any(|&i| cx.g(i).id == 1);
        out.push(cx.finding(
            FindingKind::GoroutineLeak,
            if main { Severity::Critical } else { Severity::Warning },
            format!("WaitGroup.Wait can never return: every goroutine {} started has exited", if n == 1 { "it" } else { "they" }),
            "The waiting goroutine started workers that have all finished, yet the WaitGroup counter is still above zero: an Add without its Done (an off-by-one Add, or a Done skipped on an early return). Nobody is left to call Done.".into(),
            &ms,
            Some(site),
            vec![
                format!("{} blocked in sync.WaitGroup.Wait at {}{}", cx.id_list(&ms), cx.short(site), cx.minutes_suffix(&ms)),
                "no live goroutine was created by the waiter (directly or indirectly)".into(),
            ],
            "Call wg.Add(1) exactly once per goroutine, right before the go statement, and `defer wg.Done()` as the first line of the goroutine so every return path counts down.",
        ));
    }
}

/// Does goroutine `id` have a live application goroutine among its descendants (other than `except`)?
fn has_live_descendants(cx: &Context<'_>, id: u64, except: u64) -> bool {
    let mut stack = vec![id];
    let mut visited = FxHashSet::default();
    while let Some(p) = stack.pop() {
        if !visited.insert(p) {
            continue;
        }
        if let Some(kids) = cx.children.get(&p) {
            for &k in kids {
                let kg = cx.g(k);
                if kg.id == except {
                    continue;
                }
                if kg.state != GoState::Dead && cx.facts(kg).user_frame.is_some() {
                    return true;
                }
                stack.push(kg.id);
            }
        }
    }
    false
}

fn conds(cx: &Context<'_>, out: &mut Vec<Finding>) {
    let waiters =
        cx.select(|g, f| f.user_frame.is_some() && g.wait_reason == Some(WaitReason::CondWait));
    if waiters.is_empty() {
        return;
    }
    let anyone = cx.snap.goroutines.iter().any(|g| {
        cx.facts(g).user_frame.is_some()
            && g.wait_reason != Some(WaitReason::CondWait)
            && cx.progressing(g)
    });
    if anyone {
        return;
    }
    for (site, ms) in cx.by_site(&waiters) {
        let n = cx.count(&ms);
        out.push(cx.finding(
            FindingKind::GoroutineLeak,
            Severity::Warning,
            format!("{n} goroutine{} wait on a sync.Cond that nothing is left to signal", plural(n)),
            "These goroutines wait in Cond.Wait, but no application goroutine is running, sleeping, or doing I/O that could later call Signal or Broadcast: the producer has exited or is blocked itself.".into(),
            &ms,
            Some(site),
            vec![
                format!("{} blocked in sync.Cond.Wait at {}{}", cx.id_list(&ms), cx.short(site), cx.minutes_suffix(&ms)),
                "every other application goroutine is blocked on a lock, channel or WaitGroup".into(),
            ],
            "Make every exit path of the producer Broadcast (e.g. set a closed flag and Broadcast in a defer), or replace the Cond with a channel that the producer closes when it stops.",
        ));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn closures() {
        use super::enclosing_function as e;
        assert_eq!(
            e("main.fetchWithTimeout.func1"),
            Some("main.fetchWithTimeout")
        );
        assert_eq!(e("main.f.func1.2"), Some("main.f"));
        assert_eq!(e("main.main.gowrap1"), Some("main.main"));
        assert_eq!(e("main.(*T).run.func3"), Some("main.(*T).run"));
        assert_eq!(e("main.f"), None);
    }

    #[test]
    fn closure_of() {
        use super::{enclosing_function, is_closure_of};
        for func in [
            "main.f.func1",
            "main.f.func1.2",
            "main.f",
            "main.fx.func1",
            "main.f.g",
            "main.f.gowrap1",
            "main.(*T).run.func3",
            "main",
            "",
        ] {
            for creator in [
                "main.f",
                "main",
                "main.fx",
                "main.(*T).run",
                "",
                "main.f.func1",
            ] {
                assert_eq!(
                    is_closure_of(func, creator),
                    enclosing_function(func) == Some(creator),
                    "{func} {creator}"
                );
            }
        }
    }
}
