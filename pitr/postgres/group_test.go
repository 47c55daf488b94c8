package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/rxvault/rxvault/segment"
)

// groupSchema is created on the reference and the target databases of the
// group tests.
const groupSchema = `
CREATE TYPE mood AS ENUM ('sad', 'ok');
CREATE TABLE t (id int PRIMARY KEY, v text, m mood);
CREATE SCHEMA app;
`

var groupT = &segment.Relation{Schema: "public", Table: "t", Columns: []segment.Column{
	col("id", oidInt4, true), col("v", 25, false), col("m", oidSourceEnum, false)}}

// groupStep is one source transaction: SQL for the reference database and
// the changes for the target.
type groupStep struct {
	ref     string
	changes []segment.Change
}

// insertT inserts row id into t, on both sides.
func insertT(id int, v string) groupStep {
	vals := []segment.Value{tv(fmt.Sprint(id)), tv(v), null}
	return groupStep{insertSQL(groupT, vals...), []segment.Change{insert(groupT, vals...)}}
}

// applySteps runs each step on ref (one transaction each) and applies it
// to tg, failing the test on any error.
func applySteps(t *testing.T, tg *Target, ref string, steps ...groupStep) {
	t.Helper()
	conn := connect(t, ref)
	for i, s := range steps {
		run(t, conn, "BEGIN; "+s.ref+"; COMMIT")
		if err := apply(context.Background(), tg, s.changes...); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
}

// TestGroupFailureRollsBackToLastCommit: with groups of 10 transactions,
// the 7th transaction of the second group fails (its second change
// updates a missing row; the server says so only when the results are
// read). Whether the failure surfaces at the group's bound or in Finish,
// the error names the 7th transaction and its change, quotes no value,
// and says the group was rolled back; the target holds exactly what the
// first group committed (rows, and no trace of the second group's DDL);
// and the target refuses any further Apply or Finish.
func TestGroupFailureRollsBackToLastCommit(t *testing.T) {
	const secret = "SECRET-patient-Jane-Doe"
	for _, surface := range []string{"at the bound", "in Finish"} {
		t.Run(surface, func(t *testing.T) {
			_, refDSN, targetDSN := newServer(t)
			ref, tconn := connect(t, refDSN), connect(t, targetDSN)
			run(t, ref, groupSchema)
			run(t, tconn, groupSchema)
			tg := openTarget(t, targetDSN)
			tg.limits.txns = 10
			ctx := context.Background()

			var first []groupStep
			for i := 1; i <= 10; i++ {
				first = append(first, insertT(i, "first"))
			}
			applySteps(t, tg, refDSN, first...)
			if got, want := tg.Stats().CommittedTransactions, int64(10); got != want {
				t.Fatalf("after the first group: %d transactions committed, want %d", got, want)
			}

			// The second group, on the target only.
			second := [][]segment.Change{
				{insert(groupT, tv("11"), tv(secret), null)},
				{ddl("public", "ALTER TABLE t ADD COLUMN extra text")},
				{update(groupT, tv("1"), tv(secret), null)},
				{deleteOld(groupT, segment.OldKey, keyOnly(groupT, tv("2"))...)},
				{ddl("app", "CREATE TABLE later (id int PRIMARY KEY)")},
				{insert(groupT, tv("12"), tv(secret), null), insert(groupT, tv("13"), tv(secret), null)},
				{insert(groupT, tv("14"), tv(secret), null), update(groupT, tv("99"), tv(secret), null)}, // fails
				{insert(groupT, tv("15"), tv(secret), null)},
				{insert(groupT, tv("16"), tv(secret), null)},
				{insert(groupT, tv("17"), tv(secret), null)},
			}
			if surface == "in Finish" {
				second = second[:8]
			}
			var err error
			seventh := fmt.Sprint(1000 + txnCounter + 7) // the ID apply gives it
			for _, changes := range second {
				if err = apply(ctx, tg, changes...); err != nil {
					break
				}
			}
			if surface == "in Finish" {
				if err != nil {
					t.Fatalf("Apply: %v; want the failure to surface in Finish", err)
				}
				err = tg.Finish(ctx)
			}
			if err == nil {
				t.Fatal("the group committed, want an error")
			}
			msg := err.Error()
			for _, w := range []string{
				"apply transaction " + seventh + " ", "change 2 (update public.t)", "0 rows matched",
				"rolled back to the last group commit",
			} {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if strings.Contains(msg, secret) || strings.Contains(msg, "\n") {
				t.Errorf("error quotes a value or spans lines: %q", msg)
			}

			compareTables(t, ref, tconn)
			if got, want := schemaDump(t, targetDSN), schemaDump(t, refDSN); got != want {
				t.Errorf("schema after the failed group:\n got %s\nwant %s", got, want)
			}
			if got, want := tg.Stats().CommittedTransactions, int64(10); got != want {
				t.Errorf("Stats().CommittedTransactions = %d, want %d", got, want)
			}
			if err := apply(ctx, tg, insert(groupT, tv("18"), tv("x"), null)); err == nil || !strings.Contains(err.Error(), "unusable") {
				t.Errorf("Apply after the failed group: %v, want an error saying the target is unusable", err)
			}
			if err := tg.Finish(ctx); err == nil || !strings.Contains(err.Error(), "unusable") {
				t.Errorf("Finish after the failed group: %v, want an error saying the target is unusable", err)
			}
		})
	}
}

// TestGroupSpansDDL: one group holds source transactions with DDL and the
// changes that depend on it, in order: ADD COLUMN then rows using it (in
// the same and in later transactions), CREATE TABLE (unqualified, under
// the source's search_path) then its rows, DDL after row changes in a
// transaction, DROP TABLE, and an enum's ADD VALUE, after which the group
// commits (PostgreSQL refuses a value added by an uncommitted
// transaction) and the value is used. The target ends equal to the
// reference, rows and schema.
func TestGroupSpansDDL(t *testing.T) {
	_, refDSN, targetDSN := newServer(t)
	ref, tconn := connect(t, refDSN), connect(t, targetDSN)
	run(t, ref, groupSchema)
	run(t, tconn, groupSchema)
	tg := openTarget(t, targetDSN)
	ctx := context.Background()

	t2 := &segment.Relation{Schema: "public", Table: "t", Columns: append(append([]segment.Column{}, groupT.Columns...),
		col("note", 25, false))}
	n := &segment.Relation{Schema: "app", Table: "n", Columns: []segment.Column{col("id", oidInt4, true), col("t_id", oidInt4, false)}}
	gone := &segment.Relation{Schema: "public", Table: "gone", Columns: []segment.Column{col("id", oidInt4, true)}}
	steps := []groupStep{
		insertT(1, "a"),
		insertT(2, "b"),
		{`ALTER TABLE t ADD COLUMN note text DEFAULT 'dflt'; ` + insertSQL(t2, tv("3"), tv("c"), tv("ok"), tv("n3")),
			[]segment.Change{ddl("public", "ALTER TABLE t ADD COLUMN note text DEFAULT 'dflt'"),
				insert(t2, tv("3"), tv("c"), tv("ok"), tv("n3"))}},
		{insertSQL(t2, tv("4"), tv("d"), null, tv("n4")) + `; UPDATE t SET note = 'set' WHERE id = 1`,
			[]segment.Change{insert(t2, tv("4"), tv("d"), null, tv("n4")), update(t2, tv("1"), tv("a"), null, tv("set"))}},
		{`SET LOCAL search_path = app, public; CREATE TABLE n (id int PRIMARY KEY, t_id int); RESET search_path`,
			[]segment.Change{ddl("app, public", "CREATE TABLE n (id int PRIMARY KEY, t_id int)")}},
		{`INSERT INTO app.n VALUES (1, 3), (2, 4)`,
			[]segment.Change{insert(n, tv("1"), tv("3")), insert(n, tv("2"), tv("4"))}},
		// DDL after a row change, in the same transaction.
		{`INSERT INTO app.n VALUES (3, 1); CREATE TABLE gone (id int PRIMARY KEY); INSERT INTO gone VALUES (1)`,
			[]segment.Change{insert(n, tv("3"), tv("1")), ddl("public", "CREATE TABLE gone (id int PRIMARY KEY)"), insert(gone, tv("1"))}},
		{`DELETE FROM t WHERE id = 2; DROP TABLE gone`,
			[]segment.Change{deleteOld(t2, segment.OldKey, keyOnly(t2, tv("2"))...), ddl("public", "DROP TABLE gone")}},
		{`ALTER TYPE mood ADD VALUE 'happy'`, []segment.Change{ddl("public", "ALTER TYPE mood ADD VALUE 'happy'")}},
	}
	applySteps(t, tg, refDSN, steps...)
	if got, want := tg.Stats().CommittedTransactions, int64(len(steps)); got != want {
		t.Errorf("after ALTER TYPE: %d transactions committed, want %d (the group spans the DDL and commits after ALTER TYPE)", got, want)
	}
	applySteps(t, tg, refDSN,
		groupStep{`UPDATE t SET m = 'happy' WHERE id = 3; ` + insertSQL(t2, tv("5"), tv("e"), tv("happy"), null),
			[]segment.Change{update(t2, tv("3"), tv("c"), tv("happy"), tv("n3")), insert(t2, tv("5"), tv("e"), tv("happy"), null)}},
		groupStep{`ALTER TABLE t DROP COLUMN v; UPDATE t SET note = 'after drop' WHERE id = 4`,
			[]segment.Change{ddl("public", "ALTER TABLE t DROP COLUMN v"),
				update(&segment.Relation{Schema: "public", Table: "t", Columns: []segment.Column{
					col("id", oidInt4, true), col("m", oidSourceEnum, false), col("note", 25, false)}},
					tv("4"), null, tv("after drop"))}},
	)
	if got, want := tg.Stats().CommittedTransactions, int64(len(steps)); got != want {
		t.Errorf("before Finish: %d transactions committed, want %d", got, want)
	}
	if err := tg.Finish(ctx); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	compareTables(t, ref, tconn)
	if got, want := schemaDump(t, targetDSN), schemaDump(t, refDSN); got != want {
		t.Errorf("schemas differ:\n--- target\n%s\n--- reference\n%s", got, want)
	}
}

// TestGroupConcurrentIndexMidStream: CREATE INDEX CONCURRENTLY amid a
// stream of small transactions, alone in its transaction and followed by
// rows in its transaction: the group before it commits, the statement
// runs on its own, the changes after it run in a group that ends with the
// transaction, and the stream goes on in groups. The target ends equal to
// the reference, with both indexes valid.
func TestGroupConcurrentIndexMidStream(t *testing.T) {
	_, refDSN, targetDSN := newServer(t)
	ref, tconn := connect(t, refDSN), connect(t, targetDSN)
	run(t, ref, groupSchema)
	run(t, tconn, groupSchema)
	tg := openTarget(t, targetDSN)
	ctx := context.Background()

	var before []groupStep
	for i := 1; i <= 15; i++ {
		before = append(before, insertT(i, fmt.Sprint("v", i)))
	}
	applySteps(t, tg, refDSN, before...)
	if got := tg.Stats().CommittedTransactions; got != 0 {
		t.Fatalf("%d transactions committed before the index, want 0 (one open group)", got)
	}
	run(t, ref, `CREATE INDEX CONCURRENTLY t_v ON t (v)`)
	mustApply(t, tg, ddl("public", "CREATE INDEX CONCURRENTLY t_v ON t (v)"))
	if got, want := tg.Stats().CommittedTransactions, int64(16); got != want {
		t.Errorf("after CREATE INDEX CONCURRENTLY: %d transactions committed, want %d", got, want)
	}
	// The index, then rows after it in the same transaction of the
	// stream: they run in a new transaction.
	rows := insertT(100, "after")
	run(t, ref, `CREATE INDEX CONCURRENTLY t_m ON t (m)`)
	run(t, ref, rows.ref)
	if err := apply(ctx, tg, append([]segment.Change{ddl("", "CREATE INDEX CONCURRENTLY t_m ON t (m)")}, rows.changes...)...); err != nil {
		t.Fatalf("CREATE INDEX CONCURRENTLY then a row: %v", err)
	}
	if got, want := tg.Stats().CommittedTransactions, int64(17); got != want {
		t.Errorf("after CREATE INDEX CONCURRENTLY and a row: %d transactions committed, want %d", got, want)
	}
	var after []groupStep
	for i := 16; i <= 30; i++ {
		after = append(after, insertT(i, fmt.Sprint("v", i)))
		after = append(after, groupStep{fmt.Sprintf("UPDATE t SET v = 'u%d' WHERE id = %d", i, i-15),
			[]segment.Change{update(groupT, tv(fmt.Sprint(i-15)), tv(fmt.Sprint("u", i)), null)}})
	}
	applySteps(t, tg, refDSN, after...)
	if err := tg.Finish(ctx); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	compareTables(t, ref, tconn)
	for _, idx := range []string{"t_v", "t_m"} {
		var valid bool
		if err := tconn.QueryRow(ctx, "SELECT indisvalid FROM pg_index WHERE indexrelid = $1::regclass", idx).Scan(&valid); err != nil || !valid {
			t.Errorf("index %s: valid %t, %v", idx, valid, err)
		}
	}
	if got, want := schemaDump(t, targetDSN), schemaDump(t, refDSN); got != want {
		t.Errorf("schemas differ:\n--- target\n%s\n--- reference\n%s", got, want)
	}
}

// TestGroupFinishDurable: Finish commits the open group, which no other
// session saw before, durably: after Finish the server is stopped (a
// clean shutdown) or killed (SIGKILL: what replay committed without
// waiting for the WAL flush may be lost) and started again, and every row
// is there. Close without Finish rolls the open group back.
func TestGroupFinishDurable(t *testing.T) {
	for _, how := range []string{"stop", "kill"} {
		t.Run(how, func(t *testing.T) {
			pg, _, dsn := newServer(t)
			run(t, connect(t, dsn), groupSchema)
			tg := openTarget(t, dsn)
			ctx := context.Background()
			for i := 1; i <= 5; i++ {
				mustApply(t, tg, insert(groupT, tv(fmt.Sprint(i)), tv("v"), tv("ok")))
			}
			count := func() int {
				t.Helper()
				var n int
				if err := connect(t, dsn).QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			if got := count(); got != 0 {
				t.Fatalf("%d rows visible before the group commits, want 0", got)
			}
			if err := tg.Finish(ctx); err != nil {
				t.Fatalf("Finish: %v", err)
			}
			if err := tg.Close(ctx); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if how == "kill" {
				pg.Kill(t)
			} else {
				pg.Stop(t)
			}
			pg.Start(t)
			if got, want := count(), 5; got != want {
				t.Errorf("rows after a restart: %d, want %d", got, want)
			}

			tg = openTarget(t, dsn)
			mustApply(t, tg, insert(groupT, tv("6"), tv("v"), tv("ok")))
			if err := tg.Close(ctx); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if got, want := count(), 5; got != want {
				t.Errorf("rows after Close without Finish: %d, want %d (the open group rolled back)", got, want)
			}
		})
	}
}

// TestGroupBounds: the open group commits at the end of the transaction
// that reaches a bound: transactions, changes, bytes, tables written,
// DDL statements.
func TestGroupBounds(t *testing.T) {
	_, _, dsn := newServer(t)
	conn := connect(t, dsn)
	run(t, conn, groupSchema+`CREATE TABLE t2 (LIKE t INCLUDING ALL); CREATE TABLE t3 (LIKE t INCLUDING ALL)`)
	rel := func(table string) *segment.Relation {
		return &segment.Relation{Schema: "public", Table: table, Columns: groupT.Columns}
	}
	next := 0
	row := func(table string, v string) segment.Change {
		next++
		return insert(rel(table), tv(fmt.Sprint(next)), tv(v), null)
	}
	big := strings.Repeat("x", 1000)
	cases := []struct {
		name   string
		limits limits
		txns   [][]segment.Change // the group commits at the end of the last
	}{
		{"transactions", limits{txns: 3}, [][]segment.Change{{row("t", "")}, {row("t", "")}, {row("t", "")}}},
		{"changes", limits{changes: 4}, [][]segment.Change{{row("t", "")}, {row("t", ""), row("t", ""), row("t", "")}}},
		{"bytes", limits{bytes: 2500}, [][]segment.Change{{row("t", big)}, {row("t", big)}, {row("t", big)}}},
		{"tables", limits{relations: 3}, [][]segment.Change{{row("t", ""), row("t", "")}, {row("t2", "")}, {row("t", ""), row("t3", "")}}},
		{"DDL", limits{ddl: 2}, [][]segment.Change{{ddl("public", "CREATE TABLE d1 ()")}, {row("t", "")}, {ddl("public", "CREATE TABLE d2 ()")}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tg := openTarget(t, dsn)
			l := defaultLimits
			if c.limits.txns != 0 {
				l.txns = c.limits.txns
			}
			if c.limits.changes != 0 {
				l.changes = c.limits.changes
			}
			if c.limits.bytes != 0 {
				l.bytes = c.limits.bytes
			}
			if c.limits.relations != 0 {
				l.relations = c.limits.relations
			}
			if c.limits.ddl != 0 {
				l.ddl = c.limits.ddl
			}
			tg.limits = l
			for i, changes := range c.txns {
				mustApply(t, tg, changes...)
				want := int64(0)
				if i == len(c.txns)-1 {
					want = int64(len(c.txns))
				}
				if got := tg.Stats().CommittedTransactions; got != want {
					t.Errorf("after transaction %d: %d committed, want %d", i+1, got, want)
				}
			}
			if err := tg.Finish(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}
