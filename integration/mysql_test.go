package integration

import (
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
