package mysql_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/rxvault/rxvault/capture/mysql"
	pitrmysql "github.com/rxvault/rxvault/pitr/mysql"
	"github.com/rxvault/rxvault/segment"
)

// dumpExactSchema is a source whose base backup mariadb-dump alone did not
// hold exactly: FLOAT values of more than 6 significant digits (mariadb-dump
// writes them as the server prints them: 16777217 as 16777200, battery seed
// 727849104), and ENUM and SET members, and defaults, with characters
// outside the BMP (SHOW CREATE TABLE renders them through utf8mb3 as '?',
// battery seed 153069272).
var dumpExactSchema = []string{
	"CREATE TABLE pharmacy.f (id INT PRIMARY KEY, f FLOAT, fd FLOAT(7,3), d DOUBLE, e ENUM('a','🙂','Ω','😀x') CHARACTER SET utf8mb4 NOT NULL DEFAULT '😀x', " +
		"s SET('🙂','b','it''s','😀') CHARACTER SET utf8mb4 DEFAULT '🙂,😀', u ENUM('?','🙂') CHARACTER SET utf16 DEFAULT '🙂', n ENUM('🙂','😀') CHARACTER SET utf8mb4 DEFAULT '😀')",
	"INSERT INTO pharmacy.f (id, f, fd, d, e, s, u, n) VALUES " +
		"(1, 16777217e0, 1.5, 0.1, 'a', '', '?', '🙂'), (2, 3.1415927e0, -2.125, -0e0, '🙂', '🙂,b', '🙂', '😀'), " +
		"(3, 3.4028234e38, 0, 9007199254740993e0, 'Ω', 'it''s,😀', NULL, NULL), (4, 1.1754944e-38, NULL, NULL, '😀x', '🙂,b,it''s,😀', '?', '😀'), " +
		"(5, -0e0, 9999.999, 1e-300, 'a', NULL, NULL, NULL), (6, 1e-45, 0.001, 2.2250738585072014e-308, 'a', 'b', NULL, NULL), (7, 0.1e0, NULL, NULL, 'a', NULL, NULL, NULL)",
	// A table without a primary key, and one whose name needs quoting.
	"CREATE TABLE pharmacy.`no key` (f FLOAT, e ENUM('🙂','x') CHARACTER SET utf8mb4)",
	"INSERT INTO pharmacy.`no key` VALUES (16777217e0, '🙂'), (16777217e0, '🙂'), (-1.17549435e-38, 'x')",
}

// TestDumpExact takes a base backup of dumpExactSchema, loads it into
// another database with the restore target, and compares each table with
// the source by the server's own comparison of the stored values (FLOAT
// by equality and the sign of zero, ENUM and SET by their bytes and
// index), then a row of defaults inserted into each.
func TestDumpExact(t *testing.T) {
	m, cfg := newServer(t)
	for _, q := range dumpExactSchema {
		m.Exec(t, q)
	}
	ctx := context.Background()
	d, err := mysql.Dump(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Exec(t, "CREATE DATABASE dst")
	tg, err := pitrmysql.Open(ctx, pitrmysql.Config{DSN: m.DSN("dst") + "?tls=false"})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close(ctx)
	if err := tg.RestoreBase(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, d); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	for _, db := range []string{"pharmacy", "dst"} {
		m.Exec(t, "INSERT INTO "+db+".f (id) VALUES (100)")
		m.Exec(t, "INSERT INTO "+db+".`no key` () VALUES ()")
	}
	same := func(what, q string) {
		t.Helper()
		r := m.Exec(t, q)
		if n, _ := r.GetInt(0, 0); n != 0 {
			t.Errorf("%s: %d rows of the restore differ from the source", what, n)
		}
	}
	eqFloat := func(c string) string {
		return "s." + c + " <=> d." + c + " AND ATAN2(s." + c + ", -1) <=> ATAN2(d." + c + ", -1)"
	}
	eqEnum := func(c string) string {
		return "HEX(s." + c + ") <=> HEX(d." + c + ") AND s." + c + "+0 <=> d." + c + "+0"
	}
	same("table f", "SELECT COUNT(*) FROM pharmacy.f s LEFT JOIN dst.f d ON s.id = d.id WHERE NOT ("+
		eqFloat("f")+" AND "+eqFloat("fd")+" AND "+eqFloat("d")+" AND "+eqEnum("e")+" AND "+eqEnum("s")+" AND "+eqEnum("u")+" AND "+eqEnum("n")+")")
	same("table f, rows", "SELECT (SELECT COUNT(*) FROM pharmacy.f) - (SELECT COUNT(*) FROM dst.f)")
	// Each source row of the table without a key has as many equal rows in
	// the restore.
	same("table `no key`", "SELECT COUNT(*) FROM (SELECT f, e FROM pharmacy.`no key`) s WHERE "+
		"(SELECT COUNT(*) FROM pharmacy.`no key` x WHERE x.f <=> s.f AND ATAN2(x.f, -1) <=> ATAN2(s.f, -1) AND HEX(x.e) <=> HEX(s.e)) <> "+
		"(SELECT COUNT(*) FROM dst.`no key` x WHERE x.f <=> s.f AND ATAN2(x.f, -1) <=> ATAN2(s.f, -1) AND HEX(x.e) <=> HEX(s.e))")
	same("table `no key`, rows", "SELECT (SELECT COUNT(*) FROM pharmacy.`no key`) - (SELECT COUNT(*) FROM dst.`no key`)")
	// The oracle can fail: a float off by one ulp is a difference.
	m.Exec(t, "UPDATE dst.f SET f = 16777218e0 WHERE id = 1")
	if r := m.Exec(t, "SELECT COUNT(*) FROM pharmacy.f s JOIN dst.f d ON s.id = d.id WHERE NOT ("+eqFloat("f")+")"); func() int64 { n, _ := r.GetInt(0, 0); return n }() != 0 {
		t.Log("oracle check: a changed float is seen")
	} else {
		t.Error("oracle check: a float changed in the restore is not seen")
	}
}

// TestDumpUnderDDL commits DDL after the snapshot the rows are read from
// but before mariadb-dump reads the schema: a swap of two column names,
// an index dropped and made again on another column, a column added, a
// trigger created. DDL is not transactional, so mariadb-dump would write
// the schema after it while the binlog replayed after the dump's position
// holds it too, and the restore would run it twice (the swap undone: each
// column's values under the other's name). The restore (the dump loaded
// by the restore target, then every captured transaction at or after
// Pos) must equal the source, compared by the server on both databases,
// column by column by name.
//
// The window is deterministic: the DDL runs from a hook between the
// snapshot and the schema dump (the first time only, should Dump start
// over).
func TestDumpUnderDDL(t *testing.T) {
	m, cfg := newServer(t)
	m.Exec(t, "CREATE TABLE pharmacy.swapped (id INT PRIMARY KEY, a VARCHAR(20), b VARCHAR(20), v INT, KEY sv (v))")
	m.Exec(t, "CREATE TABLE pharmacy.audit (id INT AUTO_INCREMENT PRIMARY KEY, swapped_id INT)")
	for i := 1; i <= 20; i++ {
		m.Exec(t, fmt.Sprintf("INSERT INTO pharmacy.swapped VALUES (%d, 'a%d', 'b%d', %d)", i, i, i, i*10))
	}
	run := start(t, cfg)
	ran := 0
	mysql.SetDumpSnapshotTaken(&cfg, func(ctx context.Context) error {
		ran++
		if ran > 1 {
			return nil
		}
		m.Exec(t, "ALTER TABLE pharmacy.swapped RENAME COLUMN a TO tmp")
		m.Exec(t, "ALTER TABLE pharmacy.swapped RENAME COLUMN b TO a")
		m.Exec(t, "ALTER TABLE pharmacy.swapped RENAME COLUMN tmp TO b")
		m.Exec(t, "ALTER TABLE pharmacy.swapped DROP INDEX sv, ADD INDEX sv (a)")
		m.Exec(t, "ALTER TABLE pharmacy.swapped ADD COLUMN w INT NOT NULL DEFAULT 7")
		// Unqualified, from a session in the database: a trigger's text
		// is dumped as written, and the restore loads it elsewhere.
		c, err := m.RootConn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.UseDB("pharmacy"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Execute("CREATE TRIGGER log_swapped AFTER INSERT ON swapped FOR EACH ROW INSERT INTO audit (swapped_id) VALUES (NEW.id)"); err != nil {
			t.Fatal(err)
		}
		m.Exec(t, "INSERT INTO pharmacy.swapped (id, a, b, v, w) VALUES (100, 'new a', 'new b', 1000, 8)")
		return nil
	})
	d, err := mysql.Dump(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if ran == 0 {
		t.Fatal("the hook never ran: the test did not put DDL in the window")
	}
	ctx := t.Context()
	m.Exec(t, "UPDATE pharmacy.swapped SET a = 'after', w = 9 WHERE id = 1")
	m.Exec(t, "CREATE DATABASE dst")
	tg, err := pitrmysql.Open(ctx, pitrmysql.Config{DSN: m.DSN("dst") + "?tls=false"})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close(context.Background())
	if err := tg.RestoreBase(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, d); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	m.Exec(t, "INSERT INTO pharmacy.audit (swapped_id) VALUES (0)") // the last transaction to wait for
	waitFor(t, "the last transaction", func() bool {
		for _, tx := range run.sink.data() {
			for _, c := range tx.Changes {
				if c.Rel != nil && c.Rel.Table == "audit" && c.Op == segment.OpInsert && string(c.New[1].Data) == "0" {
					return true
				}
			}
		}
		return false
	})
	applied := 0
	for _, tx := range run.sink.data() {
		if tx.Pos.Compare(d.Pos()) < 0 {
			continue
		}
		info := tx.TxnInfo
		changes := func(yield func(*segment.Change, error) bool) {
			for i := range tx.Changes {
				if !yield(&tx.Changes[i], nil) {
					return
				}
			}
		}
		if err := tg.Apply(ctx, &info, changes); err != nil {
			t.Fatalf("apply %s: %v", info.ID, err)
		}
		applied++
	}
	if err := tg.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if applied == 0 {
		t.Fatal("no transaction after the dump's position was captured")
	}
	same := func(what, q string) {
		t.Helper()
		r := m.Exec(t, q)
		if n, _ := r.GetInt(0, 0); n != 0 {
			t.Errorf("%s: %d rows of the restore differ from the source", what, n)
		}
	}
	same("table swapped", "SELECT COUNT(*) FROM pharmacy.swapped s LEFT JOIN dst.swapped d ON s.id = d.id "+
		"WHERE NOT (s.a <=> d.a AND s.b <=> d.b AND s.v <=> d.v AND s.w <=> d.w)")
	same("table swapped, rows", "SELECT (SELECT COUNT(*) FROM pharmacy.swapped) - (SELECT COUNT(*) FROM dst.swapped)")
	same("table audit", "SELECT COUNT(*) FROM pharmacy.audit s LEFT JOIN dst.audit d ON s.id = d.id WHERE NOT (s.swapped_id <=> d.swapped_id)")
	same("table audit, rows", "SELECT (SELECT COUNT(*) FROM pharmacy.audit) - (SELECT COUNT(*) FROM dst.audit)")
	same("indexes", "SELECT COUNT(*) FROM (SELECT INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'pharmacy' "+
		"EXCEPT SELECT INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'dst') x")
	same("triggers", "SELECT (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'pharmacy') - "+
		"(SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'dst')")
}

// TestDumpQualifiedTrigger: a trigger written with its database's name
// ("CREATE TRIGGER pharmacy.log … ON pharmacy.rx") is dumped as written.
// Restored into a database named otherwise, on a server that also holds
// the source database (a drill beside production), loading it would
// create the trigger there, changing the source, and leave the restore
// without it. The restore must refuse, naming the database and the fix,
// and leave the source as it was (TestDumpUnderDDL restores a trigger
// that names no database).
func TestDumpQualifiedTrigger(t *testing.T) {
	m, cfg := newServer(t)
	m.Exec(t, "CREATE TABLE pharmacy.rx (id INT PRIMARY KEY)")
	m.Exec(t, "CREATE TABLE pharmacy.audit (id INT AUTO_INCREMENT PRIMARY KEY, rx INT)")
	m.Exec(t, "CREATE TRIGGER pharmacy.log_rx AFTER INSERT ON pharmacy.rx FOR EACH ROW INSERT INTO pharmacy.audit (rx) VALUES (NEW.id)")
	ctx := t.Context()
	d, err := mysql.Dump(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Stored first, as the agent does: the dump's snapshot ends.
	var stored bytes.Buffer
	if _, err := io.Copy(&stored, d); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// The source drops its trigger later: nothing would stop the dump's
	// from being created there again.
	m.Exec(t, "DROP TRIGGER pharmacy.log_rx")
	m.Exec(t, "CREATE DATABASE dst")
	tg, err := pitrmysql.Open(ctx, pitrmysql.Config{DSN: m.DSN("dst") + "?tls=false"})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close(context.Background())
	err = tg.RestoreBase(ctx, &stored)
	if err == nil || !strings.Contains(err.Error(), "names the source database `pharmacy` explicitly") || !strings.Contains(err.Error(), "fix: restore into a database named `pharmacy`") {
		t.Errorf("RestoreBase = %v, want the refusal naming `pharmacy` and the fix", err)
	}
	count := func(db string) int64 {
		r := m.Exec(t, "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '"+db+"'")
		n, _ := r.GetInt(0, 0)
		return n
	}
	if n := count("pharmacy"); n != 0 {
		t.Errorf("the restore created %d trigger(s) in the source database", n)
	}
}
