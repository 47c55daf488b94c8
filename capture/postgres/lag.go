package postgres

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/rxvault/rxvault/capture"
)

// lagConn is the Source's connection for Lag queries, opened on first use
// and again after it fails.
type lagConn struct {
	mu   sync.Mutex
	conn *pgx.Conn
}

var _ capture.LagReporter = (*Source)(nil)

// Lag measures the slot: the WAL beyond its confirmed flush LSN and the WAL
// it retains (from its restart LSN). It errs while the server is down or
// the slot missing.
func (s *Source) Lag(ctx context.Context) (capture.Lag, error) {
	s.lag.mu.Lock()
	defer s.lag.mu.Unlock()
	if s.lag.conn == nil || s.lag.conn.IsClosed() {
		cfg, err := s.cfg.withDefaults()
		if err != nil {
			return capture.Lag{}, err
		}
		cc, err := cfg.regularConfig()
		if err != nil {
			return capture.Lag{}, err
		}
		if s.lag.conn, err = pgx.ConnectConfig(ctx, cc); err != nil {
			return capture.Lag{}, fmt.Errorf("postgres lag: connect: %w", redact(err))
		}
	}
	var l capture.Lag
	err := s.lag.conn.QueryRow(ctx, `SELECT coalesce(pg_current_wal_lsn() - confirmed_flush_lsn, -1)::bigint,
		coalesce(pg_current_wal_lsn() - restart_lsn, -1)::bigint
		FROM pg_replication_slots WHERE slot_name = $1`, s.slotName()).Scan(&l.Bytes, &l.Retained)
	if err != nil {
		s.lag.conn.Close(context.WithoutCancel(ctx))
		s.lag.conn = nil
		return capture.Lag{}, fmt.Errorf("postgres lag: %w", redact(err))
	}
	return l, nil
}

func (s *Source) slotName() string {
	if s.cfg.Slot == "" {
		return DefaultSlot
	}
	return s.cfg.Slot
}

// Close releases the Lag connection.
func (s *Source) Close() error {
	s.lag.mu.Lock()
	defer s.lag.mu.Unlock()
	if s.lag.conn == nil {
		return nil
	}
	err := s.lag.conn.Close(context.Background())
	s.lag.conn = nil
	return err
}
