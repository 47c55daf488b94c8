// Package postgres is the PostgreSQL restore target (pitr.Target): it loads
// a pg_dump base backup into an empty database, replays the archived
// transactions on it, committing consecutive source transactions together
// in one target transaction (group commit), and completes the restore
// (sequences, event triggers, durability).
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
//     group. Finish commits the last group and its own work synchronously,
//     which makes every earlier transaction durable too (WAL is flushed in
//     order); a restore is done only when Finish returns nil.
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
// sent, and the row keeps it. An identity column GENERATED ALWAYS on the
// target, which PostgreSQL lets no UPDATE set (428C9; UPDATE has no
// OVERRIDING clause), is left out when its value is known not to have
// changed (a key column of an update without an old tuple, or an old
// value identical to the new one); otherwise (the source ran UPDATE … SET
// id = DEFAULT, or a non-key column's old value was not sent) the group
// makes the column BY DEFAULT before the statement and ALWAYS again
// before it commits and before any DDL statement, so the catalog the
// restore leaves, and every DDL statement sees, is the source's.
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
// Every insert, update and delete must change exactly one row, or its
// group fails before it commits and the error says the target has
// diverged. UPDATE and DELETE use ONLY except on partitioned tables: the
// stream names the table that holds the row.
//
// # Group commit
//
// Committing costs the server a fixed amount per transaction (about
// 100 µs of backend CPU, plus a round trip), which dominated replay of
// small OLTP transactions. So consecutive source transactions share one
// target transaction, a group, which commits once:
//
//   - when it reaches a bound, checked at the end of each source
//     transaction (a source transaction is never split): 1000
//     transactions, 10000 changes, 32 MiB of values, 100 distinct tables
//     written, or 64 DDL statements;
//   - at the end of a transaction that ran ALTER TYPE, or DO or CALL
//     (PostgreSQL refuses an enum value added by ALTER TYPE … ADD VALUE
//     until the transaction that added it commits);
//   - before a statement that cannot run in a transaction block (see
//     below);
//   - in Finish, synchronously.
//
// This replays to exactly the state one commit per transaction gives:
// changes run in commit order in one session; DDL is transactional and
// runs in place; with session_replication_role = replica no foreign-key
// or ordinary trigger work waits for the commit; and deferrable unique
// constraints held at every source commit, so at the group's end too.
// Intermediate states are never visible (nothing but the restore uses the
// target, and it is incomplete until Finish).
//
// The group is all or nothing. Statements' results are read in bulk (see
// Speed), so a failure may surface during a later Apply than the failed
// transaction's, or in Finish: the error names the failed transaction and
// change all the same, the whole group is rolled back, and the target is
// as after the last group commit. Since the group's other transactions
// were accepted by Apply and are now undone, the target then refuses any
// further work; only a failed transaction alone in its group leaves it
// usable (as one transaction per commit did).
//
// Why these bounds: BenchmarkApplyGroupBound measures replay at groups of
// 1 to 10000 transactions (and 10 times as many changes). With one change
// per transaction, groups of 10, 100 and 1000 replayed about 5, 9 and 13
// times as fast as one commit per transaction on the development machine
// (2 vCPUs), and groups of 10000 no faster than 1000; with 10 or 100
// changes per transaction the gain stops earlier. Larger groups only
// hold more work uncommitted. The change and byte bounds keep a group of
// large transactions to about the same work. The table and
// DDL bounds keep the locks a group holds until it commits (one per table
// and index written, more per DDL statement) well below PostgreSQL's
// shared lock table (max_locks_per_transaction × max_connections, 6400 by
// default), which a group of many source transactions, each within it,
// could otherwise exhaust.
//
// # Speed
//
// Statements are prepared once per relation shape, operation and set of
// columns (a relation whose columns change after DDL gets new ones), then
// bound with each change's values, and pipelined: no round trip per row
// or per source transaction. Apply sends each statement as it reads the
// change, flushes every 32 requests and at the end of each source
// transaction so the server works while the client reads on, and returns
// without waiting. Results are read (every MiB or 4096 requests, and
// before the group's COMMIT) and COMMIT is sent only once each row
// statement's command tag says one row. A group costs two round trips
// (read the results; COMMIT), however many transactions it holds.
//
// A DDL statement leaves the pipeline (it may hold several commands,
// which only the simple query protocol runs): a round trip each.
//
// BenchmarkApplyVsPsql measures replay against psql running the same
// changes as SQL statements, one transaction per source transaction.
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
//   - DDL of archives written before capture recorded its session's
//     settings (capture objects before v4) runs under the settings above
//     and the source's search_path only: values converted by such DDL
//     (ALTER COLUMN … TYPE … USING) are converted under TimeZone UTC,
//     which may differ from the source session's. Newer archives carry
//     the settings (segment.MsgDDLSession; see ddlSettingNames).
//   - money values parse under the target's lc_monetary.
//   - A DDL statement PostgreSQL refuses inside a transaction block
//     (CREATE INDEX CONCURRENTLY) runs on its own when it is its
//     transaction's first change: a savepoint taken before it is rolled
//     back, the group so far commits, the statement runs, and the
//     transaction's later changes run in a group that ends with them.
//     Elsewhere in a transaction it fails.
//   - A trigger set ENABLE ALWAYS that is a deferred constraint trigger
//     leaves events pending until the group commits, not the source
//     transaction: a later ALTER TABLE or TRUNCATE of its table in the
//     same group fails (55006) where the source's succeeded.
//   - Unlogged tables and large objects are not in the change stream;
//     they keep their base-backup content.
package postgres
