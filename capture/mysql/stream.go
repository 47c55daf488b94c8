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
// (which reads them; HandleEvent, its synchronous handler, runs there) to
// the reader's goroutine. The reader takes every event
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
// The stream goroutine parses only the events' headers (go-mysql's raw
// mode, but for rotate and format description events): the reader's
// goroutine reads the rest (assembler.event), with parsers of its own for
// the events every transaction has, and go-mysql's for the others. The
// stream goroutine, the critical path of a backlog, then does little
// more than read, and the two share the work across two cores.
type eventQueue struct {
	ctx   context.Context
	ready chan struct{} // signalled when events wait for the reader
	room  chan struct{} // signalled when the reader takes the events

	mu    sync.Mutex
	buf   []*replication.BinlogEvent
	bytes int // of the events in buf
}

// queueBytes bounds the events queued for the reader.
const queueBytes = 16 << 20

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

// HandleEvent implements replication.EventHandler.
func (q *eventQueue) HandleEvent(e *replication.BinlogEvent) error {
	q.mu.Lock()
	q.buf = append(q.buf, e)
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
func (q *eventQueue) take(spare []*replication.BinlogEvent) []*replication.BinlogEvent {
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
