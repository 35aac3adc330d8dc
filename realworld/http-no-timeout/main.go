// http-no-timeout: an exchange-rates fetcher that calls its rates provider with http.DefaultClient
// (no Timeout, no context deadline). The provider (here in-process on 127.0.0.1, standing in for
// a remote one that hung) accepts the connections and reads each request, then never answers.
// Every refresh goroutine sits in the HTTP round trip inside FetchRate forever; each connection's
// net/http read loop sits in a socket read.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"example.com/realworld/internal/harness"
)

// hungProvider accepts connections, reads one request from each, and never writes a byte.
type hungProvider struct {
	ln       net.Listener
	mu       sync.Mutex
	conns    []net.Conn
	requests atomic.Int32
}

func (p *hungProvider) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, c) // keep it: a collected net.Conn is closed by its finalizer
		p.mu.Unlock()
		go p.swallowRequest(c)
	}
}

func (p *hungProvider) swallowRequest(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if strings.TrimRight(line, "\r\n") == "" {
			p.requests.Add(1)
			return // request read; the reply never comes
		}
	}
}

// Rate is one currency pair quote.
type Rate struct {
	Pair  string  `json:"pair"`
	Value float64 `json:"value"`
}

// RatesFetcher refreshes quotes from the provider.
type RatesFetcher struct {
	baseURL string
	client  *http.Client
	mu      sync.Mutex
	rates   map[string]float64
}

var fetchesStarted atomic.Int32

// FetchRate asks the provider for one pair.
//
// BUG: f.client is http.DefaultClient: no Timeout, and the request has no deadline.
func (f *RatesFetcher) FetchRate(pair string) (Rate, error) {
	fetchesStarted.Add(1)
	resp, err := f.client.Get(f.baseURL + "/v1/rates/" + pair)
	if err != nil {
		return Rate{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Rate{}, fmt.Errorf("rates provider: %s", resp.Status)
	}
	var r Rate
	err = json.NewDecoder(resp.Body).Decode(&r)
	return r, err
}

func (f *RatesFetcher) refresh(pair string) {
	r, err := f.FetchRate(pair)
	if err != nil {
		fmt.Fprintf(os.Stderr, "refresh %s: %v\n", pair, err)
		return
	}
	f.mu.Lock()
	f.rates[pair] = r.Value
	f.mu.Unlock()
}

var pairs = []string{
	"EURUSD", "USDJPY", "GBPUSD", "AUDUSD", "USDCAD", "USDCHF", "NZDUSD", "EURGBP",
	"EURJPY", "GBPJPY", "EURCHF", "AUDJPY", "USDSEK", "USDNOK", "USDPLN", "USDMXN",
}

func main() {
	harness.Start()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		harness.Fatalf("listen: %v", err)
	}
	provider := &hungProvider{ln: ln}
	go provider.serve()

	fetcher := &RatesFetcher{baseURL: "http://" + ln.Addr().String(), client: http.DefaultClient, rates: map[string]float64{}}
	for _, p := range pairs {
		go fetcher.refresh(p)
	}

	harness.WaitUntil("rate fetches to wait for replies", func() bool {
		return fetchesStarted.Load() == int32(len(pairs)) && provider.requests.Load() == int32(len(pairs))
	}, 200*time.Millisecond)
	harness.StampBlockedTimes()
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	_ = provider
}
