package mysql

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"
)

// eventQueue hands the binlog's events from go-mysql's stream goroutine
// (which reads and parses them; HandleEvent, its synchronous handler,
// runs there) to the reader's goroutine. The reader takes every event
// queued at once, and waits only when none is. It is woken when the
// stream goroutine is about to read from the network (flushConn): go-mysql
// reads only when it needs more bytes for the event it is reading, so
// then every event received so far is queued. Nothing the server has sent
// waits for more to come, and a backlog costs a wakeup per network read
// (64 KiB), not one per event or per transaction: on two cores the stream
// goroutine, the critical path, would otherwise spend much of its time
// runnable but not running. The queue holds at most about queueBytes of
// events: beyond, the stream goroutine wakes the reader and waits for it,
// so a slow sink holds the stream in bounded memory.
//
// The decoding of row images moves from the stream goroutine to the
// reader's, which decodes only the rows of captured tables: the two then
// share the work of a backlog across two cores. holdRows, go-mysql's
// RowsEventDecodeFunc, runs on the stream goroutine just before
// HandleEvent gets the same event: it decodes the event's header (which
// looks up its table map in the parser's, safe only there) and keeps the
// rest, which HandleEvent queues with the event.
type eventQueue struct {
	ctx   context.Context
	held  rowsBody      // the rows of the rows event being parsed
	ready chan struct{} // signalled when events wait for the reader
	room  chan struct{} // signalled when the reader takes the events

	mu    sync.Mutex
	buf   []event
	bytes int // of the events in buf
}

// queueBytes bounds the events queued for the reader.
const queueBytes = 16 << 20

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

func newEventQueue(ctx context.Context) *eventQueue {
	return &eventQueue{ctx: ctx, ready: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

// flushConn is the binlog stream's network connection: before each read
// it wakes the reader if events are queued (see eventQueue).
type flushConn struct {
	net.Conn
	q *eventQueue
}

func (c flushConn) Read(p []byte) (int, error) {
	c.q.flush()
	return c.Conn.Read(p)
}

// dialer is go-mysql's Dialer for the binlog stream.
func (q *eventQueue) dialer(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return flushConn{Conn: c, q: q}, nil
}

// flush wakes the reader if events are queued.
func (q *eventQueue) flush() {
	q.mu.Lock()
	n := len(q.buf)
	q.mu.Unlock()
	if n > 0 {
		signal(q.ready)
	}
}

// holdRows implements go-mysql's RowsEventDecodeFunc.
func (q *eventQueue) holdRows(e *replication.RowsEvent, data []byte) error {
	pos, err := e.DecodeHeader(data)
	if err != nil {
		return err
	}
	q.held = rowsBody{data: data, pos: pos}
	return nil
}

// HandleEvent implements replication.EventHandler.
func (q *eventQueue) HandleEvent(e *replication.BinlogEvent) error {
	ev := event{BinlogEvent: e}
	if _, ok := e.Event.(*replication.RowsEvent); ok {
		ev.rows = q.held
	}
	q.held = rowsBody{}
	q.mu.Lock()
	q.buf = append(q.buf, ev)
	q.bytes += len(e.RawData)
	full := q.bytes >= queueBytes
	q.mu.Unlock()
	if full {
		signal(q.ready)
	}
	for full {
		select {
		case <-q.room:
		case <-q.ctx.Done():
			return q.ctx.Err()
		}
		q.mu.Lock()
		full = q.bytes >= queueBytes
		q.mu.Unlock()
	}
	return nil
}

// take returns every queued event, in order, and keeps spare (whose
// events the reader is done with) to queue the next ones in.
func (q *eventQueue) take(spare []event) []event {
	clear(spare)
	q.mu.Lock()
	out := q.buf
	q.buf, q.bytes = spare[:0], 0
	q.mu.Unlock()
	signal(q.room)
	return out
}

// signal notes an event on c (of capacity 1) without waiting.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
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
