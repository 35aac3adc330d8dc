// redis-pool-exhausted: a session cache on Redis through redigo's redis.Pool{MaxActive: 4,
// Wait: true}. Refresh extends a session's TTL; when the session has already expired it returns
// ErrSessionExpired without conn.Close(), so the connection is never given back to the pool. Four
// expired sessions later the pool is dry, and every request's Load waits in pool.Get() for a
// connection that will never be returned.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gomodule/redigo/redis"

	"example.com/realworld/internal/harness"
)

// ErrSessionExpired: the session is not in Redis any more.
var ErrSessionExpired = errors.New("session expired")

// SessionCache stores web sessions in Redis.
type SessionCache struct {
	pool *redis.Pool
	ttl  time.Duration
}

func newSessionCache(addr string) *SessionCache {
	return &SessionCache{
		ttl: 30 * time.Minute,
		pool: &redis.Pool{
			MaxIdle:     4,
			MaxActive:   4,
			Wait:        true,
			IdleTimeout: 5 * time.Minute,
			Dial: func() (redis.Conn, error) {
				return redis.Dial("tcp", addr, redis.DialConnectTimeout(2*time.Second))
			},
		},
	}
}

func (c *SessionCache) key(id string) string { return "rw:session:" + id }

// Save stores a session.
func (c *SessionCache) Save(id, payload string) error {
	conn := c.pool.Get()
	defer conn.Close()
	_, err := conn.Do("SET", c.key(id), payload, "EX", int(c.ttl.Seconds()))
	return err
}

// Refresh extends a session's lifetime.
//
// BUG: the expired-session path returns without conn.Close(): the connection leaks out of the pool.
func (c *SessionCache) Refresh(id string) error {
	conn := c.pool.Get()
	ok, err := redis.Int(conn.Do("EXPIRE", c.key(id), int(c.ttl.Seconds())))
	if err != nil {
		conn.Close()
		return err
	}
	if ok == 0 {
		return fmt.Errorf("refresh %s: %w", id, ErrSessionExpired)
	}
	return conn.Close()
}

var loads atomic.Int32

// Load reads a session.
func (c *SessionCache) Load(id string) (string, error) {
	loads.Add(1)
	conn := c.pool.Get()
	defer conn.Close()
	return redis.String(conn.Do("GET", c.key(id)))
}

func (c *SessionCache) serveRequest(id string) {
	if _, err := c.Load(id); err != nil {
		fmt.Fprintf(os.Stderr, "request with session %s: %v\n", id, err)
	}
}

const requests = 20

func main() {
	harness.Start()
	cache := newSessionCache(harness.RedisAddr())

	for i := 0; i < requests; i++ {
		if err := cache.Save(fmt.Sprintf("u%03d", i), fmt.Sprintf(`{"user":%d,"cart":[]}`, i)); err != nil {
			harness.Fatalf("save session: %v", err)
		}
	}
	// Four browsers come back with sessions that expired: each refresh leaks a connection.
	for _, id := range []string{"gone-1", "gone-2", "gone-3", "gone-4"} {
		if err := cache.Refresh(id); !errors.Is(err, ErrSessionExpired) {
			harness.Fatalf("refresh %s: %v", id, err)
		}
	}

	for i := 0; i < requests; i++ {
		go cache.serveRequest(fmt.Sprintf("u%03d", i))
	}

	harness.WaitUntil("requests to wait for a Redis connection", func() bool {
		st := cache.pool.Stats()
		return loads.Load() == requests && st.ActiveCount == 4 && st.IdleCount == 0
	}, 200*time.Millisecond)
	harness.StampBlockedTimes()
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
