//! File descriptors and system calls of the C fixture, described.

use std::time::Duration;

use gostall_access::fds::FdKind;
use gostall_access::{describe_fds, syscalls, LiveProcess, Threads};

use crate::util::{wait_until, Target};

#[test]
fn blocked_reader_decodes_to_read_on_pipe() {
    let t = Target::spawn(1);
    let p = LiveProcess::attach(t.pid).unwrap();
    let mut sc = None;
    wait_until(Duration::from_secs(5), || {
        sc = p
            .threads()
            .unwrap()
            .into_iter()
            .find(|th| th.tid == t.reader)
            .and_then(|th| th.syscall)
            .filter(|s| s.nr == 0);
        sc.is_some()
    });
    let sc = sc.unwrap();
    let fds = describe_fds(t.pid);
    let fd = i32::try_from(t.pipe_fd).unwrap();
    let desc = fds.get(fd).expect("the pipe fd is open");
    let FdKind::Pipe { inode } = desc.kind else {
        panic!("fd {fd} is not a pipe: {desc:?}");
    };
    assert!(inode > 0);
    // stdout of the fixture is a pipe too; stdin is /dev/null.
    assert!(matches!(&fds.get(0).unwrap().kind, FdKind::File { path } if path == "/dev/null"));

    let d = syscalls::decode(sc.nr, &sc.args, &fds);
    assert_eq!(d.name, "read");
    assert_eq!(
        d.text,
        format!("read(fd {fd} → pipe:[{inode}], {:#x}, 7)", t.readbuf)
    );
    eprintln!("reader: {d}");
    for desc in fds.iter() {
        eprintln!("  {desc} [{}]", desc.flag_names());
    }
}

#[test]
fn sockets_of_a_process_are_described() {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixListener;

    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut s, _) = l.accept().unwrap();
    s.set_nonblocking(true).unwrap();
    let _ = s.read(&mut [0u8; 1]);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("fds-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&dir);
    let u = UnixListener::bind(&dir).unwrap();

    let fds = describe_fds(std::process::id() as i32);
    let text = |fd: i32| fds.get(fd).map(ToString::to_string).unwrap_or_default();
    assert_eq!(
        text(c.as_raw_fd()),
        format!(
            "fd {} → tcp {} → {} (ESTABLISHED)",
            c.as_raw_fd(),
            c.local_addr().unwrap(),
            c.peer_addr().unwrap()
        )
    );
    assert_eq!(
        text(l.as_raw_fd()),
        format!(
            "fd {} → tcp {} (LISTEN)",
            l.as_raw_fd(),
            l.local_addr().unwrap()
        )
    );
    assert!(fds.get(s.as_raw_fd()).unwrap().nonblocking());
    assert_eq!(
        text(u.as_raw_fd()),
        format!("fd {} → unix {} (LISTEN)", u.as_raw_fd(), dir.display())
    );
    let _ = std::fs::remove_file(&dir);
}

#[test]
fn vanished_process_gives_empty_table() {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    child.wait().unwrap();
    assert!(describe_fds(pid).is_empty());
}
