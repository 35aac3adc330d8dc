// control-dbsql: a healthy metrics reporter on database/sql + lib/pq (pool of three
// connections). Two reporters query and insert every 100 ms, always closing their rows; between
// ticks the pool is idle. Nothing is stuck: goroutines wait on tickers, database/sql's connection
// opener waits for work, idle connections sit in the pool.
package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	_ "github.com/lib/pq"

	"example.com/realworld/internal/harness"
)

// MetricsStore records request latencies.
type MetricsStore struct {
	db *sql.DB
}

func (m *MetricsStore) migrate(ctx context.Context) error {
	for _, q := range []string{
		`DROP TABLE IF EXISTS rw_ctrl_latency`,
		`CREATE TABLE rw_ctrl_latency (id bigserial PRIMARY KEY, endpoint text NOT NULL, millis int NOT NULL, at timestamptz NOT NULL DEFAULT now())`,
	} {
		if _, err := m.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	return nil
}

// Record stores one observation.
func (m *MetricsStore) Record(ctx context.Context, endpoint string, millis int) error {
	_, err := m.db.ExecContext(ctx, `INSERT INTO rw_ctrl_latency (endpoint, millis) VALUES ($1, $2)`, endpoint, millis)
	return err
}

// SlowEndpoints lists endpoints whose average latency exceeds limit; rows are always closed.
func (m *MetricsStore) SlowEndpoints(ctx context.Context, limit int) ([]string, error) {
	rows, err := m.db.QueryContext(ctx,
		`SELECT endpoint FROM rw_ctrl_latency GROUP BY endpoint HAVING avg(millis) > $1 ORDER BY endpoint`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func (m *MetricsStore) report(endpoint string, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for i := 0; ; i++ {
		<-t.C
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := m.Record(ctx, endpoint, 20+(i*37)%200)
		if err == nil {
			_, err = m.SlowEndpoints(ctx, 100)
		}
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "report %s: %v\n", endpoint, err)
			continue
		}
		harness.Progress()
	}
}

func main() {
	harness.Start()
	db, err := sql.Open("postgres", harness.PostgresDSN())
	if err != nil {
		harness.Fatalf("open: %v", err)
	}
	db.SetMaxOpenConns(3)
	db.SetMaxIdleConns(3)
	m := &MetricsStore{db: db}
	if err := m.migrate(context.Background()); err != nil {
		harness.Fatalf("%v", err)
	}
	go m.report("/checkout", 100*time.Millisecond)
	go m.report("/search", 100*time.Millisecond)

	harness.WaitUntil("reporters to run", func() bool { return harness.ProgressCount() >= 6 }, 0)
	harness.StampBlockedTimes()
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
