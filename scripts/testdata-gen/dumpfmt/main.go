package main

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

var mu sync.Mutex
var wg sync.WaitGroup

func holder() { mu.Lock(); time.Sleep(time.Hour) }
func waiter(i int) { mu.Lock() }
func spin() { x := 0; for { x++ } }
func rec(n int) int { if n == 0 { var c chan int; <-c }; return rec(n-1) + 1 }

func main() {
	go holder()
	time.Sleep(10 * time.Millisecond)
	for i := 0; i < 3; i++ { go waiter(i) }
	wg.Add(1)
	go func() { wg.Wait() }()
	go func() { runtime.LockOSThread(); select {} }()
	go rec(120)
	go spin()
	time.Sleep(200 * time.Millisecond)
	fmt.Println("READY")
	os.Stdout.Sync()
	select {}
}
