package store_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rxvault/rxvault/internal/store"
	"github.com/rxvault/rxvault/internal/testenv"
)

// TestOpenLazy: a store that does not answer at open is returned with the
// reason (down), fails its calls transiently, and works once it answers;
// configuration errors still fail OpenLazy at once.
func TestOpenLazy(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	locked := newBucket(t, m, true)
	plain := newBucket(t, m, false)
	ctx := t.Context()
	good := s3URL(m, locked, "rx", store.LockCompliance, time.Hour)

	s, down, err := store.OpenLazy(ctx, good, s3Options(m))
	if err != nil || down != nil {
		t.Fatalf("OpenLazy with the store up: down %v, err %v", down, err)
	}
	want := s.String()

	m.Stop(t)
	start := time.Now()
	s, down, err = store.OpenLazy(ctx, good, s3Options(m))
	if err != nil || down == nil || !store.IsTransient(down) {
		t.Fatalf("OpenLazy with the store down: down %v, err %v; want a transient down and no error", down, err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("OpenLazy took %s with the store down: one attempt expected", took)
	}
	if s.String() != want {
		t.Errorf("String %q with the store down, %q when up", s.String(), want)
	}
	if _, err := s.List(ctx, store.ListOptions{}); err == nil || !store.IsTransient(err) {
		t.Errorf("List with the store down: %v, want a transient error", err)
	}
	noCreds := s3Options(m)
	noCreds.Credentials = store.Credentials{}
	if _, _, err := store.OpenLazy(ctx, good, noCreds); err == nil || !strings.Contains(err.Error(), "credentials") {
		t.Errorf("OpenLazy without credentials, store down: %v, want the configuration error", err)
	}

	m.Start(t)
	data := []byte("hello")
	if err := s.Put(ctx, "a/b", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put once the store answers: %v", err)
	}
	if _, err := s.Stat(ctx, "a/b"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.OpenLazy(ctx, s3URL(m, plain, "rx", store.LockCompliance, time.Hour), s3Options(m)); err == nil || !strings.Contains(err.Error(), "Object Lock") {
		t.Errorf("OpenLazy of a bucket without Object Lock: %v, want the configuration error", err)
	}
	bad := s3Options(m)
	bad.Credentials.SecretAccessKey = "wrong-secret"
	if _, down, err := store.OpenLazy(ctx, good, bad); err == nil || down != nil {
		t.Errorf("OpenLazy with a wrong secret: down %v, err %v; want a permanent error", down, err)
	}
}
