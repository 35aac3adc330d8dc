//! Native (C) stacks: unwinding a thread that runs outside Go — in a cgo call, on a thread C
//! created, in a library's system call — with the mapped objects' DWARF CFI (`framehop`), then
//! symbolising each frame (symbol table, DWARF line table).
//!
//! Nothing here stops a thread. Unwinding starts from registers the caller has: for a live
//! process that is not paused, the stack and instruction pointers `/proc/PID/task/TID/syscall`
//! shows for a thread blocked in a system call (the frame pointer is unknown there, so only CFI
//! is used); when paused, the ptrace registers. The stack is read in one piece from the stack
//! pointer and the unwinder's reads are served from that copy, falling back to single reads.
//!
//! Objects are loaded only when unwinding (or naming an address) touches them, once per
//! snapshot: their bytes come through [`Objects`], so a core file can provide them too. Unwinding
//! stops at the first frame in Go code (the cgo boundary: `runtime.asmcgocall`, `crosscall2`,
//! `runtime.cgocallback`…), at the end of the stack, after [`MAX_FRAMES`], or where it cannot go
//! on (unmapped pc, unreadable stack, no progress); the reason for an early stop is noted.

use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{ExplicitModuleSectionInfo, FrameAddress, Module, Unwinder};
use gostall_access::objects::is_object_mapping;
use gostall_access::{Mapping, Memory, Objects, ReadReq, ThreadInfo};
use gostall_binfmt::{ElfObject, SharedBytes};
use gostall_model::{NativeFrame, ThreadFacts};
use rustc_hash::FxHashMap;
use std::ops::Range;
use std::sync::Arc;

/// Deepest native stack unwound.
pub const MAX_FRAMES: usize = 256;
/// Bytes of stack read in one piece from the stack pointer (less when the mapping ends sooner).
pub const STACK_CHUNK: usize = 64 << 10;
/// Reads of single words outside the copied chunk allowed per thread.
const MAX_SINGLE_READS: usize = 64;

/// Registers unwinding starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartRegs {
    /// Instruction pointer.
    pub pc: u64,
    /// Stack pointer.
    pub sp: u64,
    /// Frame pointer, when known (ptrace); `/proc/…/syscall` does not show it.
    pub bp: Option<u64>,
}

/// A copy of stack bytes starting at `addr`.
#[derive(Debug, Clone, Default)]
pub struct StackCopy {
    /// Address of the first byte.
    pub addr: u64,
    /// The bytes.
    pub bytes: Vec<u8>,
}

impl StackCopy {
    fn word(&self, addr: u64) -> Option<u64> {
        let off = usize::try_from(addr.checked_sub(self.addr)?).ok()?;
        let b = self.bytes.get(off..off.checked_add(8)?)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    }
}

/// Identity of a mapped object: device, inode and path (the vDSO has neither device nor inode).
type ObjKey = (u32, u32, u64, std::path::PathBuf);

struct Loaded {
    elf: ElfObject,
    bias: u64,
    path: String,
}

/// Unwinds and symbolises native stacks of one target; caches objects, unwind rules and frames
/// across threads.
pub struct NativeUnwinder<'a, O: Objects + ?Sized> {
    objs: &'a O,
    maps: Vec<Mapping>,
    keys: FxHashMap<ObjKey, Option<usize>>,
    loaded: Vec<Loaded>,
    unwinder: UnwinderX86_64<SharedBytes>,
    cache: CacheX86_64,
    frames: FxHashMap<u64, NativeFrame>,
    is_go: Box<dyn Fn(u64) -> bool + 'a>,
    /// Objects that could not be loaded, with why (each once).
    pub notes: Vec<String>,
}

impl<'a, O: Objects + ?Sized> NativeUnwinder<'a, O> {
    /// An unwinder over `objs`'s current mappings; `is_go(pc)` says whether a pc is Go code (where
    /// native unwinding stops).
    ///
    /// # Errors
    /// When the mappings cannot be listed (the process exited, permission).
    pub fn new(
        objs: &'a O,
        is_go: impl Fn(u64) -> bool + 'a,
    ) -> Result<Self, gostall_access::TargetError> {
        let mut maps = objs.mappings()?;
        maps.sort_by_key(|m| m.start);
        Ok(NativeUnwinder {
            objs,
            maps,
            keys: FxHashMap::default(),
            loaded: Vec::new(),
            unwinder: UnwinderX86_64::new(),
            cache: CacheX86_64::new(),
            frames: FxHashMap::default(),
            is_go: Box::new(is_go),
            notes: Vec::new(),
        })
    }

    /// Paths of the objects loaded so far.
    pub fn loaded_objects(&self) -> Vec<&str> {
        self.loaded.iter().map(|l| l.path.as_str()).collect()
    }

    fn mapping_index(&self, addr: u64) -> Option<usize> {
        let i = self
            .maps
            .partition_point(|m| m.start <= addr)
            .checked_sub(1)?;
        self.maps[i].contains(addr).then_some(i)
    }

    /// The mapping containing `sp` and how many bytes of stack to read from it.
    pub fn stack_request(&self, sp: u64) -> Option<ReadReq> {
        let m = &self.maps[self.mapping_index(sp)?];
        let len = (m.end - sp).min(STACK_CHUNK as u64) as usize;
        Some(ReadReq { addr: sp, len })
    }

    /// Reads the stack of a thread from `sp` in one piece (smaller pieces if that fails).
    pub fn read_stack<M: Memory + ?Sized>(&self, mem: &M, sp: u64) -> Option<StackCopy> {
        let req = self.stack_request(sp)?;
        let mut len = req.len;
        while len >= 8 {
            let mut bytes = vec![0u8; len];
            if mem.read(sp, &mut bytes).is_ok() {
                return Some(StackCopy { addr: sp, bytes });
            }
            len /= 4;
        }
        None
    }

    /// The loaded object the mapping at index `i` belongs to, loading it on first use.
    fn object_of_mapping(&mut self, i: usize) -> Option<usize> {
        let m = &self.maps[i];
        if !is_object_mapping(m) {
            return None;
        }
        let key: ObjKey = (m.dev_major, m.dev_minor, m.inode, m.path.clone()?);
        if let Some(k) = self.keys.get(&key) {
            return *k;
        }
        let idx = self.load(&key);
        self.keys.insert(key, idx);
        idx
    }

    fn load(&mut self, key: &ObjKey) -> Option<usize> {
        let same = |m: &Mapping| {
            (m.dev_major, m.dev_minor, m.inode) == (key.0, key.1, key.2)
                && m.path.as_ref() == Some(&key.3)
        };
        let first = self
            .maps
            .iter()
            .filter(|m| same(m))
            .min_by_key(|m| m.offset)?;
        let lo = self
            .maps
            .iter()
            .filter(|m| same(m))
            .map(|m| m.start)
            .min()?;
        let hi = self.maps.iter().filter(|m| same(m)).map(|m| m.end).max()?;
        let path = key.3.display().to_string();
        let bytes = match self.objs.object_bytes(first) {
            Ok(b) => b,
            Err(e) => {
                self.notes.push(format!("cannot read {path}: {e}"));
                return None;
            }
        };
        let elf = match ElfObject::parse(Arc::from(bytes)) {
            Ok(e) => e,
            Err(e) => {
                self.notes.push(format!("cannot parse {path}: {e}"));
                return None;
            }
        };
        let Some(bias) = elf.bias_for_mapping(first.start, first.offset) else {
            self.notes.push(format!(
                "{path}: no segment maps file offset {:#x}",
                first.offset
            ));
            return None;
        };
        let us = elf.unwind_sections();
        let info = ExplicitModuleSectionInfo {
            base_svma: 0,
            text_svma: us.text_svma.clone(),
            got_svma: us.got_svma.clone(),
            eh_frame_svma: us.eh_frame.as_ref().map(|s| s.svma.clone()),
            eh_frame: us.eh_frame.as_ref().map(|s| s.bytes.clone()),
            eh_frame_hdr_svma: us.eh_frame_hdr.as_ref().map(|s| s.svma.clone()),
            eh_frame_hdr: us.eh_frame_hdr.as_ref().map(|s| s.bytes.clone()),
            debug_frame: us.debug_frame.as_ref().map(|s| s.bytes.clone()),
            ..Default::default()
        };
        self.unwinder
            .add_module(Module::new(path.clone(), lo..hi, bias, info));
        self.loaded.push(Loaded { elf, bias, path });
        Some(self.loaded.len() - 1)
    }

    /// The object a code address belongs to.
    fn object_at(&mut self, pc: u64) -> Option<usize> {
        let i = self.mapping_index(pc)?;
        self.object_of_mapping(i)
    }

    /// The function symbol of a code address in any mapped object (`handler` or `handler+0x1c`);
    /// `None` outside mapped objects or where no symbol covers it.
    pub fn code_symbol(&mut self, addr: u64) -> Option<String> {
        let o = self.object_at(addr)?;
        let l = &self.loaded[o];
        let (name, off) = l.elf.function_at(addr.wrapping_sub(l.bias))?;
        Some(crate::live::symbol_plus(name, off))
    }

    /// The symbol naming a data address of a mapped object (`.data`, `.bss`): `lock_a` or
    /// `runtime.sched+288`. Follows `.bss` into the anonymous mapping right after an object's
    /// last file mapping. `None` for heap, stacks and anything without a symbol.
    pub fn data_symbol(&mut self, addr: u64) -> Option<String> {
        let i = self.mapping_index(addr)?;
        // The object's own mapping, or the anonymous mapping glued to its end (.bss).
        let j = if is_object_mapping(&self.maps[i]) {
            i
        } else if self.maps[i].path.is_none()
            && i > 0
            && self.maps[i - 1].end == self.maps[i].start
            && is_object_mapping(&self.maps[i - 1])
        {
            i - 1
        } else {
            return None;
        };
        let o = self.object_of_mapping(j)?;
        let l = &self.loaded[o];
        let svma = addr.wrapping_sub(l.bias);
        if !l.elf.extent().is_some_and(|r| r.contains(&svma)) {
            return None;
        }
        let (name, off) = l.elf.data_at(svma)?;
        Some(if off == 0 {
            name.to_string()
        } else {
            format!("{name}+{off}")
        })
    }

    /// The frame at `pc` (for caller frames: the return address minus one), symbolised once.
    fn frame(&mut self, pc: u64, obj: usize) -> NativeFrame {
        if let Some(f) = self.frames.get(&pc) {
            return f.clone();
        }
        let l = &self.loaded[obj];
        let svma = pc.wrapping_sub(l.bias);
        let (function, offset) = match l.elf.function_at(svma) {
            Some((n, off)) => (Some(n.to_string()), off),
            None => (None, svma),
        };
        let (file, line) = match l.elf.location(svma) {
            Some((f, line)) => (Some(f), line),
            None => (None, None),
        };
        let f = NativeFrame {
            pc,
            function,
            offset,
            object: l.path.clone(),
            file,
            line,
        };
        self.frames.insert(pc, f.clone());
        f
    }

    /// Unwinds one thread from `start`; `stack` is a copy of its stack from the stack pointer
    /// (reads outside it go to `mem`). Returns the frames, innermost first, and why unwinding
    /// stopped early when it did (reaching Go code or the stack's end is not early).
    pub fn unwind<M: Memory + ?Sized>(
        &mut self,
        mem: &M,
        start: StartRegs,
        stack: Option<&StackCopy>,
    ) -> (Vec<NativeFrame>, Option<String>) {
        let mut frames: Vec<NativeFrame> = Vec::new();
        let mut regs = UnwindRegsX86_64::new(start.pc, start.sp, start.bp.unwrap_or(0));
        let mut addr = FrameAddress::from_instruction_pointer(start.pc);
        let mut single = 0usize;
        let mut read_stack = |a: u64| -> Result<u64, ()> {
            if let Some(w) = stack.and_then(|s| s.word(a)) {
                return Ok(w);
            }
            if single >= MAX_SINGLE_READS {
                return Err(());
            }
            single += 1;
            mem.read_u64(a).map_err(|_| ())
        };
        let note = loop {
            if frames.len() >= MAX_FRAMES {
                break Some(format!("cut at {MAX_FRAMES} frames"));
            }
            let pc = addr.address_for_lookup();
            if pc == 0 || (self.is_go)(pc) {
                break None;
            }
            let Some(obj) = self.object_at(pc) else {
                let what = match self.mapping_index(pc) {
                    Some(i) => match &self.maps[i].path {
                        Some(p) => format!("in {} (no readable object)", p.display()),
                        None => "in anonymous memory (generated code?)".to_string(),
                    },
                    None => "not mapped".to_string(),
                };
                break Some(format!("stopped at pc {pc:#x}: {what}"));
            };
            frames.push(self.frame(pc, obj));
            let sp_before = regs.sp();
            match self
                .unwinder
                .unwind_frame(addr, &mut regs, &mut self.cache, &mut read_stack)
            {
                Ok(Some(ret)) => {
                    if regs.sp() <= sp_before {
                        break Some(format!(
                            "stopped after {}: the stack pointer did not advance",
                            frame_name(frames.last())
                        ));
                    }
                    match FrameAddress::from_return_address(ret) {
                        Some(a) => addr = a,
                        None => break None,
                    }
                }
                // The unwind information says this is the outermost frame (thread start).
                Ok(None) => break None,
                Err(e) => break Some(format!("stopped after {}: {e}", frame_name(frames.last()))),
            }
        };
        (frames, note)
    }
}

fn frame_name(f: Option<&NativeFrame>) -> String {
    match f {
        Some(NativeFrame {
            function: Some(n), ..
        }) => n.clone(),
        Some(f) => format!("{:#x}", f.pc),
        None => "the first frame".to_string(),
    }
}

/// Splits the buffer of a vectored read back into one copy per request (`None` where the read
/// failed).
pub(crate) fn split_copies(reqs: &[ReadReq], buf: &[u8], ok: &[bool]) -> Vec<Option<StackCopy>> {
    let mut at = 0usize;
    let mut out = Vec::with_capacity(reqs.len());
    for (k, r) in reqs.iter().enumerate() {
        let range: Range<usize> = at..at + r.len;
        at += r.len;
        out.push(ok.get(k).copied().unwrap_or(false).then(|| StackCopy {
            addr: r.addr,
            bytes: buf[range].to_vec(),
        }));
    }
    out
}

/// Where each thread's native unwinding can start when the target is not paused: the registers
/// `/proc/…/syscall` shows for a thread blocked in the kernel.
pub fn syscall_start(t: &ThreadInfo) -> Option<StartRegs> {
    let s = t.syscall?;
    (s.sp != 0 && s.pc != 0).then_some(StartRegs {
        pc: s.pc,
        sp: s.sp,
        bp: None,
    })
}

/// Fills `native_stack` and `native_note` of every thread in native code: threads Go did not
/// create, threads of Ms in a cgo call, extra Ms back in C (`in_c`), and threads whose pc is
/// outside Go text. `starts` gives each thread's registers and, when they were copied while the
/// target was paused, its stack. Returns how many threads were unwound.
pub fn unwind_threads<P: Memory + Objects + ?Sized>(
    mem: &P,
    nu: &mut NativeUnwinder<'_, P>,
    threads: &mut [ThreadFacts],
    starts: &FxHashMap<i32, (StartRegs, Option<StackCopy>)>,
    in_c: &dyn Fn(i32) -> bool,
) -> usize {
    let mut n = 0;
    for t in threads.iter_mut() {
        let start = starts.get(&t.tid);
        let outside_go = start.is_some_and(|(s, _)| !(nu.is_go)(s.pc));
        if !(t.m.is_none() || t.in_cgo || in_c(t.tid) || outside_go) {
            continue;
        }
        let Some((regs, copy)) = start else {
            t.native_note = Some(if t.state == "R" {
                "running in user code; --pause reads its registers".to_string()
            } else {
                "no registers: /proc/PID/task/TID/syscall was not readable".to_string()
            });
            continue;
        };
        let read;
        let copy = match copy {
            Some(c) => Some(c),
            None => {
                read = nu.read_stack(mem, regs.sp);
                read.as_ref()
            }
        };
        let (frames, note) = nu.unwind(mem, *regs, copy);
        n += 1;
        t.native_note = match note {
            Some(n) => Some(n),
            None if frames.is_empty() => Some("the thread's pc is in Go code".to_string()),
            None => None,
        };
        t.native_stack = frames;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use gostall_access::{FakeMemory, MemError, Perms, TargetError};
    use std::path::PathBuf;

    /// Objects over a fixed list of mappings, bytes from a map.
    struct FakeObjects {
        maps: Vec<Mapping>,
        bytes: FxHashMap<PathBuf, Vec<u8>>,
    }

    impl Objects for FakeObjects {
        fn mappings(&self) -> Result<Vec<Mapping>, TargetError> {
            Ok(self.maps.clone())
        }
        fn object_bytes(&self, m: &Mapping) -> Result<Vec<u8>, TargetError> {
            let p = m.path.clone().unwrap_or_default();
            match self.bytes.get(&p) {
                Some(b) => Ok(b.clone()),
                None => Err(TargetError::Proc {
                    path: p,
                    source: std::io::Error::other("not in the fake"),
                }),
            }
        }
    }

    fn mapping(start: u64, end: u64, path: Option<&str>, inode: u64) -> Mapping {
        Mapping {
            start,
            end,
            perms: Perms {
                read: true,
                write: false,
                exec: true,
                shared: false,
            },
            offset: 0,
            dev_major: 8,
            dev_minor: 1,
            inode,
            path: path.map(PathBuf::from),
            deleted: false,
        }
    }

    #[test]
    fn garbage_gives_notes_not_panics() {
        let objs = FakeObjects {
            maps: vec![
                mapping(0x1000, 0x2000, Some("/lib/libfake.so"), 7),
                mapping(0x2000, 0x3000, Some("/lib/garbage.so"), 8),
                mapping(0x4000, 0x5000, None, 0),
                mapping(0x7000, 0x9000, Some("[stack]"), 0),
            ],
            bytes: [(
                PathBuf::from("/lib/garbage.so"),
                b"\x7fELF garbage".to_vec(),
            )]
            .into_iter()
            .collect(),
        };
        let mut mem = FakeMemory::new();
        mem.add(0x7000, vec![0xffu8; 0x2000]);
        let mut nu = NativeUnwinder::new(&objs, |pc| pc == 0x6000).unwrap();
        let start = |pc| StartRegs {
            pc,
            sp: 0x8000,
            bp: None,
        };
        // Unreadable object, unparsable object, anonymous code, unmapped pc: a note each.
        let (f, note) = nu.unwind(&mem, start(0x1500), None);
        assert!(f.is_empty());
        assert!(note.unwrap().contains("/lib/libfake.so"));
        let (_, note) = nu.unwind(&mem, start(0x2500), None);
        assert!(note.unwrap().contains("garbage.so"));
        assert_eq!(nu.notes.len(), 2, "{:?}", nu.notes);
        let (_, note) = nu.unwind(&mem, start(0x4500), None);
        assert!(note.unwrap().contains("anonymous"));
        let (_, note) = nu.unwind(&mem, start(0xdead_0000), None);
        assert!(note.unwrap().contains("not mapped"));
        // A pc in Go code: nothing to unwind, no note (the caller says why).
        let (f, note) = nu.unwind(&mem, start(0x6000), None);
        assert!(f.is_empty() && note.is_none());
        // Data symbols of unreadable objects, heap, stacks: none.
        assert_eq!(nu.data_symbol(0x1100), None);
        assert_eq!(nu.data_symbol(0x4100), None);
        assert_eq!(nu.data_symbol(0x7100), None);
    }

    #[test]
    fn stack_is_read_in_one_piece_bounded_by_its_mapping() {
        let objs = FakeObjects {
            maps: vec![mapping(0x10000, 0x30000, Some("[stack]"), 0)],
            bytes: FxHashMap::default(),
        };
        let mut mem = FakeMemory::new();
        let bytes: Vec<u8> = (0..0x20000u32).map(|i| i as u8).collect();
        mem.add(0x10000, bytes);
        let nu = NativeUnwinder::new(&objs, |_| false).unwrap();
        // Bounded by the chunk size...
        let r = nu.stack_request(0x10000).unwrap();
        assert_eq!((r.addr, r.len), (0x10000, STACK_CHUNK));
        // ...and by the end of the mapping.
        let c = nu.read_stack(&mem, 0x2fff0).unwrap();
        assert_eq!(c.bytes.len(), 0x10);
        assert_eq!(
            c.word(0x2fff0),
            Some(u64::from_le_bytes([
                0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7
            ]))
        );
        assert_eq!(c.word(0x2fff9), None);
        assert_eq!(c.word(0x2ffe0), None);
        assert!(nu.read_stack(&mem, 0x5000).is_none());
        // An unreadable tail: a smaller piece is read.
        let mut holey = FakeMemory::new();
        holey.add(0x10000, vec![1u8; 0x1000]);
        let c = nu.read_stack(&holey, 0x10000).unwrap();
        assert!(c.bytes.len() <= 0x1000 && c.bytes.len() >= 8);
    }

    #[test]
    fn splits_a_vectored_read() {
        let reqs = [
            ReadReq {
                addr: 0x100,
                len: 4,
            },
            ReadReq {
                addr: 0x200,
                len: 2,
            },
        ];
        let c = split_copies(&reqs, &[1, 2, 3, 4, 5, 6], &[true, false]);
        assert_eq!(c[0].as_ref().unwrap().bytes, [1, 2, 3, 4]);
        assert_eq!(c[0].as_ref().unwrap().addr, 0x100);
        assert!(c[1].is_none());
    }

    /// Our own process standing in for a target: memory through `process_vm_readv`, objects
    /// from our maps.
    struct OwnProcess;

    impl Memory for OwnProcess {
        fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
            let len = buf.len();
            let local = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: len,
            };
            let remote = libc::iovec {
                iov_base: addr as *mut libc::c_void,
                iov_len: len,
            };
            // SAFETY: the kernel checks the remote range and copies into `buf`, which is valid
            // for `len` bytes.
            let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
            if n == len as isize {
                Ok(())
            } else {
                Err(MemError::Unmapped {
                    addr,
                    start: addr,
                    len,
                })
            }
        }
    }

    impl Objects for OwnProcess {
        fn mappings(&self) -> Result<Vec<Mapping>, TargetError> {
            gostall_access::procfs::maps(std::process::id() as i32)
        }
        fn object_bytes(&self, m: &Mapping) -> Result<Vec<u8>, TargetError> {
            let p = m.path.clone().unwrap_or_default();
            if p.as_os_str() == "[vdso]" {
                return Ok(self.read_vec(m.start, m.len() as usize)?);
            }
            std::fs::read(&p).map_err(|source| TargetError::Proc { path: p, source })
        }
    }

    #[inline(never)]
    fn blocked_in_read(fd: i32) {
        let mut b = [0u8; 1];
        // SAFETY: reads at most one byte into a local buffer.
        let n = unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) };
        std::hint::black_box(n);
    }

    #[test]
    fn unwinds_a_real_thread_blocked_in_read_without_stopping_it() {
        // A thread of this test process blocks in read(2) on a pipe; its registers come from
        // /proc/self/task/TID/syscall and its stack through process_vm_readv, as for a target.
        let mut fds = [0i32; 2];
        // SAFETY: pipe writes two descriptors into the array.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            tx.send(unsafe { libc::gettid() }).unwrap();
            blocked_in_read(fds[0]);
        });
        let tid = rx.recv().unwrap();
        let pid = std::process::id() as i32;
        let start = (0..500)
            .find_map(|_| {
                std::thread::sleep(std::time::Duration::from_millis(2));
                let t = gostall_access::procfs::thread(pid, tid).ok()??;
                t.syscall.filter(|s| s.nr == 0).and(syscall_start(&t))
            })
            .expect("the thread blocks in read");
        let mut nu = NativeUnwinder::new(&OwnProcess, |_| false).unwrap();
        let stack = nu.read_stack(&OwnProcess, start.sp);
        let (frames, note) = nu.unwind(&OwnProcess, start, stack.as_ref());
        // Let the thread go.
        // SAFETY: writes one byte from a static buffer.
        unsafe { libc::write(fds[1], b"x".as_ptr().cast(), 1) };
        reader.join().unwrap();
        let names: Vec<&str> = frames
            .iter()
            .map(|f| f.function.as_deref().unwrap_or("?"))
            .collect();
        assert!(names[0].contains("read"), "{names:?}");
        assert!(frames[0].object.contains("libc"), "{:?}", frames[0]);
        let at = names
            .iter()
            .position(|n| n.contains("blocked_in_read"))
            .unwrap_or_else(|| panic!("{names:?}"));
        assert!(
            frames[at].object.contains("gostall_extract"),
            "{:?}",
            frames[at]
        );
        // On through std's thread start to the end of the stack (clone), with no note.
        assert!(frames.len() > at + 2, "{names:?}");
        assert_eq!(note, None, "{names:?}");
        assert!(frames.iter().all(|f| f.pc != 0));
        for fd in fds {
            // SAFETY: closes descriptors this test opened.
            unsafe { libc::close(fd) };
        }
    }
}
