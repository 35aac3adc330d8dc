//! Parser throughput on a synthetic SIGQUIT dump: 20k goroutines in the Go 1.27 crash-header form
//! (`goroutine N gp=… m=… mp=… [status]:`, `fp= sp= pc=` frame suffixes), a few hundred distinct
//! stacks of 12–22 frames, generated in memory so the benchmark needs no Go toolchain.
//!
//! `cargo bench -p gostall-ingest --bench dump`. The end-to-end figure on a real 200k-goroutine dump
//! comes from `scripts/bench-dump.sh`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::fmt::Write as _;
use std::hint::black_box;

const GOROOT: &str = "/root/.cache/gostall/go/1.27.3/go/src";
const MAIN: &str = "/work/app/cmd/server/main.go";

/// A small deterministic generator (xorshift), so every run parses the same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Runtime frames, innermost first: function, file under GOROOT, line.
type RuntimeFrames = &'static [(&'static str, &'static str, u32)];

/// How goroutines park: status and runtime frames.
const PARKS: &[(&str, RuntimeFrames)] = &[
    (
        "chan receive",
        &[
            ("runtime.gopark", "runtime/proc.go", 474),
            ("runtime.chanrecv", "runtime/chan.go", 667),
            ("runtime.chanrecv1", "runtime/chan.go", 509),
        ],
    ),
    (
        "chan send",
        &[
            ("runtime.gopark", "runtime/proc.go", 474),
            ("runtime.chansend", "runtime/chan.go", 283),
            ("runtime.chansend1", "runtime/chan.go", 161),
        ],
    ),
    (
        "select",
        &[
            ("runtime.gopark", "runtime/proc.go", 474),
            ("runtime.selectgo", "runtime/select.go", 351),
        ],
    ),
    (
        "sync.Mutex.Lock",
        &[
            ("runtime.gopark", "runtime/proc.go", 474),
            ("runtime.goparkunlock", "runtime/proc.go", 480),
            ("runtime.semacquire1", "runtime/sema.go", 198),
            (
                "internal/sync.runtime_SemacquireMutex",
                "runtime/sema.go",
                95,
            ),
            (
                "internal/sync.(*Mutex).lockSlow",
                "internal/sync/mutex.go",
                149,
            ),
            ("internal/sync.(*Mutex).Lock", "internal/sync/mutex.go", 70),
            ("sync.(*Mutex).Lock", "sync/mutex.go", 46),
        ],
    ),
    (
        "sync.WaitGroup.Wait",
        &[
            ("runtime.gopark", "runtime/proc.go", 474),
            ("runtime.goparkunlock", "runtime/proc.go", 480),
            ("runtime.semacquire1", "runtime/sema.go", 198),
            ("sync.runtime_SemacquireWaitGroup", "runtime/sema.go", 114),
            ("sync.(*WaitGroup).Wait", "sync/waitgroup.go", 206),
        ],
    ),
    (
        "sleep",
        &[
            ("runtime.gopark", "runtime/proc.go", 474),
            ("time.Sleep", "runtime/time.go", 363),
        ],
    ),
    (
        "IO wait",
        &[
            ("runtime.gopark", "runtime/proc.go", 474),
            ("runtime.netpollblock", "runtime/netpoll.go", 575),
            ("internal/poll.runtime_pollWait", "runtime/netpoll.go", 351),
            (
                "internal/poll.(*pollDesc).wait",
                "internal/poll/fd_poll_runtime.go",
                84,
            ),
            (
                "internal/poll.(*pollDesc).waitRead",
                "internal/poll/fd_poll_runtime.go",
                89,
            ),
            ("internal/poll.(*FD).Read", "internal/poll/fd_unix.go", 170),
            ("net.(*netFD).Read", "net/fd_posix.go", 68),
            ("net.(*conn).Read", "net/net.go", 196),
        ],
    ),
];

const LAYERS: &[&str] = &[
    "main.handleRequest",
    "main.decodeMessage",
    "main.lookupCache",
    "main.callBackend",
    "main.(*Server).applyMiddleware",
    "main.processBatch",
    "main.retryWithBackoff",
];

const LEAVES: &[&str] = &[
    "main.waitForJob",
    "main.publishResult",
    "main.awaitEither",
    "main.updateAccount",
    "main.waitForShards",
    "main.backoffSleep",
    "main.readUpstream",
];

/// One frame: the function line with arguments and the file line with the crash-form suffix.
fn frame(out: &mut String, rng: &mut Rng, func: &str, file: &str, line: u32) {
    let args = 1 + rng.below(4);
    out.push_str(func);
    out.push('(');
    for a in 0..args {
        if a > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "0x{:x}?", rng.below(1 << 40));
    }
    out.push_str(")\n");
    let sp = 0xc0_0000_0000_u64 + rng.below(1 << 32);
    let _ = writeln!(
        out,
        "\t{file}:{line} +0x{:x} fp=0x{:x} sp=0x{sp:x} pc=0x{:x}",
        rng.below(0x400),
        sp + 0x30,
        0x40_0000 + rng.below(0x10_0000)
    );
}

/// A dump of `n` goroutines, about 2.4 KB each like a real Go 1.27 SIGQUIT dump.
fn synth_dump(n: u64) -> Vec<u8> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = String::with_capacity(n as usize * 2600);
    out.push_str("SIGQUIT: quit\nPC=0x48b721 m=0 sigcode=0\n\n");
    for id in 1..=n {
        // A few hundred distinct stacks: park kind × leaf × path variant.
        let kind = (id % PARKS.len() as u64) as usize;
        let variant = (id / PARKS.len() as u64) % 40;
        let (status, park) = PARKS[kind];
        let minutes = if id % 3 == 0 {
            format!(", {} minutes", 1 + id % 20)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "goroutine {id} gp=0x{:x} m=nil [{status}{minutes}]:",
            0xc0_0000_0000_u64 + rng.below(1 << 32)
        );
        for &(f, file, line) in park {
            frame(&mut out, &mut rng, f, &format!("{GOROOT}/{file}"), line);
        }
        let leaf = LEAVES[kind % LEAVES.len()];
        frame(&mut out, &mut rng, leaf, MAIN, 40 + kind as u32);
        let depth = 6 + variant % 5;
        let mut path = variant;
        for d in 0..depth {
            let layer = (path % LAYERS.len() as u64) as usize;
            path = path / LAYERS.len() as u64 + d * 3 + 1;
            frame(
                &mut out,
                &mut rng,
                LAYERS[layer],
                MAIN,
                100 + 10 * layer as u32,
            );
        }
        frame(&mut out, &mut rng, "main.worker", MAIN, 170);
        frame(&mut out, &mut rng, "main.spawn.gowrap1", MAIN, 200);
        frame(
            &mut out,
            &mut rng,
            "runtime.goexit",
            &format!("{GOROOT}/runtime/asm_amd64.s"),
            1264,
        );
        let _ = writeln!(
            out,
            "created by main.spawn in goroutine {}\n\t{MAIN}:200 +0x25\n",
            1 + variant % 3
        );
    }
    out.into_bytes()
}

fn bench(c: &mut Criterion) {
    let dump = synth_dump(20_000);
    let mut group = c.benchmark_group("dump");
    group.throughput(Throughput::Bytes(dump.len() as u64));
    group.sample_size(20);
    group.bench_with_input(
        BenchmarkId::new("parse", "20k goroutines"),
        &dump,
        |b, dump| {
            b.iter(|| {
                let mut snap = gostall_ingest::new_snapshot();
                gostall_ingest::ingest_reader("bench", dump.as_slice(), &mut snap).unwrap();
                black_box(snap.goroutines.len())
            })
        },
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
