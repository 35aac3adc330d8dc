#!/usr/bin/env python3
"""Seeds for the `corefile` fuzz target (fuzz/fuzz_targets/corefile.rs): small ELF core files.

Written to fuzz/corpus/corefile/ (or the directory given):

- crash.core: built here, as the kernel writes a Go crash: two threads, one stopped in a signal
  handler on its alternate stack (an rt_sigframe whose interrupted context is a system call that
  returned -EINTR), NT_PRSTATUS, NT_PRPSINFO, NT_AUXV (entry point, vDSO), NT_FILE, NT_SIGINFO;
  segments for the executable's first page (code with the rt_sigreturn trampoline), its data, a
  heap page, the stacks, a tiny vDSO, and a library mapping the dump left out (no bytes).
- gdb.core: the same as gdb writes it (a GDB note, a siginfo per thread, no sigframe).
- capture.core: the same with a GOSTALL capture record.
- truncated.core: crash.core cut short in the middle of its memory.
- gcore-small.core: when gdb and a C compiler are at hand, a gcore of a tiny C program, shrunk:
  the notes kept whole, and of the memory only small segments and the stacks the threads stand on.

Every seed stays well under 1 MiB. Run from anywhere:

    python3 scripts/fuzz-core-seeds.py
    cd fuzz && cargo +nightly fuzz run corefile -- -max_total_time=600
"""

import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

PAGE = 4096

EXE = "/nonexistent/fuzzprog"
LIBC = "/nonexistent/libc.so.6"

CODE = 0x400000
DATA = 0x402000
HEAP = 0x600000
ALTSTACK = 0x7000_0000
ALTSTACK_SIZE = 0x8000
STACK = 0x7FFD_0000
STACK_SIZE = 0x4000
VDSO = 0x7FFF_F000
LIB = 0x7F00_0000_0000

NT_PRSTATUS, NT_PRPSINFO, NT_AUXV, NT_SIGINFO, NT_FILE = 1, 3, 6, 0x53494749, 0x46494C45
RESTORER = bytes([0x48, 0xC7, 0xC0, 0x0F, 0, 0, 0, 0x0F, 0x05])
MOV_SYSCALL = bytes([0xB8, 0xE6, 0, 0, 0, 0x0F, 0x05])  # mov $230, %eax; syscall


def note(name, ty, desc):
    name = name + b"\0"
    pad = lambda b: b + b"\0" * (-len(b) % 4)
    return struct.pack("<III", len(name), len(desc), ty) + pad(name) + pad(desc)


REG_ORDER = [
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx",
    "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds",
    "es", "fs", "gs",
]


def prstatus(tid, regs, cursig=0, pending=0, blocked=0):
    d = bytearray(336)
    struct.pack_into("<H", d, 12, cursig)
    struct.pack_into("<QQ", d, 16, pending, blocked)
    struct.pack_into("<iiii", d, 32, tid, 1, tid, tid)
    struct.pack_into("<QQQQ", d, 48, 1, 2500, 0, 1200)
    full = {"cs": 0x33, "ss": 0x2B, "eflags": 0x246, "orig_rax": 2**64 - 1}
    full.update(regs)
    for i, r in enumerate(REG_ORDER):
        struct.pack_into("<Q", d, 112 + 8 * i, full.get(r, 0))
    return note(b"CORE", NT_PRSTATUS, bytes(d))


def prpsinfo(pid, name, args):
    d = bytearray(136)
    d[0] = 0
    d[1] = ord("R")
    struct.pack_into("<IIiiii", d, 16, 0, 0, pid, 1, pid, pid)
    d[40 : 40 + len(name)] = name
    d[56 : 56 + len(args)] = args
    return note(b"CORE", NT_PRPSINFO, bytes(d))


def auxv(pairs):
    d = b"".join(struct.pack("<QQ", k, v) for k, v in pairs) + struct.pack("<QQ", 0, 0)
    return note(b"CORE", NT_AUXV, d)


def nt_file(entries):
    d = struct.pack("<QQ", len(entries), PAGE)
    d += b"".join(struct.pack("<QQQ", s, e, off // PAGE) for s, e, off, _ in entries)
    d += b"".join(p.encode() + b"\0" for _, _, _, p in entries)
    return note(b"CORE", NT_FILE, d)


def siginfo(signo, code, pid):
    d = bytearray(128)
    struct.pack_into("<iii", d, 0, signo, 0, code)
    struct.pack_into("<ii", d, 16, pid, 0)
    return note(b"CORE", NT_SIGINFO, bytes(d))


def rt_sigframe(interrupted, mask, signo, ss_sp, ss_size):
    """pretcode, ucontext (flags, link, stack_t, sigcontext, sigmask), siginfo."""
    f = bytearray(312 + 128)
    struct.pack_into("<Q", f, 0, CODE + 0x100)  # the trampoline
    uc = 8
    struct.pack_into("<QQ", f, uc, 0x7, 0)
    struct.pack_into("<QiiQ", f, uc + 16, ss_sp, 0, 0, ss_size)
    mc = uc + 40
    order = ["r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rdi", "rsi", "rbp", "rbx",
             "rdx", "rax", "rcx", "rsp", "rip", "eflags"]
    for i, r in enumerate(order):
        struct.pack_into("<Q", f, mc + 8 * i, interrupted.get(r, 0))
    struct.pack_into("<HHHH", f, mc + 144, 0x33, 0, 0, 0x2B)
    struct.pack_into("<Q", f, uc + 296, mask)
    struct.pack_into("<iii", f, 312, signo, 0, 0)
    return bytes(f)


def elf_core(notes, loads):
    """loads: (vaddr, memsz, flags, bytes kept)."""
    phnum = 1 + len(loads)
    hdr = bytearray(64)
    hdr[:16] = b"\x7fELF\x02\x01\x01" + b"\0" * 9
    struct.pack_into("<HHIQQQIHHHHHH", hdr, 16, 4, 62, 1, 0, 64, 0, 0, 64, 56, phnum, 64, 0, 0)
    off = 64 + 56 * phnum
    ph = []
    body = bytearray()
    ph.append(struct.pack("<IIQQQQQQ", 4, 0, off, 0, 0, len(notes), 0, 4))
    body += notes
    pos = off + len(notes)
    for vaddr, memsz, flags, data in loads:
        aligned = (pos + 7) & ~7
        body += b"\0" * (aligned - pos)
        pos = aligned
        ph.append(struct.pack("<IIQQQQQQ", 1, flags, pos, vaddr, 0, len(data), memsz, 1))
        body += data
        pos += len(data)
    return bytes(hdr) + b"".join(ph) + bytes(body)


def vdso_image():
    """A minimal ELF shared object header: enough for the object reader to look at."""
    h = bytearray(PAGE)
    h[:16] = b"\x7fELF\x02\x01\x01" + b"\0" * 9
    struct.pack_into("<HHIQQQIHHHHHH", h, 16, 3, 62, 1, VDSO + 0x700, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    struct.pack_into("<IIQQQQQQ", h, 64, 1, 5, 0, VDSO, VDSO, PAGE, PAGE, PAGE)
    return bytes(h)


def code_page():
    c = bytearray(PAGE)
    c[:16] = b"\x7fELF\x02\x01\x01" + b"\0" * 9
    struct.pack_into("<HHIQQQIHHHHHH", c, 16, 2, 62, 1, CODE + 0x200, 64, 0, 0, 64, 56, 0, 64, 0, 0)
    c[0x100 : 0x100 + len(RESTORER)] = RESTORER
    c[0x200 : 0x200 + len(MOV_SYSCALL)] = MOV_SYSCALL
    c[0x300:0x302] = b"\x0f\x05"
    return bytes(c)


def built(kind):
    pid = 4242
    frame_at = ALTSTACK + ALTSTACK_SIZE - 0x800 - 8  # 16-byte aligned + 8, FPU state above
    interrupted = {
        "rip": CODE + 0x207,  # just past the syscall: clock_nanosleep, ended with -EINTR
        "rsp": STACK + 0x3000,
        "rbp": STACK + 0x3100,
        "rax": 2**64 - 4,
        "rdi": 0,
        "rsi": 0,
    }
    alt = bytearray(ALTSTACK_SIZE)
    if kind != "gdb":
        f = rt_sigframe(interrupted, 1 << 22, 3, ALTSTACK, ALTSTACK_SIZE)
        o = frame_at - ALTSTACK
        alt[o : o + len(f)] = f
        struct.pack_into("<Q", alt, o + 8 + 40 + 184, frame_at + 0x400)  # fpstate
    stack = bytearray(STACK_SIZE)
    for i in range(0x3000, STACK_SIZE - 8, 16):
        struct.pack_into("<QQ", stack, i, STACK + i + 16, CODE + 0x300)
    heap = bytearray(PAGE)
    heap[:32] = b"runtime: a heap page of a sort\0\0"
    crash_thread = {"rip": CODE + 0x302, "rsp": frame_at - 0x400, "rbp": frame_at - 0x380,
                    "orig_rax": 234, "rax": 0, "rdi": pid, "rsi": pid, "rdx": 6,
                    "fs_base": 0x7F00_1000_0000}
    other = {"rip": CODE + 0x302, "rsp": STACK + 0x3800, "orig_rax": 7, "rdi": HEAP, "rsi": 2,
             "rdx": 2**64 - 1, "fs_base": 0x7F00_1000_1000}
    blocked_all = 0xFFFFFFFE7FFBFEFF
    notes = b""
    notes += prstatus(pid, crash_thread, cursig=6, blocked=blocked_all)
    if kind == "gdb":
        notes += siginfo(19, 0, 0)
    else:
        notes += siginfo(6, -6, pid)
    notes += prstatus(pid + 1, other, pending=1 << 22, blocked=1 << 22)
    if kind == "gdb":
        notes += siginfo(19, 0, 0)
    notes += prpsinfo(pid, b"fuzzprog", b"/nonexistent/fuzzprog -serve")
    notes += auxv([(6, PAGE), (9, CODE + 0x200), (33, VDSO), (3, CODE + 64)])
    notes += nt_file([
        (CODE, CODE + 0x2000, 0, EXE),
        (DATA, DATA + PAGE, 0x2000, EXE),
        (LIB, LIB + 0x20000, 0, LIBC),
    ])
    if kind == "gdb":
        notes += note(b"GDB", 1, b"<target><architecture>i386:x86-64</architecture></target>")
    if kind == "capture":
        rec = (b'{"version":1,"unix_s":1700000000,"monotonic_ns":5000000000,"paused_us":1200,'
               b'"exe":"/nonexistent/fuzzprog","threads":[{"tid":4243,"name":"worker",'
               b'"state":"S","wchan":"do_sys_poll","kernel_stack":[],"cpu_ns":1,'
               b'"ctx_switches":[1,2],"sig_blocked":4194304,"sig_pending":4194304,'
               b'"preempt_signal_stuck":true,"syscall":[7,"poll(...)"]}],"net":[],'
               b'"signals":null,"memory":null}')
        notes += note(b"GOSTALL", 1, rec)
    data = bytearray(PAGE)
    struct.pack_into("<QQ", data, 0, HEAP, HEAP + 16)
    loads = [
        (CODE, 0x2000, 5, code_page()),  # code: the first page only, as the kernel keeps
        (DATA, PAGE, 6, bytes(data)),
        (HEAP, PAGE, 6, bytes(heap)),
        (ALTSTACK, ALTSTACK_SIZE, 6, bytes(alt)),
        (STACK, STACK_SIZE, 6, bytes(stack)),
        (LIB, 0x20000, 5, b""),  # left out of the dump
        (VDSO, PAGE, 5, vdso_image()),
    ]
    return elf_core(notes, loads)


def u(fmt, b, off):
    return struct.unpack_from(fmt, b, off)


def shrink(core, keep_small=16 << 10, around_sp=32 << 10):
    """Keeps the notes; of the memory, segments of at most `keep_small` bytes and what lies up to
    `around_sp` above each thread's stack pointer; the rest stays mapped with no bytes."""
    phoff, = u("<Q", core, 32)
    phentsize, phnum = u("<HH", core, 54)
    phdrs = [u("<IIQQQQQQ", core, phoff + i * phentsize) for i in range(phnum)]
    notes = b"".join(core[p[2] : p[2] + p[5]] for p in phdrs if p[0] == 4)
    sps = []
    pos = 0
    while pos + 12 <= len(notes):
        namesz, descsz, ty = u("<III", notes, pos)
        d = pos + 12 + ((namesz + 3) & ~3)
        if ty == NT_PRSTATUS and descsz >= 336:
            sps.append(u("<Q", notes, d + 112 + 8 * 19)[0])
        pos = d + ((descsz + 3) & ~3)
    loads = []
    for p in phdrs:
        if p[0] != 1:
            continue
        _, flags, off, vaddr, _, filesz, memsz, _ = p
        data = core[off : off + filesz]
        if filesz <= keep_small:
            loads.append((vaddr, memsz, flags, data))
            continue
        kept = False
        for sp in sps:
            if vaddr <= sp < vaddr + filesz:
                lo = sp & ~(PAGE - 1)
                hi = min(vaddr + filesz, lo + around_sp)
                if lo > vaddr:
                    loads.append((vaddr, lo - vaddr, flags, b""))
                loads.append((lo, hi - lo, flags, data[lo - vaddr : hi - vaddr]))
                if vaddr + memsz > hi:
                    loads.append((hi, vaddr + memsz - hi, flags, b""))
                kept = True
                break
        if not kept:
            loads.append((vaddr, memsz, flags, b""))
    return elf_core(notes, loads)


def gcore_seed(out):
    cc = shutil.which("cc") or shutil.which("gcc")
    gcore = shutil.which("gcore")
    if not cc or not gcore:
        print("no C compiler or gcore: gcore-small.core not written", file=sys.stderr)
        return
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "idle.c")
        exe = os.path.join(tmp, "idle")
        with open(src, "w") as f:
            f.write(
                "#include <pthread.h>\n#include <unistd.h>\n"
                "static void *idle(void *a) { (void)a; for (;;) pause(); }\n"
                "int main(void) { pthread_t t; pthread_create(&t, 0, idle, 0);"
                " for (;;) pause(); }\n"
            )
        subprocess.run([cc, "-O1", "-g0", "-pthread", "-o", exe, src], check=True)
        p = subprocess.Popen([exe])
        try:
            time.sleep(0.3)
            subprocess.run([gcore, "-o", os.path.join(tmp, "gc"), str(p.pid)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        finally:
            p.send_signal(signal.SIGKILL)
            p.wait()
        with open(os.path.join(tmp, f"gc.{p.pid}"), "rb") as f:
            core = f.read()
    small = shrink(core)
    if len(small) >= 1 << 20:
        small = shrink(core, keep_small=4096, around_sp=8 << 10)
    with open(os.path.join(out, "gcore-small.core"), "wb") as f:
        f.write(small)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "fuzz", "corpus", "corefile")
    os.makedirs(out, exist_ok=True)
    seeds = {k: built(k) for k in ("crash", "gdb", "capture")}
    seeds["truncated"] = seeds["crash"][: len(seeds["crash"]) - 0x5000]
    for k, v in seeds.items():
        with open(os.path.join(out, f"{k}.core"), "wb") as f:
            f.write(v)
    gcore_seed(out)
    for n in sorted(os.listdir(out)):
        size = os.path.getsize(os.path.join(out, n))
        if n.endswith(".core"):
            print(f"{n}: {size} bytes")


if __name__ == "__main__":
    main()
