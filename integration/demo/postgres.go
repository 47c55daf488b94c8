package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rxvault/rxvault/integration/workload"
	"github.com/rxvault/rxvault/internal/testenv"
)

// postgres is the demo on a private PostgreSQL 15 with the pgx workload.
type postgres struct {
	pg   *testenv.Postgres
	conn *pgx.Conn
	w    *workload.Runner
	want workload.State // the source at the quiet point
}

func (*postgres) name() string   { return "PostgreSQL" }
func (*postgres) server() string { return "PostgreSQL 15 (wal_level=logical)" }

func (e *postgres) launch(dir string) error {
	var err error
	e.pg, err = testenv.LaunchPostgres(dir)
	return err
}

func (e *postgres) createSource(ctx context.Context) (string, error) {
	dsn, err := e.pg.CreateDB(ctx, "pharmacy")
	if err != nil {
		return "", err
	}
	if e.conn, err = pgx.Connect(ctx, dsn); err != nil {
		return "", err
	}
	if err := workload.Setup(ctx, e.conn); err != nil {
		return "", err
	}
	e.w = workload.NewRunner(e.conn, uint64(time.Now().UnixNano()))
	return dsn, nil
}

func (e *postgres) shutdown() error {
	if e.conn != nil {
		e.conn.Close(context.Background())
	}
	if e.pg == nil {
		return nil
	}
	return e.pg.Shutdown()
}

func (e *postgres) runFor(ctx context.Context, d time.Duration) error { return e.w.RunFor(ctx, d) }
func (e *postgres) addColumn(ctx context.Context) error               { return e.w.AddColumn(ctx) }
func (e *postgres) createTable(ctx context.Context) error             { return e.w.CreateTable(ctx) }
func (e *postgres) committed() int                                    { return e.w.Committed }

// quietPoint lets the heartbeat record the sequences, then notes the time
// and what the database holds at it.
func (e *postgres) quietPoint(ctx context.Context) (time.Time, error) {
	time.Sleep(2500 * time.Millisecond)
	at := time.Now().UTC()
	var err error
	e.want, err = workload.Snapshot(ctx, e.conn)
	return at, err
}

func (e *postgres) createTarget(ctx context.Context, name string) (string, error) {
	return e.pg.CreateDB(ctx, name)
}

func (e *postgres) compare(ctx context.Context, target string) ([]string, error) {
	tconn, err := pgx.Connect(ctx, target)
	if err != nil {
		return nil, err
	}
	defer tconn.Close(context.Background())
	got, err := workload.Snapshot(ctx, tconn)
	if err != nil {
		return nil, err
	}
	want := e.want
	for _, name := range sortedNames(want.Tables) {
		row(name, want.Tables[name] == got.Tables[name], rowsOf(want.Tables[name]))
	}
	for _, name := range sortedNames(want.Sequences) {
		row(name, want.Sequences[name] == got.Sequences[name], want.Sequences[name])
	}
	return want.Diff(got), nil
}

func (*postgres) equalWhat() string { return "table by table and sequence by sequence" }

func (*postgres) nextSteps(out, bin, _ string) string {
	return fmt.Sprintf(`  %[2]s --config %[1]s/rxvault.yaml restore --latest --dry-run                 # print a plan
  %[2]s init                                                   # your own config and keys
Then point source.dsn at your database and archive.stores at S3 with Object Lock (see README.md).
`, out, bin)
}
