package postgres

import "strings"

// The SQL objects rxvault installs in the captured database, in schema
// rxvault. setupVersion names this revision of them: Open reinstalls the
// objects when the installed comment differs.
const setupVersion = "rxvault capture objects v4"

// ddlCommandEndSQL defines the ddl_command_end event trigger function. It
// runs as the user running the DDL (not SECURITY DEFINER: it needs nothing
// beyond pg_logical_emit_message, which PUBLIC may execute) and emits one
// transactional logical message per client command, in the DDL's own
// transaction, so the message reaches the stream in commit order with the
// rest of that transaction:
//
//	prefix rxvault.ddl
//	content {"search_path": ..., "tag": ..., "sql": current_query(), "settings": {...}}
//
// search_path is the session's setting with $user replaced by the current
// user's (quoted) name, so replaying it as another user resolves names the
// same way. settings holds the session's value of each of DDLSettings,
// which change what DDL computes (literals in defaults, conversions of
// existing rows), keyed by name.
//
// Deduplication: a query string holding several DDL commands fires the
// trigger once per command, but its text must be replayed once. The key
// statement_timestamp() + md5(current_query()) is the same for every
// command of one client message and differs between messages (the
// timestamp is taken when the message arrives), so the trigger emits only
// when the key differs from the last one emitted in this transaction,
// which is kept in the transaction-local setting rxvault.ddl_key.
//
// CREATE TABLE AS and SELECT INTO also write rows, which the stream
// carries as inserts before this trigger runs. Replaying the statement
// would compute those rows again (differently, with volatile functions)
// on top of the inserts, so for them the trigger emits instead a CREATE
// TABLE of the new, empty table (column names, types, collations,
// persistence, storage parameters, tablespace) with "created": its oid;
// the reader moves that DDL before the table's first insert.
//
// Skipped: commands whose every object is temporary, belongs to rxvault,
// or is a publication or subscription (pg_dump leaves those out too); for
// DROP commands, which report no objects here, the sql_drop trigger leaves
// its verdict in rxvault.ddl_drop.
var ddlCommandEndSQL = `
CREATE OR REPLACE FUNCTION rxvault.ddl_command_end() RETURNS event_trigger
LANGUAGE plpgsql AS $rxvault$
DECLARE
	k text;
	n integer := 0;
	keep boolean := false;
	r record;
	sp text;
	created text;
	st json;
BEGIN
	k := pg_catalog.statement_timestamp()::text || ' ' || pg_catalog.md5(pg_catalog.current_query());
	sp := pg_catalog.current_setting('search_path');
	sp := pg_catalog.replace(sp, '"$user"', pg_catalog.quote_ident(current_user::text));
	sp := pg_catalog.replace(sp, '$user', pg_catalog.quote_ident(current_user::text));
	FOR r IN SELECT * FROM pg_catalog.pg_event_trigger_ddl_commands() LOOP
		n := n + 1;
		IF r.schema_name IS NOT NULL AND (r.schema_name = 'pg_temp' OR r.schema_name LIKE 'pg\_temp\_%' OR r.schema_name = 'rxvault')
			OR (r.object_type = 'schema' AND r.object_identity = 'rxvault')
			OR r.object_type IN ('publication', 'publication relation', 'publication namespace', 'subscription') THEN
			CONTINUE;
		END IF;
		IF r.command_tag IN ('CREATE TABLE AS', 'SELECT INTO') AND r.object_type = 'table' THEN
			SELECT 'CREATE ' || CASE c.relpersistence WHEN 'u' THEN 'UNLOGGED ' ELSE '' END || 'TABLE '
				|| pg_catalog.format('%I.%I', ns.nspname, c.relname) || ' ('
				|| coalesce((
					SELECT pg_catalog.string_agg(pg_catalog.format('%I %s', a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod))
						|| CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
							THEN ' COLLATE ' || pg_catalog.format('%I.%I', cn.nspname, co.collname) ELSE '' END,
						', ' ORDER BY a.attnum)
					FROM pg_catalog.pg_attribute a
					JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
					LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
					LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
					WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
				|| ')'
				|| CASE WHEN c.reloptions IS NOT NULL THEN ' WITH (' || pg_catalog.array_to_string(c.reloptions, ', ') || ')' ELSE '' END
				|| CASE WHEN c.reltablespace <> 0 THEN ' TABLESPACE '
					|| pg_catalog.quote_ident((SELECT s.spcname FROM pg_catalog.pg_tablespace s WHERE s.oid = c.reltablespace)) ELSE '' END
			INTO created
			FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace ns ON ns.oid = c.relnamespace
			WHERE c.oid = r.objid;
			PERFORM pg_catalog.pg_logical_emit_message(true, 'rxvault.ddl',
				pg_catalog.json_build_object('search_path', sp, 'tag', r.command_tag, 'sql', created, 'created', r.objid::bigint)::text);
			CONTINUE;
		END IF;
		keep := true;
	END LOOP;
	IF n = 0 THEN
		keep := pg_catalog.current_setting('rxvault.ddl_drop', true) IS DISTINCT FROM 'skip';
	END IF;
	PERFORM pg_catalog.set_config('rxvault.ddl_drop', '', true);
	IF NOT keep OR pg_catalog.current_setting('rxvault.ddl_key', true) IS NOT DISTINCT FROM k THEN
		RETURN;
	END IF;
	PERFORM pg_catalog.set_config('rxvault.ddl_key', k, true);
	SELECT pg_catalog.json_object_agg(s, pg_catalog.current_setting(s, true)) INTO st
		FROM pg_catalog.unnest(ARRAY['` + strings.Join(DDLSettings, "', '") + `']) s;
	PERFORM pg_catalog.pg_logical_emit_message(true, 'rxvault.ddl',
		pg_catalog.json_build_object('search_path', sp, 'tag', tg_tag, 'sql', pg_catalog.current_query(), 'settings', st)::text);
END
$rxvault$`

// DDLSettings are the session settings recorded with each DDL statement
// (see ddlCommandEndSQL): those that change what a statement computes
// when it parses a literal or converts a value, so replay can run it
// under the source session's values (see pitr/postgres). The lc_*
// settings are left out: they name operating-system locales, which the
// restore server need not have, and replay would fail on them.
var DDLSettings = []string{
	"TimeZone", "DateStyle", "IntervalStyle", "extra_float_digits", "bytea_output",
	"standard_conforming_strings", "backslash_quote", "xmloption", "transform_null_equals", "array_nulls",
	"timezone_abbreviations", "default_text_search_config",
}

// sqlDropSQL defines the sql_drop event trigger function: it records in
// rxvault.ddl_drop whether the DROP about to end touched anything worth
// replaying (an original object that is not temporary, not rxvault's and
// not a publication or subscription).
const sqlDropSQL = `
CREATE OR REPLACE FUNCTION rxvault.sql_drop() RETURNS event_trigger
LANGUAGE plpgsql AS $rxvault$
BEGIN
	PERFORM pg_catalog.set_config('rxvault.ddl_drop',
		CASE WHEN EXISTS (
			SELECT 1 FROM pg_catalog.pg_event_trigger_dropped_objects() d
			WHERE d.original AND NOT d.is_temporary
				AND d.schema_name IS DISTINCT FROM 'rxvault'
				AND NOT (d.object_type = 'schema' AND d.object_identity = 'rxvault')
				AND d.object_type NOT IN ('publication', 'publication relation', 'publication namespace', 'subscription'))
		THEN 'keep' ELSE 'skip' END, true);
END
$rxvault$`

// sequencesSQL defines rxvault.sequences(schemas): a JSON object of every
// permanent or unlogged sequence in the given schemas (NULL: every schema
// but the system ones and rxvault), keyed by its quoted qualified name
// (format('%I.%I'), usable as a regclass literal):
//
//	{"public.orders_id_seq": {"last_value": "42", "is_called": true}, ...}
//
// It reads each sequence itself (pg_sequences hides last_value when
// is_called is false), in one dynamic query, as the calling user, who
// needs SELECT on every sequence. A sequence dropped or renamed between
// the listing and the read (by DDL committing meanwhile) makes the read
// fail; it then lists again, up to 10 times: each listing is a new
// snapshot, which sees that DDL.
const sequencesSQL = `
CREATE OR REPLACE FUNCTION rxvault.sequences(schemas text[]) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $rxvault$
DECLARE
	q text;
	res text;
BEGIN
	FOR attempt IN 1..10 LOOP
		SELECT string_agg(pg_catalog.format(
				'SELECT %L AS k, last_value::text AS v, is_called AS c FROM %I.%I',
				pg_catalog.format('%I.%I', n.nspname, c.relname), n.nspname, c.relname),
			' UNION ALL ' ORDER BY n.nspname, c.relname)
		INTO q
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'S' AND c.relpersistence <> 't'
			AND CASE WHEN schemas IS NULL
				THEN n.nspname NOT IN ('pg_catalog', 'information_schema', 'rxvault') AND n.nspname NOT LIKE 'pg\_%'
				ELSE n.nspname = ANY (schemas) END;
		IF q IS NULL THEN
			RETURN '{}';
		END IF;
		BEGIN
			EXECUTE 'SELECT pg_catalog.json_object_agg(k, pg_catalog.json_build_object(''last_value'', v, ''is_called'', c) ORDER BY k)::text FROM ('
				|| q || ') s' INTO res;
			RETURN res;
		EXCEPTION WHEN undefined_table THEN
			IF attempt = 10 THEN
				RAISE;
			END IF;
		END;
	END LOOP;
END
$rxvault$`

// installSQL installs or refreshes everything, in one transaction. Event
// triggers are ENABLE ALWAYS so DDL is captured even in sessions with
// session_replication_role = replica.
var installSQL = []string{
	`CREATE SCHEMA IF NOT EXISTS rxvault`,
	ddlCommandEndSQL,
	sqlDropSQL,
	sequencesSQL,
	`DROP EVENT TRIGGER IF EXISTS rxvault_ddl`,
	`DROP EVENT TRIGGER IF EXISTS rxvault_drop`,
	`CREATE EVENT TRIGGER rxvault_ddl ON ddl_command_end EXECUTE FUNCTION rxvault.ddl_command_end()`,
	`CREATE EVENT TRIGGER rxvault_drop ON sql_drop EXECUTE FUNCTION rxvault.sql_drop()`,
	`ALTER EVENT TRIGGER rxvault_ddl ENABLE ALWAYS`,
	`ALTER EVENT TRIGGER rxvault_drop ENABLE ALWAYS`,
	`COMMENT ON SCHEMA rxvault IS '` + setupVersion + `'`,
}

// setupStateSQL reports whether the installed objects are this revision
// and both event triggers are present and enabled.
const setupStateSQL = `
SELECT
	coalesce((SELECT pg_catalog.obj_description(n.oid, 'pg_namespace') = $1
		FROM pg_catalog.pg_namespace n WHERE n.nspname = 'rxvault'), false)
	AND (SELECT count(*) FROM pg_catalog.pg_event_trigger e
		WHERE e.evtname IN ('rxvault_ddl', 'rxvault_drop') AND e.evtenabled = 'A') = 2`
