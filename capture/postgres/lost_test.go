package postgres

import (
	"context"
	"errors"
	"strings"
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

// TestServerCrash checks that a crashed server ends Run with a transient
// error and that a new Open resumes from the slot without losing anything:
// every transaction after the acknowledged one is delivered again, and new
// ones follow. (PostgreSQL 15 keeps an acknowledged position only in
// memory until the slot is next saved, so after a crash the slot may
// resume earlier and resend acknowledged transactions too; it never
// resumes later.)
func TestServerCrash(t *testing.T) {
	pg, dsn := newDB(t, "crash")
	conn := connect(t, dsn)
	ctx := context.Background()
	execAll(t, conn, `CREATE TABLE t (id integer PRIMARY KEY)`)
	cfg := testConfig(t, dsn)
	r := openReader(t, cfg)
	sink := newRecSink()
	run := start(t, r, sink)
	execAll(t, conn, `INSERT INTO t VALUES (1)`, `INSERT INTO t VALUES (2)`, `INSERT INTO t VALUES (3)`)
	u := userOnly(sink.waitUntil(t, run, "three inserts", func(txns []recTxn) bool { return len(userOnly(txns)) == 3 }))
	r.Acknowledge(u[0].End)
	poll(t, "the acknowledgement to reach the slot", func() bool { return uint64(slotFlush(t, conn, "rxvault")) == u[0].End.Lo })
	conn.Close(ctx)

	pg.Kill(t)
	err := run.wait(t)
	if err == nil || !IsTransient(err) || errors.Is(err, capture.ErrStreamLost) || capture.IsPermanent(err) {
		t.Fatalf("Run after a crash = %v, want a transient error", err)
	}
	t.Logf("Run: %v", err)
	if err := r.Close(); err != nil {
		t.Logf("Close after the crash: %v", err)
	}
	pg.Start(t)

	r2 := openReader(t, cfg)
	if r2.SlotCreated() {
		t.Fatalf("Open after the crash created a new slot")
	}
	if r2.StartPos().Compare(u[0].End) > 0 || r2.StartPos().Compare(r.StartPos()) < 0 {
		t.Fatalf("StartPos %v, want between the first start %v and the acknowledged %v", r2.StartPos(), r.StartPos(), u[0].End)
	}
	sink2 := newRecSink()
	run2 := start(t, r2, sink2)
	conn2 := connect(t, dsn)
	execAll(t, conn2, `INSERT INTO t VALUES (4)`)
	u2 := userOnly(sink2.waitUntil(t, run2, "the fourth insert", func(txns []recTxn) bool {
		u := userOnly(txns)
		return len(u) > 0 && string(u[len(u)-1].Changes[0].New[0].Data) == "4"
	}))
	var ids []string
	for _, tx := range u2 {
		ids = append(ids, string(tx.Changes[0].New[0].Data))
	}
	if got := strings.Join(ids, ","); got != "2,3,4" && got != "1,2,3,4" {
		t.Fatalf("after the crash: inserts %s, want 2,3,4 (or 1,2,3,4 if the acknowledgement was not saved)", got)
	}
}
