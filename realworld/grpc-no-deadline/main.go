// grpc-no-deadline: an uptime monitor that probes its backends with the standard gRPC health
// service (google.golang.org/grpc/health/grpc_health_v1) and calls Check with
// context.Background() — no deadline. The backend (in-process on 127.0.0.1) answers health checks
// by waiting for the result of a dependency probe that never arrives, ignoring the call's context.
// Every CheckBackend call waits for a response on the HTTP/2 connection forever.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"example.com/realworld/internal/harness"
)

// dependencyHealth reports SERVING only once the dependency prober says the database is up.
type dependencyHealth struct {
	healthpb.UnimplementedHealthServer
	probeResults chan bool // the prober was never started: nothing is ever sent
	inFlight     atomic.Int32
}

// Check waits for the dependency probe, ignoring ctx.
func (h *dependencyHealth) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	h.inFlight.Add(1)
	defer h.inFlight.Add(-1)
	up := <-h.probeResults
	status := healthpb.HealthCheckResponse_NOT_SERVING
	if up {
		status = healthpb.HealthCheckResponse_SERVING
	}
	return &healthpb.HealthCheckResponse{Status: status}, nil
}

func serveBackend(srv *grpc.Server, ln net.Listener) {
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintf(os.Stderr, "backend: %v\n", err)
	}
}

// UptimeMonitor probes backends.
type UptimeMonitor struct {
	health healthpb.HealthClient
	up     map[string]bool
}

var checksStarted atomic.Int32

// CheckBackend asks a backend service whether it is serving.
//
// BUG: context.Background(): no deadline, so a backend that never answers blocks the monitor.
func (m *UptimeMonitor) CheckBackend(service string) (bool, error) {
	checksStarted.Add(1)
	resp, err := m.health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return false, err
	}
	return resp.Status == healthpb.HealthCheckResponse_SERVING, nil
}

func (m *UptimeMonitor) probe(service string) {
	up, err := m.CheckBackend(service)
	if err != nil {
		fmt.Fprintf(os.Stderr, "probe %s: %v\n", service, err)
		return
	}
	fmt.Fprintf(os.Stderr, "probe %s: up=%v\n", service, up)
}

var services = []string{"billing", "catalog", "checkout", "search", "accounts", "shipping", "reviews", "recommendations"}

func main() {
	harness.Start()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		harness.Fatalf("listen: %v", err)
	}
	backend := &dependencyHealth{probeResults: make(chan bool)}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, backend)
	go serveBackend(srv, ln)

	dialCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	cc, err := grpc.DialContext(dialCtx, ln.Addr().String(), grpc.WithInsecure(), grpc.WithBlock())
	cancel()
	if err != nil {
		harness.Fatalf("dial: %v", err)
	}
	mon := &UptimeMonitor{health: healthpb.NewHealthClient(cc), up: map[string]bool{}}
	for _, s := range services {
		go mon.probe(s)
	}

	harness.WaitUntil("health checks to wait for the backend", func() bool {
		return checksStarted.Load() == int32(len(services)) && backend.inFlight.Load() == int32(len(services))
	}, 300*time.Millisecond)
	harness.StampBlockedTimes()
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
