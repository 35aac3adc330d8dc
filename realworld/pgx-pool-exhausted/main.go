// pgx-pool-exhausted: a reporting service on pgx v4's pgxpool with MaxConns = 4. ExportCustomer
// acquires a connection and, for a customer without orders, returns ErrNothingToExport before
// conn.Release(): the connection stays acquired forever. Four such customers drain the pool, and
// every MonthlySummary request (pool.QueryRow with the request's context) waits in pool.Acquire
// for a connection that will never be released.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v4/pgxpool"

	"example.com/realworld/internal/harness"
)

// ErrNothingToExport: the customer has no orders.
var ErrNothingToExport = errors.New("nothing to export")

// ReportService builds customer reports.
type ReportService struct {
	pool *pgxpool.Pool
}

func (r *ReportService) migrate(ctx context.Context) error {
	for _, q := range []string{
		`DROP TABLE IF EXISTS rw_orders`,
		`CREATE TABLE rw_orders (id bigserial PRIMARY KEY, customer_id int NOT NULL, total_cents bigint NOT NULL, placed_at timestamptz NOT NULL DEFAULT now())`,
		`INSERT INTO rw_orders (customer_id, total_cents) SELECT 1 + g % 10, 100 + g * 7 FROM generate_series(1, 500) AS g`,
	} {
		if _, err := r.pool.Exec(ctx, q); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	return nil
}

// ExportCustomer writes a customer's order history to the export bucket.
//
// BUG: the "no orders" path returns before conn.Release(); the connection never goes back.
func (r *ReportService) ExportCustomer(ctx context.Context, customerID int) error {
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM rw_orders WHERE customer_id = $1`, customerID).Scan(&n); err != nil {
		conn.Release()
		return err
	}
	if n == 0 {
		return fmt.Errorf("customer %d: %w", customerID, ErrNothingToExport)
	}
	// … stream the orders out …
	conn.Release()
	return nil
}

// Summary is one customer's month.
type Summary struct {
	Orders     int
	TotalCents int64
}

var summaries atomic.Int32

// MonthlySummary totals a customer's orders of the current month.
func (r *ReportService) MonthlySummary(ctx context.Context, customerID int) (Summary, error) {
	summaries.Add(1)
	var s Summary
	err := r.pool.QueryRow(ctx,
		`SELECT count(*), coalesce(sum(total_cents), 0) FROM rw_orders WHERE customer_id = $1 AND placed_at >= date_trunc('month', now())`,
		customerID).Scan(&s.Orders, &s.TotalCents)
	return s, err
}

// handleSummaryRequest serves one dashboard request; ctx is the request's context.
func (r *ReportService) handleSummaryRequest(customerID int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := r.MonthlySummary(ctx, customerID)
	if err != nil {
		fmt.Fprintf(os.Stderr, "summary %d: %v\n", customerID, err)
		return
	}
	fmt.Fprintf(os.Stderr, "summary %d: %d orders, %d cents\n", customerID, s.Orders, s.TotalCents)
}

const dashboardRequests = 20

func main() {
	harness.Start()
	ctx := context.Background()

	cfg, err := pgxpool.ParseConfig(harness.PostgresDSN())
	if err != nil {
		harness.Fatalf("pool config: %v", err)
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.ConnectConfig(ctx, cfg)
	if err != nil {
		harness.Fatalf("connect: %v", err)
	}
	svc := &ReportService{pool: pool}
	if err := svc.migrate(ctx); err != nil {
		harness.Fatalf("%v", err)
	}

	// The export job hits four customers without orders: four connections leak.
	for _, id := range []int{501, 502, 503, 504} {
		if err := svc.ExportCustomer(ctx, id); !errors.Is(err, ErrNothingToExport) {
			harness.Fatalf("export %d: %v", id, err)
		}
	}

	for i := 0; i < dashboardRequests; i++ {
		go svc.handleSummaryRequest(1 + i%10)
	}

	harness.WaitUntil("dashboard requests to wait for a pool connection", func() bool {
		st := pool.Stat()
		return summaries.Load() == dashboardRequests && st.AcquiredConns() == 4 && st.TotalConns() == 4
	}, 300*time.Millisecond)
	harness.StampBlockedTimes()
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
