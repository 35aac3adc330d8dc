//! Hostile input: truncated, random and corrupted executables yield errors or partial answers,
//! never a panic (the fuzz target `fuzz/fuzz_targets/binfmt.rs` does the same at scale).

mod common;

use common::{builds, without_section_headers, Variant};
use gostall_binfmt::{BinError, GoBinary, Pclntab};

/// Asks `data` every question the API offers, ignoring the answers. `dwarf` is costly (it
/// decompresses), so callers choose.
fn exercise(data: &[u8], dwarf: bool) {
    let Ok(bin) = GoBinary::parse(data) else {
        return;
    };
    let _ = (bin.is_pie(), bin.build_info(), bin.go_version());
    let _ = (
        bin.symbol("main.main"),
        bin.symbol("runtime.firstmoduledata"),
    );
    for name in [".text", ".gopclntab", ".go.buildinfo", ".debug_info"] {
        if let Some((addr, bytes)) = bin.section(name) {
            let _ = bin.read_static(addr, bytes.len().min(64));
            let _ = bin.read_ptr(addr);
        }
    }
    let _ = bin.read_static(u64::MAX - 3, 8);
    let _ = bin.read_ptr(u64::MAX);
    if let Ok(tab) = bin.pclntab() {
        exercise_pclntab(&tab);
    }
    if dwarf {
        if let Ok(Some(d)) = bin.dwarf() {
            for name in ["runtime.g", "runtime.m", "runtime.gobuf", "uintptr"] {
                let _ = d.struct_layout(name);
                let _ = d.type_size(name);
            }
            let _ = d.constant("runtime._Gwaiting");
        }
    }
}

fn exercise_pclntab(tab: &Pclntab<'_>) {
    let _ = tab.func_by_name("runtime.goexit");
    for f in tab.funcs().take(4000) {
        let (entry, end) = (tab.entry(&f), tab.end(&f));
        let _ = (
            tab.name(&f),
            tab.func_id(&f),
            tab.func_flag(&f),
            tab.args(&f),
        );
        let _ = (
            tab.max_sp_delta(&f),
            tab.start_line(&f),
            tab.deferreturn(&f),
        );
        for pc in [entry, entry.wrapping_add(end.wrapping_sub(entry) / 2), end] {
            let _ = (tab.sp_delta(&f, pc), tab.file_line(&f, pc));
            let _ = tab.frames_at(pc);
        }
    }
    for pc in [0, 1, tab.text_start(), u64::MAX] {
        let _ = tab.find_func(pc);
        let _ = tab.frames_at(pc);
    }
}

/// A small deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn sample() -> Vec<u8> {
    let b = builds()
        .iter()
        .find(|b| b.variant == Variant::Default)
        .expect("a default build");
    b.bytes()
}

#[test]
fn not_elf_and_not_go() {
    assert!(matches!(GoBinary::parse(b""), Err(BinError::NotElf(_))));
    assert!(matches!(
        GoBinary::parse(b"#!/bin/sh\necho hello\n"),
        Err(BinError::NotElf(_))
    ));
    let mut hdr = sample()[..64].to_vec();
    hdr[4] = 1; // ELFCLASS32
    assert!(matches!(
        GoBinary::parse(&hdr),
        Err(BinError::UnsupportedElf(_))
    ));
    // A non-Go ELF executable of this machine.
    let sh = std::fs::read("/bin/sh").expect("/bin/sh");
    assert_eq!(GoBinary::parse(&sh).err(), Some(BinError::NotGo));
    let msg = BinError::NotGo.to_string();
    assert!(msg.contains("not a Go binary"), "{msg}");
}

#[test]
fn truncated_files() {
    let data = sample();
    let mut cuts: Vec<usize> = (0..4096).step_by(7).collect();
    cuts.extend((1..200).map(|i| data.len() * i / 200));
    for n in cuts {
        exercise(&data[..n], n % 10 == 0);
    }
}

#[test]
fn random_bytes() {
    let data = sample();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for i in 0..300 {
        let len = rng.below(1 << 16);
        let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Half of them get a valid ELF header in front, to reach the deeper parsers.
        if i % 2 == 0 && buf.len() >= 64 {
            buf[..64].copy_from_slice(&data[..64]);
        }
        exercise(&buf, true);
    }
}

#[test]
fn corrupted_binaries() {
    let data = sample();
    let bin = GoBinary::parse(&data).unwrap();
    let tab = bin.pclntab().unwrap();
    // Offsets of the regions that matter: ELF header and tables, the pclntab, build info.
    let file_off = |addr: u64| -> usize {
        let (sec_addr, bytes) = bin
            .section(".gopclntab")
            .or(bin.section(".data.rel.ro.gopclntab"))
            .unwrap();
        let off = bytes.as_ptr() as usize - data.as_ptr() as usize;
        off + (addr - sec_addr) as usize
    };
    let pcln = file_off(tab.addr());
    let phoff = u64::from_le_bytes(data[0x20..0x28].try_into().unwrap()) as usize;
    let shoff = u64::from_le_bytes(data[0x28..0x30].try_into().unwrap()) as usize;
    let regions = [
        (0, 64),
        (phoff, 56 * 12),
        (shoff, data.len() - shoff),
        (pcln, 4096),
        (pcln, 1 << 20),
    ];
    let mut rng = Rng(42);
    for i in 0..400 {
        let mut d = data.clone();
        let (start, len) = regions[i % regions.len()];
        for _ in 0..1 + rng.below(8) {
            let at = (start + rng.below(len)).min(d.len() - 1);
            d[at] = rng.next() as u8;
        }
        exercise(&d, i % 20 == 0);
    }
    // The same without section headers: every fallback path.
    let bare = without_section_headers(&data);
    for i in 0..100 {
        let mut d = bare.clone();
        for _ in 0..1 + rng.below(8) {
            let at = (pcln + rng.below(1 << 20)).min(d.len() - 1);
            d[at] = rng.next() as u8;
        }
        exercise(&d, i == 0);
    }
}

#[test]
fn pclntab_with_bad_offsets() {
    let data = sample();
    let bin = GoBinary::parse(&data).unwrap();
    let tab = bin.pclntab().unwrap();
    let (sec_addr, bytes) = bin.section(".gopclntab").unwrap();
    assert_eq!(sec_addr, tab.addr());
    // Each table offset of the header (funcname, cu, file, pc, pcln) set to hostile values.
    for field in 0..5 {
        for v in [0u64, 8, 71, bytes.len() as u64, u64::MAX, 1 << 40] {
            let mut d = bytes.to_vec();
            d[32 + 8 * field..40 + 8 * field].copy_from_slice(&v.to_le_bytes());
            match Pclntab::parse(&d, sec_addr, Some(tab.text_start()), None) {
                Ok(t) => exercise_pclntab(&t),
                Err(e) => assert!(matches!(e, BinError::BadPclntab { .. }), "{e}"),
            }
        }
    }
    // nfunc larger than the table.
    let mut d = bytes.to_vec();
    d[8..16].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(matches!(
        Pclntab::parse(&d, sec_addr, None, None),
        Err(BinError::BadPclntab { .. })
    ));
    // Functab entries pointing outside the table.
    let mut d = bytes.to_vec();
    let pcln_off = u64::from_le_bytes(d[64..72].try_into().unwrap()) as usize;
    for i in 0..64 {
        let at = pcln_off + 8 * i + 4;
        d[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    }
    let t = Pclntab::parse(&d, sec_addr, Some(tab.text_start()), None).unwrap();
    assert_eq!(t.func(0), None);
    exercise_pclntab(&t);
    // A standalone parse of the intact bytes agrees with the binary's.
    let t = Pclntab::parse(bytes, sec_addr, Some(tab.text_start()), bin.go_version()).unwrap();
    let f = tab.func_by_name("main.main").unwrap();
    assert_eq!(t.func_by_name("main.main"), Some(f));
    assert_eq!(
        t.file_line(&f, tab.entry(&f)),
        tab.file_line(&f, tab.entry(&f))
    );
}

/// Asks an [`ElfObject`](gostall_binfmt::ElfObject) every question, ignoring the answers.
fn exercise_object(data: &[u8], dwarf: bool) {
    let Ok(obj) = gostall_binfmt::ElfObject::parse(data.into()) else {
        return;
    };
    let _ = (obj.extent(), obj.symbols_from(), obj.unwind_sections());
    for off in [0u64, 0x1000, 0x2000, u64::MAX] {
        let _ = obj.bias_for_mapping(0x7f00_0000_0000, off);
    }
    for a in [0u64, 0x401000, 0x4a1aa0, 0xa6af00, u64::MAX] {
        let _ = (obj.function_at(a), obj.data_at(a), obj.is_code(a));
        if dwarf {
            let _ = obj.location(a);
        }
    }
}

#[test]
fn mapped_objects_survive_garbage() {
    let data = sample();
    let mut rng = Rng(7);
    // Truncated, randomly corrupted in the headers and section table, and libc likewise.
    let shoff = u64::from_le_bytes(data[0x28..0x30].try_into().unwrap()) as usize;
    for i in 0..200 {
        let mut d = data.clone();
        if i % 2 == 0 {
            d.truncate(rng.below(d.len()));
        }
        for _ in 0..1 + rng.below(8) {
            let region = if i % 3 == 0 {
                (0, 64 + 56 * 12)
            } else {
                (shoff, d.len().saturating_sub(shoff).max(1))
            };
            if d.is_empty() {
                break;
            }
            let at = (region.0 + rng.below(region.1)).min(d.len() - 1);
            d[at] = rng.next() as u8;
        }
        exercise_object(&d, i % 25 == 0);
    }
    for path in ["/lib/x86_64-linux-gnu/libc.so.6", "/bin/sh"] {
        if let Ok(lib) = std::fs::read(path) {
            exercise_object(&lib, true);
            for n in (1..50).map(|i| lib.len() * i / 50) {
                exercise_object(&lib[..n], false);
            }
        }
    }
}
