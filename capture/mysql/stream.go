package mysql

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"
)

// batcher is go-mysql's synchronous event handler. It runs on the stream
// goroutine (which reads and parses every event) and hands the events to
// the reader's goroutine in batches: one per transaction, or of at most
// maxBatch events or batchBytes of events (whichever comes first),
// instead of one channel handoff per event. At most batchQueue batches
// wait, so a slow sink holds the stream in bounded memory. An event
// that ends or may end a transaction (XID, COMMIT, a DDL query, a
// heartbeat, rotate and format events, ...) always closes its batch, so
// nothing the server has committed waits in it.
//
// The decoding of row images moves from the stream goroutine to the
// reader's, which decodes only the rows of captured tables: the two then
// share the work of a backlog across two cores. holdRows, go-mysql's
// RowsEventDecodeFunc, runs on the stream goroutine just before
// HandleEvent gets the same event: it decodes the event's header (which
// looks up its table map in the parser's, safe only there) and keeps the
// rest, which HandleEvent hands over with the event.
type batcher struct {
	ctx  context.Context
	out  chan []event
	buf  []event
	n    int      // bytes of the events in buf
	held rowsBody // the rows of the rows event being parsed
}

// event is a binlog event as the reader's goroutine gets it.
type event struct {
	*replication.BinlogEvent
	rows rowsBody // a rows event's rows, not decoded yet
}

// rowsBody is a rows event's data, and where its rows begin.
type rowsBody struct {
	data []byte
	pos  int
}

const (
	maxBatch   = 256
	batchBytes = 1 << 20
	batchQueue = 16
)

func newBatcher(ctx context.Context) *batcher {
	return &batcher{ctx: ctx, out: make(chan []event, batchQueue)}
}

// holdRows implements go-mysql's RowsEventDecodeFunc.
func (b *batcher) holdRows(e *replication.RowsEvent, data []byte) error {
	pos, err := e.DecodeHeader(data)
	if err != nil {
		return err
	}
	b.held = rowsBody{data: data, pos: pos}
	return nil
}

// HandleEvent implements replication.EventHandler.
func (b *batcher) HandleEvent(e *replication.BinlogEvent) error {
	ev := event{BinlogEvent: e}
	if _, ok := e.Event.(*replication.RowsEvent); ok {
		ev.rows = b.held
	}
	b.held = rowsBody{}
	b.buf = append(b.buf, ev)
	b.n += len(e.RawData)
	if len(b.buf) < maxBatch && b.n < batchBytes && midTransaction(e) {
		return nil
	}
	select {
	case b.out <- b.buf:
	case <-b.ctx.Done():
		return b.ctx.Err()
	}
	b.buf, b.n = make([]event, 0, 8), 0
	return nil
}

// midTransaction reports an event that is always followed by more of its
// transaction.
func midTransaction(e *replication.BinlogEvent) bool {
	switch ev := e.Event.(type) {
	case *replication.GTIDEvent, *replication.MariadbGTIDEvent, *replication.TableMapEvent,
		*replication.RowsEvent, *replication.MariadbAnnotateRowsEvent:
		return true
	case *replication.QueryEvent:
		return string(ev.Query) == "BEGIN"
	}
	return false
}

// stallWatch detects a binlog connection that has gone silent. The
// server sends a heartbeat event every Config.Heartbeat while it has
// nothing else to send (and the reader writes its heartbeat row as
// often), so waiting longer than the limit for the next event means the
// connection is dead: a peer that vanished without closing it.
//
// The reader's loop marks when it waits (waiting, done: two atomic
// stores per event, no clock read); run advances a coarse clock every
// period (a second) and ends the stream when one wait has outlasted the
// limit. Time the reader spends delivering to its sink does not count.
type stallWatch struct {
	limit  time.Duration
	period time.Duration
	tick   atomic.Int64 // periods since run started
	since  atomic.Int64 // tick at which the current wait began; -1 when not waiting
}

func newStallWatch(limit time.Duration) *stallWatch {
	w := &stallWatch{limit: limit, period: time.Second}
	w.since.Store(-1)
	return w
}

func (w *stallWatch) waiting() { w.since.Store(w.tick.Load()) }
func (w *stallWatch) done()    { w.since.Store(-1) }

// run ticks until ctx ends, and calls stall with the reason once a wait
// has lasted longer than the limit.
func (w *stallWatch) run(ctx context.Context, stall context.CancelCauseFunc) {
	t := time.NewTicker(w.period)
	defer t.Stop()
	limit := int64((w.limit + w.period - 1) / w.period)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := w.tick.Add(1)
		if since := w.since.Load(); since >= 0 && now-since > limit {
			stall(fmt.Errorf("binlog stream: no event or heartbeat from the server for %s: the connection is presumed dead", w.limit))
			return
		}
	}
}
