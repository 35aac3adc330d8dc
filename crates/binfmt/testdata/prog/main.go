// Command binfmtprog is the test subject of gostall-binfmt's tests: a small
// program with an inlinable function, a method, a closure and a generic
// function, built by crates/binfmt/tests with every supported toolchain.
// It imports net so that a default build links the cgo resolver.
package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
)

// Counter is a type with a method.
type Counter struct {
	n int
}

// Add is a method that is never inlined.
//
//go:noinline
func (c *Counter) Add(d int) int {
	c.n += d
	return c.n
}

// leaf is never inlined.
//
//go:noinline
func leaf(x int) int {
	return x + 1
}

// double is small enough to be inlined everywhere; its call to leaf keeps an
// instruction at its own line after inlining.
func double(x int) int {
	return leaf(x) * 2 // line of the inlined call
}

// useDouble is never inlined itself but has double inlined into it.
//
//go:noinline
func useDouble(x int) int {
	y := double(x) // line of the call site
	return y + 3
}

// Map is a generic function.
//
//go:noinline
func Map[T, U any](xs []T, f func(T) U) []U {
	out := make([]U, 0, len(xs))
	for _, x := range xs {
		out = append(out, f(x))
	}
	return out
}

// work uses a closure.
//
//go:noinline
func work(xs []int) int {
	c := &Counter{}
	add := func(v int) {
		c.Add(useDouble(v))
	}
	for _, x := range xs {
		add(x)
	}
	return c.n
}

func main() {
	xs := []int{1, 2, 3}
	if len(os.Args) > 1 {
		if n, err := strconv.Atoi(os.Args[1]); err == nil {
			xs = append(xs, n)
		}
	}
	strs := Map(xs, strconv.Itoa)
	ip := net.ParseIP("127.0.0.1")
	fmt.Println(work(xs), strs, ip)
}
