package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rxvault/rxvault/internal/store"
	"github.com/rxvault/rxvault/internal/store/storetest"
)

// fastRetry keeps retries in tests quick.
var fastRetry = store.RetryPolicy{MaxAttempts: 4, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond}

func openFileURL(t *testing.T, dir string, mode store.LockMode, retention time.Duration) store.Store {
	t.Helper()
	u := fmt.Sprintf("file://%s?lock=%s", dir, mode)
	if retention > 0 {
		u += "&retention=" + retention.String()
	}
	s, err := store.Open(t.Context(), u, store.Options{Retry: fastRetry})
	if err != nil {
		t.Fatalf("Open(%s): %v", u, err)
	}
	return s
}

func TestFileConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, mode store.LockMode, retention time.Duration) store.Store {
		return openFileURL(t, t.TempDir(), mode, retention)
	})
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newFileStore(t *testing.T, root string, clock *fakeClock) *store.FileStore {
	t.Helper()
	cfg := store.FileConfig{Root: root, Mode: store.LockCompliance, Retention: 90 * 24 * time.Hour}
	if clock != nil {
		cfg.Now = clock.Now
	}
	s, err := store.NewFileStore(t.Context(), cfg)
	if err != nil {
		t.Fatalf("NewFileStore: %v", err)
	}
	return s
}

func putBytes(t *testing.T, s store.Store, name string, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), name, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put(%s): %v", name, err)
	}
}

func TestFileModeReadOnly(t *testing.T) {
	root := t.TempDir()
	s := newFileStore(t, root, nil)
	putBytes(t, s, "d/obj", []byte("x"))
	st, err := os.Stat(filepath.Join(root, "d", "obj"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.Mode().Perm(), fs.FileMode(0o440); got != want {
		t.Errorf("mode = %v, want %v", got, want)
	}
}

func TestFileClock(t *testing.T) {
	clock := &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 600, time.UTC)}
	s := newFileStore(t, t.TempDir(), clock)
	ctx := t.Context()
	putBytes(t, s, "obj", []byte("x"))
	r, err := s.Retention(ctx, "obj")
	if err != nil {
		t.Fatal(err)
	}
	// Rounded up to the second after now+retention.
	if got, want := r.RetainUntil, time.Date(2030, 4, 2, 3, 4, 6, 0, time.UTC); !got.Equal(want) {
		t.Errorf("RetainUntil = %s, want %s", got, want)
	}
	clock.Advance(90*24*time.Hour - time.Second)
	if err := s.Delete(ctx, "obj"); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("Delete a second before expiry = %v, want ErrLocked", err)
	}
	clock.Advance(2 * time.Second)
	if err := s.Delete(ctx, "obj"); err != nil {
		t.Fatalf("Delete after expiry: %v", err)
	}
}

func TestFileLeftoverTempFiles(t *testing.T) {
	root := t.TempDir()
	s := newFileStore(t, root, nil)
	putBytes(t, s, "kept", []byte("k"))
	tmp := filepath.Join(root, ".rxvault", "tmp")
	dead := filepath.Join(tmp, "put-dead")
	if err := os.WriteFile(dead, []byte("half a segment"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A temp file whose writer is alive holds a flock on it.
	live := filepath.Join(tmp, "put-live")
	f, err := os.Create(live)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	// Junk next to objects that is not an object.
	for _, junk := range []string{".tmp-obj-123", "bad name", "x~"} {
		if err := os.WriteFile(filepath.Join(root, junk), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	page, err := s.List(t.Context(), store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Objects) != 1 || page.Objects[0].Name != "kept" {
		t.Errorf("List = %+v, want only kept", page.Objects)
	}
	newFileStore(t, root, nil) // reopening cleans up
	if _, err := os.Stat(dead); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dead writer's temp file still there: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("live writer's temp file removed: %v", err)
	}
}

func TestFileNameConflicts(t *testing.T) {
	s := newFileStore(t, t.TempDir(), nil)
	putBytes(t, s, "a/b", []byte("1"))
	putBytes(t, s, "c", []byte("2"))
	for _, name := range []string{"a", "c/d"} {
		err := s.Put(t.Context(), name, bytes.NewReader([]byte("x")), 1)
		if !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("Put(%s) = %v, want ErrInvalidName", name, err)
		}
	}
	if _, err := s.Stat(t.Context(), "c/d"); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Stat(c/d) = %v, want ErrNotExist", err)
	}
}

func TestFileMissingRecordRefusesDelete(t *testing.T) {
	root := t.TempDir()
	s := newFileStore(t, root, nil)
	putBytes(t, s, "obj", []byte("x"))
	if err := os.Remove(filepath.Join(root, ".rxvault", "meta", "obj")); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := s.Delete(ctx, "obj"); err == nil {
		t.Fatalf("Delete without a retention record succeeded")
	}
	if _, err := s.Retention(ctx, "obj"); err == nil {
		t.Errorf("Retention without a retention record succeeded")
	}
	if _, err := s.Stat(ctx, "obj"); err != nil {
		t.Errorf("object gone after refused Delete: %v", err)
	}
}

func TestFileUnknownFormat(t *testing.T) {
	root := t.TempDir()
	newFileStore(t, root, nil)
	marker := filepath.Join(root, ".rxvault", "format")
	if err := os.Chmod(marker, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(marker, []byte("rxvault file store 99\n"), 0o440); err != nil {
		t.Fatal(err)
	}
	_, err := store.NewFileStore(t.Context(), store.FileConfig{Root: root, Mode: store.LockNone})
	if err == nil {
		t.Fatalf("NewFileStore accepted an unknown format")
	}
}

func TestFileTwoInstancesOneDirectory(t *testing.T) {
	root := t.TempDir()
	a, b := newFileStore(t, root, nil), newFileStore(t, root, nil)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, s := range []store.Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := []byte{byte('a' + i)}
			errs[i] = s.Put(t.Context(), "same", bytes.NewReader(data), 1)
		}()
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("errors = %v, want exactly one success", errs)
	}
	for _, err := range errs {
		if err != nil && !errors.Is(err, store.ErrExists) {
			t.Errorf("loser's error = %v, want ErrExists", err)
		}
	}
}

func TestFileRelativeRootRefused(t *testing.T) {
	_, err := store.NewFileStore(t.Context(), store.FileConfig{Root: "rel/dir", Mode: store.LockNone})
	if err == nil {
		t.Fatalf("NewFileStore accepted a relative root")
	}
}
