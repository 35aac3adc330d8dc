//! The terminal report: findings first (most important first), then every goroutine group with its
//! full stack. Nothing is cut silently: where a list is shortened, the report says by how much and
//! where to see all of it.

use crate::Report;
use gostall_analyze::{human_bytes, human_duration};
use gostall_model::{Finding, GoState, Severity, Snapshot, WaitReason};
use owo_colors::{OwoColorize, Style};
use std::io::{self, Write};

/// Text report options.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Use ANSI colours.
    pub color: bool,
    /// List goroutine groups after the findings.
    pub groups: bool,
    /// Goroutine ids listed per group before "+N more".
    pub max_ids: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            color: false,
            groups: true,
            max_ids: 20,
        }
    }
}

struct Styles {
    critical: Style,
    warning: Style,
    info: Style,
    bold: Style,
    dim: Style,
    loc: Style,
}

impl Styles {
    fn new(color: bool) -> Self {
        if !color {
            let s = Style::new();
            return Styles {
                critical: s,
                warning: s,
                info: s,
                bold: s,
                dim: s,
                loc: s,
            };
        }
        Styles {
            critical: Style::new().bold().white().on_red(),
            warning: Style::new().bold().black().on_yellow(),
            info: Style::new().bold().black().on_cyan(),
            bold: Style::new().bold(),
            dim: Style::new().dimmed(),
            loc: Style::new().cyan(),
        }
    }
}

/// Writes the terminal report.
pub fn write(r: &Report<'_>, opts: &Options, out: &mut dyn Write) -> io::Result<()> {
    let mut w = io::BufWriter::with_capacity(1 << 20, out);
    let st = Styles::new(opts.color);
    let snap = r.snap;
    let findings = &r.analysis.findings;
    let total = snap.total_goroutines();
    let count = |s| findings.iter().filter(|f| f.severity == s).count();
    let (c, wn, i) = (
        count(Severity::Critical),
        count(Severity::Warning),
        count(Severity::Info),
    );
    let sources: Vec<String> = snap
        .sources
        .iter()
        .map(|s| format!("{} ({})", s.name, kind_name(s.kind)))
        .collect();
    if c + wn == 0 {
        writeln!(
            w,
            "{} no problems found in {total} goroutine{}{}",
            "gostall:".style(st.bold),
            if total == 1 { "" } else { "s" },
            if i > 0 {
                format!(" ({i} note{})", if i == 1 { "" } else { "s" })
            } else {
                String::new()
            }
        )?;
    } else {
        writeln!(
            w,
            "{} {} finding{} ({c} critical, {wn} warning{}) in {total} goroutines",
            "gostall:".style(st.bold),
            c + wn,
            if c + wn == 1 { "" } else { "s" },
            if i > 0 {
                format!(", {i} info")
            } else {
                String::new()
            }
        )?;
    }
    writeln!(
        w,
        "  {}",
        format!("from {}", sources.join(", ")).style(st.dim)
    )?;
    write_process(&mut w, snap, &st)?;
    for s in &snap.sources {
        for note in &s.skipped {
            writeln!(w, "  {} {}: {note}", "skipped".style(st.warning), s.name)?;
        }
        if s.skipped_more > 0 {
            writeln!(
                w,
                "  {} {}: {} more parts not understood",
                "skipped".style(st.warning),
                s.name,
                s.skipped_more
            )?;
        }
    }
    for f in findings {
        writeln!(w)?;
        write_finding(&mut w, f, &st)?;
    }
    if opts.groups {
        write_groups(&mut w, r, opts, &st)?;
    }
    w.flush()
}

fn write_process(w: &mut dyn Write, snap: &Snapshot, st: &Styles) -> io::Result<()> {
    let p = &snap.process;
    if let Some(c) = &snap.core {
        let writer = match c.writer.as_str() {
            "kernel" => "the kernel",
            "gdb" => "gdb (gcore)",
            "gostall" => "gostall capture",
            w => w,
        };
        let mut line = format!(
            "core {} · pid {} · {} · written by {writer}",
            c.path, c.pid, c.exe
        );
        if let Some(sig) = &c.signal {
            line.push_str(&format!(" · died on {sig}"));
        }
        if let Some(us) = c.paused_us {
            line.push_str(&format!(
                " · the process was stopped {:.1} ms to write it",
                us as f64 / 1000.0
            ));
        }
        line.push_str(&format!(" · read in {} ms", c.read_us / 1000));
        writeln!(w, "  {}", line.style(st.dim))?;
        for n in &c.notes {
            writeln!(w, "  {}", n.style(st.dim))?;
        }
        write_scheduler(w, snap, st)?;
    }
    if let Some(l) = &snap.live {
        let mut line = format!("pid {}", l.pid);
        if let Some(ns) = l.ns_pid {
            line.push_str(&format!(" ({ns} in its PID namespace)"));
        }
        line.push_str(&format!(" · {} · read in {} ms", l.exe, l.read_us / 1000));
        match l.paused_us {
            Some(us) => line.push_str(&format!(" · paused {:.1} ms", us as f64 / 1000.0)),
            None => line.push_str(" · not paused"),
        }
        if l.inconsistent > 0 {
            line.push_str(&format!(
                " · {} goroutine(s) changed while being read (stack not shown)",
                l.inconsistent
            ));
        }
        writeln!(w, "  {}", line.style(st.dim))?;
        for n in &l.notes {
            writeln!(w, "  {}", n.style(st.dim))?;
        }
        write_scheduler(w, snap, st)?;
    }
    if let Some(m) = &snap.memory {
        writeln!(w, "  {}", memory_line(m).style(st.dim))?;
    }
    let mut facts = Vec::new();
    if let Some(v) = &p.go_version {
        facts.push(format!("Go {v}"));
    }
    if let Some(n) = p.gomaxprocs.filter(|_| snap.scheduler.is_none()) {
        facts.push(format!("GOMAXPROCS {n}"));
    }
    if let Some(n) = p
        .threads_created
        .filter(|_| snap.live.is_none() && snap.core.is_none())
    {
        facts.push(format!("{n} threads created"));
    }
    if let Some(s) = &p.signal {
        facts.push(s.clone());
    }
    if let Some(e) = &p.fatal_error {
        facts.push(format!("fatal error: {e}"));
    }
    if let Some(e) = &p.panic {
        facts.push(format!("panic: {e}"));
    }
    if !facts.is_empty() {
        writeln!(w, "  {}", facts.join(" · ").style(st.dim))?;
    }
    Ok(())
}

/// Live: `memory: RSS 401 MiB · Go runtime 10 MiB · non-Go ≈ 385 MiB · file-backed 6.1 MiB`, and
/// how the RSS and the non-Go estimate moved when sampled.
fn memory_line(m: &gostall_model::MemoryFacts) -> String {
    let mut line = format!(
        "memory: RSS {} · Go runtime {} · non-Go ≈ {} · file-backed {}",
        human_bytes(m.rss),
        human_bytes(m.go_runtime),
        human_bytes(m.non_go_estimate),
        human_bytes(m.file)
    );
    if let (Some(a), Some(b)) = (m.samples.first(), m.samples.last()) {
        if m.samples.len() >= 2 && b.0 > a.0 {
            let signed = |from: u64, to: u64| {
                if to >= from {
                    format!("+{}", human_bytes(to - from))
                } else {
                    format!("−{}", human_bytes(from - to))
                }
            };
            line.push_str(&format!(
                " · over {} samples in {}: RSS {}, non-Go {}, Go runtime {}",
                m.samples.len(),
                human_duration((b.0 - a.0) * 1_000_000),
                signed(a.1, b.1),
                signed(a.3, b.3),
                signed(a.2, b.2)
            ));
        }
    }
    line
}

fn write_finding(w: &mut dyn Write, f: &Finding, st: &Styles) -> io::Result<()> {
    let (label, style) = match f.severity {
        Severity::Critical => (" CRITICAL ", st.critical),
        Severity::Warning => (" WARNING ", st.warning),
        Severity::Info => (" INFO ", st.info),
    };
    writeln!(
        w,
        "{} {} {}",
        label.style(style),
        f.kind.as_str().style(st.bold),
        f.title.style(st.bold)
    )?;
    if let Some(l) = &f.location {
        writeln!(
            w,
            "  {:<9}{}  {}",
            "where",
            l.function.style(st.loc),
            format!("{}:{}", l.file, l.line).style(st.loc)
        )?;
    }
    wrap(w, "why", &f.explanation)?;
    for (k, e) in f.evidence.iter().enumerate() {
        wrap(w, if k == 0 { "evidence" } else { "" }, &format!("• {e}"))?;
    }
    wrap(w, "fix", &f.advice)?;
    Ok(())
}

/// Writes `label` then the text wrapped at 100 columns, continuation lines indented.
fn wrap(w: &mut dyn Write, label: &str, text: &str) -> io::Result<()> {
    const WIDTH: usize = 100;
    let mut line = String::new();
    let mut first = true;
    let flush = |line: &mut String, first: &mut bool, w: &mut dyn Write| -> io::Result<()> {
        writeln!(
            w,
            "  {:<9}{}",
            if *first { label } else { "" },
            line.trim_end()
        )?;
        *first = false;
        line.clear();
        Ok(())
    };
    for word in text.split(' ') {
        if !line.is_empty() && line.len() + word.len() + 1 > WIDTH - 11 {
            flush(&mut line, &mut first, w)?;
            if !label.is_empty() || text.starts_with('•') {
                line.push_str("  ");
            }
        }
        line.push_str(word);
        line.push(' ');
    }
    if !line.trim().is_empty() {
        flush(&mut line, &mut first, w)?;
    }
    Ok(())
}

fn write_groups(w: &mut dyn Write, r: &Report<'_>, opts: &Options, st: &Styles) -> io::Result<()> {
    let snap = r.snap;
    let groups = &r.analysis.groups;
    writeln!(w)?;
    writeln!(
        w,
        "{}",
        format!(
            "Goroutines: {} in {} group{} of identical stacks",
            snap.total_goroutines(),
            groups.len(),
            if groups.len() == 1 { "" } else { "s" }
        )
        .style(st.bold)
    )?;
    for g in groups {
        let g0 = &snap.goroutines[g.members[0] as usize];
        let mut status = match (g.state, g.wait_reason, g0.raw_status) {
            (_, Some(WaitReason::Runtime | WaitReason::Other), Some(raw)) => {
                snap.tables.str(raw).to_string()
            }
            (GoState::Waiting | GoState::Syscall, Some(r), _) => r.as_str().to_string(),
            (s, _, _) => serde_state(s),
        };
        if let Some((lo, hi)) = g.wait_minutes {
            if lo == hi {
                status.push_str(&format!(", {lo} min"));
            } else {
                status.push_str(&format!(", {lo}–{hi} min"));
            }
        }
        if g.locked > 0 {
            status.push_str(", locked to thread");
        }
        // Live: how long they have been blocked (at least), from the runtime's waitsince.
        let waits: Vec<u64> = g
            .members
            .iter()
            .filter_map(|&i| snap.goroutines[i as usize].wait_ns)
            .collect();
        if g.wait_minutes.is_none() {
            if let (Some(lo), Some(hi)) = (waits.iter().min(), waits.iter().max()) {
                if lo == hi || human_duration(*lo) == human_duration(*hi) {
                    status.push_str(&format!(", blocked ≥ {}", human_duration(*hi)));
                } else {
                    status.push_str(&format!(
                        ", blocked ≥ {}–{}",
                        human_duration(*lo),
                        human_duration(*hi)
                    ));
                }
            }
        }
        let ids = if g.ids.is_empty() {
            String::new()
        } else {
            let shown: Vec<String> = g
                .ids
                .iter()
                .take(opts.max_ids)
                .map(|i| i.to_string())
                .collect();
            let more = g.ids.len().saturating_sub(opts.max_ids);
            format!(
                "  {}: {}{}",
                if g.ids.len() == 1 {
                    "goroutine"
                } else {
                    "goroutines"
                },
                shown.join(" "),
                if more > 0 {
                    format!(" (+{more} more; --format json lists all)")
                } else {
                    String::new()
                }
            )
        };
        writeln!(w)?;
        writeln!(
            w,
            "  {} × [{status}]{}",
            g.count.style(st.bold),
            ids.style(st.dim)
        )?;
        // A cgo call: the C frames of the thread running it come first, one continuous stack.
        let native = snap.native_stack_of(g0);
        write_native(w, native, st)?;
        if native.is_empty() && g.wait_reason == Some(WaitReason::Cgo) {
            if let Some(note) = g0
                .thread
                .and_then(|tid| snap.threads.iter().find(|t| t.tid == tid))
                .and_then(|t| t.native_note.as_deref())
            {
                writeln!(w, "      {}", format!("(C frames: {note})").style(st.dim))?;
            }
        }
        let frames: Vec<_> = snap.tables.stack_frames(g.stack).collect();
        if frames.is_empty() {
            let why = if g0.stack_unavailable {
                "stack unavailable: running on another thread"
            } else {
                "no frames"
            };
            writeln!(w, "      {}", format!("({why})").style(st.dim))?;
        }
        for f in frames {
            let user = gostall_goruntime::is_user_function(f.function);
            let line = format!("      {}  {}:{}", f.function, f.file, f.line);
            if user {
                writeln!(w, "{}", line.style(st.loc))?;
            } else {
                writeln!(w, "{}", line.style(st.dim))?;
            }
        }
        if g0.elided_frames != 0 {
            writeln!(
                w,
                "      {}",
                "... frames elided by the Go runtime ...".style(st.dim)
            )?;
        }
        if let Some(cb) = g0.created_by {
            let f = snap.tables.frame_ref(cb.frame);
            writeln!(
                w,
                "      {}",
                format!("created by {}  {}:{}", f.function, f.file, f.line).style(st.dim)
            )?;
        }
        write_threads(w, snap, g, st)?;
    }
    write_foreign_threads(w, snap, st)?;
    Ok(())
}

/// Native frames shown before a list is shortened; past it, the innermost ones and the
/// outermost few are kept.
const MAX_NATIVE_SHOWN: usize = 12;

/// C frames, innermost first: `[C] function+0xoff  file:line  (object)`. The program's own C
/// code (frames with a source file) stands out; library frames are dimmed.
fn write_native(
    w: &mut dyn Write,
    frames: &[gostall_model::NativeFrame],
    st: &Styles,
) -> io::Result<()> {
    let n = frames.len();
    let (head, tail) = if n > MAX_NATIVE_SHOWN {
        (MAX_NATIVE_SHOWN - 2, 2)
    } else {
        (n, 0)
    };
    let line = |f: &gostall_model::NativeFrame| {
        let object = f.object.rsplit('/').next().unwrap_or(&f.object);
        let mut s = match &f.function {
            Some(func) => format!("[C] {func}+{:#x}", f.offset),
            None => format!("[C] {:#x}", f.pc),
        };
        if let Some(file) = &f.file {
            s.push_str(&format!("  {file}:{}", f.line.unwrap_or(0)));
        }
        s.push_str(&format!("  ({object})"));
        s
    };
    let own = |f: &gostall_model::NativeFrame| {
        f.file.is_some()
            && !f
                .function
                .as_deref()
                .is_some_and(gostall_goruntime::is_cgo_wrapper)
    };
    for f in &frames[..head] {
        let text = line(f);
        if own(f) {
            writeln!(w, "      {}", text.style(st.loc))?;
        } else {
            writeln!(w, "      {}", text.style(st.dim))?;
        }
    }
    if tail > 0 {
        writeln!(
            w,
            "      {}",
            format!(
                "[C] ... {} more frames (--format json lists all) ...",
                n - head - tail
            )
            .style(st.dim)
        )?;
        for f in &frames[n - tail..] {
            writeln!(w, "      {}", line(f).style(st.dim))?;
        }
    }
    Ok(())
}

/// Live: threads that run outside Go — created by C, or an extra M back in C — with their
/// native stacks. Threads of Go's own Ms appear under their goroutines instead.
fn write_foreign_threads(w: &mut dyn Write, snap: &Snapshot, st: &Styles) -> io::Result<()> {
    use gostall_model::ThreadOrigin;
    let threads: Vec<_> = snap
        .threads
        .iter()
        .filter(|t| {
            t.origin != ThreadOrigin::Go && (!t.native_stack.is_empty() || t.native_note.is_some())
        })
        .collect();
    if threads.is_empty() {
        return Ok(());
    }
    writeln!(w)?;
    writeln!(
        w,
        "{}",
        format!("Threads outside Go: {}", threads.len()).style(st.bold)
    )?;
    for t in threads {
        let origin = match t.origin {
            ThreadOrigin::CCallback => "created by C, calls into Go",
            _ => "created by C",
        };
        let mut head = format!("thread {} {} ({}), {origin}", t.tid, t.name, t.state);
        if let Some(text) = t.syscall.as_ref().and_then(|s| s.text.as_deref()) {
            head.push_str(&format!(", in {text}"));
        }
        writeln!(w)?;
        writeln!(w, "  {head}")?;
        write_native(w, &t.native_stack, st)?;
        if let Some(note) = &t.native_note {
            writeln!(w, "      {}", format!("({note})").style(st.dim))?;
        }
    }
    Ok(())
}

/// Live: the OS threads holding this group's goroutines, with what they do in the kernel.
fn write_threads(
    w: &mut dyn Write,
    snap: &Snapshot,
    g: &gostall_analyze::Group,
    st: &Styles,
) -> io::Result<()> {
    if snap.threads.is_empty() {
        return Ok(());
    }
    let tids: Vec<i32> = g
        .members
        .iter()
        .filter_map(|&i| snap.goroutines[i as usize].thread)
        .collect();
    if tids.is_empty() {
        return Ok(());
    }
    let mut parts = Vec::new();
    for tid in tids.iter().take(3) {
        let Some(t) = snap.threads.iter().find(|t| t.tid == *tid) else {
            continue;
        };
        let mut d = format!("thread {} ({})", t.tid, t.state);
        if let Some(sc) = &t.syscall {
            match &sc.text {
                // Decoded, descriptors resolved: `read(fd 3 → pipe:[123], 0x…, 4096)`.
                Some(text) => d.push_str(&format!(" in {text}")),
                None => {
                    let name = sc
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("syscall {}", sc.nr));
                    d.push_str(&format!(" in {name}(…)"));
                }
            }
        }
        if let Some(wc) = t.wchan.as_deref().filter(|w| !w.is_empty() && *w != "0") {
            d.push_str(&format!(", wchan {wc}"));
        }
        d.push_str(&signal_note(snap, t));
        parts.push(d);
    }
    let more = tids.len().saturating_sub(parts.len());
    writeln!(
        w,
        "      {}",
        format!(
            "on {}{}",
            parts.join("; "),
            if more > 0 {
                format!(" and {more} more threads")
            } else {
                String::new()
            }
        )
        .style(st.dim)
    )
}

/// The signals Go needs on its threads, given what the snapshot says about async preemption.
fn needed_signals(snap: &Snapshot) -> u64 {
    let async_preempt = !snap.signals.as_ref().is_some_and(|s| s.async_preempt_off);
    gostall_goruntime::signals::needed_unblocked(async_preempt)
}

/// Live: `, blocks SIGURG, preemption signal stuck` for a thread of an M that blocks signals the
/// Go runtime needs, or whose preemption request went unanswered; empty otherwise.
fn signal_note(snap: &Snapshot, t: &gostall_model::ThreadFacts) -> String {
    if t.m.is_none() {
        return String::new();
    }
    let mut s = String::new();
    let blocked = t.sig_blocked & needed_signals(snap);
    if blocked != 0 {
        s.push_str(&format!(
            ", blocks {}",
            gostall_goruntime::signals::mask_names(blocked)
        ));
    }
    if t.preempt_signal_stuck {
        s.push_str(", preemption signal stuck");
    }
    s
}

/// Live: one line naming the Go threads that block signals the runtime needs, and the signals Go
/// handles that the process no longer catches; `None` when there are none.
fn signal_summary(snap: &Snapshot) -> Option<String> {
    use gostall_goruntime::signals as sig;
    let needed = needed_signals(snap);
    let mut by_sig: Vec<(u32, Vec<i32>)> = Vec::new();
    let mut stuck = Vec::new();
    for t in snap.threads.iter().filter(|t| t.m.is_some()) {
        for s in sig::in_mask(t.sig_blocked & needed) {
            match by_sig.iter_mut().find(|e| e.0 == s) {
                Some(e) => e.1.push(t.tid),
                None => by_sig.push((s, vec![t.tid])),
            }
        }
        if t.preempt_signal_stuck {
            stuck.push(t.tid);
        }
    }
    let list = |tids: &[i32]| {
        let shown: Vec<String> = tids.iter().take(4).map(|t| t.to_string()).collect();
        let more = tids.len().saturating_sub(shown.len());
        format!(
            "{}{}",
            shown.join(" "),
            if more > 0 {
                format!(" +{more}")
            } else {
                String::new()
            }
        )
    };
    let mut parts: Vec<String> = by_sig
        .iter()
        .map(|(s, tids)| format!("{} blocked on Go threads {}", sig::name(*s), list(tids)))
        .collect();
    if !stuck.is_empty() {
        parts.push(format!("preemption signal stuck on {}", list(&stuck)));
    }
    if let Some(sf) = snap.signals.as_ref().filter(|s| s.dispositions_known) {
        let lost = sf.go_handled & !sf.caught;
        if lost != 0 {
            parts.push(format!("Go's handler gone for {}", sig::mask_names(lost)));
        }
    }
    (!parts.is_empty()).then(|| format!("signals: {}", parts.join(" · ")))
}

fn serde_state(s: GoState) -> String {
    format!("{s:?}").to_lowercase()
}

/// The scheduler's and the signals' one-line summaries (live processes and cores).
fn write_scheduler(w: &mut dyn Write, snap: &Snapshot, st: &Styles) -> io::Result<()> {
    if let Some(sc) = &snap.scheduler {
        writeln!(
            w,
            "  {}",
            format!(
                "{} threads · GOMAXPROCS {} · {} idle P · global run queue {}{}",
                snap.threads.len(),
                sc.gomaxprocs,
                sc.idle_ps,
                sc.global_runq,
                if sc.gc_waiting {
                    " · GC waiting to stop the world"
                } else {
                    ""
                }
            )
            .style(st.dim)
        )?;
    }
    if let Some(line) = signal_summary(snap) {
        writeln!(w, "  {}", line.style(st.dim))?;
    }
    Ok(())
}

fn kind_name(k: gostall_model::SourceKind) -> &'static str {
    use gostall_model::SourceKind::*;
    match k {
        GoroutineDump => "goroutine dump",
        GoroutineDebug1 => "goroutine profile, debug=1",
        PprofGoroutine => "pprof goroutine profile",
        PprofMutex => "pprof mutex profile",
        PprofBlock => "pprof block profile",
        PprofThreadcreate => "pprof threadcreate profile",
        PprofOther => "pprof profile (not used)",
        LiveProcess => "live process",
        CoreFile => "core file",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gostall_model::{Goroutine, NativeFrame, ThreadFacts, ThreadOrigin};

    fn frame(function: Option<&str>, object: &str, file: Option<(&str, u32)>) -> NativeFrame {
        NativeFrame {
            pc: 0x1000,
            function: function.map(str::to_string),
            offset: 0x1b,
            object: object.to_string(),
            file: file.map(|f| f.0.to_string()),
            line: file.map(|f| f.1),
        }
    }

    fn render(snap: &Snapshot) -> String {
        let analysis = gostall_analyze::analyze(snap);
        let mut out = Vec::new();
        write(
            &Report {
                snap,
                analysis: &analysis,
            },
            &Options::default(),
            &mut out,
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn cgo_call_is_one_stack_and_foreign_threads_are_listed() {
        let mut snap = Snapshot::default();
        let t = &mut snap.tables;
        let go = [
            t.frame_from("runtime.cgocall", "cgocall.go", 167),
            t.frame_from("main._Cfunc_lic_check_feature", "_cgo_gotypes.go", 93),
            t.frame_from("main.(*LicenseClient).Check", "main.go", 46),
        ];
        let stack = t.intern_stack(&go);
        let native = vec![
            frame(Some("read"), "/lib/libc.so.6", None),
            frame(
                Some("lic_check_feature"),
                "/app/server",
                Some(("licensed.c", 11)),
            ),
        ];
        snap.threads.push(ThreadFacts {
            tid: 7,
            state: "S".into(),
            in_cgo: true,
            goroutine: Some(21),
            native_stack: native,
            ..Default::default()
        });
        snap.goroutines.push(Goroutine {
            state: GoState::Syscall,
            wait_reason: Some(WaitReason::Cgo),
            thread: Some(7),
            ..Goroutine::new(21, 1, stack, 0)
        });
        // A thread C created, deep in a library: long stacks are shortened, and say so.
        let deep: Vec<NativeFrame> = (0..40)
            .map(|i| frame(Some(&format!("f{i}")), "/lib/libdeep.so", None))
            .collect();
        snap.threads.push(ThreadFacts {
            tid: 9,
            name: "worker".into(),
            state: "S".into(),
            origin: ThreadOrigin::Foreign,
            native_stack: deep,
            ..Default::default()
        });
        snap.threads.push(ThreadFacts {
            tid: 10,
            name: "spinner".into(),
            state: "R".into(),
            origin: ThreadOrigin::Foreign,
            native_note: Some("running in user code; --pause reads its registers".into()),
            ..Default::default()
        });
        let text = render(&snap);
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let at = |p: &str| lines.iter().position(|l| l.starts_with(p)).unwrap();
        assert!(
            at("[C] read+0x1b  (libc.so.6)")
                < at("[C] lic_check_feature+0x1b  licensed.c:11  (server)")
        );
        assert!(at("[C] lic_check_feature+") < at("runtime.cgocall  cgocall.go:167"));
        assert!(text.contains("Threads outside Go: 2"), "{text}");
        assert!(text.contains("thread 9 worker (S), created by C"), "{text}");
        assert!(text.contains("[C] f9+0x1b  (libdeep.so)"), "{text}");
        assert!(!text.contains("[C] f10+"), "{text}");
        assert!(text.contains("[C] ... 28 more frames"), "{text}");
        assert!(text.contains("[C] f39+0x1b"), "{text}");
        assert!(
            text.contains("(running in user code; --pause reads its registers)"),
            "{text}"
        );
    }
}
