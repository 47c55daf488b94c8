package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rxvault/rxvault/integration/workload"
	"github.com/rxvault/rxvault/internal/testenv"
)

// quiet is a point in the run where the source stood still: its time and
// the database's state then.
type quiet struct {
	at    time.Time
	state workload.State
}

// quietPoint waits for the source to settle (a heartbeat, which carries the
// sequences' values, must commit after the last workload transaction and
// before the recorded time), records the time, then snapshots the state.
func quietPoint(t *testing.T, dsn string) quiet {
	t.Helper()
	time.Sleep(1500 * time.Millisecond) // three heartbeats of 500ms
	at := time.Now().UTC()
	s := snapshot(t, dsn)
	time.Sleep(200 * time.Millisecond)
	return quiet{at: at, state: s}
}

// TestPostgresExactness runs the pharmacy workload under the agent, with an
// ALTER TABLE ADD COLUMN, a CREATE TABLE and a TRUNCATE mid-run, records
// several quiet points, and restores each one into a fresh database: every
// table and every sequence must equal the source at that time. The last
// point is also reached by xid, just before a marker transaction committed
// after it (--xid --exclusive).
func TestPostgresExactness(t *testing.T) {
	pg := testenv.StartPostgres(t)
	dsn := pg.CreateDatabase(t, "pharmacy")
	ctx := context.Background()
	conn := connectPG(t, dsn)
	if err := workload.Setup(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE xid_mark (n int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	w := workload.NewRunner(conn, 42)
	if err := w.RunFor(ctx, time.Second); err != nil { // rows before the first base backup
		t.Fatal(err)
	}
	d := newDeployment(t, dsn, []string{"file://" + t.TempDir()}, nil)
	d.start()
	d.waitLog("base backup stored", 60*time.Second)

	var points []quiet
	var mark string // the xid of the marker transaction
	steps := []func() error{
		func() error { return w.RunFor(ctx, 2*time.Second) },
		func() error { points = append(points, quietPoint(t, dsn)); return nil },
		func() error { return w.AddColumn(ctx) },
		func() error { return w.RunFor(ctx, 2*time.Second) },
		func() error { points = append(points, quietPoint(t, dsn)); return nil },
		func() error { return w.CreateTable(ctx) },
		func() error { return w.RunFor(ctx, time.Second) },
		func() error { return w.Truncate(ctx) },
		func() error { return w.RunFor(ctx, 2*time.Second) },
		func() error { points = append(points, quietPoint(t, dsn)); return nil },
		func() error {
			return conn.QueryRow(ctx, "INSERT INTO xid_mark VALUES (1) RETURNING (txid_current() % 4294967296)::text").Scan(&mark)
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(3 * time.Second) // let the last quiet point reach the store
	d.stop()
	t.Logf("workload committed %d transactions", w.Committed)

	for i, p := range points {
		target := pg.CreateDatabase(t, fmt.Sprintf("restored_%d", i))
		code, out, errOut := d.cmd("restore", "--time", p.at.Format(time.RFC3339Nano), "--target", target, "--identity", d.identity)
		if code != 0 {
			t.Fatalf("restore to point %d (%s): exit %d\n%s%s", i, p.at, code, out, errOut)
		}
		t.Logf("point %d: %s", i, strings.TrimSpace(out))
		if diff := p.state.Diff(snapshot(t, target)); len(diff) > 0 {
			t.Errorf("restore to point %d (%s) differs from the source:\n  %s", i, p.at, strings.Join(diff, "\n  "))
		}
	}
	last := points[len(points)-1]
	target := pg.CreateDatabase(t, "restored_xid")
	code, out, errOut := d.cmd("restore", "--xid", mark, "--exclusive", "--target", target, "--identity", d.identity)
	if code != 0 {
		t.Fatalf("restore --xid %s --exclusive: exit %d\n%s%s", mark, code, out, errOut)
	}
	t.Logf("--xid %s --exclusive: %s", mark, strings.TrimSpace(out))
	if diff := last.state.Diff(snapshot(t, target)); len(diff) > 0 {
		t.Errorf("restore to just before xid %s differs from the source at the last point:\n  %s", mark, strings.Join(diff, "\n  "))
	}
}
