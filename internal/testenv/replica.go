package testenv

import (
	"fmt"
	"strings"
	"testing"
)

// StartMariaDBReplica starts a fresh MariaDB server with the given
// server_id (not 1) replicating primary by GTID (MASTER_USE_GTID =
// slave_pos) from primary's current GTID position on: create the
// databases to replicate after it starts. With log_slave_updates its
// binlog holds the primary's transactions under their own GTIDs, as a
// replica to fail over to must. It stops with the test.
func StartMariaDBReplica(t testing.TB, primary *MariaDB, serverID int) *MariaDB {
	t.Helper()
	if serverID == 1 {
		t.Fatal("testenv: server_id 1 is the primary's")
	}
	r := startMariaDB(t, serverID, "")
	// Its own setup (the rxvault user) must not stand in its binlog
	// before the replicated transactions: strict mode orders GTIDs.
	r.Exec(t, "RESET MASTER")
	pos := primary.QueryString(t, "SELECT @@gtid_binlog_pos")
	r.Exec(t, "SET GLOBAL gtid_slave_pos = '"+pos+"'")
	r.Follow(t, primary)
	return r
}

// Follow makes m replicate primary by GTID from m's gtid_slave_pos on,
// with primary's rxvault account, and starts replication.
func (m *MariaDB) Follow(t testing.TB, primary *MariaDB) {
	t.Helper()
	m.Exec(t, "STOP SLAVE")
	m.Exec(t, fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='%s', MASTER_PASSWORD='%s', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1",
		primary.Port, primary.User, primary.Password))
	m.Exec(t, "START SLAVE")
}

// CatchUp waits until replica m has applied everything primary has
// binlogged.
func (m *MariaDB) CatchUp(t testing.TB, primary *MariaDB) {
	t.Helper()
	pos := primary.QueryString(t, "SELECT @@gtid_binlog_pos")
	if got := m.QueryString(t, "SELECT MASTER_GTID_WAIT('"+pos+"', 60)"); got != "0" {
		status := m.QueryString(t, "SELECT CONCAT(@@gtid_slave_pos, ' / ', @@gtid_binlog_pos)")
		t.Fatalf("testenv: replica %d did not reach the primary's GTID position %s within 60s (MASTER_GTID_WAIT %s; at %s)", m.ServerID, pos, got, status)
	}
}

// Promote makes replica m a primary, as a failover does: replication
// stops and is forgotten, and the events replication created disabled
// (SLAVESIDE_DISABLED) are enabled.
func (m *MariaDB) Promote(t testing.TB) {
	t.Helper()
	m.Exec(t, "STOP SLAVE")
	m.Exec(t, "RESET SLAVE ALL")
	r := m.Exec(t, "SELECT EVENT_SCHEMA, EVENT_NAME FROM information_schema.EVENTS WHERE STATUS = 'SLAVESIDE_DISABLED'")
	var events []string
	for i := range r.RowNumber() {
		db, _ := r.GetString(i, 0)
		name, _ := r.GetString(i, 1)
		events = append(events, "`"+strings.ReplaceAll(db, "`", "``")+"`.`"+strings.ReplaceAll(name, "`", "``")+"`")
	}
	r.Close()
	for _, e := range events {
		m.Exec(t, "ALTER EVENT "+e+" ENABLE")
	}
}

// QueryString runs a query as root and returns the first column of its
// first row ("" for NULL or no row).
func (m *MariaDB) QueryString(t testing.TB, query string) string {
	t.Helper()
	r := m.Exec(t, query)
	defer r.Close()
	if r.RowNumber() == 0 {
		return ""
	}
	s, _ := r.GetString(0, 0)
	return strings.Clone(s)
}
