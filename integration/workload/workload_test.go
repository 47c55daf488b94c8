package workload_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rxvault/rxvault/integration/workload"
	"github.com/rxvault/rxvault/internal/testenv"
)

func TestWorkloadRuns(t *testing.T) {
	pg := testenv.StartPostgres(t)
	dsn := pg.CreateDatabase(t, "pharmacy")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := workload.Setup(ctx, conn); err != nil {
		t.Fatal(err)
	}
	w := workload.NewRunner(conn, 1)
	if err := w.RunFor(ctx, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := w.AddColumn(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.RunFor(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	s, err := workload.Snapshot(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d txns; %v", w.Committed, s)
	if len(s.Tables) != 7 {
		t.Errorf("%d tables", len(s.Tables))
	}
}
