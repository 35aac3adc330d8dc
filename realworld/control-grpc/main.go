// control-grpc: a healthy gRPC client and server. The server (127.0.0.1) runs grpc's own health
// service implementation (google.golang.org/grpc/health); a watchdog checks three services every
// 150 ms, each call with a 1 s deadline. Nothing is stuck: the watchdogs wait on tickers, the
// HTTP/2 transports wait for frames on an idle connection, the server waits for connections.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"example.com/realworld/internal/harness"
)

func serveHealth(srv *grpc.Server, ln net.Listener) {
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintf(os.Stderr, "health server: %v\n", err)
	}
}

// Watchdog checks that backends are serving.
type Watchdog struct {
	health healthpb.HealthClient
}

// Check asks one service for its status, with a deadline.
func (w *Watchdog) Check(service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := w.health.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return healthpb.HealthCheckResponse_UNKNOWN, err
	}
	return resp.Status, nil
}

func (w *Watchdog) watch(service string, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for range t.C {
		if _, err := w.Check(service); err != nil {
			fmt.Fprintf(os.Stderr, "watch %s: %v\n", service, err)
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
	hs := health.NewServer()
	for _, s := range []string{"billing", "catalog", "search"} {
		hs.SetServingStatus(s, healthpb.HealthCheckResponse_SERVING)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go serveHealth(srv, ln)

	dialCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	cc, err := grpc.DialContext(dialCtx, ln.Addr().String(), grpc.WithInsecure(), grpc.WithBlock())
	cancel()
	if err != nil {
		harness.Fatalf("dial: %v", err)
	}
	w := &Watchdog{health: healthpb.NewHealthClient(cc)}
	for _, s := range []string{"billing", "catalog", "search"} {
		go w.watch(s, 150*time.Millisecond)
	}
	harness.WaitUntil("watchdogs to run", func() bool { return harness.ProgressCount() >= 6 }, 0)
	harness.StampBlockedTimes()
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
