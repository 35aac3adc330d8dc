// control-request-churn: a healthy request broker under constant churn. Clients
// park on their own reply channel; the only reference to each pending request
// lives in the broker's slot table, and rebalancer goroutines keep moving
// requests between slots (out of the table into a local variable and back),
// while responders answer a request now and then. Every blocked client can be
// woken at any moment — nothing is leaked — but the pointers to their channels
// are always on the move, which is what a reader racing the program sees.
package main

import (
	"math/rand"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"example.com/scenarios/internal/harness"
)

type request struct {
	key   int
	reply chan int
}

type broker struct {
	mu       sync.Mutex
	slots    []*request
	answered atomic.Int64
}

// park files a request in a free slot.
func (b *broker) park(r *request, rnd *rand.Rand) {
	for {
		b.mu.Lock()
		for try := 0; try < 8; try++ {
			i := rnd.Intn(len(b.slots))
			if b.slots[i] == nil {
				b.slots[i] = r
				b.mu.Unlock()
				return
			}
		}
		b.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
}

// take removes a random pending request, if any.
func (b *broker) take(rnd *rand.Rand) *request {
	b.mu.Lock()
	defer b.mu.Unlock()
	for try := 0; try < 16; try++ {
		i := rnd.Intn(len(b.slots))
		if r := b.slots[i]; r != nil {
			b.slots[i] = nil
			return r
		}
	}
	return nil
}

// client sends requests one after another and waits for each reply.
func (b *broker) client(id int) {
	rnd := rand.New(rand.NewSource(int64(id)))
	for {
		r := &request{key: id, reply: make(chan int)}
		b.park(r, rnd)
		<-r.reply
	}
}

// rebalance keeps moving requests to other slots: between take and park the
// request is only in this goroutine's hands.
func (b *broker) rebalance(seed int64) {
	rnd := rand.New(rand.NewSource(seed))
	for {
		if r := b.take(rnd); r != nil {
			for spin := 0; spin < rnd.Intn(2000); spin++ {
				_ = spin * spin
			}
			b.park(r, rnd)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// respond answers a pending request every few milliseconds.
func (b *broker) respond(seed int64) {
	rnd := rand.New(rand.NewSource(seed))
	for {
		time.Sleep(time.Duration(1+rnd.Intn(4)) * time.Millisecond)
		if r := b.take(rnd); r != nil {
			r.reply <- r.key
			b.answered.Add(1)
		}
	}
}

func main() {
	harness.Start()
	b := &broker{slots: make([]*request, 256)}
	for i := 0; i < 64; i++ {
		go b.client(i)
	}
	for i := 0; i < 3; i++ {
		go b.rebalance(int64(100 + i))
	}
	go b.respond(7)
	harness.WaitUntil("requests to be answered", func() bool {
		return b.answered.Load() >= 50
	}, 20*time.Millisecond)
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
