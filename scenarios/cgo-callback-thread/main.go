// cgo-callback-thread: a vendored C device library runs its own threads and
// calls back into Go for every event. The Go consumer of those events gave up
// after a decoding error and returned, so each library thread is stuck inside
// its callback, sending on a channel nobody reads: the device stops being
// served and the C threads never come back.
package main

/*
#cgo LDFLAGS: -lpthread
#include "events.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"example.com/scenarios/internal/harness"
)

type Event struct{ Device, Seq int }

var events = make(chan Event)

var inCallback atomic.Int32

//export goDeliver
func goDeliver(device, seq C.int) {
	inCallback.Add(1)
	events <- Event{int(device), int(seq)}
	inCallback.Add(-1)
}

func decode(ev Event) error {
	if ev.Seq > 0 {
		return errors.New("unknown event type 0x7f")
	}
	return nil
}

// consume handles device events until the first error.
func consume(done chan<- struct{}) {
	defer close(done)
	for ev := range events {
		if err := decode(ev); err != nil {
			fmt.Fprintln(os.Stderr, "device events:", err)
			return
		}
	}
}

const workers = 3

func main() {
	harness.Start()

	done := make(chan struct{})
	go consume(done)
	if C.ev_start(workers) != 0 {
		fmt.Fprintln(os.Stderr, "ev_start failed")
		os.Exit(1)
	}
	<-done
	harness.WaitUntil("library threads to block in their callbacks", func() bool {
		return inCallback.Load() == workers
	}, 150*time.Millisecond)
	harness.StampBlockedTimes()
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
