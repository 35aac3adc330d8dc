//! Pausing: the counter stops while paused and advances after; every way out resumes the target.

use std::io::BufReader;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use gostall_access::{LiveProcess, Memory, Pause, PauseEnd, TargetError};

use crate::util::{helper, helper_line, running_untraced, thread_states, wait_until, Target};

/// Freezes and resumes `t` once, checking the counter; returns (freeze, resume) times.
fn freeze_resume(t: &Target, p: &LiveProcess, threads: usize) -> (Duration, Duration) {
    let before = p.read_u64(t.counter).unwrap();
    let start = Instant::now();
    let pause = Pause::freeze(t.pid, Duration::from_secs(10)).unwrap();
    let freeze = start.elapsed();
    assert_eq!(pause.stopped_threads().len(), threads);
    assert!(pause.unstopped().is_empty());
    assert!(thread_states(t.pid).iter().all(|&s| s == 't'));
    let a = p.read_u64(t.counter).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let b = p.read_u64(t.counter).unwrap();
    assert_eq!(a, b, "counter moved while paused");
    assert!(a >= before);
    let r = pause.regs(t.pid).unwrap();
    assert!(r.rip != 0 && r.rsp != 0);
    let start = Instant::now();
    let paused_for = pause.resume();
    let resume = start.elapsed();
    assert!(paused_for >= Duration::from_millis(20));
    assert!(running_untraced(t.pid));
    wait_until(Duration::from_secs(5), || {
        p.read_u64(t.counter).unwrap() > b
    });
    (freeze, resume)
}

#[test]
fn freeze_and_resume_10_threads_quickly() {
    let t = Target::spawn(8);
    let p = LiveProcess::attach(t.pid).unwrap();
    // The best of a few rounds, so a busy test machine does not fail the timing.
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let (f, r) = freeze_resume(&t, &p, 10);
        eprintln!("10 threads: freeze {f:?}, resume {r:?}");
        best = best.min(f + r);
    }
    assert!(
        best < Duration::from_millis(50),
        "freeze + resume took {best:?}"
    );
}

#[test]
fn freeze_and_resume_200_threads() {
    let t = Target::spawn(198);
    let p = LiveProcess::attach(t.pid).unwrap();
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let (f, r) = freeze_resume(&t, &p, 200);
        eprintln!("200 threads: freeze {f:?}, resume {r:?}");
        best = best.min(f + r);
    }
    assert!(
        best < Duration::from_millis(500),
        "freeze + resume took {best:?}"
    );
}

#[test]
fn drop_resumes() {
    let t = Target::spawn(2);
    let p = LiveProcess::attach(t.pid).unwrap();
    {
        let pause = p.pause(Duration::from_secs(10)).unwrap();
        assert_eq!(pause.pid(), t.pid);
        assert!(!running_untraced(t.pid));
    }
    assert!(running_untraced(t.pid));
    let a = p.read_u64(t.counter).unwrap();
    wait_until(Duration::from_secs(5), || {
        p.read_u64(t.counter).unwrap() > a
    });
}

#[test]
fn cap_resumes_without_the_owner() {
    let t = Target::spawn(2);
    let p = LiveProcess::attach(t.pid).unwrap();
    let cap = Duration::from_millis(100);
    let pause = Pause::freeze(t.pid, cap).unwrap();
    assert_eq!(pause.ended(), None);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(pause.ended(), Some(PauseEnd::CapExceeded { cap }));
    assert!(running_untraced(t.pid));
    let a = p.read_u64(t.counter).unwrap();
    wait_until(Duration::from_secs(5), || {
        p.read_u64(t.counter).unwrap() > a
    });
    let e = pause.regs(t.pid).unwrap_err();
    assert!(matches!(
        e,
        TargetError::PauseEnded {
            end: PauseEnd::CapExceeded { .. },
            ..
        }
    ));
    assert!(e.to_string().contains("exceeded its cap"), "{e}");
    let d = pause.resume();
    assert!(
        d >= cap && d < Duration::from_millis(250),
        "paused for {d:?}"
    );
}

#[test]
fn threads_created_during_the_pause_are_caught() {
    // A target whose threads keep starting and ending: every freeze must still stop everything.
    let mut cmd = std::process::Command::new(crate::util::fixture());
    cmd.args(["4", "1"]);
    let t = Target::spawn_cmd(cmd, 0);
    wait_until(Duration::from_secs(5), || {
        crate::util::task_count(t.pid) >= 7
    });
    for _ in 0..50 {
        let pause = Pause::freeze(t.pid, Duration::from_secs(5)).unwrap();
        let states = thread_states(t.pid);
        // A thread that had already exited may linger as a zombie until it is reaped.
        assert!(
            states.iter().all(|&s| matches!(s, 't' | 'Z' | 'X')),
            "{states:?}"
        );
        assert!(
            states.iter().filter(|&&s| s == 't').count() >= 7,
            "{states:?}"
        );
        assert!(pause.stopped_threads().len() >= 7);
        pause.resume();
    }
    assert!(running_untraced(t.pid));
}

#[test]
fn freeze_errors() {
    assert!(matches!(
        Pause::freeze(std::process::id() as i32, Duration::from_secs(1)),
        Err(TargetError::Invalid { .. })
    ));
    assert!(matches!(
        Pause::freeze(i32::MAX, Duration::from_secs(1)),
        Err(TargetError::ProcessExited { .. })
    ));
    // Already traced: a second pause of the same process.
    let t = Target::spawn(0);
    let first = Pause::freeze(t.pid, Duration::from_secs(5)).unwrap();
    let e = Pause::freeze(t.pid, Duration::from_secs(5)).unwrap_err();
    assert!(matches!(e, TargetError::AlreadyTraced { .. }), "{e}");
    assert!(e.to_string().contains("already traced by process"), "{e}");
    // The failed second attempt left the first pause intact.
    assert!(thread_states(t.pid).iter().all(|&s| s == 't'));
    first.resume();
    assert!(running_untraced(t.pid));
}

#[test]
fn sigkill_of_the_tracer_leaves_the_target_running() {
    let t = Target::spawn(3);
    let p = LiveProcess::attach(t.pid).unwrap();
    let mut h = helper(&format!("pause:{}", t.pid)).spawn().unwrap();
    let mut out = BufReader::new(h.stdout.take().unwrap());
    assert_eq!(helper_line(&mut out), "paused 5 threads");
    assert!(thread_states(t.pid).iter().all(|&s| s == 't'));
    let a = p.read_u64(t.counter).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(p.read_u64(t.counter).unwrap(), a);
    h.kill().unwrap(); // SIGKILL
    let st = h.wait().unwrap();
    assert_eq!(st.signal(), Some(9));
    wait_until(Duration::from_secs(5), || running_untraced(t.pid));
    wait_until(Duration::from_secs(5), || {
        p.read_u64(t.counter).unwrap() > a
    });
}

#[test]
fn sigterm_resumes_then_dies_by_the_signal() {
    let t = Target::spawn(3);
    let p = LiveProcess::attach(t.pid).unwrap();
    let mut h = helper(&format!("pause:{}", t.pid)).spawn().unwrap();
    let mut out = BufReader::new(h.stdout.take().unwrap());
    assert_eq!(helper_line(&mut out), "paused 5 threads");
    assert!(!running_untraced(t.pid));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(h.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let st = h.wait().unwrap();
    assert_eq!(
        st.signal(),
        Some(15),
        "the helper ends by SIGTERM, as without gostall's handler"
    );
    assert!(running_untraced(t.pid));
    let a = p.read_u64(t.counter).unwrap();
    wait_until(Duration::from_secs(5), || {
        p.read_u64(t.counter).unwrap() > a
    });
}

#[test]
fn sigterm_resumes_before_the_programs_own_handler_runs() {
    let t = Target::spawn(1);
    let mut h = helper(&format!("pause-own-handler:{}", t.pid))
        .spawn()
        .unwrap();
    let mut out = BufReader::new(h.stdout.take().unwrap());
    assert_eq!(helper_line(&mut out), "paused");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(h.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(
        helper_line(&mut out),
        "resumed=true ended=Some(Signal { signal: 15 })"
    );
    assert!(helper_line(&mut out).starts_with("paused for "));
    assert!(h.wait().unwrap().success());
    assert!(running_untraced(t.pid));
}

#[test]
fn signals_sent_while_pausing_are_not_lost() {
    // Real-time signals queue one by one, so a lost one shows in the count. Some arrive while a
    // thread is being seized (a signal-delivery-stop: the signal must be passed on when detaching),
    // the rest while it is stopped (they stay pending).
    let t = Target::spawn(4);
    let p = LiveProcess::attach(t.pid).unwrap();
    let pid = t.pid;
    let sender = std::thread::spawn(move || {
        let sig = nix::libc::SIGRTMIN() + 1;
        let mut sent = 0u64;
        for _ in 0..2000 {
            // SAFETY: kill(2) on our child.
            if unsafe { nix::libc::kill(pid, sig) } == 0 {
                sent += 1;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        sent
    });
    let mut pauses = 0;
    while !sender.is_finished() {
        Pause::freeze(pid, Duration::from_secs(5)).unwrap().resume();
        pauses += 1;
    }
    let sent = sender.join().unwrap();
    assert!(sent > 1000);
    wait_until(Duration::from_secs(10), || {
        p.read_u64(t.rtcount).unwrap() == sent
    });
    eprintln!("{sent} signals over {pauses} pauses, none lost");
    assert!(running_untraced(pid));
}

#[test]
fn an_error_after_seizing_resumes_everything() {
    // A cap too short to stop 200 threads: the freeze fails after seizing (StopTimeout) or the
    // watchdog ends the pause at once. Either way nothing may stay stopped or traced.
    let t = Target::spawn(198);
    let (mut errors, mut capped) = (0, 0);
    for _ in 0..20 {
        match Pause::freeze(t.pid, Duration::from_nanos(1)) {
            Err(TargetError::StopTimeout { .. }) => errors += 1,
            Err(e) => panic!("{e}"),
            Ok(p) => {
                wait_until(Duration::from_secs(5), || p.ended().is_some());
                capped += 1;
                p.resume();
            }
        }
        assert!(running_untraced(t.pid));
    }
    eprintln!("stop timeouts: {errors}, capped: {capped}");
}

#[test]
fn a_thread_in_uninterruptible_sleep_is_not_waited_for() {
    // The "vforker" thread waits in state D for its vfork child, which never execs: it cannot stop.
    let mut cmd = std::process::Command::new(crate::util::fixture());
    cmd.args(["2", "0", "1"]);
    let t = Target::spawn_cmd(cmd, 5);
    let children = format!("/proc/{}/task/{}/children", t.pid, t.vforker);
    let child: i32 = std::fs::read_to_string(&children)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    struct Kill(i32);
    impl Drop for Kill {
        fn drop(&mut self) {
            // SAFETY: kill(2) on the vfork child we created.
            unsafe { nix::libc::kill(self.0, nix::libc::SIGKILL) };
        }
    }
    let _kill = Kill(child);
    wait_until(Duration::from_secs(5), || {
        gostall_access::procfs::thread(t.pid, t.vforker)
            .unwrap()
            .is_some_and(|th| th.state == 'D')
    });
    let p = LiveProcess::attach(t.pid).unwrap();
    let start = Instant::now();
    let pause = Pause::freeze(t.pid, Duration::from_secs(5)).unwrap();
    let took = start.elapsed();
    assert_eq!(pause.unstopped(), &[t.vforker]);
    assert_eq!(pause.stopped_threads().len(), 4);
    assert!(took < Duration::from_millis(500), "freeze took {took:?}");
    assert!(matches!(
        pause.regs(t.vforker),
        Err(TargetError::NotStopped { tid, .. }) if tid == t.vforker
    ));
    pause.regs(t.pid).unwrap();
    let a = p.read_u64(t.counter).unwrap();
    std::thread::sleep(Duration::from_millis(10));
    assert_eq!(p.read_u64(t.counter).unwrap(), a);
    pause.resume();
    // The unstopped thread is released by the kernel when the tracer thread exits.
    wait_until(Duration::from_secs(5), || running_untraced(t.pid));
    wait_until(Duration::from_secs(5), || {
        p.read_u64(t.counter).unwrap() > a
    });
    // Once the vfork child is gone, the thread leaves its wait and runs on, untraced.
    drop(_kill);
    wait_until(Duration::from_secs(5), || {
        gostall_access::procfs::thread(t.pid, t.vforker)
            .unwrap()
            .is_some_and(|th| th.state == 'S' && th.tracer_pid == 0)
    });
}
