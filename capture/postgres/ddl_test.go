package postgres

import (
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

	ddl := func(sql string) []segment.Change {
		return []segment.Change{{Op: segment.OpDDL, Schema: "postgres, public", SQL: sql}}
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
			if g[j].Op != w[j].Op || g[j].SQL != w[j].SQL || g[j].Schema != w[j].Schema || !sameValues(g[j].New, w[j].New) {
				t.Errorf("txn %d change %d: %s schema %q sql %q new %s; want %s schema %q sql %q new %s", i, j,
					g[j].Op, g[j].Schema, g[j].SQL, valuesString(g[j].New), w[j].Op, w[j].Schema, w[j].SQL, valuesString(w[j].New))
			}
		}
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
