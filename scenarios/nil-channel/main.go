// nil-channel: the config notifier's updates channel is never made (the
// constructor forgot it), so every subscriber blocks forever receiving from a
// nil channel. A metrics reporter left as a placeholder sits in select {}.
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

type ConfigUpdate struct {
	Version int
	Values  map[string]string
}

// Notifier fans configuration updates out to subscribers.
type Notifier struct {
	mu      sync.Mutex
	version int
	updates chan ConfigUpdate
}

// NewNotifier returns a notifier.
// BUG: updates is left nil; Publish would block forever too.
func NewNotifier() *Notifier {
	return &Notifier{}
}

func (n *Notifier) Publish(u ConfigUpdate) {
	n.mu.Lock()
	n.version = u.Version
	n.mu.Unlock()
	n.updates <- u
}

var waiting atomic.Int32

// Wait blocks until the next configuration update.
func (n *Notifier) Wait() ConfigUpdate {
	waiting.Add(1)
	u := <-n.updates
	waiting.Add(-1)
	return u
}

type Subsystem struct {
	name string
	cfg  map[string]string
}

func (s *Subsystem) watchConfig(n *Notifier) {
	for {
		u := n.Wait()
		s.cfg = u.Values
		fmt.Fprintf(os.Stderr, "%s: applied config v%d\n", s.name, u.Version)
	}
}

// startMetricsReporter was meant to push metrics periodically.
func startMetricsReporter() {
	// TODO: wire up the metrics exporter.
	select {}
}

func main() {
	harness.Start()

	n := NewNotifier()
	names := []string{"ratelimiter", "router", "auth", "featureflags", "tls", "logging", "quota", "billing"}
	for _, name := range names {
		s := &Subsystem{name: name}
		go s.watchConfig(n)
	}
	go startMetricsReporter()

	harness.WaitUntil("subscribers to wait on the nil channel", func() bool {
		return waiting.Load() == int32(len(names))
	}, 100*time.Millisecond)
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
