package shipper_test

import (
	"context"
	"io"
	"sync/atomic"
	"testing"

	"github.com/rxvault/rxvault/archive"
	"github.com/rxvault/rxvault/internal/store"
	"github.com/rxvault/rxvault/segment"
	"github.com/rxvault/rxvault/segment/segtest"
	"github.com/rxvault/rxvault/shipper"
)

// unreachableStore fails every call with a transient error while off is
// set, as a store that does not answer.
type unreachableStore struct {
	store.Store
	off atomic.Bool
}

func (u *unreachableStore) Put(ctx context.Context, name string, body io.ReadSeeker, size int64) error {
	if u.off.Load() {
		return errDown
	}
	return u.Store.Put(ctx, name, body, size)
}

func (u *unreachableStore) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if u.off.Load() {
		return nil, errDown
	}
	return u.Store.Get(ctx, name)
}

func (u *unreachableStore) List(ctx context.Context, opts store.ListOptions) (store.Page, error) {
	if u.off.Load() {
		return store.Page{}, errDown
	}
	return u.Store.List(ctx, opts)
}

// TestResumeFirstStoreDown: with the first store unreachable, Resume
// continues the chain from the spool when the stream resumes within it,
// and waits (a transient error) when only the archive can decide; the
// segments sealed meanwhile continue the chain once the store is back.
func TestResumeFirstStoreDown(t *testing.T) {
	first := &unreachableStore{Store: fileStore(t)}
	e := newEnv(t, first, fileStore(t))
	s, d1, txns := archiveCorpus(t, e, 9, 20)
	tip := s.Tip()
	ctx := t.Context()
	first.off.Store(true)

	for name, start := range map[string]shipper.StreamStart{
		"slot created anew": {Created: true, Pos: tip.EndPos},
		"slot past the end": {Pos: segment.Position{Lo: tip.EndPos.Lo + 1}},
	} {
		if d, err := shipper.Resume(ctx, e.cfg, start); err == nil || !store.IsTransient(err) {
			t.Errorf("%s, first store down: decision %+v, err %v; want a transient error (wait)", name, d, err)
		}
	}
	if snap := e.cfg.Stats[0].Snapshot(); snap.Up || snap.LastError == "" || snap.Errors != 0 {
		t.Errorf("first store's stats while unreachable: %+v", snap)
	}
	d, err := shipper.Resume(ctx, e.cfg, shipper.StreamStart{Pos: tip.EndPos})
	if err != nil {
		t.Fatalf("resume within the chain, first store down: %v", err)
	}
	if !d.Offline || d.New || d.Tip.Chain != d1.Tip.Chain || d.Tip.Seq != tip.Seq || d.Tip.Digest != tip.Digest {
		t.Fatalf("offline decision %+v, want the chain's tip %+v", d, tip)
	}
	s2, err := shipper.New(e.cfg, d.Tip)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, s2)
	more := segtest.NewCorpus(10).Txns(20)
	for i := range more {
		more[i].Pos.Lo += tip.EndPos.Lo
		if err := s2.Txn(ctx, txn(more[i])); err != nil {
			t.Fatal(err)
		}
	}
	first.off.Store(false)
	if err := s2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
	for i, st := range e.stores {
		got, hdrs := readChain(t, st, e.id)
		if len(got) != len(txns)+len(more) || len(hdrs) < 2 || hdrs[len(hdrs)-1].Seq <= tip.Seq {
			t.Errorf("store %d: %d txns in %d segments, want %d continuing the chain", i, len(got), len(hdrs), len(txns)+len(more))
		}
	}
}

// TestResumeNoSpoolStoreDown: a first run (an empty spool) with the first
// store unreachable waits; so does a new chain with a later store down.
func TestResumeNoSpoolStoreDown(t *testing.T) {
	first := &unreachableStore{Store: fileStore(t)}
	first.off.Store(true)
	e := newEnv(t, first, fileStore(t))
	if d, err := shipper.Resume(t.Context(), e.cfg, shipper.StreamStart{Created: true, Pos: segment.Position{Lo: 1000}}); err == nil || !store.IsTransient(err) {
		t.Errorf("first run, first store down: decision %+v, err %v; want a transient error (wait)", d, err)
	}
	second := &unreachableStore{Store: fileStore(t)}
	second.off.Store(true)
	e = newEnv(t, fileStore(t), second)
	if d, err := shipper.Resume(t.Context(), e.cfg, shipper.StreamStart{Created: true, Pos: segment.Position{Lo: 1000}}); err == nil || !store.IsTransient(err) {
		t.Errorf("first run, second store down: decision %+v, err %v; want a transient error (wait)", d, err)
	}
	if idx := listChains(t, e.stores[0]); idx != 0 {
		t.Errorf("a waiting first run left %d chain markers in the first store", idx)
	}
}

// TestResumeSecondStoreDown: a later store that does not answer does not
// stop a chain the spool names from continuing.
func TestResumeSecondStoreDown(t *testing.T) {
	second := &unreachableStore{Store: fileStore(t)}
	e := newEnv(t, fileStore(t), second)
	s, d1, _ := archiveCorpus(t, e, 11, 10)
	second.off.Store(true)
	d, err := shipper.Resume(t.Context(), e.cfg, shipper.StreamStart{Pos: s.Tip().EndPos})
	if err != nil {
		t.Fatalf("resume with the second store down: %v", err)
	}
	if d.New || d.Offline || d.Tip.Chain != d1.Tip.Chain || d.Tip.Seq != s.Tip().Seq || len(d.Unregistered) != 1 || d.Unregistered[0] != 1 {
		t.Errorf("decision %+v, want the chain continued from the first store, the second store unregistered", d)
	}
}

// listChains counts the chains (markers) of the test source in st.
func listChains(t *testing.T, st store.Store) int {
	t.Helper()
	idx, err := archive.Load(t.Context(), st, archive.SourceDir(segment.EnginePostgres, sourceID))
	if err != nil {
		t.Fatal(err)
	}
	return len(idx.Chains)
}
