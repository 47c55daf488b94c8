package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rxvault/rxvault/internal/logs"
	"github.com/rxvault/rxvault/pitr"
	"github.com/rxvault/rxvault/segment"
)

// DefaultPGBin is where Debian's postgresql-15 package installs pg_restore.
const DefaultPGBin = "/usr/lib/postgresql/15/bin"

// Config says where to restore.
type Config struct {
	// DSN is a postgres:// (or postgresql://) URL of the target database,
	// which must exist and be empty (createdb NAME). The role must be a
	// superuser: replay runs with session_replication_role = replica, and
	// only superusers may set it. A password may be given in the URL or,
	// better, through PGPASSWORD or ~/.pgpass.
	DSN string
	// PGBin is the directory holding pg_restore. Empty means DefaultPGBin,
	// then pg_restore from PATH.
	PGBin string
	// Env is the process environment (KEY=VALUE pairs; cmd passes
	// os.Environ()): pg_restore runs with it, PGOPTIONS extended. Nothing
	// else reads the environment (pgx reads libpq's PG* variables itself).
	Env []string
	// Logger receives the target's progress and warnings, tagged
	// component=pitr/postgres; nil discards them. Never row data, values
	// or passwords.
	Logger *slog.Logger
}

// Stats counts the work done so far. It is safe to read from any
// goroutine while a restore runs.
type Stats struct {
	// Transactions is the number of source transactions applied: those
	// Apply returned nil for. The ones of the open commit group are not
	// committed yet, and a later failure rolls them back (see Apply).
	Transactions int64
	// Changes is the number of changes (rows, truncates, DDL statements,
	// messages) in those transactions.
	Changes int64
	// CommittedTransactions and CommittedChanges count the transactions
	// (and their changes) committed on the target: all of the applied
	// ones once Finish has returned nil.
	CommittedTransactions int64
	CommittedChanges      int64
	// BytesRestored is the number of base-backup bytes fed to pg_restore.
	BytesRestored int64
}

// Target restores a PostgreSQL database. It implements pitr.Target: one
// goroutine calls CheckEmpty, RestoreBase, Apply for each transaction,
// Finish and Close, in that order. Stats may be called from any goroutine.
//
// Apply commits source transactions in groups (see "Group commit" in the
// package documentation): they become visible on the target when their
// group commits, at the latest in Finish.
type Target struct {
	conn      *pgx.Conn
	dsn       string   // the caller's DSN, for pg_restore; never logged
	env       []string // Config.Env
	name      string   // the DSN without password, for messages and logs
	pgRestore string
	log       *slog.Logger
	// session holds the session's own values of the settings DDL may run
	// under (see readSession).
	session map[string]string

	rels    relCache
	stmtSeq uint64   // names prepared statements rxv_<n>
	garbage []string // prepared statements to deallocate

	// g is the open commit group, if any (g.open).
	g      group
	limits limits

	// Buffers reused from change to change.
	keyBuf  []byte
	vals    [][]byte
	formats []int16

	// seqs holds the latest captured value of each sequence, by the
	// "schema.name" key of the rxvault.sequences message.
	seqs map[string]seqValue
	// eventTriggers holds the event triggers RestoreBase left out; Finish
	// creates them.
	eventTriggers []eventTrigger

	// broken is set when the connection's state is unknown (connection
	// lost, commit outcome unknown, rollback failed): nothing more may be
	// applied.
	broken   error
	finished bool

	txns, changes, bytes            atomic.Int64
	committedTxns, committedChanges atomic.Int64
}

var _ pitr.Target = (*Target)(nil)

// sessionSettings pin everything that could change how a value's text is
// parsed or how replay behaves. See the package documentation.
var sessionSettings = []string{
	// Triggers (ENABLE ORIGIN, the default) and foreign-key checks and
	// actions do not fire: the source ran them and their effects are in
	// the stream. Needs a superuser.
	"SET session_replication_role = replica",
	"SET TimeZone = 'UTC'",
	"SET DateStyle = 'ISO, MDY'",
	"SET IntervalStyle = 'postgres'",
	"SET extra_float_digits = 3",
	"SET bytea_output = 'hex'",
	"SET standard_conforming_strings = on",
	"SET xmloption = content",
	// Function bodies were checked (or not) on the source.
	"SET check_function_bodies = off",
	"SET default_transaction_isolation = 'read committed'",
	"SET default_transaction_read_only = off",
	"SET statement_timeout = 0",
	"SET lock_timeout = 0",
	"SET idle_in_transaction_session_timeout = 0",
	"SET client_min_messages = warning",
	"SET plan_cache_mode = force_generic_plan",
	// Finish makes everything durable; see there.
	"SET synchronous_commit = off",
	"SET application_name = 'rxvault restore'",
}

// Open connects to the target database and prepares the session for
// replay. It does not check that the database is empty: call CheckEmpty.
func Open(ctx context.Context, cfg Config) (*Target, error) {
	name, err := displayName(cfg.DSN)
	if err != nil {
		return nil, err
	}
	log := logs.For(cfg.Logger, "pitr/postgres").With("target", name)
	bin, err := findPGRestore(cfg.PGBin)
	if err != nil {
		return nil, err
	}
	cc, err := pgx.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("restore target %s: %w", name, err)
	}
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("restore target %s: connect: %w", name, oneLine{err})
	}
	t := &Target{
		conn:      conn,
		dsn:       cfg.DSN,
		env:       cfg.Env,
		name:      name,
		pgRestore: bin,
		log:       log,
		rels:      newRelCache(),
		seqs:      map[string]seqValue{},
		limits:    defaultLimits,
	}
	if err := t.setupSession(ctx); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	return t, nil
}

func (t *Target) setupSession(ctx context.Context) error {
	var super bool
	if err := t.conn.QueryRow(ctx, "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user").Scan(&super); err != nil {
		return fmt.Errorf("restore target %s: check role: %w", t.name, err)
	}
	if !super {
		return fmt.Errorf("restore target %s: the role %q is not a superuser, which replay needs (session_replication_role = replica keeps the target's triggers and foreign-key actions from running twice): connect as a superuser, e.g. postgres", t.name, t.conn.Config().User)
	}
	if _, err := t.conn.PgConn().Exec(ctx, strings.Join(sessionSettings, "; ")).ReadAll(); err != nil {
		return fmt.Errorf("restore target %s: session settings: %w", t.name, err)
	}
	if err := t.readSession(ctx); err != nil {
		return err
	}
	for name, sql := range map[string]string{stmtBegin: "BEGIN", stmtCommit: "COMMIT"} {
		if _, err := t.conn.PgConn().Prepare(ctx, name, sql, nil); err != nil {
			return fmt.Errorf("restore target %s: prepare %s: %w", t.name, sql, err)
		}
	}
	return nil
}

// Statements prepared once per connection.
const (
	stmtBegin  = "rxv_begin"
	stmtCommit = "rxv_commit"
)

// Stats returns the work done so far.
func (t *Target) Stats() Stats {
	return Stats{
		Transactions:          t.txns.Load(),
		Changes:               t.changes.Load(),
		CommittedTransactions: t.committedTxns.Load(),
		CommittedChanges:      t.committedChanges.Load(),
		BytesRestored:         t.bytes.Load(),
	}
}

// Close closes the connection. A restore is complete only once Finish has
// returned nil; Close without Finish rolls back the open commit group (the
// transactions applied since the last group commit) and leaves sequences
// and event triggers as they were after the last group committed.
func (t *Target) Close(ctx context.Context) error {
	if t.conn == nil {
		return nil
	}
	if t.g.open {
		t.g.abort()
	}
	err := t.conn.Close(ctx)
	t.conn = nil
	if err != nil {
		return fmt.Errorf("restore target %s: close: %w", t.name, err)
	}
	return nil
}

// usable reports why nothing more may be sent to the target, if so.
func (t *Target) usable() error {
	switch {
	case t.conn == nil:
		return fmt.Errorf("restore target %s: closed", t.name)
	case t.broken != nil:
		return fmt.Errorf("restore target %s: unusable after an earlier failure (restore again into a new empty database): %w", t.name, t.broken)
	case t.finished:
		return fmt.Errorf("restore target %s: already finished", t.name)
	}
	return nil
}

// usableBeforeApply is usable for the calls that come before Apply (they
// use the connection, which an open commit group holds).
func (t *Target) usableBeforeApply(call string) error {
	if err := t.usable(); err != nil {
		return err
	}
	if t.g.open {
		return fmt.Errorf("restore target %s: %s called after Apply", t.name, call)
	}
	return nil
}

// connLost marks the target broken when the connection is gone, so that
// no later call pretends to continue a restore whose state is unknown.
func (t *Target) connLost(err error) {
	if t.broken == nil && (t.conn == nil || t.conn.PgConn().IsClosed()) {
		t.broken = err
	}
}

// unknownOutcome marks the target broken: a transaction may or may not
// have committed.
func (t *Target) unknownOutcome(err error) {
	if t.broken == nil {
		t.broken = fmt.Errorf("outcome of a transaction unknown: %w", err)
	}
}

// displayName returns the DSN without its password, for messages. Only
// URLs are accepted: pg_restore gets the same URL, minus the password.
func displayName(dsn string) (string, error) {
	u, err := parseDSN(dsn)
	if err != nil {
		return "", err
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	if q.Has("password") {
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// parseDSN parses a postgres:// URL without ever echoing it (it may hold a
// password).
func parseDSN(dsn string) (*url.URL, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, errors.New("restore target: the DSN must be a postgres:// URL, e.g. postgres://user@host:5432/dbname")
	}
	return u, nil
}

// findPGRestore finds pg_restore in dir, or in DefaultPGBin then PATH when
// dir is empty.
func findPGRestore(dir string) (string, error) {
	if dir != "" {
		p := filepath.Join(dir, "pg_restore")
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("restore target: pg_restore not found in %s: install postgresql-client-15 or fix PGBin", dir)
		}
		return p, nil
	}
	p := filepath.Join(DefaultPGBin, "pg_restore")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	p, err := exec.LookPath("pg_restore")
	if err != nil {
		return "", fmt.Errorf("restore target: pg_restore not found in %s or PATH: install postgresql-client-15", DefaultPGBin)
	}
	return p, nil
}

// oneLine shows an error on one line (pgx lists each address tried on a
// line of its own).
type oneLine struct{ err error }

func (e oneLine) Error() string {
	return strings.Join(strings.Fields(strings.ReplaceAll(e.err.Error(), "\n", "; ")), " ")
}

func (e oneLine) Unwrap() error { return e.err }

// pgErrorOf returns the server error inside err, if any.
func pgErrorOf(err error) *pgconn.PgError {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}

// relName names a relation in messages.
func relName(r *segment.Relation) string {
	if r == nil {
		return "<no relation>"
	}
	return r.Schema + "." + r.Table
}
