// Package mysql captures one MySQL or MariaDB database from the server's
// row-based binary log, through github.com/go-mysql-org/go-mysql, and
// delivers its transactions in commit order (capture.Reader), and dumps
// it for base backups (capture.Dump).
//
// # Requirements, checked at Open
//
// log_bin on, binlog_format=ROW, binlog_row_image=FULL and
// binlog_row_metadata=FULL (MySQL 8.0.1+, MariaDB 10.5+), a replica
// server id (Config.ServerID) no server uses, and a user with REPLICATION
// SLAVE and REPLICATION CLIENT (BINLOG MONITOR) plus SELECT on the
// database and CREATE, INSERT, UPDATE on the rxvault database (the
// heartbeat table). MySQL must not use binlog_transaction_compression or
// partial JSON updates. Each refusal names the statement that fixes it.
//
// binlog_format and binlog_row_image are also session variables: a
// change to the database logged as a statement (a DML query event) or as
// a partial row image (a column bitmap without every column) cannot be
// captured exactly, and is capture.ErrStreamLost, never dropped or
// captured with NULLs for the missing columns.
//
// # Column names and types
//
// Row events carry values, not column names. With
// binlog_row_metadata=FULL every table map event carries the names,
// signedness, primary key and character sets of the table as it was when
// the event was written, so a row is always decoded with its own schema,
// across any ALTER TABLE, without tracking the schema by replaying DDL.
// An event written without that metadata is refused (a permanent error).
//
// # Transactions, DDL and positions
//
// A transaction runs from its GTID event (or BEGIN) to its XID or COMMIT;
// its ID is the GTID (MariaDB domain-server-seq, MySQL uuid:n) when the
// server has one. DDL is a transaction of its own, kept in its place. A
// DDL statement is captured when it concerns the database: the SQL parser
// (github.com/pingcap/tidb/pkg/parser) finds the databases of the tables
// it names, with the statement's default database for unqualified names;
// account statements (GRANT, CREATE USER, …) and maintenance (ANALYZE,
// FLUSH, …) are not captured. Rows of other databases are skipped. A DDL
// change comes after a segment.MsgDDLSession message with the sql_mode
// and time zone of the session that ran it, read from the query event's
// status variables, for replay to set.
//
// Positions are segment.Positions with Hi the epoch (below) << 32 | the
// binlog file's number, and Lo the offset in it. A transaction's Pos is the start of its commit event,
// End the end of it. Commit times are the commit event's timestamp: whole
// seconds on MariaDB and on MySQL before 8.0.1; MySQL 8's GTID events carry
// the commit time to the microsecond, and it is used.
//
// # The saved position
//
// MySQL keeps no state for a replica, so rxvault keeps it: Acknowledge
// writes the position (file and offset, always a transaction boundary)
// atomically and durably to a file in Config.StateDir (the spool), and
// Open resumes from it. Without the file the stream starts at the end of
// the binlog and SlotCreated reports true, so the archive starts a new
// chain with a new base backup, unless Rewind (capture.Rewinder) can show
// that the server still holds the stream at the archive's end. A saved position whose binlog file the
// server no longer has (purged) is capture.ErrStreamLost: a gap; the file
// is forgotten and the next Open starts a new chain. The saved position
// also records the timestamp of its binlog file's format description
// event, which the server sends first when the stream resumes: a file of
// the same name written anew (RESET MASTER) has another, and is a lost
// stream too, never a resumption in the middle of unrelated events. Each
// file is checked against its own timestamp only: after a restart, the
// segments an earlier run left in the spool are shipped and acknowledge
// positions in later files before the stream has reread them, and such a
// position is saved, with its file's timestamp, once the stream reaches
// that file's start. A file a server crash left ending in a torn event is no
// loss: the stream goes on at the next file (Reader.tornEnd).
//
// # Following the source to another server
//
// With Config.ID set, the source's identity is that name, not the
// server's, and the saved position also records the server it was taken
// on, its epoch, and (MariaDB) the GTID position of the acknowledged point:
// the last GTID of each domain committed at or before it, tracked as the
// stream goes (gtidTrack). Open on another server (a promoted replica)
// resumes after that GTID position, with StartSyncGTID, in the next epoch,
// once the server runs gtid_strict_mode and its gtid_binlog_state shows
// that it holds every GTID of the position. The new server re-sends
// what the old one sent after the saved point, under its own positions;
// restore skips those copies by GTID (pitr's movedSource). MySQL sources
// are not followed: a server change is a lost stream.
//
// # Heartbeats
//
// Every Config.Heartbeat the reader writes a row into rxvault.heartbeat
// (one row per captured database, keyed by its name) holding the server's
// NOW(6) and the next AUTO_INCREMENT value of every table of the database.
// That transaction reaches the archive as two messages
// (segment.MsgHeartbeat, segment.MsgAutoIncrement): the archive shows
// progress on an idle database, and restore sets the counters.
//
// # Values
//
// See value: every value is kept exactly, as decimal or temporal text or
// as the stored bytes. Row images of tables whose columns all have common
// types are decoded by rowCodec straight into those forms; the others by
// go-mysql, then value.
//
// # The stream's goroutines
//
// go-mysql's stream goroutine reads the events and parses their headers
// (raw mode) and queues them (eventQueue); the reader's goroutine takes
// all that is queued at once, parses them (table maps, rows and XID
// events itself, the others through go-mysql) and assembles
// transactions; the agent's shipper seals segments on a third. The reader
// is woken when the stream goroutine is about to read from the network
// (flushConn), so nothing received waits, and a backlog costs a wakeup
// per network read, not per transaction.
//
// # Base backups
//
// On MariaDB, Dump reads the rows itself in a consistent snapshot (see
// rows.go) and runs mariadb-dump --no-data for the schema, whose ENUM and
// SET members it makes exact (see enums.go); on MySQL it runs mysqldump
// --single-transaction --master-data=2 and reads the snapshot's binlog
// position from the dump's head. See Dump.
package mysql
