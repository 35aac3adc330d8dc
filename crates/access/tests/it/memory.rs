//! Reading memory of a live child, with both read methods.

use std::time::Duration;

use gostall_access::{LiveProcess, MemError, Memory, ReadMethod, TargetError};

use crate::util::Target;

fn check_reads(method: ReadMethod) {
    let t = Target::spawn(0);
    let p = LiveProcess::attach_with(t.pid, method).unwrap();
    assert_eq!(p.read_method(), method);
    assert_eq!(p.read_cstr(t.marker, 64).unwrap(), b"gostall-access-marker");
    let a = p.read_u64(t.counter).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let b = p.read_u64(t.counter).unwrap();
    assert!(b > a, "counter did not advance: {a} -> {b}");
    // A page of 0x5a followed by an unmapped page.
    let v = p.read_vec(t.edge, t.page as usize).unwrap();
    assert!(v.iter().all(|&x| x == 0x5a));
    let mut buf = [0u8; 16];
    let start = t.edge + t.page - 8;
    assert_eq!(
        p.read(start, &mut buf),
        Err(MemError::Unmapped {
            addr: t.edge + t.page,
            start,
            len: 16
        })
    );
    assert_eq!(
        p.read_u64(0x1000),
        Err(MemError::Unmapped {
            addr: 0x1000,
            start: 0x1000,
            len: 8
        })
    );
    assert!(matches!(
        p.read_u64(u64::MAX - 3),
        Err(MemError::BadRange { .. })
    ));
}

#[test]
fn reads_with_process_vm_readv() {
    check_reads(ReadMethod::VmReadv);
}

#[test]
fn reads_with_proc_pid_mem() {
    check_reads(ReadMethod::ProcMem);
}

#[test]
fn auto_method_settles_on_process_vm_readv() {
    let t = Target::spawn(0);
    let p = LiveProcess::attach(t.pid).unwrap();
    // attach made a test read.
    assert_eq!(p.read_method(), ReadMethod::VmReadv);
}

#[test]
fn process_exited_mid_read() {
    for method in [ReadMethod::VmReadv, ReadMethod::ProcMem] {
        let mut t = Target::spawn(1);
        let p = LiveProcess::attach_with(t.pid, method).unwrap();
        p.read_u64(t.counter).unwrap();
        // Killed but not yet reaped: a zombie, without memory. The leader turns Z as soon as
        // its own thread has exited; the memory goes only when the other threads have too.
        t.child.kill().unwrap();
        crate::util::wait_until(Duration::from_secs(5), || {
            gostall_access::procfs::stat(t.pid).is_ok_and(|s| s.state == 'Z')
                && gostall_access::procfs::threads(t.pid).is_ok_and(|ts| ts.len() == 1)
        });
        let e = p.read_u64(t.counter).unwrap_err();
        assert_eq!(
            e,
            MemError::ProcessExited {
                pid: t.pid,
                addr: t.counter,
                len: 8
            },
            "{method:?}"
        );
        assert!(e
            .to_string()
            .starts_with(&format!("process {} exited", t.pid)));
        // Reaped: gone entirely.
        t.child.wait().unwrap();
        assert!(matches!(
            p.read_u64(t.counter),
            Err(MemError::ProcessExited { .. })
        ));
        use gostall_access::Threads;
        let e = p.threads().unwrap_err();
        assert!(matches!(e, TargetError::ProcessExited { pid } if pid == t.pid));
        assert_eq!(e.to_string(), format!("process {} exited", t.pid));
    }
}

#[test]
fn exe_maps_and_load_bias() {
    let t = Target::spawn(0);
    let p = LiveProcess::attach(t.pid).unwrap();
    let exe = p.read_exe().unwrap();
    assert_eq!(exe, std::fs::read(crate::util::fixture()).unwrap());
    assert_eq!(
        p.exe_path(),
        std::path::PathBuf::from(format!("/proc/{}/exe", t.pid))
    );
    let maps = p.maps().unwrap();
    let fixture = crate::util::fixture().canonicalize().unwrap();
    let m = maps.iter().find(|m| m.contains(t.counter)).unwrap();
    assert_eq!(m.path.as_deref(), Some(fixture.as_path()));
    // First PT_LOAD of the ELF file.
    let u16_at = |o: usize| u16::from_le_bytes(exe[o..o + 2].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(exe[o..o + 8].try_into().unwrap());
    let (phoff, phentsize, phnum) = (u64_at(0x20) as usize, u16_at(0x36), u16_at(0x38));
    let (vaddr, offset) = (0..phnum)
        .map(|i| phoff + i * phentsize)
        .find(|&ph| u32::from_le_bytes(exe[ph..ph + 4].try_into().unwrap()) == 1)
        .map(|ph| (u64_at(ph + 16), u64_at(ph + 8)))
        .unwrap();
    let bias = p.load_bias(vaddr, offset).unwrap();
    let first = maps
        .iter()
        .find(|m| m.path.as_deref() == Some(fixture.as_path()))
        .unwrap();
    assert_eq!(bias, first.start - (vaddr & !0xfff));
    assert_eq!(p.nspid(), None);
}

#[test]
fn pid_namespace_is_recorded() {
    // The fixture as pid 1 of a new PID namespace; we see it under its host pid.
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--pid", "--fork", "--kill-child"])
        .arg(crate::util::fixture())
        .arg("0");
    if std::process::Command::new("unshare")
        .args(["--pid", "--fork", "true"])
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        eprintln!("skipping: cannot create a PID namespace here");
        return;
    }
    let t = Target::spawn_cmd(cmd, 0);
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", t.pid)).unwrap();
    let inner: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
    let p = LiveProcess::attach(inner).unwrap();
    assert_eq!(p.nspid(), Some(vec![inner, 1]));
    assert_eq!(p.read_cstr(t.marker, 64).unwrap(), b"gostall-access-marker");
}

#[test]
fn falls_back_to_proc_mem_when_process_vm_readv_is_refused() {
    let t = Target::spawn(0);
    let mut h = crate::util::helper(&format!("attach-seccomp:{}", t.pid))
        .env("MARKER", t.marker.to_string())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(h.stdout.take().unwrap());
    let forced = crate::util::helper_line(&mut out);
    assert!(
        forced.starts_with("vmreadv error: cannot read the memory of process"),
        "{forced}"
    );
    assert!(forced.contains("seccomp"), "{forced}");
    assert_eq!(
        crate::util::helper_line(&mut out),
        "method=ProcMem marker=gostall-access-marker"
    );
    assert!(h.wait().unwrap().success());
}

/// Vectored reads: every readable range is read, an unreadable range in the middle (and one that
/// runs off the end of a mapping) fails alone, and the ranges after it are still read.
#[test]
fn batched_reads_isolate_unreadable_ranges() {
    use gostall_access::ReadReq;
    for method in [ReadMethod::VmReadv, ReadMethod::ProcMem] {
        let t = Target::spawn(0);
        let p = LiveProcess::attach_with(t.pid, method).unwrap();
        let reqs = [
            ReadReq {
                addr: t.marker,
                len: 21,
            },
            ReadReq {
                addr: 0x1000,
                len: 8,
            },
            ReadReq {
                addr: t.edge,
                len: 16,
            },
            ReadReq {
                addr: t.edge + t.page - 8,
                len: 16,
            },
            ReadReq {
                addr: t.edge + 64,
                len: 8,
            },
        ];
        let total: usize = reqs.iter().map(|r| r.len).sum();
        let mut buf = vec![0u8; total];
        let mut ok = Vec::new();
        p.read_batch(&reqs, &mut buf, &mut ok);
        assert_eq!(ok, [true, false, true, false, true], "{method:?}");
        assert_eq!(&buf[..21], b"gostall-access-marker");
        assert!(buf[29..45].iter().all(|&b| b == 0x5a));
        assert!(buf[61..69].iter().all(|&b| b == 0x5a));
        // More ranges than one system call carries.
        let many: Vec<ReadReq> = (0..3000)
            .map(|i| ReadReq {
                addr: t.edge + (i % 512) * 8,
                len: 8,
            })
            .collect();
        let mut buf = vec![0u8; many.len() * 8];
        p.read_batch(&many, &mut buf, &mut ok);
        assert!(ok.iter().all(|&o| o) && ok.len() == 3000);
        assert!(buf.iter().all(|&b| b == 0x5a));
    }
}
