package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"

	"github.com/rxvault/rxvault/segment"
)

// Built-in type OIDs, the same on every PostgreSQL.
const (
	oidBool        = 16
	oidBytea       = 17
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidJSON        = 114
	oidFloat4      = 700
	oidFloat8      = 701
	oidInet        = 869
	oidInt4Array   = 1007
	oidTextArray   = 1009
	oidVarchar     = 1043
	oidDate        = 1082
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidInterval    = 1186
	oidNumeric     = 1700
	oidUUID        = 2950
	oidJSONB       = 3802
	oidSourceEnum  = 91234 // a user type: its OID on the source means nothing on the target
)

// applySchema is created on both the reference and the target database.
const applySchema = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE everything (
  id int8 PRIMARY KEY,
  n numeric(20,6), n2 numeric, f8 float8, f4 float4, i2 int2,
  b bytea, j jsonb, js json, ia int4[], ta text[],
  tz timestamptz, ts timestamp, d date, tm time, iv interval,
  u uuid, m mood, big text, flag bool, ip inet, note varchar(20),
  gen int8 GENERATED ALWAYS AS (id * 2) STORED
);
CREATE TABLE dup (a int, n numeric, j json, t text);
ALTER TABLE dup REPLICA IDENTITY FULL;
CREATE TABLE ident (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);
SELECT setval(pg_get_serial_sequence('ident', 'id'), 50);
CREATE TABLE fkparent (id int PRIMARY KEY);
CREATE TABLE fkchild (id int PRIMARY KEY, p int REFERENCES fkparent ON DELETE CASCADE);
CREATE TABLE audited (id int PRIMARY KEY, v text);
CREATE TABLE audit_log (id serial PRIMARY KEY, what text);
CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO audit_log (what) VALUES ('insert ' || NEW.id); RETURN NEW; END $$;
CREATE TRIGGER audited_insert AFTER INSERT ON audited FOR EACH ROW EXECUTE FUNCTION audit();
CREATE TABLE part (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
CREATE TABLE part_1 PARTITION OF part FOR VALUES FROM (0) TO (100);
CREATE TABLE part_2 PARTITION OF part FOR VALUES FROM (100) TO (200);
CREATE TABLE inh_parent (id int, v text);
ALTER TABLE inh_parent REPLICA IDENTITY FULL;
CREATE TABLE inh_child () INHERITS (inh_parent);
ALTER TABLE inh_child REPLICA IDENTITY FULL;
CREATE TABLE "Weird ""Name""" ("select" int PRIMARY KEY, "x y" text);
CREATE SCHEMA app;
`

// step is one source transaction: the SQL the reference database runs and
// the changes the stream carries for it.
type step struct {
	ref     string
	changes []segment.Change
}

func randomText(t *testing.T, n int) string {
	b := make([]byte, n/2)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestApplyMatchesSQL applies hand-built transactions to a target and the
// equivalent SQL to a reference database, then requires every table to
// hold the same rows: every type's text form parses back exactly, NULL and
// empty stay apart, unchanged TOAST values are kept, keys change, rows are
// found by key or by full value (one of two duplicates), truncate restarts
// identities, DDL runs in place (ADD COLUMN, CREATE TABLE in another
// schema, several statements), triggers and foreign-key actions do not
// fire, partitions, inheritance and odd identifiers work. It runs the
// steps as small transactions each committed on its own (a group bound of
// one transaction), as small transactions in one commit group (DDL, with
// rows that depend on it, amid the group), and all as one large
// transaction (results read amid pending statements, relations looked up
// amid them).
func TestApplyMatchesSQL(t *testing.T) {
	t.Run("each transaction committed", func(t *testing.T) { testApplyMatchesSQL(t, false, 1) })
	t.Run("small transactions in one group", func(t *testing.T) { testApplyMatchesSQL(t, false, 0) })
	t.Run("one large transaction", func(t *testing.T) { testApplyMatchesSQL(t, true, 0) })
}

// testApplyMatchesSQL runs the steps, merged into one transaction or not,
// with groups of at most groupTxns transactions (0: the default).
func testApplyMatchesSQL(t *testing.T, merge bool, groupTxns int) {
	_, refDSN, targetDSN := newServer(t)
	ref, tconn := connect(t, refDSN), connect(t, targetDSN)
	run(t, ref, applySchema)
	run(t, tconn, applySchema)
	tg := openTarget(t, targetDSN)
	if groupTxns > 0 {
		tg.limits.txns = groupTxns
	}
	ctx := context.Background()

	every := &segment.Relation{Schema: "public", Table: "everything", Columns: []segment.Column{
		col("id", oidInt8, true), col("n", oidNumeric, false), col("n2", oidNumeric, false),
		col("f8", oidFloat8, false), col("f4", oidFloat4, false), col("i2", oidInt2, false),
		col("b", oidBytea, false), col("j", oidJSONB, false), col("js", oidJSON, false),
		col("ia", oidInt4Array, false), col("ta", oidTextArray, false),
		col("tz", oidTimestamptz, false), col("ts", oidTimestamp, false), col("d", oidDate, false),
		col("tm", oidTime, false), col("iv", oidInterval, false), col("u", oidUUID, false),
		col("m", oidSourceEnum, false), col("big", 25, false), col("flag", oidBool, false),
		col("ip", oidInet, false), col("note", oidVarchar, false),
		{Name: "gen", TypeID: oidInt8, Generated: true},
	}}
	big1, big3 := randomText(t, 20000), randomText(t, 9000)
	row1 := []segment.Value{tv("1"), tv("12345.678900"), tv("-0.000000000000000000001"), tv("-0"), tv("NaN"), tv("-32768"),
		tv(`\x00ff10`), tv(`{"a": [1, 2.50, null], "b": "é"}`), tv(`{"z":1,  "a" : 2}`), tv("{1,NULL,3}"), tv(`{"a b","",NULL,"q\"uote"}`),
		tv("2024-02-29 23:59:59.123456+05:30"), tv("infinity"), tv("0044-03-15 BC"), tv("24:00:00"),
		tv("1 year 2 mons -3 days +04:05:06.789"), tv("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), tv("happy"),
		tv(big1), tv("t"), tv("192.168.0.1/24"), tv(""), tv("999")}
	row2 := []segment.Value{tv("2"), null, null, null, null, null, null, null, null, null, null,
		null, null, null, null, null, null, null, null, null, null, null, tv("999")}
	row3 := []segment.Value{tv("3"), tv("0.000001"), tv("1e-5"), tv("1.7976931348623157e+308"), tv("-1.5e-45"), tv("0"),
		tv(`\x`), tv(`[]`), tv(`"x"`), tv("{}"), tv("{}"),
		tv("1999-12-31 23:59:59+00"), tv("2000-01-01 00:00:00.000001"), tv("2000-02-29"), tv("00:00:00"),
		tv("00:00:00"), tv("00000000-0000-0000-0000-000000000000"), tv("sad"),
		tv(big3), tv("f"), tv("::1"), tv("x'y\"z\\"), tv("999")}

	// After ADD COLUMN extra, the source sends a new Relation.
	every2 := &segment.Relation{Schema: "public", Table: "everything",
		Columns: append(append([]segment.Column{}, every.Columns...), col("extra", 25, false))}
	with := func(row []segment.Value, extra ...segment.Value) []segment.Value {
		return append(append([]segment.Value{}, row...), extra...)
	}
	row1b := with(row1)
	row1b[21] = tv("toast kept")
	row1b[18] = unchanged
	row3b := with(row3)
	row3b[0] = tv("30")
	row1c := with(row1b, tv("set later"))
	row1c[21] = tv("again")
	row4 := with(row3, tv("x4"))
	row4[0] = tv("4")
	row4[18] = tv(big1 + big3)

	dup := &segment.Relation{Schema: "public", Table: "dup", Columns: []segment.Column{
		col("a", oidInt4, true), col("n", oidNumeric, true), col("j", oidJSON, true), col("t", 25, true)}}
	d1 := []segment.Value{tv("1"), tv("1.5"), tv(`{"x": 1}`), tv("same")}
	d1scale := []segment.Value{tv("1"), tv("1.50"), tv(`{"x": 1}`), tv("same")}
	d1json := []segment.Value{tv("1"), tv("1.5"), tv(`{"x":1}`), tv("same")}
	d1jsonNew := []segment.Value{tv("1"), tv("1.5"), tv(`{"x":1}`), tv("changed")}
	d2 := []segment.Value{tv("2"), null, null, null}

	ident := &segment.Relation{Schema: "public", Table: "ident", Columns: []segment.Column{col("id", oidInt4, true), col("v", 25, false)}}
	fkparent := &segment.Relation{Schema: "public", Table: "fkparent", Columns: []segment.Column{col("id", oidInt4, true)}}
	fkchild := &segment.Relation{Schema: "public", Table: "fkchild", Columns: []segment.Column{col("id", oidInt4, true), col("p", oidInt4, false)}}
	audited := &segment.Relation{Schema: "public", Table: "audited", Columns: []segment.Column{col("id", oidInt4, true), col("v", 25, false)}}
	auditLog := &segment.Relation{Schema: "public", Table: "audit_log", Columns: []segment.Column{col("id", oidInt4, true), col("what", 25, false)}}
	part1 := &segment.Relation{Schema: "public", Table: "part_1", Columns: []segment.Column{col("id", oidInt4, true), col("v", 25, false)}}
	partRoot := &segment.Relation{Schema: "public", Table: "part", Columns: []segment.Column{col("id", oidInt4, true), col("v", 25, false)}}
	inhParent := &segment.Relation{Schema: "public", Table: "inh_parent", Columns: []segment.Column{col("id", oidInt4, true), col("v", 25, true)}}
	inhChild := &segment.Relation{Schema: "public", Table: "inh_child", Columns: []segment.Column{col("id", oidInt4, true), col("v", 25, true)}}
	weird := &segment.Relation{Schema: "public", Table: `Weird "Name"`, Columns: []segment.Column{col("select", oidInt4, true), col("x y", 25, false)}}
	newt := &segment.Relation{Schema: "app", Table: "newt", Columns: []segment.Column{col("id", oidInt4, true), col("m", oidSourceEnum, false), col("v", 25, false)}}

	steps := []step{
		{insertSQL(every, row1...) + ";" + insertSQL(every, row2...) + ";" + insertSQL(every, row3...),
			[]segment.Change{insert(every, row1...), insert(every, row2...), insert(every, row3...)}},
		// Unchanged TOAST: big is not sent and must keep its value.
		{`UPDATE everything SET note = 'toast kept' WHERE id = 1`,
			[]segment.Change{update(every, row1b...)}},
		// A key change: found by the old key.
		{`UPDATE everything SET id = 30 WHERE id = 3`,
			[]segment.Change{updateOld(every, segment.OldKey, keyOnly(every, tv("3")), row3b)}},
		{`DELETE FROM everything WHERE id = 2`,
			[]segment.Change{deleteOld(every, segment.OldKey, keyOnly(every, tv("2"))...)}},
		// Rows without a key: identical, and equal but not identical.
		{insertSQL(dup, d1...) + ";" + insertSQL(dup, d1...) + ";" + insertSQL(dup, d1scale...) + ";" +
			insertSQL(dup, d1json...) + ";" + insertSQL(dup, d2...) + ";" + insertSQL(dup, d2...),
			[]segment.Change{insert(dup, d1...), insert(dup, d1...), insert(dup, d1scale...),
				insert(dup, d1json...), insert(dup, d2...), insert(dup, d2...)}},
		{`DELETE FROM dup WHERE n::text = '1.50';
		  DELETE FROM dup WHERE ctid = (SELECT ctid FROM dup WHERE j::text = '{"x": 1}' AND n::text = '1.5' LIMIT 1);
		  DELETE FROM dup WHERE ctid = (SELECT ctid FROM dup WHERE a = 2 LIMIT 1);
		  UPDATE dup SET t = 'changed' WHERE j::text = '{"x":1}'`,
			[]segment.Change{deleteOld(dup, segment.OldFull, d1scale...), deleteOld(dup, segment.OldFull, d1...),
				deleteOld(dup, segment.OldFull, d2...), updateOld(dup, segment.OldFull, d1json, d1jsonNew)}},
		// GENERATED ALWAYS identity values are written as sent.
		{insertSQL(ident, tv("1"), tv("a")) + ";" + insertSQL(ident, tv("7"), tv("b")),
			[]segment.Change{insert(ident, tv("1"), tv("a")), insert(ident, tv("7"), tv("b"))}},
		{`TRUNCATE ident RESTART IDENTITY`,
			[]segment.Change{{Op: segment.OpTruncate, Truncated: []*segment.Relation{ident}, TruncateFlags: segment.TruncateRestartIdentity}}},
		{insertSQL(ident, tv("2"), tv("c")), []segment.Change{insert(ident, tv("2"), tv("c"))}},
		// The source's ON DELETE CASCADE already produced the child's delete.
		{`INSERT INTO fkparent VALUES (1), (2); INSERT INTO fkchild VALUES (10, 1), (20, 2)`,
			[]segment.Change{insert(fkparent, tv("1")), insert(fkparent, tv("2")),
				insert(fkchild, tv("10"), tv("1")), insert(fkchild, tv("20"), tv("2"))}},
		{`DELETE FROM fkparent WHERE id = 1`,
			[]segment.Change{deleteOld(fkparent, segment.OldKey, tv("1")), deleteOld(fkchild, segment.OldKey, tv("10"), null)}},
		{`TRUNCATE fkparent, fkchild CASCADE`,
			[]segment.Change{{Op: segment.OpTruncate, Truncated: []*segment.Relation{fkparent, fkchild}, TruncateFlags: segment.TruncateCascade}}},
		// The source's trigger wrote audit_log; the target's must not.
		{`INSERT INTO audited VALUES (5, 'v')`,
			[]segment.Change{insert(audited, tv("5"), tv("v")), insert(auditLog, tv("1"), tv("insert 5"))}},
		// Partitions: changes on a leaf, and through the root.
		{`INSERT INTO part VALUES (1, 'a'), (2, 'b'); UPDATE part SET v = 'B' WHERE id = 2; DELETE FROM part WHERE id = 1`,
			[]segment.Change{insert(part1, tv("1"), tv("a")), insert(part1, tv("2"), tv("b")),
				update(partRoot, tv("2"), tv("B")), deleteOld(partRoot, segment.OldKey, tv("1"), null)}},
		// Inheritance: a parent's row and an identical child's row.
		{`INSERT INTO inh_parent VALUES (1, 'p'); INSERT INTO inh_child VALUES (1, 'p'); DELETE FROM ONLY inh_parent WHERE id = 1`,
			[]segment.Change{insert(inhParent, tv("1"), tv("p")), insert(inhChild, tv("1"), tv("p")),
				deleteOld(inhParent, segment.OldFull, tv("1"), tv("p"))}},
		{`INSERT INTO "Weird ""Name""" VALUES (1, 'q'), (2, 'r'); UPDATE "Weird ""Name""" SET "x y" = 'Q' WHERE "select" = 1;
		  DELETE FROM "Weird ""Name""" WHERE "select" = 2`,
			[]segment.Change{insert(weird, tv("1"), tv("q")), insert(weird, tv("2"), tv("r")),
				update(weird, tv("1"), tv("Q")), deleteOld(weird, segment.OldKey, tv("2"), null)}},
		// DDL in place: ADD COLUMN, then rows with the new column.
		{`ALTER TABLE everything ADD COLUMN extra text DEFAULT 'dflt';` + insertSQL(every2, row4...) +
			`; UPDATE everything SET note = 'again', extra = 'set later' WHERE id = 1`,
			[]segment.Change{ddl("public", "ALTER TABLE everything ADD COLUMN extra text DEFAULT 'dflt'"),
				insert(every2, row4...), update(every2, row1c...)}},
		// CREATE TABLE mid-stream, unqualified, under the source's
		// search_path (app first); several statements in one DDL change;
		// rows in the same transaction.
		{`SET LOCAL search_path = app, public; CREATE TABLE newt (id int PRIMARY KEY, m mood, v text); CREATE INDEX ON newt (v);
		  RESET search_path; INSERT INTO app.newt VALUES (1, 'ok', 'n1'), (2, NULL, '')`,
			[]segment.Change{ddl("app, public", "CREATE TABLE newt (id int PRIMARY KEY, m mood, v text); CREATE INDEX ON newt (v)"),
				insert(newt, tv("1"), tv("ok"), tv("n1")), insert(newt, tv("2"), null, tv(""))}},
		{`UPDATE app.newt SET m = 'sad' WHERE id = 2`,
			[]segment.Change{update(newt, tv("2"), tv("sad"), tv("")), message("rxvault.heartbeat", "{}")}},
	}
	if merge {
		var all step
		for _, s := range steps {
			all.ref += s.ref + ";\n"
			all.changes = append(all.changes, s.changes...)
		}
		steps = []step{all}
	}
	for i, s := range steps {
		run(t, ref, "BEGIN; "+s.ref+"; COMMIT")
		if err := apply(ctx, tg, s.changes...); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	st := tg.Stats()
	wantCommitted := int64(0)
	if groupTxns == 1 {
		wantCommitted = int64(len(steps))
	}
	if got := st.CommittedTransactions; got != wantCommitted {
		t.Errorf("before the group commits: Stats().CommittedTransactions = %d, want %d", got, wantCommitted)
	}
	commitGroup(t, tg)
	compareTables(t, ref, tconn)
	if got, want := sequenceState(t, tconn, "ident_id_seq"), sequenceState(t, ref, "ident_id_seq"); got != want {
		t.Errorf("ident_id_seq after TRUNCATE RESTART IDENTITY: got %s, want %s", got, want)
	}
	var big string
	if err := tconn.QueryRow(ctx, "SELECT big FROM everything WHERE id = 1").Scan(&big); err != nil {
		t.Fatal(err)
	}
	if big != big1 {
		t.Errorf("unchanged TOAST value: got %d bytes, want the original %d bytes", len(big), len(big1))
	}
	var index int
	if err := tconn.QueryRow(ctx, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'app' AND tablename = 'newt'").Scan(&index); err != nil {
		t.Fatal(err)
	}
	if got, want := index, 2; got != want {
		t.Errorf("indexes on app.newt: got %d, want %d (the DDL change's second statement must run)", got, want)
	}
	st = tg.Stats()
	var nchanges int64
	for _, s := range steps {
		nchanges += int64(len(s.changes))
	}
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"Transactions", st.Transactions, int64(len(steps))},
		{"Changes", st.Changes, nchanges},
		{"CommittedTransactions", st.CommittedTransactions, int64(len(steps))},
		{"CommittedChanges", st.CommittedChanges, nchanges},
	} {
		if c.got != c.want {
			t.Errorf("Stats().%s = %d, want %d", c.name, c.got, c.want)
		}
	}
}

// TestApplyAllOrNothing: a transaction whose third change fails leaves
// none of its changes, the error names the transaction, the change and
// table but quotes no value, and, since the transaction was alone in its
// commit group (the group before it committed), the target goes on
// applying.
func TestApplyAllOrNothing(t *testing.T) {
	_, _, dsn := newServer(t)
	conn := connect(t, dsn)
	run(t, conn, `CREATE TABLE t (id int PRIMARY KEY, v text, n int); CREATE TABLE nokey (k int, v text)`)
	tg := openTarget(t, dsn)
	ctx := context.Background()
	rel := &segment.Relation{Schema: "public", Table: "t", Columns: []segment.Column{col("id", oidInt4, true), col("v", 25, false), col("n", oidInt4, false)}}
	mustApply(t, tg, insert(rel, tv("1"), tv("one"), tv("1")))

	count := func() int {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const secret = "SECRET-patient-Jane-Doe"
	cases := []struct {
		name    string
		third   segment.Change
		message []string // the error must contain each
	}{
		{"update of a missing row", update(rel, tv("99"), tv(secret), tv("5")),
			[]string{"change 3 (update public.t)", "0 rows matched", "diverged"}},
		{"delete of a missing row", deleteOld(rel, segment.OldKey, tv("98"), null, null),
			[]string{"change 3 (delete public.t)", "0 rows matched"}},
		{"bad value", insert(rel, tv("4"), tv("x"), tv(secret)),
			[]string{"change 3 (insert public.t)", "22P02", "invalid_text_representation", "withheld"}},
		{"duplicate key", insert(rel, tv("1"), tv(secret), tv("1")),
			[]string{"change 3 (insert public.t)", "23505", "constraint=t_pkey"}},
		{"missing table", insert(&segment.Relation{Schema: "public", Table: "gone", Columns: rel.Columns}, tv("1"), tv(secret), tv("1")),
			[]string{"change 3 (insert public.gone)", "does not exist on the target"}},
		{"failing DDL", ddl("public", "ALTER TABLE t ADD COLUMN v text"),
			[]string{"change 3 (ddl)", "42701"}},
	}
	// Each case runs as a small transaction (checked statements) and as
	// a large one (plain statements): 5000 inserts precede the three
	// changes, so results are also read amid the transaction.
	for _, size := range []string{"small", "large"} {
		for _, c := range cases {
			t.Run(size+"/"+c.name, func(t *testing.T) {
				commitGroup(t, tg)
				before := count()
				var changes []segment.Change
				if size == "large" {
					for i := range 5000 {
						changes = append(changes, insert(rel, tv(strconv.Itoa(10000+i)), tv(secret), tv("0")))
					}
				}
				changes = append(changes,
					insert(rel, tv("2"), tv(secret), tv("2")),
					update(rel, tv("1"), tv(secret), tv("1")),
					c.third)
				err := applyCommit(ctx, tg, changes...)
				if err == nil {
					t.Fatal("Apply and commit succeeded, want an error")
				}
				msg := err.Error()
				want := append([]string{"apply transaction " + lastTxnID() + " "}, c.message...)
				if size == "large" {
					want[1] = strings.Replace(want[1], "change 3 ", "change 5003 ", 1)
				}
				for _, w := range want {
					if !strings.Contains(msg, w) {
						t.Errorf("error %q does not contain %q", msg, w)
					}
				}
				if strings.Contains(msg, secret) || strings.Contains(msg, "\n") {
					t.Errorf("error quotes a value or spans lines: %q", msg)
				}
				if got, want := count(), before; got != want {
					t.Errorf("rows after the failed transaction: got %d, want %d", got, want)
				}
				var v string
				if err := conn.QueryRow(ctx, "SELECT v FROM t WHERE id = 1").Scan(&v); err != nil {
					t.Fatal(err)
				}
				if got, want := v, "one"; got != want {
					t.Errorf("row 1 after the failed transaction: v = %q, want %q", got, want)
				}
				if strings.Contains(msg, "rolled back to the last group commit") {
					t.Errorf("error %q says other transactions were rolled back; the failed one was alone in its group", msg)
				}
				// The target is still usable.
				mustApply(t, tg, update(rel, tv("1"), tv("one"), tv("1")))
			})
		}
	}

	// A key that matches two rows (the target's table lost its unique
	// key): the update must fail rather than change both.
	nokey := &segment.Relation{Schema: "public", Table: "nokey", Columns: []segment.Column{col("k", oidInt4, true), col("v", 25, false)}}
	mustApply(t, tg, insert(nokey, tv("1"), tv("a")), insert(nokey, tv("1"), tv("b")))
	commitGroup(t, tg)
	err := applyCommit(ctx, tg, update(nokey, tv("1"), tv("c")))
	if err == nil || !strings.Contains(err.Error(), "2 rows matched") {
		t.Errorf("update matching two rows: got %v, want an error saying 2 rows matched", err)
	}
	var many []segment.Change
	for range 10 {
		many = append(many, insert(rel, tv("3"), tv("x"), tv("3")), deleteOld(rel, segment.OldKey, tv("3"), null, null))
	}
	err = applyCommit(ctx, tg, append(many, update(nokey, tv("1"), tv("c")))...)
	if err == nil || !strings.Contains(err.Error(), "change 21 (update public.nokey): 2 rows matched") {
		t.Errorf("large transaction updating two rows: got %v, want an error saying 2 rows matched", err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM nokey WHERE v = 'c'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d rows updated by a failed transaction", n)
	}
}

// TestApplyIteratorError: an error from the change iterator rolls the
// transaction back.
func TestApplyIteratorError(t *testing.T) {
	_, _, dsn := newServer(t)
	conn := connect(t, dsn)
	run(t, conn, `CREATE TABLE t (id int PRIMARY KEY)`)
	tg := openTarget(t, dsn)
	rel := &segment.Relation{Schema: "public", Table: "t", Columns: []segment.Column{col("id", oidInt4, true)}}
	readErr := errFake("spill file unreadable")
	changes := func(yield func(*segment.Change, error) bool) {
		c := insert(rel, tv("1"))
		if !yield(&c, nil) {
			return
		}
		yield(nil, readErr)
	}
	err := tg.Apply(context.Background(), &segment.TxnInfo{ID: "7"}, changes)
	if err == nil || !strings.Contains(err.Error(), "read change 2") {
		t.Fatalf("Apply: got %v, want the read error", err)
	}
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d rows left by a transaction whose changes could not be read", n)
	}
}

type errFake string

func (e errFake) Error() string { return string(e) }

// TestApplyBinaryAndConcurrentDDL: Binary values go to the server in its
// binary format (and find rows by full value too); a DDL statement that
// PostgreSQL refuses inside a transaction block runs on its own when it
// is its transaction's first change (the group before it commits), and
// fails elsewhere.
func TestApplyBinaryAndConcurrentDDL(t *testing.T) {
	_, _, dsn := newServer(t)
	conn := connect(t, dsn)
	run(t, conn, `CREATE TABLE b (n int4, f float8, t text); ALTER TABLE b REPLICA IDENTITY FULL`)
	tg := openTarget(t, dsn)
	ctx := context.Background()
	rel := &segment.Relation{Schema: "public", Table: "b", Columns: []segment.Column{
		col("n", oidInt4, true), col("f", oidFloat8, true), col("t", 25, true)}}
	bin := func(b ...byte) segment.Value { return segment.Value{Kind: segment.Binary, Data: b} }
	row42 := []segment.Value{bin(0, 0, 0, 42), bin(0x3f, 0xf8, 0, 0, 0, 0, 0, 0), bin('h', 'i')} // 42, 1.5, "hi"
	row7 := []segment.Value{tv("7"), tv("-0"), tv("")}
	mustApply(t, tg, insert(rel, row42...), insert(rel, row7...), insert(rel, row42...))
	mustApply(t, tg, deleteOld(rel, segment.OldFull, row42...))
	commitGroup(t, tg)
	var got string
	if err := conn.QueryRow(ctx, "SELECT string_agg(b::text, ' ' ORDER BY b::text) FROM b").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := `(42,1.5,hi) (7,-0,"")`; got != want {
		t.Errorf("rows: got %s, want %s", got, want)
	}

	mustApply(t, tg, ddl("public", "CREATE INDEX CONCURRENTLY b_n ON b (n)"))
	var valid bool
	if err := conn.QueryRow(ctx, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'b_n'::regclass").Scan(&valid); err != nil || !valid {
		t.Errorf("index b_n after CREATE INDEX CONCURRENTLY: valid %t, %v", valid, err)
	}
	err := applyCommit(ctx, tg, insert(rel, row7...), ddl("public", "CREATE INDEX CONCURRENTLY b_t ON b (t)"))
	if err == nil || !strings.Contains(err.Error(), "25001") {
		t.Errorf("CREATE INDEX CONCURRENTLY after a row change: got %v, want SQLSTATE 25001", err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM b").Scan(&n); err != nil || n != 2 {
		t.Errorf("rows after the failed transaction: %d, %v; want 2", n, err)
	}
}
