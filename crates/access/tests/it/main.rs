//! Integration tests on real processes: a C fixture (`tests/fixtures/target.c`, compiled with `cc`)
//! and helper processes (this binary re-executed in `helper_main`).

mod access;
mod fds;
mod memory;
mod pause;
mod threads;
mod util;

use std::io::Write;
use std::time::Duration;

use gostall_access::{LiveProcess, Memory, Pause, ReadMethod};

/// Not a test: the entry point of helper processes, selected by `GOSTALL_TARGET_HELPER=MODE:PID`.
/// Prints `HELPER:` lines on stdout.
#[test]
#[ignore = "helper process entry point, run by other tests"]
fn helper_main() {
    let Ok(spec) = std::env::var("GOSTALL_TARGET_HELPER") else {
        return;
    };
    let (mode, pid) = spec.split_once(':').unwrap();
    let pid: i32 = pid.parse().unwrap();
    let say = |s: &str| {
        let mut o = std::io::stdout().lock();
        writeln!(o, "\nHELPER:{s}").unwrap();
        o.flush().unwrap();
    };
    match mode {
        // Report what attaching and pausing say, and our capabilities.
        "attach" => {
            let st = gostall_access::procfs::status(std::process::id() as i32).unwrap();
            say(&format!("uid={} capeff={:x}", st.uid[0], st.cap_eff));
            match LiveProcess::attach(pid) {
                Ok(_) => say("attach ok"),
                Err(e) => say(&format!(
                    "attach error: {}",
                    e.to_string().replace('\n', "\\n")
                )),
            }
            match Pause::freeze(pid, Duration::from_secs(1)) {
                Ok(p) => {
                    p.resume();
                    say("freeze ok");
                }
                Err(e) => say(&format!(
                    "freeze error: {}",
                    e.to_string().replace('\n', "\\n")
                )),
            }
        }
        // Pause the target and wait to be killed.
        "pause" => {
            let p = Pause::freeze(pid, Duration::from_secs(60)).unwrap();
            say(&format!("paused {} threads", p.stopped_threads().len()));
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        // Install our own SIGTERM handler, pause, and once SIGTERM has arrived report whether the
        // target was resumed before our handler ran.
        "pause-own-handler" => {
            use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
            use std::sync::atomic::{AtomicBool, Ordering};
            static GOT: AtomicBool = AtomicBool::new(false);
            extern "C" fn on_term(_: i32) {
                GOT.store(true, Ordering::SeqCst);
            }
            let act = SigAction::new(
                SigHandler::Handler(on_term),
                SaFlags::empty(),
                SigSet::empty(),
            );
            // SAFETY: the handler only stores to an atomic.
            unsafe { sigaction(Signal::SIGTERM, &act) }.unwrap();
            let p = Pause::freeze(pid, Duration::from_secs(60)).unwrap();
            say("paused");
            while !GOT.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            let resumed = util::running_untraced(pid);
            say(&format!("resumed={resumed} ended={:?}", p.ended()));
            let d = p.resume();
            say(&format!("paused for {d:?}"));
        }
        // Deny process_vm_readv with EPERM (as a container's seccomp profile does), then attach.
        "attach-seccomp" => {
            deny_process_vm_readv();
            match LiveProcess::attach_with(pid, ReadMethod::VmReadv) {
                Ok(_) => say("vmreadv ok"),
                Err(e) => say(&format!(
                    "vmreadv error: {}",
                    e.to_string().replace('\n', "\\n")
                )),
            }
            let p = LiveProcess::attach(pid).unwrap();
            let marker: u64 = std::env::var("MARKER").unwrap().parse().unwrap();
            let s = p.read_cstr(marker, 64).unwrap();
            say(&format!(
                "method={:?} marker={}",
                p.read_method(),
                String::from_utf8_lossy(&s)
            ));
        }
        other => panic!("unknown helper mode {other}"),
    }
}

/// Installs a seccomp filter on the calling thread that fails `process_vm_readv` with `EPERM`.
fn deny_process_vm_readv() {
    use nix::libc;
    // Classic BPF: load the syscall number, compare, return ERRNO(EPERM) or ALLOW.
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    const RET_ERRNO: u32 = 0x0005_0000;
    const RET_ALLOW: u32 = 0x7fff_0000;
    let filter = [
        libc::sock_filter {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0,
        },
        libc::sock_filter {
            code: JEQ_K,
            jt: 0,
            jf: 1,
            k: libc::SYS_process_vm_readv as u32,
        },
        libc::sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: RET_ERRNO | libc::EPERM as u32,
        },
        libc::sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: RET_ALLOW,
        },
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prctl with a valid filter program that outlives the call.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog
            ),
            0
        );
    }
}
