// cgo-flock: report exports serialise on a lock file through a vendored C
// helper that calls flock(2) with no timeout. The nightly compaction job took
// the same lock and hung, so every export request sits inside C, in the
// kernel, each holding an OS thread.
package main

/*
#include <stdlib.h>
#include "lockfile.h"
*/
import "C"

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"example.com/scenarios/internal/harness"
)

var lockPath = filepath.Join(os.TempDir(), fmt.Sprintf("gostall-spool-%d.lock", os.Getpid()))

var waiting atomic.Int32

// acquireLock takes the spool lock shared with the C tools.
func acquireLock() (int, error) {
	cpath := C.CString(lockPath)
	defer C.free(unsafe.Pointer(cpath))
	waiting.Add(1)
	fd := C.wait_lock(cpath)
	waiting.Add(-1)
	if fd < 0 {
		return -1, fmt.Errorf("lock %s failed", lockPath)
	}
	return int(fd), nil
}

func exportReport(id int) {
	fd, err := acquireLock()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	defer C.release_lock(C.int(fd))
	// ... write the report into the spool ...
}

// compact is the nightly job: it takes the lock and then hangs on a stuck
// upstream.
func compact(ready chan<- struct{}) {
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	close(ready)
	time.Sleep(365 * 24 * time.Hour)
	f.Close()
}

const exporters = 4

func main() {
	harness.Start()

	ready := make(chan struct{})
	go compact(ready)
	<-ready
	for i := 0; i < exporters; i++ {
		go exportReport(i)
	}
	harness.WaitUntil("exports to block in flock", func() bool {
		return waiting.Load() == exporters
	}, 150*time.Millisecond)
	harness.StampBlockedTimes()
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	os.Remove(lockPath)
}
