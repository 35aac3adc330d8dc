//! `cgo_blocked`: goroutines stuck on the Go/C border, in either direction.
//!
//! **Go → C.** Each goroutine in a cgo call holds an OS thread that the Go scheduler cannot use.
//! Several at one call site, one blocked in the kernel (live), or one for minutes is a warning; a
//! single short call is only info (a healthy program that uses cgo may be caught mid-call). From a
//! live process the finding follows the whole chain: goroutine → the C function it called (from the
//! thread's native stack, file:line when the executable has DWARF) → the system call that thread
//! sits in, descriptors resolved → how long, and the thread's kernel state. C threads that wait on
//! each other's `pthread_mutex_t` (owner tids read from the mutexes) are a deadlock: critical.
//!
//! **C → Go.** A thread created by C that calls an exported Go function runs the callback as a
//! goroutine locked to that thread. When the callback blocks in Go (a channel nobody serves, a
//! lock), the C thread never returns to its library: warning, critical when the wait can never end.
//!
//! Leaves alone: a single short cgo call whose thread is running, callbacks that are running or
//! sleeping, and (live) callbacks whose wait a second read no longer found.

use crate::context::{human_duration, plural};
use crate::{Context, Rule};
use gostall_goruntime as rt;
use gostall_model::{
    Finding, FindingKind, GoState, Goroutine, NativeFrame, Severity, ThreadFacts, ThreadOrigin,
    WaitReason,
};
use rustc_hash::{FxHashMap, FxHashSet};

/// The cgo rule.
pub struct CgoBlocked;

impl Rule for CgoBlocked {
    fn kind(&self) -> FindingKind {
        FindingKind::CgoBlocked
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let threads: FxHashMap<i32, &ThreadFacts> =
            cx.snap.threads.iter().map(|t| (t.tid, t)).collect();
        let thread_of = |g: &Goroutine| g.thread.and_then(|tid| threads.get(&tid).copied());
        let mut out = Vec::new();
        let in_cgo = cx.select(|g, _| g.wait_reason == Some(WaitReason::Cgo));
        let deadlocked = c_deadlocks(cx, &in_cgo, &threads, &mut out);
        let members: Vec<u32> = in_cgo
            .into_iter()
            .filter(|i| !deadlocked.contains(i))
            .collect();
        for (site, ms) in cx.by_site(&members) {
            out.push(calls_into_c(cx, site, &ms, &thread_of));
        }
        let callbacks: Vec<u32> = cx
            .select(|g, f| {
                f.user_frame.is_some()
                    && matches!(g.state, GoState::Waiting)
                    && g.wait_reason.is_some_and(holds_callback)
                    && !momentary(cx, g)
            })
            .into_iter()
            .filter(|&i| cx.is_cgo_callback(cx.g(i)))
            .collect();
        for (site, ms) in cx.by_site(&callbacks) {
            out.push(callbacks_from_c(cx, site, &ms, &thread_of));
        }
        out
    }
}

/// A wait that keeps a callback from C in Go until another goroutine (or the network) ends it:
/// channel, lock, WaitGroup and Cond waits and descriptor readiness. A sleep ends by itself, and a
/// callback that sleeps a moment is ordinary.
fn holds_callback(r: WaitReason) -> bool {
    r.is_sync_block() || r == WaitReason::IoWait
}

/// Live: a wait the second read no longer found (not stamped by the runtime either) and the proof
/// did not find leaked — a callback caught in a handoff that completed, not a stuck one.
fn momentary(cx: &Context<'_>, g: &Goroutine) -> bool {
    cx.snap
        .live
        .as_ref()
        .is_some_and(|l| l.second_look_us.is_some())
        && g.wait_since == gostall_model::WaitSince::Unknown
        && !cx.proven_leaked.contains(&g.id)
}

/// The C function a cgo call entered, from the thread's native stack: the innermost frame with
/// source information that is not cgo machinery, else the outermost non-machinery frame (the
/// function the trampoline called).
fn c_function(t: &ThreadFacts) -> Option<&NativeFrame> {
    let own = |f: &&NativeFrame| {
        f.function
            .as_deref()
            .is_some_and(|n| !rt::is_cgo_machinery(n))
    };
    t.native_stack
        .iter()
        .filter(own)
        .find(|f| f.file.is_some())
        .or_else(|| t.native_stack.iter().rfind(own))
}

fn c_frame_text(f: &NativeFrame) -> String {
    let name = f.function.as_deref().unwrap_or("?");
    match (&f.file, f.line) {
        (Some(file), Some(line)) => format!("C {name} ({}:{line})", basename(file)),
        (Some(file), None) => format!("C {name} ({})", basename(file)),
        _ => format!("C {name}"),
    }
}

fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// `thread 1234 (S, wchan flock_lock_inode_wait)`.
fn thread_text(t: &ThreadFacts) -> String {
    let mut s = format!("thread {} ({}", t.tid, t.state);
    if let Some(w) = t.wchan.as_deref().filter(|w| !w.is_empty() && *w != "0") {
        s.push_str(&format!(", wchan {w}"));
    }
    if t.origin != ThreadOrigin::Go && !t.name.is_empty() {
        s.push_str(&format!(", \"{}\"", t.name));
    }
    s.push(')');
    s
}

fn syscall_text(t: &ThreadFacts) -> Option<String> {
    let sc = t.syscall.as_ref()?;
    sc.text
        .clone()
        .or_else(|| sc.name.clone().map(|n| format!("{n}(…)")))
}

fn syscall_name(t: &ThreadFacts) -> Option<&str> {
    t.syscall.as_ref().and_then(|s| s.name.as_deref())
}

fn waited(g: &Goroutine) -> String {
    match (g.wait_ns, g.wait_minutes) {
        (Some(ns), _) => format!(", blocked ≥ {}", human_duration(ns)),
        (None, Some(m)) => format!(", blocked {m} minute{}", plural(u64::from(m))),
        _ => String::new(),
    }
}

/// The goroutine's innermost user function, `?` when it has none.
fn user_func<'c>(cx: &'c Context<'_>, g: &Goroutine) -> &'c str {
    cx.facts(g)
        .user_frame
        .map_or("?", |f| cx.func(cx.snap.tables.frame(f).function))
}

/// The whole chain of one goroutine in a cgo call.
fn chain(cx: &Context<'_>, g: &Goroutine, t: Option<&ThreadFacts>, cfunc: &str) -> String {
    let mut s = format!("goroutine {} in {}", g.id, user_func(cx, g));
    match t {
        Some(t) => {
            match c_function(t) {
                Some(f) => s.push_str(&format!(" → {}", c_frame_text(f))),
                None => s.push_str(&format!(" → {cfunc}")),
            }
            match syscall_text(t) {
                Some(sc) => s.push_str(&format!(" → {sc}")),
                None if t.state == "R" => s.push_str(" → running C code"),
                None => {}
            }
            s.push_str(&waited(g));
            s.push_str(&format!(" on {}", thread_text(t)));
        }
        None => {
            s.push_str(&format!(" → {cfunc}"));
            s.push_str(&waited(g));
        }
    }
    s
}

fn cfunc_name(cx: &Context<'_>, g: &Goroutine) -> String {
    cx.facts(g)
        .cgo_fn
        .map(|s| {
            let name = cx.snap.tables.str(s);
            match name.find("._Cfunc_") {
                Some(i) => format!("C.{}", &name[i + 8..]),
                None => name.to_string(),
            }
        })
        .unwrap_or_else(|| "a C function".into())
}

fn calls_into_c<'t>(
    cx: &Context<'_>,
    site: gostall_model::FrameId,
    ms: &[u32],
    thread_of: &impl Fn(&Goroutine) -> Option<&'t ThreadFacts>,
) -> Finding {
    let n = cx.count(ms);
    let g0 = cx.g(ms[0]);
    let cfunc = cfunc_name(cx, g0);
    let func = cx.func(cx.snap.tables.frame(site).function);
    let t0 = thread_of(g0);
    // Live: a thread sleeping in the kernel inside C is blocked, not merely busy.
    let kernel_blocked = ms
        .iter()
        .any(|&i| thread_of(cx.g(i)).is_some_and(|t| t.syscall.is_some() && t.state != "R"));
    let mins = cx.max_minutes(ms);
    let sev = if mins.is_some_and(|m| m >= 5) || n >= 50 {
        Severity::Critical
    } else if n >= 2 || mins.is_some() || kernel_blocked {
        Severity::Warning
    } else {
        Severity::Info
    };
    let c_text = t0.and_then(c_function).map(c_frame_text);
    let sys = t0.and_then(syscall_name);
    let title = match (&c_text, sys) {
        (Some(c), Some(sc)) => {
            format!("{n} goroutine{} stuck in {c} → {sc} from {func}", plural(n))
        }
        (Some(c), None) => format!("{n} goroutine{} stuck in {c} from {func}", plural(n)),
        _ => format!(
            "{n} goroutine{} stuck in cgo call {cfunc} from {func}",
            plural(n)
        ),
    };
    let mut evidence = Vec::new();
    if t0.is_some() {
        // The first chain in full; the others only when they differ from it.
        let key = |g: &Goroutine| {
            thread_of(g).map(|t| {
                (
                    c_function(t).and_then(|f| f.function.clone()),
                    syscall_name(t).map(str::to_string),
                )
            })
        };
        let first_key = key(g0);
        evidence.push(chain(cx, g0, t0, &cfunc));
        let (mut same, mut shown) = (Vec::new(), 0);
        for &i in &ms[1..] {
            let g = cx.g(i);
            if key(g) == first_key {
                same.push(i);
            } else if shown < 3 {
                shown += 1;
                evidence.push(chain(cx, g, thread_of(g), &cfunc));
            }
        }
        if !same.is_empty() {
            let tids: Vec<String> = same
                .iter()
                .filter_map(|&i| thread_of(cx.g(i)).map(|t| t.tid.to_string()))
                .take(6)
                .collect();
            evidence.push(format!(
                "{} in the same call{}{}",
                cx.id_list(&same),
                if tids.is_empty() { "" } else { " on threads " },
                tids.join(", ")
            ));
        }
        if let Some(t) = t0.filter(|t| !t.native_stack.is_empty()) {
            let frames: Vec<String> = t
                .native_stack
                .iter()
                .take(8)
                .map(|f| match (&f.function, &f.file, f.line) {
                    (Some(name), Some(file), Some(line)) => {
                        format!("{name} ({}:{line})", basename(file))
                    }
                    (Some(name), _, _) => {
                        format!("{name}+{:#x} [{}]", f.offset, basename(&f.object))
                    }
                    _ => format!("{:#x} [{}]", f.pc, basename(&f.object)),
                })
                .collect();
            evidence.push(format!(
                "C stack of thread {}: {}",
                t.tid,
                frames.join(" ← ")
            ));
        } else if let Some(note) = t0.and_then(|t| t.native_note.as_deref()) {
            evidence.push(format!(
                "C stack of thread {} not read: {note}",
                t0.map_or(0, |t| t.tid)
            ));
        }
    } else {
        evidence.push(format!(
            "{} in syscall via runtime.cgocall → {cfunc} at {}{}",
            cx.id_list(ms),
            cx.short(site),
            cx.minutes_suffix(ms)
        ));
    }
    if let Some(lib) = cx.facts(g0).lib_frame {
        evidence.push(format!("called through {}", cx.short(lib)));
    }
    let sqlite_busy = gostall_libs::is_sqlite_step(&cfunc)
        || cx
            .facts(g0)
            .cgo_fn
            .is_some_and(|f| gostall_libs::is_sqlite_step(cx.func(f)));
    if sqlite_busy && matches!(sys, Some("nanosleep" | "clock_nanosleep")) {
        let holder = crate::rules::lock_contention::database_lock_holder(cx);
        evidence.push(match holder {
            Some((h, w)) => format!(
                "SQLite's busy handler sleeps and retries: another connection holds the database's write lock — likely the open transaction (goroutine {w} in {}) of {}",
                gostall_libs::OPEN_TX_WATCHER,
                cx.describe_goroutine(h)
            ),
            None => "SQLite's busy handler sleeps and retries: another connection holds the database's write lock".to_string(),
        });
    }
    let what = c_text.clone().unwrap_or_else(|| cfunc.clone());
    let advice = match sys {
        Some("flock" | "fcntl") => "The C code waits for a file lock that another process or descriptor holds: find the holder (lslocks, /proc/locks) and why it keeps the lock; take the lock with LOCK_NB and retry with a deadline, or take it from Go where the wait can be cancelled.",
        Some("read" | "recvfrom" | "recvmsg" | "readv" | "pread64" | "poll" | "ppoll" | "select" | "pselect6" | "epoll_wait" | "connect" | "accept" | "accept4") => "The C code waits for a peer that does not answer: give the C library a timeout (most have one: SO_RCVTIMEO, a poll timeout, a client option), or move that I/O to Go where deadlines and cancellation work; bound concurrent cgo calls with a worker pool so a hung peer cannot take every thread.",
        Some("nanosleep" | "clock_nanosleep") if sqlite_busy => "SQLite waits for the database's write lock, held by another connection's open transaction: commit or roll back every transaction promptly (`defer tx.Rollback()` right after Begin), never hold one across a wait in Go, use one writer connection (SetMaxOpenConns(1) for writes) or WAL mode, and keep _busy_timeout short enough that callers fail instead of hanging.",
        Some("nanosleep" | "clock_nanosleep") => "The C code sleeps and retries on its own schedule: configure the library's retry limit and backoff, or make the call with a deadline you control (a pure-Go client, or a bounded worker pool whose callers give up after a timeout).",
        Some("futex") => "The C code waits on a lock or condition variable inside the library: find the thread holding it (the chain above) and why; serialise calls into a library that is not thread-safe behind one Go mutex.",
        _ => "Find why the C call blocks (the chain above shows where). Give the C library a timeout if it has one; bound concurrent cgo calls with a worker pool or semaphore so a hung library cannot take every thread; prefer a pure-Go implementation where one exists.",
    };
    cx.finding(
        FindingKind::CgoBlocked,
        sev,
        title,
        format!("These goroutines are inside {what}: while C code runs, each holds an OS thread and Go cannot preempt, time out or cancel it. If the C side blocks (a lock, a socket, a slow library), the goroutines and their callers wait with it."),
        ms,
        Some(site),
        evidence,
        advice,
    )
    .with_threads(ms.iter().filter_map(|&i| cx.g(i).thread))
}

/// Finds cycles of C threads waiting on pthread mutexes owned by each other; one critical finding
/// per cycle. Returns the goroutines covered.
fn c_deadlocks(
    cx: &Context<'_>,
    in_cgo: &[u32],
    threads: &FxHashMap<i32, &ThreadFacts>,
    out: &mut Vec<Finding>,
) -> FxHashSet<u32> {
    let mut covered = FxHashSet::default();
    let waits_on_mutex = |t: &ThreadFacts| {
        t.futex_owner.is_some()
            && (t.in_cgo || t.origin != ThreadOrigin::Go)
            && (t.native_stack.is_empty()
                || t.native_stack.iter().any(|f| {
                    f.function.as_deref().is_some_and(|n| {
                        n.contains("pthread_mutex_lock")
                            || n.contains("pthread_mutex_timedlock")
                            || n.contains("pthread_mutex_clocklock")
                            || n.contains("lll_lock_wait")
                    })
                }))
    };
    let g_on: FxHashMap<i32, u32> = in_cgo
        .iter()
        .filter_map(|&i| cx.g(i).thread.map(|t| (t, i)))
        .collect();
    let mut seen: FxHashSet<i32> = FxHashSet::default();
    let mut tids: Vec<i32> = threads.keys().copied().collect();
    tids.sort_unstable();
    for start in tids {
        if seen.contains(&start) {
            continue;
        }
        let mut path = vec![start];
        let mut cur = start;
        let cycle = loop {
            let Some(t) = threads.get(&cur).filter(|t| waits_on_mutex(t)) else {
                break None;
            };
            let next = t.futex_owner.unwrap_or(0);
            if let Some(pos) = path.iter().position(|&x| x == next) {
                break Some(path[pos..].to_vec());
            }
            if path.len() > 64 {
                break None;
            }
            path.push(next);
            cur = next;
        };
        seen.extend(&path);
        let Some(cycle) = cycle else { continue };
        let mut ms = Vec::new();
        let mut evidence = Vec::new();
        let mut names = Vec::new();
        for (k, &tid) in cycle.iter().enumerate() {
            let t = threads[&tid];
            let owner = cycle[(k + 1) % cycle.len()];
            let lock = t
                .syscall
                .as_ref()
                .and_then(|s| s.text.as_deref())
                .and_then(|s| Some(&s[s.find('<')? + 1..s.find('>')?]))
                .map(str::to_string)
                .unwrap_or_else(|| {
                    format!("mutex {:#x}", t.syscall.as_ref().map_or(0, |s| s.args[0]))
                });
            names.push(lock.clone());
            let who = match g_on.get(&tid) {
                Some(&i) => {
                    ms.push(i);
                    let g = cx.g(i);
                    let go = user_func(cx, g);
                    let c = c_function(t)
                        .map(c_frame_text)
                        .unwrap_or_else(|| cfunc_name(cx, g));
                    format!("goroutine {} in {go} → {c}", g.id)
                }
                None => match c_function(t) {
                    Some(f) => format!("C thread in {}", c_frame_text(f)),
                    None => "a C thread".to_string(),
                },
            };
            let call = syscall_text(t)
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            evidence.push(format!(
                "{who} waits in pthread_mutex_lock{call} for {lock}, held by thread {owner}{} on {}",
                g_on.get(&tid).map(|&i| waited(cx.g(i))).unwrap_or_default(),
                thread_text(t)
            ));
        }
        covered.extend(&ms);
        let site = ms.first().and_then(|&i| cx.facts(cx.g(i)).user_frame);
        let n = cycle.len();
        out.push(
            cx.finding(
                FindingKind::CgoBlocked,
                Severity::Critical,
                format!(
                    "C deadlock: {n} threads wait on each other's pthread mutexes ({})",
                    names.join(", ")
                ),
                "Each of these threads holds one mutex in C and waits for another that the next one holds, round the cycle: none can proceed, ever. The goroutines that called into C are stuck with them, and so is anything that waits for those goroutines.".into(),
                &ms,
                site,
                evidence,
                "The C code takes these mutexes in different orders (lock-order inversion). Fix the order in the library (or report it to its vendor); until then, serialise every call into that library behind one Go mutex so two calls never overlap. Restarting is the only way out of a deadlock that has happened.",
            )
            .with_threads(cycle.iter().copied()),
        );
    }
    covered
}

fn callbacks_from_c<'t>(
    cx: &Context<'_>,
    site: gostall_model::FrameId,
    ms: &[u32],
    thread_of: &impl Fn(&Goroutine) -> Option<&'t ThreadFacts>,
) -> Finding {
    let n = cx.count(ms);
    let g0 = cx.g(ms[0]);
    let func = cx.func(cx.snap.tables.frame(site).function);
    let reason = g0.wait_reason.map(|r| r.as_str()).unwrap_or("waiting");
    let forever = g0.wait_reason.is_some_and(|r| r.is_forever());
    let mins = cx.max_minutes(ms);
    let sev = if forever || mins.is_some_and(|m| m >= 5) {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let ts: Vec<&ThreadFacts> = ms.iter().filter_map(|&i| thread_of(cx.g(i))).collect();
    let mut evidence = Vec::new();
    if ts.is_empty() {
        evidence.push(format!(
            "{} called from C (runtime.cgocallback) wait ({reason}) at {}{}",
            cx.id_list(ms),
            cx.short(site),
            cx.minutes_suffix(ms)
        ));
    } else {
        let foreign = ts.iter().filter(|t| t.origin != ThreadOrigin::Go).count();
        let names: Vec<String> = ts
            .iter()
            .take(6)
            .map(|t| format!("{} \"{}\"", t.tid, t.name))
            .collect();
        evidence.push(format!(
            "{} called from C wait ({reason}) at {}{} on threads {}{}",
            cx.id_list(ms),
            cx.short(site),
            cx.minutes_suffix(ms),
            names.join(", "),
            if ts.len() > 6 { ", …" } else { "" }
        ));
        if foreign > 0 {
            evidence.push(format!(
                "{foreign} of these threads were created by C code, not by the Go runtime (extra Ms)"
            ));
        }
        if let Some(t) = ts.iter().find(|t| !t.native_stack.is_empty()) {
            let frames: Vec<String> = t
                .native_stack
                .iter()
                .filter(|f| {
                    f.function
                        .as_deref()
                        .is_some_and(|n| !rt::is_cgo_machinery(n))
                })
                .take(4)
                .map(c_frame_text)
                .collect();
            if !frames.is_empty() {
                evidence.push(format!(
                    "C side of thread {}: {}",
                    t.tid,
                    frames.join(" ← ")
                ));
            }
        }
    }
    if let Some(w) = cx.waited_objects(ms, "channel") {
        evidence.push(w);
    }
    cx.finding(
        FindingKind::CgoBlocked,
        sev,
        format!(
            "{n} C thread{} stuck in {} callback into Go: {func} ({reason})",
            plural(n),
            if n == 1 { "its" } else { "their" }
        ),
        format!("C code called {func} on its own thread{}, and the callback is blocked in Go ({reason}). Until it returns, that C thread does nothing for its library: events, I/O or timers it serves stop.", plural(n)),
        ms,
        Some(site),
        evidence,
        "Never block in a callback from C: hand the work to a goroutine through a buffered channel or a select with a default/timeout, and make sure whoever receives outlives the C library (stop the library before its consumer returns).",
    )
    .with_threads(ms.iter().filter_map(|&i| cx.g(i).thread))
}

#[cfg(test)]
mod tests {
    use gostall_model::{FindingKind, LiveMeta, WaitSince};

    /// A callback from a C thread, parked sending on a channel.
    const DUMP: &str = "\
goroutine 1 [chan receive]:
main.main()
\t/app/main.go:40 +0x1d

goroutine 35 [chan send, locked to thread]:
runtime.gopark(0x0?, 0x0?, 0x0?, 0x0?, 0x0?)
\t/go/src/runtime/proc.go:398 +0xce
runtime.chansend(0xc000020060, 0xc00004df28, 0x1, 0x1?)
\t/go/src/runtime/chan.go:259 +0x3a5
runtime.chansend1(0x0?, 0x0?)
\t/go/src/runtime/chan.go:145 +0x17
main.goDeliver(...)
\t/app/main.go:27 +0x5a
_cgoexp_1d2f0e1bd1f0_goDeliver(0x0?)
\t_cgo_gotypes.go:62 +0x25
runtime.cgocallbackg1(0x4a1e60, 0x7f0000000000?, 0x0)
\t/go/src/runtime/cgocall.go:315 +0x2b1
runtime.cgocallbackg(0x0?, 0x0?, 0x0?)
\t/go/src/runtime/cgocall.go:234 +0x109
runtime.cgocallback(0x0, 0x0, 0x0)
\t/go/src/runtime/asm_amd64.s:1035 +0xcb
runtime.goexit()
\t/go/src/runtime/asm_amd64.s:1650 +0x1
";

    fn callback_findings(live: Option<LiveMeta>, since: WaitSince) -> usize {
        let mut snap = gostall_ingest::new_snapshot();
        gostall_ingest::ingest_reader("dump", DUMP.as_bytes(), &mut snap).unwrap();
        snap.live = live;
        for g in &mut snap.goroutines {
            g.wait_since = since;
        }
        crate::analyze(&snap)
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::CgoBlocked)
            .count()
    }

    #[test]
    fn a_callback_caught_in_a_wait_that_did_not_last_is_left_alone() {
        let second_look = || {
            Some(LiveMeta {
                second_look_us: Some(100_000),
                ..LiveMeta::default()
            })
        };
        // A dump cannot tell: the wait is reported.
        assert_eq!(callback_findings(None, WaitSince::Unknown), 1);
        // Live, still in the same wait at the second read: reported.
        assert_eq!(callback_findings(second_look(), WaitSince::Observed), 1);
        // Live, gone from that wait by the second read: a handoff that completed.
        assert_eq!(callback_findings(second_look(), WaitSince::Unknown), 0);
        // Live without a second read: reported.
        assert_eq!(
            callback_findings(Some(LiveMeta::default()), WaitSince::Unknown),
            1
        );
    }
}
