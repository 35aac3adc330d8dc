// channel-backpressure: an event pipeline buffers events in a channel with
// capacity 16 in front of a single consumer. The consumer is stuck flushing
// to a slow warehouse sink, the buffer is full, and every producer blocks
// sending in Submit.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"example.com/scenarios/internal/harness"
)

type Event struct {
	Tenant string
	Kind   string
	At     time.Time
}

// WarehouseSink loads events into the analytics warehouse.
type WarehouseSink struct {
	loadLatency time.Duration
	written     int
	wedgeAfter  int // the warehouse load job wedges after this many writes
}

func (s *WarehouseSink) Write(ev Event) error {
	s.written++
	if s.written > s.wedgeAfter {
		time.Sleep(3 * time.Hour) // the load job is wedged; no timeout
	}
	time.Sleep(s.loadLatency)
	return nil
}

type Pipeline struct {
	events chan Event
	sink   *WarehouseSink
}

func NewPipeline(sink *WarehouseSink) *Pipeline {
	p := &Pipeline{events: make(chan Event, 16), sink: sink}
	go p.consume()
	return p
}

// Submit enqueues an event for delivery.
// BUG: unbounded blocking send; no drop policy or context.
func (p *Pipeline) Submit(ev Event) {
	p.events <- ev
}

func (p *Pipeline) consume() {
	for ev := range p.events {
		if err := p.sink.Write(ev); err != nil {
			fmt.Fprintf(os.Stderr, "sink: %v\n", err)
		}
	}
}

var submitting atomic.Int32

func produceClickstream(p *Pipeline, tenant string) {
	for {
		submitting.Add(1)
		p.Submit(Event{Tenant: tenant, Kind: "page_view", At: time.Now()})
		submitting.Add(-1)
		time.Sleep(time.Millisecond)
	}
}

const producers = 40

func main() {
	harness.Start()

	p := NewPipeline(&WarehouseSink{loadLatency: time.Millisecond, wedgeAfter: 64})
	for i := 0; i < producers; i++ {
		go produceClickstream(p, fmt.Sprintf("tenant-%02d", i))
	}

	harness.WaitUntil("producers to block on the full buffer", func() bool {
		return submitting.Load() == producers && len(p.events) == cap(p.events)
	}, 100*time.Millisecond)
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
