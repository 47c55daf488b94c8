package shipper_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"iter"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rxvault/rxvault/archive"
	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/internal/keys"
	"github.com/rxvault/rxvault/internal/store"
	"github.com/rxvault/rxvault/segment"
	"github.com/rxvault/rxvault/segment/segtest"
	"github.com/rxvault/rxvault/shipper"
)

const sourceID = "7441234567890123456/pharmacy"

type env struct {
	t      *testing.T
	id     *keys.Identity
	stores []store.Store
	spool  string
	acks   chan segment.Position
	cfg    shipper.Config
}

func newEnv(t *testing.T, stores ...store.Store) *env {
	t.Helper()
	id, err := keys.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if len(stores) == 0 {
		stores = []store.Store{fileStore(t), fileStore(t)}
	}
	e := &env{t: t, id: id, stores: stores, spool: t.TempDir(), acks: make(chan segment.Position, 1000)}
	e.cfg = shipper.Config{
		Engine: segment.EnginePostgres, SourceID: sourceID, Stores: stores,
		Stats:      make([]*shipper.StoreStats, len(stores)),
		Recipients: []*keys.Recipient{id.Recipient()}, SpoolDir: e.spool,
		Interval: time.Hour, MaxBytes: 64 << 20,
		OnDurable: func(p segment.Position) { e.acks <- p },
	}
	for i := range e.cfg.Stats {
		e.cfg.Stats[i] = &shipper.StoreStats{}
	}
	return e
}

func fileStore(t *testing.T) store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), "file://"+t.TempDir(), store.Options{Mode: store.LockCompliance, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// txn makes a capture.Txn from a corpus transaction.
func txn(t segment.Txn) *capture.Txn {
	return &capture.Txn{
		Info: t.TxnInfo,
		End:  segment.Position{Lo: t.Pos.Lo + 100},
		Len:  len(t.Changes),
		Changes: func(yield func(*segment.Change, error) bool) {
			for i := range t.Changes {
				if !yield(&t.Changes[i], nil) {
					return
				}
			}
		},
	}
}

// run starts the shipper's Run and returns a stop function that cancels it
// and fails the test if Run ended with anything but the cancellation.
func run(t *testing.T, s *shipper.Shipper) func() {
	ctx, cancel := context.WithCancel(t.Context())
	var err error
	var wg sync.WaitGroup
	wg.Go(func() { err = s.Run(ctx) })
	return func() {
		cancel()
		wg.Wait()
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	}
}

// readChain reads every segment of the source from st, checking links, and
// returns the transactions in order.
func readChain(t *testing.T, st store.Store, id *keys.Identity) ([]segment.Txn, []segment.Header) {
	t.Helper()
	ctx := t.Context()
	src := archive.SourceDir(segment.EnginePostgres, sourceID)
	idx, err := archive.Load(ctx, st, src)
	if err != nil {
		t.Fatal(err)
	}
	var txns []segment.Txn
	var hdrs []segment.Header
	for _, c := range idx.Chains {
		u, why := c.Usable()
		if why != "" {
			t.Fatalf("chain %s: %s", c.ID, why)
		}
		var prev *segment.Header
		var prevDigest segment.Digest
		for _, sg := range u {
			rc, err := st.Get(ctx, sg.Name)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(rc)
			rc.Close()
			h, sum, err := segment.Verify(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if prev != nil {
				if err := segment.CheckLink(prev, prevDigest, &h); err != nil {
					t.Fatal(err)
				}
			}
			prev, prevDigest = &h, sum.Digest
			hdrs = append(hdrs, h)
			r, err := segment.NewReader(bytes.NewReader(data), []*keys.Identity{id})
			if err != nil {
				t.Fatal(err)
			}
			for {
				tx, err := r.ReadTxn()
				if errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				txns = append(txns, *tx)
			}
			r.Close()
		}
	}
	return txns, hdrs
}

func start(t *testing.T, e *env) (*shipper.Shipper, shipper.Decision) {
	t.Helper()
	d, err := shipper.Resume(t.Context(), e.cfg, shipper.StreamStart{Created: true, Pos: segment.Position{Lo: 1000}, Slot: "rxvault"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := shipper.New(e.cfg, d.Tip)
	if err != nil {
		t.Fatal(err)
	}
	return s, d
}

func lastAck(e *env) segment.Position {
	var p segment.Position
	for {
		select {
		case q := <-e.acks:
			if q.Compare(p) <= 0 {
				e.t.Errorf("ack went backwards: %s after %s", q, p)
			}
			p = q
		default:
			return p
		}
	}
}

func TestShipAndAck(t *testing.T) {
	e := newEnv(t)
	e.cfg.MaxBytes = 64 << 10 // several segments
	s, d := start(t, e)
	if !d.New || d.Marker == nil || d.Marker.Gap {
		t.Fatalf("first run decision %+v", d)
	}
	stop := run(t, s)
	ctx := t.Context()
	txns := segtest.NewCorpus(3).Txns(1500)
	for i := range txns {
		if err := s.Txn(ctx, txn(txns[i])); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
	for i, st := range e.stores {
		got, hdrs := readChain(t, st, e.id)
		if len(hdrs) < 3 {
			t.Errorf("store %d: %d segments, want several (max_bytes)", i, len(hdrs))
		}
		if len(got) != len(txns) {
			t.Fatalf("store %d: %d txns archived, %d sent", i, len(got), len(txns))
		}
		for j := range got {
			if got[j].Pos != txns[j].Pos || len(got[j].Changes) != len(txns[j].Changes) {
				t.Fatalf("store %d txn %d differs", i, j)
			}
		}
	}
	if got, want := lastAck(e), (segment.Position{Lo: txns[len(txns)-1].Pos.Lo + 100}); got != want {
		t.Errorf("last ack %s, want the last transaction's end %s", got, want)
	}
	if n := countFiles(t, e.spool); n != 0 {
		t.Errorf("%d files left in the spool after everything shipped", n)
	}
}

// countFiles counts the files under dir, but for the spool's tip file,
// which stays.
func countFiles(t *testing.T, dir string) int {
	n := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() != "tip.json" {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// outageStore fails every write while down is set.
type outageStore struct {
	store.Store
	down atomic.Bool
}

var errDown = store.Transient(errors.New("store down"))

func (o *outageStore) Put(ctx context.Context, name string, body io.ReadSeeker, size int64) error {
	if o.down.Load() {
		return errDown
	}
	return o.Store.Put(ctx, name, body, size)
}

func TestOutageHoldsInSpool(t *testing.T) {
	healthy := fileStore(t)
	flaky := &outageStore{Store: fileStore(t)}
	e := newEnv(t, healthy, flaky)
	s, _ := start(t, e)
	flaky.down.Store(true)
	stop := run(t, s)
	ctx := t.Context()
	txns := segtest.NewCorpus(4).Txns(300)
	for i := range txns[:150] {
		if err := s.Txn(ctx, txn(txns[i])); err != nil {
			t.Fatal(err)
		}
	}
	flushCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	if err := s.Flush(flushCtx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("flush during outage: %v, want it to wait", err)
	}
	cancel()
	if p := lastAck(e); !p.IsZero() {
		t.Fatalf("acknowledged %s while a store was down", p)
	}
	if n := countFiles(t, filepath.Join(e.spool, "ready")); n == 0 {
		t.Fatal("nothing held in the spool during the outage")
	}
	if st := s.Stats(); st.SpoolSegments == 0 || st.SpoolBytes == 0 || !st.DurableTime.IsZero() {
		t.Errorf("stats during the outage: %+v", st)
	}
	if snap := e.cfg.Stats[1].Snapshot(); snap.Up || snap.Errors == 0 || snap.DownSince.IsZero() || snap.LastError == "" {
		t.Errorf("down store's stats: %+v", snap)
	}
	for i := range txns[150:] {
		if err := s.Txn(ctx, txn(txns[150+i])); err != nil {
			t.Fatal(err)
		}
	}
	flaky.down.Store(false)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
	for _, st := range e.stores {
		if got, _ := readChain(t, st, e.id); len(got) != len(txns) {
			t.Errorf("%s: %d txns, want %d", st, len(got), len(txns))
		}
	}
	if got, want := lastAck(e), (segment.Position{Lo: txns[len(txns)-1].Pos.Lo + 100}); got != want {
		t.Errorf("ack %s after recovery, want %s", got, want)
	}
	st := s.Stats()
	if want := txns[len(txns)-1].Commit.UTC().Truncate(time.Microsecond); !st.DurableTime.Equal(want) || st.SpoolSegments != 0 {
		t.Errorf("stats after recovery: %+v, want durable time %s", st, want)
	}
	for i, ss := range e.cfg.Stats {
		if snap := ss.Snapshot(); !snap.Up || snap.Segments == 0 || snap.Bytes == 0 {
			t.Errorf("store %d stats after recovery: %+v", i, snap)
		}
	}
}

// TestRestartContinuesChain: a shipper stopped with a sealed segment still
// in the spool (store down) is followed by a new one, which uploads it and
// continues the same chain.
func TestRestartContinuesChain(t *testing.T) {
	flaky := &outageStore{Store: fileStore(t)}
	e := newEnv(t, flaky)
	s, _ := start(t, e)
	flaky.down.Store(true)
	stop := run(t, s)
	ctx := t.Context()
	txns := segtest.NewCorpus(5).Txns(200)
	for i := range txns[:100] {
		if err := s.Txn(ctx, txn(txns[i])); err != nil {
			t.Fatal(err)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	if err := s.Flush(fctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("flush while the store is down: %v, want it to wait", err)
	}
	cancel()
	stop()
	flaky.down.Store(false)

	// Restart: the slot still stands at the chain start (nothing acked).
	d, err := shipper.Resume(ctx, e.cfg, shipper.StreamStart{Pos: segment.Position{Lo: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	if d.New {
		t.Fatalf("restart started a new chain: %+v", d.Marker)
	}
	s2, err := shipper.New(e.cfg, d.Tip)
	if err != nil {
		t.Fatal(err)
	}
	if got := s2.Tip().Seq; got != 1 {
		t.Fatalf("tip after restart: seq %d, want the spooled segment 1", got)
	}
	stop = run(t, s2)
	// The source re-sends everything after the ack point, overlapping.
	for i := range txns {
		if err := s2.Txn(ctx, txn(txns[i])); err != nil {
			t.Fatal(err)
		}
	}
	if err := s2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
	got, hdrs := readChain(t, flaky, e.id)
	if len(hdrs) != 2 || len(got) != 300 {
		t.Fatalf("%d segments with %d txns, want 2 with 100+200 (overlap kept; restore dedups)", len(hdrs), len(got))
	}
}

// archiveCorpus starts a first chain and archives n transactions of corpus
// seed into it, durably, then stops the shipper.
func archiveCorpus(t *testing.T, e *env, seed, n int) (*shipper.Shipper, shipper.Decision, []segment.Txn) {
	t.Helper()
	s, d := start(t, e)
	stop := run(t, s)
	ctx := t.Context()
	txns := segtest.NewCorpus(uint64(seed)).Txns(n)
	for i := range txns {
		if err := s.Txn(ctx, txn(txns[i])); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
	return s, d, txns
}

func TestResumeDetectsGap(t *testing.T) {
	e := newEnv(t)
	s, d1, _ := archiveCorpus(t, e, 6, 10)
	ctx := t.Context()
	tipEnd := s.Tip().EndPos
	// The slot resumes beyond what the archive holds: a gap.
	d, err := shipper.Resume(ctx, e.cfg, shipper.StreamStart{Pos: segment.Position{Lo: tipEnd.Lo + 1}})
	if err != nil {
		t.Fatal(err)
	}
	if !d.New || !d.Marker.Gap || d.Marker.Previous != d1.Tip.Chain.String() {
		t.Fatalf("slot past the archive: decision %+v marker %+v, want a new chain marked as a gap", d, d.Marker)
	}
	// The marker records where the previous chain ended: a store that
	// later lacks its last segments proves them missing.
	if m := d.Marker; m.PreviousSeq != s.Tip().Seq || m.PreviousEnd == nil || m.PreviousEnd.Hex != tipEnd.String() {
		t.Errorf("marker records the previous chain's end as segment %d at %v, want %d at %s", m.PreviousSeq, m.PreviousEnd, s.Tip().Seq, tipEnd)
	}
	// At the tip exactly: continue.
	d, err = shipper.Resume(ctx, e.cfg, shipper.StreamStart{Pos: tipEnd})
	if err != nil {
		t.Fatal(err)
	}
	if d.New {
		t.Fatal("slot at the archive's end started a new chain")
	}
}

// TestResumeRewind offers a reader that lost its anchor the archive's end:
// accepted, the chain continues from its tip; refused, a new chain starts
// after a gap.
func TestResumeRewind(t *testing.T) {
	e := newEnv(t)
	s, _, txns := archiveCorpus(t, e, 8, 10)
	ctx := t.Context()
	want := s.Tip()
	last := txns[len(txns)-1].TxnInfo
	var offered []capture.ArchiveTip
	rewind := func(accept bool) func(context.Context, capture.ArchiveTip) (bool, error) {
		return func(_ context.Context, tip capture.ArchiveTip) (bool, error) {
			offered = append(offered, tip)
			return accept, nil
		}
	}
	lost := segment.Position{Lo: want.EndPos.Lo + 5000} // the binlog's end, where a reader without a position starts
	d, err := shipper.Resume(ctx, e.cfg, shipper.StreamStart{Created: true, Pos: lost, Rewind: rewind(true)})
	if err != nil {
		t.Fatal(err)
	}
	wantOffer := capture.ArchiveTip{EndPos: want.EndPos, LastPos: last.Pos, LastCommit: last.Commit}
	if d.New || d.Tip.Chain != want.Chain || d.Tip.Seq != want.Seq || len(offered) != 1 || offered[0].EndPos != wantOffer.EndPos ||
		offered[0].LastPos != wantOffer.LastPos || !offered[0].LastCommit.Equal(wantOffer.LastCommit) {
		t.Fatalf("accepted rewind: decision %+v, offered %+v; want the chain continued from %+v, offered %+v", d, offered, want, wantOffer)
	}
	d, err = shipper.Resume(ctx, e.cfg, shipper.StreamStart{Created: true, Pos: lost, Rewind: rewind(false)})
	if err != nil {
		t.Fatal(err)
	}
	if !d.New || !d.Marker.Gap {
		t.Fatalf("refused rewind: decision %+v, want a new chain after a gap", d)
	}
}

func TestConflictStops(t *testing.T) {
	e := newEnv(t)
	s, d := start(t, e)
	ctx := t.Context()
	txns := segtest.NewCorpus(7).Txns(5)
	for i := range txns {
		if err := s.Txn(ctx, txn(txns[i])); err != nil {
			t.Fatal(err)
		}
	}
	// Someone else already wrote segment 1 of this chain.
	tally := segment.Tally{}
	for _, tx := range txns {
		if err := tally.Add(tx.TxnInfo, uint64(len(tx.Changes))); err != nil {
			t.Fatal(err)
		}
	}
	h := segment.Header{Engine: segment.EnginePostgres, SourceID: sourceID, Chain: d.Tip.Chain, Seq: 1}
	tally.Apply(&h)
	h.EndPos, h.EndTime = segment.Position{Lo: txns[4].Pos.Lo + 100}, h.LastCommit
	name := archive.SegmentName(archive.SourceDir(segment.EnginePostgres, sourceID), h.Info())
	if err := e.stores[0].Put(ctx, name, bytes.NewReader([]byte("impostor")), 8); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx) }()
	err := s.Flush(ctx)
	cancel()
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("another agent")) {
		t.Fatalf("flush over a conflicting object: %v", err)
	}
	if err := <-runErr; err == nil || !bytes.Contains([]byte(err.Error()), []byte("another agent")) {
		t.Fatalf("Run over a conflicting object: %v", err)
	}
	if p := lastAck(e); !p.IsZero() {
		t.Errorf("acknowledged %s despite the conflict", p)
	}
}

type memDump struct {
	io.Reader
	pos segment.Position
	at  time.Time
}

func (m memDump) Pos() segment.Position { return m.pos }
func (m memDump) Time() time.Time       { return m.at }

func TestBackupParts(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	data := make([]byte, 2_500_000)
	for i := range data {
		data[i] = byte(i * 7 >> 8)
	}
	dump := memDump{Reader: bytes.NewReader(data), pos: segment.Position{Lo: 0x5000}, at: time.Date(2026, 4, 1, 1, 2, 3, 456789000, time.UTC)}
	m, err := shipper.Backup(ctx, e.cfg, dump, shipper.BackupOptions{PartSize: 1 << 20, Tool: "test", DumpFormat: "raw"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Parts != 3 || m.Bytes != int64(len(data)) {
		t.Fatalf("manifest: %d parts, %d bytes", m.Parts, m.Bytes)
	}
	src := archive.SourceDir(segment.EnginePostgres, sourceID)
	for _, st := range e.stores {
		idx, err := archive.Load(ctx, st, src)
		if err != nil {
			t.Fatal(err)
		}
		if len(idx.Backups) != 1 {
			t.Fatalf("%d backups", len(idx.Backups))
		}
		b := idx.Backups[0]
		if ok, why := b.Complete(); !ok {
			t.Fatalf("backup incomplete: %s", why)
		}
		var got bytes.Buffer
		for _, p := range b.Parts {
			rc, _ := st.Get(ctx, p.Name)
			r, err := segment.NewReader(rc, []*keys.Identity{e.id})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(&got, r); err != nil {
				t.Fatal(err)
			}
			if h := r.Header(); h.EndPos != dump.pos {
				t.Errorf("part header position %s", h.EndPos)
			}
			rc.Close()
		}
		if !bytes.Equal(got.Bytes(), data) {
			t.Error("parts do not concatenate to the dump")
		}
	}
	if n := countFiles(t, e.spool); n != 0 {
		t.Errorf("%d files left in the spool", n)
	}
}

var _ iter.Seq2[*segment.Change, error] = txn(segment.Txn{}).Changes

// TestIdleProgressStaysWithinArchive: progress reported while nothing is
// open is never acknowledged past the end of the last stored segment, so
// the source's anchor (the slot, the saved binlog position) never stands
// where the archive does not reach, and a restart continues the chain. An
// acknowledged idle position once let a restart find the slot past the
// archive's end and report a false gap (battery seed 246667963).
func TestIdleProgressStaysWithinArchive(t *testing.T) {
	flaky := &outageStore{Store: fileStore(t)}
	e := newEnv(t, flaky)
	s, _ := start(t, e)
	stop := run(t, s)
	ctx := t.Context()
	tx := segtest.NewCorpus(9).Txn()
	tx.Pos = segment.Position{Lo: 2000}
	if err := s.Txn(ctx, txn(tx)); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	waitAck(t, e, segment.Position{Lo: 2100})

	// Idle progress, with nothing open or waiting.
	if err := s.Progress(ctx, segment.Position{Lo: 5000}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// A window for a wrongful ack to show (it would come from the upload
	// goroutine, after Flush returned): no state says that none is coming,
	// and a synctest bubble cannot hold the shipper (see segment's
	// scratchPool). The same holds for the windows below.
	time.Sleep(200 * time.Millisecond)
	if p := lastAck(e); !p.IsZero() {
		t.Errorf("idle progress acknowledged %s, past the archive's end %s", p, s.Tip().EndPos)
	}

	// A transaction after the idle progress is acknowledged once stored,
	// never before.
	flaky.down.Store(true)
	tx = segtest.NewCorpus(10).Txn()
	tx.Pos = segment.Position{Lo: 6000}
	if err := s.Txn(ctx, txn(tx)); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	if err := s.Flush(fctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("flush while the store is down: %v", err)
	}
	cancel()
	if err := s.Progress(ctx, segment.Position{Lo: 9000}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if p := lastAck(e); !p.IsZero() {
		t.Fatalf("acknowledged %s while segment at 6000 is not stored", p)
	}
	flaky.down.Store(false)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	waitAck(t, e, segment.Position{Lo: 6100})
	if err := s.Progress(ctx, segment.Position{Lo: 9500}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	acked := segment.Position{Lo: 6100}
	if p := lastAck(e); !p.IsZero() {
		acked = p
		t.Errorf("idle progress acknowledged %s, past the archive's end %s", p, s.Tip().EndPos)
	}
	stop()

	// The slot stands where the shipper acknowledged: a restart continues
	// the chain.
	d, err := shipper.Resume(ctx, e.cfg, shipper.StreamStart{Pos: acked})
	if err != nil {
		t.Fatal(err)
	}
	if d.New {
		t.Fatalf("restart after idle progress started a new chain: %s", d.Marker.Reason)
	}
}

// waitAck waits until the acknowledged position reaches want.
func waitAck(t *testing.T, e *env, want segment.Position) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case p := <-e.acks:
			if p == want {
				return
			}
			if p.Compare(want) > 0 {
				t.Fatalf("ack %s overshoots %s", p, want)
			}
		case <-deadline:
			t.Fatalf("no ack of %s", want)
		}
	}
}

// TestCaughtUpSealsAtOnce: with an hour's interval, a drained backlog is
// sealed, stored and acknowledged without waiting for the interval.
func TestCaughtUpSealsAtOnce(t *testing.T) {
	e := newEnv(t)
	s, _ := start(t, e)
	stop := run(t, s)
	defer stop()
	ctx := t.Context()
	txns := segtest.NewCorpus(4).Txns(50)
	for i := range txns {
		if err := s.Txn(ctx, txn(txns[i])); err != nil {
			t.Fatal(err)
		}
	}
	select { // a window for a wrongful ack (see TestIdleProgressStaysWithinArchive)
	case p := <-e.acks:
		t.Fatalf("acknowledged %s before the interval or CaughtUp", p)
	case <-time.After(100 * time.Millisecond):
	}
	if err := s.CaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	waitAck(t, e, segment.Position{Lo: txns[len(txns)-1].Pos.Lo + 100})
	for i, st := range e.stores {
		if got, _ := readChain(t, st, e.id); len(got) != len(txns) {
			t.Errorf("store %d: %d txns, want %d", i, len(got), len(txns))
		}
	}
}

// TestCatchUpSegmentsAreSmall: before CaughtUp a segment closes at
// CatchUpBytes, so a backlog is sealed and acknowledged in steps while it
// is read; after it, segments grow to MaxBytes.
func TestCatchUpSegmentsAreSmall(t *testing.T) {
	e := newEnv(t)
	e.cfg.MaxBytes, e.cfg.CatchUpBytes = 1<<30, 32<<10
	s, _ := start(t, e)
	stop := run(t, s)
	defer stop()
	ctx := t.Context()
	txns := segtest.NewCorpus(5).Txns(600)
	backlog, live := txns[:300], txns[300:]
	for i := range backlog {
		if err := s.Txn(ctx, txn(backlog[i])); err != nil {
			t.Fatal(err)
		}
	}
	// Acknowledged without an interval, a flush or CaughtUp: segments of
	// 32 KiB closed on their own. Only the open one waits.
	select {
	case <-e.acks:
	case <-time.After(10 * time.Second):
		t.Fatal("nothing acknowledged while catching up: segments did not close at CatchUpBytes")
	}
	if err := s.CaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	waitAck(t, e, segment.Position{Lo: backlog[len(backlog)-1].Pos.Lo + 100})
	_, hdrs := readChain(t, e.stores[0], e.id)
	segs := len(hdrs)
	if segs < 3 {
		t.Fatalf("the backlog made %d segments, want several of at most 32 KiB", segs)
	}
	for i := range live {
		if err := s.Txn(ctx, txn(live[i])); err != nil {
			t.Fatal(err)
		}
	}
	select { // a window for a wrongful ack (see TestIdleProgressStaysWithinArchive)
	case p := <-e.acks:
		t.Fatalf("acknowledged %s after CaughtUp before the interval: a segment closed below MaxBytes", p)
	case <-time.After(200 * time.Millisecond):
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, hdrs := readChain(t, e.stores[0], e.id)
	if len(hdrs) != segs+1 {
		t.Errorf("after CaughtUp %d more segments, want 1", len(hdrs)-segs)
	}
	if len(got) != len(txns) {
		t.Errorf("%d txns stored, want %d", len(got), len(txns))
	}
}

// TestTxnWritesWithoutBlocking: while a transaction is being written into
// the open segment (a large one takes seconds to compress), segments
// sealed before it are still stored and acknowledged, and Stats answers.
func TestTxnWritesWithoutBlocking(t *testing.T) {
	flaky := &outageStore{Store: fileStore(t)}
	e := newEnv(t, flaky)
	e.cfg.MaxBytes = 32 << 10
	s, _ := start(t, e)
	flaky.down.Store(true) // segments wait in the spool
	stop := run(t, s)
	defer stop()
	ctx := t.Context()
	txns := segtest.NewCorpus(6).Txns(400)
	for i := range txns[:len(txns)-1] {
		if err := s.Txn(ctx, txn(txns[i])); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); s.Stats().SpoolSegments == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no segment sealed at max_bytes")
		}
	}
	if len(e.acks) > 0 {
		t.Fatal("acknowledged while the store was down")
	}

	// The last transaction stalls after its first change until the test
	// releases it; meanwhile the store comes back.
	stalled, release := make(chan struct{}), make(chan struct{})
	last := txn(txns[len(txns)-1])
	changes := last.Changes
	last.Changes = func(yield func(*segment.Change, error) bool) {
		first := true
		for c, err := range changes {
			if !yield(c, err) {
				return
			}
			if first {
				first = false
				close(stalled)
				<-release
			}
		}
	}
	done := make(chan error, 1)
	go func() { done <- s.Txn(ctx, last) }()
	<-stalled
	flaky.down.Store(false)
	answered := make(chan struct{})
	go func() {
		s.Stats()
		close(answered)
	}()
	select {
	case <-answered:
	case <-time.After(30 * time.Second):
		t.Error("Stats waited for the transaction being written")
	}
	select {
	case <-e.acks:
	case <-time.After(60 * time.Second):
		t.Error("no segment stored and acknowledged while a transaction was being written")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
