package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/rxvault/rxvault/internal/store"
)

func testRoundTrip(t *testing.T, newStore Factory, mode store.LockMode) {
	s := newStore(t, mode, longRetention)
	for name, data := range map[string][]byte{
		"a":                      []byte("hello"),
		"dir/sub/obj.seg":        []byte("nested\x00bytes\xff"),
		"empty":                  {},
		"Z_9-x.y":                bytes.Repeat([]byte{7}, 4097),
		strings.Repeat("n", 200): []byte("long name"),
	} {
		put(t, s, name, data)
		checkContent(t, s, name, data)
	}
}

func testRoundTripLarge(t *testing.T, newStore Factory, mode store.LockMode) {
	s := newStore(t, mode, longRetention)
	const size = 5<<20 + 12345 // several MiB, not a multiple of any buffer
	body := newPattern(42, size)
	if err := s.Put(t.Context(), "large", body, size); err != nil {
		t.Fatalf("Put: %v", err)
	}
	info, err := s.Stat(t.Context(), "large")
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if got, want := info.Size, int64(size); got != want {
		t.Errorf("Size = %d, want %d", got, want)
	}
	rc, err := s.Get(t.Context(), "large")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer rc.Close()
	if got, want := sum(t, rc), sum(t, newPattern(42, size)); got != want {
		t.Errorf("content hash differs")
	}
}

func testStat(t *testing.T, newStore Factory, mode store.LockMode) {
	s := newStore(t, mode, longRetention)
	put(t, s, "x/y", []byte("12345"))
	info, err := s.Stat(t.Context(), "x/y")
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if got, want := info.Name, "x/y"; got != want {
		t.Errorf("Name = %q, want %q", got, want)
	}
	if got, want := info.Size, int64(5); got != want {
		t.Errorf("Size = %d, want %d", got, want)
	}
	if info.ModTime.IsZero() {
		t.Errorf("ModTime is zero")
	}
	// A directory-like prefix is not an object.
	checkMissing(t, s, "x")
}

func testMissing(t *testing.T, newStore Factory, mode store.LockMode) {
	s := newStore(t, mode, longRetention)
	ctx := t.Context()
	put(t, s, "present", []byte("p"))
	const name = "absent/obj"
	if _, err := s.Get(ctx, name); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Get = %v, want ErrNotExist", err)
	}
	if _, err := s.Stat(ctx, name); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Stat = %v, want ErrNotExist", err)
	}
	if _, err := s.Retention(ctx, name); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Retention = %v, want ErrNotExist", err)
	}
	if err := s.Delete(ctx, name); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Delete = %v, want ErrNotExist", err)
	}
	if err := s.SetLegalHold(ctx, name, true); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("SetLegalHold = %v, want ErrNotExist", err)
	}
	if mode != store.LockNone {
		if err := s.SetRetention(ctx, name, timeNow().Add(longRetention)); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("SetRetention = %v, want ErrNotExist", err)
		}
	}
	// The object under a missing one's parent is untouched.
	checkContent(t, s, "present", []byte("p"))
}

func testInvalidNames(t *testing.T, newStore Factory, mode store.LockMode) {
	s := newStore(t, mode, longRetention)
	ctx := t.Context()
	bad := []string{"", "/a", "a/", "a//b", ".hidden", "a/.b", "a/../b", "..", ".",
		"a b", "é", `a\b`, "a:b", "a\x00b", ".rxvault/lock", strings.Repeat("x", store.MaxNameLen+1)}
	for _, name := range bad {
		data := []byte("x")
		if err := s.Put(ctx, name, bytes.NewReader(data), 1); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("Put(%q) = %v, want ErrInvalidName", name, err)
		}
		if _, err := s.Get(ctx, name); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("Get(%q) = %v, want ErrInvalidName", name, err)
		}
		if _, err := s.Stat(ctx, name); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("Stat(%q) = %v, want ErrInvalidName", name, err)
		}
		if err := s.Delete(ctx, name); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidName", name, err)
		}
		if _, err := s.Retention(ctx, name); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("Retention(%q) = %v, want ErrInvalidName", name, err)
		}
		if store.ValidName(name) == nil {
			t.Errorf("ValidName(%q) = nil, want an error", name)
		}
	}
	if err := store.ValidName(strings.Repeat("x", store.MaxNameLen)); err != nil {
		t.Errorf("ValidName(1024 bytes) = %v, want nil", err)
	}
	page, err := s.List(ctx, store.ListOptions{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if got := len(page.Objects); got != 0 {
		t.Errorf("List after refused Puts has %d objects: %v", got, page.Objects)
	}
}

func testOverwriteRefused(t *testing.T, newStore Factory, mode store.LockMode) {
	s := newStore(t, mode, longRetention)
	put(t, s, "obj", []byte("first"))
	before := retention(t, s, "obj")
	for _, data := range [][]byte{[]byte("second"), []byte("first"), {}} {
		err := s.Put(t.Context(), "obj", bytes.NewReader(data), int64(len(data)))
		if !errors.Is(err, store.ErrExists) {
			t.Errorf("Put over an existing object (%q) = %v, want ErrExists", data, err)
		}
	}
	checkContent(t, s, "obj", []byte("first"))
	checkRetention(t, s, "obj", before)
}

func testConcurrentPut(t *testing.T, newStore Factory, mode store.LockMode) {
	s := newStore(t, mode, longRetention)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := []byte(fmt.Sprintf("writer %d %s", i, strings.Repeat("x", 1000*i)))
			errs[i] = s.Put(t.Context(), "race", bytes.NewReader(data), int64(len(data)))
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("writers %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrExists):
			t.Errorf("writer %d: %v, want nil or ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no writer succeeded: %v", errs)
	}
	checkContent(t, s, "race", []byte(fmt.Sprintf("writer %d %s", winner, strings.Repeat("x", 1000*winner))))
}

func testShortBody(t *testing.T, newStore Factory, mode store.LockMode) {
	s := newStore(t, mode, longRetention)
	for _, size := range []int64{10, 64 << 10} {
		name := fmt.Sprintf("short-%d", size)
		err := s.Put(t.Context(), name, bytes.NewReader([]byte("12345")), size)
		if err == nil {
			t.Errorf("Put of 5 bytes with size %d succeeded", size)
		}
		if errors.Is(err, store.ErrExists) {
			t.Errorf("Put of a short body = %v, want a size error", err)
		}
		checkMissing(t, s, name)
	}
}

func testLongBody(t *testing.T, newStore Factory, mode store.LockMode) {
	s := newStore(t, mode, longRetention)
	for _, size := range []int64{0, 4} {
		name := fmt.Sprintf("long-%d", size)
		if err := s.Put(t.Context(), name, bytes.NewReader([]byte("12345")), size); err == nil {
			t.Errorf("Put of 5 bytes with size %d succeeded", size)
		}
		checkMissing(t, s, name)
	}
}

func testCancelledContext(t *testing.T, newStore Factory, mode store.LockMode) {
	s := newStore(t, mode, longRetention)
	put(t, s, "there", []byte("t"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Put(ctx, "obj", bytes.NewReader([]byte("x")), 1); err == nil {
		t.Errorf("Put with a cancelled context succeeded")
	}
	if _, err := s.Get(ctx, "there"); err == nil {
		t.Errorf("Get with a cancelled context succeeded")
	}
	if _, err := s.List(ctx, store.ListOptions{}); err == nil {
		t.Errorf("List with a cancelled context succeeded")
	}
	if err := s.Delete(ctx, "there"); err == nil {
		t.Errorf("Delete with a cancelled context succeeded")
	}
	checkMissing(t, s, "obj")
	checkContent(t, s, "there", []byte("t"))
}

// cancellingReader cancels its context once half of it has been read.
type cancellingReader struct {
	io.ReadSeeker
	read, half int64
	cancel     context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	if c.read >= c.half {
		c.cancel()
	}
	if int64(len(p)) > 32<<10 {
		p = p[:32<<10]
	}
	n, err := c.ReadSeeker.Read(p)
	c.read += int64(n)
	return n, err
}

func testCancelDuringPut(t *testing.T, newStore Factory, mode store.LockMode) {
	s := newStore(t, mode, longRetention)
	const size = 2 << 20
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	body := &cancellingReader{ReadSeeker: newPattern(7, size), half: size / 2, cancel: cancel}
	if err := s.Put(ctx, "cancelled", body, size); err == nil {
		t.Errorf("Put cancelled halfway succeeded")
	}
	checkMissing(t, s, "cancelled")
}

func testListPaging(t *testing.T, newStore Factory, mode store.LockMode) {
	s := newStore(t, mode, longRetention)
	ctx := t.Context()
	// Byte order puts "a.b" before "a/x" and "a0" after it. No name is
	// also a directory of others (see the store package doc).
	names := []string{"a-", "a.b", "a/x", "a/y/z", "a0", "b/1", "b/10", "b/2", "c"}
	for i := len(names) - 1; i >= 0; i-- { // out of order on purpose
		put(t, s, names[i], []byte(names[i]))
	}
	list := func(o store.ListOptions) store.Page {
		t.Helper()
		p, err := s.List(ctx, o)
		if err != nil {
			t.Fatalf("List(%+v): %v", o, err)
		}
		return p
	}
	namesOf := func(p store.Page) string {
		var out []string
		for _, o := range p.Objects {
			out = append(out, o.Name)
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		opts     store.ListOptions
		want     string
		wantNext string
	}{
		{store.ListOptions{}, strings.Join(names, " "), ""},
		{store.ListOptions{Prefix: "a/"}, "a/x a/y/z", ""},
		{store.ListOptions{Prefix: "a"}, "a- a.b a/x a/y/z a0", ""},
		{store.ListOptions{Prefix: "b/1"}, "b/1 b/10", ""},
		{store.ListOptions{Prefix: "nothing"}, "", ""},
		{store.ListOptions{StartAfter: "a/x"}, "a/y/z a0 b/1 b/10 b/2 c", ""},
		{store.ListOptions{StartAfter: "a/"}, "a/x a/y/z a0 b/1 b/10 b/2 c", ""},
		{store.ListOptions{StartAfter: "b"}, "b/1 b/10 b/2 c", ""},
		{store.ListOptions{StartAfter: "c"}, "", ""},
		{store.ListOptions{Limit: 3}, "a- a.b a/x", "a/x"},
		{store.ListOptions{Limit: 3, StartAfter: "a/x"}, "a/y/z a0 b/1", "b/1"},
		{store.ListOptions{Limit: 2, StartAfter: "a.c"}, "a/x a/y/z", "a/y/z"},
		{store.ListOptions{Prefix: "b/", Limit: 2}, "b/1 b/10", "b/10"},
		{store.ListOptions{Prefix: "b/", Limit: 3}, "b/1 b/10 b/2", ""},
		{store.ListOptions{Prefix: "b/", StartAfter: "b/10", Limit: 1}, "b/2", ""},
	} {
		p := list(tc.opts)
		if got := namesOf(p); got != tc.want {
			t.Errorf("List(%+v) = %q, want %q", tc.opts, got, tc.want)
		}
		if got := p.Next; got != tc.wantNext {
			t.Errorf("List(%+v).Next = %q, want %q", tc.opts, got, tc.wantNext)
		}
	}
	// Paging by Next visits every name once, in order.
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > len(names) {
			t.Fatalf("paging does not end")
		}
		p := list(store.ListOptions{Limit: 2, StartAfter: after})
		for _, o := range p.Objects {
			got = append(got, o.Name)
			if int64(len(o.Name)) != o.Size {
				t.Errorf("%s: Size = %d, want %d", o.Name, o.Size, len(o.Name))
			}
		}
		if p.Next == "" {
			break
		}
		after = p.Next
	}
	if g, w := strings.Join(got, " "), strings.Join(names, " "); g != w {
		t.Errorf("paged listing = %q, want %q", g, w)
	}
	if _, err := s.List(ctx, store.ListOptions{Prefix: ".rxvault"}); !errors.Is(err, store.ErrInvalidName) {
		t.Errorf("List(prefix .rxvault) = %v, want ErrInvalidName", err)
	}
}

func testWalk(t *testing.T, newStore Factory, mode store.LockMode) {
	s := newStore(t, mode, longRetention)
	var want []string
	for i := range 25 {
		name := fmt.Sprintf("w/%03d", i)
		want = append(want, name)
		put(t, s, name, []byte{byte(i)})
	}
	put(t, s, "other", []byte("o"))
	var got []string
	err := store.Walk(t.Context(), s, "w/", func(o store.ObjectInfo) error {
		got = append(got, o.Name)
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	if g, w := strings.Join(got, " "), strings.Join(want, " "); g != w {
		t.Errorf("Walk = %q, want %q", g, w)
	}
	stop := errors.New("stop")
	n := 0
	err = store.Walk(t.Context(), s, "", func(store.ObjectInfo) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Errorf("Walk stopped with %v after %d objects, want stop after 3", err, n)
	}
}
