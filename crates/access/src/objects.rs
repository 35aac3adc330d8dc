//! The files mapped into a target (executable, shared libraries, the vDSO) and their bytes, for
//! native unwinding and symbols.
//!
//! A live process's objects are opened through `/proc/PID/map_files/START-END` (the very file that
//! is mapped, even when it was deleted or replaced since) and else through `/proc/PID/root/PATH`
//! (the path as the target sees it, inside its own mount namespace): never through gostall's own
//! view of the path, which in a container names another file or nothing. The vDSO has no file; its
//! bytes are read from the target's memory.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::TargetError;
use crate::live::LiveProcess;
use crate::memory::Memory;
use crate::procfs::{self, Mapping};
use crate::Objects;

/// Largest object read (a corrupt or huge file must not exhaust our memory): 1 GiB.
pub const MAX_OBJECT: u64 = 1 << 30;

/// Whether a mapping is backed by an object whose bytes [`Objects::object_bytes`] can provide:
/// a file, or the vDSO.
pub fn is_object_mapping(m: &Mapping) -> bool {
    match m.path.as_deref() {
        Some(p) => {
            let b = p.as_os_str().as_encoded_bytes();
            b == b"[vdso]" || (!b.starts_with(b"[") && m.inode != 0)
        }
        None => false,
    }
}

impl Objects for LiveProcess {
    fn mappings(&self) -> Result<Vec<Mapping>, TargetError> {
        procfs::maps(self.pid())
    }

    fn object_bytes(&self, m: &Mapping) -> Result<Vec<u8>, TargetError> {
        let pid = self.pid();
        let Some(path) = m.path.as_deref() else {
            return Err(not_an_object(pid, m));
        };
        if path.as_os_str().as_encoded_bytes() == b"[vdso]" {
            let len = usize::try_from(m.len()).unwrap_or(usize::MAX);
            return Ok(self.read_vec(m.start, len)?);
        }
        if !is_object_mapping(m) {
            return Err(not_an_object(pid, m));
        }
        let map_file = PathBuf::from(format!("/proc/{pid}/map_files/{:x}-{:x}", m.start, m.end));
        let first = match read_capped(&map_file) {
            Ok(b) => return Ok(b),
            Err(e) => e,
        };
        // map_files needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN on most kernels: the path as the
        // target sees it is the next best thing (same mount namespace, same file unless replaced).
        let rel = path.strip_prefix("/").unwrap_or(path);
        let rooted = Path::new(&format!("/proc/{pid}/root")).join(rel);
        match read_capped(&rooted) {
            Ok(b) => Ok(b),
            Err(e) if procfs::is_gone(&e) && !procfs::is_alive(pid) => {
                Err(TargetError::ProcessExited { pid })
            }
            Err(e) => Err(TargetError::Proc {
                path: rooted,
                source: std::io::Error::new(
                    e.kind(),
                    format!("{e} (and {}: {first})", map_file.display()),
                ),
            }),
        }
    }
}

fn not_an_object(pid: i32, m: &Mapping) -> TargetError {
    TargetError::Proc {
        path: PathBuf::from(format!("/proc/{pid}/maps")),
        source: std::io::Error::other(format!(
            "mapping {:#x}-{:#x} is not backed by a file",
            m.start, m.end
        )),
    }
}

/// Reads a whole file, refusing files over [`MAX_OBJECT`].
fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    let f = std::fs::File::open(path)?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len > MAX_OBJECT {
        return Err(std::io::Error::other(format!(
            "{len} bytes: larger than the {MAX_OBJECT}-byte limit"
        )));
    }
    let mut out = Vec::with_capacity(len as usize);
    f.take(MAX_OBJECT + 1).read_to_end(&mut out)?;
    if out.len() as u64 > MAX_OBJECT {
        return Err(std::io::Error::other("larger than the object size limit"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_objects_are_readable() {
        // Our own process stands in for a target: its executable and libc are mapped files.
        let pid = std::process::id() as i32;
        let maps = procfs::maps(pid).unwrap();
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let m = maps
            .iter()
            .find(|m| m.path.as_deref() == Some(exe.as_path()) && m.offset == 0)
            .expect("executable mapped at offset 0");
        assert!(is_object_mapping(m));
        // Reading through /proc/self/map_files or /proc/self/root gives the ELF file.
        let rel = exe.strip_prefix("/").unwrap();
        let bytes = read_capped(&Path::new("/proc/self/root").join(rel)).unwrap();
        assert_eq!(&bytes[..4], b"\x7fELF");
        let anon = Mapping {
            path: None,
            inode: 0,
            ..m.clone()
        };
        assert!(!is_object_mapping(&anon));
        let heap = Mapping {
            path: Some("[heap]".into()),
            inode: 0,
            ..m.clone()
        };
        assert!(!is_object_mapping(&heap));
    }
}
