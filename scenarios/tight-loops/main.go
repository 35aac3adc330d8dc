// tight-loops: checksum workers run a loop with no function calls. With
// asynchronous preemption off (GODEBUG=asyncpreemptoff=1, as some deployments
// set it to work around signal issues) such a loop can never be preempted, so
// the two workers hold both Ps forever. The request handlers they spawned just
// before, and everything else (timers, the pprof server), stay runnable and
// never get to run. The shard worker prints the readiness line once main is
// spinning, then spins too.
//
// Run with GODEBUG=asyncpreemptoff=1.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"

	"example.com/scenarios/internal/harness"
)

const handlersPerShard = 40

var (
	checksums [2]uint64
	replies   [2 * handlersPerShard]uint64

	// Lockstep start flags, polled with bare loops (no preemption point).
	workerOnCPU  int32
	shard0Queued int32
	shard1Queued int32
)

// handle serves one queued verification request.
func handle(req int) {
	replies[req] = checksums[req/handlersPerShard]
}

// spinChecksum folds the shard into its running checksum.
// BUG: a loop without calls has no preemption point.
//
//go:noinline
func spinChecksum(shard int, seed uint64) {
	x := seed
	for {
		checksums[shard] += x * x
		x++
	}
}

// verifyShard queues the shard's verification requests, then checksums it.
func verifyShard(shard int, queued *int32) {
	for i := 0; i < handlersPerShard; i++ {
		go handle(shard*handlersPerShard + i)
	}
	atomic.StoreInt32(queued, 1)
	spinChecksum(shard, uint64(shard)*1_000_003+7)
}

// shardWorker verifies shard 1 in lockstep with main's shard 0.
func shardWorker() {
	atomic.StoreInt32(&workerOnCPU, 1)
	for atomic.LoadInt32(&shard0Queued) == 0 {
	}
	// Main now spins on the other P with shard 0's handlers queued behind it.
	// Ready writes with a raw system call, so this P is not handed off.
	harness.Ready()
	verifyShard(1, &shard1Queued)
}

func main() {
	harness.Start()
	runtime.GOMAXPROCS(2)
	if !strings.Contains(os.Getenv("GODEBUG"), "asyncpreemptoff=1") {
		fmt.Fprintln(os.Stderr, "tight-loops: GODEBUG=asyncpreemptoff=1 is not set; the loops will be preempted")
	}

	go shardWorker()
	// Keep this P busy (a loop without calls cannot be preempted) until the
	// worker holds the other P: an idle P would run the handlers queued next.
	for atomic.LoadInt32(&workerOnCPU) == 0 {
	}
	verifyShard(0, &shard0Queued)
}
