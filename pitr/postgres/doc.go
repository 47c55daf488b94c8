// Package postgres is the PostgreSQL restore target (pitr.Target): it loads
// a pg_dump base backup into an empty database, replays the archived
// transactions on it, one target transaction per source transaction, and
// completes the restore (sequences, event triggers, durability).
//
// # The replay session
//
// The target connection must be a superuser's. Open pins, for the whole
// session:
//
//   - session_replication_role = replica: ordinary triggers (ENABLE, the
//     default) and foreign-key checks and actions do not fire. The source
//     ran them, and their effects (audit rows, cascaded deletes) are
//     themselves in the stream; firing them again would duplicate or
//     delete rows. Triggers set ENABLE ALWAYS or ENABLE REPLICA do fire
//     (see Known limits).
//   - TimeZone UTC, DateStyle ISO, IntervalStyle postgres,
//     extra_float_digits 3, bytea_output hex, standard_conforming_strings
//     on, xmloption content: values arrive as the source's text forms and
//     must parse the same; timestamptz forms carry their offset.
//   - check_function_bodies off (function bodies were checked on the
//     source), read committed, no statement, lock or idle timeouts,
//     plan_cache_mode force_generic_plan (statements are prepared once and
//     run many times).
//   - synchronous_commit off: replay does not wait for a WAL flush per
//     transaction. Finish commits synchronously, which makes every earlier
//     transaction durable too (WAL is flushed in order); a restore is done
//     only when Finish returns nil.
//
// # Finding rows
//
// Values are never interpolated into SQL: each is a parameter in its exact
// text form, typed with the target column's type OID (looked up in the
// target's catalog: user types such as enums have other OIDs on the source;
// a built-in type OID that differs between the stream and the target is a
// divergence and fails). Inserts write every column but generated ones
// (OVERRIDING SYSTEM VALUE, so identity values are kept). Updates write
// every column whose new value was sent: an unchanged TOAST value is not
// sent, and the row keeps it.
//
// An update or delete finds its row by the relation's key columns when
// some but not all columns are Key (primary key or replica identity
// index), each compared with = so that the index applies: the old key if
// the change has an old tuple, else the new tuple's key. When no column,
// or every column, is Key (REPLICA IDENTITY FULL marks every column), the
// row is found by its whole old value: for each column, col::text IS NOT
// DISTINCT FROM $n::text, where $n is the old value parsed as the
// column's type, so both sides are printed by the same output function
// under the same settings. That matches only rows that print identically
// (numeric 1.5 and 1.50, -0 and 0, json with other spacing stay apart:
// deleting the wrong one would make the restore diverge) and works for
// types without equality (json). Exactly one of several identical rows is
// changed, through its ctid.
//
// Every insert, update and delete must change exactly one row, or the
// transaction fails before it commits and Apply says the target has
// diverged. UPDATE and DELETE use ONLY except on partitioned tables: the
// stream names the table that holds the row.
//
// # Speed
//
// Statements are prepared once per relation shape, operation and set of
// columns (a relation whose columns change after DDL gets new ones), then
// bound with each change's values, and pipelined: no round trip per row.
//
//   - A small transaction (at most 4 changes, 64 KiB of values, no DDL:
//     most OLTP transactions) is held until its end is seen, then sent as
//     one pipeline: its statements, each wrapped as WITH w AS (…
//     RETURNING 1) SELECT CASE count(*) WHEN 1 THEN 1 ELSE <error> END so
//     that the server itself fails the transaction unless the statement
//     changed exactly one row, then a Sync, which commits the pipeline's
//     implicit transaction (no BEGIN or COMMIT to run). One round trip.
//     If the client gives up before the Sync, it first sends a statement
//     that fails, so that the Sync rolls back.
//   - A larger transaction streams: BEGIN and its statements are sent as
//     they are read, flushed every 32 requests so the server works while
//     the client reads on, unwrapped (the wrapping costs about as much
//     again on the server); their command tags are read back (every MiB or
//     4096 requests, and at the end) and COMMIT is sent only once each
//     says one row. Two round trips, whatever the size.
//   - A DDL statement leaves the pipeline (it may hold several commands,
//     which only the simple query protocol runs): a round trip each.
//
// BenchmarkApplyVsPsql measures replay against psql running the same
// changes as SQL statements.
//
// # Base backups and event triggers
//
// RestoreBase runs pg_restore on the dump stream without buffering it,
// leaving event triggers out (they would fire on the restore's own
// commands and on every replayed DDL statement, repeating effects the
// stream already holds); Finish creates them. See RestoreBase.
//
// # Logging and errors
//
// Nothing logs or returns row data, values or passwords. Server messages
// that may quote values (data exceptions, constraint violations) are
// withheld; errors carry the SQLSTATE and the names of the objects
// involved (see ServerError).
//
// # Known limits
//
//   - Triggers set ENABLE ALWAYS or ENABLE REPLICA fire during replay.
//   - Event triggers are those of the base backup: CREATE, ALTER and DROP
//     EVENT TRIGGER are not captured (event triggers never fire for them).
//   - DDL runs under the source session's search_path but the settings
//     above: values converted by DDL (ALTER COLUMN … TYPE … USING) are
//     converted under TimeZone UTC, which may differ from the source
//     session's.
//   - money values parse under the target's lc_monetary.
//   - A DDL statement PostgreSQL refuses inside a transaction block
//     (CREATE INDEX CONCURRENTLY) runs on its own when it is its
//     transaction's first change; elsewhere it fails.
//   - Unlogged tables and large objects are not in the change stream;
//     they keep their base-backup content.
package postgres
