// Command bigheap builds a large, realistic and fully reachable Go heap, parks many goroutines in
// a mix of states — a few hundred of them leaked — and prints a READY line. It is the target of
// scripts/bench-proof.sh: gostall's reachability proof of a big live process, in its worst case
// (leaks found, so the proof takes its second mark).
//
// The heap: maps of records and accounts with pointer values, slices of structs holding pointers
// and strings, binary trees and linked lists, large objects (> 32 KiB) with and without pointers,
// and small pointer-free data, all reachable from globals. The goroutines: channel receives and
// selects on reachable channels (global queues and per-session inboxes found only through the
// heap), Mutex, RWMutex, WaitGroup and Cond waits that a sleeping goroutine releases later,
// sleeps, and leaked goroutines blocked sending to or receiving from channels nothing else
// references.
package main

import (
	"flag"
	"fmt"
	"math/rand"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"time"
)

var (
	nFlag    = flag.Int("n", 200000, "goroutines to park (leaked ones and releasers included)")
	heapFlag = flag.Int("heap", 1024, "live heap to build, MiB")
	leakFlag = flag.Int("leaks", 300, "goroutines to leak")
	busyFlag = flag.Bool("busy", false, "keep one goroutine computing (no allocation), so the program is never idle while it is read")
)

// spin computes forever without allocating or touching the heap: the program keeps running.
func spin() {
	x := uint64(1)
	for {
		x = x*6364136223846793005 + 1442695040888963407
		if x == 0 {
			fmt.Println(x)
		}
	}
}

// Record is a typical small pointer-bearing object.
type Record struct {
	ID      int64
	Name    string
	Tags    []string
	Next    *Record
	Owner   *Account
	Payload []byte
}

// Account owns records and has a small map of its own.
type Account struct {
	ID      int64
	Email   string
	Records []*Record
	Limits  map[string]int64
	Parent  *Account
}

// Item is an element of large slices of structs.
type Item struct {
	Key    string
	Val    *Record
	Parent *Item
	Score  float64
	Flags  uint32
}

// Node is a binary tree node.
type Node struct {
	Left, Right *Node
	Key         int64
	Data        [4]uint64
	Label       string
}

// Blob is a large (64 KiB) pointer-bearing object.
type Blob struct {
	Refs [8192]*Record
}

// Session is a client connection's state; goroutines wait on its inbox, found only through the
// heap (sessions → Session → Inbox).
type Session struct {
	ID     int64
	Inbox  chan *Record
	User   *Account
	Recent []*Record
}

// Shard holds locks that main takes and a releaser goroutine gives back an hour later, each lock
// in an object of its own: a goroutine waiting for one lock points at that lock only.
type Shard struct {
	mu    *lockBox
	rw    *rwBox
	wg    *wgBox
	cond  *condBox
	index map[string]*Record
}

type lockBox struct {
	mu   sync.Mutex
	name string
}

type rwBox struct {
	rw   sync.RWMutex
	name string
}

type wgBox struct {
	wg   sync.WaitGroup
	name string
}

type condBox struct {
	mu   sync.Mutex
	cond *sync.Cond
}

// Everything hangs off these globals.
var (
	accounts map[int64]*Account
	records  map[int64]*Record
	items    [][]Item
	trees    []*Node
	lists    []*Record
	blobs    []*Blob
	raw      [][]byte
	small    []*[16]int64
	strs     []string
	sessions []*Session
	shards   []*Shard
	queues   []chan *Record
	shutdown = make(chan struct{})
	started  sync.WaitGroup
)

var rng = rand.New(rand.NewSource(1))

func word(n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = letters[rng.Intn(len(letters))]
	}
	return string(b)
}

var nextID int64

func newRecord(owner *Account) *Record {
	nextID++
	r := &Record{
		ID:      nextID,
		Name:    "rec-" + strconv.FormatInt(nextID, 10) + "-" + word(8+rng.Intn(24)),
		Tags:    []string{word(6), word(10)},
		Owner:   owner,
		Payload: make([]byte, 32+rng.Intn(96)),
	}
	return r
}

// buildRound adds about `budget` bytes of mixed data.
func buildRound(budget int) {
	// Maps of accounts and records (~35 %).
	for used := 0; used < budget*35/100; {
		nextID++
		a := &Account{
			ID:     nextID,
			Email:  word(12) + "@example.com",
			Limits: map[string]int64{"rps": rng.Int63n(1000), "burst": rng.Int63n(100)},
		}
		if len(accounts) > 0 && rng.Intn(4) == 0 {
			a.Parent = accounts[int64(rng.Intn(int(nextID)))]
		}
		accounts[a.ID] = a
		used += 400
		var prev *Record
		for k := 0; k < 8; k++ {
			r := newRecord(a)
			r.Next = prev
			prev = r
			a.Records = append(a.Records, r)
			records[r.ID] = r
			used += 330
		}
	}
	// Slices of structs with pointers and strings (~20 %), some large (> 32 KiB).
	for used := 0; used < budget*20/100; {
		n := 64 << rng.Intn(6) // 64 .. 2048 items of 48 bytes
		s := make([]Item, n)
		for k := range s {
			s[k] = Item{Key: strs[rng.Intn(len(strs))], Val: lists[rng.Intn(len(lists))], Score: rng.Float64(), Flags: uint32(k)}
			if k > 0 {
				s[k].Parent = &s[k/2]
			}
		}
		items = append(items, s)
		used += n * 48
	}
	// Trees (~12 %) and linked lists (~3 %).
	for used := 0; used < budget*12/100; {
		var root *Node
		for k := 0; k < 1024; k++ {
			root = insert(root, rng.Int63())
		}
		trees = append(trees, root)
		used += 1024 * 112
	}
	for used := 0; used < budget*3/100; {
		var head *Record
		for k := 0; k < 256; k++ {
			r := newRecord(nil)
			r.Next = head
			head = r
		}
		lists = append(lists, head)
		used += 256 * 300
	}
	// Large objects: pointer-bearing (~10 %) and pointer-free (~10 %).
	for used := 0; used < budget*10/100; {
		b := new(Blob)
		for k := range b.Refs {
			if k%3 == 0 {
				b.Refs[k] = lists[rng.Intn(len(lists))]
			}
		}
		blobs = append(blobs, b)
		used += 64 << 10
	}
	for used := 0; used < budget*10/100; {
		n := (64 << 10) << rng.Intn(5) // 64 KiB .. 1 MiB
		b := make([]byte, n)
		for k := 0; k < n; k += 4096 {
			b[k] = byte(k)
		}
		raw = append(raw, b)
		used += n
	}
	// Small pointer-free data (~10 %).
	for used := 0; used < budget*10/100; {
		if rng.Intn(2) == 0 {
			small = append(small, &[16]int64{rng.Int63()})
			used += 128
		} else {
			strs = append(strs, word(16+rng.Intn(48)))
			used += 64
		}
	}
}

func insert(n *Node, key int64) *Node {
	if n == nil {
		return &Node{Key: key, Label: strs[rng.Intn(len(strs))][:8]}
	}
	if key < n.Key {
		n.Left = insert(n.Left, key)
	} else {
		n.Right = insert(n.Right, key)
	}
	return n
}

func buildHeap(target uint64) runtime.MemStats {
	debug.SetGCPercent(-1)
	accounts = make(map[int64]*Account)
	records = make(map[int64]*Record)
	for k := 0; k < 1024; k++ {
		strs = append(strs, word(16+rng.Intn(48)))
	}
	lists = append(lists, newRecord(nil))
	round := int(min(target/32, 32<<20))
	var ms runtime.MemStats
	for {
		buildRound(round)
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc >= target {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc >= target-target/64 {
				break
			}
		}
	}
	debug.SetGCPercent(100)
	return ms
}

// The park points, as named functions so stacks show them.

//go:noinline
func serve(depth int, s *Session, r *Record, park func(*Session, *Record)) {
	if depth > 0 {
		next := r.Next
		if next == nil {
			next = r
		}
		serve(depth-1, s, next, park)
		runtime.KeepAlive(r)
		return
	}
	started.Done()
	park(s, r)
	runtime.KeepAlive(s)
}

//go:noinline
func waitQueue(s *Session, r *Record) {
	got := <-queues[int(r.ID)%len(queues)]
	runtime.KeepAlive(got)
}

//go:noinline
func waitInbox(s *Session, r *Record) {
	got := <-s.Inbox
	runtime.KeepAlive(got)
}

//go:noinline
func waitEither(s *Session, r *Record) {
	select {
	case got := <-s.Inbox:
		runtime.KeepAlive(got)
	case <-shutdown:
	}
}

//go:noinline
func lockShard(s *Session, r *Record) {
	b := shards[int(r.ID)%len(shards)].mu
	b.mu.Lock()
	b.mu.Unlock()
}

//go:noinline
func readShard(s *Session, r *Record) {
	b := shards[int(r.ID)%len(shards)].rw
	b.rw.RLock()
	b.rw.RUnlock()
}

//go:noinline
func waitShard(s *Session, r *Record) {
	b := shards[int(r.ID)%len(shards)].wg
	b.wg.Wait()
}

//go:noinline
func condShard(s *Session, r *Record) {
	b := shards[int(r.ID)%len(shards)].cond
	b.mu.Lock()
	b.cond.Wait()
	b.mu.Unlock()
}

//go:noinline
func backoff(s *Session, r *Record) { time.Sleep(time.Duration(1+r.ID%10) * time.Hour) }

//go:noinline
func leakSend(r *Record) {
	ch := make(chan *Record)
	started.Add(1)
	go func() {
		started.Done()
		ch <- r // nothing else references ch: leaked
	}()
}

//go:noinline
func leakRecv(r *Record) {
	ch := make(chan *Record, 1)
	started.Add(1)
	go func() {
		started.Done()
		<-ch // nothing else references ch: leaked
	}()
}

//go:noinline
func releaser(sh *Shard) {
	started.Done()
	time.Sleep(time.Hour)
	sh.mu.mu.Unlock()
	sh.rw.rw.Unlock()
	sh.wg.wg.Done()
	sh.cond.cond.Broadcast()
}

var parks = []struct {
	weight int
	fn     func(*Session, *Record)
}{
	{25, waitQueue},
	{12, waitInbox},
	{15, waitEither},
	{10, lockShard},
	{5, readShard},
	{10, waitShard},
	{3, condShard},
	{20, backoff},
}

func main() {
	flag.Parse()
	t0 := time.Now()
	ms := buildHeap(uint64(*heapFlag) << 20)
	built := time.Since(t0)
	for k := 0; k < 64; k++ {
		queues = append(queues, make(chan *Record))
	}
	for k := 0; k < 256; k++ {
		name := "shard-" + strconv.Itoa(k)
		sh := &Shard{
			mu:    &lockBox{name: name},
			rw:    &rwBox{name: name},
			wg:    &wgBox{name: name},
			cond:  &condBox{},
			index: map[string]*Record{},
		}
		sh.cond.cond = sync.NewCond(&sh.cond.mu)
		sh.mu.mu.Lock()
		sh.rw.rw.Lock()
		sh.wg.wg.Add(1)
		shards = append(shards, sh)
		started.Add(1)
		go releaser(sh)
	}
	var weights []int
	for k, p := range parks {
		for w := 0; w < p.weight; w++ {
			weights = append(weights, k)
		}
	}
	ids := make([]int64, 0, len(records))
	for id := range records {
		ids = append(ids, id)
		if len(ids) == 1<<16 {
			break
		}
	}
	rest := *nFlag - *leakFlag - len(shards)
	if rest < 0 {
		rest = 0
	}
	started.Add(rest)
	for i := 0; i < rest; i++ {
		var s *Session
		if i%4 == 0 || len(sessions) == 0 {
			acct := accounts[ids[i%len(ids)]]
			s = &Session{ID: int64(i), Inbox: make(chan *Record), User: acct}
			if acct != nil {
				s.Recent = acct.Records
			}
			sessions = append(sessions, s)
		} else {
			s = sessions[len(sessions)-1]
		}
		r := records[ids[(i*7)%len(ids)]]
		go serve(2+i%6, s, r, parks[weights[i%len(weights)]].fn)
	}
	for i := 0; i < *leakFlag; i++ {
		r := records[ids[i%len(ids)]]
		if i%2 == 0 {
			leakSend(r)
		} else {
			leakRecv(r)
		}
	}
	started.Wait()
	for k := 0; k < 50; k++ {
		time.Sleep(20 * time.Millisecond)
		runtime.Gosched()
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	fmt.Printf("READY goroutines=%d leaked=%d heap_alloc=%d heap_inuse=%d built_in=%s\n",
		runtime.NumGoroutine(), *leakFlag, ms.HeapAlloc, ms.HeapInuse, built.Round(time.Millisecond))
	_ = os.Stdout.Sync()
	if *busyFlag {
		go spin()
	}
	select {}
}
