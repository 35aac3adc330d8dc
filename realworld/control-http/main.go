// control-http: a healthy price poller. An in-process pricing API (net/http server on 127.0.0.1)
// answers every request; three pollers call it every 150 ms through an http.Client with a 2 s
// Timeout and close every body. Nothing is stuck: the pollers wait on tickers, the server's
// connection goroutines and the client's keep-alive read loops wait on idle connections.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"example.com/realworld/internal/harness"
)

// pricingAPI serves list prices.
type pricingAPI struct{}

func (pricingAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"sku": r.URL.Path[len("/price/"):], "cents": 1999})
}

func servePricing(srv *http.Server, ln net.Listener) {
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		fmt.Fprintf(os.Stderr, "pricing: %v\n", err)
	}
}

// PriceClient reads prices with a bounded client.
type PriceClient struct {
	base   string
	client *http.Client
}

// Price fetches one price.
func (c *PriceClient) Price(sku string) (int, error) {
	resp, err := c.client.Get(c.base + "/price/" + sku)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Cents int `json:"cents"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	return body.Cents, nil
}

func (c *PriceClient) poll(sku string, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for range t.C {
		if _, err := c.Price(sku); err != nil {
			fmt.Fprintf(os.Stderr, "poll %s: %v\n", sku, err)
			continue
		}
		harness.Progress()
	}
}

func main() {
	harness.Start()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		harness.Fatalf("listen: %v", err)
	}
	srv := &http.Server{Handler: pricingAPI{}, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	go servePricing(srv, ln)

	pc := &PriceClient{base: "http://" + ln.Addr().String(), client: &http.Client{Timeout: 2 * time.Second}}
	for _, sku := range []string{"SKU-1", "SKU-2", "SKU-3"} {
		go pc.poll(sku, 150*time.Millisecond)
	}
	harness.WaitUntil("pollers to run", func() bool { return harness.ProgressCount() >= 6 }, 0)
	harness.StampBlockedTimes()
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
