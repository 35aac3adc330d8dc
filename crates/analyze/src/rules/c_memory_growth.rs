//! `c_memory_growth`: resident memory the Go runtime does not manage — C allocations through cgo,
//! C libraries' caches, thread stacks of C threads — dominates the process or keeps growing.
//!
//! Needs a live read (`Snapshot::memory`); dumps and profiles cannot show resident memory.
//!
//! Flags:
//! - **growth** over `--samples`: the non-Go estimate rose by at least [`GROWTH_MIN`], in at least
//!   [`GROWTH_STEADY_PCT`] % of the intervals, and by more than the Go runtime's own memory did.
//!   Critical at [`CRITICAL_RATE_PER_MIN`] or faster, or when non-Go memory also dominates;
//!   otherwise a warning.
//! - **dominance** in one snapshot: the non-Go estimate is at least [`DOMINANT_MIN`] and at least
//!   [`DOMINANT_PCT`] % of RSS. A warning: one snapshot cannot tell a leak from a large C cache.
//!
//! Leaves alone: programs whose non-Go memory is small or a minority of RSS (every cgo program has
//! some: thread stacks, `malloc` arenas, the C library's own data); growth smaller than
//! [`GROWTH_MIN`], or that went up and down (a burst that was freed), or that the Go runtime's
//! memory matched (then the memory is Go's); Go heap growth (Go's own tools see it: heap profiles,
//! `GOMEMLIMIT`); and every offline source.

use crate::context::{human_bytes, human_duration, plural};
use crate::{Context, Rule};
use gostall_model::{Finding, FindingKind, MemoryFacts, Severity, ThreadOrigin, WaitReason};

/// The non-Go memory rule.
pub struct CMemoryGrowth;

const MIB: u64 = 1 << 20;
/// Non-Go memory that can dominate: at least this much…
pub const DOMINANT_MIN: u64 = 256 * MIB;
/// …and at least this share of RSS, in percent.
pub const DOMINANT_PCT: u64 = 50;
/// Growth over the samples that counts.
pub const GROWTH_MIN: u64 = 32 * MIB;
/// Share of sampling intervals in which non-Go memory must have risen, in percent.
pub const GROWTH_STEADY_PCT: u64 = 75;
/// Growth at least this fast per minute is critical (it exhausts a machine within hours).
pub const CRITICAL_RATE_PER_MIN: u64 = 256 * MIB;

/// Growth of non-Go memory over the samples.
struct Growth {
    delta: u64,
    ms: u64,
    per_min: u64,
    go_from: u64,
    go_to: u64,
}

fn growth(m: &MemoryFacts) -> Option<Growth> {
    let (first, last) = (m.samples.first()?, m.samples.last()?);
    if m.samples.len() < 2 || last.0 <= first.0 {
        return None;
    }
    let delta = last.3.checked_sub(first.3)?;
    let go_delta = last.2.saturating_sub(first.2);
    let steps = (m.samples.len() - 1) as u64;
    let rising = m.samples.windows(2).filter(|w| w[1].3 > w[0].3).count() as u64;
    if delta < GROWTH_MIN || rising * 100 < GROWTH_STEADY_PCT * steps || delta <= go_delta {
        return None;
    }
    let ms = last.0 - first.0;
    Some(Growth {
        delta,
        ms,
        per_min: (u128::from(delta) * 60_000 / u128::from(ms)) as u64,
        go_from: first.2,
        go_to: last.2,
    })
}

fn pct(part: u64, whole: u64) -> u64 {
    (u128::from(part) * 100 / u128::from(whole.max(1))) as u64
}

/// `heap_in_use` → `heap in use`.
fn stat_name(s: &str) -> String {
    s.replace('_', " ")
}

/// The largest entries, "name size" joined.
fn top(entries: &[(String, u64)], n: usize) -> String {
    let mut v: Vec<&(String, u64)> = entries.iter().filter(|(_, b)| *b > 0).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let shown: Vec<String> = v
        .iter()
        .take(n)
        .map(|(k, b)| format!("{} {}", stat_name(k), human_bytes(*b)))
        .collect();
    let more = v.len().saturating_sub(n);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

impl Rule for CMemoryGrowth {
    fn kind(&self) -> FindingKind {
        FindingKind::CMemoryGrowth
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let Some(m) = cx.snap.memory.as_ref() else {
            return Vec::new();
        };
        let non_go = m.non_go_estimate;
        let dominant = non_go >= DOMINANT_MIN && pct(non_go, m.rss) >= DOMINANT_PCT;
        let grew = growth(m);
        let severity = match (&grew, dominant) {
            (Some(g), d) if d || g.per_min >= CRITICAL_RATE_PER_MIN => Severity::Critical,
            (Some(_), _) | (None, true) => Severity::Warning,
            (None, false) => return Vec::new(),
        };
        let title = match &grew {
            Some(g) => format!(
                "non-Go memory grew {} in {} ({}/min); {} of {} resident is outside the Go runtime",
                human_bytes(g.delta),
                human_duration(g.ms * 1_000_000),
                human_bytes(g.per_min),
                human_bytes(non_go),
                human_bytes(m.rss)
            ),
            None => format!(
                "non-Go memory: {} of {} resident ({}%) is not managed by the Go runtime",
                human_bytes(non_go),
                human_bytes(m.rss),
                pct(non_go, m.rss)
            ),
        };
        let mut evidence = vec![format!(
            "resident {}: non-Go ≈ {} ({}%), file-backed {}; the Go runtime holds {}{}",
            human_bytes(m.rss),
            human_bytes(non_go),
            pct(non_go, m.rss),
            human_bytes(m.file),
            human_bytes(m.go_runtime),
            if m.go_released > 0 {
                format!(
                    " (and has returned {} to the OS)",
                    human_bytes(m.go_released)
                )
            } else {
                String::new()
            }
        )];
        if let Some(g) = &grew {
            let go = if g.go_to.abs_diff(g.go_from) < (4 * MIB).max(g.go_from / 10) {
                format!("the Go runtime stayed at {}", human_bytes(g.go_to))
            } else {
                format!(
                    "the Go runtime went from {} to {}",
                    human_bytes(g.go_from),
                    human_bytes(g.go_to)
                )
            };
            evidence.push(format!(
                "non-Go memory grew {} in {} ({}/min) over {} samples while {go}",
                human_bytes(g.delta),
                human_duration(g.ms * 1_000_000),
                human_bytes(g.per_min),
                m.samples.len()
            ));
        } else if m.samples.len() >= 2 {
            let (a, b) = (m.samples[0].3, m.samples[m.samples.len() - 1].3);
            evidence.push(format!(
                "over {} samples non-Go memory went from {} to {}",
                m.samples.len(),
                human_bytes(a),
                human_bytes(b)
            ));
        }
        if !m.go_breakdown.is_empty() {
            evidence.push(format!("Go runtime: {}", top(&m.go_breakdown, 4)));
        }
        if !m.by_kind.is_empty() {
            evidence.push(format!("resident by kind: {}", top(&m.by_kind, 5)));
        }
        if !m.cgo_functions.is_empty() {
            const SHOW: usize = 8;
            let more = m.cgo_functions.len().saturating_sub(SHOW);
            evidence.push(format!(
                "the program calls into C through {}{}",
                m.cgo_functions
                    .iter()
                    .take(SHOW)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ));
        }
        // Suspects: goroutines inside C right now, with the Go function that called into C.
        let t = &cx.snap.tables;
        let in_c = cx.select(|g, f| g.wait_reason == Some(WaitReason::Cgo) || f.cgo_fn.is_some());
        let mut location = None;
        for (site, ms) in cx.by_site(&in_c).into_iter().take(3) {
            location.get_or_insert(site);
            let cfunc = cx
                .facts(cx.g(ms[0]))
                .cgo_fn
                .and_then(|s| gostall_goruntime::cgo_c_function(t.str(s)).map(|c| format!("C.{c}")))
                .unwrap_or_else(|| "C".to_string());
            evidence.push(format!(
                "in C right now: {} in {cfunc} called from {}",
                cx.id_list(&ms),
                cx.short(site)
            ));
        }
        let cgo_threads: Vec<i32> = cx
            .snap
            .threads
            .iter()
            .filter(|th| th.in_cgo)
            .map(|th| th.tid)
            .collect();
        let foreign: Vec<i32> = cx
            .snap
            .threads
            .iter()
            .filter(|th| th.origin == ThreadOrigin::Foreign)
            .map(|th| th.tid)
            .collect();
        if !foreign.is_empty() {
            evidence.push(format!(
                "{} thread{} created by C code, unknown to the Go runtime",
                foreign.len(),
                plural(foreign.len() as u64)
            ));
        }
        let mut explanation = "This memory is resident in the process but the Go runtime neither allocated it nor accounts for it: C allocations made through cgo (malloc in C libraries, C.CString or C.malloc results never freed), memory mapped by C code, stacks of C threads. runtime.MemStats, heap profiles and GOMEMLIMIT do not see it, and the garbage collector cannot free it: only the C side can.".to_string();
        if grew.is_some() {
            explanation.push_str(" It rose steadily across the samples while the Go runtime's memory did not: something on the C side keeps allocating and never frees.");
        }
        let mut f = cx.finding(
            FindingKind::CMemoryGrowth,
            severity,
            title,
            explanation,
            &in_c,
            location,
            evidence,
            "Free what C allocates: every C.CString, C.CBytes and C.malloc needs a C.free (defer it right after the call), and every object a C library returns needs its release call — check the library's ownership rules (who frees a returned buffer, what a cache does with the entries it evicts). To find the allocating call site, run the program under heaptrack or valgrind --tool=massif, or preload jemalloc with profiling (LD_PRELOAD=libjemalloc.so MALLOC_CONF=prof:true,prof_leak:true,lg_prof_interval:30). Measure growth with gostall diagnose --pid PID --samples 10 --interval 5s. If the memory turns out to be Go's (see the Go runtime breakdown), use heap profiles and GOMEMLIMIT instead; GODEBUG=madvdontneed=1 only changes how fast Go returns freed heap pages and has been the default on Linux since Go 1.16.",
        );
        f.threads = cgo_threads.into_iter().chain(foreign).collect();
        f.threads.sort_unstable();
        f.threads.dedup();
        vec![f]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gostall_model::Snapshot;

    fn snap(rss: u64, non_go: u64, samples: Vec<(u64, u64, u64, u64)>) -> Snapshot {
        Snapshot {
            memory: Some(MemoryFacts {
                rss,
                non_go_estimate: non_go,
                go_runtime: 10 * MIB,
                file: 6 * MIB,
                samples,
                go_breakdown: vec![("heap_in_use".into(), 4 * MIB), ("gc_misc".into(), 3 * MIB)],
                by_kind: vec![("anon".into(), non_go), ("go heap".into(), 4 * MIB)],
                cgo_functions: vec!["C.tc_render".into()],
                ..MemoryFacts::default()
            }),
            ..Snapshot::default()
        }
    }

    fn run(s: &Snapshot) -> Vec<Finding> {
        CMemoryGrowth.check(&Context::new(s))
    }

    #[test]
    fn dominant_non_go_memory_is_a_warning() {
        let f = run(&snap(420 * MIB, 390 * MIB, Vec::new()));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(
            f[0].title
                .contains("non-Go memory: 390 MiB of 420 MiB resident (92%)"),
            "{}",
            f[0].title
        );
        let ev = f[0].evidence.join("\n");
        assert!(ev.contains("C.tc_render"), "{ev}");
        assert!(
            ev.contains("Go runtime: heap in use 4.0 MiB, gc misc 3.0 MiB"),
            "{ev}"
        );
    }

    #[test]
    fn small_or_minor_non_go_memory_is_left_alone() {
        assert!(run(&snap(300 * MIB, 200 * MIB, Vec::new())).is_empty());
        assert!(run(&snap(2048 * MIB, 600 * MIB, Vec::new())).is_empty());
        assert!(run(&Snapshot::default()).is_empty());
    }

    #[test]
    fn steady_growth_is_reported_with_its_rate() {
        let s = snap(
            200 * MIB,
            180 * MIB,
            vec![
                (0, 100 * MIB, 10 * MIB, 60 * MIB),
                (5_000, 150 * MIB, 10 * MIB, 120 * MIB),
                (10_000, 200 * MIB, 10 * MIB, 180 * MIB),
            ],
        );
        let f = run(&s);
        assert_eq!(f[0].severity, Severity::Critical, "{}", f[0].title);
        assert!(
            f[0].title
                .starts_with("non-Go memory grew 120 MiB in 10s (720 MiB/min)"),
            "{}",
            f[0].title
        );
        assert!(f[0]
            .evidence
            .iter()
            .any(|e| e.contains("while the Go runtime stayed at 10 MiB")));
    }

    #[test]
    fn growth_that_is_go_or_noise_is_left_alone() {
        // Go grew as much: Go's own memory.
        let go = snap(
            200 * MIB,
            100 * MIB,
            vec![
                (0, 100 * MIB, 10 * MIB, 60 * MIB),
                (1_000, 200 * MIB, 110 * MIB, 100 * MIB),
            ],
        );
        assert!(run(&go).is_empty());
        // Up and down.
        let bursty = snap(
            200 * MIB,
            100 * MIB,
            vec![
                (0, 0, 10 * MIB, 50 * MIB),
                (1_000, 0, 10 * MIB, 150 * MIB),
                (2_000, 0, 10 * MIB, 60 * MIB),
                (3_000, 0, 10 * MIB, 100 * MIB),
            ],
        );
        assert!(run(&bursty).is_empty());
        // Too little.
        let small = snap(
            200 * MIB,
            100 * MIB,
            vec![(0, 0, 10 * MIB, 80 * MIB), (60_000, 0, 10 * MIB, 100 * MIB)],
        );
        assert!(run(&small).is_empty());
    }

    #[test]
    fn slow_growth_is_a_warning() {
        let s = snap(
            400 * MIB,
            100 * MIB,
            vec![(0, 0, 10 * MIB, 50 * MIB), (60_000, 0, 10 * MIB, 100 * MIB)],
        );
        let f = run(&s);
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(f[0].title.contains("(50 MiB/min)"), "{}", f[0].title);
    }
}
