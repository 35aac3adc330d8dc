//! Writing a live process as an ELF core file (`gostall capture`): what a diagnosis needs, read
//! while every thread is stopped, so the process can be restarted at once and diagnosed later,
//! anywhere.
//!
//! The core has the layout the kernel's cores have, so gdb reads it too: a `PT_LOAD` segment per
//! mapping — with the bytes of anonymous and written (private, writable) memory: heaps, stacks,
//! the Go arenas, `.data`/`.bss`; only the first page of file-backed read-only mappings (the ELF
//! header, to check the files found later) — and a `PT_NOTE` segment: `NT_PRSTATUS` per thread,
//! `NT_PRPSINFO`, `NT_AUXV`, `NT_FILE`, plus any extra notes the caller adds. Pages of zeros are
//! left as holes (a sparse file): the size on disk is about the memory in use.
//!
//! Memory is read with the process stopped ([`Pause`], bounded by its cap); the file is written
//! as it is read. Nothing is written to the process.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use crate::corefile::{NT_AUXV, NT_FILE, NT_PRPSINFO, NT_PRSTATUS};
use crate::error::TargetError;
use crate::live::LiveProcess;
use crate::memory::Memory;
use crate::objects::is_object_mapping;
use crate::procfs::{self, Mapping};
use crate::{Pause, Threads};

/// Page size of the dump's alignment.
const PAGE: u64 = 4096;
/// Bytes copied per read.
const CHUNK: usize = 1 << 20;

/// A note to add to the core.
#[derive(Debug, Clone)]
pub struct ExtraNote {
    /// Owner name (`GOSTALL`).
    pub name: &'static str,
    /// Note type.
    pub kind: u32,
    /// Contents.
    pub desc: Vec<u8>,
}

/// What a capture wrote and what it cost the process.
#[derive(Debug, Clone, Default)]
pub struct CaptureStats {
    /// How long the process was stopped.
    pub paused: Duration,
    /// Memory the core covers with bytes, in bytes (pages never touched included: they read as
    /// zeros).
    pub memory_bytes: u64,
    /// Memory actually read from the process, bytes (the pages in memory or swapped out).
    pub copied_bytes: u64,
    /// The file's length (its apparent size; holes take no disk).
    pub file_bytes: u64,
    /// Bytes of the file actually written (not holes): about its size on disk.
    pub written_bytes: u64,
    /// Threads recorded.
    pub threads: usize,
    /// Mappings recorded (with or without their bytes).
    pub mappings: usize,
    /// Ranges that could not be read and were left as zeros.
    pub unreadable: Vec<(u64, u64)>,
}

/// What the kernel's default `coredump_filter` keeps, and the first page of ELF files.
fn dump_len(m: &Mapping) -> u64 {
    if !m.perms.read || is_special(m) {
        return 0;
    }
    let file = is_object_mapping(m) && !is_vdso(m);
    if file && (!m.perms.write || m.perms.shared) {
        // Code and read-only data come from the file later; keep its header to check it.
        return if m.offset == 0 { PAGE.min(m.len()) } else { 0 };
    }
    m.len()
}

fn is_special(m: &Mapping) -> bool {
    m.path.as_deref().is_some_and(|p| {
        let b = p.as_os_str().as_encoded_bytes();
        b == b"[vvar]" || b == b"[vvar_vclock]" || b == b"[vsyscall]"
    })
}

fn is_vdso(m: &Mapping) -> bool {
    m.path.as_deref().is_some_and(|p| p.as_os_str() == "[vdso]")
}

/// Captures process `pid` into an ELF core at `path`, stopping it for at most `cap`; `extra`
/// notes are added (written after the memory, so they may describe the pause: `extra_after` is
/// called once the process runs again, with how long it was stopped and the monotonic clock
/// read while it was).
///
/// # Errors
/// Attaching or pausing fails ([`TargetError`]), the file cannot be written
/// ([`TargetError::Proc`] naming it), or the pause ran past its cap (the copy would not be one
/// consistent moment: [`TargetError::PauseEnded`]).
pub fn capture(
    pid: i32,
    path: &Path,
    cap: Duration,
    extra_after: &dyn Fn(Duration, u64) -> Vec<ExtraNote>,
) -> Result<CaptureStats, TargetError> {
    let proc = LiveProcess::attach(pid)?;
    let file_err = |source: io::Error| TargetError::Proc {
        path: path.to_path_buf(),
        source,
    };
    let st = procfs::status(pid)?;
    let stat = procfs::stat(pid).ok();
    let auxv = std::fs::read(format!("/proc/{pid}/auxv")).unwrap_or_default();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let mut f = File::create(path).map_err(file_err)?;
    let mut stats = CaptureStats::default();
    let pause = Pause::freeze(pid, cap)?;
    let monotonic = monotonic_ns();
    // Mappings and threads while stopped: nothing can change them now.
    let maps = proc.maps()?;
    let threads = proc.threads()?;
    let regs: Vec<(i32, crate::Regs, &procfs::ThreadInfo)> = threads
        .iter()
        .filter_map(|t| pause.regs(t.tid).ok().map(|r| (t.tid, r, t)))
        .collect();
    // Layout: header, program headers (one per mapping and the notes), then the memory,
    // page-aligned, then the notes.
    let phnum = maps.len() + 1;
    let data_start = align(64 + 56 * phnum as u64, PAGE);
    let mut offset = data_start;
    let mut loads = Vec::with_capacity(maps.len());
    for m in &maps {
        let len = dump_len(m);
        loads.push((m, offset, len));
        offset = align(offset + len, PAGE);
    }
    let mut buf = vec![0u8; CHUNK];
    let pagemap = File::open(format!("/proc/{pid}/pagemap")).ok();
    for &(m, off, len) in &loads {
        // Pages never touched read as zeros: skip them (and their cost) where the page map
        // says which are in memory or swapped out.
        let present = pagemap
            .as_ref()
            .and_then(|pm| present_pages(pm, m.start, len));
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(CHUNK as u64) as usize;
            if let Some(p) = &present {
                let first = (done / PAGE) as usize;
                let pages = (n as u64).div_ceil(PAGE) as usize;
                if p[first..first + pages].iter().all(|&x| !x) {
                    stats.memory_bytes += n as u64;
                    done += n as u64;
                    continue;
                }
            }
            let chunk = &mut buf[..n];
            if proc.read(m.start + done, chunk).is_err() {
                // Page by page: keep what reads, leave the rest as zeros.
                for (i, page) in chunk.chunks_mut(PAGE as usize).enumerate() {
                    let at = m.start + done + (i as u64) * PAGE;
                    if proc.read(at, page).is_err() {
                        page.fill(0);
                        stats.unreadable.push((at, page.len() as u64));
                    }
                }
            }
            write_sparse(&mut f, off + done, chunk, &mut stats.written_bytes).map_err(file_err)?;
            stats.memory_bytes += n as u64;
            stats.copied_bytes += n as u64;
            done += n as u64;
        }
    }
    let ended = pause.ended();
    stats.paused = pause.resume();
    if let Some(end) = ended {
        let _ = std::fs::remove_file(path);
        return Err(TargetError::PauseEnded { pid, end });
    }
    // Notes.
    let mut notes = Vec::new();
    let name = st.name.clone();
    let prpsinfo = prpsinfo(
        pid,
        stat.as_ref().map_or(0, |s| s.ppid),
        st.uid[0],
        &name,
        &cmdline,
    );
    for (k, (tid, r, t)) in regs.iter().enumerate() {
        note(&mut notes, "CORE", NT_PRSTATUS, &prstatus(*tid, r, t));
        if k == 0 {
            note(&mut notes, "CORE", NT_PRPSINFO, &prpsinfo);
            if !auxv.is_empty() {
                note(&mut notes, "CORE", NT_AUXV, &auxv);
            }
            note(&mut notes, "CORE", NT_FILE, &nt_file(&maps));
        }
    }
    for x in extra_after(stats.paused, monotonic) {
        note(&mut notes, x.name, x.kind, &x.desc);
    }
    let notes_off = offset;
    f.seek(SeekFrom::Start(notes_off)).map_err(file_err)?;
    f.write_all(&notes).map_err(file_err)?;
    stats.written_bytes += notes.len() as u64;
    // Header and program headers.
    let mut head = Vec::with_capacity(data_start as usize);
    elf_header(&mut head, phnum as u16);
    phdr(&mut head, 4, 0, notes_off, 0, notes.len() as u64, 0, 1);
    for &(m, off, len) in &loads {
        let flags =
            u32::from(m.perms.read) << 2 | u32::from(m.perms.write) << 1 | u32::from(m.perms.exec);
        phdr(&mut head, 1, flags, off, m.start, len, m.len(), PAGE);
    }
    f.seek(SeekFrom::Start(0)).map_err(file_err)?;
    f.write_all(&head).map_err(file_err)?;
    stats.written_bytes += head.len() as u64;
    stats.file_bytes = notes_off + notes.len() as u64;
    f.set_len(stats.file_bytes).map_err(file_err)?;
    f.sync_all().map_err(file_err)?;
    stats.threads = regs.len();
    stats.mappings = maps.len();
    Ok(stats)
}

/// Which pages of `start..start+len` are in memory or swapped out (`/proc/PID/pagemap`: bit 63
/// present, bit 62 swapped); `None` when the map cannot be read.
fn present_pages(pagemap: &File, start: u64, len: u64) -> Option<Vec<bool>> {
    use std::os::unix::fs::FileExt;
    let pages = len.div_ceil(PAGE) as usize;
    let mut raw = vec![0u8; pages * 8];
    pagemap.read_exact_at(&mut raw, (start / PAGE) * 8).ok()?;
    Some(
        raw.chunks_exact(8)
            .map(|e| u64::from_le_bytes(e.try_into().expect("8 bytes")) >> 62 != 0)
            .collect(),
    )
}

fn align(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

/// Writes `data` at `off`, leaving whole pages of zeros as holes.
fn write_sparse(f: &mut File, off: u64, data: &[u8], written: &mut u64) -> io::Result<()> {
    let mut i = 0;
    while i < data.len() {
        let end = (i + PAGE as usize).min(data.len());
        let page = &data[i..end];
        if page.iter().any(|&b| b != 0) {
            // Extend over the following non-zero pages: one write for a run.
            let mut j = end;
            while j < data.len() {
                let e = (j + PAGE as usize).min(data.len());
                if data[j..e].iter().all(|&b| b == 0) {
                    break;
                }
                j = e;
            }
            f.seek(SeekFrom::Start(off + i as u64))?;
            f.write_all(&data[i..j])?;
            *written += (j - i) as u64;
            i = j;
        } else {
            i = end;
        }
    }
    Ok(())
}

fn note(out: &mut Vec<u8>, name: &str, kind: u32, desc: &[u8]) {
    let namesz = name.len() + 1;
    out.extend_from_slice(&(namesz as u32).to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    out.resize(align(out.len() as u64, 4) as usize, 0);
    out.extend_from_slice(desc);
    out.resize(align(out.len() as u64, 4) as usize, 0);
}

fn elf_header(out: &mut Vec<u8>, phnum: u16) {
    out.extend_from_slice(b"\x7fELF");
    out.extend_from_slice(&[2, 1, 1, 0]); // 64-bit, little-endian, version 1, System V
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&4u16.to_le_bytes()); // ET_CORE
    out.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // entry
    out.extend_from_slice(&64u64.to_le_bytes()); // phoff
    out.extend_from_slice(&0u64.to_le_bytes()); // shoff
    out.extend_from_slice(&0u32.to_le_bytes()); // flags
    out.extend_from_slice(&64u16.to_le_bytes()); // ehsize
    out.extend_from_slice(&56u16.to_le_bytes()); // phentsize
    out.extend_from_slice(&phnum.to_le_bytes());
    out.extend_from_slice(&64u16.to_le_bytes()); // shentsize
    out.extend_from_slice(&0u16.to_le_bytes()); // shnum
    out.extend_from_slice(&0u16.to_le_bytes()); // shstrndx
}

#[allow(clippy::too_many_arguments)]
fn phdr(
    out: &mut Vec<u8>,
    ty: u32,
    flags: u32,
    off: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
) {
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&off.to_le_bytes());
    out.extend_from_slice(&vaddr.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // paddr
    out.extend_from_slice(&filesz.to_le_bytes());
    out.extend_from_slice(&memsz.to_le_bytes());
    out.extend_from_slice(&align.to_le_bytes());
}

/// `struct elf_prstatus` (see `corefile`): signal masks, pid, CPU times, registers.
fn prstatus(tid: i32, r: &crate::Regs, t: &procfs::ThreadInfo) -> Vec<u8> {
    let mut d = vec![0u8; 336];
    d[16..24].copy_from_slice(&t.sig_pending.to_le_bytes());
    d[24..32].copy_from_slice(&t.sig_blocked.to_le_bytes());
    d[32..36].copy_from_slice(&tid.to_le_bytes());
    let tv = |d: &mut [u8], at: usize, dur: Duration| {
        d[at..at + 8].copy_from_slice(&dur.as_secs().to_le_bytes());
        d[at + 8..at + 16].copy_from_slice(&u64::from(dur.subsec_micros()).to_le_bytes());
    };
    tv(&mut d, 48, t.utime());
    tv(&mut d, 64, t.stime());
    let regs = [
        r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx, r.r11, r.r10, r.r9, r.r8, r.rax, r.rcx, r.rdx,
        r.rsi, r.rdi, r.orig_rax, r.rip, r.cs, r.eflags, r.rsp, r.ss, r.fs_base, r.gs_base, r.ds,
        r.es, r.fs, r.gs,
    ];
    for (i, v) in regs.iter().enumerate() {
        let at = 112 + 8 * i;
        d[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
    d
}

/// `struct elf_prpsinfo`: pid, parent, uid, command name and arguments.
fn prpsinfo(pid: i32, ppid: i32, uid: u32, name: &str, cmdline: &[u8]) -> Vec<u8> {
    let mut d = vec![0u8; 136];
    d[0] = b'S';
    d[1] = b'S';
    d[16..20].copy_from_slice(&uid.to_le_bytes());
    d[24..28].copy_from_slice(&pid.to_le_bytes());
    d[28..32].copy_from_slice(&ppid.to_le_bytes());
    let n = name.len().min(15);
    d[40..40 + n].copy_from_slice(&name.as_bytes()[..n]);
    let args: Vec<u8> = cmdline
        .iter()
        .map(|&b| if b == 0 { b' ' } else { b })
        .take(79)
        .collect();
    d[56..56 + args.len()].copy_from_slice(&args);
    d
}

/// `NT_FILE`: the file-backed mappings.
fn nt_file(maps: &[Mapping]) -> Vec<u8> {
    let files: Vec<&Mapping> = maps
        .iter()
        .filter(|m| is_object_mapping(m) && !is_vdso(m))
        .collect();
    let mut d = Vec::new();
    d.extend_from_slice(&(files.len() as u64).to_le_bytes());
    d.extend_from_slice(&PAGE.to_le_bytes());
    for m in &files {
        d.extend_from_slice(&m.start.to_le_bytes());
        d.extend_from_slice(&m.end.to_le_bytes());
        d.extend_from_slice(&(m.offset / PAGE).to_le_bytes());
    }
    for m in &files {
        if let Some(p) = &m.path {
            d.extend_from_slice(p.as_os_str().as_encoded_bytes());
        }
        d.push(0);
    }
    d
}

fn monotonic_ns() -> u64 {
    let mut ts = nix::libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes a timespec into the provided, properly sized buffer.
    unsafe { nix::libc::clock_gettime(nix::libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
