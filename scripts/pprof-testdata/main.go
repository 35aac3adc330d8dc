// Command pprof-testdata writes small pprof protobuf profiles (goroutine, mutex, block, threadcreate,
// heap) of a program in a known state, for gostall's pprof decoder tests
// (crates/ingest/testdata/pprof). Run it through scripts/regen-pprof-testdata.sh.
//
// The state it captures:
//   - 5 goroutines parked in main.blockedForever on a channel receive, labelled worker=stuck
//     (pprof.Do), plus 1 unlabelled goroutine parked in main.waitForever on a sync.WaitGroup;
//   - mutex contention: main.holdLock holds a sync.Mutex for a while, main.contend waits for it;
//   - blocking: main.waitOnChannel waits on a channel that main.release closes later.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"
)

var (
	never = make(chan struct{})
	mu    sync.Mutex
	sink  [][]byte
)

//go:noinline
func blockedForever(ready *sync.WaitGroup) {
	ready.Done()
	<-never
}

//go:noinline
func waitForever(ready *sync.WaitGroup) {
	var wg sync.WaitGroup
	wg.Add(1)
	ready.Done()
	wg.Wait()
}

//go:noinline
func holdLock(d time.Duration) {
	mu.Lock()
	time.Sleep(d)
	mu.Unlock()
}

//go:noinline
func contend(done *sync.WaitGroup) {
	defer done.Done()
	mu.Lock()
	mu.Unlock()
}

//go:noinline
func waitOnChannel(c chan struct{}, done *sync.WaitGroup) {
	defer done.Done()
	<-c
}

//go:noinline
func release(c chan struct{}, d time.Duration) {
	time.Sleep(d)
	close(c)
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: pprof-testdata OUTDIR")
		os.Exit(2)
	}
	out := os.Args[1]
	runtime.SetMutexProfileFraction(1)
	runtime.SetBlockProfileRate(1)

	// Mutex contention: three rounds of holder vs. two waiters.
	for round := 0; round < 3; round++ {
		var done sync.WaitGroup
		started := make(chan struct{})
		go func() {
			mu.Lock()
			close(started)
			time.Sleep(10 * time.Millisecond)
			mu.Unlock()
		}()
		<-started
		for i := 0; i < 2; i++ {
			done.Add(1)
			go contend(&done)
		}
		time.Sleep(time.Millisecond)
		holdLock(5 * time.Millisecond)
		done.Wait()
	}

	// Channel blocking.
	{
		var done sync.WaitGroup
		c := make(chan struct{})
		for i := 0; i < 2; i++ {
			done.Add(1)
			go waitOnChannel(c, &done)
		}
		release(c, 10*time.Millisecond)
		done.Wait()
	}

	// Goroutines that stay parked while the goroutine profile is taken.
	var ready sync.WaitGroup
	for i := 0; i < 5; i++ {
		ready.Add(1)
		go pprof.Do(context.Background(), pprof.Labels("worker", "stuck"), func(context.Context) {
			blockedForever(&ready)
		})
	}
	ready.Add(1)
	go waitForever(&ready)
	ready.Wait()
	time.Sleep(10 * time.Millisecond) // let them reach their park points

	// A little heap so the heap profile is not empty.
	for i := 0; i < 64; i++ {
		sink = append(sink, make([]byte, 64<<10))
	}
	runtime.GC()

	for _, name := range []string{"goroutine", "mutex", "block", "threadcreate", "heap"} {
		f, err := os.Create(filepath.Join(out, name+".pb.gz"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := f.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
