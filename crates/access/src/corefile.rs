//! ELF core files — the second backend beside live processes, behind the same traits.
//!
//! A core holds what the kernel (on a crash), `gcore` or `gostall capture` wrote: one `PT_LOAD`
//! segment per mapping of the process, with the bytes of those the dump kept (`p_filesz`; zero or
//! one page for the file-backed mappings the kernel's `coredump_filter` leaves out, like every
//! executable's code and read-only data), and notes: `NT_PRSTATUS` per thread (its id, registers,
//! signal masks, CPU times), `NT_PRPSINFO` (the process), `NT_FILE` (which file each mapping maps,
//! at which offset), `NT_AUXV` (where the executable's entry point and the vDSO are) and
//! `NT_SIGINFO` (the signal that ended the process, for a crash).
//!
//! [`CoreFile`] implements [`Memory`] (bytes from the core, else from the mapped file the bytes
//! came from), [`Threads`] and [`Objects`], so the readers that take a live process read a core
//! unchanged. The mapped files are found through [`CoreOptions`] (an explicit executable, a search
//! path) or where `NT_FILE` says they were; each is checked against the first page the core kept
//! of it, so a rebuilt binary is not mistaken for the one that ran.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use object::LittleEndian as LE;

use crate::error::{MemError, TargetError};
use crate::memory::Memory;
use crate::procfs::{Mapping, Perms, SyscallInfo, ThreadInfo};
use crate::regs::Regs;
use crate::{Objects, Threads};

/// `NT_PRSTATUS`: one thread's status and registers.
pub const NT_PRSTATUS: u32 = 1;
/// `NT_PRPSINFO`: the process's state, name and arguments.
pub const NT_PRPSINFO: u32 = 3;
/// `NT_AUXV`: the auxiliary vector the kernel passed at exec.
pub const NT_AUXV: u32 = 6;
/// `NT_SIGINFO`: the `siginfo_t` of the signal a thread stopped (or died) on.
pub const NT_SIGINFO: u32 = 0x5349_4749;
/// `NT_FILE`: the file-backed mappings.
pub const NT_FILE: u32 = 0x4649_4c45;
/// The note type of the record gostall adds to the cores it writes (name `GOSTALL`).
pub const NT_GOSTALL_CAPTURE: u32 = 1;

/// `AT_ENTRY`: the executable's entry point.
const AT_ENTRY: u64 = 9;
/// `AT_SYSINFO_EHDR`: where the vDSO is mapped.
const AT_SYSINFO_EHDR: u64 = 33;

/// Size of x86-64 `struct elf_prstatus`.
const PRSTATUS_SIZE: usize = 336;
/// Offset of `pr_reg` (a `user_regs_struct`) in `elf_prstatus`.
const PRSTATUS_REGS: usize = 112;
/// Size of x86-64 `struct elf_prpsinfo`.
const PRPSINFO_SIZE: usize = 136;

/// Most threads, mappings and auxv entries taken from a core's notes: a hostile note cannot make
/// us allocate without bound.
const MAX_ENTRIES: usize = 1 << 20;

/// Why a core file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The file could not be read.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Not an x86-64 ELF core file.
    #[error("{} is not an x86-64 ELF core file: {what}", path.display())]
    NotCore {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        what: String,
    },
    /// An ELF core whose structure is broken beyond use (no notes, no threads).
    #[error("{}: {what}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

/// Where to find the files a core's mappings name.
#[derive(Debug, Clone, Default)]
pub struct CoreOptions {
    /// The executable that ran (`--binary`): used for the executable's mappings whatever path
    /// the core records.
    pub binary: Option<PathBuf>,
    /// Directories searched for mapped files, in order, before the recorded paths: each as a
    /// system root (`DIR/usr/lib/...`) and as a flat directory (`DIR/libc.so.6`).
    pub search: Vec<PathBuf>,
}

/// One `PT_LOAD` segment.
#[derive(Debug, Clone, Copy)]
struct Load {
    vaddr: u64,
    memsz: u64,
    /// Offset of its bytes in the core.
    offset: u64,
    /// Bytes present in the core (clamped to the file's length when the core is truncated).
    filesz: u64,
    perms: Perms,
}

impl Load {
    fn end(&self) -> u64 {
        self.vaddr.saturating_add(self.memsz)
    }
}

/// One `NT_FILE` entry: `start..end` maps `path` from byte `offset`.
#[derive(Debug, Clone)]
struct FileMap {
    start: u64,
    end: u64,
    offset: u64,
    path: PathBuf,
}

/// One thread of the core (`NT_PRSTATUS`).
#[derive(Debug, Clone)]
pub struct CoreThread {
    /// Thread id.
    pub tid: i32,
    /// Registers when the dump was taken.
    pub regs: Regs,
    /// The signal the thread was stopped by (`pr_cursig`), 0 when none.
    pub cursig: u16,
    /// Pending signals (`pr_sigpend`), bit `n-1` for signal `n`.
    pub sig_pending: u64,
    /// Blocked signals (`pr_sighold`).
    pub sig_blocked: u64,
    /// User-mode CPU time, microseconds.
    pub utime_us: u64,
    /// Kernel-mode CPU time, microseconds.
    pub stime_us: u64,
    /// When the thread stopped in a signal handler and
    /// [`CoreFile::take_interrupted_contexts`] took what the handler interrupted as its state:
    /// the handler's own registers and signal mask, and the signal.
    pub in_handler: Option<(Regs, u64, i32)>,
}

/// The process a core was taken from (`NT_PRPSINFO`).
#[derive(Debug, Clone, Default)]
pub struct CoreProcess {
    /// Process id.
    pub pid: i32,
    /// Parent process id.
    pub ppid: i32,
    /// User id.
    pub uid: u32,
    /// The command name (`comm`, at most 15 bytes).
    pub name: String,
    /// The start of the command line (at most 80 bytes, arguments separated by spaces).
    pub args: String,
}

/// The signal a core was dumped on (`NT_SIGINFO`), for crashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreSignal {
    /// Signal number.
    pub signo: i32,
    /// `si_code`: positive for kernel-raised faults, `SI_USER` (0) or `SI_TKILL` (-6) when sent.
    pub code: i32,
    /// The faulting address for SIGSEGV, SIGBUS, SIGILL and SIGFPE.
    pub addr: Option<u64>,
    /// The sender's pid for signals sent by a process.
    pub sender: Option<i32>,
    /// The thread that took it.
    pub tid: i32,
}

/// Who wrote a core, from its notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreWriter {
    /// The kernel, as the process died on a signal.
    Kernel,
    /// GDB's `gcore` (or `generate-core-file`).
    Gdb,
    /// `gostall capture`.
    Gostall,
}

/// Source of a core's bytes: a mapping of the file, or bytes in memory (tests, fuzzing).
enum Bytes {
    Map(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    fn get(&self) -> &[u8] {
        match self {
            Bytes::Map(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// A mapped file, found and checked; `None` after a failed look.
type Opened = Option<Arc<Bytes>>;

/// An ELF core file, read through [`Memory`], [`Threads`] and [`Objects`] like a live process.
pub struct CoreFile {
    path: PathBuf,
    bytes: Bytes,
    loads: Vec<Load>,
    files: Vec<FileMap>,
    threads: Vec<CoreThread>,
    process: CoreProcess,
    signal: Option<CoreSignal>,
    auxv: Vec<(u64, u64)>,
    writer: CoreWriter,
    capture: Option<Vec<u8>>,
    opts: CoreOptions,
    /// Per distinct mapped path: the file's bytes once found, and how it was found or why not.
    opened: Mutex<Vec<(PathBuf, Opened, String)>>,
    /// What the core lacks (truncation), found while opening.
    notes: Vec<String>,
}

impl std::fmt::Debug for CoreFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreFile")
            .field("path", &self.path)
            .field("loads", &self.loads.len())
            .field("files", &self.files.len())
            .field("threads", &self.threads.len())
            .finish_non_exhaustive()
    }
}

impl CoreFile {
    /// Opens a core file (mapped, not read into memory: cores are often gigabytes).
    ///
    /// # Errors
    /// [`CoreError::Io`] when the file cannot be read, [`CoreError::NotCore`] when it is not an
    /// x86-64 ELF core, [`CoreError::Malformed`] when it has no readable notes or threads.
    pub fn open(path: &Path, opts: CoreOptions) -> Result<CoreFile, CoreError> {
        let io_err = |source| CoreError::Io {
            path: path.to_path_buf(),
            source,
        };
        let f = std::fs::File::open(path).map_err(io_err)?;
        // SAFETY: the map is read-only; a core rewritten while we read it could change under us,
        // which gives wrong bytes, not unsafety beyond what a mapped file always has.
        let map = unsafe { memmap2::Mmap::map(&f) }.map_err(io_err)?;
        Self::parse(path, Bytes::Map(map), opts)
    }

    /// Parses a core held in memory (tests and fuzzing).
    ///
    /// # Errors
    /// As [`CoreFile::open`].
    pub fn from_bytes(
        name: &Path,
        data: Vec<u8>,
        opts: CoreOptions,
    ) -> Result<CoreFile, CoreError> {
        Self::parse(name, Bytes::Owned(data), opts)
    }

    fn parse(path: &Path, bytes: Bytes, opts: CoreOptions) -> Result<CoreFile, CoreError> {
        let not_core = |what: String| CoreError::NotCore {
            path: path.to_path_buf(),
            what,
        };
        let malformed = |what: String| CoreError::Malformed {
            path: path.to_path_buf(),
            what,
        };
        let data = bytes.get();
        let hdr = elf::FileHeader64::<LE>::parse(data).map_err(|e| not_core(e.to_string()))?;
        let e = LE;
        if hdr.e_type(e) != elf::ET_CORE {
            return Err(not_core(format!(
                "ELF type {} (an executable or library, not a core: pass the core file)",
                hdr.e_type(e)
            )));
        }
        if hdr.e_machine(e) != elf::EM_X86_64 {
            return Err(not_core(format!("machine {}", hdr.e_machine(e))));
        }
        let phdrs = hdr
            .program_headers(e, data)
            .map_err(|err| malformed(format!("program headers: {err}")))?;
        let len = data.len() as u64;
        let mut loads = Vec::new();
        let mut notes = Vec::new();
        let mut missing = 0u64;
        let mut note_data: Vec<&[u8]> = Vec::new();
        for ph in phdrs {
            match ph.p_type(e) {
                elf::PT_LOAD => {
                    let (offset, filesz) = (ph.p_offset(e), ph.p_filesz(e));
                    let present = filesz.min(len.saturating_sub(offset));
                    missing = missing.saturating_add(filesz - present);
                    let flags = ph.p_flags(e);
                    // A segment ends within the address space (vaddr + memsz never overflows).
                    let vaddr = ph.p_vaddr(e);
                    let room = u64::MAX - vaddr;
                    let present = present.min(room);
                    loads.push(Load {
                        vaddr,
                        memsz: ph.p_memsz(e).max(present).min(room),
                        offset,
                        filesz: present,
                        perms: Perms {
                            read: flags & elf::PF_R != 0,
                            write: flags & elf::PF_W != 0,
                            exec: flags & elf::PF_X != 0,
                            shared: false,
                        },
                    });
                }
                elf::PT_NOTE => {
                    let (off, size) = (ph.p_offset(e), ph.p_filesz(e));
                    match data.get(off as usize..off.saturating_add(size) as usize) {
                        Some(d) => note_data.push(d),
                        None => {
                            return Err(malformed(format!(
                                "the core is truncated: its notes ({size} bytes at {off:#x}) lie past its end ({len} bytes); the threads and mappings are in them"
                            )))
                        }
                    }
                }
                _ => {}
            }
        }
        if missing > 0 {
            notes.push(format!(
                "the core is truncated: {missing} bytes of memory are missing at its end (the disk filled, or the dump was cut short); what lay there reads as not dumped"
            ));
        }
        loads.sort_by_key(|l| l.vaddr);
        let mut core = CoreFile {
            path: path.to_path_buf(),
            bytes: Bytes::Owned(Vec::new()),
            loads,
            files: Vec::new(),
            threads: Vec::new(),
            process: CoreProcess::default(),
            signal: None,
            auxv: Vec::new(),
            writer: CoreWriter::Kernel,
            capture: None,
            opts,
            opened: Mutex::new(Vec::new()),
            notes,
        };
        let mut last_tid = None;
        for d in note_data {
            let mut iter = object::read::elf::NoteIterator::<elf::FileHeader64<LE>>::new(e, 4, d)
                .map_err(|err| malformed(format!("notes: {err}")))?;
            loop {
                let note = match iter.next() {
                    Ok(Some(n)) => n,
                    Ok(None) => break,
                    Err(err) => {
                        core.notes.push(format!(
                            "the core's notes end early ({err}): later notes skipped"
                        ));
                        break;
                    }
                };
                core.note(note.name(), note.n_type(e), note.desc(), &mut last_tid);
            }
        }
        if core.threads.is_empty() {
            return Err(malformed(
                "the core records no thread (no NT_PRSTATUS note)".to_string(),
            ));
        }
        core.files.sort_by_key(|f| f.start);
        core.bytes = bytes;
        Ok(core)
    }

    /// Takes one note.
    fn note(&mut self, name: &[u8], ty: u32, desc: &[u8], last_tid: &mut Option<i32>) {
        match (name, ty) {
            (b"CORE", NT_PRSTATUS) if desc.len() >= PRSTATUS_SIZE => {
                if self.threads.len() >= MAX_ENTRIES {
                    return;
                }
                let t = prstatus(desc);
                *last_tid = Some(t.tid);
                self.threads.push(t);
            }
            (b"CORE", NT_PRPSINFO) if desc.len() >= PRPSINFO_SIZE => {
                self.process = prpsinfo(desc);
            }
            (b"CORE", NT_AUXV) => {
                self.auxv = desc
                    .chunks_exact(16)
                    .take(MAX_ENTRIES)
                    .map(|c| (u64_at(c, 0), u64_at(c, 8)))
                    .take_while(|&(k, _)| k != 0)
                    .collect();
            }
            (b"CORE", NT_FILE) => self.files = nt_file(desc),
            // The kernel writes one, after the thread that took the fatal signal; gdb one per
            // thread: the first that names a signal is the one the process stopped on.
            (b"CORE", NT_SIGINFO) if desc.len() >= 24 && self.signal.is_none() => {
                let signo = i32_at(desc, 0);
                let code = i32_at(desc, 8);
                if signo > 0 {
                    let fault = matches!(signo, 4 | 7 | 8 | 11) && code > 0;
                    let sent = code <= 0;
                    self.signal = Some(CoreSignal {
                        signo,
                        code,
                        addr: fault.then(|| u64_at(desc, 16)),
                        sender: sent.then(|| i32_at(desc, 16)),
                        tid: last_tid.unwrap_or(0),
                    });
                }
            }
            (b"GDB", _) => self.writer = CoreWriter::Gdb,
            (b"GOSTALL", NT_GOSTALL_CAPTURE) => {
                self.writer = CoreWriter::Gostall;
                self.capture = Some(desc.to_vec());
            }
            _ => {}
        }
    }

    /// Takes, for every thread stopped in a signal handler, what the handler interrupted as the
    /// thread's state: registers, system call and signal mask (see [`crate::sigframe`]); the
    /// handler's own stay in [`CoreThread::in_handler`]. For the kernel's core of a Go crash,
    /// where every thread waits in Go's handler until the process aborts. Returns how many
    /// threads were in a handler.
    pub fn take_interrupted_contexts(&mut self) -> usize {
        let found: Vec<(usize, crate::sigframe::Interrupted)> = self
            .threads
            .iter()
            .enumerate()
            .filter(|(_, t)| t.in_handler.is_none())
            .filter_map(|(i, t)| crate::sigframe::interrupted(self, &t.regs).map(|x| (i, x)))
            .collect();
        for (i, x) in &found {
            let t = &mut self.threads[*i];
            t.in_handler = Some((t.regs, t.sig_blocked, x.signo));
            t.regs = x.regs;
            t.sig_blocked = x.sig_blocked;
        }
        found.len()
    }

    /// The core file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The process the core was taken from.
    pub fn process(&self) -> &CoreProcess {
        &self.process
    }

    /// The threads, in the order the core lists them (the one that took a fatal signal first).
    pub fn core_threads(&self) -> &[CoreThread] {
        &self.threads
    }

    /// The signal the process died on, when the core says.
    pub fn signal(&self) -> Option<CoreSignal> {
        self.signal
    }

    /// Who wrote the core.
    pub fn writer(&self) -> CoreWriter {
        self.writer
    }

    /// The record gostall adds to the cores it writes (JSON), when this is one.
    pub fn capture_record(&self) -> Option<&[u8]> {
        self.capture.as_deref()
    }

    /// What the core lacks, found while opening it (truncation, broken notes).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The auxiliary vector's value for `key`.
    pub fn auxv(&self, key: u64) -> Option<u64> {
        self.auxv.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    /// The executable's path as the core records it: the mapped file holding the entry point
    /// (`AT_ENTRY`), else the first mapped file whose name is the process's command name.
    pub fn exe_path(&self) -> Option<&Path> {
        if let Some(entry) = self.auxv(AT_ENTRY) {
            if let Some(f) = self
                .files
                .iter()
                .find(|f| f.start <= entry && entry < f.end)
            {
                return Some(&f.path);
            }
        }
        let name = self.process.name.as_str();
        self.files
            .iter()
            .find(|f| {
                !name.is_empty()
                    && f.path
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(name))
            })
            .map(|f| f.path.as_path())
    }

    /// The executable's bytes: `--binary`, else found like any mapped file; checked against the
    /// core's copy of its first page when the core kept one.
    ///
    /// # Errors
    /// [`TargetError::Proc`] naming the file and what is wrong: not found, unreadable, or not the
    /// binary the core was taken from.
    pub fn read_exe(&self) -> Result<(PathBuf, Vec<u8>), TargetError> {
        let Some(exe) = self.exe_path().map(Path::to_path_buf) else {
            return match &self.opts.binary {
                Some(b) => read_file(b).map(|d| (b.clone(), d)),
                None => Err(TargetError::Core(
                    "the core does not say which executable ran (no NT_FILE note): pass --binary"
                        .to_string(),
                )),
            };
        };
        match self.file(&exe) {
            (Some(b), how) if b.get().len() as u64 > crate::objects::MAX_OBJECT => {
                Err(TargetError::Proc {
                    path: PathBuf::from(how),
                    source: io::Error::other("larger than the object size limit"),
                })
            }
            (Some(b), how) => Ok((PathBuf::from(how), b.get().to_vec())),
            (None, why) => Err(TargetError::Core(why)),
        }
    }

    /// Where each mapped file was found (or why not), for the report.
    pub fn file_report(&self) -> Vec<(PathBuf, String)> {
        let opened = self.opened.lock().unwrap_or_else(|e| e.into_inner());
        opened
            .iter()
            .map(|(p, _, how)| (p.clone(), how.clone()))
            .collect()
    }

    /// The bytes of mapped file `path` (found and checked once), with how it was found, or
    /// `None` with why not.
    fn file(&self, path: &Path) -> (Opened, String) {
        let mut opened = self.opened.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, b, how)) = opened.iter().find(|(p, _, _)| p == path) {
            return (b.clone(), how.clone());
        }
        let (b, how) = self.find_file(path);
        opened.push((path.to_path_buf(), b.clone(), how.clone()));
        (b, how)
    }

    fn find_file(&self, path: &Path) -> (Opened, String) {
        let is_exe = self.exe_path() == Some(path);
        let mut candidates: Vec<PathBuf> = Vec::new();
        if is_exe {
            if let Some(b) = &self.opts.binary {
                candidates.push(b.clone());
            }
        }
        let rel = path.strip_prefix("/").unwrap_or(path);
        for dir in &self.opts.search {
            candidates.push(dir.join(rel));
            if let Some(n) = path.file_name() {
                candidates.push(dir.join(n));
            }
        }
        candidates.push(path.to_path_buf());
        let header = self.header_page(path);
        let mut rejected = Vec::new();
        for c in candidates {
            // Only regular files: a path the core names could be a FIFO (opening it would wait
            // for a writer) or a device.
            let opened = match std::fs::metadata(&c) {
                Ok(m) if m.is_file() => std::fs::File::open(&c),
                Ok(_) => Err(io::Error::other("not a regular file")),
                Err(e) => Err(e),
            };
            let f = match opened {
                Ok(f) => f,
                // The executable named with --binary must be there, and be a file.
                Err(e) if is_exe && self.opts.binary.as_deref() == Some(c.as_path()) => {
                    return (None, format!("--binary {}: {e}", c.display()));
                }
                Err(_) => continue,
            };
            // SAFETY: read-only map of a regular file; see `open`.
            let Ok(map) = (unsafe { memmap2::Mmap::map(&f) }) else {
                continue;
            };
            if let Some(h) = &header {
                let n = h.len().min(map.len());
                if n == 0 || map[..n] != h[..n] {
                    rejected.push(c.display().to_string());
                    continue;
                }
            }
            return (Some(Arc::new(Bytes::Map(map))), c.display().to_string());
        }
        let why = if rejected.is_empty() {
            if is_exe && self.opts.binary.is_none() {
                format!(
                    "the executable that ran, {}, is not on this machine: pass --binary with a copy of it",
                    path.display()
                )
            } else {
                format!(
                    "{} is not on this machine (nor in the search path)",
                    path.display()
                )
            }
        } else {
            format!(
                "the core was taken from {}, and {} {} another build: {} first page differs from the copy the core kept (rebuilt or updated since?){}",
                path.display(),
                rejected.join(" and "),
                if rejected.len() == 1 { "is" } else { "are" },
                if rejected.len() == 1 { "its" } else { "their" },
                if is_exe {
                    "; pass --binary with the very executable that ran"
                } else {
                    ""
                }
            )
        };
        (None, why)
    }

    /// The first page of mapped file `path` as the core kept it (the kernel dumps the first
    /// page of every ELF mapping), to check a candidate file against.
    fn header_page(&self, path: &Path) -> Option<Vec<u8>> {
        let f = self
            .files
            .iter()
            .find(|f| f.path == path && f.offset == 0)?;
        let l = self.load_at(f.start)?;
        if l.vaddr != f.start || l.filesz == 0 {
            return None;
        }
        let n = l.filesz.min(4096).min(f.end - f.start) as usize;
        let start = l.offset as usize;
        let page = self.bytes.get().get(start..start + n)?;
        // A page of zeros says nothing (a dump that wrote holes).
        page.iter().any(|&b| b != 0).then(|| page.to_vec())
    }

    fn load_at(&self, addr: u64) -> Option<&Load> {
        let i = self.loads.partition_point(|l| l.vaddr <= addr);
        let l = self.loads.get(i.checked_sub(1)?)?;
        (addr < l.end()).then_some(l)
    }

    fn file_at(&self, addr: u64) -> Option<&FileMap> {
        let i = self.files.partition_point(|f| f.start <= addr);
        let f = self.files.get(i.checked_sub(1)?)?;
        (addr < f.end).then_some(f)
    }

    /// Reads what a mapped file holds at `addr`, for memory the core did not keep; returns the
    /// bytes copied (at most `buf.len()`, up to the end of that file mapping).
    fn read_from_file(&self, addr: u64, buf: &mut [u8]) -> Option<usize> {
        let f = self.file_at(addr)?;
        let (b, _) = self.file(&f.path);
        let b = b?;
        let data = b.get();
        let n = (buf.len() as u64).min(f.end - addr) as usize;
        let off = f.offset.checked_add(addr - f.start)? as usize;
        let src = data.get(off..off.checked_add(n)?)?;
        buf[..n].copy_from_slice(src);
        Some(n)
    }
}

impl Memory for CoreFile {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let len = buf.len();
        if addr.checked_add(len as u64).is_none() {
            return Err(MemError::BadRange { addr, len });
        }
        let data = self.bytes.get();
        let mut done = 0usize;
        while done < len {
            let a = addr + done as u64;
            let rest = &mut buf[done..];
            let load = self.load_at(a);
            let n = match load {
                Some(l) if a < l.vaddr + l.filesz => {
                    let n = (rest.len() as u64).min(l.vaddr + l.filesz - a) as usize;
                    let off = (l.offset + (a - l.vaddr)) as usize;
                    rest[..n].copy_from_slice(&data[off..off + n]);
                    n
                }
                _ => {
                    // Not kept by the dump: what the mapped file holds there, bounded by the
                    // segment (or, where no segment covers it, by the file mapping).
                    let lim = load.map_or(rest.len() as u64, |l| l.end() - a) as usize;
                    let lim = lim.min(rest.len());
                    match self.read_from_file(a, &mut rest[..lim]) {
                        Some(n) if n > 0 => n,
                        _ => {
                            return Err(match load {
                                Some(_) => MemError::NotInCore {
                                    addr: a,
                                    start: addr,
                                    len,
                                },
                                None => MemError::Unmapped {
                                    addr: a,
                                    start: addr,
                                    len,
                                },
                            })
                        }
                    }
                }
            };
            done += n;
        }
        Ok(())
    }
}

impl Threads for CoreFile {
    fn threads(&self) -> Result<Vec<ThreadInfo>, TargetError> {
        let hz = crate::procfs::clock_ticks_per_second();
        Ok(self
            .threads
            .iter()
            .map(|t| {
                let nr = t.regs.orig_rax as i64;
                let r = &t.regs;
                ThreadInfo {
                    tid: t.tid,
                    name: self.process.name.clone(),
                    // A thread inside a system call was blocked in the kernel; any other was
                    // running or runnable.
                    state: if nr >= 0 { 'S' } else { 'R' },
                    syscall: (nr >= 0).then_some(SyscallInfo {
                        nr,
                        args: [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9],
                        sp: r.rsp,
                        pc: r.rip,
                    }),
                    wchan: None,
                    kernel_stack: None,
                    voluntary_ctxt_switches: 0,
                    nonvoluntary_ctxt_switches: 0,
                    utime_ticks: us_to_ticks(t.utime_us, hz),
                    stime_ticks: us_to_ticks(t.stime_us, hz),
                    start_ticks: 0,
                    processor: None,
                    tracer_pid: 0,
                    sig_blocked: t.sig_blocked,
                    sig_pending: t.sig_pending,
                }
            })
            .collect())
    }

    fn regs(&self, tid: i32) -> Result<Regs, TargetError> {
        self.threads
            .iter()
            .find(|t| t.tid == tid)
            .map(|t| t.regs)
            .ok_or(TargetError::ThreadExited {
                pid: self.process.pid,
                tid,
            })
    }
}

impl Objects for CoreFile {
    /// The file mappings `NT_FILE` lists, and the segments no file backs (anonymous memory, the
    /// stacks, the vDSO — found through `AT_SYSINFO_EHDR`), in address order.
    fn mappings(&self) -> Result<Vec<Mapping>, TargetError> {
        let vdso = self.auxv(AT_SYSINFO_EHDR);
        let mut out: Vec<Mapping> = Vec::with_capacity(self.loads.len() + self.files.len());
        for f in &self.files {
            let perms = self.load_at(f.start).map(|l| l.perms).unwrap_or(Perms {
                read: true,
                write: false,
                exec: false,
                shared: false,
            });
            out.push(Mapping {
                start: f.start,
                end: f.end,
                perms,
                offset: f.offset,
                dev_major: 0,
                dev_minor: 0,
                // NT_FILE names the file, not its inode: any nonzero value says "file-backed".
                inode: 1,
                path: Some(f.path.clone()),
                deleted: false,
            });
        }
        for l in &self.loads {
            if self.file_at(l.vaddr).is_some() {
                continue;
            }
            out.push(Mapping {
                start: l.vaddr,
                end: l.end(),
                perms: l.perms,
                offset: 0,
                dev_major: 0,
                dev_minor: 0,
                inode: 0,
                path: (Some(l.vaddr) == vdso).then(|| PathBuf::from("[vdso]")),
                deleted: false,
            });
        }
        out.sort_by_key(|m| m.start);
        Ok(out)
    }

    fn object_bytes(&self, m: &Mapping) -> Result<Vec<u8>, TargetError> {
        let Some(path) = m.path.as_deref() else {
            return Err(TargetError::Proc {
                path: self.path.clone(),
                source: io::Error::other(format!(
                    "mapping {:#x}-{:#x} is not backed by a file",
                    m.start, m.end
                )),
            });
        };
        if path.as_os_str().as_encoded_bytes() == b"[vdso]" {
            let len = usize::try_from(m.len()).unwrap_or(usize::MAX);
            return Ok(self.read_vec(m.start, len)?);
        }
        match self.file(path) {
            (Some(b), _) => {
                let d = b.get();
                if d.len() as u64 > crate::objects::MAX_OBJECT {
                    return Err(TargetError::Proc {
                        path: path.to_path_buf(),
                        source: io::Error::other("larger than the object size limit"),
                    });
                }
                Ok(d.to_vec())
            }
            (None, why) => Err(TargetError::Core(why)),
        }
    }
}

fn read_file(p: &Path) -> Result<Vec<u8>, TargetError> {
    std::fs::read(p).map_err(|source| TargetError::Proc {
        path: p.to_path_buf(),
        source,
    })
}

/// Microseconds in clock ticks (`hz` a second).
fn us_to_ticks(us: u64, hz: u64) -> u64 {
    (u128::from(us) * u128::from(hz) / 1_000_000).min(u128::from(u64::MAX)) as u64
}

fn u64_at(d: &[u8], off: usize) -> u64 {
    d.get(off..off + 8)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
}

fn i32_at(d: &[u8], off: usize) -> i32 {
    d.get(off..off + 4)
        .map_or(0, |b| i32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
}

fn u16_at(d: &[u8], off: usize) -> u16 {
    d.get(off..off + 2)
        .map_or(0, |b| u16::from_le_bytes(b.try_into().unwrap_or([0; 2])))
}

fn cstr(d: &[u8]) -> String {
    let end = memchr::memchr(0, d).unwrap_or(d.len());
    String::from_utf8_lossy(&d[..end]).trim_end().to_string()
}

/// `struct elf_prstatus` (x86-64): `pr_cursig` at 12, `pr_sigpend` 16, `pr_sighold` 24, `pr_pid`
/// 32, `pr_utime` 48 and `pr_stime` 64 (timevals), `pr_reg` at 112 (`user_regs_struct`: r15, r14,
/// r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags, rsp,
/// ss, fs_base, gs_base, ds, es, fs, gs).
fn prstatus(d: &[u8]) -> CoreThread {
    let r = |i: usize| u64_at(d, PRSTATUS_REGS + 8 * i);
    let tv = |off: usize| {
        u64_at(d, off)
            .saturating_mul(1_000_000)
            .saturating_add(u64_at(d, off + 8))
    };
    CoreThread {
        tid: i32_at(d, 32),
        cursig: u16_at(d, 12),
        sig_pending: u64_at(d, 16),
        sig_blocked: u64_at(d, 24),
        utime_us: tv(48),
        stime_us: tv(64),
        in_handler: None,
        regs: Regs {
            r15: r(0),
            r14: r(1),
            r13: r(2),
            r12: r(3),
            rbp: r(4),
            rbx: r(5),
            r11: r(6),
            r10: r(7),
            r9: r(8),
            r8: r(9),
            rax: r(10),
            rcx: r(11),
            rdx: r(12),
            rsi: r(13),
            rdi: r(14),
            orig_rax: r(15),
            rip: r(16),
            cs: r(17),
            eflags: r(18),
            rsp: r(19),
            ss: r(20),
            fs_base: r(21),
            gs_base: r(22),
            ds: r(23),
            es: r(24),
            fs: r(25),
            gs: r(26),
        },
    }
}

/// `struct elf_prpsinfo` (x86-64): `pr_uid` at 16, `pr_pid` 24, `pr_ppid` 28, `pr_fname[16]` 40,
/// `pr_psargs[80]` 56.
fn prpsinfo(d: &[u8]) -> CoreProcess {
    CoreProcess {
        pid: i32_at(d, 24),
        ppid: i32_at(d, 28),
        uid: i32_at(d, 16) as u32,
        name: cstr(&d[40..56]),
        args: cstr(&d[56..136]),
    }
}

/// `NT_FILE`: count, page size, `count` × (start, end, offset in pages), then `count` NUL-terminated
/// paths. Entries past the data are dropped.
fn nt_file(d: &[u8]) -> Vec<FileMap> {
    let count = (u64_at(d, 0) as usize).min(MAX_ENTRIES);
    let page = u64_at(d, 8);
    let table = 16usize;
    let Some(names_at) = count.checked_mul(24).and_then(|n| n.checked_add(table)) else {
        return Vec::new();
    };
    let Some(mut names) = d.get(names_at..) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(count.min(d.len() / 24));
    for i in 0..count {
        let e = table + i * 24;
        let Some(end) = memchr::memchr(0, names) else {
            break;
        };
        let name = &names[..end];
        names = &names[end + 1..];
        let (start, stop) = (u64_at(d, e), u64_at(d, e + 8));
        if stop <= start {
            continue;
        }
        out.push(FileMap {
            start,
            end: stop,
            offset: u64_at(d, e + 16).saturating_mul(page),
            path: PathBuf::from(
                <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name),
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF core: `notes` (name, type, desc) and segments (vaddr, memsz, bytes kept).
    fn core(notes: &[(&[u8], u32, Vec<u8>)], loads: &[(u64, u64, Vec<u8>)]) -> Vec<u8> {
        let mut nb = Vec::new();
        for (name, ty, desc) in notes {
            nb.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
            nb.extend_from_slice(&(desc.len() as u32).to_le_bytes());
            nb.extend_from_slice(&ty.to_le_bytes());
            nb.extend_from_slice(name);
            nb.push(0);
            nb.resize(nb.len().next_multiple_of(4), 0);
            nb.extend_from_slice(desc);
            nb.resize(nb.len().next_multiple_of(4), 0);
        }
        let phnum = 1 + loads.len();
        let mut out = vec![0u8; 64];
        out[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
        out[16..18].copy_from_slice(&elf::ET_CORE.to_le_bytes());
        out[18..20].copy_from_slice(&elf::EM_X86_64.to_le_bytes());
        out[20..24].copy_from_slice(&1u32.to_le_bytes());
        out[32..40].copy_from_slice(&64u64.to_le_bytes());
        out[52..54].copy_from_slice(&64u16.to_le_bytes());
        out[54..56].copy_from_slice(&56u16.to_le_bytes());
        out[56..58].copy_from_slice(&(phnum as u16).to_le_bytes());
        let mut off = 64 + 56 * phnum as u64;
        let mut body = nb.clone();
        let ph = |ty: u32, flags: u32, off: u64, vaddr: u64, filesz: u64, memsz: u64| {
            let mut p = Vec::new();
            for v in [ty, flags] {
                p.extend_from_slice(&v.to_le_bytes());
            }
            for v in [off, vaddr, 0, filesz, memsz, 1] {
                p.extend_from_slice(&v.to_le_bytes());
            }
            p
        };
        out.extend(ph(elf::PT_NOTE, 0, off, 0, nb.len() as u64, 0));
        off += nb.len() as u64;
        for (vaddr, memsz, bytes) in loads {
            out.extend(ph(elf::PT_LOAD, 6, off, *vaddr, bytes.len() as u64, *memsz));
            body.extend_from_slice(bytes);
            off += bytes.len() as u64;
        }
        out.extend(body);
        out
    }

    fn prstatus_note(tid: i32, regs: &[(usize, u64)], blocked: u64, utime_s: u64) -> Vec<u8> {
        let mut d = vec![0u8; PRSTATUS_SIZE];
        d[24..32].copy_from_slice(&blocked.to_le_bytes());
        d[32..36].copy_from_slice(&tid.to_le_bytes());
        d[48..56].copy_from_slice(&utime_s.to_le_bytes());
        for (i, v) in regs {
            d[PRSTATUS_REGS + 8 * i..PRSTATUS_REGS + 8 * i + 8].copy_from_slice(&v.to_le_bytes());
        }
        d
    }

    const RSP: usize = 19;
    const RIP: usize = 16;
    const ORIG_RAX: usize = 15;

    fn open(bytes: Vec<u8>) -> CoreFile {
        CoreFile::from_bytes(Path::new("test.core"), bytes, CoreOptions::default()).unwrap()
    }

    #[test]
    fn hostile_numbers_do_not_overflow() {
        // CPU times near u64::MAX seconds and a segment that runs past the address space's end.
        let t = prstatus_note(7, &[(RSP, u64::MAX - 8)], 0, u64::MAX);
        let c = open(core(
            &[(b"CORE", NT_PRSTATUS, t)],
            &[(u64::MAX - 0xfff, 0x2000, vec![0xab; 0x1000])],
        ));
        let th = c.threads().unwrap();
        let hz = crate::procfs::clock_ticks_per_second();
        assert_eq!(th[0].utime_ticks, us_to_ticks(u64::MAX, hz));
        assert_eq!(us_to_ticks(2_500_000, 100), 250);
        let mut b = [0u8; 8];
        c.read(u64::MAX - 8, &mut b).unwrap();
        assert_eq!(b, [0xab; 8]);
        assert!(c.mappings().unwrap().iter().all(|m| m.start <= m.end));
    }

    #[test]
    fn a_crashed_thread_is_read_where_the_handler_interrupted_it() {
        const STACK: u64 = 0x7000_0000;
        const CODE: u64 = 0x40_0000;
        let mut code = vec![0u8; 0x1000];
        code[..9].copy_from_slice(&[0x48, 0xc7, 0xc0, 0x0f, 0, 0, 0, 0x0f, 0x05]);
        code[0x40..0x42].copy_from_slice(&[0x0f, 0x05]);
        // An rt_sigframe at STACK+0x1008: SIGQUIT interrupted a read(2) (restarted: rip on the
        // syscall instruction, rax its number) with SIGURG blocked.
        let mut stack = vec![0u8; 0x2000];
        let f = 0x1008;
        let put =
            |s: &mut Vec<u8>, at: usize, v: u64| s[at..at + 8].copy_from_slice(&v.to_le_bytes());
        put(&mut stack, f, CODE);
        put(&mut stack, f + 8 + 16, STACK);
        put(&mut stack, f + 8 + 32, 0x2000);
        put(&mut stack, f + 8 + 40 + 8 * 13, 0); // rax
        put(&mut stack, f + 8 + 40 + 8 * 15, 0x7fff_0000); // rsp
        put(&mut stack, f + 8 + 40 + 8 * 16, CODE + 0x40); // rip
        put(&mut stack, f + 8 + 296, 1 << 22);
        stack[f + 312] = 3;
        let handler = prstatus_note(
            10,
            &[(RSP, STACK + 0x100), (RIP, CODE + 0x80), (ORIG_RAX, 35)],
            u64::MAX,
            1,
        );
        let other = prstatus_note(11, &[(RSP, 0x10), (ORIG_RAX, u64::MAX)], 0, 1);
        let mut c = open(core(
            &[
                (b"CORE", NT_PRSTATUS, handler),
                (b"CORE", NT_PRSTATUS, other),
            ],
            &[(CODE, 0x1000, code), (STACK, 0x2000, stack)],
        ));
        assert_eq!(c.take_interrupted_contexts(), 1);
        assert_eq!(c.take_interrupted_contexts(), 0, "taken once");
        let r = c.regs(10).unwrap();
        assert_eq!((r.rip, r.rsp, r.orig_rax), (CODE + 0x40, 0x7fff_0000, 0));
        let t = &c.threads().unwrap()[0];
        assert_eq!(t.sig_blocked, 1 << 22);
        assert_eq!(t.syscall.as_ref().map(|s| s.nr), Some(0));
        let (h, mask, sig) = c.core_threads()[0].in_handler.unwrap();
        assert_eq!((h.rip, mask, sig), (CODE + 0x80, u64::MAX, 3));
        assert!(c.core_threads()[1].in_handler.is_none());
    }
}
