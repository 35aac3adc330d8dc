// cond-never-signalled: consumers wait on the job queue's sync.Cond until a
// job arrives or the queue is closed. The producer hits an error reading the
// job manifest and returns early without closing the queue, so nobody will
// ever Signal or Broadcast: the consumers wait in Pop forever.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"example.com/scenarios/internal/harness"
)

type Job struct {
	ID   string
	Path string
}

type JobQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	jobs   []Job
	closed bool
}

func NewJobQueue() *JobQueue {
	q := &JobQueue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *JobQueue) Push(j Job) {
	q.mu.Lock()
	q.jobs = append(q.jobs, j)
	q.mu.Unlock()
	q.cond.Signal()
}

// Close wakes every consumer; Pop then reports the queue drained.
func (q *JobQueue) Close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

var idleConsumers atomic.Int32

// Pop blocks until a job is available or the queue is closed.
func (q *JobQueue) Pop() (Job, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.jobs) == 0 && !q.closed {
		idleConsumers.Add(1)
		q.cond.Wait()
		idleConsumers.Add(-1)
	}
	if len(q.jobs) == 0 {
		return Job{}, false
	}
	j := q.jobs[0]
	q.jobs = q.jobs[1:]
	return j, true
}

const manifest = `thumb-0001 /media/in/a1.jpg
thumb-0002 /media/in/a2.jpg
thumb-0003 /media/in/a3.jpg
thumb-0004 /media/in/a4.jpg
thumb-0005
thumb-0006 /media/in/a6.jpg
`

var errBadManifest = errors.New("malformed manifest line")

// produce feeds the queue from the manifest.
// BUG: the error path returns without q.Close().
func produce(q *JobQueue) error {
	sc := bufio.NewScanner(strings.NewReader(manifest))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 {
			return fmt.Errorf("%w: %q", errBadManifest, sc.Text())
		}
		q.Push(Job{ID: fields[0], Path: fields[1]})
	}
	if err := sc.Err(); err != nil {
		return err
	}
	q.Close()
	return nil
}

var processed atomic.Int32

func consume(q *JobQueue, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		job, ok := q.Pop()
		if !ok {
			return
		}
		_ = job // generate the thumbnail
		processed.Add(1)
	}
}

const consumers = 8

func main() {
	harness.Start()

	q := NewJobQueue()
	var consumersWG sync.WaitGroup
	for i := 0; i < consumers; i++ {
		consumersWG.Add(1)
		go consume(q, &consumersWG)
	}

	producerDone := make(chan struct{})
	go func() {
		defer close(producerDone)
		if err := produce(q); err != nil {
			fmt.Fprintf(os.Stderr, "producer: %v\n", err)
		}
	}()
	<-producerDone

	harness.WaitUntil("consumers to wait on the queue", func() bool {
		return idleConsumers.Load() == consumers && processed.Load() == 4
	}, 100*time.Millisecond)
	harness.Ready()

	consumersWG.Wait()
}
