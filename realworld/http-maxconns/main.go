// http-maxconns: a storefront that asks the inventory service for stock levels through an
// http.Transport with MaxConnsPerHost = 2 (to protect the inventory service) and no timeouts.
// The inventory service (in-process on 127.0.0.1) accepts and reads requests but has hung and
// never answers. The two allowed connections are stuck in their round trips; every other
// StockLevel call queues in the Transport for a connection to that host that will never free up.
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

// hungInventory accepts connections and reads requests, but never replies.
type hungInventory struct {
	ln       net.Listener
	mu       sync.Mutex
	conns    []net.Conn
	accepted atomic.Int32
	requests atomic.Int32
}

func (s *hungInventory) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.accepted.Add(1)
		go s.readRequest(c)
	}
}

func (s *hungInventory) readRequest(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if strings.TrimRight(line, "\r\n") == "" {
			s.requests.Add(1)
			return
		}
	}
}

// InventoryClient talks to the inventory service.
type InventoryClient struct {
	base   string
	client *http.Client
}

// NewInventoryClient caps connections to the inventory host at two.
func NewInventoryClient(base string) *InventoryClient {
	tr := &http.Transport{
		MaxConnsPerHost:     2,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
	}
	return &InventoryClient{base: base, client: &http.Client{Transport: tr}}
}

var lookups atomic.Int32

// StockLevel returns the units on hand for sku.
func (c *InventoryClient) StockLevel(sku string) (int, error) {
	lookups.Add(1)
	resp, err := c.client.Get(c.base + "/stock/" + sku)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		OnHand int `json:"on_hand"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, err
	}
	return body.OnHand, nil
}

func renderProductPage(inv *InventoryClient, sku string) {
	n, err := inv.StockLevel(sku)
	if err != nil {
		fmt.Fprintf(os.Stderr, "product %s: %v\n", sku, err)
		return
	}
	fmt.Fprintf(os.Stderr, "product %s: %d in stock\n", sku, n)
}

const pageViews = 12

func main() {
	harness.Start()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		harness.Fatalf("listen: %v", err)
	}
	svc := &hungInventory{ln: ln}
	go svc.serve()

	inv := NewInventoryClient("http://" + ln.Addr().String())
	for i := 0; i < pageViews; i++ {
		go renderProductPage(inv, fmt.Sprintf("SKU-%05d", 31000+i))
	}

	harness.WaitUntil("page views to queue for inventory connections", func() bool {
		return lookups.Load() == pageViews && svc.requests.Load() == 2
	}, 300*time.Millisecond)
	if n := svc.accepted.Load(); n != 2 {
		harness.Fatalf("inventory accepted %d connections, want 2", n)
	}
	harness.StampBlockedTimes()
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
