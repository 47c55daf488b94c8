package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/segment"
)

// Run streams committed transactions to sink, in commit order, until ctx
// ends (it then returns ctx.Err()), the sink fails (Run returns its error),
// or the stream breaks. Once it has delivered everything before the
// server's WAL end as read at Open, it calls sink.CaughtUp (once). It
// stops when the stream breaks:
//
//   - the slot is gone or invalidated: an error wrapping
//     capture.ErrStreamLost;
//   - the connection is lost or the server shuts down: an error for which
//     IsTransient is true; Open a new Reader to resume from the slot;
//   - the heartbeat (sequences) transaction fails: its error.
//
// It starts replication with pgoutput protocol 2, streaming and messages
// on, from the slot's confirmed position; answers keepalives; reports the
// acknowledged position at least every Config.StatusInterval (also while
// the sink is busy, so a slow sink does not trip wal_sender_timeout); and
// runs the heartbeat. Progress is called on keepalives that arrive outside
// any transaction. Run may be called once per Reader.
func (r *Reader) Run(ctx context.Context, sink capture.Sink) error {
	if r.closed {
		return errors.New("postgres capture: Run after Close")
	}
	if !r.ran.CompareAndSwap(false, true) {
		return errRunTwice
	}
	s := newStream(r, sink)
	defer s.release()

	opts := pglogrepl.StartReplicationOptions{Mode: pglogrepl.LogicalReplication, PluginArgs: []string{
		"proto_version '2'",
		fmt.Sprintf("publication_names '%s'", r.cfg.Publication), // validated: a plain identifier
		"messages 'true'",
		"streaming 'true'",
	}}
	if err := pglogrepl.StartReplication(ctx, r.repl, r.cfg.Slot, 0, opts); err != nil {
		return r.streamErr(ctx, fmt.Errorf("postgres capture: start replication: %w", err))
	}
	r.streaming = true
	r.log.Info("streaming", "from", r.start.String())

	runCtx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	hb, err := r.startHeartbeat(runCtx, fail)
	if err != nil {
		return err
	}
	defer hb.stop()

	s.connMu.Lock()
	stopStatus := s.startStatusHelper(runCtx)
	r.setWakeable(true)
	stopWake := context.AfterFunc(runCtx, r.interrupt)
	err = s.loop(runCtx)
	stopWake()
	r.setWakeable(false)
	_ = r.repl.Conn().SetReadDeadline(time.Time{}) // fails only on a closed connection
	if ctx.Err() != nil {
		// Tell the server what was acknowledged before stopping; Close
		// repeats it when it ends replication.
		_ = s.sendStatus()
	}
	stopStatus()
	s.connMu.Unlock()

	var ce *connError
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case context.Cause(runCtx) != nil && !errors.Is(context.Cause(runCtx), context.Canceled):
		return context.Cause(runCtx) // the heartbeat failed
	case errors.As(err, &ce):
		return r.streamErr(ctx, ce.err)
	}
	return err
}

// connError marks an error of the replication connection itself (as
// opposed to one of the sink or of decoding), which streamErr classifies.
type connError struct{ err error }

func (e *connError) Error() string { return e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

// streamErr classifies an error that ended or prevented streaming: a slot
// that is gone or invalidated becomes capture.ErrStreamLost (the server
// said so, or the slot is found missing or lost afterwards); a lost
// connection is transient.
func (r *Reader) streamErr(ctx context.Context, err error) error {
	if slotLostError(err) {
		return streamLost(r.cfg.Slot, err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && !transientCode(pe.Code) {
		return err
	}
	// The connection broke or the server ended it: see whether the slot
	// survived (a dropped or invalidated slot ends its walsender too).
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if s, lerr := lookupSlot(cctx, r.meta, r.cfg.Slot); lerr == nil {
		if s == nil {
			return streamLost(r.cfg.Slot, fmt.Errorf("it was dropped (%w)", err))
		}
		if lost := s.lost(); lost != nil {
			return streamLost(r.cfg.Slot, fmt.Errorf("%w (%w)", lost, err))
		}
	}
	if IsTransient(err) {
		return err
	}
	return &transientError{err}
}

// stream is Run's state. Its fields belong to Run's goroutine, except that
// the status helper may use the connection and the status fields while it
// holds connMu, which Run's goroutine releases only while it calls the
// sink.
type stream struct {
	r     *Reader
	sink  capture.Sink
	types *typeNames

	rels    map[uint32]*segment.Relation // relations as of the last committed schema
	cur     *openTxn                     // transaction between Begin and Commit
	streams map[uint32]*streamTxn        // streamed transactions not yet committed or aborted, by xid
	chunk   *streamTxn                   // the one between StreamStart and StreamStop

	lastProgress pglogrepl.LSN
	caughtUp     bool // the stream has passed the server's WAL end at Open

	connMu     sync.Mutex
	received   pglogrepl.LSN // everything before it was received (reported as write)
	sentWrite  pglogrepl.LSN
	sentFlush  pglogrepl.LSN
	nextStatus time.Time

	deadline      time.Time // the connection's read deadline as last set
	deadlineDirty bool      // it may have been moved since
}

// The transactions a reader assembles are capture.Buffers. A transaction
// the server sends whole (BEGIN ... COMMIT) stays in memory while its
// changes hold less than Config.SpillThreshold bytes, then spills. A
// streamed transaction (pgoutput protocol 2 streaming, which the server
// uses once a transaction exceeds its logical_decoding_work_mem) spills
// from its first change (threshold 0): it may still abort, and it is
// large by definition. Each change carries the (sub)transaction id it
// came with as its tag, so that a subtransaction abort drops exactly its
// changes, and the relation id it touches, so that a CREATE TABLE AS,
// which arrives after the rows it made, is hoisted before the table's
// first change (Buffer.AddBefore).

// openTxn is a transaction the server sends whole.
type openTxn struct {
	info segment.TxnInfo
	buf  *capture.Buffer
}

// streamTxn is a streamed transaction. Relation messages sent inside its
// chunks describe the tables as this transaction sees them; they become
// the current ones when it commits (which is when the server considers
// them sent) and are dropped if it aborts.
type streamTxn struct {
	xid  uint32
	buf  *capture.Buffer
	rels map[uint32]*segment.Relation
}

func newStream(r *Reader, sink capture.Sink) *stream {
	return &stream{
		r:        r,
		sink:     sink,
		types:    newTypeNames(r.meta),
		rels:     make(map[uint32]*segment.Relation),
		streams:  make(map[uint32]*streamTxn),
		received: r.start,
		caughtUp: r.start >= r.backlog,
	}
}

// passed notes that everything before lsn has been delivered, and tells
// the sink once the backlog the server held at Open is.
func (s *stream) passed(ctx context.Context, lsn pglogrepl.LSN) error {
	if s.caughtUp || lsn < s.r.backlog {
		return nil
	}
	s.caughtUp = true
	if err := s.callSink(func() error { return s.sink.CaughtUp(ctx) }); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	return nil
}

// release drops spill files of transactions still open.
func (s *stream) release() {
	if s.cur != nil {
		s.cur.buf.Close()
	}
	for _, st := range s.streams {
		st.buf.Close()
	}
}

// loop receives and handles messages until an error or ctx ends.
func (s *stream) loop(ctx context.Context) error {
	for {
		if err := s.statusIfDue(); err != nil {
			return err
		}
		msg, err := s.receive(ctx)
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case nil: // a status tick or an acknowledgement woke us
		case *pgproto3.CopyData:
			if err := s.copyData(ctx, m.Data); err != nil {
				return err
			}
		case *pgproto3.ErrorResponse:
			return &connError{fmt.Errorf("postgres capture: replication: %w", pgconn.ErrorResponseToPgError(m))}
		case *pgproto3.CopyDone:
			return &connError{errors.New("postgres capture: the server ended replication")}
		}
	}
}

// receive waits for the next message until the next status is due, an
// acknowledgement arrives or ctx ends; then it returns nil, nil (or
// ctx.Err()). It bounds the read with the socket's read deadline rather
// than a context, which would cost a goroutine per message in pgconn;
// Acknowledge and ctx's end move the deadline to now (Reader.interrupt).
func (s *stream) receive(ctx context.Context) (pgproto3.BackendMessage, error) {
	r := s.r
	if s.deadlineDirty || !s.deadline.Equal(s.nextStatus) {
		if err := r.repl.Conn().SetReadDeadline(s.nextStatus); err != nil {
			return nil, &connError{fmt.Errorf("postgres capture: receive: %w", err)}
		}
		s.deadline, s.deadlineDirty = s.nextStatus, false
	}
	// An acknowledgement or cancellation that came before the deadline
	// was set is seen here; any later one cuts the read short.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.acknowledged() != s.sentFlush {
		return nil, nil
	}
	msg, err := r.repl.ReceiveMessage(context.Background())
	if err == nil {
		return msg, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if pgconn.Timeout(err) {
		// The connection survives a read deadline; the deadline may have
		// been moved, so set it again next time.
		s.deadlineDirty = true
		return nil, nil
	}
	return nil, &connError{fmt.Errorf("postgres capture: receive: %w", err)}
}

// statusIfDue reports positions when the interval has passed or there is
// a new acknowledgement.
func (s *stream) statusIfDue() error {
	if s.r.acknowledged() == s.sentFlush && time.Now().Before(s.nextStatus) {
		return nil
	}
	return s.sendStatus()
}

// sendStatus reports write = received (never below flush), flush = apply
// = the acknowledged position: the server keeps everything after flush.
// The caller holds connMu.
func (s *stream) sendStatus() error {
	flush := s.r.acknowledged()
	write := max(s.received, flush)
	err := pglogrepl.SendStandbyStatusUpdate(context.Background(), s.r.repl, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: write, WALFlushPosition: flush, WALApplyPosition: flush,
	})
	if err != nil {
		return &connError{fmt.Errorf("postgres capture: send status: %w", err)}
	}
	s.sentWrite, s.sentFlush = write, flush
	s.nextStatus = time.Now().Add(s.r.cfg.StatusInterval)
	return nil
}

// startStatusHelper starts the goroutine that reports status while Run's
// goroutine is inside the sink (the only time connMu is free). The
// returned function stops it and waits for it (the goroutine only ever
// TryLocks connMu, so the caller may hold it).
func (s *stream) startStatusHelper(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(max(s.r.cfg.StatusInterval/4, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if !s.connMu.TryLock() {
				continue // Run's goroutine has the connection and reports itself
			}
			if err := s.statusIfDue(); err != nil {
				s.r.log.Warn("status while the sink is busy", "err", err)
			}
			s.connMu.Unlock()
		}
	}()
	return func() { cancel(); <-done }
}

// callSink calls f (a sink method) with connMu released.
func (s *stream) callSink(f func() error) error {
	s.connMu.Unlock()
	defer s.connMu.Lock()
	return f()
}

// copyData handles one CopyData message of the replication stream.
func (s *stream) copyData(ctx context.Context, data []byte) error {
	if len(data) == 0 {
		return errors.New("postgres capture: empty replication message")
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return fmt.Errorf("postgres capture: keepalive: %w", err)
		}
		return s.keepalive(ctx, ka)
	case pglogrepl.XLogDataByteID:
		xld, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return fmt.Errorf("postgres capture: %w", err)
		}
		if err := s.logical(ctx, xld.WALData); err != nil {
			return fmt.Errorf("postgres capture: at %s: %w", xld.WALStart, err)
		}
	}
	return nil
}

// keepalive answers the server and, outside transactions, reports
// progress: every transaction committing before the server's sent
// position has been delivered.
func (s *stream) keepalive(ctx context.Context, ka pglogrepl.PrimaryKeepaliveMessage) error {
	idle := s.cur == nil && s.chunk == nil
	if idle && ka.ServerWALEnd > s.received {
		s.received = ka.ServerWALEnd
	}
	if ka.ReplyRequested {
		// Otherwise status goes out on the status interval and after an
		// acknowledgement, as pg_recvlogical does: answering every
		// keepalive (the server sends one after nearly every transaction
		// while our write position trails) cost a write and a wake-up of
		// the server's walsender per transaction.
		if err := s.sendStatus(); err != nil {
			return err
		}
	}
	if !idle || ka.ServerWALEnd <= s.lastProgress {
		return nil
	}
	s.lastProgress = ka.ServerWALEnd
	pos, at := segment.Position{Lo: uint64(ka.ServerWALEnd)}, ka.ServerTime.UTC()
	if err := s.callSink(func() error { return s.sink.Progress(ctx, pos, at) }); err != nil {
		return fmt.Errorf("sink progress: %w", err)
	}
	return s.passed(ctx, ka.ServerWALEnd)
}
