package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/internal/testenv"
	"github.com/rxvault/rxvault/segment"
)

// countSink counts delivered changes and signals when a position is
// reached.
type countSink struct {
	changes atomic.Int64
	until   segment.Position
	done    chan struct{}
}

func (s *countSink) Txn(ctx context.Context, t *capture.Txn) error {
	for _, err := range t.Changes {
		if err != nil {
			return err
		}
		s.changes.Add(1)
	}
	if t.End.Compare(s.until) >= 0 {
		select {
		case <-s.done:
		default:
			close(s.done)
		}
	}
	return nil
}

func (s *countSink) CaughtUp(context.Context) error { return nil }

func (s *countSink) Progress(context.Context, segment.Position, time.Time) error { return nil }

// BenchmarkCaptureBacklog drains the same backlog (txns transactions of
// rows rows, 3 columns each) with the reader and with PostgreSQL's own
// pg_recvlogical (pgoutput, protocol 2, writing to /dev/null), side by
// side, and reports the reader's throughput relative to pg_recvlogical's
// (vs_recvlogical: 1.0 is as fast).
func BenchmarkCaptureBacklog(b *testing.B) {
	const txns, rows = 2000, 100
	pg := testenv.StartPostgres(b)
	dsn := pg.CreateDatabase(b, "bench")
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		conn := connect(b, dsn)
		execAll(b, conn, `DROP TABLE IF EXISTS load`, `CREATE TABLE load (id bigint PRIMARY KEY, amount numeric(12,2), note text)`)
		execAll(b, conn, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots`)
		cfg := Config{DSN: dsn, Heartbeat: time.Hour, SpillDir: b.TempDir(), Logger: slog.New(slog.DiscardHandler)}
		r, err := Open(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		execAll(b, conn, `SELECT pg_create_logical_replication_slot('recv', 'pgoutput')`)
		for i := range txns {
			execAll(b, conn, fmt.Sprintf(`INSERT INTO load SELECT g, g * 1.25, 'row ' || g FROM generate_series(%d, %d) g`, i*rows, i*rows+rows-1))
		}
		var end string
		if err := conn.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&end); err != nil {
			b.Fatal(err)
		}
		endLSN, _ := pglogrepl.ParseLSN(end)

		b.StartTimer()
		t0 := time.Now()
		// The last transaction's end is the insert position read after it.
		sink := &countSink{until: segment.Position{Lo: uint64(endLSN)}, done: make(chan struct{})}
		runCtx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() { errc <- r.Run(runCtx, sink) }()
		<-sink.done
		ours := time.Since(t0)
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			b.Fatalf("Run: %v", err)
		}
		b.StopTimer()
		r.Close()
		if got := sink.changes.Load(); got < txns*rows {
			b.Fatalf("%d changes, want %d", got, txns*rows)
		}

		t1 := time.Now()
		cmd := exec.Command(filepath.Join(DefaultPGBin, "pg_recvlogical"), "--dbname="+dsn, "--slot=recv", "--start",
			"--endpos="+end, "--no-loop", "-o", "proto_version=2", "-o", "publication_names=rxvault", "-f", "/dev/null")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("pg_recvlogical: %v\n%s", err, out)
		}
		theirs := time.Since(t1)
		b.ReportMetric(float64(txns*rows)/ours.Seconds(), "rows/s")
		b.ReportMetric(float64(txns*rows)/theirs.Seconds(), "recvlogical_rows/s")
		b.ReportMetric(theirs.Seconds()/ours.Seconds(), "vs_recvlogical")
		b.StartTimer()
	}
}
