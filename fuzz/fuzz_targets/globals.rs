//! Finding the runtime's globals in a stripped binary (`extract::Program::new` on a `-s -w`
//! build: the Go version from the runtime's string, layouts from the recorded tables, each
//! global's candidates from the code that uses it, each candidate checked in memory) against
//! hostile memory: the fuzz input is mapped over the binary's data and bss and at the heap's
//! usual address, so every check reads attacker-chosen words and pointers.
//!
//! The binary: `GOSTALL_FUZZ_STRIPPED` (scripts/fuzz-globals.sh builds one and runs this).
#![no_main]

use gostall_binfmt::GoBinary;
use gostall_access::FakeMemory;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn binary() -> &'static [u8] {
    static BIN: OnceLock<Vec<u8>> = OnceLock::new();
    BIN.get_or_init(|| {
        let path = std::env::var("GOSTALL_FUZZ_STRIPPED")
            .expect("set GOSTALL_FUZZ_STRIPPED to a Go binary built with -ldflags='-s -w' (scripts/fuzz-globals.sh)");
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    })
}

fuzz_target!(|data: &[u8]| {
    static BIN: OnceLock<Option<GoBinary<'static>>> = OnceLock::new();
    let Some(bin) = BIN.get_or_init(|| GoBinary::parse(binary()).ok()) else {
        return;
    };
    if data.len() < 16 {
        return;
    }
    // The input tiles every data section (so each candidate global reads input words) and is
    // mapped at the heap's usual addresses (so pointers in it can lead somewhere).
    let mut mem = FakeMemory::new();
    for name in [".noptrdata", ".data", ".bss", ".noptrbss"] {
        if let Some((addr, bytes)) = bin.section(name) {
            let len = bytes.len().clamp(4096, 4 << 20);
            let tiled: Vec<u8> = data.iter().copied().cycle().take(len).collect();
            mem.add(addr, tiled);
        }
    }
    for base in [0xc0_0000_0000u64, 0xc0_0000_8000, 0x7f00_0000_0000] {
        mem.add(base, data.to_vec());
    }
    let _ = gostall_extract::Program::new(bin, 0, &mem);
});
