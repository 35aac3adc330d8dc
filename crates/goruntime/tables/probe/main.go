// The probe program whose DWARF the layout tables are recorded from: it uses the runtime and
// sync machinery gostall reads (channels, selects, mutexes, RWMutexes, WaitGroups, Conds, the
// netpoller, signals, finalizers, timers), so the linker and compiler describe every type the
// layout reader asks for. It is built, never run.
package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"time"
)

type box struct{ v []byte }

func main() {
	var mu sync.Mutex
	var rw sync.RWMutex
	var wg sync.WaitGroup
	cond := sync.NewCond(&mu)
	ch := make(chan int, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		mu.Lock()
		cond.Broadcast()
		mu.Unlock()
		rw.RLock()
		rw.RUnlock()
		select {
		case ch <- 1:
		case <-time.After(time.Millisecond):
		}
	}()
	wg.Wait()
	b := &box{v: make([]byte, 64)}
	runtime.SetFinalizer(b, func(*box) {})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err == nil {
		ln.Close()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	fmt.Println(len(ch), len(b.v))
}
