//! The JSON report, schema `gostall/1` (documented in `docs/json.md`).
//!
//! Compatibility: fields may be added within `gostall/1`; renaming, removing or changing the meaning
//! of a field bumps the schema to `gostall/2`.

use crate::Report;
use gostall_model::{FrameId, Goroutine, Snapshot, StackId};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};

fn is_unknown(w: &gostall_model::WaitSince) -> bool {
    *w == gostall_model::WaitSince::Unknown
}

/// The schema id written in every document.
pub const SCHEMA: &str = "gostall/1";

#[derive(Serialize)]
struct Doc<'a> {
    schema: &'static str,
    tool: Tool,
    sources: &'a [gostall_model::SourceInfo],
    process: &'a gostall_model::ProcessFacts,
    summary: Summary,
    findings: &'a [gostall_model::Finding],
    #[serde(serialize_with = "ser_goroutines")]
    goroutines: (&'a Snapshot, bool),
    groups: Vec<Group<'a>>,
    threads: &'a [gostall_model::ThreadFacts],
    procs: &'a [gostall_model::ProcFacts],
    scheduler: &'a Option<gostall_model::SchedFacts>,
    signals: &'a Option<gostall_model::SignalFacts>,
    live: &'a Option<gostall_model::LiveMeta>,
    core: &'a Option<gostall_model::CoreMeta>,
    memory: Option<JMemory<'a>>,
    proof: &'a Option<gostall_model::ProofFacts>,
    objects: &'a [gostall_model::SyncObject],
    waits: &'a [gostall_model::WaitEdge],
    lib_states: &'a [gostall_model::LibState],
}

/// `memory`: the model's facts with the pairs written as objects, so consumers need not know the
/// tuple order.
#[derive(Serialize)]
struct JMemory<'a> {
    rss: u64,
    anon: u64,
    file: u64,
    by_kind: Vec<JNamed<'a>>,
    go_runtime: u64,
    go_breakdown: Vec<JNamed<'a>>,
    go_released: u64,
    non_go_estimate: u64,
    samples: Vec<JSample>,
    cgo_functions: &'a [String],
}

#[derive(Serialize)]
struct JNamed<'a> {
    name: &'a str,
    bytes: u64,
}

#[derive(Serialize)]
struct JSample {
    ms: u64,
    rss: u64,
    go_runtime: u64,
    non_go_estimate: u64,
}

fn named(v: &[(String, u64)]) -> Vec<JNamed<'_>> {
    v.iter()
        .map(|(n, b)| JNamed { name: n, bytes: *b })
        .collect()
}

fn memory(m: &gostall_model::MemoryFacts) -> JMemory<'_> {
    JMemory {
        rss: m.rss,
        anon: m.anon,
        file: m.file,
        by_kind: named(&m.by_kind),
        go_runtime: m.go_runtime,
        go_breakdown: named(&m.go_breakdown),
        go_released: m.go_released,
        non_go_estimate: m.non_go_estimate,
        samples: m
            .samples
            .iter()
            .map(|&(ms, rss, go_runtime, non_go_estimate)| JSample {
                ms,
                rss,
                go_runtime,
                non_go_estimate,
            })
            .collect(),
        cgo_functions: &m.cgo_functions,
    }
}

#[derive(Serialize)]
struct Tool {
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct Summary {
    goroutines: u64,
    by_state: BTreeMap<String, u64>,
    findings: BTreeMap<&'static str, usize>,
}

#[derive(Serialize)]
struct JFrame<'a> {
    function: &'a str,
    file: &'a str,
    line: u32,
}

#[derive(Serialize)]
struct JCreatedBy<'a> {
    function: &'a str,
    file: &'a str,
    line: u32,
    goroutine: Option<u64>,
}

#[derive(Serialize)]
struct JGoroutine<'a> {
    id: u64,
    count: u32,
    state: gostall_model::GoState,
    wait_reason: Option<&'static str>,
    raw_status: Option<&'a str>,
    wait_minutes: Option<u32>,
    locked_to_thread: bool,
    stack_unavailable: bool,
    flags: gostall_model::GoFlags,
    synctest_bubble: Option<u64>,
    labels: BTreeMap<&'a str, &'a str>,
    stack: Vec<JFrame<'a>>,
    elided_frames: Option<u32>,
    created_by: Option<JCreatedBy<'a>>,
    originating_from: Option<u64>,
    m: Option<u64>,
    source: u16,
    wait_ns: Option<u64>,
    #[serde(skip_serializing_if = "is_unknown")]
    wait_since: gostall_model::WaitSince,
    waiting_on: Option<String>,
    thread: Option<i32>,
    net: Option<&'a gostall_model::NetWait>,
    /// C frames of the thread running its cgo call, innermost first (live only).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    native_stack: &'a [gostall_model::NativeFrame],
}

#[derive(Serialize)]
struct WaitRange {
    min: u32,
    max: u32,
}

#[derive(Serialize)]
struct Group<'a> {
    count: u64,
    state: gostall_model::GoState,
    wait_reason: Option<&'static str>,
    wait_minutes: Option<WaitRange>,
    locked_to_thread: u64,
    goroutines: &'a [u64],
    stack: Vec<JFrame<'a>>,
    /// C frames shared by the group's goroutines in cgo calls (live only).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    native_stack: &'a [gostall_model::NativeFrame],
}

fn frames(snap: &Snapshot, stack: StackId) -> Vec<JFrame<'_>> {
    snap.tables
        .stack_frames(stack)
        .map(|f| JFrame {
            function: f.function,
            file: f.file,
            line: f.line,
        })
        .collect()
}

fn created_by(snap: &Snapshot, frame: FrameId, goroutine: Option<u64>) -> JCreatedBy<'_> {
    let f = snap.tables.frame_ref(frame);
    JCreatedBy {
        function: f.function,
        file: f.file,
        line: f.line,
        goroutine,
    }
}

fn goroutine<'a>(snap: &'a Snapshot, g: &'a Goroutine) -> JGoroutine<'a> {
    JGoroutine {
        id: g.id,
        count: g.count,
        state: g.state,
        wait_reason: g.wait_reason.map(|r| r.as_str()),
        raw_status: g.raw_status.map(|s| snap.tables.str(s)),
        wait_minutes: g.wait_minutes,
        locked_to_thread: g.locked_to_thread,
        stack_unavailable: g.stack_unavailable,
        flags: g.flags,
        synctest_bubble: g.synctest_bubble,
        labels: g
            .labels
            .iter()
            .map(|&(k, v)| (snap.tables.str(k), snap.tables.str(v)))
            .collect(),
        stack: frames(snap, g.stack),
        elided_frames: (g.elided_frames != 0).then_some(g.elided_frames),
        created_by: g.created_by.map(|c| created_by(snap, c.frame, c.goroutine)),
        originating_from: g.originating_from,
        m: g.m,
        source: g.source,
        wait_ns: g.wait_ns,
        wait_since: g.wait_since,
        waiting_on: g.waiting_on.map(|a| format!("{a:#x}")),
        thread: g.thread,
        net: g.net.as_deref(),
        native_stack: snap.native_stack_of(g),
    }
}

fn ser_goroutines<S: serde::Serializer>(v: &(&Snapshot, bool), s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let (snap, include) = *v;
    let mut seq = s.serialize_seq(Some(if include { snap.goroutines.len() } else { 0 }))?;
    if include {
        for g in &snap.goroutines {
            seq.serialize_element(&goroutine(snap, g))?;
        }
    }
    seq.end()
}

/// Writes the JSON document. `goroutines: false` leaves the per-goroutine list empty (groups still
/// list every id), for very large programs.
pub fn write(r: &Report<'_>, goroutines: bool, out: &mut dyn Write) -> io::Result<()> {
    let snap = r.snap;
    let mut by_state = BTreeMap::new();
    for g in &snap.goroutines {
        let key = serde_json::to_value(g.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        *by_state.entry(key).or_insert(0) += u64::from(g.count);
    }
    let mut findings = BTreeMap::new();
    for f in &r.analysis.findings {
        *findings.entry(f.severity.as_str()).or_insert(0) += 1;
    }
    let doc = Doc {
        schema: SCHEMA,
        tool: Tool {
            name: "gostall",
            version: env!("CARGO_PKG_VERSION"),
        },
        sources: &snap.sources,
        process: &snap.process,
        summary: Summary {
            goroutines: snap.total_goroutines(),
            by_state,
            findings,
        },
        findings: &r.analysis.findings,
        goroutines: (snap, goroutines),
        groups: r
            .analysis
            .groups
            .iter()
            .map(|g| Group {
                count: g.count,
                state: g.state,
                wait_reason: g.wait_reason.map(|r| r.as_str()),
                wait_minutes: g.wait_minutes.map(|(min, max)| WaitRange { min, max }),
                locked_to_thread: g.locked,
                goroutines: &g.ids,
                stack: frames(snap, g.stack),
                native_stack: g.members.first().map_or(&[][..], |&i| {
                    snap.native_stack_of(&snap.goroutines[i as usize])
                }),
            })
            .collect(),
        threads: &snap.threads,
        procs: &snap.procs,
        scheduler: &snap.scheduler,
        signals: &snap.signals,
        live: &snap.live,
        core: &snap.core,
        memory: snap.memory.as_ref().map(memory),
        proof: &snap.proof,
        objects: &snap.objects,
        waits: &snap.waits,
        lib_states: &snap.lib_states,
    };
    let mut w = io::BufWriter::with_capacity(1 << 20, out);
    serde_json::to_writer_pretty(&mut w, &doc).map_err(io::Error::from)?;
    w.write_all(b"\n")?;
    w.flush()
}
