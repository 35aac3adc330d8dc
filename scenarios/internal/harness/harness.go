// Package harness is the small amount of plumbing every scenario shares:
// profiling switched on, net/http/pprof served on a loopback port, and the
// readiness line the integration tests wait for.
package harness

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	_ "net/http/pprof" // registers /debug/pprof/ on http.DefaultServeMux
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

var (
	addr      string
	readyOnce sync.Once
)

// Start enables mutex and block profiling and serves net/http/pprof on
// 127.0.0.1 with an ephemeral port. It must be called first in main.
func Start() {
	runtime.SetMutexProfileFraction(1)
	runtime.SetBlockProfileRate(1)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: listen: %v\n", err)
		os.Exit(1)
	}
	addr = ln.Addr().String()
	// Not `go srv.Serve(ln)`: a go statement with arguments makes the compiler
	// wrap the call in a function of this package (harness.Start.func1 up to
	// Go 1.21, harness.Start.gowrap1 from 1.22), which would then show up as
	// the first non-stdlib frame of the accept loop. httptest.Server starts
	// the serving goroutine itself, so its stack is stdlib-only.
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.DefaultServeMux}}
	srv.Start()
}

// Addr returns the pprof listen address (host:port).
func Addr() string { return addr }

// Ready prints the readiness line exactly once.
//
// The line goes out with a raw write(2) on fd 1 rather than through os.Stdout:
// a raw system call does not release the calling goroutine's P, so a scenario
// that must keep every P busy (tight-loops) cannot lose its P to sysmon's
// syscall retake while it reports readiness. os.Stdout is unbuffered, so
// there is nothing to flush.
func Ready() {
	readyOnce.Do(func() {
		writeStdout([]byte("GOSTALL_READY pprof=" + addr + "\n"))
	})
}

func writeStdout(b []byte) {
	for len(b) > 0 {
		n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, 1, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		switch {
		case errno == syscall.EINTR:
			continue
		case errno != 0:
			// e.g. EAGAIN on a non-blocking stdout: let the os package wait.
			_, _ = os.Stdout.Write(b)
			return
		}
		b = b[n:]
	}
}

// WaitUntil polls cond every few milliseconds until it holds, then sleeps for
// settle so that goroutines that have just passed the counted point are parked
// for real. It exits the process if cond does not hold within 10 s, so that a
// broken scenario fails loudly instead of hanging the test that runs it.
func WaitUntil(what string, cond func() bool, settle time.Duration) {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "harness: timed out waiting for %s\n", what)
			os.Exit(3)
		}
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(settle)
}

// StampBlockedTimes runs two garbage collections. A collection stamps each
// blocked goroutine with the start of the previous one (runtime.g.waitsince),
// which is how long it has been blocked; the first collection has no
// predecessor, so it takes two. A long-running program has had many.
func StampBlockedTimes() {
	runtime.GC()
	runtime.GC()
}
