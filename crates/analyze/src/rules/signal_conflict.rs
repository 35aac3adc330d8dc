//! `signal_conflict`: signal masks and handlers that keep the Go runtime from getting signals it
//! needs. Live reads and cores (masks, dispositions and the runtime's records are not in dumps);
//! a core has the runtime's records and each thread's masks but no dispositions
//! (`SignalFacts::dispositions_known`), so there only the masks are judged.
//!
//! "Go thread" below means a thread with an M that is running Go code or idle between Go work:
//! not one in a cgo call, and not an extra M whose C thread is back in C (their masks are C's
//! business while C runs). Masks come from two readings a sample interval apart, so Go's own
//! moments with every signal blocked (around `clone`, thread start and exit, `fork`, inside a
//! signal handler) do not count.
//!
//! Flags, one finding per concern:
//! - **Preemption (SIGURG)**, unless `GODEBUG=asyncpreemptoff=1`: SIGURG ignored or reset to
//!   `SIG_DFL` process-wide; blocked on Go threads; or a preemption signal stuck on an M
//!   (`m.signalPending` set at both samples, `m.preemptGen` unchanged) while SIGURG is neither
//!   blocked nor pending on its thread nor ignored — then a handler other than Go's received it.
//!   Critical when the scheduler shows the harm now (the GC waits to stop the world, or a P on an
//!   affected thread kept one goroutine through the sample); a warning otherwise.
//! - **Faults (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP)**: blocked on Go threads, or ignored or
//!   reset process-wide after Go installed its handler: a fault there kills the process without a
//!   panic or traceback. Warning.
//! - **Profiling (SIGPROF)**: blocked on Go threads, ignored or reset — only when the CPU profiler
//!   is running or can be started (its entry point is linked in); a program that cannot profile
//!   loses nothing. Warning.
//! - **Other signals whose Go handler was replaced** (`runtime.handlingSig` set, `SigCgt` clear):
//!   SIGHUP/SIGINT/SIGTERM/SIGQUIT (warning: `os/signal` shutdown and SIGQUIT dumps are gone),
//!   SIGPIPE reset to `SIG_DFL` (warning: a write to a closed socket kills the process instead of
//!   returning EPIPE), SIGCHLD ignored (warning: the kernel reaps children, `exec.Cmd.Wait` fails
//!   with ECHILD); any other one is info.
//!
//! Leaves alone: threads Go did not create (C threads may block what they like); Ms in cgo calls
//! (C may block signals for the length of a call; they are only mentioned when a finding exists);
//! SIGPIPE ignored (C libraries commonly do it, Go then just returns EPIPE) or blocked (the write
//! still fails with EPIPE, and for stdout/stderr Go unblocks it before raising it); SIGCHLD and the
//! `_SigKill`/`_SigThrow` signals blocked on a thread (another thread takes them); handlers
//! present before Go started (`runtime.fwdSig`: Go forwards faults and SIGPIPE outside Go code to
//! them, e.g. a C crash reporter).

use crate::context::plural;
use crate::{Context, Rule};
use gostall_goruntime::signals::{self as sig, Role};
use gostall_model::{Finding, FindingKind, GoState, Severity, SignalFacts, ThreadFacts};

/// The signal-conflict rule.
pub struct SignalConflict;

/// Threads listed one per evidence line before "and N more".
const SHOW: usize = 6;

impl Rule for SignalConflict {
    fn kind(&self) -> FindingKind {
        FindingKind::SignalConflict
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let Some(sf) = &cx.snap.signals else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if !sf.async_preempt_off {
            out.extend(preemption(cx, sf));
        }
        out.extend(faults(cx, sf));
        out.extend(profiling(cx, sf));
        out.extend(replaced(cx, sf));
        out
    }
}

/// A thread that runs Go code (now or between Go work).
fn is_go_thread(t: &ThreadFacts) -> bool {
    t.m.is_some() && !t.in_cgo
}

/// How a signal's process-wide disposition departs from Go's handler, if it does (never when the
/// dispositions are not known: a core holds no sigaction table).
fn lost(sf: &SignalFacts, s: u32) -> Option<&'static str> {
    let b = sig::bit(s);
    if !sf.dispositions_known {
        None
    } else if sf.ignored & b != 0 {
        Some("ignored (SIG_IGN)")
    } else if sf.go_handled & b != 0 && sf.caught & b == 0 {
        Some("reset to the default action (SIG_DFL)")
    } else {
        None
    }
}

/// Go threads that block any of `mask`, in a stable order (stuck preemption first, then M id).
fn blocking<'a>(cx: &'a Context<'_>, mask: u64) -> Vec<&'a ThreadFacts> {
    let mut v: Vec<&ThreadFacts> = cx
        .snap
        .threads
        .iter()
        .filter(|t| is_go_thread(t) && t.sig_blocked & mask != 0)
        .collect();
    order(&mut v);
    v
}

fn order(v: &mut [&ThreadFacts]) {
    v.sort_by_key(|t| (!t.preempt_signal_stuck, t.m, t.tid));
}

/// Ms in cgo calls that block any of `mask` (mentioned, never flagged on their own).
fn blocking_in_c<'a>(cx: &'a Context<'_>, mask: u64) -> Vec<&'a ThreadFacts> {
    let mut v: Vec<&ThreadFacts> = cx
        .snap
        .threads
        .iter()
        .filter(|t| t.m.is_some() && t.in_cgo && t.sig_blocked & mask != 0)
        .collect();
    order(&mut v);
    v
}

/// The goroutine tied to a thread: the one locked to it, else the one it runs.
fn goroutine_of(cx: &Context<'_>, t: &ThreadFacts) -> Option<u32> {
    t.locked_goroutine
        .or(t.goroutine)
        .and_then(|id| cx.by_id.get(&id).copied())
}

/// `thread 123 (name), M 4: <what> — goroutine 7 locked to it, in main.f`.
fn describe(cx: &Context<'_>, t: &ThreadFacts, what: &str) -> String {
    let mut s = format!("thread {} ({})", t.tid, t.name);
    if let Some(m) = t.m {
        s.push_str(&format!(", M {m}"));
    }
    s.push_str(": ");
    s.push_str(what);
    let Some(i) = goroutine_of(cx, t) else {
        s.push_str(if t.spinning {
            "; idle, looking for work"
        } else {
            "; idle between goroutines"
        });
        return s;
    };
    let g = cx.g(i);
    let f = cx.facts(g);
    let user = f.user_frame.map(|fr| cx.short(fr));
    let locked = t.locked_goroutine == Some(g.id);
    let how = if locked { " locked to it" } else { "" };
    if t.in_cgo || g.wait_reason == Some(gostall_model::WaitReason::Cgo) {
        let cfn = f
            .cgo_fn
            .map(|c| cx.func(c).to_string())
            .unwrap_or_else(|| "C code".into());
        s.push_str(&format!("; goroutine {}{how} is in {cfn}", g.id));
        if let Some(u) = user {
            s.push_str(&format!(", called from {u}"));
        }
    } else if g.stack_unavailable || g.state == GoState::Running {
        s.push_str(&format!(
            "; runs goroutine {}{how} (its stack is not readable while it runs: --pause shows it)",
            g.id
        ));
    } else {
        let state = g
            .wait_reason
            .map(|r| r.as_str().to_string())
            .unwrap_or_else(|| format!("{:?}", g.state).to_lowercase());
        // Without user code, the outermost runtime or library function says what it is (the
        // os/signal loop, a GC worker).
        let place = user.or_else(|| {
            cx.snap
                .frames(g)
                .filter(|f| f.function != "runtime.goexit")
                .last()
                .map(|f| f.function.to_string())
        });
        match place {
            Some(p) => s.push_str(&format!("; goroutine {}{how}, {state} in {p}", g.id)),
            None => s.push_str(&format!("; goroutine {}{how}, {state}", g.id)),
        }
    }
    s
}

/// Evidence lines for threads, bounded.
fn thread_lines(
    cx: &Context<'_>,
    ts: &[&ThreadFacts],
    what: impl Fn(&ThreadFacts) -> String,
) -> Vec<String> {
    let mut v: Vec<String> = ts
        .iter()
        .take(SHOW)
        .map(|t| describe(cx, t, &what(t)))
        .collect();
    if ts.len() > SHOW {
        v.push(format!("and {} more threads", ts.len() - SHOW));
    }
    v
}

/// Goroutine indices tied to the threads, and the location: the innermost user frame of the
/// first such goroutine that has one.
fn members_and_site(
    cx: &Context<'_>,
    ts: &[&ThreadFacts],
) -> (Vec<u32>, Option<gostall_model::FrameId>) {
    let mut members: Vec<u32> = ts.iter().filter_map(|t| goroutine_of(cx, t)).collect();
    members.dedup();
    let site = members.iter().find_map(|&i| cx.facts(cx.g(i)).user_frame);
    (members, site)
}

fn tids(ts: &[&ThreadFacts]) -> Vec<i32> {
    let mut v: Vec<i32> = ts.iter().map(|t| t.tid).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Whether the scheduler shows that some preemption is needed and not happening: the GC waits to
/// stop the world, or a P whose M is one of `ms` kept one goroutine through the sample.
fn stalled_now(cx: &Context<'_>, ms: &[i64]) -> bool {
    cx.snap.scheduler.as_ref().is_some_and(|s| s.gc_waiting)
        || cx.snap.procs.iter().any(|p| {
            p.status == "running"
                && p.schedtick_later == Some(p.schedtick)
                && p.m.is_some_and(|m| ms.contains(&m))
        })
}

fn preemption(cx: &Context<'_>, sf: &SignalFacts) -> Option<Finding> {
    let urg = sig::bit(sig::SIGURG);
    let process = lost(sf, sig::SIGURG);
    let blocked = blocking(cx, urg);
    // A preemption signal Go's handler never saw, on a thread where nothing kept it from being
    // delivered: another handler took it.
    let mut replaced: Vec<&ThreadFacts> = if process.is_none() {
        cx.snap
            .threads
            .iter()
            .filter(|t| {
                is_go_thread(t)
                    && t.preempt_signal_stuck
                    && (t.sig_blocked | t.sig_pending) & urg == 0
            })
            .collect()
    } else {
        Vec::new()
    };
    order(&mut replaced);
    if process.is_none() && blocked.is_empty() && replaced.is_empty() {
        return None;
    }
    let stuck: Vec<&ThreadFacts> = cx
        .snap
        .threads
        .iter()
        .filter(|t| is_go_thread(t) && t.preempt_signal_stuck)
        .collect();
    let go_threads = cx.snap.threads.iter().filter(|t| is_go_thread(t)).count();
    let mut affected: Vec<&ThreadFacts> = blocked.iter().chain(&replaced).copied().collect();
    if process.is_some() {
        affected.extend(stuck.iter().copied());
    }
    order(&mut affected);
    affected.dedup_by_key(|t| t.tid);
    let ms: Vec<i64> = if process.is_some() {
        cx.snap.threads.iter().filter_map(|t| t.m).collect()
    } else {
        affected.iter().filter_map(|t| t.m).collect()
    };
    let severity = if stalled_now(cx, &ms) {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let stuck_note = |t: &ThreadFacts| {
        if t.preempt_signal_stuck {
            ", a preemption request stuck (m.signalPending set, m.preemptGen unchanged)"
        } else {
            ""
        }
    };
    let mut evidence = Vec::new();
    let (title, what_breaks, advice);
    if let Some(how) = process {
        title = format!(
            "SIGURG is {} process-wide: asynchronous preemption is off",
            if how.contains("SIG_IGN") {
                "ignored"
            } else {
                "reset to SIG_DFL"
            }
        );
        evidence.push(format!(
            "SIGURG is {how} in this process, though the Go runtime installed its handler for it{}",
            if sf.go_handled & urg != 0 {
                ""
            } else {
                " (Go no longer records it as handled: os/signal.Ignore or Reset may have done this)"
            }
        ));
        what_breaks =
            format!("asynchronous preemption does not work on any of the {go_threads} Go threads");
        advice = "Find what changed SIGURG's disposition after Go started: signal(SIGURG, SIG_IGN) or sigaction in C code (libraries sometimes ignore every signal they do not use), or signal.Ignore(syscall.SIGURG) / signal.Reset in Go. Leave SIGURG to the Go runtime; a C library that needs it must chain to Go's handler (see sigaction's old action) rather than replace it.".to_string();
    } else if !blocked.is_empty() {
        let n = blocked.len();
        title = format!(
            "SIGURG blocked on {n} Go thread{}: asynchronous preemption cannot reach {}",
            plural(n as u64),
            if n == 1 { "it" } else { "them" }
        );
        what_breaks = format!(
            "asynchronous preemption does not work on {}",
            if n == 1 {
                "this thread".to_string()
            } else {
                format!("these {n} threads")
            }
        );
        advice = "Find the C code that blocks SIGURG on the threads that call it: pthread_sigmask or sigprocmask with SIG_BLOCK or SIG_SETMASK (often \"block all signals\", or a library keeping a signal for its own sigwait thread). Make it restore the caller's mask before returning (pthread_sigmask(SIG_BLOCK, &set, &old) … pthread_sigmask(SIG_SETMASK, &old, NULL)), or do its signal work on threads it creates itself. Until then, do not run long loops on goroutines locked to those threads.".to_string();
    } else {
        let n = replaced.len();
        title = format!(
            "SIGURG taken over by another handler: preemption signals to {n} thread{} never reached Go",
            plural(n as u64)
        );
        what_breaks = format!(
            "asynchronous preemption does not work on {} (an M whose request is stuck gets no further preemption signal), and any other thread's next request is lost the same way",
            if n == 1 {
                "this thread".to_string()
            } else {
                format!("these {n} threads")
            }
        );
        advice = "Find the C code that installs a SIGURG handler with sigaction or signal() (typically for TCP urgent data, with fcntl F_SETOWN). It must keep the previous handler (the old action sigaction returns) and call it for every SIGURG, and install with SA_ONSTACK|SA_SIGINFO: Go's preemption signals arrive there and must reach Go's handler. Better, learn about urgent data without a signal (poll for POLLPRI, SO_OOBINLINE), or receive SIGURG in Go with os/signal.Notify and tolerate spurious ones.".to_string();
    }
    if !blocked.is_empty() {
        evidence.extend(thread_lines(cx, &blocked, |t| {
            format!(
                "SIGURG blocked{}{}",
                if t.sig_pending & urg != 0 {
                    " and pending"
                } else {
                    ""
                },
                stuck_note(t)
            )
        }));
    }
    if !replaced.is_empty() {
        evidence.push("SIGURG is caught (SigCgt) and the runtime records its own handler as installed (runtime.handlingSig), yet Go's handler does not see the preemption signals".to_string());
        evidence.extend(thread_lines(cx, &replaced, |_| {
            "a preemption signal was sent (m.signalPending) and Go's handler never acknowledged it (m.preemptGen unchanged over the sample), though SIGURG is neither blocked nor pending on the thread nor ignored: a handler other than Go's receives SIGURG".to_string()
        }));
    }
    if process.is_some() {
        let listed: Vec<&ThreadFacts> = stuck
            .iter()
            .filter(|t| t.sig_blocked & urg == 0)
            .copied()
            .collect();
        evidence.extend(thread_lines(cx, &listed, |_| {
            "a preemption request stuck (m.signalPending set, m.preemptGen unchanged)".to_string()
        }));
    }
    let in_c = blocking_in_c(cx, urg);
    if !in_c.is_empty() {
        evidence.push(format!(
            "also blocked on {} thread{} now in C calls (C may restore the mask before returning):",
            in_c.len(),
            plural(in_c.len() as u64)
        ));
        evidence.extend(thread_lines(cx, &in_c, |_| "SIGURG blocked".to_string()));
    }
    let (members, site) = members_and_site(cx, &affected);
    let mut f = cx.finding(
        FindingKind::SignalConflict,
        severity,
        title,
        format!("Go preempts a goroutine that runs for more than 10 ms without a function call by sending SIGURG to its thread (asynchronous preemption); the GC's stop-the-world and the scheduler's time slicing rely on it. Here {what_breaks}: a tight loop there can stall the GC, and every goroutine waiting for it, until the loop ends."),
        &members,
        site,
        evidence,
        &advice,
    );
    f.threads = tids(&affected);
    Some(f)
}

fn faults(cx: &Context<'_>, sf: &SignalFacts) -> Option<Finding> {
    let mask = sig::SYNC_SIGNALS.iter().fold(0, |m, &s| m | sig::bit(s));
    let blocked = blocking(cx, mask);
    let process: Vec<(u32, &str)> = sig::SYNC_SIGNALS
        .iter()
        .filter_map(|&s| lost(sf, s).map(|how| (s, how)))
        .collect();
    if blocked.is_empty() && process.is_empty() {
        return None;
    }
    let mut names = blocked.iter().fold(0, |m, t| m | (t.sig_blocked & mask));
    for (s, _) in &process {
        names |= sig::bit(*s);
    }
    let names = sig::mask_names(names);
    let title = if process.is_empty() {
        let n = blocked.len();
        format!(
            "{names} blocked on {n} Go thread{}: a crash there skips Go's panic and traceback",
            plural(n as u64)
        )
    } else {
        format!("{names} no longer handled by Go: a crash skips Go's panic and traceback")
    };
    let mut evidence: Vec<String> = process
        .iter()
        .map(|(s, how)| format!("{} is {how} process-wide", sig::name(*s)))
        .collect();
    evidence.extend(thread_lines(cx, &blocked, |t| {
        format!("{} blocked", sig::mask_names(t.sig_blocked & mask))
    }));
    let (members, site) = members_and_site(cx, &blocked);
    let mut f = cx.finding(
        FindingKind::SignalConflict,
        Severity::Warning,
        title,
        "Go turns SIGSEGV, SIGBUS and SIGFPE (nil dereferences, bad memory access, integer division by zero) into panics, and SIGILL and SIGTRAP into fatal errors with a traceback. A fault on a thread that blocks the signal, or while it is ignored or reset, is delivered by the kernel with the default action: the process dies on the spot — no panic, no recover, no deferred cleanup, no traceback, at best a core dump.".into(),
        &members,
        site,
        evidence,
        "Find the C code that blocks or resets these signals (pthread_sigmask/sigprocmask with a full set, signal(SIGSEGV, …), sigaction) and make it restore the mask before returning to Go. A crash handler (Breakpad, Crashpad, a custom sigaction) must be installed before the Go runtime starts, so Go forwards to it, or chain to the previous handler with SA_ONSTACK.",
    );
    f.threads = tids(&blocked);
    Some(f)
}

fn profiling(cx: &Context<'_>, sf: &SignalFacts) -> Option<Finding> {
    if sf.cpu_profile_hz == 0 && !sf.cpu_profiler_linked {
        return None;
    }
    let prof = sig::bit(sig::SIGPROF);
    let blocked = blocking(cx, prof);
    let process = lost(sf, sig::SIGPROF);
    if blocked.is_empty() && process.is_none() {
        return None;
    }
    let now = if sf.cpu_profile_hz > 0 {
        format!("the CPU profiler is running ({} Hz)", sf.cpu_profile_hz)
    } else {
        "the program can start the CPU profiler (runtime/pprof or net/http/pprof is linked in)"
            .to_string()
    };
    let mut evidence = vec![now];
    let title = match process {
        Some(how) if how.contains("SIG_DFL") => {
            evidence.push(format!("SIGPROF is {how} process-wide"));
            "SIGPROF reset to SIG_DFL: starting the CPU profiler kills the process".to_string()
        }
        Some(how) => {
            evidence.push(format!("SIGPROF is {how} process-wide"));
            "SIGPROF ignored: CPU profiles come out empty".to_string()
        }
        None => {
            let n = blocked.len();
            format!(
                "SIGPROF blocked on {n} Go thread{}: CPU profiles miss their time",
                plural(n as u64)
            )
        }
    };
    evidence.extend(thread_lines(cx, &blocked, |_| {
        "SIGPROF blocked".to_string()
    }));
    let (members, site) = members_and_site(cx, &blocked);
    let mut f = cx.finding(
        FindingKind::SignalConflict,
        Severity::Warning,
        title,
        "Go's CPU profiler samples each thread with a SIGPROF timer. A thread that blocks SIGPROF is never sampled, so its CPU time is missing from profiles (and the hottest loop may be invisible); an ignored SIGPROF yields empty profiles, and SIGPROF's default action terminates the process.".into(),
        &members,
        site,
        evidence,
        "Find the C code that blocks or resets SIGPROF (pthread_sigmask/sigprocmask, signal, sigaction — C profilers such as gperftools install their own) and restore Go's mask and handler; do not run a second SIGPROF-based profiler in a Go process.",
    );
    f.threads = tids(&blocked);
    Some(f)
}

fn replaced(cx: &Context<'_>, sf: &SignalFacts) -> Option<Finding> {
    if !sf.dispositions_known {
        return None;
    }
    let mut lines = Vec::new();
    let mut names = Vec::new();
    let mut sev = Severity::Info;
    for s in sig::in_mask(sf.go_handled & !sf.caught) {
        let how = lost(sf, s).unwrap_or("no longer caught");
        let ignored = sf.ignored & sig::bit(s) != 0;
        let (effect, warn) = match sig::role(s) {
            // Reported by their own checks.
            Role::Preempt | Role::Profiling | Role::Fault => continue,
            Role::Termination => (
                "os/signal.Notify no longer receives it: a graceful shutdown never runs".to_string(),
                true,
            ),
            Role::Quit => (
                "SIGQUIT no longer prints every goroutine's stack".to_string(),
                true,
            ),
            Role::Pipe if ignored => continue,
            Role::Pipe => (
                "a write to a closed socket or pipe now kills the process instead of returning EPIPE".to_string(),
                true,
            ),
            Role::Child if !ignored => continue,
            Role::Child => (
                "the kernel reaps child processes itself: exec.Cmd.Wait and os.Process.Wait fail with ECHILD".to_string(),
                true,
            ),
            Role::Other => (
                "os/signal.Notify no longer receives it".to_string(),
                false,
            ),
        };
        if warn {
            sev = Severity::Warning;
        }
        names.push(sig::name(s));
        lines.push(format!("{} is {how}: {effect}", sig::name(s)));
    }
    if lines.is_empty() {
        return None;
    }
    let mut f = cx.finding(
        FindingKind::SignalConflict,
        sev,
        format!(
            "Go's handler for {} was replaced after the runtime installed it",
            names.join(", ")
        ),
        "The Go runtime installs its own handler for these signals at start-up (runtime.handlingSig still says so), but the process no longer catches them: something set them to SIG_IGN or SIG_DFL afterwards.".into(),
        &[],
        None,
        lines,
        "Find the C code that calls signal() or sigaction for these signals after Go started (libraries often reset or ignore signals in their init) and remove it. If the library must react to such a signal, receive it in Go with os/signal.Notify and call the library from there: Go forwards to a handler installed before it started only for faults and SIGPIPE outside Go code.",
    );
    f.threads = Vec::new();
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gostall_model::{SchedFacts, Snapshot};

    const URG: u64 = 1 << 22;
    const PIPE: u64 = 1 << 12;
    const PROF: u64 = 1 << 26;
    const SEGV: u64 = 1 << 10;
    /// What a healthy Go program shows: Go's handler on everything it handles.
    const HANDLED: u64 = 0xfffffffc7fc1feff;

    fn thread(tid: i32, m: Option<i64>) -> ThreadFacts {
        ThreadFacts {
            tid,
            name: "app".into(),
            state: "S".into(),
            m,
            ..Default::default()
        }
    }

    fn snap(threads: Vec<ThreadFacts>, sf: SignalFacts) -> Snapshot {
        Snapshot {
            threads,
            signals: Some(sf),
            ..Default::default()
        }
    }

    fn healthy() -> SignalFacts {
        SignalFacts {
            caught: HANDLED | (1 << 32),
            go_handled: HANDLED,
            cpu_profiler_linked: true,
            dispositions_known: true,
            ..Default::default()
        }
    }

    fn run(s: &Snapshot) -> Vec<Finding> {
        SignalConflict.check(&Context::new(s))
    }

    #[test]
    fn healthy_program_and_non_live_sources_get_nothing() {
        assert!(run(&Snapshot::default()).is_empty());
        // A foreign thread may block what it likes; the ensureSigM thread blocks everything
        // blockable, which leaves out the signals Go needs.
        let mut foreign = thread(2, None);
        foreign.sig_blocked = u64::MAX;
        let mut sigm = thread(3, Some(3));
        sigm.sig_blocked = 0xfffffffc3bba3a00;
        let s = snap(vec![thread(1, Some(0)), foreign, sigm], healthy());
        assert!(run(&s).is_empty());
        // SIGPIPE ignored (libcurl does it) is fine.
        let mut sf = healthy();
        sf.ignored |= PIPE;
        sf.caught &= !PIPE;
        assert!(run(&snap(vec![thread(1, Some(0))], sf)).is_empty());
    }

    #[test]
    fn sigurg_blocked_on_go_threads_only() {
        let mut go = thread(10, Some(1));
        go.sig_blocked = URG;
        go.sig_pending = URG;
        go.preempt_signal_stuck = true;
        let mut in_c = thread(11, Some(2));
        in_c.sig_blocked = URG;
        in_c.in_cgo = true;
        let s = snap(vec![go, in_c.clone()], healthy());
        let f = run(&s);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(f[0].threads, vec![10]);
        assert!(f[0].title.starts_with("SIGURG blocked on 1 Go thread"));
        let ev = f[0].evidence.join("\n");
        assert!(
            ev.contains(
                "thread 10 (app), M 1: SIGURG blocked and pending, a preemption request stuck"
            ),
            "{ev}"
        );
        assert!(
            ev.contains("also blocked on 1 thread now in C calls"),
            "{ev}"
        );
        // Only a thread in C: nothing (C may restore the mask on return).
        assert!(run(&snap(vec![in_c], healthy())).is_empty());
        // A stop-the-world waiting makes it critical.
        let mut s = s;
        s.scheduler = Some(SchedFacts {
            gc_waiting: true,
            ..Default::default()
        });
        assert_eq!(run(&s)[0].severity, Severity::Critical);
    }

    #[test]
    fn a_core_without_dispositions_flags_masks_only() {
        // A kernel core: the runtime's records and the threads' masks, no sigaction table (the
        // dispositions read 0), so nothing counts as reset or ignored.
        let core = SignalFacts {
            go_handled: HANDLED,
            cpu_profiler_linked: true,
            ..Default::default()
        };
        assert!(run(&snap(vec![thread(1, Some(0))], core.clone())).is_empty());
        let mut go = thread(10, Some(1));
        go.sig_blocked = URG;
        let f = run(&snap(vec![go], core));
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].title.starts_with("SIGURG blocked on 1 Go thread"));
    }

    #[test]
    fn sigurg_irrelevant_without_async_preemption() {
        let mut go = thread(10, Some(1));
        go.sig_blocked = URG;
        let mut sf = healthy();
        sf.async_preempt_off = true;
        assert!(run(&snap(vec![go], sf)).is_empty());
    }

    #[test]
    fn stuck_preemption_with_nothing_blocking_means_another_handler() {
        let mut go = thread(10, Some(1));
        go.preempt_signal_stuck = true;
        let f = run(&snap(vec![go.clone()], healthy()));
        assert_eq!(f.len(), 1);
        assert!(f[0]
            .title
            .starts_with("SIGURG taken over by another handler"));
        // Still pending on the thread: about to be delivered, not proof of anything.
        go.sig_pending = URG;
        assert!(run(&snap(vec![go], healthy())).is_empty());
    }

    #[test]
    fn sigurg_ignored_process_wide() {
        let mut sf = healthy();
        sf.ignored |= URG;
        sf.caught &= !URG;
        let f = run(&snap(vec![thread(1, Some(0))], sf));
        assert_eq!(f.len(), 1);
        assert_eq!(
            f[0].title,
            "SIGURG is ignored process-wide: asynchronous preemption is off"
        );
    }

    #[test]
    fn profiling_only_when_it_can_run() {
        let mut go = thread(10, Some(1));
        go.sig_blocked = PROF;
        let mut sf = healthy();
        sf.cpu_profiler_linked = false;
        assert!(run(&snap(vec![go.clone()], sf)).is_empty());
        let f = run(&snap(vec![go], healthy()));
        assert_eq!(f.len(), 1);
        assert!(
            f[0].title.contains("SIGPROF blocked on 1 Go thread"),
            "{}",
            f[0].title
        );
    }

    #[test]
    fn faults_and_replaced_handlers() {
        let mut go = thread(10, Some(1));
        go.sig_blocked = SEGV;
        let f = run(&snap(vec![go], healthy()));
        assert_eq!(f.len(), 1);
        assert!(f[0].title.starts_with("SIGSEGV blocked on 1 Go thread"));
        // SIGPIPE and SIGTERM reset to SIG_DFL after Go installed its handlers.
        let mut sf = healthy();
        sf.caught &= !(PIPE | (1 << 14));
        let f = run(&snap(vec![thread(1, Some(0))], sf));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(f[0].title.contains("SIGPIPE, SIGTERM"), "{}", f[0].title);
    }
}
