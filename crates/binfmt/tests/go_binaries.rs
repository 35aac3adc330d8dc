//! gostall-binfmt against real Go binaries: `testdata/prog` built with each toolchain of
//! `GOSTALL_GO_VERSIONS` (default: 1.21.13 and 1.27.3; `all` for every supported one) in each
//! variant, checked against what the Go tools themselves report.

mod common;

use common::{base, builds, nm, objdump, src_line, without_section_headers, Built, Variant};
use gostall_binfmt::{FuncFlag, FuncId, GoBinary, Pclntab, StructLayout};
use std::collections::HashMap;

fn parse<'a>(b: &Built, data: &'a [u8]) -> GoBinary<'a> {
    GoBinary::parse(data).unwrap_or_else(|e| panic!("{}: {e}", b.label()))
}

fn pclntab<'a>(b: &Built, bin: &GoBinary<'a>) -> Pclntab<'a> {
    bin.pclntab()
        .unwrap_or_else(|e| panic!("{}: pclntab: {e}", b.label()))
}

#[test]
fn build_info_matches_go_version_m() {
    for b in builds() {
        let data = b.bytes();
        let bin = parse(b, &data);
        let info = bin
            .build_info()
            .unwrap_or_else(|| panic!("{}: no build info", b.label()));
        let text = b.go_tool(&["version", "-m"]);
        let mut lines = text.lines();
        let first = lines.next().expect("go version -m output");
        let want_version = first.rsplit(' ').next().unwrap_or("");
        assert_eq!(info.go_version, want_version, "{}", b.label());
        assert_eq!(info.go_version, format!("go{}", b.version));
        assert_eq!(bin.go_version(), Some(b.triple), "{}", b.label());
        let mut settings = 0;
        for line in lines {
            let cols: Vec<&str> = line.trim_start_matches('\t').split('\t').collect();
            match cols.as_slice() {
                ["path", p] => assert_eq!(&info.path, p, "{}", b.label()),
                ["mod", path, version, ..] => {
                    let m = info.main.as_ref().expect("main module");
                    assert_eq!((&m.path[..], &m.version[..]), (*path, *version));
                }
                ["build", kv] => {
                    settings += 1;
                    // Unquoted lines compare verbatim; quoted ones are checked below.
                    if let Some((k, v)) = kv.split_once('=') {
                        if !kv.contains('"') && !kv.contains('`') {
                            assert_eq!(info.setting(k), Some(v), "{}: {kv}", b.label());
                        }
                    }
                }
                _ => {}
            }
        }
        assert_eq!(info.settings.len(), settings, "{}", b.label());
        assert_eq!(info.path, "example.com/binfmtprog");
        assert_eq!(info.setting("GOARCH"), Some("amd64"));
        let (mode, cgo, ldflags) = match b.variant {
            Variant::Default => ("exe", "1", None),
            Variant::Pie => ("pie", "1", None),
            Variant::NoDwarf => ("exe", "1", Some("-w")),
            Variant::NoCgo => ("exe", "0", None),
            Variant::Stripped => ("exe", "1", Some("-s -w")),
            Variant::External => ("exe", "1", Some("-linkmode=external")),
        };
        assert_eq!(info.setting("-buildmode"), Some(mode), "{}", b.label());
        assert_eq!(info.setting("CGO_ENABLED"), Some(cgo), "{}", b.label());
        assert_eq!(info.setting("-ldflags"), ldflags, "{}", b.label());
        assert_eq!(bin.is_pie(), b.variant == Variant::Pie, "{}", b.label());
    }
}

#[test]
fn symbols_match_go_tool_nm() {
    for b in builds() {
        let data = b.bytes();
        let bin = parse(b, &data);
        if !b.variant.has_symtab() {
            assert_eq!(bin.symbol("main.main"), None, "{}", b.label());
            assert_eq!(bin.symbol("runtime.text"), None, "{}", b.label());
            continue;
        }
        let syms = nm(b);
        assert!(syms.len() > 1000, "{}: nm found {}", b.label(), syms.len());
        let mut checked = 0;
        for (name, &(addr, size, kind)) in &syms {
            if kind == 'U' {
                continue;
            }
            let s = bin
                .symbol(name)
                .unwrap_or_else(|| panic!("{}: no symbol {name}", b.label()));
            assert_eq!(s.addr, addr, "{}: {name}", b.label());
            assert_eq!(s.size, size, "{}: {name}", b.label());
            checked += 1;
        }
        assert!(checked > 1000);
        for name in ["main.main", "runtime.allgs", "runtime.firstmoduledata"] {
            assert!(bin.symbol(name).is_some(), "{}: {name}", b.label());
        }
        assert!(bin.symbol("main.main").unwrap().is_text);
        assert!(!bin.symbol("runtime.allgs").unwrap().is_text);
        // Address → symbol, for every sized code symbol nm lists (a few hundred sampled).
        let mut found = 0;
        for (name, &(addr, size, kind)) in syms.iter().step_by(7) {
            if !matches!(kind, 'T' | 't') || size == 0 {
                continue;
            }
            let (n, off) = bin
                .symbol_at(addr + size / 2)
                .unwrap_or_else(|| panic!("{}: nothing at {name}+{}", b.label(), size / 2));
            // Aliases share an address: the containing symbol starts at the same place.
            assert_eq!(off, size / 2, "{}: {name} → {n}", b.label());
            assert!(!n.ends_with("(.text)"), "{}: {n}", b.label());
            if let Some(other) = syms.get(n) {
                assert_eq!(other.0, addr, "{}: {name} → {n}", b.label());
            }
            found += 1;
        }
        assert!(found > 100, "{}: {found}", b.label());
        let data_sym = bin.symbol("runtime.allgs").unwrap();
        assert_eq!(bin.symbol_at(data_sym.addr), None, "{}", b.label());
    }
}

#[test]
fn pclntab_functions_match_nm() {
    for b in builds() {
        let data = b.bytes();
        let bin = parse(b, &data);
        let tab = pclntab(b, &bin);
        assert!(tab.len() > 1000, "{}: {} funcs", b.label(), tab.len());
        if let Some(t) = bin.symbol("runtime.text") {
            assert_eq!(tab.text_start(), t.addr, "{}", b.label());
        }
        if let Some(g) = bin.symbol("go:func.*") {
            assert_eq!(tab.gofunc(), Some(g.addr), "{}", b.label());
        }
        let mut names: HashMap<&str, Vec<u64>> = HashMap::new();
        let mut prev = 0;
        for f in tab.funcs() {
            let (name, entry, end) = (tab.name(&f), tab.entry(&f), tab.end(&f));
            assert!(entry >= prev && end > entry, "{}: {name} order", b.label());
            prev = entry;
            // find_func maps the entry, the middle and the last byte back to the function.
            for pc in [entry, entry + (end - entry) / 2, end - 1] {
                assert_eq!(
                    tab.find_func(pc),
                    Some(f),
                    "{}: {name} at {pc:#x}",
                    b.label()
                );
            }
            names.entry(name).or_default().push(entry);
        }
        assert_eq!(tab.find_func(tab.text_start().wrapping_sub(1)), None);
        for name in [
            "main.main",
            "main.useDouble",
            "main.leaf",
            "main.(*Counter).Add",
            "main.work",
            "runtime.goexit",
        ] {
            let f = tab
                .func_by_name(name)
                .unwrap_or_else(|| panic!("{}: no func {name}", b.label()));
            assert_eq!(tab.name(&f), name);
        }
        assert!(
            names.keys().any(|n| n.starts_with("main.Map[")),
            "{}: generic instantiation missing",
            b.label()
        );
        assert!(
            tab.func_by_name("main.double").is_none(),
            "double is inlined"
        );
        if !b.variant.has_symtab() {
            continue;
        }
        // Every pclntab function is a text symbol of the same name at the same address; the
        // symbol table calls ABI0 (assembly) functions `NAME.abi0`, the pclntab calls them NAME
        // (and their ABIInternal wrappers NAME too).
        let syms = nm(b);
        let mut checked = 0;
        let mut total = 0;
        for (name, entries) in &names {
            for entry in entries {
                total += 1;
                let hit = [name.to_string(), format!("{name}.abi0")]
                    .iter()
                    .filter_map(|n| syms.get(n))
                    .any(|&(addr, _, kind)| addr == *entry && matches!(kind, 'T' | 't'));
                if hit {
                    checked += 1;
                }
            }
        }
        assert!(
            checked * 100 >= total * 99,
            "{}: only {checked} of {total} functions found in nm",
            b.label()
        );
    }
}

/// `-ldflags=-s` removes only symbols: the pclntab of a stripped build equals the unstripped one.
#[test]
fn stripped_pclntab_equals_unstripped() {
    for s in builds().iter().filter(|b| b.variant == Variant::Stripped) {
        let full = builds()
            .iter()
            .find(|b| b.version == s.version && b.variant == Variant::NoDwarf)
            .unwrap();
        let (sd, fd) = (s.bytes(), full.bytes());
        let (sb, fb) = (parse(s, &sd), parse(full, &fd));
        let (st, ft) = (pclntab(s, &sb), pclntab(full, &fb));
        assert_eq!(st.text_start(), ft.text_start(), "{}", s.label());
        let sl: Vec<_> = st.funcs().map(|f| (st.name(&f), st.entry(&f))).collect();
        let fl: Vec<_> = ft.funcs().map(|f| (ft.name(&f), ft.entry(&f))).collect();
        assert_eq!(sl, fl, "{}", s.label());
        let f = ft.func_by_name("main.useDouble").unwrap();
        for pc in ft.entry(&f)..ft.end(&f) {
            assert_eq!(st.frames_at(pc), ft.frames_at(pc), "{}", s.label());
        }
    }
}

#[test]
fn file_lines_match_objdump() {
    for b in builds().iter().filter(|b| b.variant.has_symtab()) {
        let data = b.bytes();
        let bin = parse(b, &data);
        let tab = pclntab(b, &bin);
        let insns = objdump(
            b,
            r"^(main\.|runtime\.(gopark|goexit|mcall|systemstack|schedule|chanrecv)$)",
        );
        assert!(
            insns.len() > 200,
            "{}: objdump gave {}",
            b.label(),
            insns.len()
        );
        for i in &insns {
            let f = tab
                .find_func(i.pc)
                .unwrap_or_else(|| panic!("{}: no func at {:#x}", b.label(), i.pc));
            let name = tab.name(&f);
            assert_eq!(name, i.func, "{}: func at {:#x}", b.label(), i.pc);
            let (file, line) = tab
                .file_line(&f, i.pc)
                .unwrap_or_else(|| panic!("{}: no line at {:#x} in {name}", b.label(), i.pc));
            assert_eq!(
                (base(file), line),
                (&i.file[..], i.line),
                "{}: {:#x} in {name}",
                b.label(),
                i.pc
            );
            // The innermost frame of frames_at agrees too.
            let frames = tab.frames_at(i.pc);
            assert_eq!(base(frames[0].file), i.file);
            assert_eq!(frames[0].line, i.line);
            assert_eq!(frames.last().unwrap().function, name);
            assert!(!frames.last().unwrap().inlined);
        }
    }
}

#[test]
fn inlined_frames_are_expanded() {
    let inner_line = src_line("line of the inlined call");
    let call_site = src_line("line of the call site");
    let closure_line = src_line("c.Add(useDouble(v))");
    for b in builds() {
        let data = b.bytes();
        let bin = parse(b, &data);
        let tab = pclntab(b, &bin);
        if !b.variant.has_symtab() {
            continue; // objdump needs .symtab
        }
        let insns = objdump(b, r"^main\.(useDouble|work|work\.func1)$");
        let call = insns
            .iter()
            .find(|i| i.func == "main.useDouble" && i.asm.contains("main.leaf"))
            .unwrap_or_else(|| panic!("{}: no CALL main.leaf in useDouble", b.label()));
        assert_eq!(call.line, inner_line, "{}: objdump line", b.label());
        let frames = tab.frames_at(call.pc);
        let got: Vec<_> = frames
            .iter()
            .map(|f| (f.function, base(f.file), f.line, f.inlined))
            .collect();
        assert_eq!(
            got,
            vec![
                ("main.double", "main.go", inner_line, true),
                ("main.useDouble", "main.go", call_site, false),
            ],
            "{}",
            b.label()
        );
        assert_eq!(frames[0].func_id, FuncId::Normal);

        // The closure's call of useDouble: inlined into work, or the closure itself.
        let call = insns
            .iter()
            .find(|i| i.asm.starts_with("CALL main.useDouble"))
            .unwrap_or_else(|| panic!("{}: no CALL main.useDouble", b.label()));
        let frames = tab.frames_at(call.pc);
        assert_eq!(frames[0].function, "main.work.func1", "{}", b.label());
        assert_eq!(frames[0].line, closure_line, "{}", b.label());
        if frames.len() == 2 {
            assert!(frames[0].inlined);
            assert_eq!(frames[1].function, "main.work");
            assert_eq!(frames[1].line, src_line("add(x)"));
        }
        // Reusing a buffer gives the same.
        let mut buf = Vec::new();
        tab.frames_at_into(call.pc, &mut buf);
        assert_eq!(buf, frames);
    }
}

#[test]
fn func_ids_flags_and_sp_deltas() {
    for b in builds() {
        let data = b.bytes();
        let bin = parse(b, &data);
        let tab = pclntab(b, &bin);
        let finalizer = if b.triple.1 >= 25 {
            ("runtime.runFinalizers", FuncId::RunFinalizers)
        } else {
            ("runtime.runfinq", FuncId::Runfinq)
        };
        for (name, id) in [
            ("runtime.goexit", FuncId::Goexit),
            ("runtime.mcall", FuncId::Mcall),
            ("runtime.morestack", FuncId::Morestack),
            ("runtime.systemstack", FuncId::Systemstack),
            ("runtime.systemstack_switch", FuncId::SystemstackSwitch),
            ("runtime.asmcgocall", FuncId::Asmcgocall),
            ("runtime.rt0_go", FuncId::Rt0Go),
            ("runtime.sigpanic", FuncId::Sigpanic),
            ("runtime.gogo", FuncId::Gogo),
            ("runtime.gopanic", FuncId::Gopanic),
            ("runtime.main", FuncId::RuntimeMain),
            ("runtime.mstart", FuncId::Mstart),
            ("runtime.gcBgMarkWorker", FuncId::GcBgMarkWorker),
            ("runtime.asyncPreempt", FuncId::AsyncPreempt),
            ("runtime.abort", FuncId::Abort),
            finalizer,
            ("main.main", FuncId::Normal),
            ("main.(*Counter).Add", FuncId::Normal),
        ] {
            let f = tab
                .func_by_name(name)
                .unwrap_or_else(|| panic!("{}: no {name}", b.label()));
            assert_eq!(tab.func_id(&f), id, "{}: {name}", b.label());
        }
        assert!(
            tab.funcs().any(|f| tab.func_id(&f) == FuncId::Wrapper),
            "{}: no wrapper function",
            b.label()
        );
        assert!(
            !tab.funcs()
                .any(|f| matches!(tab.func_id(&f), FuncId::Other(_))),
            "{}: undecoded FuncID",
            b.label()
        );
        let flag = |n: &str| tab.func_flag(&tab.func_by_name(n).unwrap());
        assert_ne!(flag("runtime.goexit") & FuncFlag::TOP_FRAME, 0);
        assert_ne!(flag("runtime.mstart") & FuncFlag::TOP_FRAME, 0);
        assert_ne!(flag("runtime.goexit") & FuncFlag::ASM, 0);
        assert_ne!(flag("runtime.mcall") & FuncFlag::SP_WRITE, 0);
        assert_ne!(flag("runtime.rt0_go") & FuncFlag::TOP_FRAME, 0);
        assert_eq!(flag("main.main"), 0);

        // pcsp: 0 at entry; after `PUSHQ BP; MOVQ SP, BP; SUBQ $n, SP` it is n + 8.
        if !b.variant.has_symtab() {
            continue; // objdump needs .symtab
        }
        let insns = objdump(b, r"^main\.work$");
        let f = tab.func_by_name("main.work").unwrap();
        assert_eq!(tab.sp_delta(&f, tab.entry(&f)), Some(0), "{}", b.label());
        let sub = insns
            .iter()
            .position(|i| i.asm.starts_with("SUBQ $") && i.asm.ends_with(", SP"))
            .unwrap_or_else(|| panic!("{}: no SUBQ in main.work", b.label()));
        let n = u64::from_str_radix(
            insns[sub]
                .asm
                .trim_start_matches("SUBQ $0x")
                .trim_end_matches(", SP"),
            16,
        )
        .unwrap() as i32;
        let body = insns[sub + 1].pc;
        assert_eq!(tab.sp_delta(&f, body), Some(n + 8), "{}", b.label());
        assert_eq!(tab.max_sp_delta(&f), Some(n + 8), "{}", b.label());
        let push = insns
            .iter()
            .find(|i| i.asm.starts_with("PUSHQ BP"))
            .unwrap();
        assert_eq!(tab.sp_delta(&f, push.pc), Some(0));
        assert_eq!(tab.sp_delta(&f, push.pc + 1), Some(8));
        assert!(tab.start_line(&f) as u32 == src_line("func work("));
    }
}

#[test]
fn static_data_wait_reason_strings() {
    for b in builds().iter().filter(|b| b.variant.has_symtab()) {
        let data = b.bytes();
        let bin = parse(b, &data);
        let sym = bin.symbol("runtime.waitReasonStrings").expect("symbol");
        let n = sym.size as usize / 16;
        assert!(n > 20, "{}", b.label());
        let mut reasons = Vec::new();
        for i in 0..n {
            let at = sym.addr + 16 * i as u64;
            let ptr = bin.read_ptr(at).expect("string pointer");
            let len = u64::from_le_bytes(bin.read_static(at + 8, 8).unwrap().try_into().unwrap());
            let s = bin.read_static(ptr, len as usize).expect("string bytes");
            reasons.push(String::from_utf8(s.to_vec()).unwrap());
        }
        assert_eq!(reasons[0], "", "{}", b.label());
        for want in [
            "chan receive",
            "select",
            "sleep",
            "sync.Mutex.Lock",
            "IO wait",
        ] {
            assert!(
                reasons.iter().any(|r| r == want),
                "{}: {want:?} not in {reasons:?}",
                b.label()
            );
        }
        // .bss is not file-backed.
        let allgs = bin.symbol("runtime.allgs").unwrap();
        assert_eq!(bin.read_static(allgs.addr, 8), None, "{}", b.label());
        let (addr, bytes) = bin
            .section(".gopclntab")
            .or(bin.section(".data.rel.ro.gopclntab"))
            .unwrap();
        assert_eq!(bin.read_static(addr, 16), bytes.get(..16));
    }
}

fn check_layout(b: &Built, l: &StructLayout, fields: &[&str]) {
    assert!(l.size > 0);
    for name in fields {
        let f = l
            .field(name)
            .unwrap_or_else(|| panic!("{}: {} has no field {name}", b.label(), l.name));
        assert!(
            f.offset + f.size <= l.size,
            "{}: {}.{name} out of the struct",
            b.label(),
            l.name
        );
        assert!(
            !f.type_name.is_empty(),
            "{}: {}.{name} type",
            b.label(),
            l.name
        );
    }
    // Offsets never decrease and fields do not overlap.
    for w in l.fields.windows(2) {
        assert!(
            w[0].offset + w[0].size <= w[1].offset,
            "{}: {}.{} overlaps {}",
            b.label(),
            l.name,
            w[0].name,
            w[1].name
        );
    }
}

#[test]
fn dwarf_struct_layouts() {
    let mut per_version: HashMap<&str, Vec<(Variant, StructLayout, StructLayout)>> = HashMap::new();
    for b in builds() {
        let data = b.bytes();
        let bin = parse(b, &data);
        let dwarf = bin.dwarf().unwrap_or_else(|e| panic!("{}: {e}", b.label()));
        let Some(dwarf) = dwarf else {
            assert!(!b.variant.has_dwarf(), "{}: DWARF missing", b.label());
            continue;
        };
        assert!(b.variant.has_dwarf(), "{}: unexpected DWARF", b.label());
        let g = dwarf.struct_layout("runtime.g").expect("runtime.g");
        check_layout(
            b,
            &g,
            &[
                "goid",
                "atomicstatus",
                "sched",
                "waitreason",
                "waitsince",
                "m",
                "stack",
                "lockedm",
                "waiting",
                "gopc",
                "startpc",
                "parentGoid",
                "syscallsp",
                "syscallpc",
            ],
        );
        let m = dwarf.struct_layout("runtime.m").expect("runtime.m");
        check_layout(b, &m, &["procid", "id", "curg", "p", "lockedg"]);
        assert_eq!(g.field("goid").unwrap().size, 8);
        assert_eq!(g.field("stack").unwrap().offset, 0);
        assert_eq!(g.field("stack").unwrap().type_name, "runtime.stack");
        assert_eq!(g.field("sched").unwrap().type_name, "runtime.gobuf");
        assert_eq!(g.field("m").unwrap().type_name, "*runtime.m");
        assert_eq!(m.field("curg").unwrap().type_name, "*runtime.g");
        assert_eq!(g.field("waitreason").unwrap().size, 1);

        // The atomic package moved in Go 1.23.
        let atomic = if b.triple.1 >= 23 {
            "internal/runtime/atomic.Uint32"
        } else {
            "runtime/internal/atomic.Uint32"
        };
        let status = g.field("atomicstatus").unwrap();
        assert_eq!(status.type_name, atomic, "{}", b.label());
        assert_eq!(status.size, 4);
        let a = dwarf.struct_layout(atomic).expect("atomic.Uint32");
        assert_eq!(a.size, 4);
        assert_eq!(dwarf.type_size(atomic), Some(4));

        let gobuf = dwarf.struct_layout("runtime.gobuf").expect("gobuf");
        check_layout(b, &gobuf, &["sp", "pc", "g", "bp"]);
        assert_eq!(gobuf.field("sp").unwrap().offset, 0);
        let stack = dwarf.struct_layout("runtime.stack").expect("stack");
        assert_eq!(stack.size, 16);
        assert_eq!(stack.field("hi").unwrap().offset, 8);
        assert_eq!(dwarf.type_size("runtime.g"), Some(g.size));
        assert_eq!(dwarf.type_size("uintptr"), Some(8));
        assert_eq!(dwarf.type_size("runtime.guintptr"), Some(8));
        assert_eq!(dwarf.struct_layout("uintptr"), None);
        assert_eq!(dwarf.struct_layout("no.such.Type"), None);

        assert_eq!(dwarf.constant("runtime._Gidle"), Some(0), "{}", b.label());
        assert_eq!(dwarf.constant("runtime._Grunnable"), Some(1));
        assert_eq!(dwarf.constant("runtime._Gwaiting"), Some(4));
        assert_eq!(dwarf.constant("runtime._Gscan"), Some(0x1000));
        assert_eq!(dwarf.constant("runtime.no_such_constant"), None);

        // Global variables' types: arrays, and anonymous structs spelled out.
        assert_eq!(
            dwarf.variable_type("runtime.handlingSig").as_deref(),
            Some("[65]uint32"),
            "{}",
            b.label()
        );
        assert_eq!(
            dwarf.variable_type("runtime.fwdSig").as_deref(),
            Some("[65]uintptr")
        );
        let debug = dwarf.variable_type("runtime.debug").expect("runtime.debug");
        assert!(debug.starts_with("struct {"), "{}: {debug}", b.label());
        let dl = dwarf
            .struct_layout(&debug)
            .expect("layout of runtime.debug");
        assert_eq!(dl.field("asyncpreemptoff").unwrap().size, 4);
        assert_eq!(dwarf.variable_type("runtime.no_such_variable"), None);

        per_version
            .entry(&b.version)
            .or_default()
            .push((b.variant, g, m));
    }
    // Variants of one version agree.
    for (v, layouts) in per_version {
        let (v0, g0, m0) = &layouts[0];
        for (var, g, m) in &layouts[1..] {
            assert_eq!(g, g0, "{v}: runtime.g differs between {v0:?} and {var:?}");
            assert_eq!(m, m0, "{v}: runtime.m differs between {v0:?} and {var:?}");
        }
    }
}

/// Without section headers (as `sstrip` leaves a binary), everything is found from the program
/// headers: build info in the data segment, the pclntab by its magic, the moduledata by its
/// pointer to the pclntab.
#[test]
fn no_section_headers() {
    for b in builds().iter().filter(|b| {
        matches!(
            b.variant,
            Variant::Default | Variant::Pie | Variant::Stripped
        )
    }) {
        let data = b.bytes();
        let full = parse(b, &data);
        let tab = pclntab(b, &full);
        let bare_data = without_section_headers(&data);
        let bare = parse(b, &bare_data);
        assert_eq!(bare.section(".gopclntab"), None);
        assert_eq!(bare.symbol("runtime.text"), None);
        assert_eq!(bare.build_info(), full.build_info(), "{}", b.label());
        assert_eq!(bare.is_pie(), full.is_pie());
        let bare_tab = pclntab(b, &bare);
        assert_eq!(bare_tab.addr(), tab.addr(), "{}", b.label());
        assert_eq!(bare_tab.text_start(), tab.text_start(), "{}", b.label());
        assert_eq!(bare_tab.gofunc(), tab.gofunc(), "{}", b.label());
        assert_eq!(bare_tab.len(), tab.len());
        for (f, g) in tab.funcs().zip(bare_tab.funcs()) {
            assert_eq!(tab.name(&f), bare_tab.name(&g));
            assert_eq!(tab.entry(&f), bare_tab.entry(&g));
            assert_eq!(tab.func_id(&f), bare_tab.func_id(&g));
        }
        let f = tab.func_by_name("main.useDouble").unwrap();
        for pc in tab.entry(&f)..tab.end(&f) {
            assert_eq!(tab.frames_at(pc), bare_tab.frames_at(pc), "{}", b.label());
        }
        assert!(bare.dwarf().unwrap().is_none());

        // Without build info either: no version; the moduledata layout and the FuncID table are
        // worked out from the binary itself.
        let mut anon = bare_data.clone();
        let at = anon
            .windows(14)
            .position(|w| w == b"\xff Go buildinf:")
            .expect("build info magic");
        anon[at] = 0;
        let anon_bin = parse(b, &anon);
        assert_eq!(anon_bin.build_info(), None);
        assert_eq!(anon_bin.go_version(), None);
        let anon_tab = pclntab(b, &anon_bin);
        assert_eq!(anon_tab.text_start(), tab.text_start(), "{}", b.label());
        assert_eq!(anon_tab.gofunc(), tab.gofunc(), "{}", b.label());
        for (f, g) in tab.funcs().zip(anon_tab.funcs()) {
            assert_eq!(tab.func_id(&f), anon_tab.func_id(&g), "{}", b.label());
        }
        for pc in tab.entry(&f)..tab.end(&f) {
            assert_eq!(tab.frames_at(pc), anon_tab.frames_at(pc), "{}", b.label());
        }
    }
}

/// Some linkers (lld without `--apply-dynamic-relocs`) leave the words covered by
/// `R_X86_64_RELATIVE` relocations zero in the file. Pointers then come from the relocations,
/// found through `PT_DYNAMIC` even without section headers.
#[test]
fn pie_with_zeroed_relocated_words() {
    for b in builds().iter().filter(|b| b.variant == Variant::Pie) {
        let data = b.bytes();
        let full = parse(b, &data);
        let tab = pclntab(b, &full);
        let sym = full.symbol("runtime.waitReasonStrings").unwrap();
        let first_reason = full.read_ptr(sym.addr + 16).unwrap();
        assert_ne!(first_reason, 0);

        // Zero every relocated word, in a copy without section headers.
        let relocs = rela_dyn(&data);
        assert!(
            relocs.len() > 1000,
            "{}: {} relocations",
            b.label(),
            relocs.len()
        );
        let mut zeroed = data.clone();
        let mut n = 0;
        for (off, addend) in &relocs {
            if let Some(fo) = file_offset(&full, &data, *off) {
                assert_eq!(&zeroed[fo..fo + 8], &addend.to_le_bytes(), "{}", b.label());
                zeroed[fo..fo + 8].fill(0);
                n += 1;
            }
        }
        assert!(n > 1000);
        let with_sections = parse(b, &zeroed);
        assert_eq!(with_sections.read_ptr(sym.addr + 16), Some(first_reason));
        let bare_data = without_section_headers(&zeroed);
        let bare = parse(b, &bare_data);
        let bare_tab = pclntab(b, &bare);
        assert_eq!(bare_tab.text_start(), tab.text_start(), "{}", b.label());
        assert_eq!(bare_tab.gofunc(), tab.gofunc(), "{}", b.label());
        let f = tab.func_by_name("main.useDouble").unwrap();
        for pc in tab.entry(&f)..tab.end(&f) {
            assert_eq!(tab.frames_at(pc), bare_tab.frames_at(pc), "{}", b.label());
        }
    }
}

/// `(r_offset, r_addend)` of the `R_X86_64_RELATIVE` entries of `.rela`/`.rela.dyn`, read
/// independently of the crate with the section headers.
fn rela_dyn(data: &[u8]) -> Vec<(u64, u64)> {
    let u64_at = |o: usize| u64::from_le_bytes(data[o..o + 8].try_into().unwrap());
    let u32_at = |o: usize| u32::from_le_bytes(data[o..o + 4].try_into().unwrap());
    let shoff = u64_at(0x28) as usize;
    let shnum = u16::from_le_bytes([data[0x3c], data[0x3d]]) as usize;
    let mut out = Vec::new();
    for i in 0..shnum {
        let sh = shoff + 64 * i;
        if u32_at(sh + 4) != 4 {
            continue; // SHT_RELA
        }
        let (off, size) = (u64_at(sh + 24) as usize, u64_at(sh + 32) as usize);
        for r in data[off..off + size].chunks_exact(24) {
            let info = u64::from_le_bytes(r[8..16].try_into().unwrap());
            if info & 0xffff_ffff == 8 {
                out.push((
                    u64::from_le_bytes(r[0..8].try_into().unwrap()),
                    u64::from_le_bytes(r[16..24].try_into().unwrap()),
                ));
            }
        }
    }
    out
}

/// The file offset of a link-time address, through the section holding it.
fn file_offset(bin: &GoBinary<'_>, data: &[u8], addr: u64) -> Option<usize> {
    let bytes = bin.read_static(addr, 8)?;
    Some(bytes.as_ptr() as usize - data.as_ptr() as usize)
}
