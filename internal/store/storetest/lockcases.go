package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/rxvault/rxvault/internal/store"
)

// timeNow is the suite's clock: the real one, as the servers use.
func timeNow() time.Time { return time.Now() }

// putLocked stores name with known content and returns the content.
func putLocked(t *testing.T, s store.Store, name string) []byte {
	t.Helper()
	data := []byte("locked content of " + name)
	put(t, s, name, data)
	return data
}

func testRetentionReadBack(t *testing.T, newStore Factory, mode store.LockMode) {
	s := newStore(t, mode, longRetention)
	before := timeNow()
	putLocked(t, s, "obj")
	after := timeNow()
	r := retention(t, s, "obj")
	if got, want := r.Mode, mode; got != want {
		t.Errorf("Mode = %q, want %q", got, want)
	}
	checkAround(t, "RetainUntil", r.RetainUntil, before.Add(longRetention), after.Add(longRetention))
	if r.LegalHold {
		t.Errorf("LegalHold = true on a new object")
	}
	if !r.Locked(after) {
		t.Errorf("Locked(now) = false for a new object")
	}
}

func testExtendRetention(t *testing.T, newStore Factory, mode store.LockMode) {
	s := newStore(t, mode, longRetention)
	data := putLocked(t, s, "obj")
	r := retention(t, s, "obj")
	until := r.RetainUntil.Add(48 * time.Hour)
	if err := s.SetRetention(t.Context(), "obj", until); err != nil {
		t.Fatalf("SetRetention(later): %v", err)
	}
	checkRetention(t, s, "obj", store.Retention{Mode: mode, RetainUntil: until})
	// Setting the same date again is not a shortening.
	if err := s.SetRetention(t.Context(), "obj", until); err != nil {
		t.Errorf("SetRetention(same date): %v", err)
	}
	checkContent(t, s, "obj", data)
}

func testShortenRetentionRefused(t *testing.T, newStore Factory, mode store.LockMode) {
	s := newStore(t, mode, longRetention)
	data := putLocked(t, s, "obj")
	before := retention(t, s, "obj")
	for _, until := range []time.Time{before.RetainUntil.Add(-time.Hour), before.RetainUntil.Add(-time.Second), timeNow().Add(-time.Hour)} {
		err := s.SetRetention(t.Context(), "obj", until)
		if !errors.Is(err, store.ErrRetentionShortened) {
			t.Errorf("SetRetention(%s), before %s = %v, want ErrRetentionShortened", until, before.RetainUntil, err)
		}
	}
	checkRetention(t, s, "obj", before)
	checkContent(t, s, "obj", data)
}

func testDeleteLockedRefused(t *testing.T, newStore Factory, mode store.LockMode) {
	s := newStore(t, mode, longRetention)
	data := putLocked(t, s, "obj")
	before := retention(t, s, "obj")
	for range 2 {
		if err := s.Delete(t.Context(), "obj"); !errors.Is(err, store.ErrLocked) {
			t.Errorf("Delete of a retained object = %v, want ErrLocked", err)
		}
	}
	checkContent(t, s, "obj", data)
	checkRetention(t, s, "obj", before)
	page, err := s.List(t.Context(), store.ListOptions{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(page.Objects) != 1 || page.Objects[0].Name != "obj" {
		t.Errorf("List after refused Delete = %+v, want obj", page.Objects)
	}
}

func testDeleteAfterExpiry(t *testing.T, newStore Factory, mode store.LockMode) {
	s := newStore(t, mode, shortRetention)
	data := putLocked(t, s, "obj")
	r := retention(t, s, "obj")
	if err := s.Delete(t.Context(), "obj"); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("Delete before expiry = %v, want ErrLocked", err)
	}
	checkContent(t, s, "obj", data)
	sleepPast(r.RetainUntil)
	if err := s.Delete(t.Context(), "obj"); err != nil {
		t.Fatalf("Delete after expiry: %v", err)
	}
	checkMissing(t, s, "obj")
	if err := s.Delete(t.Context(), "obj"); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("second Delete = %v, want ErrNotExist", err)
	}
}

func testLegalHold(t *testing.T, newStore Factory, mode store.LockMode) {
	s := newStore(t, mode, shortRetention)
	ctx := t.Context()
	data := putLocked(t, s, "obj")
	if err := s.SetLegalHold(ctx, "obj", true); err != nil {
		t.Fatalf("SetLegalHold(on): %v", err)
	}
	r := retention(t, s, "obj")
	if !r.LegalHold {
		t.Fatalf("LegalHold = false after SetLegalHold(on)")
	}
	if got, want := r.Mode, mode; got != want {
		t.Errorf("Mode = %q, want %q after SetLegalHold", got, want)
	}
	sleepPast(r.RetainUntil)
	if !r.Locked(timeNow()) {
		t.Errorf("Locked = false with a legal hold")
	}
	if err := s.Delete(ctx, "obj"); !errors.Is(err, store.ErrLocked) {
		t.Errorf("Delete under legal hold after retention = %v, want ErrLocked", err)
	}
	checkContent(t, s, "obj", data)
	if err := s.SetLegalHold(ctx, "obj", false); err != nil {
		t.Fatalf("SetLegalHold(off): %v", err)
	}
	if retention(t, s, "obj").LegalHold {
		t.Errorf("LegalHold = true after SetLegalHold(off)")
	}
	if err := s.Delete(ctx, "obj"); err != nil {
		t.Fatalf("Delete after the hold was lifted: %v", err)
	}
	checkMissing(t, s, "obj")
}

func testNoRetention(t *testing.T, newStore Factory, mode store.LockMode) {
	s := newStore(t, mode, 0)
	ctx := t.Context()
	put(t, s, "obj", []byte("x"))
	r := retention(t, s, "obj")
	if r.Mode != store.LockNone || !r.RetainUntil.IsZero() || r.LegalHold {
		t.Errorf("Retention = %+v, want none", r)
	}
	if err := s.Delete(ctx, "obj"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	checkMissing(t, s, "obj")
	// The name is free again.
	put(t, s, "obj", []byte("y"))
	checkContent(t, s, "obj", []byte("y"))
}
