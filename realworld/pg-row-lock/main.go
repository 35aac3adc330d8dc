// pg-row-lock: a warehouse stock service on database/sql + lib/pq. ReserveForOrder updates the
// stock row of a SKU inside a transaction, then waits for the payment service's confirmation
// before committing — a channel nobody sends to, since the payment callback was never wired up.
// The open transaction holds the row lock in PostgreSQL; every AdjustQuantity on the same SKU
// (plain UPDATEs from the restock workers) waits for that lock inside the server, so on the Go
// side each one sits in lib/pq reading the socket for an answer that does not come.
package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	_ "github.com/lib/pq"

	"example.com/realworld/internal/harness"
)

// StockService keeps stock levels per SKU.
type StockService struct {
	db *sql.DB
	// paymentConfirmed is where the payment callback would report; nothing sends on it.
	paymentConfirmed chan string
}

func (s *StockService) migrate(ctx context.Context) error {
	for _, q := range []string{
		`DROP TABLE IF EXISTS rw_stock`,
		`CREATE TABLE rw_stock (sku text PRIMARY KEY, on_hand int NOT NULL, reserved int NOT NULL DEFAULT 0)`,
		`INSERT INTO rw_stock (sku, on_hand) VALUES ('SKU-1001', 40), ('SKU-1002', 12), ('SKU-1003', 7)`,
	} {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	return nil
}

var reservationsHeld atomic.Int32

// ReserveForOrder reserves qty units of sku for an order and commits once payment is confirmed.
//
// BUG: it waits for the confirmation while its transaction holds the row lock, with no timeout.
func (s *StockService) ReserveForOrder(ctx context.Context, order, sku string, qty int) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE rw_stock SET reserved = reserved + $2 WHERE sku = $1`, sku, qty); err != nil {
		return err
	}
	reservationsHeld.Add(1)
	for confirmed := range s.paymentConfirmed {
		if confirmed == order {
			return tx.Commit()
		}
	}
	return fmt.Errorf("order %s: payment channel closed", order)
}

var adjustmentsStarted atomic.Int32

// AdjustQuantity applies a restock delta to sku.
func (s *StockService) AdjustQuantity(ctx context.Context, sku string, delta int) error {
	adjustmentsStarted.Add(1)
	_, err := s.db.ExecContext(ctx, `UPDATE rw_stock SET on_hand = on_hand + $2 WHERE sku = $1`, sku, delta)
	return err
}

func (s *StockService) restockWorker(ctx context.Context, sku string, delta int) {
	if err := s.AdjustQuantity(ctx, sku, delta); err != nil {
		fmt.Fprintf(os.Stderr, "restock %s: %v\n", sku, err)
	}
}

func (s *StockService) checkout(ctx context.Context, order, sku string) {
	if err := s.ReserveForOrder(ctx, order, sku, 1); err != nil {
		fmt.Fprintf(os.Stderr, "checkout %s: %v\n", order, err)
	}
}

// lockWaiters counts backends of this program waiting for a lock on rw_stock.
func lockWaiters(ctx context.Context, db *sql.DB) int {
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'UPDATE rw_stock SET on_hand%'`).Scan(&n)
	if err != nil {
		harness.Fatalf("pg_stat_activity: %v", err)
	}
	return n
}

const restockWorkers = 6

func main() {
	harness.Start()
	ctx := context.Background()

	db, err := sql.Open("postgres", harness.PostgresDSN())
	if err != nil {
		harness.Fatalf("open: %v", err)
	}
	db.SetMaxOpenConns(20)
	svc := &StockService{db: db, paymentConfirmed: make(chan string)}
	if err := svc.migrate(ctx); err != nil {
		harness.Fatalf("%v", err)
	}

	go svc.checkout(ctx, "order-88213", "SKU-1001")
	harness.WaitUntil("the reservation to hold its row lock", func() bool { return reservationsHeld.Load() == 1 }, 50*time.Millisecond)

	for i := 0; i < restockWorkers; i++ {
		go svc.restockWorker(ctx, "SKU-1001", 10+i)
	}
	// The monitor connection is used only here; it goes back to the idle pool afterwards.
	harness.WaitUntil("restock updates to wait for the row lock", func() bool {
		return adjustmentsStarted.Load() == restockWorkers && lockWaiters(ctx, db) == restockWorkers
	}, 200*time.Millisecond)
	harness.StampBlockedTimes()
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
