//! Everything gostall knows about the Go runtime that depends on the Go version or on runtime internals.
//!
//! Sources and rules never compare Go version strings or runtime function names themselves: they ask
//! this crate. Ground truth is `$GOROOT/src/runtime` of each supported toolchain (1.21–1.27):
//! `gStatusStrings` and `waitReasonStrings` in `runtime2.go`/`traceback.go`, and the call paths
//! through which goroutines park.
#![deny(missing_docs)]

pub mod defers;
pub mod globals;
pub mod layout;
pub mod signals;
pub mod tables;

use gostall_model::{GoState, WaitReason};

/// Go versions gostall supports, oldest first.
pub const SUPPORTED_GO: &[&str] = &[
    "1.21.13", "1.22.10", "1.23.9", "1.24.11", "1.25.5", "1.26.6", "1.27.3",
];

/// The meaning of the status text inside a goroutine header's brackets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Scheduler state.
    pub state: GoState,
    /// Wait reason, for parked goroutines (and syscall).
    pub wait_reason: Option<WaitReason>,
    /// The reason carried a `(durable)` suffix (synctest, Go ≥ 1.25).
    pub durable: bool,
}

/// Interprets the status word(s) printed in a goroutine header, e.g. `chan receive`, `syscall`,
/// `sync.WaitGroup.Wait (durable)`. Unknown text yields a waiting goroutine with [`WaitReason::Other`]:
/// every reason Go prints is one the goroutine waits for.
pub fn parse_status(text: &str) -> Status {
    let (text, durable) = match text.strip_suffix(" (durable)") {
        Some(t) => (t, true),
        None => (text, false),
    };
    let w = |r| Status {
        state: GoState::Waiting,
        wait_reason: Some(r),
        durable,
    };
    let s = |state| Status {
        state,
        wait_reason: None,
        durable,
    };
    use WaitReason::*;
    match text {
        // gStatusStrings
        "idle" => s(GoState::Idle),
        "runnable" => s(GoState::Runnable),
        "running" => s(GoState::Running),
        "syscall" => Status {
            state: GoState::Syscall,
            wait_reason: Some(Syscall),
            durable,
        },
        "waiting" => w(Other),
        "dead" | "moribund_unused" | "enqueue_unused" => s(GoState::Dead),
        "copystack" | "preempted" => s(GoState::Preempted),
        "leaked" => w(Other),
        "waiting for cgo callback" => s(GoState::Idle),
        // waitReasonStrings
        "chan receive" => w(ChanReceive),
        "chan receive (nil chan)" => w(ChanReceiveNil),
        "chan send" => w(ChanSend),
        "chan send (nil chan)" => w(ChanSendNil),
        "select" => w(Select),
        "select (no cases)" => w(SelectNoCases),
        "sync.Mutex.Lock" => w(MutexLock),
        "sync.RWMutex.Lock" => w(RWMutexLock),
        "sync.RWMutex.RLock" => w(RWMutexRLock),
        "sync.WaitGroup.Wait" => w(WaitGroupWait),
        "sync.Cond.Wait" => w(CondWait),
        "semacquire" => w(Semacquire),
        "IO wait" => w(IoWait),
        "sleep" => w(Sleep),
        "synctest.Run" | "synctest.Wait" => w(Synctest),
        "GC assist marking"
        | "dumping heap"
        | "garbage collection"
        | "garbage collection scan"
        | "panicwait"
        | "GC assist wait"
        | "GC sweep wait"
        | "GC scavenge wait"
        | "finalizer wait"
        | "force gc (idle)"
        | "GOMAXPROCS updater (idle)"
        | "trace reader (blocked)"
        | "wait for GC cycle"
        | "GC worker (idle)"
        | "GC worker (active)"
        | "debug call"
        | "GC mark termination"
        | "stopping the world"
        | "flushing proc caches"
        | "trace goroutine status"
        | "trace proc status"
        | "page trace flush"
        | "GC weak to strong wait"
        | "cleanup wait"
        | "timer goroutine (idle)" => w(Runtime),
        "coroutine" => w(Other),
        _ => w(Other),
    }
}

/// Where a function's code comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeOrigin {
    /// The Go runtime itself (`runtime.*`, `internal/runtime/*`).
    Runtime,
    /// The standard library.
    Stdlib,
    /// The program's own code or its dependencies.
    User,
}

/// The import path of a fully qualified Go function name:
/// `net/http.(*conn).serve` → `net/http`, `main.main.func1` → `main`,
/// `github.com/a/b.(*T).M` → `github.com/a/b`.
pub fn package_of(function: &str) -> &str {
    let last_slash = function.rfind('/').map(|i| i + 1).unwrap_or(0);
    match function[last_slash..].find('.') {
        Some(dot) => &function[..last_slash + dot],
        None => function,
    }
}

/// Classifies a function by its package: the runtime, the standard library (first path element has
/// no dot and is not `main`), or user code.
pub fn code_origin(function: &str) -> CodeOrigin {
    let pkg = package_of(function);
    if pkg == "runtime"
        || pkg.starts_with("runtime/internal/")
        || pkg.starts_with("internal/runtime/")
        || function.starts_with("runtime.")
    {
        return CodeOrigin::Runtime;
    }
    if pkg == "main" || pkg.starts_with("main/") {
        return CodeOrigin::User;
    }
    let first = pkg.split('/').next().unwrap_or(pkg);
    if first.contains('.') || first.is_empty() {
        CodeOrigin::User
    } else if first.starts_with("_cgo")
        || function.starts_with("_cgo")
        || function.starts_with("C.")
    {
        CodeOrigin::Runtime
    } else {
        CodeOrigin::Stdlib
    }
}

/// Is this function part of the user's program (not runtime, not standard library, not a cgo
/// trampoline such as `main._Cfunc_read`)?
pub fn is_user_function(function: &str) -> bool {
    code_origin(function) == CodeOrigin::User && !is_cgo_wrapper(function)
}

/// Runtime functions whose first argument, as a goroutine dump prints it, is the object the
/// goroutine waits on: the semaphore of a lock or WaitGroup, the channel of a send or receive,
/// a `Cond`'s notify list. Equal values in one dump are the same object.
pub fn waits_on_first_arg(function: &[u8]) -> bool {
    matches!(
        function,
        b"runtime.semacquire1"
            | b"runtime.chanrecv"
            | b"runtime.chansend"
            | b"sync.runtime_notifyListWait"
    )
}

/// What tells the application's own code from its dependencies.
#[derive(Debug, Clone, Default)]
pub struct AppCode {
    /// The main module's path, from the binary's build information (live reads).
    pub main_module: Option<String>,
    /// The directory of the main package's source files, from a frame of package `main`
    /// (dumps): the application's other packages sit in the same source tree.
    pub main_dir: Option<String>,
}

impl AppCode {
    /// Is this frame the application's own code — its main module — rather than a dependency?
    ///
    /// With the main module's path (from the binary's build information), a function belongs to
    /// it when its package is `main` or lies under that path. Without it (dumps), a package
    /// belongs to the application when its source directory sits in the main package's tree
    /// the way a module lays out its packages — the directory, relative to an ancestor of the
    /// main package's directory, is the tail of the import path (`…/app/internal/db` for
    /// `example.com/app/internal/db`) — and not in the module cache or a vendor directory.
    pub fn is_app(&self, function: &str, file: &str) -> bool {
        if !is_user_function(function) {
            return false;
        }
        let pkg = package_of(function);
        if pkg == "main" {
            return true;
        }
        if let Some(m) = self
            .main_module
            .as_deref()
            .filter(|m| !m.is_empty() && *m != "command-line-arguments")
        {
            return pkg == m || pkg.strip_prefix(m).is_some_and(|r| r.starts_with('/'));
        }
        if file.contains("/pkg/mod/") || file.contains("/vendor/") || has_module_version(file) {
            return false;
        }
        let Some(main_dir) = self.main_dir.as_deref() else {
            return true;
        };
        let dir = file.rsplit_once('/').map_or("", |(d, _)| d);
        // The deepest common ancestor of the two directories.
        let mut common = 0;
        for (i, (a, b)) in main_dir.bytes().zip(dir.bytes()).enumerate() {
            if a != b {
                break;
            }
            if a == b'/' {
                common = i;
            }
        }
        if main_dir.len() == dir.len() && main_dir == dir {
            return true;
        }
        if dir.len() > common
            && dir.as_bytes().get(common) == Some(&b'/')
            && main_dir.starts_with(dir)
        {
            // The package's directory is an ancestor of main's: the module root.
            return common > 0;
        }
        let rel = dir.get(common + 1..).unwrap_or("");
        common > 0 && !rel.is_empty() && (pkg == rel || pkg.ends_with(&format!("/{rel}")))
    }
}

/// Is this frame the application's own code (see [`AppCode::is_app`]), with only the main
/// module's path known?
pub fn is_app_code(function: &str, file: &str, main_module: Option<&str>) -> bool {
    AppCode {
        main_module: main_module.map(str::to_string),
        main_dir: None,
    }
    .is_app(function, file)
}

/// A path element like `pq@v1.10.7`: a module cache directory.
fn has_module_version(file: &str) -> bool {
    file.split('/').any(|e| {
        e.split_once("@v").is_some_and(|(name, v)| {
            !name.is_empty() && v.starts_with(|c: char| c.is_ascii_digit())
        })
    })
}

/// cgo-generated trampolines (`main._Cfunc_foo`, `main._cgo_...`, `_cgoexp_...`).
pub fn is_cgo_wrapper(function: &str) -> bool {
    let name = &function[package_of(function).len()..];
    name.starts_with("._Cfunc_")
        || name.starts_with("._cgo")
        || name.starts_with("._Cmacro_")
        || function.starts_with("_cgo")
}

/// The C function a cgo trampoline calls: `main._Cfunc_tc_render` → `tc_render`,
/// `net._C2func_getaddrinfo` (the variant that also returns errno) → `getaddrinfo`; `_CMalloc`
/// (behind `C.CString`, `C.CBytes` and `C.malloc`) → `malloc`. `None` for other functions and for
/// cgo's own helpers.
pub fn cgo_c_function(function: &str) -> Option<&str> {
    let name = &function[package_of(function).len()..];
    let c = name
        .strip_prefix("._Cfunc_")
        .or_else(|| name.strip_prefix("._C2func_"))?;
    match c {
        "_CMalloc" => Some("malloc"),
        c if c.is_empty() || c.starts_with('_') => None,
        c => Some(c),
    }
}

/// A frame that shows a goroutine is in a cgo call: the runtime's entry (`runtime.cgocall`, shown
/// in crash dumps) or the generated trampoline (`main._Cfunc_x`, the innermost frame `debug=2`
/// prints).
pub fn is_cgocall(function: &str) -> bool {
    matches!(function, "runtime.cgocall" | "runtime.asmcgocall")
        || function[package_of(function).len()..].starts_with("._Cfunc_")
}

/// Runtime frames at the bottom of a goroutine that C code called into Go through an exported
/// function (`//export`): the callback runs on the calling C thread, bound to an extra M.
pub fn is_cgo_callback(function: &str) -> bool {
    matches!(
        function,
        "runtime.cgocallback" | "runtime.cgocallbackg" | "runtime.cgocallbackg1"
    ) || function.starts_with("_cgoexp_")
        || function.contains("._cgoexp_")
}

/// Where the C caller of a running callback from C into Go left off, from the extra M's `g0`.
///
/// `runtime.cgocallback` (asm_amd64.s, the same in Go 1.21–1.27) runs on the C thread's stack
/// (the M's `g0`) and, before switching to the goroutine, stores its own stack pointer — after its
/// prologue — in `g0.sched.sp`. Above that frame is the return address into `crosscall2`, whose
/// frame (the C callee-saved registers and the arguments) sits below the return address into the C
/// code that called the exported function. Frame sizes come from the pclntab: `cgocallback_frame`
/// is `runtime.cgocallback`'s frame size, `sp_delta(pc)` the SP delta of the Go function at `pc`.
/// Returns the C return address and the stack pointer after it (CFA), where native unwinding goes
/// on; `None` when anything read does not fit.
pub fn cgo_callback_c_caller(
    g0_sched_sp: u64,
    cgocallback_frame: u64,
    sp_delta: impl Fn(u64) -> Option<u64>,
    is_go: impl Fn(u64) -> bool,
    read_u64: impl Fn(u64) -> Option<u64>,
) -> Option<(u64, u64)> {
    if g0_sched_sp == 0 {
        return None;
    }
    let mut sp = g0_sched_sp.checked_add(cgocallback_frame)?;
    let mut pc = read_u64(sp)?;
    sp = sp.checked_add(8)?;
    // crosscall2 (and a trampoline in front of it in some versions): Go assembly, in the pclntab.
    for _ in 0..4 {
        if !is_go(pc) {
            return Some((pc, sp));
        }
        let d = sp_delta(pc.checked_sub(1)?)?;
        sp = sp.checked_add(d)?;
        pc = read_u64(sp)?;
        sp = sp.checked_add(8)?;
    }
    None
}

/// C functions that belong to the cgo machinery rather than the program's own C code
/// (`crosscall2`, `_cgo_…`, `x_cgo_…`, `_cgoexp_…`).
pub fn is_cgo_machinery(c_function: &str) -> bool {
    c_function.starts_with("_cgo")
        || c_function.starts_with("x_cgo")
        || c_function.starts_with("crosscall")
        || c_function.contains("._Cfunc_")
        || c_function.contains("._cgo")
}

/// Functions through which a goroutine enters a raw system call that holds its OS thread.
pub fn is_raw_syscall(function: &str) -> bool {
    matches!(
        function,
        "syscall.Syscall"
            | "syscall.Syscall6"
            | "syscall.RawSyscall"
            | "syscall.RawSyscall6"
            | "syscall.syscall"
            | "syscall.rawsyscall"
            | "internal/runtime/syscall.Syscall6"
            | "runtime/internal/syscall.Syscall6"
            | "syscall.rawSyscallNoError"
            | "internal/runtime/syscall/linux.Syscall6"
    )
}

/// Functions a goroutine waiting for network readiness sits in.
pub fn is_netpoll_wait(function: &str) -> bool {
    matches!(
        function,
        "internal/poll.runtime_pollWait"
            | "runtime.netpollblock"
            | "internal/poll.(*pollDesc).wait"
    )
}

/// Network operations on a connection (as opposed to `Accept`): evidence that a goroutine is waiting
/// for a peer.
pub fn net_io_op(function: &str) -> Option<&'static str> {
    Some(match function {
        "net.(*conn).Read"
        | "net.(*netFD).Read"
        | "net.(*TCPConn).Read"
        | "net.(*UDPConn).Read" => "read",
        "net.(*conn).Write" | "net.(*netFD).Write" => "write",
        "net.(*netFD).readFrom" | "net.(*UDPConn).ReadFrom" | "net.(*UDPConn).ReadFromUDP" => {
            "read"
        }
        "net.(*netFD).accept" | "net.(*TCPListener).Accept" | "net.(*UnixListener).Accept" => {
            "accept"
        }
        _ => return None,
    })
}

/// Functions of the standard library's network servers: a goroutine with one of these on its
/// stack serves a listener or a connection, so the program can still be woken by a request even
/// when the dump caught that goroutine runnable between two `Accept`s or reads.
pub fn is_network_server(function: &str) -> bool {
    matches!(
        function,
        "net/http.(*Server).Serve" | "net/http.(*conn).serve" | "net/rpc.(*Server).Accept"
    )
}

/// Does this stack sit in a listener's `Accept`?
pub fn is_accept(function: &str) -> bool {
    net_io_op(function) == Some("accept")
}

/// Lock-release functions: the mutex profile records contention where the holder unlocks, the block
/// profile where the waiter waited, so these at the top of a sample's stack mark a mutex profile.
pub fn is_unlock_function(f: &str) -> bool {
    matches!(
        f,
        "sync.(*Mutex).Unlock"
            | "sync.(*Mutex).unlockSlow"
            | "internal/sync.(*Mutex).Unlock"
            | "internal/sync.(*Mutex).unlockSlow"
            | "sync.(*RWMutex).Unlock"
            | "sync.(*RWMutex).RUnlock"
            | "sync.(*RWMutex).rUnlockSlow"
            | "sync.runtime_Semrelease"
            | "internal/sync.runtime_Semrelease"
            | "runtime.semrelease1"
            | "runtime.unlock"
            | "runtime.unlock2"
            | "runtime.unlockWithRank"
            | "runtime._LostContendedRuntimeLock"
    )
}

/// Refines a wait reason using the stack (function names, innermost first). Go ≤ 1.23 prints
/// `semacquire` for WaitGroup waits, and older versions do not distinguish RWMutex read and write
/// locks; the frames do.
pub fn refine_wait_reason<'a>(
    reason: WaitReason,
    functions: impl Iterator<Item = &'a str> + Clone,
) -> WaitReason {
    use WaitReason::*;
    match reason {
        Semacquire | MutexLock | RWMutexLock | RWMutexRLock | CondWait => {
            sync_reason_from_stack(functions).unwrap_or(reason)
        }
        // The signal loop shows as `[syscall]` in dumps (signal_recv sleeps in
        // notetsleepg) and as `[select]`/`[chan receive]` in some versions.
        Select | ChanReceive | Syscall
            if functions.clone().any(|f| f == "os/signal.signal_recv") =>
        {
            Signal
        }
        Other => infer_from_stack(functions)
            .and_then(|(_, r)| r)
            .unwrap_or(Other),
        r => r,
    }
}

/// The sync primitive a goroutine waits on, from the first `sync.` frame of its stack.
fn sync_reason_from_stack<'a>(functions: impl Iterator<Item = &'a str>) -> Option<WaitReason> {
    use WaitReason::*;
    for f in functions {
        let r = match f {
            "sync.(*WaitGroup).Wait" => WaitGroupWait,
            "sync.(*Mutex).Lock" | "sync.(*Mutex).lockSlow" | "internal/sync.(*Mutex).Lock" => {
                MutexLock
            }
            "sync.(*RWMutex).Lock" => RWMutexLock,
            "sync.(*RWMutex).RLock" => RWMutexRLock,
            "sync.(*Cond).Wait" => CondWait,
            _ => continue,
        };
        return Some(r);
    }
    None
}

/// Infers state and wait reason from a stack alone (pprof goroutine profiles and `debug=1` dumps
/// carry no status). Returns `None` when the stack does not show where the goroutine parks.
pub fn infer_from_stack<'a>(
    functions: impl Iterator<Item = &'a str> + Clone,
) -> Option<(GoState, Option<WaitReason>)> {
    use WaitReason::*;
    let waiting = |r| Some((GoState::Waiting, Some(r)));
    for f in functions.clone().take(12) {
        match f {
            "runtime.cgocall" | "runtime.asmcgocall" => return Some((GoState::Syscall, Some(Cgo))),
            f if is_raw_syscall(f) => return Some((GoState::Syscall, Some(Syscall))),
            "runtime.chanrecv" | "runtime.chanrecv1" | "runtime.chanrecv2" => {
                return waiting(ChanReceive)
            }
            "runtime.chansend" | "runtime.chansend1" => return waiting(ChanSend),
            "runtime.selectgo" => {
                if functions.clone().any(|f| f == "os/signal.signal_recv") {
                    return waiting(Signal);
                }
                return waiting(Select);
            }
            "runtime.block" => return waiting(SelectNoCases),
            "time.Sleep" => return waiting(Sleep),
            "os/signal.signal_recv" => return waiting(Signal),
            "sync.runtime_SemacquireMutex"
            | "internal/sync.runtime_SemacquireMutex"
            | "sync.runtime_SemacquireRWMutex"
            | "sync.runtime_SemacquireRWMutexR"
            | "sync.runtime_Semacquire"
            | "sync.runtime_SemacquireWaitGroup"
            | "sync.runtime_notifyListWait" => {
                return waiting(sync_reason_from_stack(functions).unwrap_or(Semacquire))
            }
            f if is_netpoll_wait(f) => return waiting(IoWait),
            "runtime.bgsweep"
            | "runtime.bgscavenge"
            | "runtime.runfinq"
            | "runtime.runFinalizers"
            | "runtime.forcegchelper"
            | "runtime.gcBgMarkWorker"
            | "runtime.runCleanups"
            | "runtime.unique_runtime_registerUniqueMapCleanup.func1"
            | "runtime.(*scavengerState).park"
            | "runtime.updateMaxProcsGoroutine" => return waiting(Runtime),
            _ => {}
        }
    }
    None
}

/// Goroutines that belong to the runtime's own machinery (GC, finalizers, scavenger, signal
/// forwarding): present in every program and never a finding by themselves.
pub fn is_runtime_housekeeping<'a>(functions: impl Iterator<Item = &'a str>) -> bool {
    let mut any = false;
    for f in functions {
        any = true;
        if code_origin(f) == CodeOrigin::User {
            return false;
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_code_is_the_main_module() {
        let m = Some("example.com/billing");
        assert!(is_app_code("main.loadInvoices", "/src/billing/main.go", m));
        assert!(is_app_code(
            "example.com/billing/internal/db.(*Store).Get",
            "/src/billing/internal/db/store.go",
            m
        ));
        assert!(!is_app_code(
            "example.com/billingx/db.Get",
            "/src/x/db.go",
            m
        ));
        assert!(!is_app_code(
            "github.com/lib/pq.(*conn).recvMessage",
            "/usr/share/gocode/src/github.com/lib/pq/conn.go",
            m
        ));
        assert!(!is_app_code(
            "database/sql.(*DB).conn",
            "/go/src/database/sql/sql.go",
            m
        ));
        assert!(!is_app_code("main._Cfunc_read", "_cgo_gotypes.go", m));
        // Without build information: the module cache and vendor directories are dependencies.
        assert!(!is_app_code(
            "github.com/lib/pq.(*conn).recvMessage",
            "/root/go/pkg/mod/github.com/lib/pq@v1.10.7/conn.go",
            None
        ));
        assert!(!is_app_code(
            "github.com/lib/pq.(*conn).recvMessage",
            "github.com/lib/pq@v1.10.7/conn.go",
            None
        ));
        assert!(!is_app_code(
            "github.com/x/y.F",
            "/src/app/vendor/github.com/x/y/y.go",
            None
        ));
        assert!(is_app_code(
            "example.com/billing/internal/db.Get",
            "/src/billing/internal/db/db.go",
            None
        ));
        assert!(is_app_code(
            "main.f",
            "/tmp/x@v1/main.go",
            Some("command-line-arguments")
        ));
    }

    #[test]
    fn app_code_in_dumps_is_the_main_package_tree() {
        let app = AppCode {
            main_module: None,
            main_dir: Some("/work/svc/cmd/server".into()),
        };
        assert!(app.is_app(
            "example.com/svc/internal/db.Get",
            "/work/svc/internal/db/db.go"
        ));
        assert!(app.is_app("example.com/svc.Helper", "/work/svc/helper.go"));
        assert!(!app.is_app(
            "github.com/gomodule/redigo/redis.(*Pool).Get",
            "/usr/share/gocode/src/github.com/gomodule/redigo/redis/pool.go"
        ));
        assert!(!app.is_app("github.com/x/y.F", "/root/go/src/github.com/x/y/y.go"));
        // -trimpath: files are named by import path.
        let trim = AppCode {
            main_module: None,
            main_dir: Some("example.com/svc/cmd/server".into()),
        };
        assert!(trim.is_app(
            "example.com/svc/internal/db.Get",
            "example.com/svc/internal/db/db.go"
        ));
        assert!(!trim.is_app(
            "github.com/gomodule/redigo/redis.(*Pool).Get",
            "github.com/gomodule/redigo@v1.8.3/redis/pool.go"
        ));
    }

    #[test]
    fn cgo_trampolines_name_their_c_function() {
        assert_eq!(cgo_c_function("main._Cfunc_tc_render"), Some("tc_render"));
        assert_eq!(
            cgo_c_function("net._C2func_getaddrinfo"),
            Some("getaddrinfo")
        );
        assert_eq!(cgo_c_function("main._Cfunc__CMalloc"), Some("malloc"));
        assert_eq!(
            cgo_c_function("github.com/mattn/go-sqlite3._Cfunc_sqlite3_open_v2"),
            Some("sqlite3_open_v2")
        );
        assert_eq!(cgo_c_function("main._cgo_cmalloc"), None);
        assert_eq!(cgo_c_function("main._Cfunc__Cmacro_x"), None);
        assert_eq!(cgo_c_function("main.render"), None);
    }

    #[test]
    fn packages() {
        assert_eq!(package_of("net/http.(*conn).serve"), "net/http");
        assert_eq!(package_of("main.main.func1"), "main");
        assert_eq!(package_of("github.com/a/b.(*T).M"), "github.com/a/b");
        assert_eq!(package_of("example.com/x/y.F[...]"), "example.com/x/y");
        assert_eq!(code_origin("runtime.gopark"), CodeOrigin::Runtime);
        assert_eq!(
            code_origin("internal/runtime/syscall.Syscall6"),
            CodeOrigin::Runtime
        );
        assert_eq!(code_origin("sync.(*Mutex).Lock"), CodeOrigin::Stdlib);
        assert_eq!(code_origin("net/http.(*conn).serve"), CodeOrigin::Stdlib);
        assert_eq!(code_origin("main.(*Cache).Get"), CodeOrigin::User);
        assert_eq!(
            code_origin("golang.org/x/sync/errgroup.(*Group).Wait"),
            CodeOrigin::User
        );
        assert!(!is_user_function("main._Cfunc_read"));
        assert!(is_user_function("main.(*LicenseClient).Check"));
    }

    #[test]
    fn statuses_and_refinement() {
        assert_eq!(
            parse_status("semacquire").wait_reason,
            Some(WaitReason::Semacquire)
        );
        let st = parse_status("chan receive (durable)");
        assert!(st.durable);
        assert_eq!(st.wait_reason, Some(WaitReason::ChanReceive));
        assert_eq!(parse_status("syscall").state, GoState::Syscall);
        let stack = [
            "runtime.gopark",
            "runtime.semacquire1",
            "sync.runtime_Semacquire",
            "sync.(*WaitGroup).Wait",
            "main.main",
        ];
        assert_eq!(
            refine_wait_reason(WaitReason::Semacquire, stack.iter().copied()),
            WaitReason::WaitGroupWait
        );
        assert_eq!(
            infer_from_stack(stack.iter().copied()),
            Some((GoState::Waiting, Some(WaitReason::WaitGroupWait)))
        );
    }
}
