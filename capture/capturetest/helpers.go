package capturetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/segment"
)

// waitLimit bounds every wait. It only turns a hang into a failure; no case
// asserts how long anything takes.
const waitLimit = 2 * time.Minute

// table is the suite's table, created in every source by newSource.
const table = "ct_items"

// newSource returns a fresh source of h holding the suite's table, and a
// session on it.
func newSource(t *testing.T, h Harness) (Source, Conn) {
	t.Helper()
	src := h.NewSource(t)
	c := src.Connect(t)
	exec(t, c, "CREATE TABLE "+table+" (id INTEGER PRIMARY KEY, v VARCHAR(1000))")
	return src, c
}

// exec runs each statement on c, failing the test on the first error.
func exec(t *testing.T, c Conn, queries ...string) {
	t.Helper()
	for _, q := range queries {
		if err := c.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", clip(q), err)
		}
	}
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// row is a row change as the suite sees it: the operation and the row's id.
type row struct {
	op segment.Op
	id int64
}

func (r row) String() string { return fmt.Sprintf("%s %d", r.op, r.id) }

func ins(ids ...int64) []row { return rowsOf(segment.OpInsert, ids) }
func upd(ids ...int64) []row { return rowsOf(segment.OpUpdate, ids) }
func del(ids ...int64) []row { return rowsOf(segment.OpDelete, ids) }

func rowsOf(op segment.Op, ids []int64) []row {
	out := make([]row, len(ids))
	for i, id := range ids {
		out[i] = row{op, id}
	}
	return out
}

// rowOf reads a row change's id: the decimal text of column id, in the new
// row of an insert or update and in the old row (the key) of a delete.
func rowOf(c *segment.Change) (row, error) {
	if c.Rel == nil {
		return row{}, fmt.Errorf("%s without a relation", c.Op)
	}
	vals := c.New
	if c.Op == segment.OpDelete {
		vals = c.Old
	}
	i := slices.IndexFunc(c.Rel.Columns, func(col segment.Column) bool { return col.Name == "id" })
	if i < 0 || i >= len(vals) {
		return row{}, fmt.Errorf("%s of %s: no id value", c.Op, c.Rel.Table)
	}
	v := vals[i]
	if v.Kind != segment.Text {
		return row{}, fmt.Errorf("%s of %s: id of kind %d, want text", c.Op, c.Rel.Table, v.Kind)
	}
	id, err := strconv.ParseInt(string(v.Data), 10, 64)
	if err != nil {
		return row{}, fmt.Errorf("%s of %s: id %q is not an integer", c.Op, c.Rel.Table, v.Data)
	}
	return row{c.Op, id}, nil
}

// got is a delivered transaction as the suite sees it.
type got struct {
	info segment.TxnInfo
	end  segment.Position
	rows []row // its row changes, in order
	// openSpills is how many spill files the process held open in the
	// sink's spill directory while the sink read this transaction, and
	// dirEntries how many names that directory held (-1: not looked at).
	openSpills, dirEntries int
}

func (g got) ids() []int64 {
	out := make([]int64, len(g.rows))
	for i, r := range g.rows {
		out[i] = r.id
	}
	return out
}

// recSink records what a reader delivers and checks what every delivery
// must satisfy (see check): Len equals the changes yielded, commit
// positions strictly increase, each End lies past its commit position, no
// transaction commits before a position Progress reported, and every row
// change is of the suite's table with a readable id.
type recSink struct {
	// hold, if set, runs before a transaction that changed rows is
	// recorded, with the number of such transactions recorded so far; an
	// error is returned from Txn and the transaction is not recorded.
	hold func(ctx context.Context, n int) error
	// spillDir, if set, is looked at while each transaction is read (see
	// got.openSpills).
	spillDir string

	mu       sync.Mutex
	all      []got // every transaction delivered
	user     []got // those that changed rows
	progress segment.Position
	caughtUp []int // for each CaughtUp call, len(user) before it
	problems []string
	notify   chan struct{} // closed and replaced on every call
}

func newRecSink() *recSink { return &recSink{notify: make(chan struct{})} }

func (s *recSink) Txn(ctx context.Context, t *capture.Txn) error {
	g := got{info: t.Info, end: t.End, openSpills: -1, dirEntries: -1}
	var bad []string
	n := 0
	for c, err := range t.Changes {
		if err != nil {
			return err
		}
		n++
		if n == 1 && s.spillDir != "" {
			g.openSpills, g.dirEntries = openFilesIn(s.spillDir), entries(s.spillDir)
		}
		switch c.Op {
		case segment.OpInsert, segment.OpUpdate, segment.OpDelete:
			if c.Rel == nil || c.Rel.Table != table {
				bad = append(bad, fmt.Sprintf("change %d: %s of a table not the suite's", n, c.Op))
				continue
			}
			r, err := rowOf(c)
			if err != nil {
				bad = append(bad, fmt.Sprintf("change %d: %v", n, err))
				continue
			}
			g.rows = append(g.rows, r)
		case segment.OpTruncate:
			bad = append(bad, fmt.Sprintf("change %d: a truncate, which the suite never runs", n))
		}
	}
	if n != t.Len {
		bad = append(bad, fmt.Sprintf("Len %d, but %d changes yielded", t.Len, n))
	}
	if t.End.Compare(t.Info.Pos) <= 0 {
		bad = append(bad, fmt.Sprintf("End %s not past the commit position %s", t.End, t.Info.Pos))
	}
	if len(g.rows) > 0 && s.hold != nil {
		s.mu.Lock()
		recorded := len(s.user)
		s.mu.Unlock()
		if err := s.hold(ctx, recorded); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := len(s.all); k > 0 && t.Info.Pos.Compare(s.all[k-1].info.Pos) <= 0 {
		bad = append(bad, fmt.Sprintf("commit position %s not after the previous transaction's %s", t.Info.Pos, s.all[k-1].info.Pos))
	}
	if t.Info.Pos.Compare(s.progress) < 0 {
		bad = append(bad, fmt.Sprintf("commit position %s before %s, which Progress said was complete", t.Info.Pos, s.progress))
	}
	for _, b := range bad {
		s.problems = append(s.problems, fmt.Sprintf("txn %q at %s: %s", t.Info.ID, t.Info.Pos, b))
	}
	s.all = append(s.all, g)
	if len(g.rows) > 0 {
		s.user = append(s.user, g)
	}
	s.changed()
	return nil
}

func (s *recSink) Progress(_ context.Context, pos segment.Position, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pos.Compare(s.progress) > 0 {
		s.progress = pos
	}
	s.changed()
	return nil
}

func (s *recSink) CaughtUp(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.caughtUp = append(s.caughtUp, len(s.user))
	s.changed()
	return nil
}

// changed wakes waiters; s.mu is held.
func (s *recSink) changed() {
	close(s.notify)
	s.notify = make(chan struct{})
}

// snapshot returns the transactions that changed rows, and the CaughtUp
// calls, so far.
func (s *recSink) snapshot() ([]got, []int, chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.user), slices.Clone(s.caughtUp), s.notify
}

// check fails the test with every problem the sink found.
func (s *recSink) check(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.problems {
		t.Error(p)
	}
}

// waitUntil waits until cond holds for what was delivered and returns the
// transactions that changed rows, failing the test if Run ends first.
func (s *recSink) waitUntil(t *testing.T, rd *reader, what string, cond func(user []got, caughtUp []int) bool) []got {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		user, caught, ch := s.snapshot()
		if cond(user, caught) {
			return user
		}
		select {
		case <-ch:
		case <-rd.ended:
			t.Fatalf("waiting for %s: Run ended: %v", what, rd.err)
		case <-deadline:
			t.Fatalf("waiting for %s: not delivered (%d transactions with rows so far)", what, len(user))
		}
	}
}

// waitFor waits until a delivered transaction holds a change of row id.
func (s *recSink) waitFor(t *testing.T, rd *reader, id int64) []got {
	t.Helper()
	return s.waitUntil(t, rd, fmt.Sprintf("the transaction writing row %d", id), func(user []got, _ []int) bool {
		return slices.ContainsFunc(user, func(g got) bool { return slices.Contains(g.ids(), id) })
	})
}

// reader is an open reader and its Run, if started.
type reader struct {
	capture.Reader
	cancel context.CancelFunc
	ended  chan struct{} // closed when Run returns
	err    error         // Run's result, once ended is closed
	closed bool
}

// openReader opens a reader of src, closed when the test ends.
func openReader(t *testing.T, src Source, opts Options) *reader {
	t.Helper()
	r, err := src.Open(t.Context(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return adopt(t, r)
}

// adopt wraps an open reader; when the test ends its Run, if started, is
// cancelled and waited for, and the reader is closed.
func adopt(t *testing.T, r capture.Reader) *reader {
	rd := &reader{Reader: r}
	t.Cleanup(func() {
		if rd.cancel != nil {
			rd.cancel()
			<-rd.ended
		}
		_ = rd.close()
	})
	return rd
}

// run starts Run with sink in a goroutine that stop, or the test's end,
// ends.
func (rd *reader) run(sink capture.Sink) {
	ctx, cancel := context.WithCancel(context.Background())
	rd.cancel, rd.ended = cancel, make(chan struct{})
	go func() {
		defer close(rd.ended)
		rd.err = rd.Run(ctx, sink)
	}()
}

// stop cancels Run, checks that it ended by the cancellation alone (nil
// or context.Canceled), and closes the reader.
func (rd *reader) stop(t *testing.T) {
	t.Helper()
	rd.cancel()
	<-rd.ended
	if rd.err != nil && !errors.Is(rd.err, context.Canceled) {
		t.Fatalf("Run, cancelled: %v", rd.err)
	}
	if err := rd.close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// wait returns Run's error once Run ends by itself.
func (rd *reader) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-rd.ended:
		return rd.err
	case <-time.After(waitLimit):
		t.Fatalf("Run did not end")
		return nil
	}
}

// close closes the reader once.
func (rd *reader) close() error {
	if rd.closed {
		return nil
	}
	rd.closed = true
	return rd.Close()
}

// openFilesIn counts the files this process holds open in dir (on Linux,
// from /proc/self/fd; -1 elsewhere). Spill files are unlinked as soon as
// they are created, so an open descriptor is the only trace of one.
func openFilesIn(dir string) int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	n := 0
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, dir+string(filepath.Separator)) {
			n++
		}
	}
	return n
}

// entries counts the names in dir.
func entries(dir string) int {
	es, err := os.ReadDir(dir)
	if err != nil {
		return -1
	}
	return len(es)
}
