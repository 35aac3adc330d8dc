//! Prints what gostall-binfmt sees in a Go executable: `cargo run -p gostall-binfmt --example
//! inspect -- PATH [PC...]`.
use gostall_binfmt::GoBinary;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: inspect PATH [PC...]")?;
    let data = std::fs::read(&path)?;
    let t0 = std::time::Instant::now();
    let bin = GoBinary::parse(&data)?;
    println!("pie={} version={:?}", bin.is_pie(), bin.go_version());
    if let Some(bi) = bin.build_info() {
        println!("path={} settings={:?}", bi.path, bi.settings);
    }
    let tab = bin.pclntab()?;
    println!(
        "pclntab at {:#x}: {} funcs, text {:#x}, gofunc {:?} ({:?})",
        tab.addr(),
        tab.len(),
        tab.text_start(),
        tab.gofunc().map(|g| format!("{g:#x}")),
        t0.elapsed()
    );
    for arg in args {
        if arg == "bench" {
            // Symbolise 4M PCs spread over every function, reusing one buffer.
            let pcs: Vec<u64> = tab
                .funcs()
                .flat_map(|f| {
                    let (e, n) = (tab.entry(&f), tab.end(&f) - tab.entry(&f));
                    [e, e + n / 3, e + n / 2, e + n - 1]
                })
                .collect();
            let mut buf = Vec::new();
            let (mut frames, mut lines) = (0usize, 0u64);
            let t = std::time::Instant::now();
            for pc in pcs.iter().cycle().take(4_000_000) {
                buf.clear();
                tab.frames_at_into(*pc, &mut buf);
                frames += buf.len();
                lines += buf.iter().map(|f| u64::from(f.line)).sum::<u64>();
            }
            println!(
                "4M PCs -> {frames} frames in {:?} (checksum {lines})",
                t.elapsed()
            );
            let t = std::time::Instant::now();
            let mut found = 0usize;
            for pc in pcs.iter().cycle().take(4_000_000) {
                found += usize::from(tab.find_func(*pc).is_some());
            }
            println!("4M find_func: {found} in {:?}", t.elapsed());
            continue;
        }
        if let Some(prefix) = arg.strip_prefix("func=") {
            for f in tab.funcs().filter(|f| tab.name(f).starts_with(prefix)) {
                println!(
                    "  {:#x} {} id={:?} flag={:#x} frame={:?}",
                    tab.entry(&f),
                    tab.name(&f),
                    tab.func_id(&f),
                    tab.func_flag(&f),
                    tab.max_sp_delta(&f)
                );
            }
            continue;
        }
        let pc = arg;
        let pc = u64::from_str_radix(pc.trim_start_matches("0x"), 16)?;
        for f in tab.frames_at(pc) {
            println!(
                "  {pc:#x} {} {}:{} inlined={}",
                f.function, f.file, f.line, f.inlined
            );
        }
    }
    let t1 = std::time::Instant::now();
    match bin.dwarf()? {
        None => println!("no DWARF"),
        Some(d) => {
            println!("DWARF loaded in {:?}: {d:?}", t1.elapsed());
            let types = std::env::var("INSPECT_TYPES")
                .unwrap_or_else(|_| "runtime.g,runtime.m".to_string());
            for name in types.split(',') {
                if let Some(l) = d.struct_layout(name) {
                    println!("{name}: size {}", l.size);
                    for f in &l.fields {
                        println!("  {:>4} {:>4} {} {}", f.offset, f.size, f.name, f.type_name);
                    }
                }
            }
            let mut c: Vec<_> = d
                .constants()
                .filter(|(n, _)| {
                    n.starts_with(
                        &std::env::var("INSPECT_CONSTS")
                            .unwrap_or_else(|_| "runtime._G".to_string()),
                    )
                })
                .collect();
            c.sort();
            println!("constants: {c:?}");
        }
    }
    Ok(())
}
