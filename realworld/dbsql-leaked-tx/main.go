// dbsql-leaked-tx: a wallet ledger on database/sql + lib/pq, pool capped at three connections.
// Transfer begins a transaction, reads the payer's balance with SELECT … FOR UPDATE, and on
// insufficient funds returns ErrInsufficientFunds without tx.Rollback(): the transaction stays
// open and keeps its connection. Three declined transfers drain the pool; every later Transfer
// waits in db.BeginTx for a connection (database/sql's connection request queue) forever.
package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	_ "github.com/lib/pq"

	"example.com/realworld/internal/harness"
)

// ErrInsufficientFunds declines a transfer.
var ErrInsufficientFunds = errors.New("insufficient funds")

// Ledger moves money between wallets.
type Ledger struct {
	db *sql.DB
}

func (l *Ledger) migrate(ctx context.Context) error {
	for _, q := range []string{
		`DROP TABLE IF EXISTS rw_ledger_entries`,
		`DROP TABLE IF EXISTS rw_wallets`,
		`CREATE TABLE rw_wallets (id text PRIMARY KEY, balance_cents bigint NOT NULL)`,
		`CREATE TABLE rw_ledger_entries (
			id bigserial PRIMARY KEY,
			from_wallet text NOT NULL REFERENCES rw_wallets(id),
			to_wallet text NOT NULL REFERENCES rw_wallets(id),
			amount_cents bigint NOT NULL,
			created_at timestamptz NOT NULL DEFAULT now()
		)`,
	} {
		if _, err := l.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	return nil
}

func (l *Ledger) openWallet(ctx context.Context, id string, balance int64) error {
	_, err := l.db.ExecContext(ctx, `INSERT INTO rw_wallets (id, balance_cents) VALUES ($1, $2)`, id, balance)
	return err
}

var transfersStarted atomic.Int32

// Transfer moves amount from one wallet to another in one transaction.
//
// BUG: the insufficient-funds path returns without tx.Rollback(); the open transaction keeps its
// connection checked out of the pool.
func (l *Ledger) Transfer(ctx context.Context, from, to string, amount int64) error {
	transfersStarted.Add(1)
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	var balance int64
	if err := tx.QueryRowContext(ctx, `SELECT balance_cents FROM rw_wallets WHERE id = $1 FOR UPDATE`, from).Scan(&balance); err != nil {
		tx.Rollback()
		return fmt.Errorf("balance of %s: %w", from, err)
	}
	if balance < amount {
		return fmt.Errorf("transfer %s -> %s of %d: %w", from, to, amount, ErrInsufficientFunds)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE rw_wallets SET balance_cents = balance_cents - $2 WHERE id = $1`, from, amount); err != nil {
		tx.Rollback()
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE rw_wallets SET balance_cents = balance_cents + $2 WHERE id = $1`, to, amount); err != nil {
		tx.Rollback()
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO rw_ledger_entries (from_wallet, to_wallet, amount_cents) VALUES ($1, $2, $3)`, from, to, amount); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// payout is one scheduled payment of the payout batch.
type payout struct {
	from, to string
	amount   int64
}

func (l *Ledger) settle(ctx context.Context, p payout) {
	if err := l.Transfer(ctx, p.from, p.to, p.amount); err != nil {
		fmt.Fprintf(os.Stderr, "payout: %v\n", err)
	}
}

const payouts = 20

func main() {
	harness.Start()
	ctx := context.Background()

	db, err := sql.Open("postgres", harness.PostgresDSN())
	if err != nil {
		harness.Fatalf("open: %v", err)
	}
	db.SetMaxOpenConns(3)
	ledger := &Ledger{db: db}
	if err := ledger.migrate(ctx); err != nil {
		harness.Fatalf("%v", err)
	}
	wallets := map[string]int64{"merchant-17": 500_00, "merchant-42": 120_00, "escrow": 10_000_00, "alice": 30_00, "bob": 0, "carol": 5_00}
	for id, bal := range wallets {
		if err := ledger.openWallet(ctx, id, bal); err != nil {
			harness.Fatalf("open wallet %s: %v", id, err)
		}
	}

	// Refunds from wallets that cannot cover them: each one is declined and leaks its transaction.
	for _, p := range []payout{{"bob", "alice", 12_00}, {"carol", "alice", 9_00}, {"alice", "merchant-17", 99_00}} {
		if err := ledger.Transfer(ctx, p.from, p.to, p.amount); !errors.Is(err, ErrInsufficientFunds) {
			harness.Fatalf("expected a declined transfer, got %v", err)
		}
	}
	transfersStarted.Store(0)

	// The payout batch: every transfer now waits for a connection.
	for i := 0; i < payouts; i++ {
		p := payout{from: "escrow", to: []string{"merchant-17", "merchant-42", "alice"}[i%3], amount: int64(100 + i)}
		go ledger.settle(ctx, p)
	}

	harness.WaitUntil("payouts to wait for a connection", func() bool {
		st := db.Stats()
		return transfersStarted.Load() == payouts && st.InUse == 3 && st.WaitCount >= payouts
	}, 200*time.Millisecond)
	harness.StampBlockedTimes()
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
