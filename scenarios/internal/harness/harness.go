// Package harness is the small amount of plumbing every scenario shares:
// profiling switched on, net/http/pprof served on a loopback port, and the
// readiness line the integration tests wait for.
package harness

import (
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof/ on http.DefaultServeMux
	"os"
	"runtime"
	"sync"
	"time"
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
	srv := &http.Server{Handler: http.DefaultServeMux}
	// Started directly so that the serving goroutine has no harness frame.
	go srv.Serve(ln)
}

// Addr returns the pprof listen address (host:port).
func Addr() string { return addr }

// Ready prints the readiness line exactly once and flushes stdout.
func Ready() {
	readyOnce.Do(func() {
		fmt.Fprintf(os.Stdout, "GOSTALL_READY pprof=%s\n", addr)
		_ = os.Stdout.Sync()
	})
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
