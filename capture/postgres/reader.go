package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/internal/logs"
	"github.com/rxvault/rxvault/segment"
)

// Reader streams one database's committed transactions from a logical
// replication slot. Open it, call Run once, then Close. Acknowledge, SlotLSN
// and the accessors may be called from any goroutine.
type Reader struct {
	cfg Config
	log *slog.Logger

	meta *pgx.Conn      // regular connection: type lookups and slot checks, Run's goroutine only
	repl *pgconn.PgConn // replication connection

	id         capture.Identity
	created    bool
	start      pglogrepl.LSN
	backlog    pglogrepl.LSN // the server's WAL end at Open
	seqSchemas []string      // schemas whose sequences are captured; nil: all

	acked atomic.Uint64 // highest acknowledged LSN

	// wakeMu guards wakeable: while it is set, Run is receiving in its
	// loop and interrupt may cut its read short.
	wakeMu   sync.Mutex
	wakeable bool

	ran       atomic.Bool
	streaming bool // START_REPLICATION succeeded: the connection is in copy mode
	closed    bool
}

var _ capture.Reader = (*Reader)(nil)

// Open connects to the database, checks that it can be captured exactly and
// sets it up on first use:
//
//   - the server is PostgreSQL 14 or newer with wal_level=logical, and the
//     role is a superuser or has REPLICATION;
//   - every captured table has a primary key or REPLICA IDENTITY FULL (or
//     a replica identity index); otherwise Open refuses, naming each table
//     and the ALTER TABLE that fixes it, before it publishes anything;
//   - schema rxvault with the DDL capture event triggers and the sequences
//     function is installed or refreshed (a superuser is needed for that
//     once);
//   - the publication is created (FOR ALL TABLES, or for the configured
//     tables) or checked against the configuration;
//   - the replication slot is created if missing, or replaced if it was
//     invalidated (SlotCreated then reports true: a new chain starts at
//     StartPos, and anything between the old slot's position and StartPos
//     is a gap), or checked: one in use by another connection fails with
//     a transient error (see IsTransient).
//
// Errors that retrying cannot fix (configuration, permissions, a refused
// table, an unusable slot) are marked capture.Permanent; IsTransient tells
// the others apart.
//
// The publication and objects are created before the slot, so the slot
// never decodes WAL older than them.
func Open(ctx context.Context, cfg Config) (*Reader, error) {
	r, err := open(ctx, cfg)
	if err != nil {
		return nil, markPermanent(ctx, err)
	}
	return r, nil
}

func open(ctx context.Context, cfg Config) (_ *Reader, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.SpillDir, 0o700); err != nil {
		return nil, fmt.Errorf("postgres capture: spill directory: %w; fix: set a writable spill directory", err)
	}
	r := &Reader{cfg: cfg, log: logs.For(cfg.Logger, "capture/postgres").With("slot", cfg.Slot)}
	defer func() {
		if err != nil {
			r.closeConns(ctx)
		}
	}()
	cc, err := cfg.regularConfig()
	if err != nil {
		return nil, err
	}
	if r.meta, err = pgx.ConnectConfig(ctx, cc); err != nil {
		return nil, fmt.Errorf("postgres capture: connect: %w", err)
	}
	rl, err := checkServer(ctx, r.meta)
	if err != nil {
		return nil, err
	}
	pc, err := cfg.replicationConfig()
	if err != nil {
		return nil, err
	}
	if r.repl, err = pgconn.ConnectConfig(ctx, pc); err != nil {
		return nil, fmt.Errorf("postgres capture: replication connection: %w", err)
	}
	sys, err := pglogrepl.IdentifySystem(ctx, r.repl)
	if err != nil {
		return nil, fmt.Errorf("postgres capture: identify system: %w", err)
	}
	r.id = capture.Identity{Engine: segment.EnginePostgres, SourceID: sys.SystemID + "/" + sys.DBName}

	if err := r.setup(ctx, rl, sys.DBName); err != nil {
		return nil, err
	}
	if err := r.openSlot(ctx, sys.DBName); err != nil {
		return nil, err
	}
	var end string
	if err := r.meta.QueryRow(ctx, `SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text`).Scan(&end); err != nil {
		return nil, fmt.Errorf("postgres capture: read the WAL end: %w", err)
	}
	if r.backlog, err = pglogrepl.ParseLSN(end); err != nil {
		return nil, fmt.Errorf("postgres capture: WAL end %q: %w", end, err)
	}
	r.acked.Store(uint64(r.start))
	r.log.Info("opened", "source", r.id.SourceID, "start", r.start.String(), "slot_created", r.created)
	return r, nil
}

// setup checks the captured tables and installs what is missing.
func (r *Reader) setup(ctx context.Context, rl role, db string) error {
	pub, err := lookupPublication(ctx, r.meta, r.cfg.Publication)
	if err != nil {
		return err
	}
	if pub != nil {
		if err := checkPublication(ctx, r.meta, &r.cfg, pub); err != nil {
			return err
		}
	}
	tables, err := capturedTables(ctx, r.meta, r.cfg.Publication, pub != nil, r.cfg.Tables)
	if err != nil {
		return err
	}
	if err := refuseUnusable(tables); err != nil {
		return err
	}
	if len(r.cfg.Tables) > 0 {
		seen := map[string]bool{}
		for _, t := range tables {
			if !seen[t.schema] {
				seen[t.schema] = true
				r.seqSchemas = append(r.seqSchemas, t.schema)
			}
		}
		if r.seqSchemas == nil {
			r.seqSchemas = []string{}
		}
	}
	if err := ensureObjects(ctx, r.meta, rl, db); err != nil {
		return err
	}
	if err := checkSequences(ctx, r.meta, rl, r.seqSchemas); err != nil {
		return err
	}
	if pub == nil {
		if err := createPublication(ctx, r.meta, &r.cfg); err != nil {
			return err
		}
		r.log.Info("created publication", "publication", r.cfg.Publication, "tables", len(tables))
	}
	return nil
}

// openSlot checks the slot, or creates it when missing.
func (r *Reader) openSlot(ctx context.Context, db string) error {
	s, err := lookupSlot(ctx, r.meta, r.cfg.Slot)
	if err != nil {
		return fmt.Errorf("postgres capture: %w", err)
	}
	if s != nil {
		if err := s.check(r.cfg.Slot, db); err != nil {
			return err
		}
		lost := s.lost()
		if lost == nil {
			r.start = s.confirmed
			return nil
		}
		// The stream cannot continue from this slot: replace it. The
		// caller sees SlotCreated and starts a new chain, recording the
		// gap.
		r.log.Error("replication slot invalidated; replacing it: the archive has a gap until a new base backup", "reason", lost.Error())
		if _, err := r.meta.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, r.cfg.Slot); err != nil {
			return fmt.Errorf("postgres capture: drop invalidated replication slot %s: %w", r.cfg.Slot, err)
		}
	}
	if r.start, err = createSlot(ctx, r.repl, r.cfg.Slot); err != nil {
		return err
	}
	r.created = true
	return nil
}

// Identity returns the source's identity: engine postgres, SourceID
// "<system identifier>/<database name>".
func (r *Reader) Identity() capture.Identity { return r.id }

// SlotCreated reports whether Open created the replication slot. The
// stream then starts at StartPos with nothing archived before it: a new
// chain, which needs a base backup.
func (r *Reader) SlotCreated() bool { return r.created }

// StartPos is the slot's confirmed_flush_lsn when Open ran (its consistent
// point if Open created it): Run delivers exactly the transactions whose
// commit LSN is at or after it, in commit order.
func (r *Reader) StartPos() segment.Position { return segment.Position{Lo: uint64(r.start)} }

// Acknowledge records that every transaction committing before pos is
// durably archived (pos is a Txn.End, or a position given to
// Sink.Progress). Run reports it to the server as the slot's flush
// position soon after, and the server may then recycle WAL before it and
// never sends those transactions again. Acknowledge only moves forward:
// an older position is ignored. It never blocks and may be called from any
// goroutine, also from within the sink.
func (r *Reader) Acknowledge(pos segment.Position) {
	if pos.Hi != 0 {
		r.log.Error("acknowledge: not a PostgreSQL position, ignored", "pos", pos.String())
		return
	}
	for {
		cur := r.acked.Load()
		if pos.Lo <= cur {
			return
		}
		if r.acked.CompareAndSwap(cur, pos.Lo) {
			break
		}
	}
	r.interrupt()
}

// interrupt ends Run's current read at once (it then reports status and
// checks its context), if Run is in its receive loop. Setting a read
// deadline is safe from any goroutine, and the connection survives it.
func (r *Reader) interrupt() {
	r.wakeMu.Lock()
	defer r.wakeMu.Unlock()
	if r.wakeable {
		_ = r.repl.Conn().SetReadDeadline(time.Now())
	}
}

// setWakeable marks whether Run is in its receive loop.
func (r *Reader) setWakeable(on bool) {
	r.wakeMu.Lock()
	defer r.wakeMu.Unlock()
	r.wakeable = on
}

// acknowledged is the flush position to report: never 0 (pglogrepl would
// replace a 0 with the write position) and never more than acknowledged.
func (r *Reader) acknowledged() pglogrepl.LSN { return pglogrepl.LSN(r.acked.Load()) }

// Close ends the stream and closes the connections. If Run streamed, Close
// first reports the acknowledged position and ends replication cleanly, so
// that when Close returns the server has recorded the position and freed
// the slot for the next Open. Call it after Run has returned.
func (r *Reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	if r.streaming && !r.repl.IsClosed() {
		err = r.endReplication(ctx)
	}
	r.closeConns(ctx)
	return err
}

// endReplication sends the final status and leaves copy mode, waiting for
// the server to finish the START_REPLICATION command (it releases the slot
// before that).
func (r *Reader) endReplication(ctx context.Context) error {
	if err := r.repl.Conn().SetReadDeadline(time.Time{}); err != nil {
		return fmt.Errorf("postgres capture: end replication: %w", err)
	}
	flush := r.acknowledged()
	if err := pglogrepl.SendStandbyStatusUpdate(ctx, r.repl, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: flush, WALFlushPosition: flush, WALApplyPosition: flush,
	}); err != nil {
		return fmt.Errorf("postgres capture: final status: %w", err)
	}
	r.repl.Frontend().Send(&pgproto3.CopyDone{})
	if err := r.repl.Frontend().Flush(); err != nil {
		return fmt.Errorf("postgres capture: end replication: %w", err)
	}
	for {
		msg, err := r.repl.ReceiveMessage(ctx)
		if err != nil {
			return fmt.Errorf("postgres capture: end replication: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.ReadyForQuery:
			r.streaming = false
			return nil
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("postgres capture: end replication: %w", pgconn.ErrorResponseToPgError(m))
		}
	}
}

func (r *Reader) closeConns(ctx context.Context) {
	if r.repl != nil {
		_ = r.repl.Close(ctx)
	}
	if r.meta != nil {
		_ = r.meta.Close(ctx)
	}
}

// errRunTwice: a Reader streams once; Open again to resume.
var errRunTwice = errors.New("postgres capture: Run called twice; fix: Open a new Reader to resume from the slot")
