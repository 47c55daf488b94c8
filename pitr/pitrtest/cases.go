package pitrtest

import (
	"errors"
	"slices"
	"testing"

	"github.com/rxvault/rxvault/pitr"
	"github.com/rxvault/rxvault/segment"
)

// Row ids and values are long and distinctive, so that an error quoting
// one is noticed (see checkNoValues) and none is mistaken for another
// number of a message (a port, a position).

// testAtomicApply: a transaction whose last change fails (a duplicate
// key, a table the target lacks, a row it lacks) leaves nothing of itself
// (an insert, an update, a delete before that change), wherever the
// failure surfaces (Apply or Finish); the base rows and a transaction an
// earlier session committed stay; the error names the transaction and
// quotes none of its values.
func testAtomicApply(t *testing.T, f *fixture) {
	for _, c := range []struct {
		name string
		last func(f *fixture, rel, absent *segment.Relation) *segment.Change
	}{
		{"DuplicateKey", func(f *fixture, rel, _ *segment.Relation) *segment.Change {
			return f.insert(rel, 7310001, "val-dup-key")
		}},
		{"MissingTable", func(f *fixture, _, absent *segment.Relation) *segment.Change {
			return f.insert(absent, 7310090, "val-no-table")
		}},
		{"MissingRow", func(f *fixture, rel, _ *segment.Relation) *segment.Change {
			return f.delete(rel, 7310091, "val-no-row")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := &fixture{h: f.h}
			ctx := t.Context()
			db := f.h.NewDatabase(t)
			rel := f.table(t, db, "t")
			_, absent := f.h.Table("absent")
			db.Exec(t, "INSERT INTO t (id, v) VALUES (7310001, 'val-base')")

			// An earlier session applies and commits one transaction.
			tg, closeTarget := open(t, db)
			first := f.txn(f.insert(rel, 7310002, "val-first-a"), f.insert(rel, 7310003, "val-first-b"))
			if err := apply(ctx, tg, first); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if err := tg.Finish(ctx); err != nil {
				t.Fatalf("Finish: %v", err)
			}
			closeTarget()
			want := []row{{7310001, "val-base"}, {7310002, "val-first-a"}, {7310003, "val-first-b"}}
			checkRows(t, db, "t", "after the first session", want)

			tg, closeTarget = open(t, db)
			failing := f.txn(
				f.insert(rel, 7310004, "val-lost-insert"),
				f.update(rel, 7310002, "val-first-a", "val-lost-update"),
				f.delete(rel, 7310003, "val-first-b"),
				c.last(f, rel, absent))
			err := apply(ctx, tg, failing)
			if err == nil {
				if err = tg.Finish(ctx); err == nil {
					t.Fatal("a transaction whose last change fails was applied and finished without an error")
				}
			}
			closeTarget()
			checkNamesOnly(t, err, failing)
			checkNoValues(t, err, failing)
			checkRows(t, db, "t", "after the failed transaction", want)
		})
	}
}

// testGroupRollback: five transactions applied in one session, the third
// failing on its last change (a duplicate key, which a target that sends
// statements ahead finds only later, in a later Apply or in Finish). The
// error names the third transaction, and none applied after it, and
// quotes no value; the target is rolled back to the last state another
// connection saw committed (observed after each Apply before the third):
// a target that groups transactions loses the first two as well, none of
// which may then be visible. Another connection never sees part of a
// transaction.
func testGroupRollback(t *testing.T, f *fixture) {
	ctx := t.Context()
	db := f.h.NewDatabase(t)
	rel := f.table(t, db, "t")
	db.Exec(t, "INSERT INTO t (id, v) VALUES (7320001, 'val-base')")
	txns := []*txn{
		f.txn(f.insert(rel, 7320002, "val-g1")),
		f.txn(f.insert(rel, 7320003, "val-g2"), f.update(rel, 7320002, "val-g1", "val-g2-update")),
		f.txn(f.insert(rel, 7320004, "val-g3"), f.insert(rel, 7320001, "val-g3-dup")), // fails
		f.txn(f.insert(rel, 7320005, "val-g4")),
		f.txn(f.insert(rel, 7320006, "val-g5")),
	}
	const failing = 2
	// states[k] is the table after the first k transactions.
	states := [][]row{
		{{7320001, "val-base"}},
		{{7320001, "val-base"}, {7320002, "val-g1"}},
		{{7320001, "val-base"}, {7320002, "val-g2-update"}, {7320003, "val-g2"}},
	}
	checkRows(t, db, "t", "before the restore", states[0])

	tg, closeTarget := open(t, db)
	committed := 0 // transactions another connection saw committed
	applied := 0
	var err error
	for i, x := range txns {
		if err = apply(ctx, tg, x); err != nil {
			break
		}
		applied++
		if i < failing {
			got := rows(t, db, "t")
			k := slices.IndexFunc(states[:i+2], func(s []row) bool { return slices.Equal(s, got) })
			if k < committed {
				t.Fatalf("after Apply of transaction %d of 5, another connection sees\n%v\nwhich is neither the state after a prefix of the transactions nor after at least the %d it saw committed before", i+1, got, committed)
			}
			committed = k
		}
	}
	if err == nil {
		if err = tg.Finish(ctx); err == nil {
			t.Fatal("a group holding a transaction that fails was applied and finished without an error")
		}
	}
	closeTarget()
	if applied < failing {
		t.Fatalf("Apply of transaction %d, before the failing one, failed: %v", applied+1, err)
	}
	attempted := min(applied+1, len(txns)) // the error came from the Apply after them, or from Finish
	checkNamesOnly(t, err, txns[failing], txns[failing+1:attempted]...)
	checkNoValues(t, err, txns...)
	checkRows(t, db, "t", "after the failed group", states[committed])
	if committed == failing {
		t.Logf("the target committed the %d transactions before the failing one on their own: no group was rolled back", failing)
	}
}

// testFinishDurable: inserts, updates and deletes applied in several
// transactions, then Finish: a new connection sees exactly the rows they
// leave, and so it does after the server crashed (SIGKILL) and started
// again.
func testFinishDurable(t *testing.T, f *fixture) {
	ctx := t.Context()
	db := f.h.NewDatabase(t)
	rel := f.table(t, db, "t")
	db.Exec(t, "INSERT INTO t (id, v) VALUES (7330001, 'val-base-1'), (7330002, 'val-base-2')")
	txns := []*txn{
		f.txn(f.insert(rel, 7330003, "val-d1"), f.insert(rel, 7330004, "val-d2")),
		f.txn(f.update(rel, 7330001, "val-base-1", "val-d-update")),
		f.txn(f.delete(rel, 7330002, "val-base-2")),
		f.txn(f.insert(rel, 7330005, "val-d3"), f.update(rel, 7330005, "val-d3", "val-d3-update")),
	}
	want := []row{{7330001, "val-d-update"}, {7330003, "val-d1"}, {7330004, "val-d2"}, {7330005, "val-d3-update"}}
	for i := range 10 {
		id := 7330100 + i
		txns = append(txns, f.txn(f.insert(rel, id, "val-many")))
		want = append(want, row{id, "val-many"})
	}
	tg, closeTarget := open(t, db)
	for _, x := range txns {
		if err := apply(ctx, tg, x); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
	if err := tg.Finish(ctx); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	closeTarget()
	checkRows(t, db, "t", "after Finish", want)
	f.h.Restart(t)
	checkRows(t, db, "t", "after Finish and a crash of the server", want)
}

// testCheckEmpty: a new database is empty; each kind of object the
// engine's CheckEmpty documents (a table, a table with rows, and the
// harness's Refusals) makes it not empty: the error wraps
// pitr.ErrTargetNotEmpty and names the object, and CheckEmpty changes
// nothing.
func testCheckEmpty(t *testing.T, f *fixture) {
	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		db := f.h.NewDatabase(t)
		tg, closeTarget := open(t, db)
		if err := tg.CheckEmpty(t.Context()); err != nil {
			t.Errorf("CheckEmpty of a new database: %v", err)
		}
		closeTarget()
	})
	createTable, _ := f.h.Table("rxv_table")
	createRows, _ := f.h.Table("rxv_rows")
	refusals := append([]Refusal{
		{Name: "table", Setup: []string{createTable}, Found: "rxv_table", Probe: "SELECT count(*) FROM rxv_table"},
		{Name: "table with rows", Setup: []string{createRows, "INSERT INTO rxv_rows (id, v) VALUES (7340001, 'val-row')"},
			Found: "rxv_rows", Probe: "SELECT id, v FROM rxv_rows"},
	}, f.h.Refusals()...)
	for _, r := range refusals {
		t.Run(r.Name, func(t *testing.T) {
			t.Parallel()
			db := f.h.NewDatabase(t)
			db.Exec(t, r.Setup...)
			before := db.Query(t, r.Probe)
			if len(before) == 0 {
				t.Fatalf("the probe %q finds nothing after the setup", r.Probe)
			}
			tg, closeTarget := open(t, db)
			err := tg.CheckEmpty(t.Context())
			closeTarget()
			switch {
			case err == nil:
				t.Errorf("CheckEmpty with a %s in the database: no error", r.Name)
			case !errors.Is(err, pitr.ErrTargetNotEmpty):
				t.Errorf("CheckEmpty with a %s in the database: %v, want an error wrapping pitr.ErrTargetNotEmpty", r.Name, err)
			case !names(err.Error(), r.Found):
				t.Errorf("CheckEmpty with a %s in the database: %v, want it to name %s", r.Name, err, r.Found)
			}
			if after := db.Query(t, r.Probe); !slices.EqualFunc(after, before, slices.Equal) {
				t.Errorf("CheckEmpty changed the database: the probe %q gave %q before, %q after", r.Probe, before, after)
			}
		})
	}
}
