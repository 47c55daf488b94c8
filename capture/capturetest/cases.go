package capturetest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/rxvault/rxvault/capture"
)

// options are the reader settings of a case that does not spill.
func options(t *testing.T) Options { return Options{SpillDir: t.TempDir()} }

// testCommitOrder: sessions commit interleaved and concurrent
// transactions; the reader delivers each once, with exactly its row
// changes in statement order, in commit order (commit positions strictly
// increase, and a transaction whose commit returned before another's was
// sent comes first).
func testCommitOrder(t *testing.T, h Harness) {
	src, conn := newSource(t, h)
	rd := openReader(t, src, options(t))
	sink := newRecSink()
	rd.run(sink)
	var l ledger

	// Two sessions interleave: A begins first, B commits first.
	a, b := src.Connect(t), src.Connect(t)
	wa := &want{rows: slices.Concat(ins(1), ins(3), upd(1), ins(5), del(3))}
	wb := &want{rows: slices.Concat(ins(2, 4), upd(2))}
	exec(t, a, "BEGIN", insert(1).sql)
	exec(t, b, "BEGIN", insert(2, 4).sql)
	exec(t, a, insert(3).sql, update(1, 0).sql)
	exec(t, b, update(2, 0).sql)
	if err := l.commit(t.Context(), b, "COMMIT", wb); err != nil {
		t.Fatal(err)
	}
	exec(t, a, insert(5).sql, remove(3).sql)
	if err := l.commit(t.Context(), a, "COMMIT", wa); err != nil {
		t.Fatal(err)
	}
	l.mustAuto(t, conn, insert(6, 7))

	// Sessions commit concurrently, each its own ids.
	const workers, perWorker = 4, 6
	conns := make([]Conn, workers)
	for i := range conns {
		conns[i] = src.Connect(t)
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for k := range perWorker {
				base := int64(1000 + 100*w + 10*k)
				var err error
				if k%2 == 0 {
					err = l.txn(t.Context(), conns[w], insert(base, base+1), update(base, 0), remove(base+1), insert(base+2))
				} else {
					err = l.commit(t.Context(), conns[w], insert(base).sql, &want{rows: ins(base)})
				}
				if err != nil {
					errs[w] = fmt.Errorf("session %d: %w", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	l.mustAuto(t, conn, insert(9999))

	user := sink.waitFor(t, rd, 9999)
	rd.stop(t)
	sink.check(t)
	checkDelivered(t, user, l.all())
}

// testAcknowledgeAndResume: a reader delivers k of n transactions; the End
// of the j-th is acknowledged (then an older End, which must change
// nothing); after Close and Open the stream resumes with transaction j+1:
// nothing up to j again, nothing after it missing, and the transactions
// delivered twice (j+1 to k) carry the same positions both times. The
// source's Identity is the same at both Opens.
func testAcknowledgeAndResume(t *testing.T, h Harness) {
	const n, k, j = 6, 4, 2
	src, conn := newSource(t, h)
	r1 := openReader(t, src, options(t))
	if !r1.SlotCreated() {
		t.Errorf("the first Open of a new source: SlotCreated false, want true")
	}
	sink := newRecSink()
	// The sink takes k transactions, then holds the next until Run ends.
	sink.hold = func(ctx context.Context, recorded int) error {
		if recorded < k {
			return nil
		}
		<-ctx.Done()
		return ctx.Err()
	}
	r1.run(sink)
	var l ledger
	for i := int64(1); i <= n; i++ {
		if i%2 == 1 {
			l.mustTxn(t, conn, insert(i), update(i, 0))
		} else {
			l.mustAuto(t, conn, insert(i))
		}
	}
	first := sink.waitUntil(t, r1, fmt.Sprintf("%d transactions", k), func(u []got, _ []int) bool { return len(u) >= k })
	if len(first) != k {
		t.Fatalf("%d transactions delivered while the sink held the %d-th, want %d", len(first), k+1, k)
	}
	r1.Acknowledge(first[j-1].end)
	r1.Acknowledge(first[0].end) // older: ignored
	r1.stop(t)
	sink.check(t)
	checkDelivered(t, first, l.all()[:k])

	r2 := openReader(t, src, options(t))
	if r2.SlotCreated() {
		t.Fatalf("reopen after an acknowledgement: SlotCreated true, want the anchor kept")
	}
	if id1, id2 := r1.Identity(), r2.Identity(); id1 != id2 || id1.SourceID == "" {
		t.Errorf("Identity %+v at the first Open, %+v at the second: want one, with a SourceID", id1, id2)
	}
	if r2.StartPos().Compare(first[j].info.Pos) > 0 {
		t.Errorf("reopen: StartPos %s is past the commit position %s of transaction %d, the first not acknowledged", r2.StartPos(), first[j].info.Pos, j+1)
	}
	sink2 := newRecSink()
	r2.run(sink2)
	l.mustAuto(t, conn, insert(n+1))
	second := sink2.waitFor(t, r2, n+1)
	r2.stop(t)
	sink2.check(t)
	for _, g := range second {
		if id := g.rows[0].id; id <= j {
			t.Errorf("after resuming: the transaction writing row %d delivered again, though the End of transaction %d was acknowledged", id, j)
		}
	}
	if len(second) > 0 && second[0].rows[0].id != j+1 {
		t.Errorf("after resuming: the first transaction delivered writes row %d, want %d (the one after the acknowledged)", second[0].rows[0].id, j+1)
	}
	checkDelivered(t, second, l.all()[j:])
	for _, g := range second {
		for _, f := range first {
			if g.rows[0].id == f.rows[0].id {
				sameTxn(t, g, f)
			}
		}
	}
}

// testRedeliverUnacknowledged: the anchor moves only by Acknowledge, so
// after Close and Open every transaction delivered but never acknowledged
// is delivered again, from the first, with the same positions (at least
// once); StartPos is at or before the first of them.
func testRedeliverUnacknowledged(t *testing.T, h Harness) {
	src, conn := newSource(t, h)
	r1 := openReader(t, src, options(t))
	sink := newRecSink()
	r1.run(sink)
	var l ledger
	l.mustAuto(t, conn, insert(1))
	l.mustTxn(t, conn, insert(2, 3), remove(2))
	l.mustAuto(t, conn, insert(4))
	first := sink.waitFor(t, r1, 4)
	r1.stop(t)
	sink.check(t)
	checkDelivered(t, first, l.all())

	r2 := openReader(t, src, options(t))
	if r2.SlotCreated() {
		t.Fatalf("reopen: SlotCreated true, want the anchor kept")
	}
	if r2.StartPos().Compare(first[0].info.Pos) > 0 {
		t.Errorf("reopen without acknowledgement: StartPos %s is past the first delivered commit position %s", r2.StartPos(), first[0].info.Pos)
	}
	sink2 := newRecSink()
	r2.run(sink2)
	l.mustAuto(t, conn, insert(5))
	second := sink2.waitFor(t, r2, 5)
	r2.stop(t)
	sink2.check(t)
	checkDelivered(t, second, l.all())
	for i := range min(len(first), len(second)) {
		sameTxn(t, second[i], first[i])
	}
}

// testCaughtUpAfterBacklog: a stream opened behind the source's end calls
// CaughtUp once the backlog (what was committed before Open) is
// delivered, and not again in that Run however much follows.
func testCaughtUpAfterBacklog(t *testing.T, h Harness) {
	src, conn := newSource(t, h)
	r0 := openReader(t, src, options(t)) // creates the anchor
	if err := r0.close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	var l ledger
	const backlog = 3
	for i := int64(1); i <= backlog; i++ {
		l.mustAuto(t, conn, insert(i))
	}
	rd := openReader(t, src, options(t))
	sink := newRecSink()
	rd.run(sink)
	sink.waitUntil(t, rd, "CaughtUp", func(_ []got, caught []int) bool { return len(caught) > 0 })
	_, caught, _ := sink.snapshot()
	if caught[0] < backlog {
		t.Errorf("CaughtUp after %d transactions, before the backlog's %d were delivered", caught[0], backlog)
	}
	l.mustAuto(t, conn, insert(backlog+1))
	l.mustTxn(t, conn, insert(backlog+2), update(backlog+2, 0))
	user := sink.waitFor(t, rd, backlog+2)
	rd.stop(t)
	sink.check(t)
	checkDelivered(t, user, l.all())
	if _, caught, _ := sink.snapshot(); len(caught) != 1 {
		t.Errorf("CaughtUp called %d times in one Run (after %v transactions), want once", len(caught), caught)
	}
}

// testCaughtUpNoBacklog: a stream opened at the source's end (a new
// anchor: nothing was committed before Open that it would deliver) never
// calls CaughtUp.
func testCaughtUpNoBacklog(t *testing.T, h Harness) {
	src, conn := newSource(t, h)
	rd := openReader(t, src, options(t))
	if !rd.SlotCreated() {
		t.Fatalf("the first Open of a new source: SlotCreated false, want true")
	}
	sink := newRecSink()
	rd.run(sink)
	var l ledger
	for i := int64(1); i <= 3; i++ {
		l.mustAuto(t, conn, insert(i))
	}
	user := sink.waitFor(t, rd, 3)
	rd.stop(t)
	sink.check(t)
	checkDelivered(t, user, l.all())
	if _, caught, _ := sink.snapshot(); len(caught) != 0 {
		t.Errorf("a stream opened with no backlog called CaughtUp %d times (after %v transactions), want never", len(caught), caught)
	}
}

// testStreamLostBeforeRun: the stream is lost while a reader is open on
// an anchor that was fine at Open; Run fails with capture.ErrStreamLost
// (a *capture.StreamLostError saying why), and the next Open does not
// resume as if nothing happened.
func testStreamLostBeforeRun(t *testing.T, h Harness) {
	src, conn := newSource(t, h)
	acknowledgeOne(t, src, conn)
	exec(t, conn, insert(2).sql) // in the gap
	rd := openReader(t, src, options(t))
	if rd.SlotCreated() {
		t.Fatalf("reopen before the loss: SlotCreated true, want the anchor kept")
	}
	src.LoseStream(t)
	rd.run(newRecSink())
	checkLost(t, "Run", rd.wait(t))
	reopenAfterLoss(t, src, conn)
}

// testStreamLostWhileClosed: the stream is lost while no reader is open;
// the next Open fails with capture.ErrStreamLost, or starts a new anchor
// (SlotCreated), and the stream then starts after the gap.
func testStreamLostWhileClosed(t *testing.T, h Harness) {
	src, conn := newSource(t, h)
	acknowledgeOne(t, src, conn)
	exec(t, conn, insert(2).sql) // in the gap
	src.LoseStream(t)
	reopenAfterLoss(t, src, conn)
}

// acknowledgeOne opens src's stream, delivers a transaction writing row 1,
// acknowledges its End and closes the reader.
func acknowledgeOne(t *testing.T, src Source, conn Conn) {
	t.Helper()
	rd := openReader(t, src, options(t))
	sink := newRecSink()
	rd.run(sink)
	exec(t, conn, insert(1).sql)
	user := sink.waitFor(t, rd, 1)
	rd.Acknowledge(user[len(user)-1].end)
	rd.stop(t)
	sink.check(t)
}

// checkLost checks that err reports a lost stream as the contract says.
func checkLost(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, capture.ErrStreamLost) {
		t.Fatalf("%s after the stream was lost: %v, want capture.ErrStreamLost", what, err)
	}
	var lost *capture.StreamLostError
	if !errors.As(err, &lost) || lost.Why == nil {
		t.Fatalf("%s after the stream was lost: %v (%T), want a *capture.StreamLostError with a reason", what, err, err)
	}
	t.Logf("%s: %v", what, err)
}

// reopenAfterLoss opens src after its stream was lost (row 2 was written
// in the gap): the Open fails with capture.ErrStreamLost and a second
// Open starts a new anchor, or the first does. The new stream does not
// deliver row 2, which is older than its anchor.
func reopenAfterLoss(t *testing.T, src Source, conn Conn) {
	t.Helper()
	r, err := src.Open(t.Context(), options(t))
	if err != nil {
		checkLost(t, "Open", err)
		if r, err = src.Open(t.Context(), options(t)); err != nil {
			t.Fatalf("Open after a lost stream was reported: %v", err)
		}
	}
	rd := adopt(t, r)
	if !rd.SlotCreated() {
		t.Fatalf("Open after the stream was lost: SlotCreated false: the stream would resume across the gap silently")
	}
	sink := newRecSink()
	rd.run(sink)
	var l ledger
	l.mustAuto(t, conn, insert(3))
	user := sink.waitFor(t, rd, 3)
	rd.stop(t)
	sink.check(t)
	checkDelivered(t, user, l.all())
}

// testSpill: a transaction many times the spill threshold is delivered
// whole, its changes in order and Len their count, while a spill file is
// open in the spill directory (spills are unlinked at creation: the
// directory stays empty); the transaction after it arrives normally, and
// by then nothing is left open there.
func testSpill(t *testing.T, h Harness) {
	src, conn := newSource(t, h)
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const threshold, width = 4 << 10, 900
	rd := openReader(t, src, Options{SpillDir: dir, SpillThreshold: threshold})
	sink := newRecSink()
	sink.spillDir = dir
	rd.run(sink)
	var l ledger
	var steps []step
	for s := range int64(8) {
		ids := make([]int64, 12)
		for i := range ids {
			ids[i] = 100*s + int64(i) + 1
		}
		steps = append(steps, insertWide(width, ids...), update(100*s+3, width), remove(100*s+5))
	}
	l.mustTxn(t, conn, steps...)
	l.mustAuto(t, conn, insert(9000))
	user := sink.waitFor(t, rd, 9000)
	rd.stop(t)
	sink.check(t)
	checkDelivered(t, user, l.all())
	if len(user) != 2 {
		t.Fatalf("%d transactions delivered, want 2", len(user))
	}
	big, small := user[0], user[1]
	if big.openSpills < 0 {
		t.Logf("open files cannot be listed here: whether the transaction spilled is not checked")
	} else {
		if big.openSpills == 0 {
			t.Errorf("a transaction of %d row changes of %d-byte values was not spilled (no file open in the spill directory while it was read); threshold %d bytes", len(big.rows), width, threshold)
		}
		if small.openSpills != 0 {
			t.Errorf("%d files still open in the spill directory while the next transaction was read", small.openSpills)
		}
		if n := openFilesIn(dir); n != 0 {
			t.Errorf("%d files open in the spill directory after Close", n)
		}
	}
	if big.dirEntries != 0 || small.dirEntries != 0 {
		t.Errorf("the spill directory held %d and %d names while the transactions were read, want none (spills are unlinked)", big.dirEntries, small.dirEntries)
	}
	if n := entries(dir); n != 0 {
		t.Errorf("the spill directory holds %d names after delivery, want none", n)
	}
}
