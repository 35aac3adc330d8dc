// sqlite-busy: a job queue on SQLite (github.com/mattn/go-sqlite3, cgo) in one database file.
// The dispatcher claims a batch of jobs in a write transaction (BEGIN IMMEDIATE) and then waits
// for a worker slot to report ready before committing — a channel nobody sends to. Its open
// transaction holds SQLite's RESERVED lock on the file. Every Enqueue from the API goroutines is an
// INSERT on another connection: SQLite answers SQLITE_BUSY and, with _busy_timeout set to ~24 days,
// its busy handler sleeps and retries in C (sqlite3_step → sqliteDefaultBusyCallback → usleep)
// — each API goroutine sits in a cgo call, holding an OS thread, forever.
package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"example.com/realworld/internal/harness"
)

// JobQueue is a persistent queue of background jobs.
type JobQueue struct {
	db *sql.DB
	// workerReady is where a worker slot would announce itself; none ever does.
	workerReady chan int
}

func (q *JobQueue) migrate(ctx context.Context) error {
	for _, s := range []string{
		`CREATE TABLE IF NOT EXISTS jobs (
			id INTEGER PRIMARY KEY AUTOINCREMENT,
			kind TEXT NOT NULL,
			payload TEXT NOT NULL,
			claimed_by TEXT,
			created_at TEXT NOT NULL DEFAULT (datetime('now'))
		)`,
		`INSERT INTO jobs (kind, payload) VALUES ('email', '{"to":"ops@example.com"}'), ('resize', '{"img":42}'), ('email', '{"to":"sales@example.com"}')`,
	} {
		if _, err := q.db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	return nil
}

var batchesClaimed atomic.Int32

// ClaimBatch marks up to n unclaimed jobs as taken by dispatcher and hands them to a worker.
//
// BUG: it waits for a free worker while its write transaction is open, with no timeout; the
// database file stays write-locked meanwhile.
func (q *JobQueue) ClaimBatch(ctx context.Context, dispatcher string, n int) (int64, error) {
	tx, err := q.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock=immediate)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx,
		`UPDATE jobs SET claimed_by = ? WHERE id IN (SELECT id FROM jobs WHERE claimed_by IS NULL ORDER BY id LIMIT ?)`, dispatcher, n)
	if err != nil {
		return 0, err
	}
	claimed, _ := res.RowsAffected()
	batchesClaimed.Add(1)
	slot := <-q.workerReady
	fmt.Fprintf(os.Stderr, "dispatcher: batch of %d to worker %d\n", claimed, slot)
	return claimed, tx.Commit()
}

var enqueues atomic.Int32

// Enqueue appends one job.
func (q *JobQueue) Enqueue(ctx context.Context, kind, payload string) error {
	enqueues.Add(1)
	_, err := q.db.ExecContext(ctx, `INSERT INTO jobs (kind, payload) VALUES (?, ?)`, kind, payload)
	return err
}

func (q *JobQueue) dispatch(ctx context.Context) {
	if _, err := q.ClaimBatch(ctx, "dispatcher-1", 10); err != nil {
		fmt.Fprintf(os.Stderr, "dispatch: %v\n", err)
	}
}

func (q *JobQueue) handleSignup(ctx context.Context, user int) {
	if err := q.Enqueue(ctx, "welcome-email", fmt.Sprintf(`{"user":%d}`, user)); err != nil {
		fmt.Fprintf(os.Stderr, "signup %d: %v\n", user, err)
	}
}

const signups = 4

func main() {
	harness.Start()
	ctx := context.Background()

	dir, err := os.MkdirTemp("", "rw-sqlite-busy-")
	if err != nil {
		harness.Fatalf("%v", err)
	}
	path := filepath.Join(dir, "jobs.db")
	// ~24 days of busy timeout: the API would rather wait than fail a signup.
	dsn := "file:" + path + "?_busy_timeout=2147483647&_txlock=immediate"
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		harness.Fatalf("open: %v", err)
	}
	db.SetMaxOpenConns(8)
	q := &JobQueue{db: db, workerReady: make(chan int)}
	if err := q.migrate(ctx); err != nil {
		harness.Fatalf("%v", err)
	}

	go q.dispatch(ctx)
	harness.WaitUntil("the dispatcher to hold the write lock", func() bool { return batchesClaimed.Load() == 1 }, 20*time.Millisecond)

	for i := 0; i < signups; i++ {
		go q.handleSignup(ctx, 5000+i)
	}
	harness.WaitUntil("signups to wait on the busy database", func() bool {
		return enqueues.Load() == signups && db.Stats().InUse == signups+1
	}, 500*time.Millisecond)
	harness.StampBlockedTimes()
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	os.RemoveAll(dir)
}
