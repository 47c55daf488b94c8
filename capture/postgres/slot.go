package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rxvault/rxvault/segment"
)

// slotState is a row of pg_replication_slots.
type slotState struct {
	slotType  string
	plugin    *string
	database  *string
	temporary bool
	active    bool
	activePID *int32
	walStatus *string
	// confirmed is confirmed_flush_lsn, 0 if null.
	confirmed pglogrepl.LSN
}

// lookupSlot returns the slot named name, or nil if there is none.
func lookupSlot(ctx context.Context, conn *pgx.Conn, name string) (*slotState, error) {
	var s slotState
	var confirmed *string
	err := conn.QueryRow(ctx, `SELECT slot_type, plugin::text, database::text, temporary, active, active_pid,
			wal_status, confirmed_flush_lsn::text
		FROM pg_replication_slots WHERE slot_name = $1`, name).
		Scan(&s.slotType, &s.plugin, &s.database, &s.temporary, &s.active, &s.activePID, &s.walStatus, &confirmed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up replication slot %s: %w", name, err)
	}
	if confirmed != nil {
		if s.confirmed, err = pglogrepl.ParseLSN(*confirmed); err != nil {
			return nil, fmt.Errorf("replication slot %s: %w", name, err)
		}
	}
	return &s, nil
}

// lost reports why the slot cannot continue the stream, or nil.
func (s *slotState) lost() error {
	switch {
	case s.walStatus != nil && *s.walStatus == "lost":
		return errors.New("it was invalidated: the WAL it needs is gone (wal_status lost)")
	case s.confirmed == 0:
		return errors.New("it has no confirmed position (invalidated)")
	}
	return nil
}

// check verifies that an existing slot is one this reader can use for
// database db. An invalidated slot passes: Open replaces it.
func (s *slotState) check(name, db string) error {
	switch {
	case s.slotType != "logical" || s.plugin == nil || *s.plugin != "pgoutput":
		return fmt.Errorf("postgres capture: replication slot %s exists but is not a logical pgoutput slot; fix: choose another slot name, or drop it: SELECT pg_drop_replication_slot('%s');", name, name)
	case s.database == nil || *s.database != db:
		return fmt.Errorf("postgres capture: replication slot %s belongs to another database; fix: choose another slot name for database %s", name, db)
	case s.temporary:
		return fmt.Errorf("postgres capture: replication slot %s is temporary; fix: choose another slot name", name)
	}
	if s.active {
		pid := int32(0)
		if s.activePID != nil {
			pid = *s.activePID
		}
		// Transient: after a crash of a previous agent the server frees
		// the slot once it notices the dead connection.
		return &transientError{fmt.Errorf("postgres capture: replication slot %s is in use by server process %d (another rxvault, or one that just stopped); fix: stop the other agent, or wait and retry", name, pid)}
	}
	return nil
}

// createSlot creates the logical slot on the replication connection and
// returns its consistent point: transactions committing at or after it
// are streamed, earlier ones never.
func createSlot(ctx context.Context, repl *pgconn.PgConn, name string) (pglogrepl.LSN, error) {
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, name, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: "NOEXPORT_SNAPSHOT"})
	if err != nil {
		return 0, fmt.Errorf("postgres capture: create replication slot %s: %w", name, err)
	}
	lsn, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return 0, fmt.Errorf("postgres capture: create replication slot %s: consistent point: %w", name, err)
	}
	return lsn, nil
}

// SlotLSN returns the slot's confirmed_flush_lsn as the server holds it
// now: the stream resumes with the first transaction committing at or
// after it. It fails with capture.ErrStreamLost if the slot is gone or
// invalidated. It opens its own short connection and may be called from
// any goroutine, also before Run or after Close.
func (r *Reader) SlotLSN(ctx context.Context) (segment.Position, error) {
	return slotLSN(ctx, &r.cfg)
}

func slotLSN(ctx context.Context, cfg *Config) (segment.Position, error) {
	cc, err := cfg.regularConfig()
	if err != nil {
		return segment.Position{}, err
	}
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return segment.Position{}, fmt.Errorf("postgres capture: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	s, err := lookupSlot(ctx, conn, cfg.Slot)
	if err != nil {
		return segment.Position{}, fmt.Errorf("postgres capture: %w", err)
	}
	if s == nil {
		return segment.Position{}, streamLost(cfg.Slot, errors.New("it does not exist"))
	}
	if err := s.lost(); err != nil {
		return segment.Position{}, streamLost(cfg.Slot, err)
	}
	return segment.Position{Lo: uint64(s.confirmed)}, nil
}

// DropSlot drops the configured replication slot if it exists and is not
// in use. The agent calls it after capture.ErrStreamLost, before opening a
// reader that starts a new chain from a new slot.
func DropSlot(ctx context.Context, cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	cc, err := cfg.regularConfig()
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return fmt.Errorf("postgres capture: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, cfg.Slot); err != nil {
		return fmt.Errorf("postgres capture: drop replication slot %s: %w", cfg.Slot, err)
	}
	return nil
}
