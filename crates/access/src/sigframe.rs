//! Signal frames: what a thread was doing when a signal handler interrupted it.
//!
//! On x86-64 Linux the kernel delivers a signal by pushing a `struct rt_sigframe` on the stack
//! the handler runs on (the alternate signal stack when one is set, as Go sets on every thread)
//! and entering the handler with `rsp` at it: the return address `pretcode` (the `sa_restorer`
//! trampoline, `mov $15, %rax; syscall`: `rt_sigreturn`), then the `ucontext` — the alternate
//! stack's description (`uc_stack`: where it lies, so an interrupted stack pointer inside it says
//! the interrupted code was another handler), the interrupted registers (`uc_mcontext`) and the
//! signal mask before the handler (`uc_sigmask`) — then the `siginfo`.
//!
//! A Go crash (a fatal signal, or SIGQUIT with `GOTRACEBACK=crash`) leaves every thread in Go's
//! handler: the first relays SIGQUIT to the process until each M has taken it, and each waits
//! there until the process aborts. A kernel core of it shows the handler on every thread; the
//! frame says what the program was doing.

use crate::memory::Memory;
use crate::regs::Regs;

/// Offset of the `ucontext` in the frame (after `pretcode`).
const UC: u64 = 8;
/// In the `ucontext`: flags, link, the alternate stack's flags, registers, mask.
const UC_FLAGS: usize = 0;
const UC_LINK: usize = 8;
const UC_SS_SP: usize = 16;
const UC_SS_FLAGS: usize = 24;
const UC_SS_SIZE: usize = 32;
const UC_MCONTEXT: usize = 40;
const UC_SIGMASK: usize = 296;
/// Offset of the `siginfo` in the frame, and the bytes of the frame read.
const INFO: usize = 312;
const FRAME_LEN: usize = INFO + 16;
/// In `uc_mcontext` (`struct sigcontext`): where `fpstate` points.
const MC_FPSTATE: usize = 184;
/// `uc_stack.ss_flags` (kernels before 4.7 wrote `SS_ONSTACK` when the interrupted code ran on
/// the alternate stack; later ones the flags it was set with).
const SS_ONSTACK: i32 = 1;
const SS_DISABLE: i32 = 2;
const SS_AUTODISARM: i32 = 1 << 31;
/// `uc_flags` the kernel sets: `UC_FP_XSTATE`, `UC_SIGCONTEXT_SS`, `UC_STRICT_RESTORE_SS`.
const UC_FLAGS_KNOWN: u64 = 0x7;
/// `rt_sigreturn`'s trampoline as glibc and Go write it, in the two encodings of
/// `mov $15, %rax` (libgcc and gdb match the first).
const RESTORER: [&[u8]; 2] = [
    &[0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05],
    &[0xb8, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05],
];
/// How far above the stack pointer a frame is looked for: Go's signal stacks are 32 KiB.
const SCAN: u64 = 64 << 10;
/// Handlers nested in handlers followed outward at most.
const MAX_NESTED: usize = 4;
/// `-EINTR`: what a system call the signal interrupted returns when it is not restarted.
const EINTR_RET: u64 = (-4i64) as u64;

/// What a thread's outermost signal handler interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted {
    /// Where the outermost frame lies.
    pub frame: u64,
    /// The signal that handler took.
    pub signo: i32,
    /// The registers the handler interrupted; `orig_rax` is the system call the thread was in
    /// (restarted after the handler, or ended by it with `EINTR`), or -1.
    pub regs: Regs,
    /// The signal mask before the handler.
    pub sig_blocked: u64,
    /// Handlers crossed (1 unless a handler was interrupted by another signal).
    pub depth: usize,
}

/// The frame of the signal handler a thread stopped in (its registers `regs`), followed outward
/// through nested handlers: what the program was doing when the first signal came. `None` when
/// no valid frame lies within 64 KiB above the stack pointer.
pub fn interrupted<M: Memory + ?Sized>(mem: &M, regs: &Regs) -> Option<Interrupted> {
    let mut at = *regs;
    let mut found: Option<Interrupted> = None;
    let mut restorers: Vec<(u64, bool)> = Vec::new();
    for depth in 1..=MAX_NESTED {
        let Some(f) = find_frame(mem, at.rsp, &mut restorers) else {
            break;
        };
        let mut r = f.regs;
        r.fs_base = regs.fs_base;
        r.gs_base = regs.gs_base;
        r.orig_rax = syscall_at(mem, &r).unwrap_or(u64::MAX);
        found = Some(Interrupted {
            frame: f.addr,
            signo: f.signo,
            regs: r,
            sig_blocked: f.mask,
            depth,
        });
        // The interrupted code ran on the alternate stack: it was a handler too.
        let on_altstack = f.ss_flags & SS_DISABLE == 0
            && r.rsp.wrapping_sub(f.ss_sp) < f.ss_size
            && f.ss_size > 0;
        if !on_altstack {
            break;
        }
        at = r;
    }
    found
}

struct Frame {
    addr: u64,
    signo: i32,
    regs: Regs,
    mask: u64,
    ss_flags: i32,
    ss_sp: u64,
    ss_size: u64,
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

fn i32_at(b: &[u8], off: usize) -> i32 {
    i32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

/// The lowest valid frame at or above `sp`.
fn find_frame<M: Memory + ?Sized>(
    mem: &M,
    sp: u64,
    restorers: &mut Vec<(u64, bool)>,
) -> Option<Frame> {
    let start = sp & !7;
    // What is readable of the window, a page at a time.
    let mut window = Vec::new();
    let mut page = [0u8; 4096];
    let mut a = start;
    while a < start.saturating_add(SCAN) {
        let n = (4096 - (a & 4095)) as usize;
        if mem.read(a, &mut page[..n]).is_err() {
            break;
        }
        window.extend_from_slice(&page[..n]);
        let Some(next) = a.checked_add(n as u64) else {
            break;
        };
        a = next;
    }
    let mut off = 0usize;
    while off + FRAME_LEN <= window.len() {
        let addr = start + off as u64;
        // The kernel aligns the frame so that rsp+8 is 16-byte aligned at the handler's entry.
        if addr % 16 == 8 {
            if let Some(f) = frame_at(mem, addr, &window[off..off + FRAME_LEN], restorers) {
                return Some(f);
            }
        }
        off += 8;
    }
    None
}

fn frame_at<M: Memory + ?Sized>(
    mem: &M,
    addr: u64,
    b: &[u8],
    restorers: &mut Vec<(u64, bool)>,
) -> Option<Frame> {
    let uc = UC as usize;
    let flags = u64_at(b, uc + UC_FLAGS);
    let ss_flags = i32_at(b, uc + UC_SS_FLAGS);
    let signo = i32_at(b, INFO);
    let mc = uc + UC_MCONTEXT;
    let fpstate = u64_at(b, mc + MC_FPSTATE);
    let plausible = flags & !UC_FLAGS_KNOWN == 0
        && u64_at(b, uc + UC_LINK) == 0
        && ss_flags & !(SS_ONSTACK | SS_DISABLE | SS_AUTODISARM) == 0
        && (1..=64).contains(&signo)
        // The kernel saves the FPU state above the frame.
        && (fpstate == 0
            || (fpstate >= addr.saturating_add(FRAME_LEN as u64) && fpstate - addr < SCAN));
    if !plausible {
        return None;
    }
    let r = |i: usize| u64_at(b, mc + 8 * i);
    let regs = Regs {
        r8: r(0),
        r9: r(1),
        r10: r(2),
        r11: r(3),
        r12: r(4),
        r13: r(5),
        r14: r(6),
        r15: r(7),
        rdi: r(8),
        rsi: r(9),
        rbp: r(10),
        rbx: r(11),
        rdx: r(12),
        rax: r(13),
        rcx: r(14),
        rsp: r(15),
        rip: r(16),
        eflags: r(17),
        cs: u64::from(u16::from_le_bytes([b[mc + 144], b[mc + 145]])),
        ss: u64::from(u16::from_le_bytes([b[mc + 150], b[mc + 151]])),
        orig_rax: u64::MAX,
        ..Regs::default()
    };
    if regs.rip == 0 || regs.rsp == 0 {
        return None;
    }
    // Last, the costly check: the return address is an rt_sigreturn trampoline.
    let pretcode = u64_at(b, 0);
    let is_restorer = match restorers.iter().find(|(a, _)| *a == pretcode) {
        Some(&(_, ok)) => ok,
        None => {
            let mut code = [0u8; 9];
            let ok = RESTORER.iter().any(|want| {
                mem.read(pretcode, &mut code[..want.len()]).is_ok() && code[..want.len()] == **want
            });
            restorers.push((pretcode, ok));
            ok
        }
    };
    is_restorer.then_some(Frame {
        addr,
        signo,
        regs,
        mask: u64_at(b, uc + UC_SIGMASK),
        ss_flags,
        ss_sp: u64_at(b, uc + UC_SS_SP),
        ss_size: u64_at(b, uc + UC_SS_SIZE),
    })
}

/// The system call a thread was in when a signal interrupted it: at a `syscall` instruction
/// (the kernel moved `rip` back onto it to restart the call after the handler; `rax` holds the
/// number again), or just past one that the signal ended with `-EINTR` — then the number is the
/// immediate of the `mov $nr, %eax` (or `%rax`) right before the instruction, the way libc and
/// Go's runtime make system calls; unknown otherwise.
fn syscall_at<M: Memory + ?Sized>(mem: &M, r: &Regs) -> Option<u64> {
    const SYSCALL: [u8; 2] = [0x0f, 0x05];
    let mut at = [0u8; 2];
    if mem.read(r.rip, &mut at).is_ok() && at == SYSCALL {
        return Some(r.rax);
    }
    if r.rax != EINTR_RET {
        return None;
    }
    let mut before = [0u8; 9];
    mem.read(r.rip.checked_sub(9)?, &mut before).ok()?;
    if before[7..] != SYSCALL {
        return None;
    }
    // `b8 imm32` (mov $imm, %eax) or `48 c7 c0 imm32` (mov $imm, %rax): the immediate in the
    // same four bytes either way.
    (before[2] == 0xb8 || before[..3] == [0x48, 0xc7, 0xc0]).then(|| {
        u64::from(u32::from_le_bytes(
            before[3..7].try_into().expect("4 bytes"),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::FakeMemory;

    const CODE: u64 = 0x40_0000;
    const STACK: u64 = 0x7000_0000;

    /// Code: the trampoline at CODE, a `mov $0xe6, %eax; syscall` at CODE+0x20, a bare
    /// `syscall` at CODE+0x40.
    fn code() -> Vec<u8> {
        let mut c = vec![0xccu8; 0x100];
        c[..9].copy_from_slice(RESTORER[0]);
        c[0x20..0x27].copy_from_slice(&[0xb8, 0xe6, 0x00, 0x00, 0x00, 0x0f, 0x05]);
        c[0x40..0x42].copy_from_slice(&[0x0f, 0x05]);
        c
    }

    /// A frame at `at` interrupting `rip`/`rsp` with `rax`, mask `mask`, signal `signo`; the
    /// alternate stack is the whole test stack.
    fn frame(stack: &mut [u8], at: usize, f: (u64, u64, u64, u64, i32)) {
        let (rip, rsp, rax, mask, signo) = f;
        let put =
            |s: &mut [u8], off: usize, v: u64| s[off..off + 8].copy_from_slice(&v.to_le_bytes());
        let len = stack.len() as u64;
        put(stack, at, CODE);
        put(stack, at + 8, 0x7);
        put(stack, at + 8 + UC_SS_SP, STACK);
        put(stack, at + 8 + UC_SS_SIZE, len);
        let mc = at + 8 + UC_MCONTEXT;
        put(stack, mc + 8 * 13, rax);
        put(stack, mc + 8 * 15, rsp);
        put(stack, mc + 8 * 16, rip);
        put(stack, mc + MC_FPSTATE, STACK + at as u64 + 0x200);
        put(stack, at + 8 + UC_SIGMASK, mask);
        stack[at + INFO..at + INFO + 4].copy_from_slice(&signo.to_le_bytes());
    }

    fn mem(stack: Vec<u8>) -> FakeMemory {
        let mut m = FakeMemory::new();
        m.add(CODE, code()).add(STACK, stack);
        m
    }

    #[test]
    fn a_restarted_call_under_a_handler() {
        let mut s = vec![0u8; 0x4000];
        // Stale words below the frame that almost look like one.
        s[0x108..0x110].copy_from_slice(&CODE.to_le_bytes());
        frame(&mut s, 0x1008, (CODE + 0x40, 0x7100_0000, 0, 1 << 22, 3));
        let m = mem(s);
        let regs = Regs {
            rsp: STACK + 0x80,
            rip: 0x1234,
            fs_base: 0x99,
            ..Regs::default()
        };
        let i = interrupted(&m, &regs).expect("frame");
        assert_eq!(i.frame, STACK + 0x1008);
        assert_eq!(i.signo, 3);
        assert_eq!(i.regs.rip, CODE + 0x40);
        assert_eq!(i.regs.rsp, 0x7100_0000);
        assert_eq!(i.regs.orig_rax, 0, "read(2), restarted");
        assert_eq!(i.regs.fs_base, 0x99);
        assert_eq!(i.sig_blocked, 1 << 22);
        assert_eq!(i.depth, 1);
    }

    #[test]
    fn an_interrupted_sleep_and_a_nested_handler() {
        let mut s = vec![0u8; 0x4000];
        // Inner: SIGABRT raised inside the SIGQUIT handler, which ran on this stack.
        frame(&mut s, 0x808, (0x5555, STACK + 0x2000, 0, u64::MAX, 6));
        // Outer: SIGQUIT interrupting clock_nanosleep, which returns -EINTR.
        frame(
            &mut s,
            0x3008,
            (CODE + 0x27, 0x7100_0000, EINTR_RET, 0x400, 3),
        );
        let m = mem(s);
        let regs = Regs {
            rsp: STACK + 0x10,
            ..Regs::default()
        };
        let i = interrupted(&m, &regs).expect("frame");
        assert_eq!((i.signo, i.depth, i.frame), (3, 2, STACK + 0x3008));
        assert_eq!(
            i.regs.orig_rax, 0xe6,
            "clock_nanosleep, from the mov before the syscall"
        );
        assert_eq!(i.sig_blocked, 0x400);
    }

    #[test]
    fn no_frame() {
        let mut s = vec![0u8; 0x4000];
        // A frame whose return address is no trampoline.
        frame(&mut s, 0x1008, (CODE + 0x40, 0x7100_0000, 0, 0, 3));
        s[0x1008..0x1010].copy_from_slice(&(CODE + 0x40).to_le_bytes());
        let m = mem(s);
        let regs = Regs {
            rsp: STACK,
            ..Regs::default()
        };
        assert_eq!(interrupted(&m, &regs), None);
        // Unreadable stack.
        let regs = Regs {
            rsp: 0x10,
            ..Regs::default()
        };
        assert_eq!(interrupted(&m, &regs), None);
    }
}
