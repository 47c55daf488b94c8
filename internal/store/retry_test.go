package store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/rxvault/rxvault/internal/store"
	"github.com/rxvault/rxvault/internal/store/storetest"
)

// faulty returns a file store wrapped in a FaultStore, and that wrapped in
// WithRetry with quick backoff.
func faulty(t *testing.T) (store.Store, *storetest.FaultStore) {
	t.Helper()
	fs := storetest.NewFaultStore(newFileStore(t, t.TempDir(), nil), 0, nil)
	return store.WithRetry(fs, fastRetry), fs
}

func TestRetryTransientThenSuccess(t *testing.T) {
	s, fs := faulty(t)
	fs.FailFirst = 2
	putBytes(t, s, "obj", []byte("data"))
	if got, want := fs.Count("Put"), 3; got != want {
		t.Errorf("Put attempts = %d, want %d", got, want)
	}
	fs.FailFirst = 3
	rc, err := s.Get(t.Context(), "obj")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if got, want := string(b), "data"; got != want {
		t.Errorf("content = %q, want %q", got, want)
	}
	if got, want := fs.Count("Get"), 4; got != want {
		t.Errorf("Get attempts = %d, want %d", got, want)
	}
}

func TestRetryGivesUp(t *testing.T) {
	s, fs := faulty(t)
	fs.FailFirst = 100
	err := s.Put(t.Context(), "obj", bytes.NewReader([]byte("x")), 1)
	if !errors.Is(err, storetest.ErrInjected) {
		t.Fatalf("Put = %v, want the injected error", err)
	}
	if got, want := fs.Count("Put"), fastRetry.MaxAttempts; got != want {
		t.Errorf("Put attempts = %d, want %d", got, want)
	}
}

func TestRetryPermanentErrorsAtOnce(t *testing.T) {
	for _, perm := range []error{store.ErrExists, store.ErrNotExist, store.ErrLocked,
		store.ErrRetentionShortened, store.ErrInvalidName, context.Canceled, errors.New("403 forbidden"),
		store.Transient(store.ErrLocked), store.Permanent(store.Transient(errors.New("x509")))} {
		s, fs := faulty(t)
		fs.FailFirst, fs.Err = 5, perm
		if err := s.Delete(t.Context(), "obj"); !errors.Is(err, perm) {
			t.Errorf("Delete = %v, want %v", err, perm)
		}
		if got, want := fs.Count("Delete"), 1; got != want {
			t.Errorf("%v: Delete attempts = %d, want %d", perm, got, want)
		}
	}
}

func TestRetryRewindsBody(t *testing.T) {
	s, fs := faulty(t)
	fs.FailFirst = 2
	// The body starts at offset 4 when Put is called; each retry must
	// start there again.
	body := bytes.NewReader([]byte("skipPAYLOAD"))
	if _, err := body.Seek(4, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), "obj", body, 7); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Get(t.Context(), "obj")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	if got, want := string(b), "PAYLOAD"; got != want {
		t.Errorf("content = %q, want %q", got, want)
	}
}

// A Put whose response was lost lands; the retry gets ErrExists, reads the
// object back, finds it identical and succeeds.
func TestRetryAmbiguousPutSameContent(t *testing.T) {
	s, fs := faulty(t)
	fs.LoseAcks = 1
	putBytes(t, s, "obj", []byte("segment bytes"))
	if got, want := fs.Count("Put"), 2; got != want {
		t.Errorf("Put attempts = %d, want %d", got, want)
	}
	if fs.Count("Get") == 0 {
		t.Errorf("ErrExists after an ambiguous attempt was not checked by reading back")
	}
}

// After an ambiguous failure, an existing object with other content is
// still ErrExists.
func TestRetryAmbiguousPutOtherContent(t *testing.T) {
	s, fs := faulty(t)
	putBytes(t, fs.Store, "obj", []byte("someone else's"))
	fs.FailFirst = 1
	err := s.Put(t.Context(), "obj", bytes.NewReader([]byte("ours, longer.")), 13)
	if !errors.Is(err, store.ErrExists) {
		t.Errorf("Put = %v, want ErrExists", err)
	}
	fs.FailFirst = 1
	err = s.Put(t.Context(), "obj", bytes.NewReader([]byte("ours, same len")), 14)
	if !errors.Is(err, store.ErrExists) {
		t.Errorf("Put (same length) = %v, want ErrExists", err)
	}
}

// Without an ambiguous attempt ErrExists is returned as is, unread.
func TestRetryExistsWithoutAmbiguity(t *testing.T) {
	s, fs := faulty(t)
	putBytes(t, s, "obj", []byte("a"))
	if err := s.Put(t.Context(), "obj", bytes.NewReader([]byte("a")), 1); !errors.Is(err, store.ErrExists) {
		t.Errorf("second Put of identical content = %v, want ErrExists", err)
	}
	if got := fs.Count("Get"); got != 0 {
		t.Errorf("Get called %d times, want 0", got)
	}
}

func TestRetryAmbiguousDelete(t *testing.T) {
	root := t.TempDir()
	fs := storetest.NewFaultStore(openFileURL(t, root, store.LockNone, 0), 0, nil)
	s := store.WithRetry(fs, fastRetry)
	putBytes(t, s, "obj", []byte("x"))
	fs.LoseAcks = 1
	if err := s.Delete(t.Context(), "obj"); err != nil {
		t.Fatalf("Delete with a lost response = %v, want success", err)
	}
	if err := s.Delete(t.Context(), "obj"); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Delete of a missing object = %v, want ErrNotExist", err)
	}
}

// cancelOnPut cancels the context and fails transiently, so the retry
// layer must notice the cancellation instead of waiting to retry.
type cancelOnPut struct {
	store.Store
	cancel context.CancelFunc
	calls  int
}

func (c *cancelOnPut) Put(context.Context, string, io.ReadSeeker, int64) error {
	c.calls++
	c.cancel()
	return storetest.ErrInjected
}

func TestRetryHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	inner := &cancelOnPut{Store: newFileStore(t, t.TempDir(), nil), cancel: cancel}
	policy := store.RetryPolicy{MaxAttempts: 5, BaseDelay: 1e15, MaxDelay: 1e15} // waits ~11 days
	s := store.WithRetry(inner, policy)
	err := s.Put(ctx, "obj", bytes.NewReader([]byte("x")), 1)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Put = %v, want context.Canceled", err)
	}
	if got, want := inner.calls, 1; got != want {
		t.Errorf("attempts = %d, want %d", got, want)
	}
}

func TestSameContent(t *testing.T) {
	s := newFileStore(t, t.TempDir(), nil)
	big := bytes.Repeat([]byte("0123456789abcdef"), 10000) // several chunks
	putBytes(t, s, "big", big)
	ctx := t.Context()
	other := bytes.Clone(big)
	other[len(other)-1] ^= 1
	for _, tc := range []struct {
		body []byte
		want bool
	}{
		{big, true},
		{other, false},
		{big[:len(big)-1], false},
	} {
		got, err := store.SameContent(ctx, s, "big", bytes.NewReader(tc.body), int64(len(tc.body)))
		if err != nil || got != tc.want {
			t.Errorf("SameContent(%d bytes) = %v, %v; want %v", len(tc.body), got, err, tc.want)
		}
	}
	if _, err := store.SameContent(ctx, s, "missing", bytes.NewReader(nil), 0); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("SameContent(missing) = %v, want ErrNotExist", err)
	}
}

func TestRetryOnRetryHook(t *testing.T) {
	fs := storetest.NewFaultStore(newFileStore(t, t.TempDir(), nil), 0, nil)
	var ops []string
	p := fastRetry
	p.OnRetry = func(op string) { ops = append(ops, op) }
	s := store.WithRetry(fs, p)
	fs.FailFirst = 2
	putBytes(t, s, "obj", []byte("data"))
	if got, want := len(ops), 2; got != want || ops[0] != "put" {
		t.Errorf("OnRetry calls %q, want %d for put", ops, want)
	}
}
