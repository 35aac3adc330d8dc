// abba-deadlock: transfer locks the source account and then the destination
// account. Two transfers in opposite directions between the same pair of
// accounts each take their first lock and then wait forever for the other's.
// Later transfers touching either account pile up behind them.
//
// The interleaving is made deterministic by the fraud scorer, which scores in
// batches: both transfers are inside their first lock while the batch fills.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"example.com/scenarios/internal/harness"
)

type Account struct {
	mu      sync.Mutex
	ID      string
	balance int64
}

var ErrInsufficientFunds = errors.New("insufficient funds")

type scoreRequest struct {
	account string
	amount  int64
	reply   chan float64
}

// FraudScorer evaluates its model on batches of requests.
type FraudScorer struct {
	requests  chan scoreRequest
	batchSize int
	maxWait   time.Duration
}

func NewFraudScorer(batchSize int, maxWait time.Duration) *FraudScorer {
	s := &FraudScorer{requests: make(chan scoreRequest), batchSize: batchSize, maxWait: maxWait}
	go s.run()
	return s
}

func (s *FraudScorer) Score(account string, amount int64) float64 {
	r := scoreRequest{account: account, amount: amount, reply: make(chan float64, 1)}
	s.requests <- r
	return <-r.reply
}

func (s *FraudScorer) run() {
	var batch []scoreRequest
	timer := time.NewTimer(s.maxWait)
	for {
		select {
		case r := <-s.requests:
			batch = append(batch, r)
			if len(batch) < s.batchSize {
				continue
			}
		case <-timer.C:
		}
		for _, r := range batch {
			r.reply <- 0.01 // the model's verdict: low risk
		}
		batch = batch[:0]
		timer.Reset(s.maxWait)
	}
}

var (
	scorer          *FraudScorer
	secondLockWaits atomic.Int32
	transfersBegun  atomic.Int32
)

// transfer moves amt from one account to another.
// BUG: locks are taken in argument order, not in a global order.
func transfer(from, to *Account, amt int64) error {
	from.mu.Lock()
	defer from.mu.Unlock()
	if from.balance < amt {
		return ErrInsufficientFunds
	}
	if risk := scorer.Score(from.ID, amt); risk > 0.9 {
		return fmt.Errorf("transfer from %s blocked by fraud check", from.ID)
	}
	secondLockWaits.Add(1)
	to.mu.Lock()
	defer to.mu.Unlock()
	from.balance -= amt
	to.balance += amt
	return nil
}

func runTransfer(from, to *Account, amt int64, wg *sync.WaitGroup) {
	defer wg.Done()
	transfersBegun.Add(1)
	if err := transfer(from, to, amt); err != nil {
		fmt.Fprintf(os.Stderr, "transfer %s -> %s: %v\n", from.ID, to.ID, err)
	}
}

func main() {
	harness.Start()
	scorer = NewFraudScorer(2, 2*time.Second)

	checking := &Account{ID: "acct-checking-1001", balance: 50_000}
	savings := &Account{ID: "acct-savings-2002", balance: 120_000}
	brokerage := &Account{ID: "acct-brokerage-3003", balance: 9_000}

	var wg sync.WaitGroup
	wg.Add(2)
	go runTransfer(checking, savings, 2_500, &wg) // monthly savings sweep
	go runTransfer(savings, checking, 1_200, &wg) // overdraft protection
	harness.WaitUntil("the two opposite transfers to hold their first lock", func() bool {
		return secondLockWaits.Load() == 2
	}, 50*time.Millisecond)

	// Later transfers touching either account queue behind the deadlock.
	later := []struct {
		from, to *Account
		amt      int64
	}{
		{checking, brokerage, 700},
		{savings, brokerage, 3_000},
		{checking, savings, 150},
		{savings, checking, 90},
		{checking, brokerage, 25},
	}
	for _, t := range later {
		wg.Add(1)
		go runTransfer(t.from, t.to, t.amt, &wg)
	}
	harness.WaitUntil("later transfers to queue", func() bool {
		return transfersBegun.Load() == int32(2+len(later))
	}, 200*time.Millisecond)
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
