// control-cpu-bound: a healthy CPU-bound job. Four workers hash blocks with
// SHA-256 and send digests to a collector; a ticker goroutine publishes
// progress. Everything is preemptible and the pprof endpoint keeps answering.
package main

import (
	"crypto/sha256"
	"encoding/binary"
	"expvar"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"example.com/scenarios/internal/harness"
)

type Digest struct {
	Worker int
	Block  uint64
	Sum    [32]byte
}

var (
	blocksHashed atomic.Int64
	progress     = expvar.NewInt("blocks_hashed")
)

// hashBlocks derives and hashes 1 MiB blocks forever (a dedup index rebuild).
func hashBlocks(worker int, out chan<- Digest) {
	block := make([]byte, 1<<20)
	for i := range block {
		block[i] = byte(i*7 + worker)
	}
	for n := uint64(0); ; n++ {
		binary.LittleEndian.PutUint64(block, n)
		binary.LittleEndian.PutUint64(block[8:], uint64(worker))
		out <- Digest{Worker: worker, Block: n, Sum: sha256.Sum256(block)}
	}
}

func collect(in <-chan Digest) {
	var xor [32]byte
	for d := range in {
		for i := range xor {
			xor[i] ^= d.Sum[i]
		}
		blocksHashed.Add(1)
	}
}

func reportProgress(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	last := int64(0)
	for range t.C {
		n := blocksHashed.Load()
		progress.Set(n)
		if n == last {
			fmt.Fprintln(os.Stderr, "progress: no blocks hashed in the last interval")
		}
		last = n
	}
}

func main() {
	harness.Start()

	digests := make(chan Digest, 1024)
	go collect(digests)
	for w := 0; w < 4; w++ {
		go hashBlocks(w, digests)
	}
	go reportProgress(250 * time.Millisecond)

	harness.WaitUntil("hashing to get going", func() bool {
		return blocksHashed.Load() > 100
	}, 100*time.Millisecond)
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
