// mutex-slow-call: a read-through cache holds its mutex while it calls the
// backend on a miss. The backend has hung, so the goroutine holding the lock
// never returns and every request for any key queues up on Cache.Get's Lock.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"example.com/scenarios/internal/harness"
)

type Profile struct {
	UserID  string
	Plan    string
	Fetched time.Time
}

// ProfileBackend is the slow source of truth (a remote profile service).
type ProfileBackend struct {
	latency time.Duration
	wedged  atomic.Bool // set when the upstream stops answering
}

func (b *ProfileBackend) FetchProfile(userID string) (Profile, error) {
	if b.wedged.Load() {
		// The upstream stopped responding; the client has no timeout.
		time.Sleep(6 * time.Hour)
	}
	time.Sleep(b.latency)
	return Profile{UserID: userID, Plan: "pro", Fetched: time.Now()}, nil
}

type cacheEntry struct {
	p       Profile
	expires time.Time
}

type Cache struct {
	mu      sync.Mutex
	entries map[string]cacheEntry
	backend *ProfileBackend
	ttl     time.Duration
}

func NewCache(b *ProfileBackend, ttl time.Duration) *Cache {
	return &Cache{entries: make(map[string]cacheEntry), backend: b, ttl: ttl}
}

// Get returns the cached profile, loading it from the backend on a miss.
// BUG: the lock is held across the backend call.
func (c *Cache) Get(userID string) (Profile, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[userID]; ok && time.Now().Before(e.expires) {
		return e.p, nil
	}
	p, err := c.backend.FetchProfile(userID)
	if err != nil {
		return Profile{}, err
	}
	c.entries[userID] = cacheEntry{p: p, expires: time.Now().Add(c.ttl)}
	return p, nil
}

var requestsStarted atomic.Int32

func handleRequest(c *Cache, userID string, wg *sync.WaitGroup) {
	defer wg.Done()
	requestsStarted.Add(1)
	p, err := c.Get(userID)
	if err != nil {
		fmt.Fprintf(os.Stderr, "profile %s: %v\n", userID, err)
		return
	}
	_ = p
}

const (
	warmRequests = 24
	requests     = 40
)

func main() {
	harness.Start()

	backend := &ProfileBackend{latency: 3 * time.Millisecond}
	cache := NewCache(backend, 5*time.Minute)

	// Normal traffic: misses serialise on the lock for a few milliseconds
	// each, which is slow but gets through.
	var warm sync.WaitGroup
	for i := 0; i < warmRequests; i++ {
		warm.Add(1)
		go handleRequest(cache, fmt.Sprintf("user-%04d", i%12), &warm)
	}
	warm.Wait()

	// The profile service wedges; the next miss holds the lock forever.
	backend.wedged.Store(true)
	var wg sync.WaitGroup
	for i := 0; i < requests; i++ {
		wg.Add(1)
		go handleRequest(cache, fmt.Sprintf("user-%04d", 100+i%17), &wg)
	}

	harness.WaitUntil("requests to queue on the cache lock", func() bool {
		return requestsStarted.Load() == warmRequests+requests
	}, 200*time.Millisecond)
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
