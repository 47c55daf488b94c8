// Package postgres is rxvault's PostgreSQL change reader and base-backup
// dump source.
//
// # Change stream
//
// A Reader streams one database's committed transactions from a logical
// replication slot with the pgoutput plugin (protocol version 2, streaming
// of large in-progress transactions on, logical messages on, text values)
// and hands them to a capture.Sink in commit order. Positions are
// segment.Position{Hi: 0, Lo: LSN}. Each capture.Txn has:
//
//   - Info.ID: the top-level xid in decimal;
//   - Info.Pos: the LSN of the commit record (pgoutput's commit_lsn, equal
//     to BEGIN's final_lsn), strictly increasing;
//   - Info.Commit: the commit time, to the microsecond, UTC;
//   - End: the transaction's end LSN; acknowledging it (Reader.Acknowledge)
//     lets the server forget the transaction.
//
// Row changes carry a *segment.Relation per table (column names; Type as
// format_type(oid, typmod), qualified with its schema outside pg_catalog;
// TypeID the type OID; Key from pgoutput's key flag). A new Relation
// message yields a new *Relation; earlier changes keep theirs. Values are
// the server's exact text form (segment.Text), segment.Null for NULL, and
// segment.Unchanged for an unchanged TOASTed value that pgoutput does not
// resend. The replication session pins the settings that shape text
// forms, so values do not depend on server or role defaults: DateStyle
// ISO, IntervalStyle postgres, TimeZone UTC, extra_float_digits 3
// (shortest exact floats), bytea_output hex, lc_monetary C. Replay should
// read them back under the same settings. Updates carry OldKey (replica
// identity index or primary key changed), OldFull (REPLICA IDENTITY FULL)
// or OldNone; deletes OldKey or OldFull. TRUNCATE becomes OpTruncate with
// its CASCADE and RESTART IDENTITY flags.
//
// # Acknowledgements and redelivery
//
// The server is told flush = the last acknowledged position and nothing
// more, so after a restart the stream resumes with the first transaction
// whose commit LSN is at or after it: transactions after the last
// acknowledgement are delivered again. PostgreSQL 15 keeps an
// acknowledged position in memory and writes it to disk only when it next
// saves the slot for other reasons, so after a server crash the slot may
// resume earlier and resend acknowledged transactions too (never later);
// sinks must drop transactions whose Info.Pos is not after the archive's
// last one (Reader.SlotLSN tells where the slot stands).
//
// # Large transactions
//
// A transaction the server sends whole is kept in memory up to
// Config.SpillThreshold bytes of changes, then written to a segment.Spill.
// A transaction the server streams before it commits (once it exceeds the
// server's logical_decoding_work_mem) is written to a spill from its first
// change, each change tagged with its subtransaction id. A stream abort of
// the whole transaction deletes its spill; a subtransaction abort marks
// that subtransaction so its changes are skipped when the spill is read
// back at commit. Memory use does not grow with a transaction's size, only
// with its largest row.
//
// # DDL
//
// Open installs, in schema rxvault, event triggers on ddl_command_end and
// sql_drop whose functions emit a transactional logical message
// "rxvault.ddl" holding {"search_path", "tag", "sql": current_query()} in
// the DDL's own transaction (see setupsql.go). The reader turns it into an
// OpDDL change in its place among the transaction's changes: Schema is the
// search_path to replay under, the session's setting with $user resolved
// (a list such as `postgres, public`: apply it with
// set_config('search_path', Schema, true), not as one identifier), and SQL
// the client's whole query string. It is emitted once per client
// command message even when the string holds several DDL statements.
// Commands on temporary objects, on rxvault's own objects, and on
// publications and subscriptions are skipped.
//
// CREATE TABLE AS and SELECT INTO are the exception: their rows reach the
// stream as inserts before the statement ends, so the trigger describes
// the new table instead (a CREATE TABLE of the empty table: columns,
// types, collations, persistence, storage parameters, tablespace) and the
// reader places that DDL before the table's first insert. Replay then
// creates the table and inserts exactly the rows the source computed.
//
// # Sequences and heartbeat
//
// Every Config.Heartbeat, Run writes one transaction holding two
// transactional logical messages: "rxvault.sequences", the JSON
// {"schema.name": {"last_value": "N", "is_called": bool}} of every
// sequence in the captured schemas (names quoted as SQL needs, so each
// key is a valid regclass literal), and "rxvault.heartbeat", the server's
// clock_timestamp() as text (UTC). They arrive as an ordinary transaction
// of OpMessage changes; the heartbeat keeps the archive's newest commit
// time fresh on an idle database and lets the slot advance.
//
// # Base backups
//
// Dump runs pg_dump on a snapshot exported by a temporary logical slot:
// the dump holds exactly the transactions committing before its Pos.
//
// # Known limits
//
//   - DDL is captured as the client's query string. A query string mixing
//     DDL and DML (a multi-statement simple query, a DO block, or a
//     function called by the client that runs DDL) is replayed whole at
//     the DDL's place, so its DML would be applied twice (once as row
//     changes, once by the replayed string). The reader logs a warning
//     when the text seems to hold more than one statement; DO blocks and
//     functions cannot be detected. A DROP naming both temporary and
//     permanent objects is replayed whole.
//   - DDL that computes data is replayed by running it again, so volatile
//     values differ: ALTER TABLE ... ADD COLUMN ... DEFAULT with a
//     volatile default (gen_random_uuid(), clock_timestamp()), or an
//     identity or serial column, rewrites the table without row changes
//     in the stream; the target numbers its rows in its own heap order. CREATE TABLE AS is handled
//     (see DDL) unless it shares a query string with other DDL; its table's
//     access method (USING) is not reproduced.
//   - Objects outside the database (roles, tablespaces, the database
//     itself) are not captured; neither are changes to unlogged tables,
//     which logical decoding does not see.
//   - A table created later without a primary key, in a FOR ALL TABLES
//     publication, makes the application's updates and deletes of it
//     fail (PostgreSQL's rule) until it gets one or REPLICA IDENTITY FULL;
//     the next Open refuses it.
//   - The DDL triggers trust the database's users: a session that sets the
//     rxvault.ddl_key or rxvault.ddl_drop settings on purpose can hide its
//     DDL from capture.
//   - Non-transactional logical messages are not captured: they belong to
//     no transaction and change no table.
//   - GRANT and REVOKE are captured like other DDL (event triggers do not
//     say which object they touch); the roles they name must exist where
//     they are replayed.
//   - A fast shutdown of PostgreSQL waits until the reader has
//     acknowledged everything the server sent (walsender semantics), so
//     it takes up to one segment interval while the archive is reachable,
//     and waits while it is not (an immediate shutdown does not).
//   - A base backup (Dump) includes schema rxvault and its event
//     triggers; a restore recreates them.
//   - Generated columns are not sent by pgoutput in PostgreSQL 15; replay
//     recomputes them.
package postgres
