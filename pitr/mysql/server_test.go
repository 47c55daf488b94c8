package mysql

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/rxvault/rxvault/internal/mysqlconn"
	"github.com/rxvault/rxvault/internal/testenv"
	"github.com/rxvault/rxvault/segment"
)

// changesOf yields changes, as a Target's Apply takes them.
func changesOf(changes ...*segment.Change) func(yield func(*segment.Change, error) bool) {
	return func(yield func(*segment.Change, error) bool) {
		for _, c := range changes {
			if !yield(c, nil) {
				return
			}
		}
	}
}

// TestEventsHeldUntilFinish loads a real mariadb-dump of a database with
// scheduled events into a target on a server whose event scheduler is on,
// and replays event statements: no event exists on the target (so none
// can fire under the replay) until Finish, which creates them all as the
// source has them, each with its own time zone, status and definition.
func TestEventsHeldUntilFinish(t *testing.T) {
	m := testenv.StartMariaDB(t)
	ctx := context.Background()
	root, err := m.RootConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	run := func(qs ...string) {
		t.Helper()
		for _, q := range qs {
			if _, err := root.Execute(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	run("SET GLOBAL event_scheduler = ON", "CREATE DATABASE src", "CREATE DATABASE dst", "USE src",
		"CREATE TABLE ticks (id INT AUTO_INCREMENT PRIMARY KEY, db VARCHAR(64) NOT NULL)",
		"SET time_zone = '+05:00'",
		// Fires every second on the target only: the source stays still.
		"CREATE EVENT tick ON SCHEDULE EVERY 1 SECOND STARTS '2026-01-01 00:00:00' DO INSERT INTO ticks (db) SELECT DATABASE() FROM DUAL WHERE DATABASE() <> 'src'",
		"CREATE EVENT later ON SCHEDULE AT '2037-01-01 00:00:00' ON COMPLETION PRESERVE DISABLE COMMENT 'once' DO DELETE FROM ticks")
	var dump bytes.Buffer
	cmd := exec.Command("mariadb-dump", "--no-defaults", "--socket="+m.Socket, "--user=root", "--single-transaction", "--master-data=2",
		"--routines", "--events", "--triggers", "--hex-blob", "--tz-utc", "--default-character-set=utf8mb4", "--skip-dump-date", "src")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &dump, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("mariadb-dump: %v %s", err, stderr.Bytes())
	}
	// Replayed after the base backup: a new event, a changed one, from a
	// session with its own sql_mode (STRICT_TRANS_TABLES alone, bit 21) and
	// time zone, at a set time.
	const created = 1796000000 // 2026-12-01T09:33:20Z
	const sess = `{"sql_mode": "2097152", "time_zone": "-03:00"}`
	run("SET sql_mode = 2097152, time_zone = '-03:00'", fmt.Sprintf("SET timestamp = %d", created), "CREATE DEFINER=`root`@`localhost` EVENT tock ON SCHEDULE EVERY 1 SECOND DO INSERT INTO ticks (db) SELECT CONCAT(DATABASE(), '+') FROM DUAL WHERE DATABASE() <> 'src'",
		"ALTER EVENT later COMMENT 'moved'")

	tg, err := Open(ctx, Config{DSN: m.DSN("dst") + "?tls=false"})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close(ctx)
	if err := tg.CheckEmpty(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tg.RestoreBase(ctx, &dump); err != nil {
		t.Fatal(err)
	}
	eventsOf := func(db string) []string {
		t.Helper()
		rows, err := mysqlconn.QueryRows(root, "SELECT CONCAT_WS(' ', EVENT_NAME, STATUS, TIME_ZONE, SQL_MODE, EVENT_COMMENT, EXECUTE_AT, INTERVAL_VALUE, INTERVAL_FIELD, STARTS, EVENT_DEFINITION) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY EVENT_NAME", db)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rows {
			out = append(out, r[0])
		}
		return out
	}
	events := func() []string { t.Helper(); return eventsOf("dst") }
	ticks := func() string {
		t.Helper()
		r, err := mysqlconn.QueryRow(root, "SELECT COUNT(*) FROM dst.ticks")
		if err != nil {
			t.Fatal(err)
		}
		return r[0]
	}
	if got := events(); len(got) != 0 {
		t.Fatalf("after the base backup, before replay, the target has events %q", got)
	}
	for _, q := range []string{
		"CREATE DEFINER=`root`@`localhost` EVENT tock ON SCHEDULE EVERY 1 SECOND DO INSERT INTO ticks (db) SELECT CONCAT(DATABASE(), '+') FROM DUAL WHERE DATABASE() <> 'src'",
		"ALTER EVENT later COMMENT 'moved'",
	} {
		changes := []*segment.Change{
			{Op: segment.OpMessage, Prefix: segment.MsgDDLSession, Content: []byte(sess), Transactional: true},
			{Op: segment.OpDDL, Schema: "src", SQL: q},
		}
		info := &segment.TxnInfo{ID: "0-1-1", Commit: time.Unix(created, 0)}
		err := tg.Apply(ctx, info, changesOf(changes...))
		if err != nil {
			t.Fatalf("apply %q: %v", q, err)
		}
	}
	// Two scheduler periods: an event present now would have fired.
	time.Sleep(2500 * time.Millisecond)
	if got := events(); len(got) != 0 {
		t.Fatalf("during replay the target has events %q", got)
	}
	if n := ticks(); n != "0" {
		t.Fatalf("during replay events wrote %s rows into the target", n)
	}
	if err := tg.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	wantS := eventsOf("src")
	got := events()
	if len(wantS) != 3 || !slices.Equal(got, wantS) {
		t.Fatalf("after Finish the target's events are\n%q\nthe source's\n%q", got, wantS)
	}
	// And they run now.
	deadline := time.Now().Add(10 * time.Second)
	for ticks() == "0" {
		if time.Now().After(deadline) {
			t.Fatal("the target's events did not run after Finish")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDatabaseStatements replays statements on the source database as a
// whole into a target on the same server: ALTER DATABASE changes the
// target, never the database it names; CREATE DATABASE is skipped; a
// statement that changes another database's table, and DROP DATABASE,
// are refused, naming the fix, and drop nothing.
func TestDatabaseStatements(t *testing.T) {
	m := testenv.StartMariaDB(t)
	ctx := context.Background()
	m.Exec(t, "CREATE DATABASE src CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
	m.Exec(t, "CREATE TABLE src.t (id INT PRIMARY KEY)")
	m.Exec(t, "CREATE DATABASE dst CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
	tg, err := Open(ctx, Config{DSN: m.DSN("dst") + "?tls=false"})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close(ctx)
	if err := tg.RestoreBase(ctx, strings.NewReader("CREATE TABLE t (id INT PRIMARY KEY);\n")); err != nil {
		t.Fatal(err)
	}
	apply := func(q string) error {
		c := &segment.Change{Op: segment.OpDDL, Schema: "src", SQL: q}
		return tg.Apply(ctx, &segment.TxnInfo{ID: "0-1-9", Commit: time.Now()}, changesOf(c))
	}
	defaults := func(db string) string {
		t.Helper()
		r, err := m.Exec(t, "SELECT CONCAT(DEFAULT_CHARACTER_SET_NAME, ' ', DEFAULT_COLLATION_NAME) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '"+db+"'").GetString(0, 0)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, q := range []string{"ALTER DATABASE src CHARACTER SET latin1 COLLATE latin1_bin", "CREATE DATABASE IF NOT EXISTS src"} {
		if err := apply(q); err != nil {
			t.Fatalf("apply %q: %v", q, err)
		}
	}
	if got := defaults("dst"); got != "latin1 latin1_bin" {
		t.Errorf("target database after ALTER DATABASE src: %s, want latin1 latin1_bin", got)
	}
	if got := defaults("src"); got != "utf8mb4 utf8mb4_unicode_ci" {
		t.Errorf("ALTER DATABASE src replayed into dst changed src: %s", got)
	}
	// Capture flags a statement that changes another database's objects.
	m.Exec(t, "CREATE DATABASE other")
	m.Exec(t, "CREATE TABLE other.x (id INT PRIMARY KEY)")
	flagged := []*segment.Change{
		{Op: segment.OpMessage, Prefix: segment.MsgDDLSession, Content: []byte(`{"sql_mode": "0", "other_databases": true}`), Transactional: true},
		{Op: segment.OpDDL, Schema: "src", SQL: "DROP TABLE t, other.x"},
	}
	err = tg.Apply(ctx, &segment.TxnInfo{ID: "0-1-10", Commit: time.Now()}, changesOf(flagged...))
	if err == nil || !strings.Contains(err.Error(), "another database") {
		t.Fatalf("DROP TABLE t, other.x replayed: %v, want a refusal", err)
	}
	if r := m.Exec(t, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'other'"); r.Values[0][0].AsInt64() != 1 {
		t.Error("the refused DROP TABLE t, other.x dropped other.x")
	}
	tg.Close(ctx) // a failed Apply leaves the target unusable: open another
	if tg, err = Open(ctx, Config{DSN: m.DSN("dst") + "?tls=false"}); err != nil {
		t.Fatal(err)
	}
	defer tg.Close(ctx)
	err = apply("DROP DATABASE src")
	if err == nil || !strings.Contains(err.Error(), "DROP DATABASE") || !strings.Contains(err.Error(), "--exclusive") {
		t.Fatalf("DROP DATABASE src replayed: %v, want a refusal naming the fix", err)
	}
	if r := m.Exec(t, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ('src', 'dst')"); r.Values[0][0].AsInt64() != 2 {
		t.Errorf("after the refused DROP DATABASE, %d of the 2 tables remain", r.Values[0][0].AsInt64())
	}
}

// TestSystemTimeZone replays DDL whose source session ran in SYSTEM, the
// source host's zone (America/Chicago, -06:00 at the statement's time in
// January), with a TIMESTAMP default on the other side of daylight saving
// time (July, -05:00 there). A target host in the same zone runs it in
// SYSTEM: exact. A target host in UTC runs it at the source's offset
// then: no longer hours off, but an hour off across the change.
func TestSystemTimeZone(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		zone string
		want string // the default, in UTC
	}{
		{"America/Chicago", "2026-07-15 17:00:00"},
		{"", "2026-07-15 18:00:00"},
	} {
		m := testenv.StartMariaDBInZone(t, tc.zone)
		m.CreateDatabase(t, "dst")
		tg, err := Open(ctx, Config{DSN: m.DSN("dst") + "?tls=false"})
		if err != nil {
			t.Fatal(err)
		}
		if err := tg.RestoreBase(ctx, strings.NewReader("CREATE TABLE base (id INT PRIMARY KEY);\n")); err != nil {
			t.Fatal(err)
		}
		changes := []*segment.Change{
			{Op: segment.OpMessage, Prefix: segment.MsgDDLSession, Transactional: true,
				Content: []byte(`{"sql_mode": "0", "time_zone": "SYSTEM", "system_offset": "-06:00", "timestamp": "1768500000.000000"}`)},
			{Op: segment.OpDDL, Schema: "src", SQL: "CREATE TABLE t (id INT PRIMARY KEY, ts TIMESTAMP NULL DEFAULT '2026-07-15 12:00:00')"},
		}
		err = tg.Apply(ctx, &segment.TxnInfo{ID: "0-1-9", Commit: time.Unix(1768500000, 0)}, changesOf(changes...))
		if err == nil {
			err = tg.Finish(ctx)
		}
		tg.Close(ctx)
		if err != nil {
			t.Fatalf("target in %q: %v", tc.zone, err)
		}
		c, err := m.RootConn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Execute("SET time_zone = '+00:00'"); err != nil {
			t.Fatal(err)
		}
		r, err := c.Execute("SELECT COLUMN_DEFAULT FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'dst' AND TABLE_NAME = 't' AND COLUMN_NAME = 'ts'")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := r.GetString(0, 0)
		c.Close()
		if strings.Trim(got, "'") != tc.want {
			t.Errorf("target host in %q: the default is %s UTC, want %s", cmp.Or(tc.zone, "UTC"), got, tc.want)
		}
	}
}

// TestReplayStrict replays rows in strict mode: values a non-strict
// source stored (ENUM's error value, an invalid date of
// ALLOW_INVALID_DATES, the zero date) come back as they were, while a
// value the target would store as something else (a UUID cut short, as
// capture once sent them) is an error, not a warning and a NULL.
func TestReplayStrict(t *testing.T) {
	ctx := context.Background()
	m := testenv.StartMariaDB(t)
	rel := &segment.Relation{Schema: "src", Table: "t", Columns: []segment.Column{
		{Name: "id", Type: "int", TypeID: uint32(gomysql.MYSQL_TYPE_LONG), Key: true},
		{Name: "e", Type: "enum", TypeID: uint32(gomysql.MYSQL_TYPE_ENUM)},
		{Name: "d", Type: "date", TypeID: uint32(gomysql.MYSQL_TYPE_DATE)},
		{Name: "u", Type: "char", TypeID: uint32(gomysql.MYSQL_TYPE_STRING)},
	}}
	uuid := bytes.Repeat([]byte{0xab}, 16)
	row := func(id, e, d string, u []byte) []segment.Value {
		return []segment.Value{segment.TextValue(id), segment.TextValue(e), segment.TextValue(d), {Kind: segment.Binary, Data: u}}
	}
	// restore replays changes into a new database db.
	restore := func(db string, changes ...*segment.Change) error {
		m.CreateDatabase(t, db)
		tg, err := Open(ctx, Config{DSN: m.DSN(db) + "?tls=false"})
		if err != nil {
			t.Fatal(err)
		}
		defer tg.Close(ctx)
		if err := tg.RestoreBase(ctx, strings.NewReader("CREATE TABLE t (id INT PRIMARY KEY, e ENUM('a','b'), d DATE, u UUID);\n")); err != nil {
			t.Fatal(err)
		}
		err = tg.Apply(ctx, &segment.TxnInfo{ID: "0-1-1", Commit: time.Unix(1796000000, 0)}, changesOf(changes...))
		if err == nil {
			err = tg.Finish(ctx)
		}
		return err
	}
	err := restore("stored",
		&segment.Change{Op: segment.OpInsert, Rel: rel, New: row("1", "0", "2026-02-31", uuid)},
		&segment.Change{Op: segment.OpInsert, Rel: rel, New: row("2", "2", "0000-00-00", uuid)},
		&segment.Change{Op: segment.OpInsert, Rel: rel, New: row("3", "0", "2026-00-00", uuid)},
		&segment.Change{Op: segment.OpUpdate, Rel: rel, OldKind: segment.OldFull, Old: row("2", "2", "0000-00-00", uuid), New: row("2", "0", "0000-00-00", uuid)})
	if err != nil {
		t.Fatalf("replay of stored values: %v", err)
	}
	c, err := m.RootConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := mysqlconn.QueryRows(c, "SELECT CONCAT_WS(' ', id, e + 0, d, HEX(u)) FROM stored.t ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	u := strings.Repeat("AB", 16)
	want := [][]string{{"1 0 2026-02-31 " + u}, {"2 0 0000-00-00 " + u}, {"3 0 2026-00-00 " + u}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("replayed rows %v, want %v", got, want)
	}
	err = restore("short", &segment.Change{Op: segment.OpInsert, Rel: rel, New: row("4", "1", "2026-12-03", uuid[:14])})
	if err == nil || !strings.Contains(err.Error(), "`u`") {
		t.Fatalf("a UUID of 14 bytes replayed: %v, want an error naming its column", err)
	}
}

// TestAutoIncrementNonASCIINames replays a heartbeat's AUTO_INCREMENT
// counters for tables whose names are not ASCII: Finish sets each.
func TestAutoIncrementNonASCIINames(t *testing.T) {
	m := testenv.StartMariaDB(t)
	ctx := context.Background()
	root, err := m.RootConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	query := func(q string) [][]string {
		t.Helper()
		rows, err := mysqlconn.QueryRows(root, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return rows
	}
	for _, q := range []string{"SET NAMES utf8mb4", "CREATE DATABASE dst", "CREATE TABLE dst.`Überweisung_1` (id INT AUTO_INCREMENT PRIMARY KEY)",
		"CREATE TABLE dst.`处方` (id INT AUTO_INCREMENT PRIMARY KEY)", "CREATE TABLE dst.plain (id INT AUTO_INCREMENT PRIMARY KEY)"} {
		query(q)
	}
	tg, err := Open(ctx, Config{DSN: m.DSN("dst") + "?tls=false"})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close(ctx)
	msg := &segment.Change{Op: segment.OpMessage, Prefix: segment.MsgAutoIncrement, Transactional: true,
		Content: []byte(`{"Überweisung_1": "296", "处方": "7", "plain": "5"}`)}
	if err := tg.Apply(ctx, &segment.TxnInfo{ID: "0-1-1", Commit: time.Now()}, changesOf(msg)); err != nil {
		t.Fatal(err)
	}
	if err := tg.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range query("SELECT TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'dst'") {
		got[r[0]] = r[1]
	}
	if want := map[string]string{"Überweisung_1": "296", "处方": "7", "plain": "5"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("AUTO_INCREMENT after Finish: %v, want %v", got, want)
	}
}

// TestRestoreBaseExplicitTimestamps loads a dump line as mariadb-dump
// writes it (SHOW CREATE TABLE: every default explicit) into a server
// whose explicit_defaults_for_timestamp is off: a bare TIMESTAMP NOT NULL
// must not gain DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP.
func TestRestoreBaseExplicitTimestamps(t *testing.T) {
	m := testenv.StartMariaDBWithOptions(t, "--explicit-defaults-for-timestamp=OFF")
	ctx := context.Background()
	tg := openDst(t, m)
	if err := tg.RestoreBase(ctx, strings.NewReader("CREATE TABLE t (id INT PRIMARY KEY, ts TIMESTAMP(5) NOT NULL);\n")); err != nil {
		t.Fatal(err)
	}
	r := m.Exec(t, "SHOW CREATE TABLE dst.t")
	got, _ := r.GetString(0, 1)
	if strings.Contains(got, "current_timestamp") {
		t.Errorf("the dump's table came out as\n%s\nwant no implicit TIMESTAMP default", got)
	}
}

// TestRestoreBaseInvalidDates loads a dump, with mariadb-dump's header
// sql_mode, holding a date the source stored under ALLOW_INVALID_DATES:
// it must come back as it was, not as a zero date.
func TestRestoreBaseInvalidDates(t *testing.T) {
	m := testenv.StartMariaDB(t)
	ctx := context.Background()
	tg := openDst(t, m)
	dump := "/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;\n" +
		"CREATE TABLE t (id INT PRIMARY KEY, d DATE, dt DATETIME(4));\n" +
		"INSERT INTO `t` VALUES (1,'2023-02-30','7087-02-29 17:51:24.3101');\n" +
		"/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n"
	if err := tg.RestoreBase(ctx, strings.NewReader(dump)); err != nil {
		t.Fatal(err)
	}
	r := m.Exec(t, "SELECT CONCAT(d, ' ', dt) FROM dst.t")
	if got, _ := r.GetString(0, 0); got != "2023-02-30 7087-02-29 17:51:24.3101" {
		t.Errorf("restored %q, want the invalid dates the dump holds", got)
	}
}

// TestFinishKeepsBareTimestamps: Finish sets AUTO_INCREMENT counters with
// ALTER TABLE, which on a server whose explicit_defaults_for_timestamp is
// off gives a table's first bare TIMESTAMP NOT NULL column DEFAULT
// CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP: it must not (randomized
// battery seed 17019618).
func TestFinishKeepsBareTimestamps(t *testing.T) {
	m := testenv.StartMariaDBWithOptions(t, "--explicit-defaults-for-timestamp=OFF")
	ctx := context.Background()
	tg := openDst(t, m)
	if err := tg.RestoreBase(ctx, strings.NewReader("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, ts TIMESTAMP(6) NOT NULL);\n")); err != nil {
		t.Fatal(err)
	}
	msg := &segment.Change{Op: segment.OpMessage, Prefix: segment.MsgAutoIncrement, Transactional: true,
		Content: []byte(`{"t": "42"}`)}
	if err := tg.Apply(ctx, &segment.TxnInfo{ID: "0-1-1", Commit: time.Now()}, changesOf(msg)); err != nil {
		t.Fatal(err)
	}
	if err := tg.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	r := m.Exec(t, "SHOW CREATE TABLE dst.t")
	got, _ := r.GetString(0, 1)
	if strings.Contains(got, "current_timestamp") || !strings.Contains(got, "AUTO_INCREMENT=42") {
		t.Errorf("after Finish the table is\n%s\nwant AUTO_INCREMENT=42 and no implicit TIMESTAMP default", got)
	}
}

// openDst creates database dst on m and opens a restore target on it,
// closed when the test ends.
func openDst(t *testing.T, m *testenv.MariaDB) *Target {
	t.Helper()
	ctx := context.Background()
	m.Exec(t, "CREATE DATABASE dst")
	tg, err := Open(ctx, Config{DSN: m.DSN("dst") + "?tls=false"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close(ctx) })
	return tg
}
