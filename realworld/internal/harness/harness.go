// Package harness is the plumbing every real-world program shares: profiling switched on,
// net/http/pprof served on a loopback port, the readiness line the tools wait for, and the
// connection settings of the servers (scripts/realworld-servers.sh writes them).
//
// Nothing here may run on the stack of a stuck goroutine: the corpus names the application
// function in package main as the root cause, and only main's own code blocks.
package harness

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	_ "net/http/pprof" // registers /debug/pprof/ on http.DefaultServeMux
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

var (
	addr      string
	readyOnce sync.Once
	progress  atomic.Int64
)

// Start enables mutex and block profiling and serves net/http/pprof on 127.0.0.1 with an
// ephemeral port, plus /debug/progress (see Progress). It must be called first in main.
func Start() {
	runtime.SetMutexProfileFraction(1)
	runtime.SetBlockProfileRate(1)

	http.HandleFunc("/debug/progress", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, progress.Load())
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		Fatalf("harness: listen: %v", err)
	}
	addr = ln.Addr().String()
	// Not `go srv.Serve(ln)`: a go statement with arguments makes the compiler wrap the call in a
	// function of this package, which would show up as the first non-stdlib frame of the accept
	// loop. httptest.Server starts the serving goroutine itself, so its stack is stdlib-only.
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.DefaultServeMux}}
	srv.Start()
}

// Addr returns the pprof listen address (host:port).
func Addr() string { return addr }

// Progress counts one completed unit of work. Healthy controls call it; /debug/progress serves
// the count, so a checker can tell a control that keeps working from one that stopped.
func Progress() { progress.Add(1) }

// ProgressCount is the number of Progress calls so far.
func ProgressCount() int64 { return progress.Load() }

// Ready prints the readiness line exactly once: `GOSTALL_READY pprof=127.0.0.1:PORT`.
//
// The line goes out with a raw write(2) on fd 1 (os.Stdout is unbuffered, nothing to flush).
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
			_, _ = os.Stdout.Write(b)
			return
		}
		b = b[n:]
	}
}

// WaitUntil polls cond every few milliseconds until it holds, then sleeps for settle so that
// goroutines that have just passed the counted point are parked for real. It exits the process
// if cond does not hold within 10 s, so that a broken program fails loudly instead of hanging.
func WaitUntil(what string, cond func() bool, settle time.Duration) {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			Fatalf("harness: timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(settle)
}

// StampBlockedTimes runs two garbage collections, so that every blocked goroutine carries the
// time it has been blocked since (runtime.g.waitsince is stamped by a collection).
func StampBlockedTimes() {
	runtime.GC()
	runtime.GC()
}

// Fatalf prints to stderr and exits with status 3.
func Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(3)
}

func mustEnv(name string) string {
	v := os.Getenv(name)
	if v == "" {
		Fatalf("harness: %s is not set (start the servers with scripts/realworld-servers.sh start DIR, then `set -a; . DIR/env`)", name)
	}
	return v
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// PostgresDSN is the lib/pq / pgx keyword=value connection string built from PGHOST, PGPORT,
// PGUSER (default postgres) and PGDATABASE (default postgres). SSL is off: loopback only.
func PostgresDSN() string {
	host := mustEnv("PGHOST")
	port := mustEnv("PGPORT")
	if _, err := strconv.Atoi(port); err != nil {
		Fatalf("harness: PGPORT=%q is not a port", port)
	}
	return fmt.Sprintf("host=%s port=%s user=%s dbname=%s sslmode=disable connect_timeout=5",
		host, port, envOr("PGUSER", "postgres"), envOr("PGDATABASE", "postgres"))
}

// RedisAddr is REDIS_ADDR (host:port).
func RedisAddr() string {
	a := mustEnv("REDIS_ADDR")
	if _, _, err := net.SplitHostPort(a); err != nil {
		Fatalf("harness: REDIS_ADDR=%q: %v", a, err)
	}
	return a
}
