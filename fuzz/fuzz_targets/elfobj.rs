//! gostall-binfmt's `ElfObject` (any mapped object native unwinding loads) on arbitrary bytes:
//! parsing, load bias, unwind sections, symbol lookup and DWARF line lookup.
#![no_main]

use gostall_binfmt::ElfObject;
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let Ok(obj) = ElfObject::parse(Arc::from(data)) else {
        return;
    };
    let _ = (obj.loads().len(), obj.unwind_sections(), obj.symbols_from(), obj.has_dwarf());
    let _ = obj.bias_for_mapping(0x7f00_0000_0000, 0);
    if let Some(r) = obj.extent() {
        for a in [r.start, r.start.wrapping_add(r.end.wrapping_sub(r.start) / 2), r.end] {
            let _ = (obj.is_code(a), obj.function_at(a), obj.data_at(a), obj.location(a));
        }
    }
});
