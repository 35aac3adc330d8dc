// locked-thread: each display's render loop pins itself to an OS thread (the
// graphics context is thread-bound) and then waits for frames. The frame
// scheduler was never started, so the loops block forever on their frame
// channel, each still holding a locked thread.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"example.com/scenarios/internal/harness"
)

type Frame struct {
	Seq      uint64
	Deadline time.Time
}

type Display struct {
	Name   string
	Width  int
	Height int
	frames chan Frame
	fb     []uint32
}

// gfxContext stands in for a thread-bound graphics context.
type gfxContext struct {
	display string
	tid     int
}

func createContext(d *Display) *gfxContext {
	return &gfxContext{display: d.Name, tid: syscall.Gettid()}
}

func (g *gfxContext) present(fb []uint32) {}

var loopsWaiting atomic.Int32

// renderLoop draws frames for one display on a dedicated OS thread.
func renderLoop(d *Display) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	ctx := createContext(d)
	loopsWaiting.Add(1)
	for f := range d.frames {
		for i := range d.fb {
			d.fb[i] = uint32(f.Seq)
		}
		ctx.present(d.fb)
	}
}

func main() {
	harness.Start()

	displays := []*Display{
		{Name: "HDMI-1", Width: 320, Height: 180},
		{Name: "HDMI-2", Width: 320, Height: 180},
		{Name: "DP-1", Width: 320, Height: 180},
		{Name: "eDP-1", Width: 320, Height: 180},
	}
	for _, d := range displays {
		d.frames = make(chan Frame)
		d.fb = make([]uint32, d.Width*d.Height)
		go renderLoop(d)
	}
	// The frame scheduler that would feed d.frames is started by a plugin
	// that failed to load; nothing ever sends a frame.
	fmt.Fprintln(os.Stderr, "compositor: frame scheduler plugin not found, continuing")

	harness.WaitUntil("render loops to wait for frames", func() bool {
		return loopsWaiting.Load() == int32(len(displays))
	}, 100*time.Millisecond)
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
