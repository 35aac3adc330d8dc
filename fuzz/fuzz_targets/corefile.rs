//! gostall-access's core-file reader on arbitrary bytes: the ELF header, program headers and
//! notes, then what the core readers ask of it — mappings, threads and registers, memory at the
//! edges and middle of every mapping, the vDSO's bytes, the signal frames of every thread (a
//! crash's interrupted contexts), and the executable named by the core. Seeds:
//! `scripts/fuzz-core-seeds.py`.
#![no_main]

use gostall_access::{CoreFile, CoreOptions, Memory, Objects, Threads};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(mut core) =
        CoreFile::from_bytes(Path::new("fuzz.core"), data.to_vec(), CoreOptions::default())
    else {
        return;
    };
    let _ = (core.process().pid, core.signal(), core.writer(), core.notes().len());
    let _ = (core.capture_record().map(<[u8]>::len), core.exe_path());
    let _ = (core.auxv(9), core.auxv(33));
    let maps = core.mappings().unwrap_or_default();
    let mut buf = [0u8; 64];
    for m in maps.iter().take(64) {
        let len = m.end.wrapping_sub(m.start);
        for a in [
            m.start,
            m.start.wrapping_add(len / 2),
            m.end.wrapping_sub(1),
            m.end.wrapping_sub(8),
        ] {
            let _ = core.read(a, &mut buf);
            let _ = core.read(a, &mut buf[..1]);
            let _ = core.read_u64(a);
        }
        if m.path.as_deref() == Some(Path::new("[vdso]")) {
            let _ = core.object_bytes(m);
        }
    }
    let _ = core.read(u64::MAX - 4, &mut buf[..8]);
    for t in core.threads().unwrap_or_default().iter().take(64) {
        if let Ok(r) = core.regs(t.tid) {
            let _ = core.read(r.rsp, &mut buf);
        }
    }
    let _ = core.take_interrupted_contexts();
    let _ = core.threads();
    let _ = core.read_exe();
    let _ = core.file_report();
});
