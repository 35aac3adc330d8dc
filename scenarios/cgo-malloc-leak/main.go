// cgo-malloc-leak: a thumbnail service renders through a vendored C cache
// (thumbcache) that never frees the pixels of the entries it evicts. Every
// request beyond the cache's capacity leaks one thumbnail in C memory: the
// process's resident memory grows while the Go heap stays small, so Go's own
// memory statistics and heap profiles show nothing wrong.
//
// GET /thumbcache/stats reports the bytes the C library has allocated and
// freed. With THUMB_LEAK_MIB_PER_SEC=N the service keeps receiving requests
// after readiness and leaks about N MiB per second (at most 1 GiB more).
package main

/*
#include <stdlib.h>
#include "thumbcache.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"example.com/scenarios/internal/harness"
)

// ThumbnailService renders thumbnails through the C cache.
type ThumbnailService struct {
	cache *C.tc_cache

	mu     sync.Mutex
	served map[uint64]int // id → bytes of the last thumbnail served
}

func NewThumbnailService(capacity int) (*ThumbnailService, error) {
	c := C.tc_open(C.size_t(capacity))
	if c == nil {
		return nil, errors.New("thumbcache: cannot create the cache")
	}
	return &ThumbnailService{cache: c, served: make(map[uint64]int)}, nil
}

// Render returns the size of the size x size thumbnail of image id. The pixels
// stay in the C cache, which owns them.
func (s *ThumbnailService) Render(id uint64, size int) (int, error) {
	px := C.tc_render(s.cache, C.ulong(id), C.int(size), C.int(size))
	if px == nil {
		return 0, errors.New("thumbcache: out of memory")
	}
	n := size * size * 4
	s.mu.Lock()
	s.served[id] = n
	s.mu.Unlock()
	return n, nil
}

func (s *ThumbnailService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.URL.Query().Get("id"), 10, 64)
	if err != nil {
		http.Error(w, "bad id", http.StatusBadRequest)
		return
	}
	size, err := strconv.Atoi(r.URL.Query().Get("size"))
	if err != nil || size <= 0 || size > 512 {
		size = 128
	}
	n, err := s.Render(id, size)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintf(w, "rendered %d bytes\n", n)
}

func cacheStats(w http.ResponseWriter, _ *http.Request) {
	allocated, freed := leakStats()
	fmt.Fprintf(w, "{\"allocated\": %d, \"freed\": %d, \"live\": %d}\n", allocated, freed, allocated-freed)
}

func leakStats() (allocated, freed uint64) {
	var a, f C.ulonglong
	C.tc_stats(&a, &f)
	return uint64(a), uint64(f)
}

var nextID atomic.Uint64

var sizes = []int{96, 128, 160, 192}

// request sends one thumbnail request through the service's HTTP handler.
func request(h http.Handler) {
	id := nextID.Add(1)
	size := sizes[id%uint64(len(sizes))]
	req := httptest.NewRequest("GET", fmt.Sprintf("/thumbnail?id=%d&size=%d", id, size), nil)
	h.ServeHTTP(httptest.NewRecorder(), req)
}

const (
	capacity = 256
	leakGoal = 384 << 20 // bytes of pixels rendered before readiness
	clients  = 4
)

func main() {
	harness.Start()

	svc, err := NewThumbnailService(capacity)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	http.Handle("/thumbnail", svc)
	http.HandleFunc("/thumbcache/stats", cacheStats)

	// A burst of traffic from a few clients.
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if a, _ := leakStats(); a >= leakGoal {
					return
				}
				request(svc)
			}
		}()
	}
	wg.Wait()
	harness.WaitUntil("the thumbnail burst to finish", func() bool {
		a, _ := leakStats()
		return a >= leakGoal
	}, 100*time.Millisecond)

	if rate, _ := strconv.Atoi(os.Getenv("THUMB_LEAK_MIB_PER_SEC")); rate > 0 {
		go keepLeaking(svc, rate)
	}
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}

// keepLeaking keeps the traffic going at about rate MiB of thumbnails per
// second, for at most 1 GiB.
func keepLeaking(h http.Handler, rate int) {
	start, _ := leakStats()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	began := time.Now()
	for range tick.C {
		want := uint64(time.Since(began).Seconds() * float64(rate) * (1 << 20))
		if want > 1<<30 {
			want = 1 << 30
		}
		for {
			a, _ := leakStats()
			if a-start >= want {
				break
			}
			request(h)
		}
	}
}
