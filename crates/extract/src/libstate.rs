//! The live state of library resources goroutines wait for: for goroutines parked at a known
//! blocking point (`gostall-libs`), the library structure behind the wait — found among the
//! words of the blocking function's own frame and checked against the type's DWARF layout —
//! and the fields that say how full it is (a pool's limit, open and idle connections; a
//! semaphore's size and held weight).

use crate::{GRaw, Program};
use gostall_access::Memory;
use gostall_libs::{FieldKind, Meaning, StateSpec, BLOCKING_POINTS};
use gostall_model::{LibState, Snapshot};

/// A library type's layout: its size and, per state field, (meaning, offset, size, kind).
#[derive(Debug, Clone)]
pub struct LibLayout {
    /// The blocking point's parking function.
    pub function: &'static str,
    /// The type's DWARF name.
    pub type_name: &'static str,
    /// The type's size.
    pub size: u64,
    /// Fields: (meaning, offset, size, kind).
    pub fields: Vec<(Meaning, u64, u64, FieldKind)>,
}

/// Layouts of every blocking point's structure the binary's DWARF describes.
pub(crate) fn layouts(d: &gostall_binfmt::Dwarf) -> Vec<LibLayout> {
    BLOCKING_POINTS
        .iter()
        .filter_map(|b| {
            let spec: StateSpec = b.state?;
            let mut size = 0;
            let mut fields = Vec::new();
            for f in spec.fields {
                let (off, sz, tsize) =
                    gostall_goruntime::layout::member(d, spec.type_name, f.path)?;
                size = tsize;
                fields.push((f.meaning, off, sz, f.kind));
            }
            Some(LibLayout {
                function: b.function,
                type_name: spec.type_name,
                size,
                fields,
            })
        })
        .collect()
}

/// Most goroutines whose frames are searched (waiters beyond share the structures found).
const MAX_SEARCHED: usize = 256;
/// Largest sane count in a pool or semaphore field.
const MAX_COUNT: i64 = 1 << 40;

/// Reads the structures behind goroutines parked at blocking points with a known state.
pub(crate) fn read<M: Memory + ?Sized>(
    prog: &Program<'_>,
    mem: &M,
    snap: &Snapshot,
    graws: &[GRaw],
    first: usize,
) -> Vec<LibState> {
    let mut out: Vec<LibState> = Vec::new();
    if prog.lib_layouts.is_empty() {
        return out;
    }
    let t = &snap.tables;
    let mut searched = 0;
    for (k, raw) in graws.iter().enumerate() {
        let Some(g) = snap.goroutines.get(first + k) else {
            break;
        };
        let Some(layout) = t.stack(g.stack).iter().find_map(|&f| {
            let name = t.str(t.frame(f).function);
            prog.lib_layouts.iter().find(|l| l.function == name)
        }) else {
            continue;
        };
        if searched >= MAX_SEARCHED {
            break;
        }
        searched += 1;
        let Some((obj, values)) = find(prog, mem, raw, layout) else {
            continue;
        };
        match out
            .iter_mut()
            .find(|s| s.object == obj && s.function == layout.function)
        {
            Some(s) => s.waiters.push(g.id),
            None => {
                let get = |m: Meaning| values.iter().find(|v| v.0 == m).map(|v| v.1);
                out.push(LibState {
                    function: layout.function.to_string(),
                    object: obj,
                    type_name: layout.type_name.to_string(),
                    limit: get(Meaning::Limit),
                    open: get(Meaning::Open),
                    idle: get(Meaning::Idle),
                    held: get(Meaning::Held),
                    lib_waiters: get(Meaning::Waiters),
                    waiters: vec![g.id],
                })
            }
        }
    }
    for s in &mut out {
        s.waiters.sort_unstable();
    }
    out
}

/// The structure in the blocking function's frame: each word of the frame (arguments first,
/// where the receiver is spilled) is tried as a pointer to the type and kept when every field
/// reads as a sane value.
fn find<M: Memory + ?Sized>(
    prog: &Program<'_>,
    mem: &M,
    raw: &GRaw,
    layout: &LibLayout,
) -> Option<(u64, Vec<(Meaning, i64)>)> {
    let (pc, sp) = crate::unwind::start(raw);
    if sp < raw.stack_lo || sp >= raw.stack_hi || raw.stack_hi - sp > (64 << 20) {
        return None;
    }
    let mut stack = vec![0u8; (raw.stack_hi - sp) as usize];
    mem.read(sp, &mut stack).ok()?;
    let frame = crate::stackscan::frames(prog, pc, sp, &stack)
        .into_iter()
        .find(|f| prog.pcln.name(&f.func) == layout.function)?;
    let word = |a: u64| -> Option<u64> {
        let o = a.checked_sub(sp)? as usize;
        stack
            .get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    };
    // Arguments (the caller's spill area above the return address), then locals.
    let args = (frame.fp..frame.fp + 64).step_by(8);
    let locals = (frame.sp..frame.fp.saturating_sub(8)).step_by(8);
    let mut buf = vec![0u8; layout.size.max(8) as usize];
    for at in args.chain(locals) {
        let Some(p) = word(at) else { continue };
        if p < 4096 || p % 8 != 0 || (p >= sp && p < raw.stack_hi) {
            continue;
        }
        if mem.read(p, &mut buf).is_err() {
            continue;
        }
        if let Some(values) = fields(layout, &buf, mem) {
            return Some((p, values));
        }
    }
    None
}

/// The state fields of a candidate structure, or `None` when one of them is not sane.
fn fields<M: Memory + ?Sized>(
    layout: &LibLayout,
    b: &[u8],
    mem: &M,
) -> Option<Vec<(Meaning, i64)>> {
    let mut out = Vec::new();
    for &(meaning, off, size, kind) in &layout.fields {
        let o = off as usize;
        let v = match kind {
            FieldKind::Int => match size {
                1 => i64::from(*b.get(o)? as i8),
                2 => i64::from(i16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?)),
                4 => i64::from(i32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?)),
                _ => i64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?),
            },
            FieldKind::SliceLen => {
                let ptr = u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?);
                let len = i64::from_le_bytes(b.get(o + 8..o + 16)?.try_into().ok()?);
                let cap = i64::from_le_bytes(b.get(o + 16..o + 24)?.try_into().ok()?);
                if len > cap || (cap > 0 && ptr == 0) || (ptr != 0 && mem.read_u8(ptr).is_err()) {
                    return None;
                }
                len
            }
        };
        if !(-MAX_COUNT..=MAX_COUNT).contains(&v) {
            return None;
        }
        if meaning != Meaning::Limit && v < 0 {
            return None;
        }
        out.push((meaning, v));
    }
    // Open or held beyond a positive limit cannot be the structure.
    let limit = out.iter().find(|v| v.0 == Meaning::Limit).map(|v| v.1);
    if let Some(l) = limit.filter(|&l| l > 0) {
        if out
            .iter()
            .any(|&(m, v)| matches!(m, Meaning::Open | Meaning::Held | Meaning::Idle) && v > l)
        {
            return None;
        }
    }
    Some(out)
}
