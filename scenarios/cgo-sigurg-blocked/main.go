// cgo-sigurg-blocked: a market-data consumer uses a vendored C feed library
// that claims SIGURG for itself. The exchange gateway flags order-book resets
// with TCP urgent data, which the kernel announces with SIGURG; the library
// waits for it on its own reader thread, and so that nobody else gets it,
// every library call blocks SIGURG in the calling thread and never unblocks
// it. Go preempts goroutines that run too long without a function call by
// sending SIGURG to their thread. On every thread that ever called into the
// library those requests now stay pending: the poller's order-book rebuild (a
// tight loop, on a thread locked for the thread-affine library) can no longer
// be preempted, so each GC stop-the-world, and every goroutine behind it, waits
// until the loop is done.
package main

/*
#include "feed.h"
*/
import "C"

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"example.com/scenarios/internal/harness"
)

// FeedPoller keeps the order-book index of one feed session.
type FeedPoller struct {
	tid   int
	book  []uint64
	index uint64
	warm  chan struct{}
}

func NewFeedPoller() *FeedPoller {
	book := make([]uint64, 1<<16)
	for i := range book {
		book[i] = uint64(i) * 0x9e3779b97f4a7c15
	}
	return &FeedPoller{book: book, warm: make(chan struct{})}
}

// rebuildIndex folds the order book into the lookup index: a loop without
// function calls, which only asynchronous preemption can interrupt.
func (p *FeedPoller) rebuildIndex(passes int) {
	h := p.index
	for n := 0; n < passes; n++ {
		for i := range p.book {
			h ^= p.book[i]
			h *= 1099511628211
		}
	}
	p.index = h
}

func (p *FeedPoller) heartbeat() { p.index++ }

// run binds the poller to its OS thread (the library keeps the session in
// thread-local state), rebuilds the index, then applies heartbeats.
func (p *FeedPoller) run() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	p.tid = int(C.feed_attach())
	// Rebuild until the runtime has tried to preempt the rebuild (its SIGURG
	// is then pending on this thread for good).
	for !sigurgPending(p.tid) {
		p.rebuildIndex(600)
	}
	close(p.warm)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		p.heartbeat()
	}
}

// sigurgPending reports whether SIGURG waits, undelivered, on thread tid.
func sigurgPending(tid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/status", tid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "SigPnd:"); ok {
			mask, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return mask&(1<<(uint(syscall.SIGURG)-1)) != 0
		}
	}
	return false
}

// reportStats polls the library's counters for the metrics endpoint.
func reportStats() {
	for range time.Tick(100 * time.Millisecond) {
		_ = C.feed_stats()
	}
}

func main() {
	harness.Start()

	if C.feed_init() != 0 {
		fmt.Fprintln(os.Stderr, "feed: cannot start the urgent-data reader")
		os.Exit(1)
	}
	p := NewFeedPoller()
	go p.run()
	go reportStats()

	harness.WaitUntil("the poller's preemption signal to be stuck", func() bool {
		select {
		case <-p.warm:
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
