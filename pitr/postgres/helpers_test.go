package postgres

import (
	"context"
	"fmt"
	"iter"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rxvault/rxvault/internal/testenv"
	"github.com/rxvault/rxvault/segment"
)

// compareSettings pin how values print, so that checksums taken on two
// databases compare.
const compareSettings = `SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres';
SET extra_float_digits = 3; SET bytea_output = 'hex'`

// connect opens a plain connection for the test's own queries.
func connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, compareSettings); err != nil {
		t.Fatalf("settings: %v", err)
	}
	return conn
}

// run runs sql (possibly several statements) through the simple protocol.
func run(t testing.TB, conn *pgx.Conn, sql string) {
	t.Helper()
	if _, err := conn.PgConn().Exec(context.Background(), sql).ReadAll(); err != nil {
		t.Fatalf("exec %q: %v", firstLine(sql), err)
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

// openTarget opens dsn as a restore target, closed when the test ends.
func openTarget(t testing.TB, dsn string) *Target {
	t.Helper()
	tg, err := Open(context.Background(), Config{DSN: dsn, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := tg.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return tg
}

// testLogger logs to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// newServer starts a private PostgreSQL and returns it with two new
// databases' DSNs: a reference (or source) and a target.
func newServer(t testing.TB) (*testenv.Postgres, string, string) {
	t.Helper()
	pg := testenv.StartPostgres(t)
	return pg, pg.CreateDatabase(t, "ref"), pg.CreateDatabase(t, "target")
}

// tableSums returns, for every table of the database, its row count and a
// checksum of its rows' text forms.
func tableSums(t testing.TB, conn *pgx.Conn) map[string]string {
	t.Helper()
	ctx := context.Background()
	rows, err := conn.Query(ctx, `SELECT format('%I.%I', schemaname, tablename) FROM pg_catalog.pg_tables
		WHERE schemaname !~ '^pg_' AND schemaname <> 'information_schema' ORDER BY 1`)
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	sums := map[string]string{}
	for _, tb := range tables {
		var n int64
		var sum string
		// ONLY: an inheritance parent's own rows, not its children's.
		q := "SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM ONLY " + tb + " x"
		if err := conn.QueryRow(ctx, q).Scan(&n, &sum); err != nil {
			t.Fatalf("checksum %s: %v", tb, err)
		}
		sums[tb] = fmt.Sprintf("%d rows, md5 %s", n, sum)
	}
	return sums
}

// compareTables fails the test unless both databases hold the same tables
// with the same rows.
func compareTables(t testing.TB, want, got *pgx.Conn) {
	t.Helper()
	ws, gs := tableSums(t, want), tableSums(t, got)
	names := map[string]bool{}
	for k := range ws {
		names[k] = true
	}
	for k := range gs {
		names[k] = true
	}
	sorted := slices.Sorted(func(yield func(string) bool) {
		for k := range names {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range sorted {
		if got, want := gs[k], ws[k]; got != want {
			t.Errorf("table %s: got %q, want %q", k, got, want)
		}
	}
}

// sequenceState returns a sequence's last_value and is_called.
func sequenceState(t testing.TB, conn *pgx.Conn, seq string) string {
	t.Helper()
	var last int64
	var called bool
	if err := conn.QueryRow(context.Background(), "SELECT last_value, is_called FROM "+seq).Scan(&last, &called); err != nil {
		t.Fatalf("read %s: %v", seq, err)
	}
	return fmt.Sprintf("%d/%t", last, called)
}

// txnOf yields changes.
func txnOf(changes ...segment.Change) iter.Seq2[*segment.Change, error] {
	return func(yield func(*segment.Change, error) bool) {
		for i := range changes {
			if !yield(&changes[i], nil) {
				return
			}
		}
	}
}

var txnCounter int

// apply applies changes as one transaction.
func apply(ctx context.Context, tg *Target, changes ...segment.Change) error {
	txnCounter++
	info := &segment.TxnInfo{
		ID:     fmt.Sprint(1000 + txnCounter),
		Pos:    segment.Position{Lo: uint64(0x1000000 + txnCounter*0x100)},
		Commit: time.Date(2024, 3, 1, 12, 0, txnCounter, 0, time.UTC),
	}
	return tg.Apply(ctx, info, txnOf(changes...))
}

func mustApply(t testing.TB, tg *Target, changes ...segment.Change) {
	t.Helper()
	if err := apply(context.Background(), tg, changes...); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

// commitGroup commits the open commit group, so that other connections
// see what it did (and take locks it held).
func commitGroup(t testing.TB, tg *Target) {
	t.Helper()
	if err := commitErr(tg); err != nil {
		t.Fatal(err)
	}
}

// commitErr commits the open commit group and returns the error Apply
// would have, had the group committed at its end.
func commitErr(tg *Target) error {
	if err := tg.commit(context.Background(), false); err != nil {
		return tg.failed(err)
	}
	return nil
}

// applyCommit applies changes as one transaction and commits the group:
// errors of the transaction's statements surface by then.
func applyCommit(ctx context.Context, tg *Target, changes ...segment.Change) error {
	if err := apply(ctx, tg, changes...); err != nil {
		return err
	}
	return commitErr(tg)
}

// lastTxnID is the ID apply gave the last transaction.
func lastTxnID() string { return fmt.Sprint(1000 + txnCounter) }

// Value and change builders.

func tv(s string) segment.Value { return segment.TextValue(s) }

var (
	null      = segment.Value{Kind: segment.Null}
	unchanged = segment.Value{Kind: segment.Unchanged}
)

func insert(rel *segment.Relation, vals ...segment.Value) segment.Change {
	return segment.Change{Op: segment.OpInsert, Rel: rel, New: vals}
}

// update with the key unchanged (no old tuple).
func update(rel *segment.Relation, vals ...segment.Value) segment.Change {
	return segment.Change{Op: segment.OpUpdate, Rel: rel, OldKind: segment.OldNone, New: vals}
}

func updateOld(rel *segment.Relation, kind segment.OldKind, old, vals []segment.Value) segment.Change {
	return segment.Change{Op: segment.OpUpdate, Rel: rel, OldKind: kind, Old: old, New: vals}
}

func deleteOld(rel *segment.Relation, kind segment.OldKind, old ...segment.Value) segment.Change {
	return segment.Change{Op: segment.OpDelete, Rel: rel, OldKind: kind, Old: old}
}

func ddl(schema, sql string) segment.Change {
	return segment.Change{Op: segment.OpDDL, Schema: schema, SQL: sql}
}

func message(prefix, content string) segment.Change {
	return segment.Change{Op: segment.OpMessage, Prefix: prefix, Content: []byte(content), Transactional: true}
}

// keyOnly returns a tuple with vals at the key columns of rel and NULL
// elsewhere, as an OldKey tuple.
func keyOnly(rel *segment.Relation, vals ...segment.Value) []segment.Value {
	out := make([]segment.Value, len(rel.Columns))
	j := 0
	for i, c := range rel.Columns {
		if c.Key {
			out[i] = vals[j]
			j++
		}
	}
	return out
}

// col makes a column; key marks a key column.
func col(name string, typeID uint32, key bool) segment.Column {
	return segment.Column{Name: name, TypeID: typeID, Key: key}
}

// literal renders v as an SQL literal, for the reference database.
func literal(v segment.Value) string {
	if v.Kind == segment.Null {
		return "NULL"
	}
	return "'" + strings.ReplaceAll(string(v.Data), "'", "''") + "'"
}

// insertSQL renders an insert of vals into rel (skipping generated
// columns) for the reference database.
func insertSQL(rel *segment.Relation, vals ...segment.Value) string {
	var cols, lits []string
	for i, c := range rel.Columns {
		if c.Generated {
			continue
		}
		cols = append(cols, pgx.Identifier{c.Name}.Sanitize())
		lits = append(lits, literal(vals[i]))
	}
	return fmt.Sprintf("INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE VALUES (%s)",
		pgx.Identifier{rel.Schema, rel.Table}.Sanitize(), strings.Join(cols, ", "), strings.Join(lits, ", "))
}

// newServerOnly starts a private PostgreSQL without databases.
func newServerOnly(t testing.TB) *testenv.Postgres {
	t.Helper()
	return testenv.StartPostgres(t)
}
