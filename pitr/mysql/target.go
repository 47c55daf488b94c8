// Package mysql is the MySQL and MariaDB restore target: it loads a base
// backup (an SQL dump: mysqldump's, or on MariaDB mariadb-dump's schema and
// triggers around rxvault's rows) into an empty database and
// replays captured transactions into it, in commit order, in one session.
//
// # Session
//
// Replay pins everything that could change a value or stop a statement:
// time_zone '+00:00' (TIMESTAMPs were captured in UTC), sql_mode
// STRICT_ALL_TABLES,ALLOW_INVALID_DATES,NO_AUTO_VALUE_ON_ZERO,
// NO_ENGINE_SUBSTITUTION (the values came from columns of the same type,
// so a value the target would store differently, with a warning, is a
// fault and fails the restore; invalid dates a source session allowed are
// taken; a captured 0 in an AUTO_INCREMENT column stays 0; a row that sets
// an ENUM to its error value, index 0, runs without strict mode, the one
// way to store it), utf8mb4 with every string sent as hex bytes (so no
// character set conversion happens), and unique_checks on. Foreign-key checks stay on: rows arrive in the order
// the source applied them, and the source's cascaded changes are not in
// the binlog (a replica's own foreign keys cascade them), so replay must
// let them cascade too; rows the source wrote with foreign_key_checks=0,
// which neither checked nor cascaded there, replay with them off
// (segment.MsgForeignKeyChecks).
//
// # Triggers
//
// Row events already hold what the source's triggers did. Replayed
// statements would fire the target's triggers again, so RestoreBase keeps
// the dump's triggers aside (SHOW CREATE TRIGGER, then DROP TRIGGER), as
// does a replayed CREATE TRIGGER; Finish creates them all again, in their
// order, once replay is over, each with the sql_mode, character sets and
// database collation it was created under.
//
// # Events and DDL sessions
//
// Scheduled events are held back until Finish (see events.go). Each DDL
// statement runs with the sql_mode and time zone of its source session
// when the archive has them (segment.MsgDDLSession), and replay's own
// settings come back after it.
//
// # Rows
//
// Values are those capture/mysql documents (see its value function):
// numbers as literals, temporal and DECIMAL values as quoted text, strings
// and binaries as X'…' hex literals (JSON through CONVERT … USING
// utf8mb4). Generated columns, as the target's catalog knows them at that
// point of the replay, are never written. Updates and deletes find their
// row by the primary key, or, for a table without one, by every column
// that compares exactly (not FLOAT, DOUBLE or JSON), with LIMIT 1; a
// delete that finds no row is an error (the target diverged).
//
// Row statements reach the server in batches of about 1 MiB, several per
// round trip (a multi-statement query), and consecutive inserts of one
// transaction into the same table are one multi-row INSERT. A failing
// statement is still named by its transaction and change, though it may
// be found while a later transaction of the group is applied; a group is
// committed only after every statement of it succeeded.
//
// # Errors
//
// Errors name the transaction and change that failed and never quote a
// row value: row statements carry their values as literals, which server
// messages quote (a duplicate key, a value a column refused), so a row
// statement's server error is a ServerError, which keeps the message only
// for errors whose messages name objects alone.
//
// # Databases
//
// The target database may be named differently from the source's: rows
// go to the target's tables, and DDL runs with the target as the default
// database, whose default character set and collation (the source's, from
// the base backup) a table created without one takes. A DDL statement that names the source database explicitly is
// refused unless both are named alike, since it would change the source
// database on a shared server.
package mysql

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/rxvault/rxvault/internal/logs"
	"github.com/rxvault/rxvault/internal/mysqlconn"
	"github.com/rxvault/rxvault/internal/proc"
	"github.com/rxvault/rxvault/internal/tail"
	"github.com/rxvault/rxvault/pitr"
)

// Config says where to restore.
type Config struct {
	// DSN is a mysql:// URL of the target database, which must exist and
	// be empty (CREATE DATABASE name). The user needs every privilege on
	// it, and SET USER (or SUPER) to recreate views, routines and
	// triggers with their definers.
	DSN string
	// ClientBin is the mariadb (or mysql) client program that loads the
	// base backup (default: mariadb from PATH, then mysql).
	ClientBin string
	// GroupSize is how many source transactions share one target
	// transaction (default 500; 1 commits each on its own).
	GroupSize int
	// Env is the process environment (KEY=VALUE pairs; cmd passes
	// os.Environ()): MYSQL_PWD is the password when the DSN has none, and
	// the client program gets its PATH and HOME. Nothing else reads the
	// environment.
	Env []string
	// Logger receives the target's progress and warnings, tagged
	// component=pitr/mysql; nil discards them. Never row data or
	// passwords.
	Logger *slog.Logger
}

// Target restores a MySQL or MariaDB database; it implements pitr.Target.
type Target struct {
	// moved recognises transactions a MariaDB source re-sent after it
	// moved to another server (see ResentSkipper); nil otherwise.
	moved  *movedSource
	conn   *client.Conn
	d      *mysqlconn.DSN
	env    []string // Config.Env
	name   string   // host:port/db, for messages
	client string
	log    *slog.Logger
	group  int
	// lenient prefixes a row statement that must run without strict mode
	// (see lenientSQLMode): MariaDB's SET STATEMENT, or MySQL's hint.
	lenient lenientSyntax

	tables   map[string]*tableInfo // by table name, as of the last DDL
	triggers []trigger             // kept aside until Finish
	events   []byte                // the dump's events section, run by Finish (see events.go)
	eventDDL []heldDDL             // replayed event statements, run by Finish after events
	commitAt time.Time             // the commit time of the transaction being applied
	ddlSess  *ddlSession           // the session settings of the next DDL change
	fkOff    bool                  // the batch has turned foreign_key_checks off
	autoInc  map[string]string     // table → next AUTO_INCREMENT, from the latest heartbeat
	// baseCollation is the target's default collation after the base
	// backup, the one the dump's events were created under.
	baseCollation string

	open      bool   // a target transaction is open
	inGroup   int    // source transactions in it
	groupFrom string // the first of them, for messages
	broken    error
	finished  bool

	// The batch: row statements not yet sent (see flush).
	batch      []byte
	pending    []stmt // batch's statements, in order
	hdr        []byte // scratch: an INSERT's column list
	seq        uint64 // Apply calls so far
	batchBytes int    // run the batch once it holds this many bytes
	maxPacket  int    // the largest query the server accepts, less room for the packet's header

	txns, changes atomic.Int64
}

var _ pitr.Target = (*Target)(nil)

// replaySQLMode is replay's sql_mode (see the package documentation).
// Strict mode makes a value the target would change an error, where it
// would otherwise store something else with a warning; the values come
// from columns of the same type, so any such value is a fault to report.
// ALLOW_INVALID_DATES takes the dates a source session with it stored.
const replaySQLMode = "STRICT_ALL_TABLES,ALLOW_INVALID_DATES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION"

// lenientSQLMode is replay's sql_mode without strict mode, for the one
// stored value strict mode refuses as input: ENUM's error value (index
// 0, the empty string a non-strict session stores for a value not in the
// list).
const lenientSQLMode = "ALLOW_INVALID_DATES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION"

// lenientSyntax is how one statement runs with lenientSQLMode.
type lenientSyntax struct{ before, after string }

var (
	// MariaDB: SET STATEMENT … FOR INSERT …
	mariadbLenient = lenientSyntax{before: "SET STATEMENT sql_mode = '" + lenientSQLMode + "' FOR "}
	// MySQL: INSERT /*+ SET_VAR(…) */ …, the hint after the verb.
	mysqlLenient = lenientSyntax{after: " /*+ SET_VAR(sql_mode = '" + lenientSQLMode + "') */"}
)

// sessionSettings pin how replay parses values and behaves.
var sessionSettings = []string{
	"SET NAMES utf8mb4",
	"SET time_zone = '+00:00'",
	"SET sql_mode = '" + replaySQLMode + "'",
	"SET foreign_key_checks = 1",
	"SET unique_checks = 1",
	"SET autocommit = 1",
}

// resetSession puts replay's session settings back (after a DDL statement
// ran with its source session's) and the server's collation_server.
func (t *Target) resetSession() error {
	for _, q := range slices.Concat(sessionSettings, []string{"SET timestamp = DEFAULT, collation_server = DEFAULT"}) {
		if _, err := t.conn.Execute(q); err != nil {
			return err
		}
	}
	return nil
}

// Open connects to the target database.
func Open(ctx context.Context, cfg Config) (*Target, error) {
	d, err := mysqlconn.Parse(cfg.DSN, proc.Getenv(cfg.Env, "MYSQL_PWD"))
	if err != nil {
		return nil, fmt.Errorf("restore target: %w", err)
	}
	name := d.Addr() + "/" + d.DB
	bin, err := clientPath(cfg.ClientBin)
	if err != nil {
		return nil, err
	}
	c, err := mysqlconn.Connect(ctx, d, d.DB, multiStatements)
	if err != nil {
		return nil, fmt.Errorf("restore target %s: %w", name, err)
	}
	for _, q := range sessionSettings {
		if _, err := c.Execute(q); err != nil {
			c.Close()
			return nil, fmt.Errorf("restore target %s: %s: %w", name, q, err)
		}
	}
	packet, err := mysqlconn.QueryRow(c, "SELECT @@max_allowed_packet, @@version")
	var maxPacket int
	if err == nil {
		maxPacket, err = strconv.Atoi(packet[0])
	}
	lenient := mysqlLenient
	if err == nil && strings.Contains(packet[1], "MariaDB") {
		lenient = mariadbLenient
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("restore target %s: read max_allowed_packet: %w", name, err)
	}
	maxPacket = max(maxPacket-4096, 1024)
	group := cfg.GroupSize
	if group <= 0 {
		group = 500
	}
	return &Target{conn: c, d: d, env: cfg.Env, name: name, client: bin, log: logs.For(cfg.Logger, "pitr/mysql").With("target", name), group: group, lenient: lenient,
		tables: map[string]*tableInfo{}, autoInc: map[string]string{},
		batchBytes: min(batchBytes, maxPacket/2), maxPacket: maxPacket}, nil
}

// batchBytes is how much SQL a batch holds before it runs: enough to
// spare the round trips, small enough to keep its memory negligible.
const batchBytes = 1 << 20

// multiStatements turns on multi-statement queries, so that a batch of
// row statements is one round trip (see flush).
func multiStatements(c *client.Conn) error {
	if err := c.SetCapability(gomysql.CLIENT_MULTI_STATEMENTS); err != nil {
		return err
	}
	return c.SetCapability(gomysql.CLIENT_MULTI_RESULTS)
}

// NotEmptyError is CheckEmpty's answer for a database that holds objects.
// It wraps pitr.ErrTargetNotEmpty.
type NotEmptyError struct {
	Target string
	Found  []string
}

func (e *NotEmptyError) Error() string {
	return fmt.Sprintf("restore target %s is not empty: %s: restore into a new empty database (CREATE DATABASE name)", e.Target, strings.Join(e.Found, ", "))
}

// Unwrap returns pitr.ErrTargetNotEmpty.
func (e *NotEmptyError) Unwrap() error { return pitr.ErrTargetNotEmpty }

// CheckEmpty fails with a *NotEmptyError if the database holds any table,
// view, routine, event or trigger.
func (t *Target) CheckEmpty(ctx context.Context) error {
	var found []string
	for _, q := range []struct{ kind, sql string }{
		{"table", "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1"},
		{"routine", "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() ORDER BY 1"},
		{"event", "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE() ORDER BY 1"},
	} {
		rows, err := mysqlconn.QueryRows(t.conn, q.sql)
		if err != nil {
			return fmt.Errorf("restore target %s: %w", t.name, err)
		}
		if len(rows) == 0 {
			continue
		}
		names := make([]string, 0, 3)
		for _, r := range rows[:min(3, len(rows))] {
			names = append(names, r[0])
		}
		more := ""
		if len(rows) > 3 {
			more = ", …"
		}
		found = append(found, fmt.Sprintf("%d %s(s) (%s%s)", len(rows), q.kind, strings.Join(names, ", "), more))
	}
	if len(found) > 0 {
		return &NotEmptyError{Target: t.name, Found: found}
	}
	return nil
}

// RestoreBase loads an SQL dump (see capture/mysql.Dump) through the client program
// (its password through MYSQL_PWD, never the command line), then keeps the
// triggers aside (see the package documentation). On failure the target
// holds part of the dump.
func (t *Target) RestoreBase(ctx context.Context, dump io.Reader) error {
	// The dump's tables are SHOW CREATE TABLE's, every default explicit:
	// read with explicit_defaults_for_timestamp off, a bare TIMESTAMP
	// NOT NULL would gain DEFAULT CURRENT_TIMESTAMP ON UPDATE ….
	var extra []string
	off, err := t.explicitTSDiffers(true)
	if err != nil {
		return err
	}
	if off {
		extra = append(extra, "--init-command=SET SESSION explicit_defaults_for_timestamp = 1")
	}
	f := newEventsFilter(newTriggerGuard(dump, t.d.DB))
	if err := t.runClient(ctx, f, extra...); err != nil {
		if off && strings.Contains(err.Error(), "explicit_defaults_for_timestamp") {
			return fmt.Errorf("load the dump with %s: this server cannot set explicit_defaults_for_timestamp per session: %w; fix: restore into MariaDB 10.10+ or MySQL 8.0+, or a server started with explicit_defaults_for_timestamp = 1", t.client, err)
		}
		return fmt.Errorf("load the dump with %s: %w", t.client, err)
	}
	t.events = bytes.Clone(f.section())
	if err := t.reselectDatabase(); err != nil {
		return err
	}
	coll, err := t.databaseCollation()
	if err != nil {
		return err
	}
	t.baseCollation = coll
	return t.setTriggersAside()
}

// reselectDatabase selects the target database again, so that the
// session reads its default character set and collation afresh. MariaDB
// keeps a session's own copy of them from when the session selected the
// database (selecting the same database again keeps the copy; only the
// session's own ALTER DATABASE changes it), and a table created without
// a character set takes that copy, as do a trigger's and a routine's
// database collation. Replay's session selected the target while it
// still had the defaults it was created with (the restore server's), and
// the base backup's ALTER DATABASE ran in the client program's session.
func (t *Target) reselectDatabase() error {
	if err := t.conn.UseDB("information_schema"); err != nil {
		return fmt.Errorf("reselect the target database: %w", err)
	}
	if err := t.conn.UseDB(t.d.DB); err != nil {
		return fmt.Errorf("reselect the target database: %w", err)
	}
	return nil
}

// runClient runs SQL from in through the client program, in the target
// database, with extra client options.
func (t *Target) runClient(ctx context.Context, in io.Reader, extra ...string) error {
	args := []string{"--no-defaults", "--host=" + t.d.Host, "--port=" + strconv.Itoa(int(t.d.Port)), "--user=" + t.d.User,
		"--protocol=TCP", "--default-character-set=utf8mb4", "--binary-mode", "--batch", "--database=" + t.d.DB}
	args = append(args, extra...)
	if t.d.TLS != nil {
		args = append(args, "--ssl", "--ssl-verify-server-cert")
		if t.d.TLSCA != "" {
			args = append(args, "--ssl-ca="+t.d.TLSCA)
		}
	}
	cmd := exec.CommandContext(ctx, t.client, args...)
	cmd.Env = []string{"PATH=" + proc.Getenv(t.env, "PATH"), "HOME=" + proc.Getenv(t.env, "HOME"), "MYSQL_PWD=" + t.d.Password, "TZ=UTC"}
	cmd.Stdin = in
	errb := &tail.Buffer{Max: 4096}
	cmd.Stderr, cmd.Stdout = errb, io.Discard
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %s", err, errb.String())
	}
	return nil
}

// Close releases the connection; an open group is rolled back.
func (t *Target) Close(ctx context.Context) error {
	t.batch, t.pending = nil, nil
	if t.open && t.broken == nil {
		_, _ = t.conn.Execute("ROLLBACK")
	}
	return t.conn.Close()
}

// Stats returns the transactions and changes applied so far.
func (t *Target) Stats() (txns, changes int64) { return t.txns.Load(), t.changes.Load() }

// clientPath finds the client program.
func clientPath(bin string) (string, error) {
	if bin != "" {
		return exec.LookPath(bin)
	}
	for _, name := range []string{"mariadb", "mysql"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("restore target: neither the mariadb nor the mysql client is in PATH; fix: install it (apt-get install mariadb-client)")
}
