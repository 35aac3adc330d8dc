//! The runtime's globals in binaries without a symbol table (`-ldflags=-s`, `strip`): found
//! through the code of runtime functions known to use them (`goruntime::globals`), each
//! candidate checked against what the global must look like in the process's memory before it
//! is used — the goroutine list must start with goroutine 1, the Ps must be numbered in order,
//! the M list must end at M 0, the wait-reason table must hold the runtime's own strings.

use crate::program::Symbols;
use gostall_access::Memory;
use gostall_binfmt::{code, GoBinary, Pclntab};
use gostall_goruntime::globals::{candidates, locator, Shape, SEMTABLE_SIZE};
use gostall_goruntime::layout::RuntimeLayout;
use gostall_goruntime::tables::TypeInfo;

/// The link-time candidates for `global`, from the code of the functions that use it.
fn candidates_for(
    bin: &GoBinary<'_>,
    pcln: &Pclntab<'_>,
    types: &dyn TypeInfo,
    global: &str,
) -> Vec<u64> {
    let Some(l) = locator(global) else {
        return Vec::new();
    };
    let mut refs = Vec::new();
    for f in l.functions {
        if let Some((entry, bytes)) = bin.function_code(pcln, f) {
            refs.extend(code::rip_refs(bytes, entry));
        }
    }
    let ty = match l.shape {
        Shape::Struct(ty) | Shape::MemberLea(ty, _) => Some(ty.to_string()),
        _ => None,
    };
    let (mut members, size) = ty
        .and_then(|ty| types.struct_layout(&ty))
        .map(|s| {
            (
                s.fields.iter().map(|f| f.offset).collect::<Vec<_>>(),
                s.size,
            )
        })
        .unwrap_or_default();
    if let Shape::VarMembers(a, b) = l.shape {
        let layout = types
            .variable_type(global)
            .and_then(|t| types.struct_layout(&t));
        let off = |m: &str| {
            layout
                .as_ref()
                .and_then(|l| l.fields.iter().find(|f| f.name == m).map(|f| f.offset))
        };
        members = off(a).into_iter().chain(off(b)).collect();
    }
    if let Shape::MemberLea(ty, member) = l.shape {
        members = types
            .struct_layout(ty)
            .and_then(|s| s.fields.iter().find(|f| f.name == member).map(|f| f.offset))
            .into_iter()
            .collect();
    }
    candidates(l.shape, &refs, &members, size)
}

/// The Go version the binary's runtime reports (`runtime.buildVersion`, e.g. `go1.26.6`), read
/// from its initialised data: for binaries without build information.
pub(crate) fn build_version(bin: &GoBinary<'_>, pcln: &Pclntab<'_>) -> Option<String> {
    struct NoTypes;
    impl TypeInfo for NoTypes {
        fn struct_layout(&self, _: &str) -> Option<gostall_binfmt::StructLayout> {
            None
        }
        fn constant(&self, _: &str) -> Option<i64> {
            None
        }
        fn variable_type(&self, _: &str) -> Option<String> {
            None
        }
    }
    for at in candidates_for(bin, pcln, &NoTypes, "runtime.buildVersion") {
        let Some(ptr) = bin.read_ptr(at) else {
            continue;
        };
        let Some(len) = bin
            .read_static(at + 8, 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8")))
        else {
            continue;
        };
        if !(4..=64).contains(&len) {
            continue;
        }
        let Some(bytes) = bin.read_static(ptr, len as usize) else {
            continue;
        };
        let Ok(s) = std::str::from_utf8(bytes) else {
            continue;
        };
        if s.starts_with("go1.") && gostall_binfmt::parse_go_version(s).is_some() {
            return Some(s.to_string());
        }
    }
    None
}

fn word<M: Memory + ?Sized>(mem: &M, a: u64) -> Option<u64> {
    mem.read_u64(a).ok()
}

/// Finds the globals the reader needs; `Err(name)` names the first essential one that could not
/// be found. Run-time addresses (`bias` applied).
pub(crate) fn from_code<M: Memory + ?Sized>(
    bin: &GoBinary<'_>,
    pcln: &Pclntab<'_>,
    layout: &RuntimeLayout,
    types: &dyn TypeInfo,
    mem: &M,
    bias: u64,
) -> Result<Symbols, &'static str> {
    let find = |global: &'static str, ok: &dyn Fn(u64) -> bool| -> Option<u64> {
        let cands = candidates_for(bin, pcln, types, global);
        let found = cands.iter().map(|a| a.wrapping_add(bias)).find(|&a| ok(a));
        if crate::timing() {
            eprintln!(
                "globals: {global} {} of {} candidates {:x?}",
                found.map_or("none".to_string(), |a| format!("{a:#x}")),
                cands.len(),
                &cands[..cands.len().min(8)]
            );
        }
        found
    };
    // allgs: a slice whose first goroutine is goroutine 1 (the main goroutine is allgs[0]).
    let allgs = find("runtime.allgs", &|a| {
        let (Some(ptr), Some(len), Some(cap)) = (word(mem, a), word(mem, a + 8), word(mem, a + 16))
        else {
            return false;
        };
        len > 0
            && len <= cap
            && cap < (1 << 26)
            && word(mem, ptr).and_then(|g| word(mem, g + layout.g.goid)) == Some(1)
    })
    .ok_or("runtime.allgs")?;
    // allp: a slice of Ps numbered 0, 1, … in order.
    let allp = find("runtime.allp", &|a| {
        let (Some(ptr), Some(len), Some(cap)) = (word(mem, a), word(mem, a + 8), word(mem, a + 16))
        else {
            return false;
        };
        let id = |i: u64| word(mem, ptr + 8 * i).and_then(|p| mem.read_u32(p + layout.p.id).ok());
        (1..=4096).contains(&len)
            && len <= cap
            && id(0) == Some(0)
            && id(len - 1) == Some((len - 1) as u32)
    })
    .ok_or("runtime.allp")?;
    // allm: the list of Ms, linked through alllink, ending at M 0 (the first one made).
    let allm = find("runtime.allm", &|a| {
        let Some(mut m) = word(mem, a) else {
            return false;
        };
        let mut last = None;
        for _ in 0..100_000 {
            if m == 0 {
                break;
            }
            let Ok(id) = mem.read_u64(m + layout.m.id) else {
                return false;
            };
            if id >= 1 << 24 {
                return false;
            }
            last = Some(id);
            let Some(next) = word(mem, m + layout.m.alllink) else {
                return false;
            };
            m = next;
        }
        m == 0 && last == Some(0)
    })
    .ok_or("runtime.allm")?;
    let nprocs = word(mem, allp + 8).unwrap_or(0);
    // sched: counters that can only be small.
    let sl = &layout.sched;
    let sched = find("runtime.sched", &|a| {
        let u = |o: u64| mem.read_u32(a + o).ok();
        matches!((u(sl.npidle), u(sl.nmspinning), u(sl.nmidle)), (Some(i), Some(s), Some(m))
            if u64::from(i) <= nprocs && u64::from(s) <= nprocs && m < 1 << 20)
    })
    .ok_or("runtime.sched")?;
    let gomaxprocs = find("runtime.gomaxprocs", &|a| {
        mem.read_u32(a).ok().map(u64::from) == Some(nprocs)
    });
    // The wait-reason strings: "" then "GC assist marking" (waitReasonGCAssistMarking = 1).
    let wait_reason_strings = find("runtime.waitReasonStrings", &|a| {
        let s1 = (word(mem, a + 16), word(mem, a + 24));
        word(mem, a + 8) == Some(0)
            && matches!(s1, (Some(p), Some(17)) if {
                let mut b = [0u8; 17];
                mem.read(p, &mut b).is_ok() && &b == b"GC assist marking"
            })
    })
    .map(|a| {
        // As many string headers as read as the runtime's short ASCII strings.
        let mut n = 0u64;
        while n < 256 {
            let (p, l) = (word(mem, a + 16 * n), word(mem, a + 16 * n + 8));
            let ok = matches!((p, l), (Some(_), Some(l)) if l < 64);
            if !ok {
                break;
            }
            n += 1;
        }
        (a, 16 * n)
    });
    // mheap_: its arena map must lead to the in-use span holding goroutine 1's g (a heap
    // object).
    let g1 = word(mem, allgs).and_then(|p| word(mem, p)).unwrap_or(0);
    let mheap = layout.heap.as_ref().ok().and_then(|h| {
        find("runtime.mheap_", &|a| {
            let Some(l2) = word(mem, a + h.mheap_arenas).filter(|&p| p != 0) else {
                return false;
            };
            let off = g1.wrapping_sub(h.arena_base_offset);
            let ai = off / h.arena_bytes;
            let page = (off % h.arena_bytes) / h.page_size;
            let Some(ha) = word(mem, l2.wrapping_add(8 * ai)).filter(|&p| p != 0) else {
                return false;
            };
            let Some(span) = word(mem, ha + h.arena_spans + 8 * page).filter(|&p| p != 0) else {
                return false;
            };
            let (Some(start), Some(npages)) = (
                word(mem, span + h.span_start),
                word(mem, span + h.span_npages),
            ) else {
                return false;
            };
            start <= g1 && g1 < start.saturating_add(npages.saturating_mul(h.page_size))
        })
    });
    let semtable = layout.sema.and_then(|s| {
        find("runtime.semtable", &|a| {
            let mut buf = vec![0u8; SEMTABLE_SIZE as usize];
            mem.read(a, &mut buf).is_ok()
                && (0..251u64).all(|i| {
                    let t = u64::from_le_bytes(
                        buf[(i * 64 + s.treap) as usize..(i * 64 + s.treap + 8) as usize]
                            .try_into()
                            .expect("8"),
                    );
                    t == 0 || word(mem, t).is_some()
                })
        })
        .map(|a| (a, SEMTABLE_SIZE))
    });
    // gcController: the heap's page counts are whole pages.
    let ml = &layout.mem;
    let gc_controller = find("runtime.gcController", &|a| {
        let pages = |o: Option<u64>| {
            o.and_then(|o| word(mem, a + o))
                .map(|v| v % 8192 == 0 && v < 1 << 48)
        };
        pages(ml.heap_in_use) == Some(true)
            && pages(ml.heap_free) != Some(false)
            && pages(ml.heap_released) != Some(false)
            && ml
                .heap_in_use
                .and_then(|o| word(mem, a + o))
                .is_some_and(|v| v > 0)
    });
    // handlingSig: [_NSIG]uint32 of 0 and 1, set for the signals Go always handles (SIGSEGV
    // 11, SIGURG 23); fwdSig: [_NSIG]uintptr of SIG_DFL, SIG_IGN or handler addresses.
    let nsig = 65u64;
    let handling_sig = find("runtime.handlingSig", &|a| {
        let mut b = vec![0u8; (nsig * 4) as usize];
        mem.read(a, &mut b).is_ok()
            && b.chunks_exact(4)
                .all(|w| u32::from_le_bytes(w.try_into().expect("4")) <= 1)
            && mem.read_u32(a + 4 * 11).ok() == Some(1)
            && mem.read_u32(a + 4 * 23).ok() == Some(1)
    })
    .map(|a| (a, nsig * 4));
    let fwd_sig = find("runtime.fwdSig", &|a| {
        let mut b = vec![0u8; (nsig * 8) as usize];
        Some(a) != handling_sig.map(|h| h.0)
            && mem.read(a, &mut b).is_ok()
            && b.chunks_exact(8).all(|w| {
                let v = u64::from_le_bytes(w.try_into().expect("8"));
                v <= 1 || v >= 0x1000
            })
    })
    .map(|a| (a, nsig * 8));
    let prof = find("runtime.prof", &|a| {
        layout
            .signals
            .prof_hz
            .is_some_and(|o| mem.read_u32(a + o).is_ok_and(|hz| hz <= 100_000))
            && mem.read_u32(a).is_ok_and(|lock| lock <= 1)
    });
    // debug: the GODEBUG settings — every int32 member small, and the two that default on
    // (cgocheck, invalidptr) within their ranges with at least one of them on.
    let debug_fields: Vec<(String, u64, String)> = types
        .variable_type("runtime.debug")
        .and_then(|t| types.struct_layout(&t))
        .map(|l| {
            l.fields
                .into_iter()
                .map(|f| (f.name, f.offset, f.type_name))
                .collect()
        })
        .unwrap_or_default();
    let debug_size = debug_fields.iter().map(|f| f.1 + 4).max().unwrap_or(0);
    let debug = find("runtime.debug", &|a| {
        let mut b = vec![0u8; debug_size as usize];
        if debug_size == 0 || mem.read(a, &mut b).is_err() {
            return false;
        }
        let at = |o: u64| {
            b.get(o as usize..o as usize + 4)
                .map(|w| u32::from_le_bytes(w.try_into().expect("4")))
        };
        let get = |name: &str| {
            debug_fields
                .iter()
                .find(|f| f.0 == name)
                .and_then(|f| at(f.1))
        };
        let small = debug_fields
            .iter()
            .filter(|f| f.2 == "int32")
            .all(|f| at(f.1).is_some_and(|v| v < 1 << 20));
        let (cgocheck, invalidptr) = (get("cgocheck"), get("invalidptr"));
        small
            && layout.signals.debug_asyncpreemptoff.is_some()
            && matches!((cgocheck, invalidptr), (Some(c), Some(i)) if c <= 2 && i <= 1 && c + i > 0)
    });
    Ok(Symbols {
        allgs,
        allm,
        allp,
        sched,
        gomaxprocs,
        wait_reason_strings,
        semtable,
        memstats: None,
        gc_controller,
        mheap,
        handling_sig,
        fwd_sig,
        debug,
        prof,
        cpu_profiler_linked: pcln
            .func_by_name(gostall_goruntime::layout::signal_symbols::CPU_PROFILER_ENTRY)
            .is_some(),
        firstmoduledata: pcln.moduledata().map(|a| a.wrapping_add(bias)),
    })
}
