//! Goroutines grouped by identical stack, state and wait reason: the unit a person reads. Live
//! goroutines in cgo calls also need identical C frames (the same native pcs) to share a group.

use gostall_model::{GoState, Snapshot, StackId, WaitReason};
use rustc_hash::FxHashMap;

/// Goroutines that share a stack, state and wait reason (and, in cgo calls, C frames).
#[derive(Debug, Clone)]
pub struct Group {
    /// The shared stack.
    pub stack: StackId,
    /// The shared state.
    pub state: GoState,
    /// The shared wait reason.
    pub wait_reason: Option<WaitReason>,
    /// How many goroutines (aggregated entries counted by their count).
    pub count: u64,
    /// Their ids, ascending (empty for sources without ids).
    pub ids: Vec<u64>,
    /// Shortest and longest printed wait, in minutes, when any was printed.
    pub wait_minutes: Option<(u32, u32)>,
    /// How many are locked to their thread.
    pub locked: u64,
    /// Indices into `Snapshot::goroutines`.
    pub members: Vec<u32>,
}

/// Groups goroutines; largest group first, then by first goroutine id.
pub fn group_goroutines(snap: &Snapshot) -> Vec<Group> {
    type Key = (StackId, GoState, Option<WaitReason>, Vec<u64>);
    let mut index: FxHashMap<Key, usize> = FxHashMap::default();
    let mut groups: Vec<Group> = Vec::new();
    for (i, g) in snap.goroutines.iter().enumerate() {
        let native: Vec<u64> = snap.native_stack_of(g).iter().map(|f| f.pc).collect();
        let key = (g.stack, g.state, g.wait_reason, native);
        let gi = *index.entry(key).or_insert_with(|| {
            groups.push(Group {
                stack: g.stack,
                state: g.state,
                wait_reason: g.wait_reason,
                count: 0,
                ids: Vec::new(),
                wait_minutes: None,
                locked: 0,
                members: Vec::new(),
            });
            groups.len() - 1
        });
        let gr = &mut groups[gi];
        gr.count += u64::from(g.count);
        if g.id != 0 {
            gr.ids.push(g.id);
        }
        if g.locked_to_thread {
            gr.locked += u64::from(g.count);
        }
        if let Some(m) = g.wait_minutes {
            gr.wait_minutes = Some(match gr.wait_minutes {
                Some((lo, hi)) => (lo.min(m), hi.max(m)),
                None => (m, m),
            });
        }
        gr.members.push(i as u32);
    }
    for g in &mut groups {
        g.ids.sort_unstable();
    }
    groups.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(a.ids.first().cmp(&b.ids.first()))
            .then(a.stack.cmp(&b.stack))
    });
    groups
}
