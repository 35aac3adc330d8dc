// control-redis: a healthy rate limiter on Redis through redigo's redis.Pool{MaxActive: 8,
// Wait: true}. Three API workers count requests per client every 100 ms; every connection is
// closed (returned to the pool) with defer. Nothing is stuck: workers wait on tickers, idle
// connections sit in the pool.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gomodule/redigo/redis"

	"example.com/realworld/internal/harness"
)

// RateLimiter allows limit requests per client per window.
type RateLimiter struct {
	pool   *redis.Pool
	limit  int
	window time.Duration
}

// Allow counts one request of client and says whether it is within the limit.
func (l *RateLimiter) Allow(client string) (bool, error) {
	conn := l.pool.Get()
	defer conn.Close()
	key := fmt.Sprintf("rw:ratelimit:%s:%d", client, time.Now().Unix()/int64(l.window.Seconds()))
	n, err := redis.Int(conn.Do("INCR", key))
	if err != nil {
		return false, err
	}
	if n == 1 {
		if _, err := conn.Do("EXPIRE", key, int(l.window.Seconds())*2); err != nil {
			return false, err
		}
	}
	return n <= l.limit, nil
}

func (l *RateLimiter) serve(client string, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for range t.C {
		if _, err := l.Allow(client); err != nil {
			fmt.Fprintf(os.Stderr, "limiter %s: %v\n", client, err)
			continue
		}
		harness.Progress()
	}
}

func main() {
	harness.Start()
	addr := harness.RedisAddr()
	l := &RateLimiter{
		limit:  1000,
		window: 10 * time.Second,
		pool: &redis.Pool{
			MaxIdle:     8,
			MaxActive:   8,
			Wait:        true,
			IdleTimeout: 5 * time.Minute,
			Dial: func() (redis.Conn, error) {
				return redis.Dial("tcp", addr, redis.DialConnectTimeout(2*time.Second),
					redis.DialReadTimeout(2*time.Second), redis.DialWriteTimeout(2*time.Second))
			},
		},
	}
	for _, c := range []string{"mobile-app", "partner-api", "web"} {
		go l.serve(c, 100*time.Millisecond)
	}
	harness.WaitUntil("workers to run", func() bool { return harness.ProgressCount() >= 6 }, 0)
	harness.StampBlockedTimes()
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
