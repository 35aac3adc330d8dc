// errgroup-wait: a catalog importer that runs each supplier feed through a two-stage pipeline in
// a golang.org/x/sync/errgroup: parseFeed sends products on an unbuffered channel, storeProducts
// receives and validates them. When storeProducts meets an invalid product it returns its error
// — the group cancels its context — but parseFeed sends with a plain `out <- p`, not in a select
// on ctx.Done(): it blocks forever on a send nobody will receive, so the group's Wait in
// ImportFeed never returns either.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"example.com/realworld/internal/harness"
)

// Product is one line of a supplier feed.
type Product struct {
	SKU        string
	Name       string
	PriceCents int64
}

// ErrInvalidProduct rejects a feed line.
var ErrInvalidProduct = errors.New("invalid product")

// CatalogImporter loads supplier feeds into the catalog.
type CatalogImporter struct {
	mu      sync.Mutex
	catalog map[string]Product
}

var parsersBlocked atomic.Int32

// parseFeed turns a feed into products.
//
// BUG: the send does not select on ctx.Done(); once the consumer has quit it blocks forever.
func (im *CatalogImporter) parseFeed(feed string, out chan<- Product) error {
	defer close(out)
	for i, line := range strings.Split(feed, "\n") {
		f := strings.Split(line, ";")
		if len(f) != 3 {
			return fmt.Errorf("line %d: %d fields", i+1, len(f))
		}
		var price int64
		if _, err := fmt.Sscan(f[2], &price); err != nil {
			return fmt.Errorf("line %d: price: %w", i+1, err)
		}
		if i == 2 {
			parsersBlocked.Add(1) // the consumer rejects line 2 and quits: this send never completes
		}
		out <- Product{SKU: f[0], Name: f[1], PriceCents: price}
	}
	return nil
}

// storeProducts validates products and adds them to the catalog.
func (im *CatalogImporter) storeProducts(ctx context.Context, in <-chan Product) error {
	for p := range in {
		if p.PriceCents <= 0 {
			return fmt.Errorf("%s: price %d: %w", p.SKU, p.PriceCents, ErrInvalidProduct)
		}
		im.mu.Lock()
		im.catalog[p.SKU] = p
		im.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

var importsWaiting atomic.Int32

// ImportFeed runs one feed through the pipeline.
func (im *CatalogImporter) ImportFeed(ctx context.Context, supplier, feed string) error {
	g, ctx := errgroup.WithContext(ctx)
	products := make(chan Product)
	g.Go(func() error { return im.parseFeed(feed, products) })
	g.Go(func() error { return im.storeProducts(ctx, products) })
	importsWaiting.Add(1)
	if err := g.Wait(); err != nil {
		return fmt.Errorf("supplier %s: %w", supplier, err)
	}
	return nil
}

func (im *CatalogImporter) runImport(supplier, feed string) {
	if err := im.ImportFeed(context.Background(), supplier, feed); err != nil {
		fmt.Fprintf(os.Stderr, "import: %v\n", err)
	}
}

// Every feed has an item with a zero price on its second line.
var feeds = map[string]string{
	"acme":     "AC-1;Anvil;4999\nAC-2;Rocket skates;0\nAC-3;Giant magnet;12999\nAC-4;Bird seed;299",
	"globex":   "GX-1;Hammock;8999\nGX-2;Flamethrower;0\nGX-3;Sunscreen;1299",
	"initech":  "IT-1;Stapler;1599\nIT-2;TPS cover sheet;0\nIT-3;Printer;24999\nIT-4;Toner;5999",
	"umbrella": "UM-1;Umbrella;2599\nUM-2;Raincoat;0\nUM-3;Boots;7999",
}

func main() {
	harness.Start()
	im := &CatalogImporter{catalog: map[string]Product{}}
	for supplier, feed := range feeds {
		go im.runImport(supplier, feed)
	}
	harness.WaitUntil("imports to hang", func() bool {
		return importsWaiting.Load() == int32(len(feeds)) && parsersBlocked.Load() == int32(len(feeds))
	}, 200*time.Millisecond)
	harness.StampBlockedTimes()
	harness.Ready()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
