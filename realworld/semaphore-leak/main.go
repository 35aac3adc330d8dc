// semaphore-leak: an upload service that renders thumbnails under a
// golang.org/x/sync/semaphore.Weighted of 3 (rendering is memory-hungry). Render acquires a slot
// and, when the upload's header says the image is empty, returns ErrCorruptImage before the
// deferred Release is even registered: the slot is gone for good. Three corrupt uploads later
// every Render waits in sem.Acquire(context.Background(), 1) forever.
package main

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/semaphore"

	"example.com/realworld/internal/harness"
)

// ErrCorruptImage rejects an upload.
var ErrCorruptImage = errors.New("corrupt image")

// Upload is an uploaded picture.
type Upload struct {
	Name          string
	Width, Height int
	Pixels        []byte
}

// ThumbnailRenderer renders thumbnails, at most three at a time.
type ThumbnailRenderer struct {
	slots *semaphore.Weighted
}

var renders atomic.Int32

// Render scales an upload down to a 128-pixel thumbnail.
//
// BUG: the corrupt-image check runs after Acquire and before `defer Release`: the slot leaks.
func (r *ThumbnailRenderer) Render(ctx context.Context, u Upload) ([]byte, error) {
	renders.Add(1)
	if err := r.slots.Acquire(ctx, 1); err != nil {
		return nil, err
	}
	if u.Width <= 0 || u.Height <= 0 {
		return nil, fmt.Errorf("%s: %dx%d: %w", u.Name, u.Width, u.Height, ErrCorruptImage)
	}
	defer r.slots.Release(1)
	thumb := make([]byte, 128*128)
	for i := range thumb {
		thumb[i] = u.Pixels[(i*len(u.Pixels))/len(thumb)]
	}
	return thumb, nil
}

// UploadService accepts uploads.
type UploadService struct {
	thumbs *ThumbnailRenderer
}

func (s *UploadService) handleUpload(u Upload) {
	thumb, err := s.thumbs.Render(context.Background(), u)
	if err != nil {
		fmt.Fprintf(os.Stderr, "upload %s: %v\n", u.Name, err)
		return
	}
	fmt.Fprintf(os.Stderr, "upload %s: thumbnail crc %08x\n", u.Name, crc32.ChecksumIEEE(thumb))
}

const uploads = 12

func main() {
	harness.Start()
	svc := &UploadService{thumbs: &ThumbnailRenderer{slots: semaphore.NewWeighted(3)}}

	// A good upload, then three truncated ones: each leaks a slot.
	svc.handleUpload(Upload{Name: "cat.jpg", Width: 640, Height: 480, Pixels: make([]byte, 640*480)})
	for _, name := range []string{"broken-1.jpg", "broken-2.png", "broken-3.gif"} {
		svc.handleUpload(Upload{Name: name})
	}
	renders.Store(0)

	for i := 0; i < uploads; i++ {
		u := Upload{Name: fmt.Sprintf("photo-%02d.jpg", i), Width: 800, Height: 600, Pixels: make([]byte, 800*600)}
		go svc.handleUpload(u)
	}
	harness.WaitUntil("uploads to wait for a render slot", func() bool {
		return renders.Load() == uploads
	}, 300*time.Millisecond)
	if svc.thumbs.slots.TryAcquire(1) {
		harness.Fatalf("a render slot is still free")
	}
	harness.StampBlockedTimes()
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
