//! `deadlock`: goroutines that wait on each other so that none can proceed.
//!
//! Flags (1) the runtime's own verdict `all goroutines are asleep - deadlock!`; (2) a lock-order
//! cycle: goroutines blocked acquiring locks at two or more different call sites while no goroutine
//! that runs the same code is making progress — so every possible holder is itself waiting for a
//! lock (the AB-BA pattern); (3) a global stall: every application goroutine is blocked on a lock,
//! WaitGroup or Cond, and nothing in the program (network, signals, timers) can wake them.

use crate::context::plural;
use crate::{Context, Rule};
use gostall_model::{Finding, FindingKind, GoState, Severity, WaitReason};

/// The deadlock rule.
pub struct Deadlock;

impl Rule for Deadlock {
    fn kind(&self) -> FindingKind {
        FindingKind::Deadlock
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        if let Some(f) = runtime_verdict(cx) {
            out.push(f);
            return out;
        }
        out.extend(holder_cycles(cx));
        if !out.is_empty() {
            return out;
        }
        if let Some(f) = lock_cycle(cx) {
            out.push(f);
        } else if let Some(f) = global_stall(cx) {
            out.push(f);
        }
        out
    }
}

fn runtime_verdict(cx: &Context<'_>) -> Option<Finding> {
    let fatal = cx.snap.process.fatal_error.as_deref()?;
    if !fatal.contains("deadlock") {
        return None;
    }
    let blocked = cx.select(|g, f| f.user_frame.is_some() && g.state == GoState::Waiting);
    let main = blocked
        .iter()
        .copied()
        .find(|&i| cx.g(i).id == 1)
        .or(blocked.first().copied());
    let loc = main.and_then(|i| cx.facts(cx.g(i)).user_frame);
    let mut evidence = vec![format!(
        "the Go runtime stopped the program: fatal error: {fatal}"
    )];
    evidence.extend(blocked_sites(cx, &blocked));
    Some(cx.finding(
        FindingKind::Deadlock,
        Severity::Critical,
        "All goroutines are asleep: the program deadlocked".into(),
        "Every goroutine is blocked on a channel or lock and nothing left can wake any of them, so the Go runtime aborted the program.".into(),
        &blocked,
        loc,
        evidence,
        "Find the operation each goroutine waits for and the goroutine that was supposed to complete it: a send with no receiver, a Wait without the matching Done, a lock never unlocked. Make sure every channel has a live counterpart or is closed.",
    ))
}

/// Live: cycles through the locks' likely holders, read from memory — each goroutine waits for
/// a lock whose holder waits for the next lock. A fact when the proof found every member leaked.
fn holder_cycles(cx: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for cycle in &cx.lock_cycles {
        let members: Vec<u32> = cycle
            .iter()
            .filter_map(|id| cx.by_id.get(id).copied())
            .collect();
        if members.len() != cycle.len() {
            continue;
        }
        let proven = cycle.iter().all(|id| cx.proven_leaked.contains(id));
        let mut evidence = Vec::new();
        let mut locks = Vec::new();
        for (k, &id) in cycle.iter().enumerate() {
            let next = cycle[(k + 1) % cycle.len()];
            let g = cx.g(members[k]);
            let site = cx.facts(g).user_frame;
            let held = cx.waits_of(id).find(|(o, _)| o.holders.contains(&next));
            let lock = held.map(|(o, _)| (o.kind.as_str(), o.addr));
            let certain = held.is_some_and(|(o, _)| o.holders_deferred);
            if let Some((_, a)) = lock {
                locks.push(a);
            }
            evidence.push(format!(
                "goroutine {id}{} waits for {} held by goroutine {next}{}{}",
                site.map(|s| format!(" at {}", cx.short(s)))
                    .unwrap_or_default(),
                lock.map(|(k, a)| format!("{k} {a:#x}"))
                    .unwrap_or_else(|| "a lock".into()),
                if certain {
                    " (its pending defer Unlock)"
                } else {
                    ""
                },
                cx.minutes_suffix(&members[k..k + 1])
            ));
        }
        evidence.push(if proven {
            "proved: none of these locks is reachable from any goroutine that can still run, a global or a finalizer".into()
        } else {
            "holders inferred: each holder's live stack frames point at the lock and it does not wait for that lock".into()
        });
        let same_site = members
            .iter()
            .map(|&i| cx.facts(cx.g(i)).user_frame)
            .collect::<rustc_hash::FxHashSet<_>>()
            .len()
            == 1;
        let site = cx.facts(cx.g(members[0])).user_frame;
        let n = members.len();
        let f = cx.finding(
            FindingKind::Deadlock,
            Severity::Critical,
            format!(
                "{}ock-order deadlock: {n} goroutines each hold a lock the next one waits for{}",
                if proven { "L" } else { "Likely l" },
                if same_site { " (at the same line, with the locks in opposite order)" } else { "" }
            ),
            format!(
                "Each of these goroutines holds one lock and waits for another held by the next, in a cycle of {} locks: none can ever proceed{}.",
                locks.len(),
                if proven { ", and no goroutine that can still run even references these locks" } else { "" }
            ),
            &members,
            site,
            evidence,
            "Acquire locks in one global order everywhere (e.g. by account id or address — sort the pair before locking when one function locks two instances), or restructure so no goroutine holds one lock while taking another. The blocked goroutines never recover: restart the process.",
        );
        out.push(if proven { f.proved() } else { f });
    }
    out
}

fn lock_cycle(cx: &Context<'_>) -> Option<Finding> {
    let waiters =
        cx.select(|g, f| f.user_frame.is_some() && g.wait_reason.is_some_and(WaitReason::is_lock));
    if waiters.len() < 2 {
        return None;
    }
    // A waiter could be released by any goroutine that runs the code around its lock call and is
    // making progress; if there is none for every waiter, the holders are among the waiters.
    let holder_possible = waiters.iter().any(|&w| {
        cx.facts(cx.g(w)).user_funcs.iter().any(|f| {
            cx.by_user_func.get(f).is_some_and(|gs| {
                gs.iter().any(|&h| {
                    let hg = cx.g(h);
                    !hg.wait_reason.is_some_and(WaitReason::is_lock) && cx.progressing(hg)
                })
            })
        })
    });
    if holder_possible {
        return None;
    }
    let sites = cx.by_site(&waiters);
    // Live, two waiters at one call site may wait for two different locks (AB-BA at one line).
    let distinct_locks = waiters
        .iter()
        .filter_map(|&w| cx.g(w).waiting_on)
        .collect::<rustc_hash::FxHashSet<_>>()
        .len();
    if sites.len() < 2 && distinct_locks < 2 {
        return None;
    }
    // The cycle members are at the later lock call: the highest line among the sites of the most
    // common function.
    let t = &cx.snap.tables;
    let func_of = |fr| t.frame(fr).function;
    let main_func = func_of(sites[0].0);
    let cycle_site = sites
        .iter()
        .filter(|(fr, _)| func_of(*fr) == main_func)
        .max_by_key(|(fr, _)| t.frame(*fr).line)
        .map(|(fr, _)| *fr)
        .unwrap_or(sites[0].0);
    let mut evidence = Vec::new();
    for (site, members) in &sites {
        let reason = cx
            .g(members[0])
            .wait_reason
            .map(|r| r.as_str())
            .unwrap_or("lock");
        evidence.push(format!(
            "{} wait in {} at {}{}",
            cx.id_list(members),
            reason,
            cx.short(*site),
            cx.minutes_suffix(members)
        ));
    }
    if let Some(line) = cx.waited_objects(&waiters, "lock") {
        evidence.push(line);
    }
    evidence.push(
        "no goroutine running this code is making progress, so every lock holder is itself waiting for a lock".into(),
    );
    let n = cx.count(&waiters);
    Some(cx.finding(
        FindingKind::Deadlock,
        Severity::Critical,
        format!(
            "Lock-order deadlock: {n} goroutine{} wait for locks held by each other",
            plural(n)
        ),
        format!(
            "Goroutines are blocked acquiring locks at {} different places, and none of the goroutines that could hold those locks is running: each holds one lock and waits for another (the AB-BA pattern).",
            sites.len()
        ),
        &waiters,
        Some(cycle_site),
        evidence,
        "Acquire locks in one global order everywhere (e.g. by account id or address), or restructure so no goroutine holds one lock while taking another. Until fixed, the blocked goroutines never recover: restart the process.",
    ))
}

fn global_stall(cx: &Context<'_>) -> Option<Finding> {
    if cx.has_network || cx.has_signal_loop {
        return None;
    }
    let app = cx.select(|_, f| f.user_frame.is_some());
    if app.is_empty() || app.iter().any(|&i| cx.progressing(cx.g(i))) {
        return None;
    }
    let all_sync = app.iter().all(|&i| {
        let g = cx.g(i);
        g.state == GoState::Waiting
            && g.wait_reason
                .is_some_and(|r| r.is_sync_block() && r != WaitReason::Select)
    });
    if !all_sync {
        return None;
    }
    let main = app
        .iter()
        .copied()
        .find(|&i| cx.g(i).id == 1)
        .unwrap_or(app[0]);
    let mut evidence = Vec::new();
    evidence.extend(blocked_sites(cx, &app));
    evidence.push(
        "no goroutine is running, sleeping, in a system call or waiting on the network or signals"
            .into(),
    );
    Some(cx.finding(
        FindingKind::Deadlock,
        Severity::Critical,
        "Every goroutine of the program is blocked and nothing can wake them".into(),
        "All application goroutines wait on channels or sync primitives, and no goroutine, timer, network connection or signal handler remains that could release them.".into(),
        &app,
        cx.facts(cx.g(main)).user_frame,
        evidence,
        "Find the operation each goroutine waits for and the goroutine that was supposed to complete it; make sure every channel has a live counterpart or is closed, and every Add has its Done.",
    ))
}

/// One evidence line per call site: who is blocked there, in what.
fn blocked_sites(cx: &Context<'_>, members: &[u32]) -> Vec<String> {
    cx.by_site(members)
        .into_iter()
        .take(8)
        .map(|(site, ms)| {
            let reason = cx
                .g(ms[0])
                .wait_reason
                .map(|r| r.as_str())
                .unwrap_or("waiting");
            format!(
                "{} blocked in {} at {}",
                cx.id_list(&ms),
                reason,
                cx.short(site)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use gostall_model::FindingKind;

    /// `processBatch` waits forever in a WaitGroup while `main` waits for SIGTERM; the dump caught
    /// the HTTP server's accept loop runnable, so no goroutine sits in IO wait.
    const DUMP: &str = "\
goroutine 35 [running]:
runtime/pprof.writeGoroutineStacks({0x771900, 0xc00014a000})
\t/go/src/runtime/pprof/pprof.go:703 +0x6a
net/http.(*conn).serve(0xc000122000, {0x773760, 0xc0001020f0})
\t/go/src/net/http/server.go:2014 +0x5f4
created by net/http.(*Server).Serve in goroutine 6
\t/go/src/net/http/server.go:3091 +0x5cb

goroutine 1 [chan receive]:
main.main()
\t/app/main.go:102 +0xba

goroutine 6 [runnable]:
net/http.(*Server).Serve(0xc0000d0000, {0x773110, 0xc000062100})
\t/go/src/net/http/server.go:3091 +0x5cb
net/http/httptest.(*Server).goServe.func1()
\t/go/src/net/http/httptest/server.go:310 +0x5b
created by net/http/httptest.(*Server).goServe in goroutine 1
\t/go/src/net/http/httptest/server.go:308 +0x65

goroutine 7 [semacquire]:
sync.runtime_Semacquire(0xc00007d680?)
\t/go/src/runtime/sema.go:62 +0x25
sync.(*WaitGroup).Wait(0xc00003ef38?)
\t/go/src/sync/waitgroup.go:116 +0x48
main.processBatch({0xc00009c480, 0x18, 0x0?})
\t/app/main.go:55 +0x1a5
main.runBatches()
\t/app/main.go:71 +0x3d
created by main.main in goroutine 1
\t/app/main.go:79 +0x4f

goroutine 34 [syscall]:
os/signal.signal_recv()
\t/go/src/runtime/sigqueue.go:152 +0x29
os/signal.loop()
\t/go/src/os/signal/signal_unix.go:23 +0x13
created by os/signal.Notify.func1.1 in goroutine 1
\t/go/src/os/signal/signal.go:151 +0x1f
";

    fn kinds(dump: &str) -> Vec<FindingKind> {
        let mut snap = gostall_ingest::new_snapshot();
        gostall_ingest::ingest_reader("dump", dump.as_bytes(), &mut snap).unwrap();
        crate::analyze(&snap)
            .findings
            .iter()
            .map(|f| f.kind)
            .collect()
    }

    #[test]
    fn a_signal_loop_or_a_server_can_still_wake_the_program() {
        let got = kinds(DUMP);
        assert!(!got.contains(&FindingKind::Deadlock), "{got:?}");
        assert!(got.contains(&FindingKind::GoroutineLeak), "{got:?}");
        // Without the signal loop, the server alone keeps it from being a global stall.
        let no_signals = DUMP.split("goroutine 34").next().unwrap();
        assert!(!kinds(no_signals).contains(&FindingKind::Deadlock));
        // With neither, nothing is left to wake main or processBatch.
        let neither: String = no_signals
            .split("\n\n")
            .filter(|g| !g.contains("net/http"))
            .collect::<Vec<_>>()
            .join("\n\n");
        assert!(kinds(&neither).contains(&FindingKind::Deadlock));
    }
}
