package postgres

import (
	"context"
	"errors"
	"testing"

	"github.com/rxvault/rxvault/capture"
)

// TestSlotDroppedDuringRun checks that a slot dropped while Run streams
// ends Run with capture.ErrStreamLost, not a transient error, and that
// the next Open starts over with a new slot.
func TestSlotDroppedDuringRun(t *testing.T) {
	_, dsn := newDB(t, "dropped")
	conn := connect(t, dsn)
	ctx := context.Background()
	execAll(t, conn, `CREATE TABLE gate (id integer PRIMARY KEY)`)
	cfg := testConfig(t, dsn)
	r := openReader(t, cfg)

	// The sink holds the gate transaction while the slot is dropped, so
	// the drop happens at a known point of the stream.
	reached, release := make(chan struct{}), make(chan struct{})
	sink := newRecSink()
	sink.before = func(tx *capture.Txn) error {
		for c, err := range tx.Changes {
			if err == nil && c.Rel != nil && c.Rel.Table == "gate" {
				close(reached)
				<-release
			}
		}
		return nil
	}
	run := start(t, r, sink)
	execAll(t, conn, `INSERT INTO gate VALUES (1)`)
	select {
	case <-reached:
	case <-run.ended:
		t.Fatalf("Run ended: %v", run.err)
	}
	execAll(t, conn, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'rxvault'`)
	poll(t, "the slot to be released", func() bool {
		var active bool
		err := conn.QueryRow(ctx, `SELECT active FROM pg_replication_slots WHERE slot_name = 'rxvault'`).Scan(&active)
		return err == nil && !active
	})
	execAll(t, conn, `SELECT pg_drop_replication_slot('rxvault')`)
	close(release)

	err := run.wait(t)
	if !errors.Is(err, capture.ErrStreamLost) || IsTransient(err) {
		t.Fatalf("Run = %v, want capture.ErrStreamLost", err)
	}
	t.Logf("Run: %v", err)
	if _, err := r.SlotLSN(ctx); !errors.Is(err, capture.ErrStreamLost) {
		t.Fatalf("SlotLSN = %v, want capture.ErrStreamLost", err)
	}

	r2 := openReader(t, cfg)
	if !r2.SlotCreated() {
		t.Fatalf("Open after the loss did not create a new slot")
	}
}

// TestSlotDroppedBeforeRun checks that Run fails with
// capture.ErrStreamLost when the server refuses START_REPLICATION because
// the slot is gone.
func TestSlotDroppedBeforeRun(t *testing.T) {
	_, dsn := newDB(t, "gone")
	conn := connect(t, dsn)
	r := openReader(t, testConfig(t, dsn))
	execAll(t, conn, `SELECT pg_drop_replication_slot('rxvault')`)
	err := start(t, r, newRecSink()).wait(t)
	if !errors.Is(err, capture.ErrStreamLost) || IsTransient(err) {
		t.Fatalf("Run = %v, want capture.ErrStreamLost", err)
	}
}

// TestSlotInvalidated checks a slot the server invalidated because it
// held back more WAL than max_slot_wal_keep_size: a reader opened before
// fails with capture.ErrStreamLost, and Open replaces the slot, reporting
// SlotCreated.
func TestSlotInvalidated(t *testing.T) {
	_, dsn := newDB(t, "invalid")
	conn := connect(t, dsn)
	ctx := context.Background()
	execAll(t, conn, `CREATE TABLE filler (id integer PRIMARY KEY, payload text)`)
	cfg := testConfig(t, dsn)
	stale := openReader(t, cfg)
	execAll(t, conn,
		`ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'`,
		`SELECT pg_reload_conf()`,
	)
	poll(t, "the slot to be invalidated", func() bool {
		execAll(t, conn,
			`INSERT INTO filler SELECT g, repeat('x', 1000) FROM generate_series(1, 20000) g ON CONFLICT (id) DO UPDATE SET payload = excluded.payload`,
			`SELECT pg_switch_wal()`,
			`CHECKPOINT`,
		)
		var status *string
		if err := conn.QueryRow(ctx, `SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'rxvault'`).Scan(&status); err != nil {
			t.Fatal(err)
		}
		return status != nil && *status == "lost"
	})
	if _, err := stale.SlotLSN(ctx); !errors.Is(err, capture.ErrStreamLost) {
		t.Fatalf("SlotLSN = %v, want capture.ErrStreamLost", err)
	}
	err := start(t, stale, newRecSink()).wait(t)
	if !errors.Is(err, capture.ErrStreamLost) || IsTransient(err) {
		t.Fatalf("Run = %v, want capture.ErrStreamLost", err)
	}
	t.Logf("Run: %v", err)

	r := openReader(t, cfg)
	if !r.SlotCreated() {
		t.Fatalf("Open kept the invalidated slot")
	}
	if _, err := r.SlotLSN(ctx); err != nil {
		t.Fatalf("SlotLSN of the new slot: %v", err)
	}
}
