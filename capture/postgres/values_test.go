package postgres

import (
	"slices"
	"strings"
	"testing"

	"github.com/rxvault/rxvault/segment"
)

// TestChangeKinds checks that every change kind and every value kind
// arrives exactly: text forms of numeric, bytea, jsonb, arrays,
// timestamptz, uuid, float, an enum and NULL; an unchanged TOASTed value
// as Unchanged; old keys and full old rows; TRUNCATE with its flags; and
// the relation's column names, types and key flags.
func TestChangeKinds(t *testing.T) {
	_, dsn := newDB(t, "kinds")
	conn := connect(t, dsn)
	execAll(t, conn,
		`CREATE TYPE mood AS ENUM ('sad', 'happy')`,
		`CREATE TABLE rx (
			id integer PRIMARY KEY,
			amount numeric(12,4),
			blob bytea,
			doc jsonb,
			nums integer[],
			tags text[],
			at timestamptz,
			uid uuid,
			ratio double precision,
			feel mood,
			note text,
			big text)`,
		`ALTER TABLE rx ALTER COLUMN big SET STORAGE EXTERNAL`,
		`CREATE TABLE full_rows (k text, v integer)`,
		`ALTER TABLE full_rows REPLICA IDENTITY FULL`,
		`CREATE TABLE parent (id integer PRIMARY KEY)`,
		`CREATE TABLE child (id serial PRIMARY KEY, parent_id integer REFERENCES parent(id))`,
	)
	r := openReader(t, testConfig(t, dsn))
	sink := newRecSink()
	run := start(t, r, sink)

	big := strings.Repeat("0123456789abcdef", 640) // 10 KiB, stored out of line uncompressed
	execAll(t, conn,
		`INSERT INTO rx VALUES (1, 12345.6789, '\xdeadbeef', '{"b": [1,2], "a": 1}', '{1,2,3}',
			ARRAY['a', 'b c', NULL], '2024-02-29 12:34:56.789012+02', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
			0.1, 'happy', NULL, '`+big+`')`,
		`UPDATE rx SET note = 'filled' WHERE id = 1`,
		`UPDATE rx SET id = 2 WHERE id = 1`,
		`DELETE FROM rx WHERE id = 2`,
		`INSERT INTO full_rows VALUES ('a', 1)`,
		`UPDATE full_rows SET v = 2`,
		`DELETE FROM full_rows`,
		`INSERT INTO parent VALUES (7)`,
		`INSERT INTO child (parent_id) VALUES (7)`,
		`TRUNCATE parent RESTART IDENTITY CASCADE`,
	)
	txns := sink.waitUntil(t, run, "ten transactions", func(txns []recTxn) bool {
		return len(userOnly(txns)) >= 10
	})
	got := userOnly(txns)[:10]

	rel := got[0].Changes[0].Rel
	wantCols := []segment.Column{
		{Name: "id", Type: "integer", TypeID: 23, Key: true},
		{Name: "amount", Type: "numeric(12,4)", TypeID: 1700},
		{Name: "blob", Type: "bytea", TypeID: 17},
		{Name: "doc", Type: "jsonb", TypeID: 3802},
		{Name: "nums", Type: "integer[]", TypeID: 1007},
		{Name: "tags", Type: "text[]", TypeID: 1009},
		{Name: "at", Type: "timestamp with time zone", TypeID: 1184},
		{Name: "uid", Type: "uuid", TypeID: 2950},
		{Name: "ratio", Type: "double precision", TypeID: 701},
		{Name: "feel", Type: "public.mood"},
		{Name: "note", Type: "text", TypeID: 25},
		{Name: "big", Type: "text", TypeID: 25},
	}
	if got, want := rel.Schema+"."+rel.Table, "public.rx"; got != want {
		t.Fatalf("relation %s, want %s", got, want)
	}
	if got, want := len(rel.Columns), len(wantCols); got != want {
		t.Fatalf("%d columns, want %d", got, want)
	}
	for i, c := range rel.Columns {
		w := wantCols[i]
		if w.TypeID == 0 {
			w.TypeID = c.TypeID // the enum's oid is not fixed
		}
		if c != w {
			t.Errorf("column %d = %+v, want %+v", i, c, w)
		}
	}

	row := []segment.Value{text("1"), text("12345.6789"), text(`\xdeadbeef`), text(`{"a": 1, "b": [1, 2]}`),
		text("{1,2,3}"), text(`{a,"b c",NULL}`), text("2024-02-29 10:34:56.789012+00"),
		text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), text("0.1"), text("happy"), null, text(big)}
	updated := slices.Clone(row)
	updated[10] = text("filled")
	updated[11] = segment.Value{Kind: segment.Unchanged}
	moved := slices.Clone(updated)
	moved[0] = text("2")
	oldKey := make([]segment.Value, len(row))
	for i := range oldKey {
		oldKey[i] = null
	}
	oldKey[0] = text("1")
	deletedKey := slices.Clone(oldKey)
	deletedKey[0] = text("2")

	type want struct {
		op      segment.Op
		table   string
		oldKind segment.OldKind
		old     []segment.Value
		new     []segment.Value
	}
	wants := []want{
		{segment.OpInsert, "rx", segment.OldNone, nil, row},
		{segment.OpUpdate, "rx", segment.OldNone, nil, updated},
		{segment.OpUpdate, "rx", segment.OldKey, oldKey, moved},
		{segment.OpDelete, "rx", segment.OldKey, deletedKey, nil},
		{segment.OpInsert, "full_rows", segment.OldNone, nil, []segment.Value{text("a"), text("1")}},
		{segment.OpUpdate, "full_rows", segment.OldFull, []segment.Value{text("a"), text("1")}, []segment.Value{text("a"), text("2")}},
		{segment.OpDelete, "full_rows", segment.OldFull, []segment.Value{text("a"), text("2")}, nil},
		{segment.OpInsert, "parent", segment.OldNone, nil, []segment.Value{text("7")}},
		{segment.OpInsert, "child", segment.OldNone, nil, []segment.Value{text("1"), text("7")}},
	}
	for i, w := range wants {
		tx := got[i]
		if got, want := len(tx.Changes), 1; got != want || tx.Len != want {
			t.Fatalf("txn %d: %d changes (Len %d), want %d", i, got, tx.Len, want)
		}
		c := tx.Changes[0]
		if c.Op != w.op || c.Rel.Table != w.table || c.OldKind != w.oldKind {
			t.Errorf("txn %d: %s %s old %d, want %s %s old %d", i, c.Op, c.Rel.Table, c.OldKind, w.op, w.table, w.oldKind)
		}
		if !sameValues(c.Old, w.old) {
			t.Errorf("txn %d: old = %s, want %s", i, valuesString(c.Old), valuesString(w.old))
		}
		if !sameValues(c.New, w.new) {
			t.Errorf("txn %d: new = %s, want %s", i, valuesString(c.New), valuesString(w.new))
		}
	}

	tr := got[9].Changes[0]
	if got, want := tr.Op, segment.OpTruncate; got != want {
		t.Fatalf("last change %s, want %s", got, want)
	}
	if got, want := tr.TruncateFlags, segment.TruncateCascade|segment.TruncateRestartIdentity; got != want {
		t.Errorf("truncate flags %#x, want %#x", got, want)
	}
	var names []string
	for _, rel := range tr.Truncated {
		names = append(names, rel.Table)
	}
	slices.Sort(names)
	if got, want := strings.Join(names, ","), "child,parent"; got != want {
		t.Errorf("truncated %s, want %s", got, want)
	}

	// Positions and times are well formed and ordered.
	for i, tx := range got {
		if tx.Info.Pos.Hi != 0 || tx.End.Compare(tx.Info.Pos) <= 0 || tx.Info.ID == "" {
			t.Errorf("txn %d: pos %v end %v id %q", i, tx.Info.Pos, tx.End, tx.Info.ID)
		}
		if i > 0 && tx.Info.Pos.Compare(got[i-1].Info.Pos) <= 0 {
			t.Errorf("txn %d: pos %v not after %v", i, tx.Info.Pos, got[i-1].Info.Pos)
		}
		if tx.Info.Commit.Location().String() != "UTC" || tx.Info.Commit.Nanosecond()%1000 != 0 {
			t.Errorf("txn %d: commit time %v not UTC µs", i, tx.Info.Commit)
		}
	}
	if err := run.stop(); !isCanceled(err) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
}

// userOnly drops heartbeat transactions.
func userOnly(txns []recTxn) []recTxn {
	var out []recTxn
	for _, t := range txns {
		if t.user() {
			out = append(out, t)
		}
	}
	return out
}

// TestTableWithoutColumns: rows of a table with no columns (legal in
// PostgreSQL; pgoutput sends their inserts as 7 bytes, which pglogrepl
// refuses as too short) are captured like any other, and do not stop the
// stream.
func TestTableWithoutColumns(t *testing.T) {
	_, dsn := newDB(t, "nocols")
	conn := connect(t, dsn)
	execAll(t, conn,
		`CREATE TABLE nocols ()`,
		`ALTER TABLE nocols REPLICA IDENTITY FULL`,
		`CREATE TABLE after (id integer PRIMARY KEY)`,
	)
	// Transactions over 64 kB stream while they run: the inserts then
	// carry an xid too.
	r := openReader(t, testConfig(t, dsn+"&logical_decoding_work_mem=64kB"))
	sink := newRecSink()
	run := start(t, r, sink)
	execAll(t, conn,
		`INSERT INTO nocols SELECT FROM generate_series(1, 2)`,
		`DELETE FROM nocols WHERE ctid = (SELECT min(ctid) FROM nocols)`,
		`INSERT INTO after VALUES (1)`,
		`INSERT INTO nocols SELECT FROM generate_series(1, 5000)`,
	)
	txns := sink.waitUntil(t, run, "four transactions", func(txns []recTxn) bool {
		return len(userOnly(txns)) >= 4
	})
	got := userOnly(txns)[:4]
	want := []struct {
		op    segment.Op
		table string
		n     int
	}{{segment.OpInsert, "nocols", 2}, {segment.OpDelete, "nocols", 1}, {segment.OpInsert, "after", 1}, {segment.OpInsert, "nocols", 5000}}
	for i, w := range want {
		if got, want := len(got[i].Changes), w.n; got != want {
			t.Fatalf("txn %d: %d changes, want %d", i, got, want)
		}
		for _, c := range got[i].Changes {
			if c.Op != w.op || c.Rel.Table != w.table {
				t.Errorf("txn %d: %s %s, want %s %s", i, c.Op, c.Rel.Table, w.op, w.table)
			}
			if w.table == "nocols" && (len(c.New) != 0 || len(c.Old) != 0 || len(c.Rel.Columns) != 0) {
				t.Errorf("txn %d: %d new and %d old values, %d columns, want none", i, len(c.New), len(c.Old), len(c.Rel.Columns))
			}
		}
	}
	if err := run.stop(); !isCanceled(err) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
}
