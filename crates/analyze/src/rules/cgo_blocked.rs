//! `cgo_blocked`: goroutines inside cgo calls.
//!
//! Each goroutine in a cgo call holds an OS thread that the Go scheduler cannot use. Several at one
//! call site, or one for minutes, is a warning; a single short call is only info (a healthy program
//! that uses cgo may be caught mid-call).
//!
//! Live, the C frames of a thread running one of the calls (unwound from the thread itself) are
//! part of the evidence: the C function that blocks, its source line, and the system call it sits
//! in. Not flagged: goroutines in C only because a Go callback runs (they are in Go code then).

use crate::context::plural;
use crate::{Context, Rule};
use gostall_model::{Finding, FindingKind, Severity, WaitReason};

/// The cgo rule.
pub struct CgoBlocked;

impl Rule for CgoBlocked {
    fn kind(&self) -> FindingKind {
        FindingKind::CgoBlocked
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let t = &cx.snap.tables;
        let members = cx.select(|g, _| g.wait_reason == Some(WaitReason::Cgo));
        let mut out = Vec::new();
        for (site, ms) in cx.by_site(&members) {
            let n = cx.count(&ms);
            let mins = cx.max_minutes(&ms);
            let sev = if mins.is_some_and(|m| m >= 5) || n >= 50 {
                Severity::Critical
            } else if n >= 2 || mins.is_some() {
                Severity::Warning
            } else {
                Severity::Info
            };
            let cfunc = cx
                .facts(cx.g(ms[0]))
                .cgo_fn
                .map(|s| {
                    let name = t.str(s);
                    match name.find("._Cfunc_") {
                        Some(i) => format!("C.{}", &name[i + 8..]),
                        None => name.to_string(),
                    }
                })
                .unwrap_or_else(|| "a C function".into());
            let func = cx.func(t.frame(site).function);
            let mut evidence = vec![format!(
                "{} in syscall via runtime.cgocall → {cfunc} at {}{}",
                cx.id_list(&ms),
                cx.short(site),
                cx.minutes_suffix(&ms)
            )];
            evidence.extend(c_stack(cx, &ms));
            out.push(cx.finding(
                FindingKind::CgoBlocked,
                sev,
                format!("{n} goroutine{} stuck in cgo call {cfunc} from {func}", plural(n)),
                format!("These goroutines are inside {cfunc}: while C code runs, each holds an OS thread and Go cannot preempt, time out or cancel it. If the C side blocks (a lock, a socket, a slow library), the goroutines and their callers wait with it."),
                &ms,
                Some(site),
                evidence,
                "Find why the C call blocks (gostall diagnose --pid shows the C stack). Give the C library a timeout if it has one; bound concurrent cgo calls with a worker pool or semaphore so a hung library cannot take every thread; prefer a pure-Go implementation where one exists.",
            ));
        }
        out
    }
}

/// C frames shown in the evidence.
const MAX_C_FRAMES: usize = 6;

/// The C stack of the first goroutine of `ms` that has one (live reads), innermost first, with
/// the system call its thread is blocked in: `C stack (thread 4045): read (libc.so.6) ←
/// lic_check_feature (licensed.c:11); blocked in read(fd 4 → pipe:[123], …)`.
fn c_stack(cx: &Context<'_>, ms: &[u32]) -> Option<String> {
    let g = ms
        .iter()
        .map(|&i| cx.g(i))
        .find(|g| !g.native_stack.is_empty())?;
    let frames: Vec<String> = g
        .native_stack
        .iter()
        .filter(|f| {
            !f.function
                .as_deref()
                .is_some_and(gostall_goruntime::is_cgo_wrapper)
        })
        .take(MAX_C_FRAMES)
        .map(|f| {
            let name = f.function.clone().unwrap_or_else(|| format!("{:#x}", f.pc));
            match (&f.file, f.line) {
                (Some(file), Some(line)) => {
                    format!(
                        "{name} ({}:{line})",
                        file.rsplit('/').next().unwrap_or(file)
                    )
                }
                _ => format!(
                    "{name} ({})",
                    f.object.rsplit('/').next().unwrap_or(&f.object)
                ),
            }
        })
        .collect();
    let mut s = match g.thread {
        Some(tid) => format!("C stack (thread {tid}): {}", frames.join(" ← ")),
        None => format!("C stack: {}", frames.join(" ← ")),
    };
    let syscall = g
        .thread
        .and_then(|tid| cx.snap.threads.iter().find(|t| t.tid == tid))
        .and_then(|t| t.syscall.as_ref())
        .and_then(|sc| sc.text.as_deref());
    if let Some(text) = syscall {
        s.push_str(&format!("; blocked in {text}"));
    }
    Some(s)
}
