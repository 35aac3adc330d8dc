//! Thread listings of a multi-threaded child.

use std::time::Duration;

use gostall_access::{LiveProcess, Pause, TargetError, Threads};

use crate::util::{wait_until, Target};

#[test]
fn lists_threads_with_blocked_syscall() {
    let t = Target::spawn(3);
    let p = LiveProcess::attach(t.pid).unwrap();
    let mut threads = Vec::new();
    wait_until(Duration::from_secs(5), || {
        threads = p.threads().unwrap();
        // Threads name themselves after they start.
        threads
            .iter()
            .filter(|th| th.name.starts_with("idle-"))
            .count()
            == 3
            && threads
                .iter()
                .any(|th| th.tid == t.reader && th.syscall.is_some_and(|s| s.nr == 0))
    });
    assert_eq!(threads.len(), 5);
    let mut names: Vec<&str> = threads.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["cfixture", "idle-0", "idle-1", "idle-2", "reader"]);
    let reader = threads.iter().find(|th| th.tid == t.reader).unwrap();
    assert_eq!(reader.name, "reader");
    assert_eq!(reader.state, 'S');
    let sc = reader.syscall.unwrap();
    assert_eq!(sc.nr, 0, "read(2)");
    assert_eq!(&sc.args[..3], &[t.pipe_fd, t.readbuf, 7]);
    assert!(sc.sp != 0 && sc.pc != 0);
    eprintln!(
        "reader: wchan={:?} kernel_stack={:?} ctxt={}/{}",
        reader.wchan,
        reader.kernel_stack,
        reader.voluntary_ctxt_switches,
        reader.nonvoluntary_ctxt_switches
    );
    let main = threads.iter().find(|th| th.tid == t.pid).unwrap();
    assert!(main.utime_ticks + main.stime_ticks < 1_000_000);
    assert!(matches!(main.state, 'R' | 'S'));
    assert!(threads.iter().all(|th| th.tracer_pid == 0));
}

#[test]
fn registers_need_a_pause() {
    let t = Target::spawn(1);
    let p = LiveProcess::attach(t.pid).unwrap();
    assert!(matches!(
        p.regs(t.reader),
        Err(TargetError::NotPaused { tid, .. }) if tid == t.reader
    ));
    wait_until(Duration::from_secs(5), || {
        p.threads()
            .unwrap()
            .iter()
            .any(|th| th.tid == t.reader && th.syscall.is_some_and(|s| s.nr == 0))
    });
    let pause = Pause::freeze(t.pid, Duration::from_secs(5)).unwrap();
    // Through the LiveProcess (it finds the active pause) and through the Pause.
    let r = p.regs(t.reader).unwrap();
    assert_eq!(r, pause.regs(t.reader).unwrap());
    assert_eq!(r.orig_rax, 0, "stopped inside read(2)");
    let m = p.maps().unwrap();
    assert!(
        m.iter().any(|m| m.contains(r.rsp)),
        "rsp {:#x} not mapped",
        r.rsp
    );
    assert!(m.iter().any(|m| m.contains(r.rip) && m.perms.exec));
    assert!(matches!(
        pause.regs(1),
        Err(TargetError::ThreadExited { tid: 1, .. })
    ));
    pause.resume();
    assert!(matches!(
        p.regs(t.reader),
        Err(TargetError::NotPaused { .. })
    ));
    // The interrupted read(2) was restarted: the reader blocks in it again.
    wait_until(Duration::from_secs(5), || {
        p.threads().unwrap().iter().any(|th| {
            th.tid == t.reader && th.state == 'S' && th.syscall.is_some_and(|s| s.nr == 0)
        })
    });
}

#[test]
fn listing_tolerates_threads_exiting_mid_read() {
    // Threads start and end all the time; listings must never fail nor show half-read threads.
    let mut cmd = std::process::Command::new(crate::util::fixture());
    cmd.args(["2", "1"]);
    let t = Target::spawn_cmd(cmd, 0);
    wait_until(Duration::from_secs(5), || {
        crate::util::task_count(t.pid) >= 5
    });
    let p = LiveProcess::attach(t.pid).unwrap();
    for _ in 0..300 {
        let threads = p.threads().unwrap();
        assert!(threads.len() >= 5, "{threads:?}");
        assert!(threads.iter().any(|th| th.name == "reader"));
    }
}
