package randpg

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Print is a database's fingerprint, computed by SQL: for every user
// table its rows (count and the MD5 of their sorted text forms) and its
// definition from the catalogs; every user type, sequence and extension.
// Keys name the object ("table public.t rows", "type s.e", ...).
type Print map[string]string

// oracleSettings pin everything that shapes a value's text form, so two
// databases with other defaults print equal values alike.
var oracleSettings = []string{
	"SET TimeZone = 'UTC'", "SET DateStyle = 'ISO, YMD'", "SET IntervalStyle = 'postgres'",
	"SET extra_float_digits = 3", "SET bytea_output = 'hex'", "SET search_path = pg_catalog",
	"SET xmloption = content", "SET transform_null_equals = off", "SET statement_timeout = 0",
	"SET lock_timeout = 0", "SET standard_conforming_strings = on",
}

// userRel is the condition for a user relation c in namespace n: not a
// system schema, not rxvault's, not a member of an extension.
const userRel = `n.nspname NOT IN ('pg_catalog', 'information_schema', 'rxvault') AND n.nspname !~ '^pg_(toast|temp)'
	AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`

// catalogQueries compute the definition part of a Print: each returns
// rows of (key, value).
var catalogQueries = []string{
	// Tables: kind, persistence, replica identity, partitioning, parents,
	// options.
	`SELECT 'table ' || format('%I.%I', n.nspname, c.relname) || ' def',
		concat_ws(' | ', c.relkind, c.relpersistence, c.relreplident, c.relispartition, pg_get_partkeydef(c.oid),
			pg_get_expr(c.relpartbound, c.oid), c.reloptions::text,
			(SELECT string_agg(i.inhparent::regclass::text, ',' ORDER BY i.inhseqno) FROM pg_inherits i WHERE i.inhrelid = c.oid))
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind IN ('r', 'p') AND ` + userRel,
	// Columns in order: name, type, not null, default, identity,
	// generated, collation, storage, inheritance.
	`SELECT 'table ' || format('%I.%I', n.nspname, c.relname) || ' columns',
		string_agg(concat_ws(' ', quote_ident(a.attname), format_type(a.atttypid, a.atttypmod),
			CASE WHEN a.attnotnull THEN 'not null' END, 'default(' || pg_get_expr(ad.adbin, ad.adrelid) || ')',
			'identity(' || nullif(a.attidentity::text, '') || ')', 'generated(' || nullif(a.attgenerated::text, '') || ')',
			'collate(' || co.collname || ')', 'storage(' || a.attstorage::text || ')', 'local(' || a.attislocal || ',' || a.attinhcount || ')'),
			E'\n' ORDER BY a.attnum)
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
	LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
	LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 100
	WHERE c.relkind IN ('r', 'p') AND ` + userRel + `
	GROUP BY n.nspname, c.relname`,
	// Constraints (with deferrability).
	`SELECT 'table ' || format('%I.%I', n.nspname, c.relname) || ' constraints',
		string_agg(quote_ident(k.conname) || ' ' || pg_get_constraintdef(k.oid) || ' local(' || k.conislocal || ')', E'\n' ORDER BY k.conname, pg_get_constraintdef(k.oid))
	FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE ` + userRel + `
	GROUP BY n.nspname, c.relname`,
	// Indexes, and which is the replica identity.
	`SELECT 'table ' || format('%I.%I', n.nspname, c.relname) || ' indexes',
		string_agg(pg_get_indexdef(i.indexrelid) || CASE WHEN i.indisreplident THEN ' (replica identity)' ELSE '' END, E'\n' ORDER BY pg_get_indexdef(i.indexrelid))
	FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE ` + userRel + `
	GROUP BY n.nspname, c.relname`,
	// Types: enums (labels in order), domains, composites.
	`SELECT 'type ' || format('%I.%I', n.nspname, t.typname),
		concat_ws(' | ', t.typtype::text,
			(SELECT string_agg(quote_literal(e.enumlabel), ',' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid),
			CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) || ' notnull=' || t.typnotnull || ' default=' || coalesce(t.typdefault, '') END,
			(SELECT string_agg(k.conname || ' ' || pg_get_constraintdef(k.oid), ',' ORDER BY k.conname) FROM pg_constraint k WHERE k.contypid = t.oid),
			(SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), ',' ORDER BY a.attnum)
				FROM pg_class r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
				WHERE r.oid = t.typrelid AND r.relkind = 'c'))
	FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
	WHERE t.typtype IN ('e', 'd', 'c') AND (t.typrelid = 0 OR (SELECT r.relkind FROM pg_class r WHERE r.oid = t.typrelid) = 'c')
		AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'rxvault') AND n.nspname !~ '^pg_'
		AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')`,
	// Sequences' definitions (values come from seqValues).
	`SELECT 'sequence ' || format('%I.%I', n.nspname, c.relname) || ' def',
		concat_ws(' ', format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
			(SELECT d.refobjid::regclass::text || '.' || d.refobjsubid FROM pg_depend d
				WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0))
	FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE ` + userRel,
	// Extensions.
	`SELECT 'extension ' || e.extname, e.extversion || ' ' || n.nspname
	FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace`,
	// Schemas.
	`SELECT 'schema ' || quote_ident(n.nspname), ''
	FROM pg_namespace n
	WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'rxvault') AND n.nspname !~ '^pg_'`,
}

// Fingerprint computes the Print of conn's database in one repeatable-read
// read-only transaction (one snapshot), under pinned session settings
// (which it leaves set on conn).
func Fingerprint(ctx context.Context, conn *pgx.Conn) (Print, error) {
	for _, s := range oracleSettings {
		if _, err := conn.Exec(ctx, s); err != nil {
			return nil, fmt.Errorf("%s: %w", s, err)
		}
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only
	p := Print{}
	for _, q := range catalogQueries {
		if err := collect(ctx, tx, q, p); err != nil {
			return nil, err
		}
	}
	rows, err := tx.Query(ctx, `SELECT format('%I.%I', n.nspname, c.relname), c.relkind::text
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'S') AND `+userRel+` ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	type rel struct{ name, kind string }
	rels, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rel, error) {
		var x rel
		err := r.Scan(&x.name, &x.kind)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	for _, r := range rels {
		if r.kind == "S" {
			var v string
			if err := tx.QueryRow(ctx, "SELECT last_value || ' ' || is_called FROM "+r.name).Scan(&v); err != nil {
				return nil, fmt.Errorf("sequence %s: %w", r.name, err)
			}
			p["sequence "+r.name+" value"] = v
			continue
		}
		var v string
		q := `SELECT count(*) || ' rows, md5 ' || coalesce(md5(string_agg(x, E'\n' ORDER BY x COLLATE "C")), '-')
			FROM (SELECT t::text AS x FROM ONLY ` + r.name + ` t) s`
		if err := tx.QueryRow(ctx, q).Scan(&v); err != nil {
			return nil, fmt.Errorf("rows of %s: %w", r.name, err)
		}
		p["table "+r.name+" rows"] = v
	}
	return p, nil
}

func collect(ctx context.Context, tx pgx.Tx, q string, p Print) error {
	rows, err := tx.Query(ctx, q)
	if err != nil {
		return fmt.Errorf("fingerprint: %w\n%s", err, q)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var v *string
		if err := rows.Scan(&k, &v); err != nil {
			return err
		}
		if v != nil {
			p[k] = *v
		} else {
			p[k] = "(null)"
		}
	}
	return rows.Err()
}

// Diff lists how got differs from p, one line per key, or nothing.
func (p Print) Diff(got Print) []string {
	keys := slices.Sorted(maps.Keys(p))
	for k := range got {
		if _, ok := p[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []string
	for _, k := range keys {
		a, okA := p[k]
		b, okB := got[k]
		switch {
		case !okA:
			out = append(out, fmt.Sprintf("%s: not in the source, restored as %s", k, short(b)))
		case !okB:
			out = append(out, fmt.Sprintf("%s: missing from the restore (source %s)", k, short(a)))
		case a != b:
			out = append(out, fmt.Sprintf("%s: source %s, restored %s", k, short(a), short(b)))
		}
	}
	return out
}

func short(s string) string {
	s = strings.ReplaceAll(s, "\n", " ⏎ ")
	if len(s) > 600 {
		return s[:600] + "…"
	}
	return s
}

// RowTexts returns the text form of every row of table (qualified and
// quoted), sorted, each cut to max bytes: for explaining a difference.
func RowTexts(ctx context.Context, conn *pgx.Conn, table string, max int) ([]string, error) {
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT left(t::text, %d) FROM ONLY %s t ORDER BY t::text COLLATE "C"`, max, table))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
