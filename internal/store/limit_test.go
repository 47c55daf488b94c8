package store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/rxvault/rxvault/internal/store"
)

// gauge is a store whose Puts block until released, counting how many are
// in flight at once.
type gauge struct {
	store.Store
	mu       sync.Mutex
	inFlight int
	max      int
	entered  chan struct{}
	release  chan struct{}
}

func (g *gauge) Put(ctx context.Context, name string, body io.ReadSeeker, size int64) error {
	g.mu.Lock()
	g.inFlight++
	g.max = max(g.max, g.inFlight)
	g.mu.Unlock()
	g.entered <- struct{}{}
	<-g.release
	g.mu.Lock()
	g.inFlight--
	g.mu.Unlock()
	return nil
}

func TestLimitBoundsConcurrency(t *testing.T) {
	g := &gauge{entered: make(chan struct{}), release: make(chan struct{})}
	s := store.WithLimit(g, 2)
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Put(t.Context(), "x", bytes.NewReader(nil), 0); err != nil {
				t.Errorf("Put: %v", err)
			}
		}()
	}
	// Let the calls through two at a time.
	for range 6 {
		<-g.entered
		g.release <- struct{}{}
	}
	wg.Wait()
	if got, want := g.max, 2; got > want {
		t.Errorf("max in flight = %d, want at most %d", got, want)
	}
}

func TestLimitGetHoldsSlotUntilClose(t *testing.T) {
	fs := newFileStore(t, t.TempDir(), nil)
	putBytes(t, fs, "obj", []byte("x"))
	s := store.WithLimit(fs, 1)
	rc, err := s.Get(t.Context(), "obj")
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	// The only slot is held by the open reader: a call must wait, and with
	// a cancelled context it fails.
	if _, err := s.Stat(cancelled, "obj"); !errors.Is(err, context.Canceled) {
		t.Errorf("Stat while the reader is open = %v, want context.Canceled", err)
	}
	rc.Close()
	rc.Close() // a second Close must not free a second slot
	rc2, err := s.Get(t.Context(), "obj")
	if err != nil {
		t.Fatalf("Get after Close: %v", err)
	}
	defer rc2.Close()
	if _, err := s.Stat(cancelled, "obj"); !errors.Is(err, context.Canceled) {
		t.Errorf("Stat while the second reader is open = %v, want context.Canceled", err)
	}
}

func TestLimitFailedGetReleasesSlot(t *testing.T) {
	s := store.WithLimit(newFileStore(t, t.TempDir(), nil), 1)
	for range 3 {
		if _, err := s.Get(t.Context(), "missing"); !errors.Is(err, store.ErrNotExist) {
			t.Fatalf("Get = %v, want ErrNotExist", err)
		}
	}
}
