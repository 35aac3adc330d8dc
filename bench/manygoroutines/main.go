// Command manygoroutines parks N goroutines in a realistic mix of states, each behind a deep and
// varied user call stack, then prints READY. Send it SIGQUIT with GOTRACEBACK=all to get a large
// goroutine dump for benchmarking gostall (see scripts/bench-dump.sh).
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"time"
)

var (
	n        = flag.Int("n", 200000, "number of goroutines to park")
	depth    = flag.Int("depth", 7, "call-path layers between the spawner and the blocking call (±2)")
	variants = flag.Int("variants", 8, "distinct call paths per blocking operation and spawner")
	sockets  = flag.Int("sockets", 64, "loopback TCP connections with a reader parked in IO wait")
	probe    = flag.Bool("probe", false, "serve a TCP echo port (printed as PROBE ADDR) for latency measurements")
	started  sync.WaitGroup
)

// Shared objects the goroutines block on. Nothing ever releases them.
var (
	unbufRecv = make(chan int)
	unbufSend = make(chan int)
	fullBuf   = make(chan int, 1)
	selA      = make(chan int)
	selB      = make(chan string)
	nilChan   chan int
	mu        sync.Mutex
	rw        sync.RWMutex
	neverDone sync.WaitGroup
	condMu    sync.Mutex
	cond      = sync.NewCond(&condMu)
	conns     []net.Conn
)

// leaf is the blocking operation a goroutine ends in.
type leaf func(i int)

// The blocking operations, as named functions so the dump shows realistic user frames.

//go:noinline
func waitForJob(int) { <-unbufRecv }

//go:noinline
func publishResult(i int) { unbufSend <- i }

//go:noinline
func enqueueEvent(i int) { fullBuf <- i }

//go:noinline
func awaitEither(int) {
	select {
	case <-selA:
	case <-selB:
	}
}

//go:noinline
func awaitWithTimeout(int) {
	select {
	case <-selA:
	case <-time.After(10 * time.Hour):
	}
}

//go:noinline
func updateAccount(int) { mu.Lock() }

//go:noinline
func rebuildIndex(int) { rw.Lock() }

//go:noinline
func readConfig(int) { rw.RLock() }

//go:noinline
func waitForShards(int) { neverDone.Wait() }

//go:noinline
func awaitCapacity(int) {
	condMu.Lock()
	cond.Wait()
	condMu.Unlock()
}

//go:noinline
func backoffSleep(int) { time.Sleep(10 * time.Hour) }

//go:noinline
func readDisabled(int) { <-nilChan }

var leaves = []struct {
	name   string
	weight int
	fn     leaf
}{
	{"chan receive", 20, waitForJob},
	{"chan send", 12, publishResult},
	{"chan send (full buffer)", 4, enqueueEvent},
	{"select", 16, awaitEither},
	{"select with timeout", 6, awaitWithTimeout},
	{"sync.Mutex.Lock", 10, updateAccount},
	{"sync.RWMutex.Lock", 2, rebuildIndex},
	{"sync.RWMutex.RLock", 3, readConfig},
	{"sync.WaitGroup.Wait", 8, waitForShards},
	{"sync.Cond.Wait", 6, awaitCapacity},
	{"sleep", 10, backoffSleep},
	{"nil chan", 1, readDisabled},
}

// The call path layers: each goroutine descends through a sequence of these chosen by its path
// number, so stacks differ by path and depth, as in a real server with several handlers.
const nLayers = 7

var layers [nLayers]func(d, path int, l leaf, i int)

func init() {
	layers = [nLayers]func(d, path int, l leaf, i int){
		handleRequest, decodeMessage, lookupCache, callBackend, applyMiddleware, processBatch, retryWithBackoff,
	}
}

// arrive records that a goroutine reached its park point, then blocks in its leaf.
//
//go:noinline
func arrive(l leaf, i int) {
	started.Done()
	l(i)
}

// next is the first layer of a goroutine's call path.
func next(d, path int, l leaf, i int) { layers[path%nLayers](d, path/nLayers, l, i) }

// Each layer calls the next one chosen by the path number, until the depth is used up.

//go:noinline
func handleRequest(d, path int, l leaf, i int) {
	if d <= 0 {
		arrive(l, i)
		return
	}
	p := path + d
	layers[p%nLayers](d-1, p/nLayers, l, i)
}

//go:noinline
func decodeMessage(d, path int, l leaf, i int) {
	if d <= 0 {
		arrive(l, i)
		return
	}
	p := path + 1 + d
	layers[p%nLayers](d-1, p/nLayers, l, i)
}

//go:noinline
func lookupCache(d, path int, l leaf, i int) {
	if d <= 0 {
		arrive(l, i)
		return
	}
	p := path + 2 + d
	layers[p%nLayers](d-1, p/nLayers, l, i)
}

//go:noinline
func callBackend(d, path int, l leaf, i int) {
	if d <= 0 {
		arrive(l, i)
		return
	}
	p := path + 3 + d
	layers[p%nLayers](d-1, p/nLayers, l, i)
}

//go:noinline
func applyMiddleware(d, path int, l leaf, i int) {
	if d <= 0 {
		arrive(l, i)
		return
	}
	p := path*3 + d
	layers[p%nLayers](d-1, p/nLayers, l, i)
}

//go:noinline
func processBatch(d, path int, l leaf, i int) {
	if d <= 0 {
		arrive(l, i)
		return
	}
	p := path + 5 + d
	layers[p%nLayers](d-1, p/nLayers, l, i)
}

//go:noinline
func retryWithBackoff(d, path int, l leaf, i int) {
	if d <= 0 {
		arrive(l, i)
		return
	}
	p := path*2 + 1 + d
	layers[p%nLayers](d-1, p/nLayers, l, i)
}

//go:noinline
func worker(i, d, path int, l leaf) { next(d, path, l, i) }

// plan picks goroutine i's blocking operation, call path and depth. Goroutines of one spawner
// with the same operation share one of `variants` stacks, so a few hundred distinct stacks are
// spread over all goroutines, as in a real server.
func plan(i, kind int, weights []int) (leaf, int, int) {
	k := weights[i%len(weights)]
	v := (i / len(weights)) % *variants
	p := v*5 + kind*11 + k*3
	d := *depth - 2 + v%5
	return leaves[k].fn, p, d
}

// Three spawners, so the dump has several creation sites.
//
//go:noinline
func spawnAPI(lo, hi int, weights []int) {
	for i := lo; i < hi; i++ {
		l, p, d := plan(i, 0, weights)
		go worker(i, d, p, l)
	}
}

//go:noinline
func spawnJobs(lo, hi int, weights []int) {
	for i := lo; i < hi; i++ {
		l, p, d := plan(i, 1, weights)
		go func(i int) { next(d, p, l, i) }(i)
	}
}

//go:noinline
func spawnStreams(lo, hi int, weights []int) {
	for i := lo; i < hi; i++ {
		l, p, d := plan(i, 2, weights)
		go worker(i, d, p, l)
	}
}

// ioReaders parks one goroutine per loopback connection in IO wait (a client waiting for an
// upstream that never answers), behind an accept loop.
func ioReaders(count int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	started.Add(1)
	go func() {
		started.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	for k := 0; k < count; k++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			os.Exit(1)
		}
		started.Add(1)
		go worker(k, *depth-2+k%5, k%*variants, func(int) {
			buf := make([]byte, 1)
			_, _ = c.Read(buf)
		})
	}
}

func main() {
	flag.Parse()
	// Hold the locks the lock waiters queue on; keep the WaitGroup above zero forever.
	mu.Lock()
	rw.RLock()
	neverDone.Add(1)
	fullBuf <- 0
	var weights []int
	for k, l := range leaves {
		for w := 0; w < l.weight; w++ {
			weights = append(weights, k)
		}
	}
	ioReaders(*sockets)
	total := *n - *sockets
	if total < 0 {
		total = 0
	}
	started.Add(total)
	a, b := total/2, total*4/5
	done := make(chan struct{}, 3)
	go func() { spawnAPI(0, a, weights); done <- struct{}{} }()
	go func() { spawnJobs(a, b, weights); done <- struct{}{} }()
	go func() { spawnStreams(b, total, weights); done <- struct{}{} }()
	for k := 0; k < 3; k++ {
		<-done
	}
	started.Wait()
	// Let the last goroutines reach their park points.
	for k := 0; k < 50; k++ {
		time.Sleep(20 * time.Millisecond)
		runtime.Gosched()
	}
	if *probe {
		// An echo server the benchmark pings to measure the program's own latency while gostall
		// reads it.
		pl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go func() {
			for {
				c, err := pl.Accept()
				if err != nil {
					return
				}
				go func() {
					buf := make([]byte, 64)
					for {
						n, err := c.Read(buf)
						if err != nil {
							return
						}
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
				}()
			}
		}()
		fmt.Println("PROBE", pl.Addr().String())
	}
	fmt.Println("READY")
	_ = os.Stdout.Sync()
	select {}
}
