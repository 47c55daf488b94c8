package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/rxvault/rxvault/integration/myworkload"
	"github.com/rxvault/rxvault/internal/testenv"
)

// myQuiet is a point where a MariaDB source stood still.
type myQuiet struct {
	at    time.Time
	gtid  string // @@gtid_binlog_pos as the state was read: the last GTID (one domain)
	state myworkload.State
	// mark is the GTID of a marker transaction committed after the point
	// (and before anything else of the test's): restoring to just before
	// it must give state.
	mark string
}

// myQueryString runs a query that returns one value.
func myQueryString(t *testing.T, c *client.Conn, query string) string {
	t.Helper()
	r, err := c.Execute(query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	v, err := r.GetString(0, 0)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return strings.Clone(v)
}

// myConn connects as root to database db over the socket.
func myConn(t *testing.T, m *testenv.MariaDB, db string) *client.Conn {
	t.Helper()
	c, err := client.Connect(m.Socket, "root", "", db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// myQuietPoint records a quiet point. MariaDB stamps commits to the whole
// second, so the point lies in a second of its own: more than a second
// after the last commit (with heartbeats in between, carrying the
// AUTO_INCREMENT counters), and more than a second before the next.
func myQuietPoint(t *testing.T, m *testenv.MariaDB, db string) myQuiet {
	t.Helper()
	time.Sleep(1600 * time.Millisecond)
	at := time.Now().UTC()
	c := myConn(t, m, db)
	s, err := myworkload.Snapshot(c)
	if err != nil {
		t.Fatal(err)
	}
	gtid := myQueryString(t, c, "SELECT @@gtid_binlog_pos")
	time.Sleep(1600 * time.Millisecond)
	return myQuiet{at: at, gtid: gtid, state: s}
}

// newMariaDBSource starts a MariaDB with the workload's schema in
// database pharmacy (utf8mb4, collation utf8mb4_unicode_520_ci).
func newMariaDBSource(t *testing.T) (*testenv.MariaDB, *client.Conn, string) {
	m := testenv.StartMariaDB(t)
	// Not the server's default character set: restored tables created by
	// replayed DDL must inherit the source database's.
	m.Exec(t, "CREATE DATABASE pharmacy CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci")
	conn := myConn(t, m, "pharmacy")
	if err := myworkload.Setup(conn); err != nil {
		t.Fatal(err)
	}
	return m, conn, m.DSN("pharmacy") + "?tls=false"
}

// TestMariaDBExactness runs the workload under the agent with an ALTER
// TABLE and a CREATE TABLE mid-run, records quiet points, and restores each
// into a fresh database: every table (definition, rows, AUTO_INCREMENT)
// and the triggers must equal the source then. Each point is reached by
// time and by GTID: just before a marker transaction committed after it
// (--gtid --exclusive), and the last point also by its own last GTID. A
// final restore to latest must match the end state and the ledger.
func TestMariaDBExactness(t *testing.T) {
	m, conn, dsn := newMariaDBSource(t)
	if _, err := conn.Execute("CREATE TABLE gtid_mark (n INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	w := myworkload.NewRunner(conn, 7)
	ctx := context.Background()
	if err := w.RunFor(ctx, time.Second); err != nil { // rows before the first base backup
		t.Fatal(err)
	}
	d := newDeployment(t, dsn, []string{"file://" + t.TempDir()}, nil)
	d.start()
	d.waitLog("base backup stored", 60*time.Second)

	var points []myQuiet
	quiet := func() error {
		p := myQuietPoint(t, m, "pharmacy")
		if _, err := conn.Execute(fmt.Sprintf("INSERT INTO gtid_mark VALUES (%d)", len(points))); err != nil {
			return err
		}
		p.mark = myQueryString(t, conn, "SELECT @@last_gtid")
		points = append(points, p)
		return nil
	}
	steps := []func() error{
		func() error { return w.RunFor(ctx, 2*time.Second) },
		quiet,
		w.AddColumn,
		func() error { return w.RunFor(ctx, 2*time.Second) },
		quiet,
		w.CreateTable,
		func() error { return w.RunFor(ctx, 2*time.Second) },
		quiet,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	final, err := myworkload.Snapshot(conn)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // let the last heartbeats reach the store
	d.stop()
	t.Logf("workload committed %d transactions", w.Commits)

	restoreTo := func(db string, want myworkload.State, to ...string) {
		t.Helper()
		m.CreateDatabase(t, db)
		args := append([]string{"restore"}, to...)
		code, out, errOut := d.cmd(append(args, "--target", m.DSN(db)+"?tls=false", "--identity", d.identity)...)
		if code != 0 {
			t.Fatalf("restore %s: exit %d\n%s%s", to, code, out, errOut)
		}
		t.Logf("%s: %s", to, strings.TrimSpace(out))
		got, err := myworkload.Snapshot(myConn(t, m, db))
		if err != nil {
			t.Fatal(err)
		}
		if diff := want.Diff(got); len(diff) > 0 {
			t.Errorf("restore %s differs from the source then:\n  %s", to, strings.Join(diff, "\n  "))
		}
	}
	for i, p := range points {
		restoreTo(fmt.Sprintf("restored_%d", i), p.state, "--time", p.at.Format(time.RFC3339Nano))
		restoreTo(fmt.Sprintf("restored_%d_gtid", i), p.state, "--gtid", p.mark, "--exclusive")
	}
	last := points[len(points)-1]
	restoreTo("restored_last_gtid", last.state, "--gtid", last.gtid)
	m.CreateDatabase(t, "restored_latest")
	code, out, errOut := d.cmd("restore", "--latest", "--target", m.DSN("restored_latest")+"?tls=false", "--identity", d.identity)
	if code != 0 {
		t.Fatalf("restore --latest: exit %d\n%s%s", code, out, errOut)
	}
	got, err := myworkload.Snapshot(myConn(t, m, "restored_latest"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := final.Diff(got); len(diff) > 0 {
		t.Errorf("restore --latest differs from the source's end state:\n  %s", strings.Join(diff, "\n  "))
	}
	wantSum, _ := myworkload.LedgerSum(conn)
	gotSum, _ := myworkload.LedgerSum(myConn(t, m, "restored_latest"))
	if wantSum != gotSum {
		t.Errorf("ledger sum: source %s, restored %s", wantSum, gotSum)
	}
}
