package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/rxvault/rxvault/integration/myworkload"
	"github.com/rxvault/rxvault/internal/testenv"
)

// charsetDDL is DDL run mid-run on a utf8mb4 source whose tables a
// restore must recreate with the source's character sets and
// collations, whatever the restore server's defaults.
var charsetDDL = []string{
	// No character set given: the table takes the database's default.
	"CREATE TABLE notes (id INT PRIMARY KEY, body VARCHAR(100), tag CHAR(3), memo TEXT)",
	"INSERT INTO notes VALUES (1, 'naïve 😀 Łódź', 'é', '日本語')",
	// A column added without a character set takes the table's.
	"ALTER TABLE notes ADD COLUMN extra VARCHAR(40) DEFAULT 'ü'",
	"INSERT INTO notes (id, body, tag, memo, extra) VALUES (2, 'Ωmega', 'ß', NULL, 'ĳ')",
	"CREATE TABLE notes_like LIKE notes",
	"INSERT INTO notes_like SELECT * FROM notes",
	// Explicit character sets, per table and per column.
	"CREATE TABLE legacy (id INT PRIMARY KEY, name VARCHAR(20), label VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin) CHARACTER SET latin1",
	"INSERT INTO legacy VALUES (1, 'café', '😀')",
	"CREATE TABLE converted (id INT PRIMARY KEY, v VARCHAR(20))",
	"INSERT INTO converted VALUES (1, 'façade')",
	"ALTER TABLE converted CONVERT TO CHARACTER SET latin1",
	// Back to the database's default.
	"ALTER TABLE legacy CONVERT TO CHARACTER SET DEFAULT",
	// The session's server collation is not the database's.
	"SET collation_server = latin1_german1_ci",
	"CREATE TABLE server_coll (id INT PRIMARY KEY, v VARCHAR(20))",
	"SET collation_server = DEFAULT",
	"INSERT INTO server_coll VALUES (1, 'Größe')",
}

// charsetDDLAfterAlter changes the database's default mid-run, then
// creates a table that inherits it.
var charsetDDLAfterAlter = []string{
	"ALTER DATABASE CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci",
	"CREATE TABLE after_alter (id INT PRIMARY KEY, v VARCHAR(20))",
	"INSERT INTO after_alter VALUES (1, 'ñandú 😀')",
}

// myColumnCharsets lists every column's character set and collation in
// conn's database, and every table's collation.
func myColumnCharsets(t *testing.T, conn *client.Conn) string {
	t.Helper()
	var out []string
	for _, q := range []string{
		"SELECT CONCAT_WS(' ', TABLE_NAME, TABLE_COLLATION) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME",
		"SELECT CONCAT_WS(' ', TABLE_NAME, COLUMN_NAME, CHARACTER_SET_NAME, COLLATION_NAME) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND CHARACTER_SET_NAME IS NOT NULL ORDER BY TABLE_NAME, ORDINAL_POSITION",
		"SELECT CONCAT_WS(' ', TRIGGER_NAME, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, DATABASE_COLLATION) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY TRIGGER_NAME",
	} {
		r, err := conn.Execute(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for i := range r.RowNumber() {
			v, _ := r.GetString(i, 0)
			out = append(out, strings.Clone(v))
		}
		r.Close()
	}
	return strings.Join(out, "\n")
}

// TestMariaDBRestoreOtherCharset restores a utf8mb4 source into another
// server whose defaults are latin1, into a database created there with
// them: the target must get the source database's defaults from the base
// backup, and every table that DDL replayed from the stream creates or
// changes must have the source's character sets and collations, and its
// rows.
func TestMariaDBRestoreOtherCharset(t *testing.T) {
	src := testenv.StartMariaDBWithOptions(t, "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci")
	src.Exec(t, "CREATE DATABASE pharmacy CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci")
	conn := myConn(t, src, "pharmacy")
	if err := myworkload.Setup(conn); err != nil {
		t.Fatal(err)
	}
	w := myworkload.NewRunner(conn, 17)
	ctx := t.Context()
	if err := w.RunFor(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	d := newDeployment(t, src.DSN("pharmacy")+"?tls=false", []string{"file://" + t.TempDir()}, nil)
	d.start()
	d.waitLog("base backup stored", 60*time.Second)

	// The session's character sets are the server's (utf8mb4), unlike
	// replay's target server.
	for _, q := range charsetDDL {
		if _, err := conn.Execute(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := w.RunFor(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	for _, q := range charsetDDLAfterAlter {
		if _, err := conn.Execute(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	want, _ := mrEnd(t, src)
	wantCharsets := myColumnCharsets(t, myConn(t, src, "pharmacy"))
	d.stop()

	dst := testenv.StartMariaDBWithOptions(t, "--character-set-server=latin1", "--collation-server=latin1_swedish_ci")
	dst.CreateDatabase(t, "restored")
	dconn := myConn(t, dst, "restored")
	if got := myQueryString(t, dconn, "SELECT CONCAT(@@character_set_server, ' ', DEFAULT_COLLATION_NAME) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'restored'"); got != "latin1 latin1_swedish_ci" {
		t.Fatalf("the restore server's default and the new database's: %q, want latin1", got)
	}
	restore := func(db, what string) {
		t.Helper()
		code, out, errOut := d.cmd("restore", "--latest", "--target", dst.DSN(db)+"?tls=false", "--identity", d.identity)
		if code != 0 {
			t.Fatalf("restore --latest %s: exit %d\n%s%s", what, code, out, errOut)
		}
		got, err := myworkload.Snapshot(myConn(t, dst, db))
		if err != nil {
			t.Fatal(err)
		}
		if diff := want.Diff(got); len(diff) > 0 {
			t.Errorf("the restore %s into a latin1 server differs from the source:\n  %s", what, strings.Join(diff, "\n  "))
		}
		if gotCharsets := myColumnCharsets(t, myConn(t, dst, db)); gotCharsets != wantCharsets {
			t.Errorf("the restore %s: character sets and collations differ from the source's:\nsource:\n%s\nrestored:\n%s", what, wantCharsets, gotCharsets)
		}
	}
	restore("restored", "replaying the DDL")

	// A base backup taken now holds a trigger created under the
	// database's former collation: mariadb-dump sets the source database's
	// collation around it, naming that database, which a restore must
	// turn to the target.
	if code, out, errOut := d.cmd("backup"); code != 0 {
		t.Fatalf("backup: exit %d\n%s%s", code, out, errOut)
	}
	dst.CreateDatabase(t, "restored_base")
	restore("restored_base", "from a base backup taken after the DDL")
}
