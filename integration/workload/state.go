package workload

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"
)

// State is a database's content summarized: a checksum and row count per
// user table, and every sequence's value.
type State struct {
	Tables    map[string]string // schema.table -> "rows:md5"
	Sequences map[string]string // schema.sequence -> "last_value,is_called"
}

// Snapshot summarizes the user tables and sequences of conn's database in
// one repeatable-read transaction. A row's text form covers every column
// exactly (numeric scale, bytea bytes, jsonb, arrays, NULLs); rows are
// sorted by it, so physical order does not matter.
func Snapshot(ctx context.Context, conn *pgx.Conn) (State, error) {
	s := State{Tables: map[string]string{}, Sequences: map[string]string{}}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return s, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only
	tables, err := names(ctx, tx, `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'rxvault') AND n.nspname NOT LIKE 'pg_toast%'`)
	if err != nil {
		return s, err
	}
	for _, t := range tables {
		var sum string
		q := fmt.Sprintf(`SELECT count(*) || ':' || coalesce(md5(string_agg(x, E'\n' ORDER BY x)), '') FROM (SELECT t::text AS x FROM %s t) s`, t)
		if err := tx.QueryRow(ctx, q).Scan(&sum); err != nil {
			return s, fmt.Errorf("checksum %s: %w", t, err)
		}
		s.Tables[t] = sum
	}
	seqs, err := names(ctx, tx, `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'rxvault')`)
	if err != nil {
		return s, err
	}
	for _, q := range seqs {
		var v string
		if err := tx.QueryRow(ctx, fmt.Sprintf(`SELECT last_value || ',' || is_called FROM %s`, q)).Scan(&v); err != nil {
			return s, fmt.Errorf("sequence %s: %w", q, err)
		}
		s.Sequences[q] = v
	}
	return s, nil
}

func names(ctx context.Context, tx pgx.Tx, q string) ([]string, error) {
	rows, err := tx.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Diff lists how got differs from s, or nothing when they are equal.
func (s State) Diff(got State) []string {
	var out []string
	for _, t := range sortedKeys(s.Tables, got.Tables) {
		if a, b := s.Tables[t], got.Tables[t]; a != b {
			out = append(out, fmt.Sprintf("table %s: want %s, got %s", t, orMissing(a), orMissing(b)))
		}
	}
	for _, q := range sortedKeys(s.Sequences, got.Sequences) {
		if a, b := s.Sequences[q], got.Sequences[q]; a != b {
			out = append(out, fmt.Sprintf("sequence %s: want %s, got %s", q, orMissing(a), orMissing(b)))
		}
	}
	return out
}

func sortedKeys(a, b map[string]string) []string {
	m := maps.Clone(a)
	maps.Copy(m, b)
	return slices.Sorted(maps.Keys(m))
}

func orMissing(s string) string {
	if s == "" {
		return "(missing)"
	}
	return s
}
