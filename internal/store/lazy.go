package store

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"
)

// OpenLazy is Open for a long-running process that must start even while
// a store does not answer. A bad URL, missing credentials, a missing
// bucket, a bucket without the Object Lock the mode needs, or a refused
// login fail at once, as in Open. When the store does not answer (a
// transient error, such as a refused connection), OpenLazy makes one
// attempt only and returns, with down set to that error, a store that
// connects on its first call that finds it reachable: until then every
// call fails with a transient error (retried under opts.Retry like any
// call), and a check that fails once the store answers fails the call
// permanently. down is nil when the store answered.
func OpenLazy(ctx context.Context, rawURL string, opts Options) (s Store, down error, err error) {
	u, err := parseStoreURL(rawURL)
	if err != nil {
		return nil, nil, err
	}
	open := backends()[u.Scheme]
	opts = opts.withDefaults()
	s, err = open(ctx, u, opts)
	switch {
	case err == nil:
		return wrap(s, opts), nil, nil
	case !IsTransient(err):
		return nil, nil, err
	}
	l := &lazyStore{name: storeName(u), log: scoped(opts.Logger),
		open: func(ctx context.Context) (Store, error) { return open(ctx, u, opts) }}
	l.log.Warn("store: not answering at start; connecting when it answers", "store", l.name, "err", err)
	return wrap(l, opts), err, nil
}

// storeName is the String of the store u opens, without opening it.
func storeName(u *url.URL) string {
	switch u.Scheme {
	case "s3":
		endpoint := u.Query().Get("endpoint")
		if endpoint == "" {
			endpoint = "s3.amazonaws.com"
		}
		return s3Name(u.Host, strings.Trim(u.Path, "/"), endpoint)
	default:
		return "file://" + u.Path
	}
}

// lazyStore connects to its store on the first call that finds it
// reachable; see OpenLazy.
type lazyStore struct {
	name string
	log  *slog.Logger
	open func(ctx context.Context) (Store, error)

	mu sync.Mutex // held while connecting: calls wait for one attempt
	s  Store
}

// store returns the connected store, connecting if need be. Its errors
// are the open's: transient while the store does not answer.
func (l *lazyStore) store(ctx context.Context) (Store, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.s != nil {
		return l.s, nil
	}
	s, err := l.open(ctx)
	if err != nil {
		return nil, err
	}
	l.log.Info("store: answering; connected", "store", l.name)
	l.s = s
	return s, nil
}

func (l *lazyStore) String() string { return l.name }

func (l *lazyStore) Put(ctx context.Context, name string, body io.ReadSeeker, size int64) error {
	s, err := l.store(ctx)
	if err != nil {
		return err
	}
	return s.Put(ctx, name, body, size)
}

func (l *lazyStore) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	s, err := l.store(ctx)
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, name)
}

func (l *lazyStore) Stat(ctx context.Context, name string) (ObjectInfo, error) {
	s, err := l.store(ctx)
	if err != nil {
		return ObjectInfo{}, err
	}
	return s.Stat(ctx, name)
}

func (l *lazyStore) List(ctx context.Context, opts ListOptions) (Page, error) {
	s, err := l.store(ctx)
	if err != nil {
		return Page{}, err
	}
	return s.List(ctx, opts)
}

func (l *lazyStore) Retention(ctx context.Context, name string) (Retention, error) {
	s, err := l.store(ctx)
	if err != nil {
		return Retention{}, err
	}
	return s.Retention(ctx, name)
}

func (l *lazyStore) SetRetention(ctx context.Context, name string, until time.Time) error {
	s, err := l.store(ctx)
	if err != nil {
		return err
	}
	return s.SetRetention(ctx, name, until)
}

func (l *lazyStore) SetLegalHold(ctx context.Context, name string, on bool) error {
	s, err := l.store(ctx)
	if err != nil {
		return err
	}
	return s.SetLegalHold(ctx, name, on)
}

func (l *lazyStore) Delete(ctx context.Context, name string) error {
	s, err := l.store(ctx)
	if err != nil {
		return err
	}
	return s.Delete(ctx, name)
}
