// control-worker-pool: a healthy worker pool. Sixteen workers range over the
// jobs channel and are idle after the first batch; the dispatcher waits on its
// ticker for the next poll. Nothing is stuck.
package main

import (
	"context"
	"crypto/md5"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"example.com/scenarios/internal/harness"
)

type ResizeJob struct {
	ImageID string
	Width   int
}

type Pool struct {
	jobs      chan ResizeJob
	completed atomic.Int64
	wg        sync.WaitGroup
}

func (p *Pool) worker(id int) {
	defer p.wg.Done()
	for job := range p.jobs {
		sum := md5.Sum([]byte(fmt.Sprintf("%s@%d", job.ImageID, job.Width)))
		_ = sum
		p.completed.Add(1)
	}
}

// pendingJobs polls the (empty) backlog table.
func pendingJobs(poll int) []ResizeJob {
	if poll > 0 {
		return nil
	}
	jobs := make([]ResizeJob, 0, 64)
	for i := 0; i < 64; i++ {
		jobs = append(jobs, ResizeJob{ImageID: fmt.Sprintf("img-%05d", i), Width: 320 * (1 + i%4)})
	}
	return jobs
}

func (p *Pool) dispatch(ctx context.Context, every time.Duration) {
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for poll := 0; ; poll++ {
		for _, j := range pendingJobs(poll) {
			p.jobs <- j
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return
		}
	}
}

func main() {
	harness.Start()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	p := &Pool{jobs: make(chan ResizeJob)}
	for i := 0; i < 16; i++ {
		p.wg.Add(1)
		go p.worker(i)
	}
	go p.dispatch(ctx, 30*time.Second)

	harness.WaitUntil("the first batch to finish", func() bool {
		return p.completed.Load() == 64
	}, 100*time.Millisecond)
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	cancel()
	close(p.jobs)
	p.wg.Wait()
}
