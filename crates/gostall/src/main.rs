//! The `gostall` command: sources → snapshot → analysis → report.
//!
//! Exit codes: 0 success; 1 when `--fail-on` is met; 2 on an error (bad input, unreadable file).

mod demo;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand, ValueEnum};
use gostall_extract::live::LiveError;
use gostall_model::{Severity, Snapshot};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "gostall",
    version,
    about = "Tells you, in seconds, why a Go program is stuck or slow in its concurrency",
    long_about = "Tells you, in seconds, why a Go program is stuck or slow in its concurrency.\n\n\
        gostall reads what Go already emits — SIGQUIT/panic goroutine dumps, \
        /debug/pprof/goroutine?debug=1|2, and pprof goroutine/mutex/block/threadcreate profiles — \
        and reports findings: the pathology, the goroutines involved, the root-cause line in your \
        code, the evidence and the fix."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Diagnose a Go program: a live process (--pid), a core file, or its goroutine dumps and
    /// pprof profiles.
    ///
    /// Several inputs from the same process (a dump plus its mutex and threadcreate profiles)
    /// combine into one diagnosis; a core file is diagnosed alone. Inputs are recognised by
    /// content; `-` reads standard input.
    Diagnose {
        /// A core file (a crash, gcore, gostall capture), or goroutine dumps and pprof profiles
        /// (gzipped or not); `-` for standard input.
        #[arg(
            value_name = "INPUT",
            required_unless_present = "pid",
            conflicts_with = "pid"
        )]
        inputs: Vec<PathBuf>,
        #[command(flatten)]
        live: LiveArgs,
        #[command(flatten)]
        core: CoreArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// List every goroutine of a live Go process (--pid) or a core file with its full stack,
    /// grouped by identical stacks — like a debug=2 dump, but complete, and without running
    /// anything in the target.
    Dump {
        /// A core file to list instead of a live process.
        #[arg(
            value_name = "CORE",
            required_unless_present = "pid",
            conflicts_with = "pid"
        )]
        core_file: Option<PathBuf>,
        #[command(flatten)]
        live: LiveArgs,
        #[command(flatten)]
        core: CoreArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Capture a live Go process into a core file now, to diagnose later on any machine
    /// (`gostall diagnose FILE`), so the process can be restarted at once. The process is
    /// stopped only while its memory is copied; gdb reads the file too.
    Capture {
        /// The process to capture.
        #[arg(long, value_name = "PID", value_parser = clap::value_parser!(i32).range(1..))]
        pid: i32,
        /// The core file to write.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: PathBuf,
        /// Longest the process may stay stopped while its memory is copied, in milliseconds; a
        /// copy that would take longer is abandoned (the process resumes, no file is left).
        #[arg(long, default_value_t = 10_000, value_name = "MS")]
        pause_cap: u64,
    },
    /// Diagnose small real artifacts recorded from gostall's scenario corpus (needs nothing else).
    Demo {
        #[command(flatten)]
        out: OutputArgs,
    },
}

#[derive(clap::Args, Clone)]
struct LiveArgs {
    /// Read this live process's memory (no agent, no restart; nothing is written to it).
    #[arg(long, value_name = "PID", value_parser = clap::value_parser!(i32).range(1..))]
    pid: Option<i32>,
    /// Freeze every thread of the target while reading (a consistent view, and stacks of running
    /// goroutines); the target is always resumed, at the latest after --pause-cap.
    #[arg(long, requires = "pid")]
    pause: bool,
    /// Longest the target may stay frozen with --pause, in milliseconds.
    #[arg(long, default_value_t = 500, value_name = "MS", requires = "pause")]
    pause_cap: u64,
    /// Interval between the two scheduler samples used to detect starvation, in milliseconds
    /// (0: one sample).
    #[arg(long, default_value_t = 100, value_name = "MS", requires = "pid")]
    sample_interval: u64,
    /// Never pause the target on its own. By default gostall pauses it for at most 50 ms when a
    /// goroutine holds a processor through the whole sample, to read that goroutine's stack.
    #[arg(long, requires = "pid")]
    no_auto_pause: bool,
    /// Take N samples of the target's resident memory, --interval apart, to measure how it grows
    /// (Go's and the rest: C allocations); the goroutines are read once, right after the last.
    /// Ctrl-C ends the sampling early and reports what was measured.
    #[arg(long, default_value_t = 1, value_name = "N", requires = "pid",
          value_parser = clap::value_parser!(u32).range(1..=gostall_extract::live::MAX_MEMORY_SAMPLES as i64))]
    samples: u32,
    /// Time between memory samples: `500ms`, `2s`, `1m` (100ms to 10m).
    #[arg(long, default_value = "1s", value_name = "D", requires = "pid", value_parser = parse_interval)]
    interval: std::time::Duration,
    /// Skip the reachability proof (reading and marking the heap to tell leaked goroutines from
    /// ones that may still be woken), of a live process or a core.
    #[arg(long)]
    no_proof: bool,
}

#[derive(clap::Args, Clone)]
struct CoreArgs {
    /// The executable that ran, for a core whose recorded path does not hold it (another machine,
    /// a rebuilt or moved binary). It is checked against the copy of its first page in the core.
    #[arg(long, value_name = "EXE", conflicts_with = "pid")]
    binary: Option<PathBuf>,
    /// A directory to look for the core's mapped files in (shared libraries, the executable):
    /// as a system root (DIR/usr/lib/...) and as a flat directory. Repeatable.
    #[arg(long, value_name = "DIR", conflicts_with = "pid")]
    search_path: Vec<PathBuf>,
}

impl CoreArgs {
    fn read(&self, core: &std::path::Path, no_proof: bool) -> Result<Snapshot> {
        let opts = gostall_extract::core::CoreReadOptions {
            binary: self.binary.clone(),
            search: self.search_path.clone(),
            no_proof,
        };
        Ok(gostall_extract::core::snapshot_core(core, &opts)?)
    }
}

/// Whether `path` is an ELF core file (by its first bytes; standard input never is).
fn is_core_file(path: &std::path::Path) -> Result<bool> {
    use std::io::Read;
    if path.as_os_str() == "-" {
        return Ok(false);
    }
    let mut head = [0u8; 64];
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let n = f
        .read(&mut head)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let head = &head[..n];
    if head.starts_with(b"\x7fELF") && !gostall_extract::core::is_core(head) {
        anyhow::bail!(
            "{} is an executable or library, not a core or a dump: to read a running program use --pid PID; to read a core taken from it, pass the core and --binary {}",
            path.display(),
            path.display()
        );
    }
    Ok(gostall_extract::core::is_core(head))
}

/// `500ms`, `2s`, `1.5s`, `1m` → a duration between 100 ms and 10 min.
fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 500ms, 2s or 1m"))?;
    let ms = match unit {
        "ms" => v,
        "s" => v * 1e3,
        "m" | "min" => v * 60e3,
        _ => return Err(format!("unknown unit {unit:?} in {s:?}: use ms, s or m")),
    };
    if !(100.0..=600_000.0).contains(&ms) {
        return Err(format!("{s} is out of range: the interval is 100ms to 10m"));
    }
    Ok(std::time::Duration::from_micros((ms * 1e3) as u64))
}

/// Set by SIGINT while memory samples are taken.
static STOP_SAMPLING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn stop_sampling(_: nix::libc::c_int) {
    STOP_SAMPLING.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// The SIGINT disposition in place before memory sampling, while sampling runs.
static SIGINT_BEFORE: std::sync::Mutex<Option<nix::sys::signal::SigAction>> =
    std::sync::Mutex::new(None);

/// While memory samples are taken, the first Ctrl-C ends the sampling instead of gostall (the
/// snapshot is still taken and reported; a second Ctrl-C, with the default action back, ends
/// gostall).
fn catch_sigint_while_sampling() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let act = SigAction::new(
        SigHandler::Handler(stop_sampling),
        SaFlags::SA_RESETHAND | SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    if let Ok(old) = unsafe { sigaction(Signal::SIGINT, &act) } {
        *SIGINT_BEFORE.lock().unwrap_or_else(|e| e.into_inner()) = Some(old);
    }
}

/// Puts back the SIGINT disposition of before the sampling. Called as soon as sampling ends, before
/// gostall reads goroutines (a `--pause` installs handlers of its own, which must not change
/// under it).
fn release_sigint() {
    if let Some(old) = SIGINT_BEFORE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    {
        // SAFETY: restores a disposition previously returned by sigaction.
        let _ = unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGINT, &old) };
    }
}

/// Progress of memory sampling (on a terminal only); `(0, n)` means sampling is over.
fn sampling_progress(i: u32, n: u32) {
    let tty = n > 1 && std::io::stderr().is_terminal();
    if i == 0 {
        release_sigint();
        if tty {
            eprint!("\r\x1b[K");
        }
    } else if tty {
        eprint!("\r\x1b[Kgostall: memory sample {i}/{n} (Ctrl-C to stop early)");
    }
}

impl LiveArgs {
    fn read(&self, pid: i32) -> Result<Snapshot> {
        let opts = gostall_extract::live::LiveOptions {
            pause: self.pause,
            pause_cap: std::time::Duration::from_millis(self.pause_cap),
            sample_interval: std::time::Duration::from_millis(self.sample_interval),
            auto_pause_cap: if self.no_auto_pause {
                std::time::Duration::ZERO
            } else {
                std::time::Duration::from_millis(50)
            },
            memory_samples: self.samples,
            memory_interval: self.interval,
            stop: Some(&STOP_SAMPLING),
            progress: Some(sampling_progress),
            proof: !self.no_proof,
        };
        if self.samples > 1 {
            catch_sigint_while_sampling();
        }
        let snap = gostall_extract::live::snapshot_pid(pid, &opts);
        // Sampling may have ended on an error before saying so.
        release_sigint();
        Ok(snap?)
    }
}

#[derive(clap::Args, Clone)]
struct OutputArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Exit with status 1 when a finding of this severity or worse is present.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    fail_on: Option<FailOn>,
    /// When to use colours (honours NO_COLOR).
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
    /// Leave the goroutine groups out of the text report (findings only).
    #[arg(long)]
    findings_only: bool,
    /// Leave the per-goroutine list out of the JSON report (groups still list every id).
    #[arg(long)]
    no_goroutines: bool,
    /// Report goroutines only, no findings (`gostall dump`).
    #[arg(skip)]
    dump_only: bool,
}

#[derive(Copy, Clone, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Copy, Clone, ValueEnum)]
enum FailOn {
    Warning,
    Critical,
}

#[derive(Copy, Clone, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "gostall: error: {}", render_error(&e));
            ExitCode::from(2)
        }
    }
}

/// The error as the user reads it: a few errors get a message of their own, the rest are their
/// chain of causes joined with ": ", each cause only when it adds something (errors that already
/// embed their source's text in their own would otherwise repeat it).
fn render_error(e: &anyhow::Error) -> String {
    if let Some(m) = e.downcast_ref::<LiveError>().and_then(explain_live) {
        return m;
    }
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || msg.contains(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg
}

/// Messages for live-read errors whose own text does not say what to do.
fn explain_live(e: &LiveError) -> Option<String> {
    use gostall_access::{MemError, TargetError};
    use gostall_binfmt::BinError;
    use gostall_extract::ExtractError;
    match e {
        LiveError::Binary {
            pid,
            exe,
            source: BinError::NotGo | BinError::NotElf(_) | BinError::NoPclntab,
        } => Some(format!(
            "process {pid} ({exe}) is not a Go program: its executable has no Go build \
             information, build ID or pclntab, and gostall reads only programs built by the Go \
             toolchain; check the pid (`ps -o pid,args -p {pid}`)"
        )),
        LiveError::Binary {
            pid,
            exe,
            source: BinError::UnsupportedPclntab { .. },
        } => Some(format!(
            "process {pid} ({exe}) was built with a Go older than 1.20, which gostall cannot read \
             live: it reads Go 1.21 through 1.27; rebuild with a supported Go, or diagnose a \
             goroutine dump instead (`kill -QUIT {pid}` with GOTRACEBACK=all, or \
             /debug/pprof/goroutine?debug=2)"
        )),
        // The advice names a generic PID; the pid is known here.
        LiveError::Program { pid, .. } => Some(e.to_string().replace("PID`", &format!("{pid}`"))),
        // The process went away after it was opened.
        LiveError::Target(
            TargetError::ProcessExited { pid }
            | TargetError::Mem(MemError::ProcessExited { pid, .. }),
        )
        | LiveError::Extract {
            pid,
            source:
                ExtractError::Read {
                    source: MemError::ProcessExited { .. },
                    ..
                },
        }
        | LiveError::Exited(pid) => {
            Some(gostall_access::AccessError::Exited { pid: *pid }.to_string())
        }
        _ => None,
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Diagnose {
            inputs,
            live,
            core,
            out,
        } => {
            if let Some(pid) = live.pid {
                let snap = live.read(pid)?;
                return emit(&snap, &out);
            }
            let mut cores = Vec::new();
            for input in &inputs {
                if is_core_file(input)? {
                    cores.push(input);
                }
            }
            if let Some(c) = cores.first() {
                if inputs.len() > 1 {
                    anyhow::bail!(
                        "{} is a core file: a core is diagnosed alone (it holds every goroutine already)",
                        c.display()
                    );
                }
                let snap = core.read(c, live.no_proof)?;
                return emit(&snap, &out);
            }
            if core.binary.is_some() || !core.search_path.is_empty() {
                anyhow::bail!(
                    "--binary and --search-path go with a core file, and no input is one"
                );
            }
            let mut snap = gostall_ingest::new_snapshot();
            for input in &inputs {
                gostall_ingest::ingest_path(input, &mut snap)
                    .with_context(|| format!("reading {}", input.display()))?;
            }
            emit(&snap, &out)
        }
        Command::Dump {
            core_file,
            live,
            core,
            out,
        } => {
            let out = OutputArgs {
                dump_only: true,
                ..out
            };
            if let Some(c) = core_file {
                if !is_core_file(&c)? {
                    anyhow::bail!(
                        "{} is not a core file (to read a goroutine dump, use gostall diagnose FILE)",
                        c.display()
                    );
                }
                // A listing needs no proof.
                let snap = core.read(&c, true)?;
                return emit(&snap, &out);
            }
            let pid = live.pid.context(
                "gostall dump needs --pid PID or a core file (to read a dump file, use gostall diagnose FILE)",
            )?;
            // A listing needs no second scheduler sample.
            let live = LiveArgs {
                sample_interval: 0,
                ..live
            };
            let snap = live.read(pid)?;
            emit(&snap, &out)
        }
        Command::Capture {
            pid,
            output,
            pause_cap,
        } => {
            let opts = gostall_extract::core::CaptureOptions {
                pause_cap: std::time::Duration::from_millis(pause_cap),
            };
            let c = gostall_extract::core::capture(pid, &output, &opts)?;
            let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
            let s = &c.stats;
            println!(
                "wrote {}: {:.1} MiB on disk ({:.1} MiB apparent: untouched and zero pages are holes), {:.1} MiB of memory copied, {} threads, {} mappings",
                output.display(),
                mib(s.written_bytes),
                mib(s.file_bytes),
                mib(s.copied_bytes),
                s.threads,
                s.mappings
            );
            println!(
                "process {pid} was stopped {:.1} ms (the live facts took {} ms before, without stopping it)",
                s.paused.as_secs_f64() * 1000.0,
                c.facts_read.as_millis()
            );
            if !s.unreadable.is_empty() {
                println!(
                    "{} range(s) could not be read and are zeros in the core",
                    s.unreadable.len()
                );
            }
            println!(
                "diagnose it with: gostall diagnose {} (on another machine add --binary EXE)",
                output.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { out } => demo::run(&out),
    }
}

/// Analyses and reports one snapshot; returns the exit code `--fail-on` asks for.
fn emit(snap: &Snapshot, out: &OutputArgs) -> Result<ExitCode> {
    let t = std::time::Instant::now();
    let mut analysis = gostall_analyze::analyze(snap);
    let t_analysis = t.elapsed();
    if out.dump_only {
        analysis.findings.clear();
    }
    let report = gostall_report::Report {
        snap,
        analysis: &analysis,
    };
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    let res = match out.format {
        Format::Json => gostall_report::json::write(&report, !out.no_goroutines, &mut lock),
        Format::Text => {
            let color = match out.color {
                Color::Always => true,
                Color::Never => false,
                Color::Auto => {
                    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                        && std::io::stdout().is_terminal()
                }
            };
            let opts = gostall_report::text::Options {
                color,
                groups: !out.findings_only,
                ..Default::default()
            };
            gostall_report::text::write(&report, &opts, &mut lock)
        }
    };
    if gostall_extract::timing() {
        eprintln!(
            "analysis {t_analysis:?}, output {:?}",
            t.elapsed() - t_analysis
        );
    }
    match res {
        Ok(()) => {}
        // A closed pipe (`gostall ... | head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(e).context("writing the report"),
    }
    let threshold = match out.fail_on {
        None => return Ok(ExitCode::SUCCESS),
        Some(FailOn::Warning) => Severity::Warning,
        Some(FailOn::Critical) => Severity::Critical,
    };
    let hit = analysis.findings.iter().any(|f| f.severity >= threshold);
    Ok(if hit {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
