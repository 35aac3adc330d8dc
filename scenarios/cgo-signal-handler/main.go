// cgo-signal-handler: a device gateway drives its devices through a vendored C
// control-channel library. Devices interrupt transfers with TCP urgent data,
// which the kernel announces with SIGURG, so at open the library installs its
// own SIGURG handler with sigaction — replacing the Go runtime's handler
// without chaining to it. Go uses SIGURG to preempt goroutines that run too
// long without a function call: its preemption signals now land in the
// library's handler, which counts them as device interrupts, and the runtime
// never learns they arrived. The session goroutine's firmware verification (a
// tight loop) was the first to be hit; from then on no goroutine can be
// preempted asynchronously, and each thread that had a request lost gets no
// further one. Thread masks look perfectly normal.
package main

/*
#include "ctlchan.h"
*/
import "C"

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"example.com/scenarios/internal/harness"
)

// DeviceSession owns one device's control channel.
type DeviceSession struct {
	firmware []uint64
	digest   uint64
	opened   chan struct{}
}

func NewDeviceSession() *DeviceSession {
	fw := make([]uint64, 1<<16)
	for i := range fw {
		fw[i] = uint64(i) * 0x9e3779b97f4a7c15
	}
	return &DeviceSession{firmware: fw, opened: make(chan struct{})}
}

// verifyFirmware folds the firmware image into its digest: a loop without
// function calls, which only asynchronous preemption can interrupt.
func (s *DeviceSession) verifyFirmware(passes int) {
	h := s.digest
	for n := 0; n < passes; n++ {
		for i := range s.firmware {
			h ^= s.firmware[i]
			h *= 1099511628211
		}
	}
	s.digest = h
}

func (s *DeviceSession) keepalive() { s.digest++ }

// serve opens the session on a dedicated thread (the library keeps it in
// thread-local state), verifies the firmware, then sends keepalives.
func (s *DeviceSession) serve() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if C.ctl_open() != 0 {
		fmt.Fprintln(os.Stderr, "ctlchan: cannot open the control session")
		os.Exit(1)
	}
	// Verify until the runtime's preemption signal has gone to the library's
	// handler instead of Go's.
	for C.ctl_urgent_events() == 0 {
		s.verifyFirmware(600)
	}
	close(s.opened)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		s.keepalive()
	}
}

func main() {
	harness.Start()

	s := NewDeviceSession()
	go s.serve()

	harness.WaitUntil("a preemption signal to reach the library's handler", func() bool {
		select {
		case <-s.opened:
			return true
		default:
			return false
		}
	}, 300*time.Millisecond)
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
