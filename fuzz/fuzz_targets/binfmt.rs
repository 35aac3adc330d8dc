//! gostall-binfmt on arbitrary bytes: ELF parsing, build info, symbols, static data, the pclntab
//! (located by every fallback) with every per-function query, and DWARF layouts.
#![no_main]

use gostall_binfmt::GoBinary;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(bin) = GoBinary::parse(data) else {
        return;
    };
    let _ = (bin.is_pie(), bin.build_info(), bin.go_version());
    let _ = bin.symbol("runtime.firstmoduledata");
    if let Some((addr, bytes)) = bin.section(".gopclntab") {
        let _ = bin.read_static(addr, bytes.len().min(64));
        let _ = bin.read_ptr(addr);
    }
    if let Ok(tab) = bin.pclntab() {
        let _ = tab.func_by_name("runtime.goexit");
        for f in tab.funcs().take(1000) {
            let (entry, end) = (tab.entry(&f), tab.end(&f));
            let _ = (tab.name(&f), tab.func_id(&f), tab.func_flag(&f), tab.max_sp_delta(&f));
            for pc in [entry, entry.wrapping_add(end.wrapping_sub(entry) / 2), end] {
                let _ = (tab.sp_delta(&f, pc), tab.file_line(&f, pc), tab.frames_at(pc));
            }
        }
    }
    if let Ok(Some(d)) = bin.dwarf() {
        let _ = (d.struct_layout("runtime.g"), d.type_size("runtime.m"));
        let _ = d.constant("runtime._Gwaiting");
    }
});
