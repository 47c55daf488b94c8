package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/rxvault/rxvault/pitr"
)

// NotEmptyError is CheckEmpty's answer for a database that holds user
// objects. It wraps pitr.ErrTargetNotEmpty.
type NotEmptyError struct {
	// Target is the DSN without its password.
	Target string
	// Found lists what was found, kind by kind, e.g. "3 tables (public.a,
	// public.b, public.c)".
	Found []string
}

// Error returns one line naming the target, what it holds and the fix.
func (e *NotEmptyError) Error() string {
	return fmt.Sprintf("restore target %s is not empty: %s: restore into a new empty database (createdb NAME)",
		e.Target, strings.Join(e.Found, ", "))
}

// Unwrap returns pitr.ErrTargetNotEmpty.
func (e *NotEmptyError) Unwrap() error { return pitr.ErrTargetNotEmpty }

// namesShown is how many names of each kind the error shows.
const namesShown = 3

// userObjectsSQL lists every object a user (or template1) put in the
// database: anything with an OID at or above FirstNormalObjectId (16384),
// the first OID after initdb, except the public schema, indexes, TOAST
// tables, the implicit types that come with tables and arrays, and members
// of extensions (the extension itself is listed). Each row is a kind and a
// name; the kinds are singular nouns.
const userObjectsSQL = `
WITH objs(kind, name, classid, objid) AS (
  SELECT 'schema', pg_catalog.quote_ident(n.nspname), 'pg_namespace'::regclass, n.oid
    FROM pg_catalog.pg_namespace n
   WHERE n.oid >= 16384 AND n.nspname <> 'public'
     AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  UNION ALL
  SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
              WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
              WHEN 'f' THEN 'foreign table' ELSE 'type' END,
         pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),
         'pg_class'::regclass, c.oid
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE c.oid >= 16384 AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')
  UNION ALL
  SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END,
         pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname),
         'pg_proc'::regclass, p.oid
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
   WHERE p.oid >= 16384
  UNION ALL
  SELECT 'type', pg_catalog.format_type(t.oid, NULL), 'pg_type'::regclass, t.oid
    FROM pg_catalog.pg_type t
   WHERE t.oid >= 16384 AND t.typrelid = 0
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                      WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'i')
  UNION ALL
  SELECT 'extension', pg_catalog.quote_ident(e.extname), 'pg_extension'::regclass, e.oid
    FROM pg_catalog.pg_extension e WHERE e.extname <> 'plpgsql'
  UNION ALL
  SELECT 'event trigger', pg_catalog.quote_ident(evtname), 'pg_event_trigger'::regclass, oid
    FROM pg_catalog.pg_event_trigger
  UNION ALL
  SELECT 'publication', pg_catalog.quote_ident(pubname), 'pg_publication'::regclass, oid
    FROM pg_catalog.pg_publication
  UNION ALL
  SELECT 'subscription', pg_catalog.quote_ident(subname), 'pg_subscription'::regclass, oid
    FROM pg_catalog.pg_subscription WHERE subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
  UNION ALL
  SELECT 'large object', l.oid::text, 'pg_largeobject_metadata'::regclass, l.oid
    FROM pg_catalog.pg_largeobject_metadata l
  UNION ALL
  SELECT 'operator', pg_catalog.quote_ident(n.nspname) || '.' || o.oprname, 'pg_operator'::regclass, o.oid
    FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace WHERE o.oid >= 16384
  UNION ALL
  SELECT 'operator family', pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(f.opfname), 'pg_opfamily'::regclass, f.oid
    FROM pg_catalog.pg_opfamily f JOIN pg_catalog.pg_namespace n ON n.oid = f.opfnamespace WHERE f.oid >= 16384
  UNION ALL
  SELECT 'collation', pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.collname), 'pg_collation'::regclass, c.oid
    FROM pg_catalog.pg_collation c JOIN pg_catalog.pg_namespace n ON n.oid = c.collnamespace WHERE c.oid >= 16384
  UNION ALL
  SELECT 'conversion', pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.conname), 'pg_conversion'::regclass, c.oid
    FROM pg_catalog.pg_conversion c JOIN pg_catalog.pg_namespace n ON n.oid = c.connamespace WHERE c.oid >= 16384
  UNION ALL
  SELECT 'text search configuration', pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.cfgname), 'pg_ts_config'::regclass, c.oid
    FROM pg_catalog.pg_ts_config c JOIN pg_catalog.pg_namespace n ON n.oid = c.cfgnamespace WHERE c.oid >= 16384
  UNION ALL
  SELECT 'text search dictionary', pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(d.dictname), 'pg_ts_dict'::regclass, d.oid
    FROM pg_catalog.pg_ts_dict d JOIN pg_catalog.pg_namespace n ON n.oid = d.dictnamespace WHERE d.oid >= 16384
  UNION ALL
  SELECT 'foreign-data wrapper', pg_catalog.quote_ident(fdwname), 'pg_foreign_data_wrapper'::regclass, oid
    FROM pg_catalog.pg_foreign_data_wrapper WHERE oid >= 16384
  UNION ALL
  SELECT 'foreign server', pg_catalog.quote_ident(srvname), 'pg_foreign_server'::regclass, oid
    FROM pg_catalog.pg_foreign_server WHERE oid >= 16384
  UNION ALL
  SELECT 'cast', pg_catalog.format_type(castsource, NULL) || ' AS ' || pg_catalog.format_type(casttarget, NULL), 'pg_cast'::regclass, oid
    FROM pg_catalog.pg_cast WHERE oid >= 16384
  UNION ALL
  SELECT 'language', pg_catalog.quote_ident(lanname), 'pg_language'::regclass, oid
    FROM pg_catalog.pg_language WHERE oid >= 16384 AND lanname <> 'plpgsql'
  UNION ALL
  SELECT 'access method', pg_catalog.quote_ident(amname), 'pg_am'::regclass, oid
    FROM pg_catalog.pg_am WHERE oid >= 16384
)
SELECT kind, count(*) OVER (PARTITION BY kind), name
  FROM objs o
 WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid = o.classid AND d.objid = o.objid AND d.deptype = 'e')
 ORDER BY pg_catalog.array_position(ARRAY['table', 'view', 'materialized view', 'sequence', 'foreign table',
            'schema', 'extension', 'type', 'function', 'procedure', 'aggregate'], kind) NULLS LAST, kind, name`

// CheckEmpty fails with a *NotEmptyError (wrapping pitr.ErrTargetNotEmpty)
// if the database holds any user object: a schema other than public, a
// table (and so any row), view, sequence, function, type, extension other
// than plpgsql, event trigger, publication, large object, operator, cast…
// The error is one line naming the target (without password), up to three
// names of each kind found, and the fix.
func (t *Target) CheckEmpty(ctx context.Context) error {
	if err := t.usableBeforeApply("CheckEmpty"); err != nil {
		return err
	}
	rows, err := t.conn.Query(ctx, userObjectsSQL)
	if err != nil {
		t.connLost(err)
		return fmt.Errorf("restore target %s: list objects: %w", t.name, err)
	}
	defer rows.Close()
	var found []string
	var kind string
	var names []string
	var count int64
	flush := func() {
		if kind == "" {
			return
		}
		if len(names) < int(count) {
			names = append(names, "…")
		}
		found = append(found, fmt.Sprintf("%d %s (%s)", count, plural(kind, count), strings.Join(names, ", ")))
	}
	for rows.Next() {
		var k, name string
		var n int64
		if err := rows.Scan(&k, &n, &name); err != nil {
			return fmt.Errorf("restore target %s: list objects: %w", t.name, err)
		}
		if k != kind {
			flush()
			kind, count, names = k, n, nil
		}
		if len(names) < namesShown {
			names = append(names, name)
		}
	}
	if err := rows.Err(); err != nil {
		t.connLost(err)
		return fmt.Errorf("restore target %s: list objects: %w", t.name, err)
	}
	flush()
	if len(found) > 0 {
		return &NotEmptyError{Target: t.name, Found: found}
	}
	return nil
}

func plural(kind string, n int64) string {
	switch {
	case n == 1:
		return kind
	case strings.HasSuffix(kind, "s"):
		return kind + "es"
	case strings.HasSuffix(kind, "y") && !strings.HasSuffix(kind, "ey"):
		return strings.TrimSuffix(kind, "y") + "ies"
	}
	return kind + "s"
}
