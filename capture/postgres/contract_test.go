package postgres

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/capture/capturetest"
	"github.com/rxvault/rxvault/internal/testenv"
)

// TestContract runs the capture contract suite against a private
// PostgreSQL server: one server, and a database with a slot of its own per
// case.
func TestContract(t *testing.T) {
	capturetest.Run(t, &contractHarness{pg: testenv.StartPostgres(t)})
}

type contractHarness struct {
	pg *testenv.Postgres
	n  int
}

func (h *contractHarness) NewSource(t *testing.T) capturetest.Source {
	h.n++
	name := fmt.Sprintf("contract%d", h.n)
	return &contractSource{t: t, dsn: h.pg.CreateDatabase(t, name), slot: name}
}

// contractSource is one database and its slot.
type contractSource struct {
	t    *testing.T
	dsn  string
	slot string
}

func (s *contractSource) Connect(t *testing.T) capturetest.Conn { return pgSession{connect(t, s.dsn)} }

func (s *contractSource) Open(ctx context.Context, opts capturetest.Options) (capture.Reader, error) {
	cfg := testConfig(s.t, s.dsn)
	cfg.Slot = s.slot
	cfg.SpillDir, cfg.SpillThreshold = opts.SpillDir, opts.SpillThreshold
	r, err := Open(ctx, cfg)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return r, nil
}

// LoseStream drops the slot, as a DBA might.
func (s *contractSource) LoseStream(t *testing.T) {
	execAll(t, connect(t, s.dsn), fmt.Sprintf(`SELECT pg_drop_replication_slot('%s')`, s.slot))
}

type pgSession struct{ c *pgx.Conn }

func (s pgSession) Exec(ctx context.Context, q string) error {
	_, err := s.c.Exec(ctx, q)
	return err
}
