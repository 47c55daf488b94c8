package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// minServerVersion is PostgreSQL 14: pgoutput protocol version 2 (streamed
// transactions) and the messages option.
const minServerVersion = 140000

// role is what the connected role may do.
type role struct {
	name        string // quoted as SQL needs it
	superuser   bool
	replication bool
}

// checkServer checks the server version and wal_level, and returns the
// connected role.
func checkServer(ctx context.Context, conn *pgx.Conn) (role, error) {
	var ver, walLevel string
	var rl role
	err := conn.QueryRow(ctx, `SELECT current_setting('server_version_num'), current_setting('wal_level'),
		quote_ident(r.rolname), r.rolsuper, r.rolreplication FROM pg_roles r WHERE r.rolname = current_user`).
		Scan(&ver, &walLevel, &rl.name, &rl.superuser, &rl.replication)
	if err != nil {
		return rl, fmt.Errorf("postgres capture: check server: %w", err)
	}
	if v, _ := strconv.Atoi(ver); v < minServerVersion {
		return rl, fmt.Errorf("postgres capture: server version %s is older than PostgreSQL 14, which streaming logical decoding needs; fix: upgrade the server", ver)
	}
	if walLevel != "logical" {
		return rl, fmt.Errorf("postgres capture: wal_level is %s, not logical; fix: ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL", walLevel)
	}
	if !rl.superuser && !rl.replication {
		return rl, fmt.Errorf("postgres capture: role %s may not stream changes; fix: ALTER ROLE %s REPLICATION;", rl.name, rl.name)
	}
	return rl, nil
}

// table is one captured table and what its replica identity allows.
type table struct {
	schema, name string
	qualified    string // quoted as SQL needs it: public."Orders"
	// ident is pg_class.relreplident: d default (primary key), n nothing,
	// f full, i index.
	ident byte
	// usable reports that updates and deletes carry enough of the old
	// row to find it: FULL, a primary key under DEFAULT, or an existing
	// replica identity index under INDEX.
	usable bool
}

// tableColumns is the select list of capturedTables' queries, for a
// pg_class c joined to its pg_namespace n.
const tableColumns = `n.nspname, c.relname, format('%I.%I', n.nspname, c.relname), c.relreplident::text,
	CASE c.relreplident
		WHEN 'f' THEN true
		WHEN 'd' THEN EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
		WHEN 'i' THEN EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)
		ELSE false END`

// capturedTables lists the tables whose changes the publication sends, or
// would send once created: the leaf tables (partitions stand in for their
// partitioned parents, as pgoutput sends them by default).
func capturedTables(ctx context.Context, conn *pgx.Conn, pub string, pubExists bool, names []string) ([]table, error) {
	var rows pgx.Rows
	var err error
	switch {
	case pubExists:
		rows, err = conn.Query(ctx, `SELECT `+tableColumns+`
			FROM pg_publication_tables p
			JOIN pg_namespace n ON n.nspname = p.schemaname
			JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename
			WHERE p.pubname = $1 AND c.relkind = 'r'
			ORDER BY 1, 2`, pub)
	case len(names) == 0:
		rows, err = conn.Query(ctx, `SELECT `+tableColumns+`
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND c.oid >= 16384
				AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'rxvault')
				AND n.nspname NOT LIKE 'pg\_%'
			ORDER BY 1, 2`)
	default:
		oids, err := resolveTables(ctx, conn, names)
		if err != nil {
			return nil, err
		}
		rows, err = conn.Query(ctx, `SELECT DISTINCT `+tableColumns+`
			FROM unnest($1::regclass[]) AS t(r)
			CROSS JOIN LATERAL pg_partition_tree(t.r) pt
			JOIN pg_class c ON c.oid = pt.relid
			JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE pt.isleaf AND c.relkind = 'r'
			ORDER BY 1, 2`, oids)
		if err != nil {
			return nil, fmt.Errorf("postgres capture: list tables: %w", err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("postgres capture: list tables: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (table, error) {
		var t table
		var ident string
		err := row.Scan(&t.schema, &t.name, &t.qualified, &ident, &t.usable)
		if ident != "" {
			t.ident = ident[0]
		}
		return t, err
	})
}

// resolveTables resolves configured table names to their oids, refusing
// names that do not exist or are not tables.
func resolveTables(ctx context.Context, conn *pgx.Conn, names []string) ([]uint32, error) {
	oids := make([]uint32, 0, len(names))
	for _, name := range names {
		var oid *uint32
		var kind *string
		err := conn.QueryRow(ctx, `SELECT to_regclass($1)::oid, (SELECT c.relkind::text FROM pg_class c WHERE c.oid = to_regclass($1))`, name).Scan(&oid, &kind)
		if err != nil {
			return nil, fmt.Errorf("postgres capture: look up table %s: %w", name, err)
		}
		if oid == nil {
			return nil, fmt.Errorf("postgres capture: table %s does not exist; fix: create it, or remove it from the captured tables (write names as schema.table)", name)
		}
		if kind == nil || *kind != "r" && *kind != "p" {
			return nil, fmt.Errorf("postgres capture: %s is not a table; fix: remove it from the captured tables", name)
		}
		oids = append(oids, *oid)
	}
	return oids, nil
}

// refuseUnusable fails, naming every table whose updates and deletes
// could not be replayed exactly, with the statement that fixes each.
func refuseUnusable(tables []table) error {
	var bad []string
	for _, t := range tables {
		if !t.usable {
			bad = append(bad, t.qualified)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	var fix strings.Builder
	for _, b := range bad {
		fmt.Fprintf(&fix, " ALTER TABLE %s REPLICA IDENTITY FULL;", b)
	}
	return fmt.Errorf("postgres capture: refusing to capture %s: without a primary key (or a replica identity index, or REPLICA IDENTITY FULL) their updates and deletes could not be replayed exactly (and PostgreSQL would refuse the application's updates once published); fix: add a primary key, or run:%s",
		strings.Join(bad, ", "), fix.String())
}
