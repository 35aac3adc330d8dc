// waitgroup-off-by-one: processBatch adds one more to its WaitGroup than it
// starts goroutines for (the "+1" was for a flush goroutine that has since
// been removed). Every enrichment goroutine finishes, the counter stays at 1,
// and processBatch waits forever, stalling the batch loop.
package main

import (
	"fmt"
	"hash/fnv"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"example.com/scenarios/internal/harness"
)

type Record struct {
	ID    int
	Email string
}

type Enriched struct {
	Record
	Domain string
	Bucket uint32
}

var enriched atomic.Int32

func enrich(r Record) Enriched {
	at := strings.LastIndexByte(r.Email, '@')
	h := fnv.New32a()
	h.Write([]byte(r.Email))
	enriched.Add(1)
	return Enriched{Record: r, Domain: r.Email[at+1:], Bucket: h.Sum32() % 64}
}

// processBatch enriches every record concurrently.
// BUG: one Add too many; nothing calls the matching Done.
func processBatch(items []Record) []Enriched {
	var wg sync.WaitGroup
	wg.Add(len(items) + 1) // +1 for the flusher
	out := make([]Enriched, len(items))
	for i, it := range items {
		go func(i int, it Record) {
			defer wg.Done()
			out[i] = enrich(it)
		}(i, it)
	}
	wg.Wait()
	return out
}

func nextBatch(n, size int) []Record {
	b := make([]Record, size)
	for i := range b {
		id := n*size + i
		b[i] = Record{ID: id, Email: fmt.Sprintf("user%d@example%d.org", id, id%5)}
	}
	return b
}

var batchesDone atomic.Int32

func runBatches() {
	for n := 0; ; n++ {
		res := processBatch(nextBatch(n, 24))
		fmt.Fprintf(os.Stderr, "batch %d: %d records enriched\n", n, len(res))
		batchesDone.Add(1)
	}
}

func main() {
	harness.Start()

	go runBatches()

	// Ready once the batch's workers are done and processBatch has reached its Wait (on a
	// loaded machine the goroutine can still be on its way there when the workers finish).
	harness.WaitUntil("the first batch's workers to finish and processBatch to wait", func() bool {
		if enriched.Load() != 24 {
			return false
		}
		buf := make([]byte, 1<<20)
		all := string(buf[:runtime.Stack(buf, true)])
		for _, g := range strings.Split(all, "\n\n") {
			if strings.Contains(g, "WaitGroup).Wait") && strings.Contains(g, "main.processBatch") {
				return true
			}
		}
		return false
	}, 100*time.Millisecond)
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
