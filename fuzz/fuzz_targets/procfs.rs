//! gostall-access's /proc parsers on arbitrary bytes: smaps (bounded), smaps_rollup, status, stat,
//! syscall, maps and the kernel stack.
#![no_main]

use gostall_access::{procfs, smaps};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = smaps::parse_smaps(data, 64);
    let _ = smaps::parse_rollup(data);
    let _ = procfs::parse_status(data);
    let _ = procfs::parse_stat(data);
    let _ = procfs::parse_syscall(data);
    let _ = procfs::parse_maps(data);
    let _ = procfs::parse_kernel_stack(data);
    let _ = procfs::parse_wchan(data);
});
