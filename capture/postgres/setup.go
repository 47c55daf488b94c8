package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ensureObjects installs or refreshes rxvault's schema, functions and event
// triggers (setupsql.go) unless the current revision is in place. Event
// triggers need a superuser; another role gets an error saying so.
func ensureObjects(ctx context.Context, conn *pgx.Conn, rl role, dbName string) error {
	var current bool
	if err := conn.QueryRow(ctx, setupStateSQL, setupVersion).Scan(&current); err != nil {
		return fmt.Errorf("postgres capture: check DDL capture objects: %w", err)
	}
	if current {
		return nil
	}
	if !rl.superuser {
		return fmt.Errorf("postgres capture: DDL capture (schema rxvault and its event triggers) is missing or outdated in database %s, and role %s cannot install it: event triggers need a superuser; fix: run rxvault once as a superuser against this database", dbName, rl.name)
	}
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, q := range installSQL {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres capture: install DDL capture objects: %w", err)
	}
	return nil
}

// publication is an existing publication's definition.
type publication struct {
	allTables bool
	// publishes reports insert, update, delete and truncate all on.
	publishesAll bool
	// tables are the oids of the tables listed in it (FOR TABLE).
	tables []uint32
}

// lookupPublication returns the publication named name, or nil.
func lookupPublication(ctx context.Context, conn *pgx.Conn, name string) (*publication, error) {
	var p publication
	err := conn.QueryRow(ctx, `SELECT p.puballtables, p.pubinsert AND p.pubupdate AND p.pubdelete AND p.pubtruncate,
			coalesce((SELECT array_agg(r.prrelid::oid ORDER BY r.prrelid) FROM pg_publication_rel r WHERE r.prpubid = p.oid), '{}')
		FROM pg_publication p WHERE p.pubname = $1`, name).Scan(&p.allTables, &p.publishesAll, &p.tables)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("postgres capture: look up publication %s: %w", name, err)
	}
	return &p, nil
}

// checkPublication checks that an existing publication publishes what the
// configuration asks for.
func checkPublication(ctx context.Context, conn *pgx.Conn, cfg *Config, p *publication) error {
	if !p.publishesAll {
		return fmt.Errorf("postgres capture: publication %s does not publish every operation; fix: ALTER PUBLICATION %s SET (publish = 'insert, update, delete, truncate');", cfg.Publication, cfg.Publication)
	}
	if len(cfg.Tables) == 0 {
		if !p.allTables {
			return fmt.Errorf("postgres capture: publication %s lists tables, but the configuration captures all tables; fix: list the tables in the configuration, or DROP PUBLICATION %s; so rxvault creates it FOR ALL TABLES", cfg.Publication, cfg.Publication)
		}
		return nil
	}
	if p.allTables {
		return fmt.Errorf("postgres capture: publication %s is FOR ALL TABLES, but the configuration lists tables; fix: clear the table list, or DROP PUBLICATION %s; so rxvault creates it for the listed tables", cfg.Publication, cfg.Publication)
	}
	want, err := resolveTables(ctx, conn, cfg.Tables)
	if err != nil {
		return err
	}
	if !sameOIDs(want, p.tables) {
		return fmt.Errorf("postgres capture: publication %s does not list exactly the configured tables; fix: ALTER PUBLICATION %s SET TABLE %s;", cfg.Publication, cfg.Publication, strings.Join(cfg.Tables, ", "))
	}
	return nil
}

func sameOIDs(a, b []uint32) bool {
	set := make(map[uint32]bool, len(a))
	for _, o := range a {
		set[o] = true
	}
	if len(set) != len(b) {
		return false
	}
	for _, o := range b {
		if !set[o] {
			return false
		}
	}
	return true
}

// createPublication creates the publication for every table or for the
// configured ones, publishing every operation.
func createPublication(ctx context.Context, conn *pgx.Conn, cfg *Config) error {
	target := "ALL TABLES"
	if len(cfg.Tables) > 0 {
		oids, err := resolveTables(ctx, conn, cfg.Tables)
		if err != nil {
			return err
		}
		// Let the server quote the names it resolved.
		var names []string
		if err := conn.QueryRow(ctx, `SELECT array_agg(format('%I.%I', n.nspname, c.relname) ORDER BY n.nspname, c.relname)
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = ANY ($1::oid[])`, oids).Scan(&names); err != nil {
			return fmt.Errorf("postgres capture: quote table names: %w", err)
		}
		target = "TABLE " + strings.Join(names, ", ")
	}
	q := fmt.Sprintf("CREATE PUBLICATION %s FOR %s WITH (publish = 'insert, update, delete, truncate')", cfg.Publication, target)
	if _, err := conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("postgres capture: create publication %s: %w; fix: run as a superuser (FOR ALL TABLES) or as the tables' owner: %s;", cfg.Publication, err, q)
	}
	return nil
}

// checkSequences runs the heartbeat's sequence query once, so that a role
// that may not read the captured sequences is refused at Open rather than
// failing every heartbeat.
func checkSequences(ctx context.Context, conn *pgx.Conn, rl role, schemas []string) error {
	var js string
	err := conn.QueryRow(ctx, `SELECT rxvault.sequences($1::text[])`, schemas).Scan(&js)
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42501" { // insufficient_privilege
		return fmt.Errorf("postgres capture: role %s cannot read the captured sequences (%s); fix: GRANT USAGE ON SCHEMA rxvault TO %s; and GRANT SELECT ON ALL SEQUENCES IN SCHEMA <each captured schema> TO %s;",
			rl.name, pe.Message, rl.name, rl.name)
	}
	return fmt.Errorf("postgres capture: read sequences: %w", err)
}
