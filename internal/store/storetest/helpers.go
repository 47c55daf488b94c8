package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rxvault/rxvault/internal/store"
)

// put stores data under name and fails the test on error.
func put(t *testing.T, s store.Store, name string, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), name, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put(%q): %v", name, err)
	}
}

// get reads the whole object.
func get(t *testing.T, s store.Store, name string) []byte {
	t.Helper()
	rc, err := s.Get(t.Context(), name)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", name, err)
	}
	return b
}

// checkContent fails the test unless name holds exactly want.
func checkContent(t *testing.T, s store.Store, name string, want []byte) {
	t.Helper()
	if got := get(t, s, name); !bytes.Equal(got, want) {
		t.Errorf("content of %q = %q, want %q", name, clip(got), clip(want))
	}
}

func clip(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// checkMissing fails the test unless name does not exist.
func checkMissing(t *testing.T, s store.Store, name string) {
	t.Helper()
	if _, err := s.Stat(t.Context(), name); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Stat(%q) = %v, want ErrNotExist", name, err)
	}
}

// retention reads name's retention.
func retention(t *testing.T, s store.Store, name string) store.Retention {
	t.Helper()
	r, err := s.Retention(t.Context(), name)
	if err != nil {
		t.Fatalf("Retention(%q): %v", name, err)
	}
	return r
}

// checkRetention fails the test unless name's retention is want.
func checkRetention(t *testing.T, s store.Store, name string, want store.Retention) {
	t.Helper()
	got := retention(t, s, name)
	if got.Mode != want.Mode || !got.RetainUntil.Equal(want.RetainUntil) || got.LegalHold != want.LegalHold {
		t.Errorf("retention of %q = %+v, want %+v", name, got, want)
	}
}

// checkAround fails the test unless got lies in [lo rounded down to a
// second, hi rounded up to a second]: stores keep whole seconds.
func checkAround(t *testing.T, what string, got, lo, hi time.Time) {
	t.Helper()
	lo = lo.Truncate(time.Second)
	hi = hi.Truncate(time.Second).Add(time.Second)
	if got.Before(lo) || got.After(hi) {
		t.Errorf("%s = %s, want within [%s, %s]", what, got.UTC(), lo.UTC(), hi.UTC())
	}
}

// sleepPast sleeps until the local clock is a second past t, so that a
// retain-until date t has passed for the store as well.
func sleepPast(t time.Time) {
	time.Sleep(time.Until(t.Add(time.Second)))
}

// pattern is a deterministic pseudo-random ReadSeeker of n bytes, so large
// objects can be streamed without holding them in memory.
type pattern struct {
	seed uint64
	n    int64
	off  int64
}

func newPattern(seed uint64, n int64) *pattern { return &pattern{seed: seed, n: n} }

// block is the content of the 8-byte block number i: a hash of seed and
// i, so any offset can be produced without state.
func (p *pattern) block(i int64) uint64 {
	return rand.NewPCG(p.seed, uint64(i)).Uint64()
}

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	k := int64(len(b))
	if k > p.n-p.off {
		k = p.n - p.off
	}
	for i := int64(0); i < k; {
		pos := p.off + i
		v := p.block(pos / 8)
		for j := pos % 8; j < 8 && i < k; j++ {
			b[i] = byte(v >> (8 * j))
			i++
		}
	}
	p.off += k
	return int(k), nil
}

func (p *pattern) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += p.off
	case io.SeekEnd:
		offset += p.n
	default:
		return 0, errors.New("pattern: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("pattern: negative offset")
	}
	p.off = offset
	return offset, nil
}

// sum returns the SHA-256 of everything r yields.
func sum(t *testing.T, r io.Reader) [32]byte {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatalf("read: %v", err)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}
