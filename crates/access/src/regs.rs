//! User-mode registers of a stopped thread.

/// The general-purpose registers of an x86-64 thread, as `PTRACE_GETREGS` returns them.
///
/// For Go: `rip`, `rsp` and `rbp` start the unwind; with the register ABI (Go 1.17+) `r14` holds the
/// current `g` while Go code runs, and `fs_base` locates thread-local storage (where the runtime keeps
/// `g` in cgo and C code).
#[allow(missing_docs)] // field names are the architecture's register names
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Regs {
    pub rip: u64,
    pub rsp: u64,
    pub rbp: u64,
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    /// The system call number on entry; `u64::MAX` (-1) when not in a system call.
    pub orig_rax: u64,
    pub eflags: u64,
    pub cs: u64,
    pub ss: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
    pub fs_base: u64,
    pub gs_base: u64,
}

impl Regs {
    /// The program counter (`rip`).
    pub fn pc(&self) -> u64 {
        self.rip
    }

    /// The stack pointer (`rsp`).
    pub fn sp(&self) -> u64 {
        self.rsp
    }

    /// The frame pointer (`rbp`).
    pub fn fp(&self) -> u64 {
        self.rbp
    }
}

#[cfg(target_arch = "x86_64")]
impl From<nix::libc::user_regs_struct> for Regs {
    fn from(r: nix::libc::user_regs_struct) -> Self {
        Regs {
            rip: r.rip,
            rsp: r.rsp,
            rbp: r.rbp,
            rax: r.rax,
            rbx: r.rbx,
            rcx: r.rcx,
            rdx: r.rdx,
            rsi: r.rsi,
            rdi: r.rdi,
            r8: r.r8,
            r9: r.r9,
            r10: r.r10,
            r11: r.r11,
            r12: r.r12,
            r13: r.r13,
            r14: r.r14,
            r15: r.r15,
            orig_rax: r.orig_rax,
            eflags: r.eflags,
            cs: r.cs,
            ss: r.ss,
            ds: r.ds,
            es: r.es,
            fs: r.fs,
            gs: r.gs,
            fs_base: r.fs_base,
            gs_base: r.gs_base,
        }
    }
}

impl Regs {
    /// The general-purpose registers a running Go function may hold a pointer in.
    pub fn gprs(&self) -> [u64; 16] {
        [
            self.rax, self.rbx, self.rcx, self.rdx, self.rsi, self.rdi, self.rbp, self.rsp,
            self.r8, self.r9, self.r10, self.r11, self.r12, self.r13, self.r14, self.r15,
        ]
    }
}
