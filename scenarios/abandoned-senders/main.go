// abandoned-senders: fetchWithTimeout runs the lookup in a goroutine and waits
// for it or for a timeout. On timeout the caller returns, nobody will ever
// receive from the unbuffered result channel, and the lookup goroutine blocks
// forever on its send. Every timed-out request leaks one goroutine.
package main

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

type Quote struct {
	SKU   string
	Cents int64
}

var errTimeout = errors.New("pricing: timed out")

// PricingClient computes quotes; the pricing engine is slower than the SLO.
type PricingClient struct {
	engineLatency time.Duration
}

func (p *PricingClient) computeQuote(sku string) Quote {
	time.Sleep(p.engineLatency) // the rules engine call
	var h int64
	for _, c := range sku {
		h = h*31 + int64(c)
	}
	return Quote{SKU: sku, Cents: 999 + h%5000}
}

var (
	lookupsDone  atomic.Int32 // lookups that finished computing and went to send
	quotesServed atomic.Int32
)

// fetchWithTimeout returns the quote for sku, or errTimeout.
// BUG: ch is unbuffered, so the goroutine leaks when the timeout wins.
func fetchWithTimeout(p *PricingClient, sku string, timeout time.Duration) (Quote, error) {
	ch := make(chan Quote)
	go func() {
		q := p.computeQuote(sku)
		lookupsDone.Add(1)
		ch <- q
	}()
	select {
	case q := <-ch:
		return q, nil
	case <-time.After(timeout):
		return Quote{}, errTimeout
	}
}

const wantTimeouts = 50

func main() {
	harness.Start()

	pricing := &PricingClient{engineLatency: 120 * time.Millisecond}
	timeouts, requests := 0, 0
	for timeouts < wantTimeouts {
		requests++
		q, err := fetchWithTimeout(pricing, fmt.Sprintf("SKU-%05d", requests), 4*time.Millisecond)
		if errors.Is(err, errTimeout) {
			timeouts++
			continue
		}
		quotesServed.Add(1)
		_ = q
	}

	harness.WaitUntil("every lookup to finish computing", func() bool {
		return lookupsDone.Load() == int32(requests)
	}, 100*time.Millisecond)
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
