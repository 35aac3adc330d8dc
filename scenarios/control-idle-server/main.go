// control-idle-server: a healthy HTTP API server. An in-process client made a
// handful of keep-alive requests and is now idle, its connections parked in
// the transport's idle pool. Nothing is stuck.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"example.com/scenarios/internal/harness"
)

type Order struct {
	ID     string  `json:"id"`
	Status string  `json:"status"`
	Total  float64 `json:"total"`
}

type OrderStore struct {
	mu     sync.RWMutex
	orders map[string]Order
}

func (s *OrderStore) handleGet(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	s.mu.RLock()
	o, ok := s.orders[id]
	s.mu.RUnlock()
	if !ok {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(o)
}

func handleHealth(w http.ResponseWriter, r *http.Request) {
	_, _ = io.WriteString(w, "ok\n")
}

func warmUp(client *http.Client, base string) error {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	// A few concurrent requests so the pool holds several connections.
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 3; j++ {
				resp, err := client.Get(fmt.Sprintf("%s/api/v1/orders?id=ord-%d", base, (i+j)%3))
				if err != nil {
					errs <- err
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func main() {
	harness.Start()

	store := &OrderStore{orders: map[string]Order{
		"ord-0": {ID: "ord-0", Status: "shipped", Total: 42.5},
		"ord-1": {ID: "ord-1", Status: "pending", Total: 12},
		"ord-2": {ID: "ord-2", Status: "delivered", Total: 99.99},
	}}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/orders", store.handleGet)
	mux.HandleFunc("/healthz", handleHealth)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 10 * time.Minute}
	go srv.Serve(ln)

	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 8, IdleConnTimeout: 10 * time.Minute},
	}
	if err := warmUp(client, "http://"+ln.Addr().String()); err != nil {
		fmt.Fprintln(os.Stderr, "warm-up:", err)
		os.Exit(1)
	}
	time.Sleep(100 * time.Millisecond)
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
