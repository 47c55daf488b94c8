package integration

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rxvault/rxvault/internal/testenv"
)

// TestPostgresTruncateBacklog writes, while the agent is stopped, a
// backlog of transactions that each TRUNCATE a table and refill it several
// times (some large enough to be streamed in progress, with
// logical_decoding_work_mem at its minimum), and tables created, written,
// truncated and dropped: relations of the backlog that no longer exist
// when it is decoded. The restarted agent must drain it without a
// decoding error or a reconnect, and the latest restore must equal the
// source. (A field report saw "could not open relation with OID" from the
// walsender in such a drain: pgoutput's TRUNCATE path opens each relation
// by OID under the historic snapshot.)
func TestPostgresTruncateBacklog(t *testing.T) {
	pg := testenv.StartPostgres(t)
	dsn := pg.CreateDatabase(t, "pharmacy")
	ctx := context.Background()
	conn := connectPG(t, dsn)
	exec := func(q string) {
		t.Helper()
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`ALTER SYSTEM SET logical_decoding_work_mem = '64kB'`)
	exec(`SELECT pg_reload_conf()`)
	exec(`CREATE TABLE churn (id int PRIMARY KEY, v text)`)
	exec(`CREATE TABLE tally (id int PRIMARY KEY, n int NOT NULL)`)
	exec(`INSERT INTO tally VALUES (1, 0)`)
	d := newDeployment(t, dsn, []string{"file://" + t.TempDir()}, nil)
	d.start()
	d.waitLog("base backup stored", 60*time.Second)
	d.stop()

	refill := func(rows int) string {
		return `TRUNCATE churn; INSERT INTO churn SELECT g, md5(g::text) FROM generate_series(1, ` + strconv.Itoa(rows) + `) g`
	}
	txn := func(stmts ...string) {
		t.Helper()
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			for _, q := range stmts {
				for s := range strings.SplitSeq(q, "; ") {
					if _, err := tx.Exec(ctx, s); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 200 {
		txn(refill(20), refill(30), `UPDATE tally SET n = n + 1`)
		if i%40 == 0 { // large: streamed while in progress
			txn(refill(3000), refill(3000), refill(2500))
		}
		if i%50 == 0 { // a table the backlog writes, gone when it is decoded
			exec(`CREATE TABLE gone (id int PRIMARY KEY, v text)`)
			txn(`INSERT INTO gone SELECT g, 'x' FROM generate_series(1, 2000) g`, `TRUNCATE gone`,
				`INSERT INTO gone VALUES (1, 'y')`)
			txn(`TRUNCATE gone`, `DROP TABLE gone`)
		}
	}
	var end string
	if err := conn.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&end); err != nil {
		t.Fatal(err)
	}
	d.start()
	deadline := time.Now().Add(2 * time.Minute)
	for drained := false; !drained; {
		err := conn.QueryRow(ctx, `SELECT coalesce(confirmed_flush_lsn >= $1::pg_lsn, false) FROM pg_replication_slots WHERE slot_name = 'rxvault'`, end).Scan(&drained)
		if err != nil {
			t.Fatal(err)
		}
		if !drained && time.Now().After(deadline) {
			t.Fatalf("the agent did not acknowledge the backlog (to %s) within 2 minutes", end)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // a heartbeat after the backlog
	want := snapshot(t, dsn)
	time.Sleep(2 * time.Second)
	d.stop()
	var streamed int64
	for range 50 { // slot statistics arrive asynchronously
		if err := conn.QueryRow(ctx, `SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = 'rxvault'`).Scan(&streamed); err != nil {
			t.Fatal(err)
		}
		if streamed > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if streamed == 0 {
		t.Errorf("no transaction of the backlog was streamed in progress: the test does not cover streaming")
	}
	log := d.agentLog()
	for _, bad := range []string{"could not open relation", "capture stopped; reconnecting", "GAP"} {
		if strings.Contains(log, bad) {
			t.Errorf("agent log shows %q draining the backlog", bad)
		}
	}
	target := restoreLatest(t, d, pg, "restored", "")
	compare(t, "restore after the truncate backlog", want, target)
}
