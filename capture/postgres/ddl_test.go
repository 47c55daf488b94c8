package postgres

import (
	"strings"
	"testing"

	"github.com/rxvault/rxvault/segment"
)

// TestDDL checks that DDL arrives in commit order between the
// transactions around it, with the client's SQL and resolved search_path;
// that a query string with several DDL statements is captured once, in
// its transaction, with that transaction's row changes; and that DDL on
// temporary objects is not captured.
func TestDDL(t *testing.T) {
	_, dsn := newDB(t, "ddl")
	conn := connect(t, dsn)
	execAll(t, conn, `CREATE TABLE t (id integer PRIMARY KEY)`)
	r := openReader(t, testConfig(t, dsn))
	sink := newRecSink()
	run := start(t, r, sink)

	multi := `CREATE TABLE m1 (id integer PRIMARY KEY); CREATE TABLE m2 (id integer PRIMARY KEY); INSERT INTO m1 VALUES (1)`
	execAll(t, conn,
		`SET TimeZone = 'Asia/Kathmandu'`,
		`INSERT INTO t VALUES (1)`,
		`ALTER TABLE t ADD COLUMN note text`,
		`INSERT INTO t VALUES (2, 'x')`,
		`CREATE TEMP TABLE scratch (x integer)`,
		`CREATE TABLE u (id integer PRIMARY KEY)`,
	)
	simpleQuery(t, conn, multi)
	execAll(t, conn,
		`DROP TABLE scratch`,
		`DROP TABLE u`,
		`INSERT INTO t VALUES (3, 'end')`,
	)
	txns := sink.waitUntil(t, run, "the last insert", func(txns []recTxn) bool {
		u := userOnly(txns)
		return len(u) > 0 && u[len(u)-1].Changes[0].Op == segment.OpInsert && len(u[len(u)-1].Changes[0].New) == 2 &&
			string(u[len(u)-1].Changes[0].New[0].Data) == "3"
	})
	got := userOnly(txns)

	// Each DDL change comes after the message with its session's
	// settings.
	ddl := func(sql string) []segment.Change {
		return []segment.Change{{Op: segment.OpMessage, Prefix: segment.MsgDDLSession}, {Op: segment.OpDDL, Schema: "postgres, public", SQL: sql}}
	}
	want := [][]segment.Change{
		{{Op: segment.OpInsert, New: []segment.Value{text("1")}}},
		ddl(`ALTER TABLE t ADD COLUMN note text`),
		{{Op: segment.OpInsert, New: []segment.Value{text("2"), text("x")}}},
		ddl(`CREATE TABLE u (id integer PRIMARY KEY)`),
		append(ddl(multi), segment.Change{Op: segment.OpInsert, New: []segment.Value{text("1")}}),
		ddl(`DROP TABLE u`),
		{{Op: segment.OpInsert, New: []segment.Value{text("3"), text("end")}}},
	}
	if got, want := len(got), len(want); got != want {
		for i, tx := range userOnly(txns) {
			for _, c := range tx.Changes {
				t.Logf("txn %d: %s %q %s", i, c.Op, c.SQL, valuesString(c.New))
			}
		}
		t.Fatalf("%d transactions, want %d", got, want)
	}
	for i, w := range want {
		g := got[i].Changes
		if len(g) != len(w) || got[i].Len != len(w) {
			t.Errorf("txn %d: %d changes (Len %d), want %d", i, len(g), got[i].Len, len(w))
			continue
		}
		for j := range w {
			if g[j].Op != w[j].Op || g[j].SQL != w[j].SQL || g[j].Schema != w[j].Schema || g[j].Prefix != w[j].Prefix || !sameValues(g[j].New, w[j].New) {
				t.Errorf("txn %d change %d: %s schema %q sql %q new %s; want %s schema %q sql %q new %s", i, j,
					g[j].Op, g[j].Schema, g[j].SQL, valuesString(g[j].New), w[j].Op, w[j].Schema, w[j].SQL, valuesString(w[j].New))
			}
		}
	}
	// The session's settings, as the source session had them.
	if got, want := string(got[1].Changes[0].Content), `"TimeZone":"Asia/Kathmandu"`; !strings.Contains(got, want) {
		t.Errorf("DDL session message %s, want it to hold %s", got, want)
	}
	// The insert after ALTER TABLE uses the new relation.
	if got, want := len(got[2].Changes[0].Rel.Columns), 2; got != want {
		t.Errorf("relation after ALTER TABLE has %d columns, want %d", got, want)
	}
	if got, want := len(got[0].Changes[0].Rel.Columns), 1; got != want {
		t.Errorf("relation before ALTER TABLE has %d columns, want %d", got, want)
	}
	if err := run.stop(); !isCanceled(err) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
}

// TestCreateTableAs checks that a table created with its rows (CREATE
// TABLE AS, SELECT INTO) arrives as the CREATE TABLE of the empty table
// followed by its rows as inserts, so replay neither inserts into a
// missing table nor computes the rows twice; and that temporary ones are
// not captured.
func TestCreateTableAs(t *testing.T) {
	_, dsn := newDB(t, "ctas")
	conn := connect(t, dsn)
	execAll(t, conn,
		`CREATE TABLE src (id integer PRIMARY KEY, amount numeric(10,2), code text COLLATE "C", tags integer[])`,
		`INSERT INTO src VALUES (1, 1.50, 'a', '{1}'), (2, 2.25, 'b', NULL)`,
	)
	r := openReader(t, testConfig(t, dsn))
	sink := newRecSink()
	run := start(t, r, sink)
	execAll(t, conn,
		`CREATE TABLE copy WITH (fillfactor = 70) AS SELECT * FROM src ORDER BY id`,
		`SELECT id, amount INTO other FROM src WHERE id = 2`,
		`CREATE TABLE empty AS SELECT * FROM src WITH NO DATA`,
		`CREATE TEMP TABLE scratch AS SELECT * FROM src`,
		`INSERT INTO copy VALUES (3, 3.00, 'c', '{}')`,
	)
	txns := sink.waitUntil(t, run, "the insert into the copy", func(txns []recTxn) bool {
		u := userOnly(txns)
		return len(u) > 0 && u[len(u)-1].Changes[0].Op == segment.OpInsert && string(u[len(u)-1].Changes[0].New[0].Data) == "3"
	})
	got := userOnly(txns)
	type change struct {
		op  segment.Op
		sql string
		row string
	}
	want := [][]change{
		{
			{segment.OpDDL, `CREATE TABLE public.copy (id integer, amount numeric(10,2), code text COLLATE pg_catalog."C", tags integer[]) WITH (fillfactor=70)`, ""},
			{segment.OpInsert, "", `"1", "1.50", "a", "{1}"`},
			{segment.OpInsert, "", `"2", "2.25", "b", NULL`},
		},
		{
			{segment.OpDDL, `CREATE TABLE public.other (id integer, amount numeric(10,2))`, ""},
			{segment.OpInsert, "", `"2", "2.25"`},
		},
		{{segment.OpDDL, `CREATE TABLE public.empty (id integer, amount numeric(10,2), code text COLLATE pg_catalog."C", tags integer[])`, ""}},
		{{segment.OpInsert, "", `"3", "3.00", "c", "{}"`}},
	}
	if len(got) != len(want) {
		for i, tx := range got {
			for _, c := range tx.Changes {
				t.Logf("txn %d: %s %q %s", i, c.Op, c.SQL, valuesString(c.New))
			}
		}
		t.Fatalf("%d transactions, want %d", len(got), len(want))
	}
	for i, w := range want {
		if len(got[i].Changes) != len(w) || got[i].Len != len(w) {
			t.Errorf("txn %d: %d changes (Len %d), want %d", i, len(got[i].Changes), got[i].Len, len(w))
			continue
		}
		for j, c := range got[i].Changes {
			g := change{c.Op, c.SQL, valuesString(c.New)}
			if g != w[j] {
				t.Errorf("txn %d change %d: %+v, want %+v", i, j, g, w[j])
			}
			if c.Op == segment.OpDDL && c.Schema != "postgres, public" {
				t.Errorf("txn %d: DDL search_path %q", i, c.Schema)
			}
		}
	}
}
