// dbsql-leaked-rows: an invoicing service on database/sql + lib/pq, with the pool capped at three
// connections. FirstDisputedInvoice returns from inside its rows.Next loop as soon as it finds a
// disputed invoice, without rows.Close(): every call that finds one keeps a connection checked out
// forever. After three such calls the pool is empty, and every billing run queues in
// db.QueryContext (database/sql waits for a free connection) inside OpenInvoices.
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

// Invoice is one row of rw_invoices.
type Invoice struct {
	ID          int64
	Customer    string
	AmountCents int64
	Status      string
	DueAt       time.Time
}

// InvoiceStore reads and writes invoices.
type InvoiceStore struct {
	db *sql.DB
}

func (s *InvoiceStore) migrate(ctx context.Context) error {
	stmts := []string{
		`DROP TABLE IF EXISTS rw_invoices`,
		`CREATE TABLE rw_invoices (
			id bigserial PRIMARY KEY,
			customer text NOT NULL,
			amount_cents bigint NOT NULL,
			status text NOT NULL,
			due_at timestamptz NOT NULL
		)`,
		`CREATE INDEX rw_invoices_customer ON rw_invoices (customer)`,
	}
	for _, q := range stmts {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	return nil
}

func (s *InvoiceStore) seed(ctx context.Context, customers []string) error {
	statuses := []string{"open", "paid", "disputed", "open", "paid"}
	for ci, c := range customers {
		for i := 0; i < 12; i++ {
			status := statuses[(ci+i)%len(statuses)]
			_, err := s.db.ExecContext(ctx,
				`INSERT INTO rw_invoices (customer, amount_cents, status, due_at) VALUES ($1, $2, $3, now() - make_interval(days => $4))`,
				c, 1000+137*i, status, i*3)
			if err != nil {
				return fmt.Errorf("seed: %w", err)
			}
		}
	}
	return nil
}

// FirstDisputedInvoice returns the customer's oldest disputed invoice, or nil.
//
// BUG: the early return inside the loop skips rows.Close(); the connection behind rows stays
// checked out of the pool for good.
func (s *InvoiceStore) FirstDisputedInvoice(ctx context.Context, customer string) (*Invoice, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT id, customer, amount_cents, status, due_at FROM rw_invoices WHERE customer = $1 ORDER BY due_at`, customer)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var inv Invoice
		if err := rows.Scan(&inv.ID, &inv.Customer, &inv.AmountCents, &inv.Status, &inv.DueAt); err != nil {
			rows.Close()
			return nil, err
		}
		if inv.Status == "disputed" {
			return &inv, nil
		}
	}
	err = rows.Err()
	rows.Close()
	return nil, err
}

var openInvoiceQueries atomic.Int32

// OpenInvoices lists the customer's unpaid invoices; rows are closed properly here.
func (s *InvoiceStore) OpenInvoices(ctx context.Context, customer string) ([]Invoice, error) {
	openInvoiceQueries.Add(1)
	rows, err := s.db.QueryContext(ctx,
		`SELECT id, customer, amount_cents, status, due_at FROM rw_invoices WHERE customer = $1 AND status = 'open' ORDER BY due_at`, customer)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Invoice
	for rows.Next() {
		var inv Invoice
		if err := rows.Scan(&inv.ID, &inv.Customer, &inv.AmountCents, &inv.Status, &inv.DueAt); err != nil {
			return nil, err
		}
		out = append(out, inv)
	}
	return out, rows.Err()
}

// BillingRun computes the dunning letters of one customer.
type BillingRun struct {
	store    *InvoiceStore
	customer string
}

func (b *BillingRun) run(ctx context.Context) {
	invs, err := b.store.OpenInvoices(ctx, b.customer)
	if err != nil {
		fmt.Fprintf(os.Stderr, "billing %s: %v\n", b.customer, err)
		return
	}
	var due int64
	for _, inv := range invs {
		due += inv.AmountCents
	}
	fmt.Fprintf(os.Stderr, "billing %s: %d open invoices, %d cents due\n", b.customer, len(invs), due)
}

const billingRuns = 20

func main() {
	harness.Start()
	ctx := context.Background()

	db, err := sql.Open("postgres", harness.PostgresDSN())
	if err != nil {
		harness.Fatalf("open: %v", err)
	}
	db.SetMaxOpenConns(3)
	db.SetMaxIdleConns(3)
	store := &InvoiceStore{db: db}
	if err := store.migrate(ctx); err != nil {
		harness.Fatalf("%v", err)
	}
	customers := []string{"acme", "globex", "initech", "umbrella", "hooli", "vandelay"}
	if err := store.seed(ctx, customers); err != nil {
		harness.Fatalf("%v", err)
	}

	// The dispute desk looks up three customers: each lookup that finds a dispute leaks its
	// connection.
	for _, c := range customers[:3] {
		inv, err := store.FirstDisputedInvoice(ctx, c)
		if err != nil {
			harness.Fatalf("dispute lookup %s: %v", c, err)
		}
		if inv != nil {
			fmt.Fprintf(os.Stderr, "dispute desk: %s invoice %d (%d cents)\n", c, inv.ID, inv.AmountCents)
		}
	}

	// The nightly billing runs now wait for a connection that never comes back.
	for i := 0; i < billingRuns; i++ {
		run := &BillingRun{store: store, customer: customers[i%len(customers)]}
		go run.run(ctx)
	}

	harness.WaitUntil("billing runs to wait for a connection", func() bool {
		st := db.Stats()
		return openInvoiceQueries.Load() == billingRuns && st.InUse == 3 && st.WaitCount >= billingRuns
	}, 200*time.Millisecond)
	harness.StampBlockedTimes()
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
