package pitr_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"iter"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rxvault/rxvault/archive"
	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/internal/keys"
	"github.com/rxvault/rxvault/internal/store"
	"github.com/rxvault/rxvault/pitr"
	"github.com/rxvault/rxvault/segment"
	"github.com/rxvault/rxvault/segment/segtest"
	"github.com/rxvault/rxvault/shipper"
)

// recorder is a pitr.Target that records what a restore does, to test the
// restore's own logic; restores into real databases are tested in
// pitr/postgres and integration/.
type recorder struct {
	nonEmpty bool
	base     []byte
	applied  []segment.TxnInfo
	changes  int
	finished bool
	failAt   int // fail the Apply of this transaction number (1-based), 0 never
}

func (r *recorder) CheckEmpty(context.Context) error {
	if r.nonEmpty {
		return pitr.ErrTargetNotEmpty
	}
	return nil
}

func (r *recorder) RestoreBase(_ context.Context, dump io.Reader) error {
	var err error
	r.base, err = io.ReadAll(dump)
	return err
}

func (r *recorder) Apply(_ context.Context, info *segment.TxnInfo, changes iter.Seq2[*segment.Change, error]) error {
	for _, err := range changes {
		if err != nil {
			return err
		}
		r.changes++
	}
	if len(r.applied)+1 == r.failAt {
		return errors.New("injected apply failure")
	}
	r.applied = append(r.applied, *info)
	return nil
}

func (r *recorder) Finish(context.Context) error { r.finished = true; return nil }
func (r *recorder) Close(context.Context) error  { return nil }

type dump struct {
	io.Reader
	pos segment.Position
	at  time.Time
}

func (d dump) Pos() segment.Position { return d.pos }
func (d dump) Time() time.Time       { return d.at }

// archiveFixture ships txns as a chain into a file store, with a base
// backup at the position of txn backupAt, and with txns [overlapFrom:]
// shipped twice (a restart that re-sends what was not acknowledged).
type archiveFixture struct {
	st    store.Store
	id    *keys.Identity
	txns  []segment.Txn
	base  []byte
	bpos  segment.Position
	src   string
	spool string
}

func newArchive(t *testing.T, n, backupAt, overlapFrom int) *archiveFixture {
	t.Helper()
	ctx := t.Context()
	st, err := store.Open(ctx, "file://"+t.TempDir(), store.Options{Mode: store.LockCompliance, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	id, err := keys.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	f := &archiveFixture{st: st, id: id, txns: segtest.NewCorpus(11).Txns(n), spool: t.TempDir()}
	cfg := shipper.Config{Engine: segment.EnginePostgres, SourceID: "1/db", Stores: []store.Store{st},
		Recipients: []*keys.Recipient{id.Recipient()}, SpoolDir: f.spool, Interval: time.Hour, MaxBytes: 16 << 10}
	f.src = archive.SourceDir(cfg.Engine, cfg.SourceID)
	d, err := shipper.Resume(ctx, cfg, shipper.StreamStart{Created: true, Pos: segment.Position{Lo: 1}})
	if err != nil {
		t.Fatal(err)
	}
	f.bpos = f.txns[backupAt].Pos
	f.base = bytes.Repeat([]byte("pg_dump custom format bytes "), 1000)
	if _, err := shipper.Backup(ctx, cfg, dump{bytes.NewReader(f.base), f.bpos, f.txns[backupAt].Commit}, shipper.BackupOptions{PartSize: 10000}); err != nil {
		t.Fatal(err)
	}
	ship := func(tip shipper.Tip, txns []segment.Txn) shipper.Tip {
		s, err := shipper.New(cfg, tip)
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- s.Run(rctx) }()
		for i := range txns {
			tx := txns[i]
			ct := &capture.Txn{Info: tx.TxnInfo, End: segment.Position{Lo: tx.Pos.Lo + 1}, Len: len(tx.Changes),
				Changes: func(yield func(*segment.Change, error) bool) {
					for j := range tx.Changes {
						if !yield(&tx.Changes[j], nil) {
							return
						}
					}
				}}
			if err := s.Txn(ctx, ct); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
		return s.Tip()
	}
	tip := ship(d.Tip, f.txns)
	if overlapFrom < n {
		ship(tip, f.txns[overlapFrom:])
	}
	return f
}

func (f *archiveFixture) plan(t *testing.T, p pitr.Point) *pitr.Plan {
	t.Helper()
	idx, err := archive.Load(t.Context(), f.st, f.src)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pitr.MakePlan(idx, p)
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

func (f *archiveFixture) restore(t *testing.T, p pitr.Point, target pitr.Target, ids ...*keys.Identity) (pitr.Result, error) {
	t.Helper()
	if ids == nil {
		ids = []*keys.Identity{f.id}
	}
	r := &pitr.Restorer{Store: f.st, Identities: ids}
	return r.Restore(t.Context(), f.plan(t, p), target)
}

func TestRestoreLatestDedupsOverlap(t *testing.T) {
	f := newArchive(t, 600, 100, 400)
	rec := &recorder{}
	res, err := f.restore(t, pitr.Point{Latest: true}, rec)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rec.base, f.base) {
		t.Error("base backup bytes differ")
	}
	want := f.txns[100:]
	if len(rec.applied) != len(want) {
		t.Fatalf("applied %d txns, want %d (each once, from the backup on)", len(rec.applied), len(want))
	}
	for i := range want {
		if rec.applied[i].Pos != want[i].Pos {
			t.Fatalf("txn %d at %s, want %s", i, rec.applied[i].Pos, want[i].Pos)
		}
	}
	if !rec.finished || res.LastPos != want[len(want)-1].Pos || res.Skipped == 0 {
		t.Errorf("result %+v", res)
	}
}

func TestRestoreToTime(t *testing.T) {
	f := newArchive(t, 500, 50, 500)
	target := f.txns[321].Commit.Add(time.Microsecond / 2) // between 321 and 322
	rec := &recorder{}
	res, err := f.restore(t, pitr.Point{Time: target}, rec)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(rec.applied), 322-50; got != want {
		t.Fatalf("applied %d txns, want %d", got, want)
	}
	if !res.LastCommit.Equal(f.txns[321].Commit.UTC().Truncate(time.Microsecond)) {
		t.Errorf("last commit %s, want %s", res.LastCommit, f.txns[321].Commit)
	}
	// Exactly at a commit time: that transaction is included.
	rec = &recorder{}
	if _, err := f.restore(t, pitr.Point{Time: f.txns[200].Commit}, rec); err != nil {
		t.Fatal(err)
	}
	if got, want := len(rec.applied), 201-50; got != want {
		t.Errorf("at a commit time: applied %d, want %d", got, want)
	}
	rec = &recorder{}
	if _, err := f.restore(t, pitr.Point{Pos: f.txns[99].Pos}, rec); err != nil {
		t.Fatal(err)
	}
	if got, want := len(rec.applied), 100-50; got != want {
		t.Errorf("to a position: applied %d, want %d", got, want)
	}
}

func TestRestoreRefusals(t *testing.T) {
	f := newArchive(t, 200, 20, 200)
	if _, err := f.restore(t, pitr.Point{Latest: true}, &recorder{nonEmpty: true}); !errors.Is(err, pitr.ErrTargetNotEmpty) {
		t.Errorf("non-empty target: %v", err)
	}
	stranger, _ := keys.GenerateIdentity()
	rec := &recorder{}
	if _, err := f.restore(t, pitr.Point{Latest: true}, rec, stranger); !errors.Is(err, segment.ErrWrongKey) || rec.base != nil {
		t.Errorf("wrong identity: %v; the target must stay untouched", err)
	}
	rec = &recorder{failAt: 5}
	if _, err := f.restore(t, pitr.Point{Latest: true}, rec); err == nil || !strings.Contains(err.Error(), "partial") {
		t.Errorf("apply failure: %v", err)
	}
}

// TestRestoreRefusesTamperedSegment replaces a stored segment's bytes (as
// someone with file access could) and expects the restore to refuse before
// touching the target.
func TestRestoreRefusesTamperedSegment(t *testing.T) {
	f := newArchive(t, 300, 10, 300)
	plan := f.plan(t, pitr.Point{Latest: true})
	victim := plan.Segments[1]
	root := strings.TrimPrefix(f.st.String(), "file://")
	tamperFile(t, root+"/"+victim.Name)
	rec := &recorder{}
	_, err := f.restore(t, pitr.Point{Latest: true}, rec)
	if !errors.Is(err, segment.ErrCorrupt) || rec.base != nil {
		t.Fatalf("tampered segment: err %v, base restored %v; want ErrCorrupt before touching the target", err, rec.base != nil)
	}
	rep, err := pitr.Verify(t.Context(), f.st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Problems == 0 {
		t.Error("verify found no problem in a tampered archive")
	}
}

func TestVerifyCleanArchive(t *testing.T) {
	f := newArchive(t, 300, 10, 200)
	for _, ids := range [][]*keys.Identity{nil, {f.id}} {
		rep, err := pitr.Verify(t.Context(), f.st, ids)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Problems != 0 || len(rep.Sources) != 1 {
			t.Fatalf("clean archive: %+v", rep)
		}
		c := rep.Sources[0].Chains[0]
		if c.Verified != c.Segments || c.Segments == 0 {
			t.Errorf("verified %d of %d segments", c.Verified, c.Segments)
		}
		if got, want := c.Txns, uint64(300+100); got != want {
			t.Errorf("%d txns counted, want %d (overlap included)", got, want)
		}
		if b := rep.Sources[0].Backups; len(b) != 1 || !b[0].Verified {
			t.Errorf("backups %+v", b)
		}
	}
	stranger, _ := keys.GenerateIdentity()
	rep, err := pitr.Verify(t.Context(), f.st, []*keys.Identity{stranger})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Problems == 0 {
		t.Error("verify with a foreign identity reported no problem")
	}
}

// tamperFile flips one byte in the middle of a stored file, as someone with
// write access to a file store's directory could.
func tamperFile(t *testing.T, path string) {
	t.Helper()
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x40
	if err := os.WriteFile(path, data, 0o440); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreToTxn finds transactions by id, in a chain whose tail was
// shipped twice, and restores to and just before each.
func TestRestoreToTxn(t *testing.T) {
	f := newArchive(t, 500, 50, 400)
	idx, err := archive.Load(t.Context(), f.st, f.src)
	if err != nil {
		t.Fatal(err)
	}
	r := &pitr.Restorer{Store: f.st, Identities: []*keys.Identity{f.id}}
	unique := func(k int) bool {
		for i := range f.txns {
			if i != k && f.txns[i].ID == f.txns[k].ID {
				return false
			}
		}
		return true
	}
	checked := 0
	for _, k := range []int{51, 321, 450, 499} {
		if !unique(k) {
			continue
		}
		checked++
		for _, exclusive := range []bool{false, true} {
			p, err := r.FindTxn(t.Context(), idx, f.txns[k].ID, exclusive)
			if err != nil {
				t.Fatal(err)
			}
			if p.Pos != f.txns[k].Pos || p.Chain != idx.Chains[0].ID {
				t.Fatalf("txn %d (%s): found at %s in chain %s, want %s", k, f.txns[k].ID, p.Pos, p.Chain, f.txns[k].Pos)
			}
			rec := &recorder{}
			res, err := f.restore(t, p, rec)
			if err != nil {
				t.Fatal(err)
			}
			want := k + 1 - 50
			if exclusive {
				want--
			}
			if len(rec.applied) != want {
				t.Errorf("to %s: applied %d txns, want %d", p, len(rec.applied), want)
			}
			if !exclusive && res.LastID != f.txns[k].ID {
				t.Errorf("to %s: last id %q", p, res.LastID)
			}
		}
	}
	if checked < 3 {
		t.Fatalf("only %d of the chosen transactions have unique ids", checked)
	}
	if _, err := r.FindTxn(t.Context(), idx, "99999999", false); !errors.Is(err, pitr.ErrNoTxn) {
		t.Errorf("unknown id: %v", err)
	}
	stranger, _ := keys.GenerateIdentity()
	r.Identities = []*keys.Identity{stranger}
	if _, err := r.FindTxn(t.Context(), idx, f.txns[321].ID, false); !errors.Is(err, segment.ErrWrongKey) {
		t.Errorf("foreign identity: %v", err)
	}
}

// failingLoader is a target whose dump loader fails after reading part of
// the base backup, as a client program that meets an error does.
type failingLoader struct{ recorder }

var errLoader = errors.New("ERROR 1005 at line 12: Can't create table")

func (f *failingLoader) RestoreBase(_ context.Context, dump io.Reader) error {
	if _, err := io.ReadFull(dump, make([]byte, 100)); err != nil {
		return err
	}
	return errLoader
}

// TestRestoreBaseLoaderError: when the target's loader fails partway
// through the base backup, the restore reports the loader's error, not the
// feeder's broken pipe that follows from it.
func TestRestoreBaseLoaderError(t *testing.T) {
	f := newArchive(t, 200, 50, 200)
	_, err := f.restore(t, pitr.Point{Latest: true}, &failingLoader{})
	if !errors.Is(err, errLoader) {
		t.Fatalf("restore error = %v, want the loader's %v", err, errLoader)
	}
}
