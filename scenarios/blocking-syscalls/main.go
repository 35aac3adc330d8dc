// blocking-syscalls: spool readers read records from pipes with raw, blocking
// read(2) calls (the fds bypass the netpoller). The writers have stalled, so
// each reader sits in the kernel holding an OS thread: 150 readers, 150+
// threads.
package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"sync/atomic"
	"syscall"
	"time"

	"example.com/scenarios/internal/harness"
)

// SpoolReader consumes length-prefixed records from a spool pipe.
type SpoolReader struct {
	name    string
	fd      int // read end, blocking
	writeFD int // held by the stalled spooler
	buf     []byte
}

func OpenSpool(name string) (*SpoolReader, error) {
	var p [2]int
	if err := syscall.Pipe(p[:]); err != nil {
		return nil, fmt.Errorf("spool %s: %w", name, err)
	}
	return &SpoolReader{name: name, fd: p[0], writeFD: p[1], buf: make([]byte, 512)}, nil
}

var readersBlocked atomic.Int32

// readRecord reads one record with raw read(2) calls.
func (s *SpoolReader) readRecord() ([]byte, error) {
	var hdr [2]byte
	readersBlocked.Add(1)
	n, err := syscall.Read(s.fd, hdr[:])
	readersBlocked.Add(-1)
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", s.name, err)
	}
	if n < len(hdr) {
		return nil, fmt.Errorf("spool %s: short header", s.name)
	}
	size := int(binary.LittleEndian.Uint16(hdr[:]))
	if size > len(s.buf) {
		size = len(s.buf)
	}
	n, err = syscall.Read(s.fd, s.buf[:size])
	if err != nil {
		return nil, err
	}
	return s.buf[:n], nil
}

func (s *SpoolReader) drain() {
	for {
		rec, err := s.readRecord()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return
		}
		_ = rec // forward to the indexer
	}
}

const spools = 150

func main() {
	harness.Start()

	for i := 0; i < spools; i++ {
		s, err := OpenSpool(fmt.Sprintf("audit-%03d", i))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go s.drain()
	}

	threads := pprof.Lookup("threadcreate")
	harness.WaitUntil("readers to block in read(2), each on its own thread", func() bool {
		return readersBlocked.Load() == spools && threads.Count() >= spools
	}, 200*time.Millisecond)
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
