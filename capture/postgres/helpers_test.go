package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/internal/testenv"
	"github.com/rxvault/rxvault/segment"
)

// waitLimit bounds every wait in these tests. It only turns a hang into a
// failure; no test asserts how long anything takes.
const waitLimit = 2 * time.Minute

// newDB starts a private server and creates database name on it.
func newDB(t *testing.T, name string) (*testenv.Postgres, string) {
	t.Helper()
	pg := testenv.StartPostgres(t)
	return pg, pg.CreateDatabase(t, name)
}

// testConfig is a Config for dsn that logs to the test.
func testConfig(t *testing.T, dsn string) Config {
	return Config{
		DSN:            dsn,
		Heartbeat:      200 * time.Millisecond,
		StatusInterval: 200 * time.Millisecond,
		SpillDir:       t.TempDir(),
		Logger:         slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// connect opens a regular connection for the test's own statements.
func connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// execAll runs each statement on its own (extended protocol, one
// transaction each unless the statements say otherwise).
func execAll(t testing.TB, conn *pgx.Conn, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := conn.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// simpleQuery sends q as one simple-protocol query string (several
// statements run as one implicit transaction).
func simpleQuery(t *testing.T, conn *pgx.Conn, q string) {
	t.Helper()
	if _, err := conn.PgConn().Exec(context.Background(), q).ReadAll(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// recTxn is a delivered transaction with deep copies of its changes.
type recTxn struct {
	Info    segment.TxnInfo
	End     segment.Position
	Len     int
	Changes []segment.Change
}

// user reports whether the transaction is not one of rxvault's heartbeats.
func (t recTxn) user() bool {
	for _, c := range t.Changes {
		if c.Op != segment.OpMessage || (c.Prefix != segment.MsgHeartbeat && c.Prefix != segment.MsgSequences) {
			return true
		}
	}
	return false
}

// recSink records what a reader delivers.
type recSink struct {
	mu       sync.Mutex
	txns     []recTxn
	progress []segment.Position
	caughtUp []int         // for each CaughtUp call, how many txns came before it
	notify   chan struct{} // closed and replaced on every delivery
	// before, if set, runs at the start of Txn (outside mu).
	before func(t *capture.Txn) error
}

func newRecSink() *recSink { return &recSink{notify: make(chan struct{})} }

func (s *recSink) Txn(ctx context.Context, t *capture.Txn) error {
	if s.before != nil {
		if err := s.before(t); err != nil {
			return err
		}
	}
	rt := recTxn{Info: t.Info, End: t.End, Len: t.Len}
	for c, err := range t.Changes {
		if err != nil {
			return err
		}
		rt.Changes = append(rt.Changes, cloneChange(c))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.txns = append(s.txns, rt)
	close(s.notify)
	s.notify = make(chan struct{})
	return nil
}

func (s *recSink) CaughtUp(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.caughtUp = append(s.caughtUp, len(s.txns))
	return nil
}

func (s *recSink) Progress(ctx context.Context, pos segment.Position, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.progress = append(s.progress, pos)
	close(s.notify)
	s.notify = make(chan struct{})
	return nil
}

// snapshot returns what was delivered so far.
func (s *recSink) snapshot() ([]recTxn, []segment.Position, chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.txns), slices.Clone(s.progress), s.notify
}

// waitUntil waits until cond holds for what was delivered, failing the
// test if the run ends or waitLimit passes first.
func (s *recSink) waitUntil(t *testing.T, run *running, what string, cond func(txns []recTxn) bool) []recTxn {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		txns, _, ch := s.snapshot()
		if cond(txns) {
			return txns
		}
		select {
		case <-ch:
		case <-run.ended:
			t.Fatalf("waiting for %s: Run ended: %v", what, run.err)
		case <-deadline:
			t.Fatalf("waiting for %s: not delivered", what)
		}
	}
}

func cloneChange(c *segment.Change) segment.Change {
	out := *c
	out.Old = cloneValues(c.Old)
	out.New = cloneValues(c.New)
	out.Truncated = slices.Clone(c.Truncated)
	out.Content = bytes.Clone(c.Content)
	return out
}

func cloneValues(vs []segment.Value) []segment.Value {
	if vs == nil {
		return nil
	}
	out := make([]segment.Value, len(vs))
	for i, v := range vs {
		out[i] = segment.Value{Kind: v.Kind, Data: bytes.Clone(v.Data)}
	}
	return out
}

// running is a Run in progress.
type running struct {
	cancel context.CancelFunc
	err    error         // Run's result, once ended is closed
	ended  chan struct{} // closed when Run returns
}

// start runs r.Run in a goroutine that stop (or the test's cleanup) ends.
func start(t *testing.T, r *Reader, sink capture.Sink) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	run := &running{cancel: cancel, ended: make(chan struct{})}
	go func() {
		run.err = r.Run(ctx, sink)
		close(run.ended)
	}()
	t.Cleanup(func() { _ = run.stop() })
	return run
}

// stop cancels Run and returns its error.
func (run *running) stop() error {
	run.cancel()
	<-run.ended
	return run.err
}

// wait returns Run's error once it ends by itself.
func (run *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-run.ended:
		return run.err
	case <-time.After(waitLimit):
		t.Fatalf("Run did not end")
		return nil
	}
}

// openReader opens a reader and closes it when the test ends.
func openReader(t *testing.T, cfg Config) *Reader {
	t.Helper()
	r, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// slotFlush reads the slot's confirmed_flush_lsn.
func slotFlush(t *testing.T, conn *pgx.Conn, slot string) pglogrepl.LSN {
	t.Helper()
	var s string
	if err := conn.QueryRow(context.Background(), `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&s); err != nil {
		t.Fatalf("read slot: %v", err)
	}
	lsn, err := pglogrepl.ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return lsn
}

// poll calls f until it returns true, failing after waitLimit.
func poll(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: never happened", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// text is a Text value.
func text(s string) segment.Value { return segment.TextValue(s) }

var null = segment.Value{Kind: segment.Null}

// valuesString renders values for failure messages, without huge data.
func valuesString(vs []segment.Value) string {
	var b strings.Builder
	for i, v := range vs {
		if i > 0 {
			b.WriteString(", ")
		}
		switch v.Kind {
		case segment.Null:
			b.WriteString("NULL")
		case segment.Unchanged:
			b.WriteString("UNCHANGED")
		default:
			d := string(v.Data)
			if len(d) > 60 {
				d = fmt.Sprintf("%s…(%d bytes)", d[:60], len(d))
			}
			fmt.Fprintf(&b, "%q", d)
		}
	}
	return b.String()
}

func sameValues(a, b []segment.Value) bool {
	return slices.EqualFunc(a, b, func(x, y segment.Value) bool { return x.Kind == y.Kind && bytes.Equal(x.Data, y.Data) })
}

func isCanceled(err error) bool { return errors.Is(err, context.Canceled) }
