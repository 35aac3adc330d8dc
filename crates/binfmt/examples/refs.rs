//! Prints the static data a function's code refers to (RIP-relative operands), named by the
//! binary's symbol table when it has one: `refs BINARY FUNCTION…`. For working out where the
//! runtime's globals can be found in stripped binaries.

use gostall_binfmt::{code, GoBinary};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: refs BINARY FUNCTION…")?;
    let data = std::fs::read(&path)?;
    let bin = GoBinary::parse(&data)?;
    let pcln = bin.pclntab()?;
    let syms = bin.data_symbols();
    let name = |a: u64| {
        let i = syms.partition_point(|s| s.0 <= a);
        i.checked_sub(1)
            .map(|i| syms[i])
            .filter(|s| a < s.0 + s.1.max(1))
            .map(|s| format!("{}+{}", s.2, a - s.0))
            .unwrap_or_default()
    };
    for f in args {
        // `?SYMBOL`: every function whose code refers to the data symbol.
        if let Some(sym) = f.strip_prefix('?') {
            let Some(s) = bin.symbol(sym) else {
                println!("{sym}: no such symbol");
                continue;
            };
            for func in pcln.funcs() {
                let name = pcln.name(&func);
                if let Some((entry, bytes)) = bin.function_code(&pcln, name) {
                    let hits = code::rip_refs(bytes, entry)
                        .iter()
                        .filter(|r| r.target >= s.addr && r.target < s.addr + s.size.max(1))
                        .count();
                    if hits > 0 {
                        println!("{sym} used by {name} ({hits}x)");
                    }
                }
            }
            continue;
        }
        let Some((entry, bytes)) = bin.function_code(&pcln, &f) else {
            println!("{f}: not found");
            continue;
        };
        println!("{f} @ {entry:#x} ({} bytes)", bytes.len());
        for r in code::rip_refs(bytes, entry) {
            println!(
                "  {:#x} {:#x} {}{} {}",
                r.at,
                r.target,
                if r.lea { "lea" } else { "mem" },
                r.size,
                name(r.target)
            );
        }
    }
    Ok(())
}
