// net-read-no-deadline: clients of an inventory upstream write a request and
// read the reply without any read deadline. The upstream accepted the
// connections but hung without answering, so every client waits in readReply
// forever.
package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"example.com/scenarios/internal/harness"
)

// upstream is the process-wide fake upstream.
var upstream *hungUpstream

// hungUpstream accepts connections and never reads or writes them.
type hungUpstream struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (u *hungUpstream) acceptN(n int) {
	for i := 0; i < n; i++ {
		c, err := u.ln.Accept()
		if err != nil {
			return
		}
		u.mu.Lock()
		u.conns = append(u.conns, c)
		u.mu.Unlock()
	}
}

func (u *hungUpstream) accepted() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.conns)
}

// UpstreamClient speaks a length-prefixed request/reply protocol.
type UpstreamClient struct {
	addr string
	conn net.Conn
	r    *bufio.Reader
}

func Dial(addr string) (*UpstreamClient, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	return &UpstreamClient{addr: addr, conn: c, r: bufio.NewReader(c)}, nil
}

var readsPending atomic.Int32

func (c *UpstreamClient) Call(req []byte) ([]byte, error) {
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(req)))
	if _, err := c.conn.Write(append(hdr[:], req...)); err != nil {
		return nil, err
	}
	readsPending.Add(1)
	defer readsPending.Add(-1)
	return c.readReply()
}

// readReply reads one length-prefixed reply.
// BUG: no read deadline; a hung upstream blocks the caller forever.
func (c *UpstreamClient) readReply() ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return nil, fmt.Errorf("upstream %s: reply header: %w", c.addr, err)
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(c.r, body); err != nil {
		return nil, fmt.Errorf("upstream %s: reply body: %w", c.addr, err)
	}
	return body, nil
}

func checkStock(addr string, sku string) {
	c, err := Dial(addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	if _, err := c.Call([]byte("STOCK " + sku)); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}

const clients = 8

func main() {
	harness.Start()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	up := &hungUpstream{ln: ln}
	upstream = up // keep the accepted connections reachable: a collected net.Conn is closed by its finalizer
	go up.acceptN(clients)

	for i := 0; i < clients; i++ {
		go checkStock(ln.Addr().String(), fmt.Sprintf("SKU-%04d", 100+i))
	}

	harness.WaitUntil("clients to wait for replies", func() bool {
		return readsPending.Load() == clients && up.accepted() == clients
	}, 100*time.Millisecond)
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
