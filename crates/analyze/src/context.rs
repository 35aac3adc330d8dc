//! Facts every rule needs, computed once per snapshot (and once per distinct stack, so 200k
//! goroutines sharing a few hundred stacks cost a few hundred stack walks).

use gostall_goruntime as rt;
use gostall_model::{
    Finding, FindingKind, FrameId, GoState, Goroutine, Location, Severity, Snapshot, StackId, Sym,
    WaitReason,
};
use rustc_hash::{FxHashMap, FxHashSet};

/// What a stack says, independent of which goroutine owns it.
#[derive(Debug, Default, Clone)]
pub struct StackFacts {
    /// The root-cause frame: the innermost frame of the application's own code (its main
    /// module), else the innermost frame of any non-standard-library code (not runtime, stdlib
    /// or cgo trampolines).
    pub user_frame: Option<FrameId>,
    /// The innermost frame of a dependency (library code outside the main module) below the
    /// root-cause frame, e.g. `github.com/lib/pq.(*conn).recvMessage`: evidence on the way.
    pub lib_frame: Option<FrameId>,
    /// The known library blocking point the goroutine is parked at (`gostall-libs`), and its
    /// frame.
    pub blocking: Option<(&'static gostall_libs::BlockingPoint, FrameId)>,
    /// The outermost library frame between the application and the blocking point (the API the
    /// application called, e.g. `github.com/jackc/pgx/v4/pgxpool.(*Pool).Query`).
    pub api_frame: Option<FrameId>,
    /// The stack has a frame of the application's own code (not only library machinery).
    pub app: bool,
    /// Every user function on the stack, innermost first, without repeats.
    pub user_funcs: Vec<Sym>,
    /// `read`, `write` or `accept` when the goroutine sits in a network operation.
    pub net_op: Option<&'static str>,
    /// The goroutine runs a network server's loop or one of its connections (e.g. net/http's
    /// `Serve`), whatever it is doing at the moment: a request can still arrive.
    pub net_server: bool,
    /// The cgo trampoline (`main._Cfunc_x`) when in a cgo call.
    pub cgo_fn: Option<Sym>,
    /// The goroutine runs a callback from C into Go (`runtime.cgocallback` at its bottom).
    pub cgo_callback: bool,
    /// The innermost standard-library function of a raw system call (e.g. `syscall.read`).
    pub syscall_fn: Option<Sym>,
    /// The stack shows the goroutine was preempted or yielded (`asyncPreempt`, `Gosched`).
    pub yielded: bool,
    /// The stack shows a park point (`runtime.gopark`), i.e. the goroutine was woken, not preempted.
    pub parked: bool,
    /// Number of frames.
    pub depth: usize,
}

/// Per-goroutine facts.
#[derive(Debug, Clone, Copy)]
pub struct GInfo {
    /// Has user code on its stack: an application goroutine, not runtime or library machinery.
    pub app: bool,
}

/// The shared analysis context.
pub struct Context<'a> {
    /// The snapshot under analysis.
    pub snap: &'a Snapshot,
    /// Facts of each stack that some goroutine has, indexed by stack id.
    facts: Vec<Option<StackFacts>>,
    /// Every function on any goroutine's stack.
    pub live_funcs: FxHashSet<Sym>,
    /// User function → goroutines (indices) that have it on their stack.
    pub by_user_func: FxHashMap<Sym, Vec<u32>>,
    /// Goroutine id → index.
    pub by_id: FxHashMap<u64, u32>,
    /// Creator goroutine id → goroutines (indices) it created that are still alive.
    pub children: FxHashMap<u64, Vec<u32>>,
    /// Some goroutine waits for signals (`os/signal`): the program reacts to external events.
    pub has_signal_loop: bool,
    /// Some goroutine accepts network connections or waits on network I/O.
    pub has_network: bool,
    /// Live, with the reachability proof: goroutines proved leaked.
    pub proven_leaked: FxHashSet<u64>,
    /// Live: lock-order cycles found through the locks' likely holders, each a list of
    /// goroutine ids in wait order (each waits for a lock the next one holds).
    pub lock_cycles: Vec<Vec<u64>>,
    /// What tells the application's code from its dependencies.
    pub app_code: rt::AppCode,
    empty: StackFacts,
}

impl<'a> Context<'a> {
    /// Computes the shared facts.
    pub fn new(snap: &'a Snapshot) -> Self {
        let mut cx = Context {
            snap,
            facts: Vec::new(),
            live_funcs: FxHashSet::default(),
            by_user_func: FxHashMap::default(),
            by_id: FxHashMap::default(),
            children: FxHashMap::default(),
            has_signal_loop: false,
            has_network: false,
            proven_leaked: snap
                .proof
                .as_ref()
                .map(|p| p.leaked.iter().copied().collect())
                .unwrap_or_default(),
            lock_cycles: Vec::new(),
            app_code: app_code(snap),
            empty: StackFacts::default(),
        };
        cx.lock_cycles = lock_cycles(snap);
        cx.facts.resize(snap.tables.sizes().2, None);
        cx.by_id.reserve(snap.goroutines.len());
        // Per-goroutine work indexes into per-stack data; maps are touched once per distinct stack.
        // User function → its goroutine list, in order of first appearance.
        let mut user_lists: Vec<(Sym, Vec<u32>)> = Vec::new();
        let mut list_of: FxHashMap<Sym, u32> = FxHashMap::default();
        // Stack id → indices into `user_lists` of its user functions.
        let mut stack_lists: Vec<Vec<u32>> = vec![Vec::new(); cx.facts.len()];
        for (i, g) in snap.goroutines.iter().enumerate() {
            let i = i as u32;
            let s = g.stack.0 as usize;
            if s >= cx.facts.len() {
                cx.facts.resize(s + 1, None);
                stack_lists.resize(s + 1, Vec::new());
            }
            if cx.facts[s].is_none() {
                let f = cx.stack_facts(g.stack);
                stack_lists[s] = f
                    .user_funcs
                    .iter()
                    .map(|&func| {
                        *list_of.entry(func).or_insert_with(|| {
                            user_lists.push((func, Vec::new()));
                            (user_lists.len() - 1) as u32
                        })
                    })
                    .collect();
                if f.depth > 0 {
                    // The same set, in the same order of insertion, as walking every goroutine.
                    for &fr in snap.tables.stack(g.stack) {
                        cx.live_funcs.insert(snap.tables.frame(fr).function);
                    }
                }
                cx.facts[s] = Some(f);
            }
            let f = cx.facts[s].as_ref().expect("computed above");
            for &l in &stack_lists[s] {
                user_lists[l as usize].1.push(i);
            }
            if f.net_op.is_some() || f.net_server || g.wait_reason == Some(WaitReason::IoWait) {
                cx.has_network = true;
            }
            if g.wait_reason == Some(WaitReason::Signal) {
                cx.has_signal_loop = true;
            }
            if g.id != 0 {
                cx.by_id.insert(g.id, i);
            }
            if let Some(c) = g.created_by.and_then(|c| c.goroutine) {
                cx.children.entry(c).or_default().push(i);
            }
        }
        for (func, list) in user_lists {
            cx.by_user_func.insert(func, list);
        }
        cx
    }

    fn stack_facts(&self, stack: StackId) -> StackFacts {
        let t = &self.snap.tables;
        let mut f = StackFacts {
            depth: t.stack(stack).len(),
            ..StackFacts::default()
        };
        let mut app_frame = None;
        let mut first_user = None;
        for fr in t.stack_frames(stack) {
            let name = fr.function;
            let frame = t.frame(fr.id);
            if rt::is_cgo_callback(name) {
                f.cgo_callback = true;
            }
            if rt::is_network_server(name) {
                f.net_server = true;
            }
            if app_frame.is_none() {
                if f.blocking.is_none() {
                    if let Some(b) = gostall_libs::blocking_point(name) {
                        f.blocking = Some((b, fr.id));
                    }
                }
                if f.blocking.is_some()
                    && !name.starts_with("runtime.")
                    && !self.app_code.is_app(name, t.str(frame.file))
                {
                    f.api_frame = Some(fr.id);
                }
            }
            if rt::is_user_function(name) {
                if app_frame.is_none() {
                    if self.app_code.is_app(name, t.str(frame.file)) {
                        app_frame = Some(fr.id);
                    } else if f.lib_frame.is_none() {
                        f.lib_frame = Some(fr.id);
                    }
                }
                if first_user.is_none() {
                    first_user = Some(fr.id);
                    // Until an application frame is found, the innermost user frame stands in.
                    f.user_frame = Some(fr.id);
                }
                if !f.user_funcs.contains(&frame.function) {
                    f.user_funcs.push(frame.function);
                }
            } else if rt::is_cgo_wrapper(name) {
                if f.cgo_fn.is_none() {
                    f.cgo_fn = Some(frame.function);
                }
            } else if f.user_frame.is_none() {
                if let Some(op) = rt::net_io_op(name) {
                    f.net_op.get_or_insert(op);
                }
                if f.syscall_fn.is_none()
                    && name.starts_with("syscall.")
                    && !rt::is_raw_syscall(name)
                {
                    f.syscall_fn = Some(frame.function);
                }
                match name {
                    "runtime.asyncPreempt"
                    | "runtime.asyncPreempt2"
                    | "runtime.Gosched"
                    | "runtime.goschedguarded"
                    | "runtime.gopreempt_m"
                    | "runtime.goschedIfBusy" => f.yielded = true,
                    "runtime.gopark" | "runtime.goparkunlock" => f.parked = true,
                    _ => {}
                }
            }
        }
        if app_frame.is_some() {
            f.user_frame = app_frame;
            f.app = true;
        } else {
            f.lib_frame = None;
        }
        f
    }

    /// Facts of a goroutine's stack.
    pub fn facts(&self, g: &Goroutine) -> &StackFacts {
        match self.facts.get(g.stack.0 as usize) {
            Some(Some(f)) => f,
            _ => &self.empty,
        }
    }

    /// Whether the goroutine runs a callback from C into Go: its stack shows the cgo callback frames,
    /// or — where tracebacks stop at the callback (`debug=2`) — it is locked to its thread and has
    /// no creator although it is not the main goroutine (every `go` statement records one).
    pub fn is_cgo_callback(&self, g: &Goroutine) -> bool {
        self.facts(g).cgo_callback
            || (g.locked_to_thread
                && g.created_by.is_none()
                && g.id > 1
                && self.facts(g).user_frame.is_some()
                && self
                    .snap
                    .sources
                    .get(usize::from(g.source))
                    .is_some_and(|s| {
                        matches!(
                            s.kind,
                            gostall_model::SourceKind::GoroutineDump
                                | gostall_model::SourceKind::LiveProcess
                        )
                    }))
    }

    /// Per-goroutine facts.
    pub fn info(&self, g: &Goroutine) -> GInfo {
        GInfo {
            app: self.facts(g).user_frame.is_some(),
        }
    }

    /// The goroutine at an index.
    pub fn g(&self, i: u32) -> &Goroutine {
        &self.snap.goroutines[i as usize]
    }

    /// Indices of goroutines matching a predicate.
    pub fn select(&self, mut pred: impl FnMut(&Goroutine, &StackFacts) -> bool) -> Vec<u32> {
        self.snap
            .goroutines
            .iter()
            .enumerate()
            .filter(|(_, g)| pred(g, self.facts(g)))
            .map(|(i, _)| i as u32)
            .collect()
    }

    /// Groups goroutine indices by their innermost user frame; largest group first.
    /// Goroutines without user code are left out.
    pub fn by_site(&self, members: &[u32]) -> Vec<(FrameId, Vec<u32>)> {
        let mut map: FxHashMap<FrameId, Vec<u32>> = FxHashMap::default();
        for &i in members {
            if let Some(fr) = self.facts(self.g(i)).user_frame {
                map.entry(fr).or_default().push(i);
            }
        }
        let mut v: Vec<_> = map.into_iter().collect();
        v.sort_by(|a, b| self.count(&b.1).cmp(&self.count(&a.1)).then(a.0.cmp(&b.0)));
        v
    }

    /// Goroutines represented by these entries (aggregated entries count by their count).
    pub fn count(&self, members: &[u32]) -> u64 {
        members.iter().map(|&i| u64::from(self.g(i).count)).sum()
    }

    /// Longest printed wait among these goroutines, in minutes.
    pub fn max_minutes(&self, members: &[u32]) -> Option<u32> {
        members.iter().filter_map(|&i| self.g(i).wait_minutes).max()
    }

    /// A frame as a location.
    pub fn location(&self, frame: FrameId) -> Location {
        let f = self.snap.tables.frame_ref(frame);
        Location {
            function: f.function.to_string(),
            file: f.file.to_string(),
            line: f.line,
        }
    }

    /// `function (file.go:LINE)` for evidence lines.
    pub fn short(&self, frame: FrameId) -> String {
        let f = self.snap.tables.frame_ref(frame);
        let base = f.file.rsplit('/').next().unwrap_or(f.file);
        format!("{} ({}:{})", f.function, base, f.line)
    }

    /// A function name.
    pub fn func(&self, s: Sym) -> &str {
        self.snap.tables.str(s)
    }

    /// "goroutines 5, 6, 7 and 37 more" — ids listed up to a bound, the rest counted.
    pub fn id_list(&self, members: &[u32]) -> String {
        let mut ids: Vec<u64> = members
            .iter()
            .map(|&i| self.g(i).id)
            .filter(|&id| id != 0)
            .collect();
        ids.sort_unstable();
        let total = self.count(members);
        if ids.is_empty() {
            return format!("{total} goroutine{}", plural(total));
        }
        const SHOW: usize = 6;
        let shown: Vec<String> = ids.iter().take(SHOW).map(|id| id.to_string()).collect();
        let mut s = format!("goroutine{} {}", plural(ids.len() as u64), shown.join(", "));
        if total > shown.len() as u64 {
            s.push_str(&format!(" and {} more", total - shown.len() as u64));
        }
        s
    }

    /// `", blocked up to N minutes"` when the dump printed wait times; for live reads the longest
    /// wait measured from the runtime's `waitsince` (`", blocked ≥ 3m12s"`).
    pub fn minutes_suffix(&self, members: &[u32]) -> String {
        if let Some(ns) = members.iter().filter_map(|&i| self.g(i).wait_ns).max() {
            return format!(", blocked ≥ {}", human_duration(ns));
        }
        match self.max_minutes(members) {
            Some(m) => format!(", blocked up to {m} minute{}", plural(u64::from(m))),
            None => String::new(),
        }
    }

    /// Live: what these goroutines wait on (a channel or a lock's semaphore), as an evidence line
    /// — "all wait on the same lock 0x…" or "they wait on 2 different …: 0x… (4), 0x… (3)".
    pub fn waited_objects(&self, members: &[u32], what: &str) -> Option<String> {
        let mut by: Vec<(u64, u64)> = Vec::new();
        for &i in members {
            let g = self.g(i);
            let Some(a) = g.waiting_on else { continue };
            match by.iter_mut().find(|(x, _)| *x == a) {
                Some(e) => e.1 += u64::from(g.count),
                None => by.push((a, u64::from(g.count))),
            }
        }
        match by.len() {
            0 => None,
            1 => Some(format!(
                "all {} wait on the same {what} ({:#x})",
                by[0].1, by[0].0
            )),
            n => {
                by.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                let list: Vec<String> = by
                    .iter()
                    .take(4)
                    .map(|(a, c)| format!("{a:#x} ({c})"))
                    .collect();
                Some(format!(
                    "they wait on {n} different {what}s: {}{}",
                    list.join(", "),
                    if n > 4 { ", …" } else { "" }
                ))
            }
        }
    }

    /// Is this goroutine doing something that can make progress by itself (running, runnable, in a
    /// system call, sleeping, waiting on I/O or a timer-driven select)?
    pub fn progressing(&self, g: &Goroutine) -> bool {
        match g.state {
            GoState::Running | GoState::Runnable | GoState::Syscall | GoState::Preempted => true,
            GoState::Waiting => matches!(
                g.wait_reason,
                Some(
                    WaitReason::Sleep
                        | WaitReason::IoWait
                        | WaitReason::Select
                        | WaitReason::Syscall
                        | WaitReason::Cgo
                        | WaitReason::Other
                )
            ),
            _ => false,
        }
    }

    /// Live: the objects goroutine `id` waits on, with what it wants from each.
    pub fn waits_of(
        &self,
        id: u64,
    ) -> impl Iterator<Item = (&'a gostall_model::SyncObject, gostall_model::WaitOp)> + '_ {
        self.snap
            .waits_of(id)
            .iter()
            .filter_map(|w| Some((self.snap.objects.get(w.object as usize)?, w.op)))
    }

    /// `goroutine 42 in main.beginBatch (batch.go:17), itself blocked in chan receive` — who a
    /// goroutine is and what it does now, for chains of evidence.
    pub fn describe_goroutine(&self, id: u64) -> String {
        let Some(&i) = self.by_id.get(&id) else {
            return format!("goroutine {id}");
        };
        let g = self.g(i);
        let at = self
            .facts(g)
            .user_frame
            .map(|f| format!(" in {}", self.short(f)))
            .unwrap_or_default();
        let doing = match (g.state, g.wait_reason) {
            (GoState::Waiting, Some(r)) => {
                let leaked = if self.proven_leaked.contains(&id) {
                    " (leaked)"
                } else {
                    ""
                };
                format!(", itself blocked in {}{leaked}", r.as_str())
            }
            (GoState::Running, _) => ", running".to_string(),
            (GoState::Runnable | GoState::Preempted, _) => ", runnable".to_string(),
            (GoState::Syscall, _) => ", in a system call".to_string(),
            _ => String::new(),
        };
        format!("goroutine {id}{at}{doing}")
    }

    /// Goroutines that have a database/sql transaction open — the creators of the goroutines
    /// that watch an open transaction's context (`(*Tx).awaitDone`) — with the watcher's id.
    pub fn open_transactions(&self) -> Vec<(u64, u64)> {
        let t = &self.snap.tables;
        self.snap
            .goroutines
            .iter()
            .filter(|g| {
                t.stack(g.stack)
                    .iter()
                    .any(|&f| t.str(t.frame(f).function) == gostall_libs::OPEN_TX_WATCHER)
            })
            .filter_map(|g| Some((g.created_by?.goroutine?, g.id)))
            .collect()
    }

    /// The two evidence lines of goroutines parked at a library blocking point: who waits where
    /// for what, and the library path from the application's call to the parking function.
    pub fn library_wait_lines(
        &self,
        members: &[u32],
        site: FrameId,
        point: &gostall_libs::BlockingPoint,
    ) -> Vec<String> {
        let facts = self.facts(self.g(members[0]));
        let mut lines = vec![format!(
            "{} in {} wait for {}{}",
            self.id_list(members),
            self.short(site),
            point.what,
            self.minutes_suffix(members)
        )];
        if let Some((_, fr)) = facts.blocking {
            let via = facts
                .api_frame
                .filter(|&a| a != fr)
                .map(|a| format!("{} → ", self.short(a)))
                .unwrap_or_default();
            lines.push(format!("parked in {via}{}", self.short(fr)));
        }
        lines
    }

    /// Builds a finding from its parts.
    #[allow(clippy::too_many_arguments)]
    pub fn finding(
        &self,
        kind: FindingKind,
        severity: Severity,
        title: String,
        explanation: String,
        members: &[u32],
        location: Option<FrameId>,
        evidence: Vec<String>,
        advice: &str,
    ) -> Finding {
        let mut goroutines: Vec<u64> = members
            .iter()
            .map(|&i| self.g(i).id)
            .filter(|&id| id != 0)
            .collect();
        goroutines.sort_unstable();
        goroutines.dedup();
        Finding {
            kind,
            severity,
            title,
            explanation,
            goroutine_count: self.count(members),
            goroutines,
            threads: Vec::new(),
            location: location.map(|f| self.location(f)),
            evidence,
            advice: advice.to_string(),
            proved: false,
        }
    }
}

/// The main module from the build information, and the main package's directory from the
/// first frame of package `main` any goroutine shows.
fn app_code(snap: &Snapshot) -> rt::AppCode {
    let t = &snap.tables;
    let main_dir = snap
        .goroutines
        .iter()
        .flat_map(|g| {
            t.stack(g.stack)
                .iter()
                .copied()
                .chain(g.created_by.map(|c| c.frame))
        })
        .map(|f| t.frame(f))
        .find(|f| {
            rt::package_of(t.str(f.function)) == "main" && !rt::is_cgo_wrapper(t.str(f.function))
        })
        .and_then(|f| t.str(f.file).rsplit_once('/').map(|(d, _)| d.to_string()));
    rt::AppCode {
        main_module: snap.process.main_module.clone(),
        main_dir,
    }
}

/// Cycles in the live wait-for graph through locks: goroutine → the lock it waits for → the
/// lock's likely holder (a goroutine whose live frames point at the locked lock and which does
/// not wait for it) → the lock that holder waits for … back to the first. Each cycle once,
/// starting at its smallest goroutine id.
fn lock_cycles(snap: &Snapshot) -> Vec<Vec<u64>> {
    use gostall_model::ObjectKind;
    // goroutine → holders of the lock it waits for.
    let mut next: FxHashMap<u64, Vec<u64>> = FxHashMap::default();
    for w in &snap.waits {
        let Some(o) = snap.objects.get(w.object as usize) else {
            continue;
        };
        if matches!(o.kind, ObjectKind::Mutex | ObjectKind::RWMutex) && !o.holders.is_empty() {
            next.entry(w.goroutine)
                .or_default()
                .extend(o.holders.iter().copied().filter(|&h| h != w.goroutine));
        }
    }
    let mut cycles: Vec<Vec<u64>> = Vec::new();
    let mut starts: Vec<u64> = next.keys().copied().collect();
    starts.sort_unstable();
    for &start in &starts {
        // Depth-first search for a path back to `start` through larger ids only (so each cycle
        // is found once, from its smallest member), bounded.
        let mut path = vec![start];
        let mut iters: Vec<usize> = vec![0];
        let mut steps = 0;
        while let Some(&g) = path.last() {
            steps += 1;
            if steps > 10_000 {
                break;
            }
            let k = iters.last().copied().unwrap_or(0);
            let succ = next.get(&g).and_then(|v| v.get(k)).copied();
            match succ {
                None => {
                    path.pop();
                    iters.pop();
                }
                Some(h) => {
                    *iters.last_mut().expect("non-empty") += 1;
                    if h == start && path.len() >= 2 {
                        cycles.push(path.clone());
                    } else if h > start && !path.contains(&h) && path.len() < 16 {
                        path.push(h);
                        iters.push(0);
                    }
                }
            }
        }
    }
    cycles.sort();
    cycles.dedup();
    cycles
}

/// `850ms`, `42s`, `3m12s`, `2h05m`.
pub fn human_duration(ns: u64) -> String {
    let s = ns / 1_000_000_000;
    if s == 0 {
        format!("{}ms", ns / 1_000_000)
    } else if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// `512 B`, `4.0 KiB`, `38 KiB`, `9.8 MiB`, `390 MiB`, `1.1 GiB`: one decimal below ten units.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if v < 9.95 {
        format!("{v:.1} {}", UNITS[u])
    } else {
        format!("{:.0} {}", v, UNITS[u])
    }
}

/// `"s"` unless exactly one.
pub fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
