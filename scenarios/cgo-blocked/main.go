// cgo-blocked: a license check goes through a vendored C client that blocks in
// read(2) with no timeout. The license daemon has stopped answering, so every
// worker that needs a license check is stuck inside C, each holding an OS
// thread.
package main

/*
#include <stdlib.h>
#include "licensed.h"
*/
import "C"

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"example.com/scenarios/internal/harness"
)

// LicenseClient talks to the local license daemon over a pipe pair.
type LicenseClient struct {
	replyFD  int // daemon -> us
	daemonFD int // held by the (hung) daemon; never written
}

func NewLicenseClient() (*LicenseClient, error) {
	var p [2]int
	if err := syscall.Pipe(p[:]); err != nil {
		return nil, fmt.Errorf("license daemon channel: %w", err)
	}
	return &LicenseClient{replyFD: p[0], daemonFD: p[1]}, nil
}

var checksInFlight atomic.Int32

// Check asks the daemon whether feature is licensed.
func (c *LicenseClient) Check(feature string) (bool, error) {
	cf := C.CString(feature)
	defer C.free(unsafe.Pointer(cf))
	checksInFlight.Add(1)
	rc := C.lic_check_feature(C.int(c.replyFD), cf)
	checksInFlight.Add(-1)
	switch rc {
	case 1:
		return true, nil
	case 0:
		return false, nil
	default:
		return false, fmt.Errorf("license check %q: I/O error", feature)
	}
}

type ExportJob struct {
	ID     int
	Format string
}

func exportWorker(lc *LicenseClient, jobs <-chan ExportJob) {
	for job := range jobs {
		ok, err := lc.Check("export-" + job.Format)
		if err != nil || !ok {
			fmt.Fprintf(os.Stderr, "job %d: export not licensed: %v\n", job.ID, err)
			continue
		}
		// ... render the export ...
	}
}

// workers is how many export workers run (LICENSE_WORKERS overrides the default of 6; the
// tests use it to put a hundred threads into C at once).
var workers = 6

func main() {
	harness.Start()
	if n, err := strconv.Atoi(os.Getenv("LICENSE_WORKERS")); err == nil && n > 0 {
		workers = n
	}

	jobs := make(chan ExportJob, 3*workers)
	for i := 0; i < workers; i++ {
		lc, err := NewLicenseClient()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go exportWorker(lc, jobs)
	}
	formats := []string{"pdf", "xlsx", "csv"}
	for i := 0; i < 3*workers; i++ {
		jobs <- ExportJob{ID: i, Format: formats[i%len(formats)]}
	}

	harness.WaitUntil("license checks to block in C", func() bool {
		return checksInFlight.Load() == int32(workers)
	}, 150*time.Millisecond)
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
