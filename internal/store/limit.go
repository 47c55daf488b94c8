package store

import (
	"context"
	"io"
	"sync"
	"time"
)

// limitStore bounds concurrent calls; see WithLimit.
type limitStore struct {
	s   Store
	sem chan struct{}
}

// WithLimit returns s allowing at most n calls in flight at once (n < 1
// means 1). A call waits for a slot, or fails with ctx's error. A Get holds
// its slot until the returned reader is closed, so callers must close it.
func WithLimit(s Store, n int) Store {
	if n < 1 {
		n = 1
	}
	return &limitStore{s: s, sem: make(chan struct{}, n)}
}

// Unwrap returns the store that l limits.
func (l *limitStore) Unwrap() Store { return l.s }

func (l *limitStore) String() string { return l.s.String() }

func (l *limitStore) acquire(ctx context.Context) error {
	select {
	case l.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *limitStore) release() { <-l.sem }

func (l *limitStore) Put(ctx context.Context, name string, body io.ReadSeeker, size int64) error {
	if err := l.acquire(ctx); err != nil {
		return err
	}
	defer l.release()
	return l.s.Put(ctx, name, body, size)
}

func (l *limitStore) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := l.acquire(ctx); err != nil {
		return nil, err
	}
	rc, err := l.s.Get(ctx, name)
	if err != nil {
		l.release()
		return nil, err
	}
	return &releasingReader{ReadCloser: rc, release: l.release}, nil
}

// releasingReader gives back its slot when closed, once.
type releasingReader struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (r *releasingReader) Close() error {
	err := r.ReadCloser.Close()
	r.once.Do(r.release)
	return err
}

func (l *limitStore) Stat(ctx context.Context, name string) (ObjectInfo, error) {
	if err := l.acquire(ctx); err != nil {
		return ObjectInfo{}, err
	}
	defer l.release()
	return l.s.Stat(ctx, name)
}

func (l *limitStore) List(ctx context.Context, opts ListOptions) (Page, error) {
	if err := l.acquire(ctx); err != nil {
		return Page{}, err
	}
	defer l.release()
	return l.s.List(ctx, opts)
}

func (l *limitStore) Retention(ctx context.Context, name string) (Retention, error) {
	if err := l.acquire(ctx); err != nil {
		return Retention{}, err
	}
	defer l.release()
	return l.s.Retention(ctx, name)
}

func (l *limitStore) SetRetention(ctx context.Context, name string, until time.Time) error {
	if err := l.acquire(ctx); err != nil {
		return err
	}
	defer l.release()
	return l.s.SetRetention(ctx, name, until)
}

func (l *limitStore) SetLegalHold(ctx context.Context, name string, on bool) error {
	if err := l.acquire(ctx); err != nil {
		return err
	}
	defer l.release()
	return l.s.SetLegalHold(ctx, name, on)
}

func (l *limitStore) Delete(ctx context.Context, name string) error {
	if err := l.acquire(ctx); err != nil {
		return err
	}
	defer l.release()
	return l.s.Delete(ctx, name)
}
