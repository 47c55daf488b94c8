package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"
)

// RetryPolicy is capped exponential backoff with jitter: the wait before
// attempt n+1 is drawn from [d/2, d] where d = min(MaxDelay,
// BaseDelay*2^(n-1)).
type RetryPolicy struct {
	MaxAttempts int           // tries per call, the first included; < 1 means 1
	BaseDelay   time.Duration // wait scale before the second attempt
	MaxDelay    time.Duration // cap on any one wait
	Logger      *slog.Logger  // retries are logged at Warn, tagged component=internal/store; nil discards
	// OnRetry, if set, is called before each wait for another attempt
	// (for metrics). It must not block.
	OnRetry func(op string)
}

// isZero reports whether p is the zero policy (Open then uses the default).
func (p RetryPolicy) isZero() bool {
	return p.MaxAttempts == 0 && p.BaseDelay == 0 && p.MaxDelay == 0 && p.Logger == nil && p.OnRetry == nil
}

// DefaultRetryPolicy is what Open uses when Options.Retry is zero: 8
// attempts, 250ms doubling to at most 10s (about 30s of waiting in all).
// Longer outages are the caller's to ride out (the shipper keeps its spool).
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 8, BaseDelay: 250 * time.Millisecond, MaxDelay: 10 * time.Second}
}

// retryStore retries transient failures; see WithRetry.
type retryStore struct {
	s   Store
	p   RetryPolicy
	log *slog.Logger
}

// WithRetry returns s with every call retried on transient errors (see
// IsTransient) under policy p, honouring ctx between attempts. Permanent
// errors and a done ctx end the call at once.
//
// Put rewinds body to its position at the call for each attempt. When an
// attempt failed ambiguously (a transient error: the write may have landed)
// and a later one gets ErrExists, the stored object is read back and
// compared with body: if they are identical the Put succeeded. Likewise a
// Delete that gets ErrNotExist after an ambiguous failure succeeded. Get
// retries opening the object, not reads from the returned stream.
func WithRetry(s Store, p RetryPolicy) Store {
	if p.MaxAttempts < 1 {
		p.MaxAttempts = 1
	}
	return &retryStore{s: s, p: p, log: scoped(p.Logger)}
}

// Unwrap returns the store that r retries.
func (r *retryStore) Unwrap() Store { return r.s }

func (r *retryStore) String() string { return r.s.String() }

// run calls f under r's policy; see RetryPolicy.do.
func (r *retryStore) run(ctx context.Context, op, name string, f func(attempt int) error) error {
	return r.p.do(ctx, r.log, r.s.String(), op, name, f)
}

// do calls f until it succeeds, fails permanently, ctx is done or the
// attempts are used up, waiting between attempts.
func (p RetryPolicy) do(ctx context.Context, log *slog.Logger, where, op, name string, f func(attempt int) error) error {
	for attempt := 1; ; attempt++ {
		err := f(attempt)
		if err == nil || !IsTransient(err) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		}
		if attempt >= p.MaxAttempts {
			return fmt.Errorf("%s: gave up after %d attempts: %w", strings.TrimSpace(op+" "+name), attempt, err)
		}
		d := p.delay(attempt)
		if p.OnRetry != nil {
			p.OnRetry(op)
		}
		log.Warn("store: retrying", "store", where, "op", op, "name", name,
			"attempt", attempt, "wait", d, "err", err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// delay returns the jittered wait after failed attempt n (1-based).
func (p RetryPolicy) delay(n int) time.Duration {
	d := p.BaseDelay
	for i := 1; i < n && d < p.MaxDelay; i++ {
		d *= 2
	}
	if d > p.MaxDelay {
		d = p.MaxDelay
	}
	if d <= 0 {
		return 0
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

func (r *retryStore) Put(ctx context.Context, name string, body io.ReadSeeker, size int64) error {
	start, err := body.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("put %s: body position: %w", name, err)
	}
	ambiguous := false
	return r.run(ctx, "put", name, func(attempt int) error {
		if attempt > 1 {
			if _, err := body.Seek(start, io.SeekStart); err != nil {
				return Permanent(fmt.Errorf("put %s: rewind body: %w", name, err))
			}
		}
		err := r.s.Put(ctx, name, body, size)
		switch {
		case err == nil:
			return nil
		case IsTransient(err):
			ambiguous = true
			return err
		case ambiguous && errors.Is(err, ErrExists):
			if _, err := body.Seek(start, io.SeekStart); err != nil {
				return Permanent(fmt.Errorf("put %s: rewind body: %w", name, err))
			}
			same, cerr := SameContent(ctx, r.s, name, body, size)
			if cerr != nil {
				return cerr
			}
			if same {
				r.log.Info("store: put landed on an earlier attempt", "store", r.s.String(), "name", name)
				return nil
			}
		}
		return err
	})
}

func (r *retryStore) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	var rc io.ReadCloser
	err := r.run(ctx, "get", name, func(int) error {
		var err error
		rc, err = r.s.Get(ctx, name)
		return err
	})
	return rc, err
}

func (r *retryStore) Stat(ctx context.Context, name string) (ObjectInfo, error) {
	var info ObjectInfo
	err := r.run(ctx, "stat", name, func(int) error {
		var err error
		info, err = r.s.Stat(ctx, name)
		return err
	})
	return info, err
}

func (r *retryStore) List(ctx context.Context, opts ListOptions) (Page, error) {
	var page Page
	err := r.run(ctx, "list", opts.Prefix, func(int) error {
		var err error
		page, err = r.s.List(ctx, opts)
		return err
	})
	return page, err
}

func (r *retryStore) Retention(ctx context.Context, name string) (Retention, error) {
	var ret Retention
	err := r.run(ctx, "retention", name, func(int) error {
		var err error
		ret, err = r.s.Retention(ctx, name)
		return err
	})
	return ret, err
}

func (r *retryStore) SetRetention(ctx context.Context, name string, until time.Time) error {
	return r.run(ctx, "set retention", name, func(int) error {
		return r.s.SetRetention(ctx, name, until)
	})
}

func (r *retryStore) SetLegalHold(ctx context.Context, name string, on bool) error {
	return r.run(ctx, "set legal hold", name, func(int) error {
		return r.s.SetLegalHold(ctx, name, on)
	})
}

func (r *retryStore) Delete(ctx context.Context, name string) error {
	ambiguous := false
	return r.run(ctx, "delete", name, func(int) error {
		err := r.s.Delete(ctx, name)
		if IsTransient(err) {
			ambiguous = true
		} else if ambiguous && errors.Is(err, ErrNotExist) {
			r.log.Info("store: delete landed on an earlier attempt", "store", r.s.String(), "name", name)
			return nil
		}
		return err
	})
}
