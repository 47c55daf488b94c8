package postgres

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pglogrepl"

	"github.com/rxvault/rxvault/segment"
)

// TestAcknowledgeAndResume checks that the server's flush position (the
// slot's confirmed_flush_lsn) follows acknowledgements and nothing else,
// never moves back, and that after Close and Open the stream resumes with
// the first transaction after the acknowledged one: nothing lost, the
// unacknowledged ones delivered again.
func TestAcknowledgeAndResume(t *testing.T) {
	_, dsn := newDB(t, "ack")
	conn := connect(t, dsn)
	ctx := context.Background()
	execAll(t, conn, `CREATE TABLE t (id integer PRIMARY KEY)`)
	cfg := testConfig(t, dsn)
	r := openReader(t, cfg)
	if !r.SlotCreated() {
		t.Fatalf("first Open did not create the slot")
	}
	startPos := r.StartPos()
	sink := newRecSink()
	run := start(t, r, sink)
	for i := 1; i <= 5; i++ {
		execAll(t, conn, fmt.Sprintf(`INSERT INTO t VALUES (%d)`, i))
	}
	txns := sink.waitUntil(t, run, "five inserts", func(txns []recTxn) bool { return len(userOnly(txns)) == 5 })
	u := userOnly(txns)

	// The server hears what was received (write) but flush stays put.
	poll(t, "the server to record the received position", func() bool {
		var write string
		err := conn.QueryRow(ctx, `SELECT write_lsn::text FROM pg_stat_replication WHERE application_name = 'rxvault'`).Scan(&write)
		lsn, _ := pglogrepl.ParseLSN(write)
		return err == nil && uint64(lsn) >= u[4].End.Lo
	})
	if got, want := uint64(slotFlush(t, conn, "rxvault")), startPos.Lo; got != want {
		t.Fatalf("confirmed_flush_lsn %X before any acknowledgement, want the start %X", got, want)
	}

	r.Acknowledge(u[2].End)
	poll(t, "confirmed_flush_lsn to reach the acknowledged position", func() bool {
		return uint64(slotFlush(t, conn, "rxvault")) == u[2].End.Lo
	})
	r.Acknowledge(u[0].End) // older: ignored
	r.Acknowledge(segment.Position{Hi: 1, Lo: u[4].End.Lo})
	if got, want := r.acknowledged(), pglogrepl.LSN(u[2].End.Lo); got != want {
		t.Fatalf("acknowledged %s after an older and a foreign position, want %s", got, want)
	}
	if err := run.stop(); !isCanceled(err) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got, want := uint64(slotFlush(t, conn, "rxvault")), u[2].End.Lo; got != want {
		t.Fatalf("confirmed_flush_lsn %X after Close, want %X", got, want)
	}

	r2 := openReader(t, cfg)
	if r2.SlotCreated() {
		t.Fatalf("second Open created the slot again")
	}
	if got, want := r2.StartPos(), u[2].End; got != want {
		t.Fatalf("StartPos %v, want the acknowledged %v", got, want)
	}
	sink2 := newRecSink()
	run2 := start(t, r2, sink2)
	execAll(t, conn, `INSERT INTO t VALUES (6)`)
	txns2 := sink2.waitUntil(t, run2, "the sixth insert", func(txns []recTxn) bool {
		u := userOnly(txns)
		return len(u) > 0 && string(u[len(u)-1].Changes[0].New[0].Data) == "6"
	})
	for _, tx := range txns2 {
		if tx.Info.Pos.Compare(u[2].End) < 0 {
			t.Errorf("redelivered txn %s at %v, before the acknowledged %v", tx.Info.ID, tx.Info.Pos, u[2].End)
		}
	}
	// The backlog (4, 5: committed before the reopen) was drained:
	// CaughtUp came once, after insert 5.
	sink2.mu.Lock()
	caught := sink2.caughtUp
	sink2.mu.Unlock()
	if len(caught) != 1 {
		t.Fatalf("CaughtUp called %d times after resuming with a backlog, want 1", len(caught))
	}
	if before := userOnly(txns2[:min(caught[0], len(txns2))]); len(before) < 2 || string(before[1].Changes[0].New[0].Data) != "5" {
		t.Errorf("CaughtUp after %d transactions (%d user), want after insert 5", caught[0], len(before))
	}
	u2 := userOnly(txns2)
	if got, want := len(u2), 3; got != want {
		t.Fatalf("%d user transactions after resuming, want 3 (ids 4, 5, 6)", got)
	}
	for i, id := range []string{"4", "5", "6"} {
		if got := string(u2[i].Changes[0].New[0].Data); got != id {
			t.Errorf("resumed txn %d inserted %s, want %s", i, got, id)
		}
	}
	for i := range 2 {
		if u2[i].Info != u[3+i].Info || u2[i].End != u[3+i].End {
			t.Errorf("redelivered %+v end %v, first delivered as %+v end %v", u2[i].Info, u2[i].End, u[3+i].Info, u[3+i].End)
		}
	}
}
