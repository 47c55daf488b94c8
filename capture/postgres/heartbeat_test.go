package postgres

import (
	"context"
	"encoding/json"
	"runtime"
	"testing"
	"time"

	"github.com/rxvault/rxvault/segment"
)

// TestSequencesAndHeartbeat checks that the heartbeat transaction carries
// every captured sequence's exact state (is_called too) and the server's
// clock; that Run stops with its context; that Close then leaves the slot
// free; and that nothing keeps running afterwards.
func TestSequencesAndHeartbeat(t *testing.T) {
	_, dsn := newDB(t, "seq")
	conn := connect(t, dsn)
	execAll(t, conn,
		`CREATE SCHEMA other`,
		`CREATE TABLE t (id serial PRIMARY KEY)`,
		`CREATE SEQUENCE other."Mixed"`,
		`SELECT setval('other."Mixed"', 42, false)`,
	)
	baseline := runtime.NumGoroutine()
	r := openReader(t, testConfig(t, dsn))
	sink := newRecSink()
	run := start(t, r, sink)
	execAll(t, conn, `INSERT INTO t DEFAULT VALUES`, `INSERT INTO t DEFAULT VALUES`, `INSERT INTO t DEFAULT VALUES`)

	type seq struct {
		LastValue string `json:"last_value"`
		IsCalled  bool   `json:"is_called"`
	}
	want := map[string]seq{"public.t_id_seq": {"3", true}, `other."Mixed"`: {"42", false}}
	var heartbeat segment.Change
	sink.waitUntil(t, run, "sequence values after the inserts", func(txns []recTxn) bool {
		for _, tx := range txns {
			if tx.user() || len(tx.Changes) != 2 {
				continue
			}
			var got map[string]seq
			c := tx.Changes[0]
			if c.Prefix != segment.MsgSequences || !c.Transactional || json.Unmarshal(c.Content, &got) != nil {
				continue
			}
			if len(got) == len(want) && got["public.t_id_seq"] == want["public.t_id_seq"] && got[`other."Mixed"`] == want[`other."Mixed"`] {
				heartbeat = tx.Changes[1]
				return true
			}
		}
		return false
	})
	if got, want := heartbeat.Prefix, segment.MsgHeartbeat; got != want || heartbeat.Op != segment.OpMessage || !heartbeat.Transactional {
		t.Fatalf("second message %s %q transactional %v, want message %q", heartbeat.Op, got, heartbeat.Transactional, want)
	}
	at, err := time.Parse("2006-01-02 15:04:05.999999-07", string(heartbeat.Content))
	if err != nil {
		t.Fatalf("heartbeat content %q: %v", heartbeat.Content, err)
	}
	if _, off := at.Zone(); off != 0 {
		t.Errorf("heartbeat %q not in UTC", heartbeat.Content)
	}

	if err := run.stop(); !isCanceled(err) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	var active bool
	if err := conn.QueryRow(context.Background(), `SELECT active FROM pg_replication_slots WHERE slot_name = 'rxvault'`).Scan(&active); err != nil {
		t.Fatal(err)
	}
	if active {
		t.Errorf("slot still active after Close")
	}
	// Every goroutine the reader started has ended (waiting only lets
	// the runtime finish exiting them).
	poll(t, "goroutines back to the baseline", func() bool { return runtime.NumGoroutine() <= baseline })
}

// TestProgress checks that keepalives outside transactions report
// progress: WAL of a table outside the publication moves the position
// past the last delivered transaction.
func TestProgress(t *testing.T) {
	_, dsn := newDB(t, "progress")
	conn := connect(t, dsn)
	execAll(t, conn, `CREATE TABLE t (id integer PRIMARY KEY)`, `CREATE TABLE other (id integer PRIMARY KEY)`)
	cfg := testConfig(t, dsn)
	cfg.Tables = []string{"public.t"}
	cfg.Heartbeat = time.Hour // only the first heartbeat, at start
	r := openReader(t, cfg)
	sink := newRecSink()
	run := start(t, r, sink)
	execAll(t, conn, `INSERT INTO t VALUES (1)`)
	txns := sink.waitUntil(t, run, "the insert", func(txns []recTxn) bool { return len(userOnly(txns)) == 1 })
	last := txns[len(txns)-1].End
	execAll(t, conn, `INSERT INTO other SELECT generate_series(1, 1000)`)
	deadline := time.After(waitLimit)
	for {
		txns, progress, ch := sink.snapshot()
		if len(progress) > 0 && progress[len(progress)-1].Compare(last) > 0 {
			if got, want := len(userOnly(txns)), 1; got != want {
				t.Fatalf("%d user transactions, want %d (the other table is not published)", got, want)
			}
			break
		}
		select {
		case <-ch:
		case <-run.ended:
			t.Fatalf("Run ended: %v", run.err)
		case <-deadline:
			t.Fatalf("no progress past %v: %v", last, progress)
		}
	}
}

// TestSequencesSurviveConcurrentDrop: a sequence dropped after
// rxvault.sequences listed it and before it read it (the heartbeat waits
// on the dropping transaction's lock) is left out, not an error that stops
// capture (randomized battery seed 246667963: "relation … does not exist").
func TestSequencesSurviveConcurrentDrop(t *testing.T) {
	_, dsn := newDB(t, "seqdrop")
	conn := connect(t, dsn)
	execAll(t, conn, `CREATE SEQUENCE keep`, `CREATE SEQUENCE gone`)
	openReader(t, testConfig(t, dsn)) // installs rxvault.sequences
	ctx := context.Background()
	dropper := connect(t, dsn)
	execAll(t, dropper, `BEGIN`, `DROP SEQUENCE gone`)
	reader := connect(t, dsn)
	var pid int
	if err := reader.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	type result struct {
		json string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		r.err = reader.QueryRow(ctx, `SELECT rxvault.sequences(NULL)`).Scan(&r.json)
		done <- r
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var waiting bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $1 AND NOT granted)`, pid).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("rxvault.sequences never waited for the dropped sequence's lock")
		}
		time.Sleep(20 * time.Millisecond)
	}
	execAll(t, dropper, `COMMIT`)
	r := <-done
	if r.err != nil {
		t.Fatalf("rxvault.sequences with a sequence dropped under it: %v", r.err)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.json), &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got["public.keep"]; !ok || len(got) != 1 {
		t.Errorf("sequences %s, want public.keep alone", r.json)
	}
}
