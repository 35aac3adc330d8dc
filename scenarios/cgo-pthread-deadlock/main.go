// cgo-pthread-deadlock: a vendored C ledger library takes its two pthread
// mutexes in opposite orders in ledger_post (ledger, then journal) and
// journal_rotate (journal, then ledger). A payment and the hourly journal
// rotation ran at the same moment: both C calls deadlocked, and every later
// payment queues behind them on the Go side.
package main

/*
#cgo LDFLAGS: -lpthread
#include "ledger.h"
*/
import "C"

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"example.com/scenarios/internal/harness"
)

// Ledger serialises Go callers of the C library.
type Ledger struct{}

// Post records a payment.
func (Ledger) Post(amount int64) { C.ledger_post(C.long(amount)) }

// Rotate starts a new journal file.
func (Ledger) Rotate() { C.journal_rotate() }

func paymentWorker(l Ledger, wg *sync.WaitGroup) {
	defer wg.Done()
	l.Post(100)
}

func rotator(l Ledger) {
	l.Rotate()
}

func main() {
	harness.Start()

	var l Ledger
	var wg sync.WaitGroup
	wg.Add(1)
	go paymentWorker(l, &wg)
	go rotator(l)
	harness.WaitUntil("both C calls to hold their first lock", func() bool {
		return C.ledger_first_locks_held() == 2
	}, 200*time.Millisecond)
	harness.StampBlockedTimes()
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
