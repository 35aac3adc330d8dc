// cgo-many-calls: every request resolves the client's country through a
// vendored C geo-IP library. Its database server went away and the library
// retries with sleep(3) in a loop, so each request sits inside C: hundreds of
// concurrent cgo calls, each holding an OS thread, and the thread count climbs
// with the request rate.
package main

/*
#include <stdlib.h>
#include "geoip.h"
*/
import "C"

import (
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"example.com/scenarios/internal/harness"
)

var inC atomic.Int32

// countryOf returns the ISO country code of ip.
func countryOf(ip string) string {
	cip := C.CString(ip)
	defer C.free(unsafe.Pointer(cip))
	var buf [8]C.char
	inC.Add(1)
	C.geo_lookup(cip, &buf[0], C.int(len(buf)))
	inC.Add(-1)
	return C.GoString(&buf[0])
}

func handleRequest(id int) {
	ip := fmt.Sprintf("203.0.113.%d", id%250+1)
	_ = countryOf(ip)
	// ... serve the localised page ...
}

const requests = 300

func main() {
	harness.Start()

	for i := 0; i < requests; i++ {
		go handleRequest(i)
	}
	harness.WaitUntil("requests to block in the geo-IP library", func() bool {
		return inC.Load() == requests
	}, 300*time.Millisecond)
	harness.StampBlockedTimes()
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
