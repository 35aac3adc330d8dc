// control-cgo-callbacks: a healthy program whose C library calls into Go on
// the library's own threads. Each reading is decoded in Go (a computation of
// about 12 ms, past the point where the scheduler asks for preemption, so
// preemption signals often arrive just as a callback returns to C), handed to
// a consumer through a buffered channel without ever blocking, and the
// sampler then sleeps a moment in Go to keep its pace. Nothing waits on
// anything that will not come: no finding above info.
package main

/*
#cgo LDFLAGS: -lpthread
#include "meter.h"
*/
import "C"

import (
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"example.com/scenarios/internal/harness"
)

type Reading struct {
	Meter int
	Seq   uint
	Value uint64
}

var (
	readings  = make(chan Reading, 64)
	delivered atomic.Int64
	dropped   atomic.Int64
)

// decode computes for about 12 ms without a function call in its inner loop.
func decode(meter int, seq uint) uint64 {
	x := uint64(meter)<<32 | uint64(seq)
	deadline := time.Now().Add(12 * time.Millisecond)
	for time.Now().Before(deadline) {
		for i := 0; i < 4096; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	return x
}

//export goReading
func goReading(meter C.int, seq C.uint) {
	r := Reading{Meter: int(meter), Seq: uint(seq), Value: decode(int(meter), uint(seq))}
	select {
	case readings <- r:
		delivered.Add(1)
	default:
		dropped.Add(1)
	}
}

//export goPace
func goPace(meter C.int) {
	time.Sleep(time.Duration(20+5*int(meter)) * time.Millisecond)
}

func consume() {
	var sum uint64
	for r := range readings {
		sum += r.Value
	}
	fmt.Fprintln(os.Stderr, sum)
}

const samplers = 3

func main() {
	harness.Start()

	go consume()
	if C.meter_start(samplers) != 0 {
		fmt.Fprintln(os.Stderr, "meter_start failed")
		os.Exit(1)
	}
	harness.WaitUntil("readings from every sampler", func() bool {
		return delivered.Load() >= 4*samplers
	}, 100*time.Millisecond)
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
