package agent_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rxvault/rxvault/agent"
	"github.com/rxvault/rxvault/archive"
	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/internal/keys"
	"github.com/rxvault/rxvault/internal/store"
	"github.com/rxvault/rxvault/segment"
	"github.com/rxvault/rxvault/segment/segtest"
	"github.com/rxvault/rxvault/shipper"
)

// The agent's decisions are tested against a scripted source: each Open
// returns the next scripted stream, which delivers its transactions and
// then ends as scripted. Stores are real file stores.

var testID = capture.Identity{Engine: segment.EnginePostgres, SourceID: "7000000000000000001/pharmacy"}

// stream is one scripted Open.
type stream struct {
	created bool             // the slot was created: a new chain
	start   segment.Position // where it resumes
	txns    []segment.Txn    // delivered in order
	end     error            // what Run returns after the transactions; nil: wait for ctx
}

// source is a scripted capture.Source.
type source struct {
	mu      sync.Mutex
	streams []stream
	opened  int
	dumps   int
}

func (s *source) Open(ctx context.Context) (capture.Reader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opened >= len(s.streams) {
		return nil, capture.Permanent(errors.New("script: no more streams"))
	}
	st := s.streams[s.opened]
	s.opened++
	return &reader{st: st}, nil
}

func (s *source) Dump(ctx context.Context) (capture.Dump, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dumps++
	return &dump{Reader: bytes.NewReader([]byte("a dump")), pos: segment.Position{Lo: 1}}, nil
}

type reader struct{ st stream }

func (r *reader) Identity() capture.Identity       { return testID }
func (r *reader) SlotCreated() bool                { return r.st.created }
func (r *reader) StartPos() segment.Position       { return r.st.start }
func (r *reader) Acknowledge(pos segment.Position) {}
func (r *reader) Close() error                     { return nil }

func (r *reader) Run(ctx context.Context, sink capture.Sink) error {
	for _, t := range r.st.txns {
		ct := &capture.Txn{Info: t.TxnInfo, End: segment.Position{Lo: t.Pos.Lo + 1}, Len: len(t.Changes),
			Changes: func(yield func(*segment.Change, error) bool) {
				for i := range t.Changes {
					if !yield(&t.Changes[i], nil) {
						return
					}
				}
			}}
		if err := sink.Txn(ctx, ct); err != nil {
			return err
		}
	}
	if r.st.end != nil {
		return r.st.end
	}
	<-ctx.Done()
	return ctx.Err()
}

type dump struct {
	io.Reader
	pos segment.Position
}

func (d *dump) Close() error               { return nil }
func (d *dump) Identity() capture.Identity { return testID }
func (d *dump) Pos() segment.Position      { return d.pos }
func (d *dump) Time() time.Time            { return time.Unix(1_800_000_000, 0).UTC() }
func (d *dump) GTID() string               { return "" }
func (d *dump) Tool() string               { return "scripted" }
func (d *dump) Format() string             { return "test" }

// corpus returns n transactions with commit positions from lo up.
func corpus(seed uint64, n int, lo uint64) []segment.Txn {
	txns := segtest.NewCorpus(seed).Txns(n)
	for i := range txns {
		txns[i].Pos = segment.Position{Lo: lo + uint64(i)*10}
	}
	return txns
}

// run runs an agent on src with one file store until until reports true
// or 20 s pass, and returns the store and Run's error.
func run(t *testing.T, src *source, until func(st store.Store) bool) (store.Store, error) {
	t.Helper()
	st, err := store.Open(t.Context(), "file://"+t.TempDir(), store.Options{Mode: store.LockCompliance, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	id, err := keys.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	a := agent.New(agent.Config{
		Source: src,
		Shipper: shipper.Config{Stores: []store.Store{st}, Recipients: []*keys.Recipient{id.Recipient()},
			Interval: 50 * time.Millisecond, MaxBytes: 1 << 20},
		SpoolRoot: t.TempDir(),
		Slot:      "rxvault",
		Logger:    slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case err := <-done:
			return st, err
		case <-deadline:
			cancel()
			t.Fatal("the agent did not reach the expected state within 20 s")
		case <-time.After(50 * time.Millisecond):
			if until != nil && until(st) {
				cancel()
				return st, <-done
			}
		}
	}
}

// testWriter sends the agent's log to the test's.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// end is where a chain's segments say the stream is complete.
func end(c *archive.Chain) segment.Position {
	if len(c.Segments) == 0 {
		return segment.Position{}
	}
	return c.Segments[len(c.Segments)-1].Info.EndPos
}

// backedUp reports whether the archive has a complete base backup taken
// for chain c.
func backedUp(idx *archive.Index, c *archive.Chain) bool {
	for _, b := range idx.Backups {
		if b.Manifest != nil && b.Manifest.Chain == c.ID.String() {
			return true
		}
	}
	return false
}

func index(t *testing.T, st store.Store) *archive.Index {
	t.Helper()
	idx, err := archive.Load(t.Context(), st, archive.SourceDir(testID.Engine, testID.SourceID))
	if err != nil {
		return &archive.Index{}
	}
	return idx
}

// TestStreamLostStartsNewChain: a stream the source lost ends the chain;
// the next stream starts a new one, marked a gap with the reader's
// reason, and gets its own base backup. Every transaction delivered is in
// a segment of its chain: those delivered before the loss too, which the
// source cannot send again (they were dropped with the open segment
// before the agent flushed on a lost stream).
func TestStreamLostStartsNewChain(t *testing.T) {
	src := &source{streams: []stream{
		{created: true, start: segment.Position{Lo: 100}, txns: corpus(1, 20, 200),
			end: capture.StreamLost(errors.New(`replication slot "rxvault" was invalidated`))},
		{created: true, start: segment.Position{Lo: 5000}, txns: corpus(2, 10, 6000)},
	}}
	st, err := run(t, src, func(st store.Store) bool {
		idx := index(t, st)
		return len(idx.Chains) == 2 && backedUp(idx, idx.Chains[1]) && end(idx.Chains[1]).Lo == 6091
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	idx := index(t, st)
	first, second := idx.Chains[0], idx.Chains[1]
	if m := second.Marker; m == nil || !m.Gap || m.Previous != first.ID.String() ||
		!strings.Contains(m.Reason, `change stream lost: replication slot "rxvault" was invalidated`) {
		t.Errorf("second chain's marker %+v: want a gap after the first, with the reader's reason", m)
	}
	if got := end(first).Lo; got != 391 {
		t.Errorf("first chain ends at %d, want 391: after the 20 transactions delivered before the stream was lost", got)
	}
}

// TestPermanentErrorStops: an error retrying cannot fix stops Run with it,
// instead of reconnecting forever.
func TestPermanentErrorStops(t *testing.T) {
	refused := errors.New("permission denied for table prescriptions")
	src := &source{streams: []stream{
		{created: true, start: segment.Position{Lo: 100}, txns: corpus(3, 5, 200), end: capture.Permanent(refused)},
	}}
	_, err := run(t, src, nil)
	if !errors.Is(err, refused) {
		t.Fatalf("Run = %v, want the permanent error", err)
	}
	if src.opened != 1 {
		t.Errorf("opened %d streams, want 1: a permanent error is not retried", src.opened)
	}
}

// TestTransientErrorReconnects: a stream that fails for another reason is
// opened again and continues the same chain from where the archive ends.
func TestTransientErrorReconnects(t *testing.T) {
	src := &source{streams: []stream{
		{created: true, start: segment.Position{Lo: 100}, txns: corpus(4, 8, 200), end: errors.New("connection reset by peer")},
		{created: false, start: segment.Position{Lo: 100}, txns: corpus(5, 8, 1000)},
	}}
	st, err := run(t, src, func(st store.Store) bool {
		idx := index(t, st)
		return len(idx.Chains) == 1 && end(idx.Chains[0]).Lo == 1071
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if idx := index(t, st); len(idx.Chains) != 1 || len(idx.Backups) != 1 {
		t.Errorf("%d chains and %d base backups after a reconnect, want 1 and 1", len(idx.Chains), len(idx.Backups))
	}
	if src.opened != 2 {
		t.Errorf("opened %d streams, want 2", src.opened)
	}
}
