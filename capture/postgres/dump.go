package postgres

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/internal/logs"
	"github.com/rxvault/rxvault/internal/proc"
	"github.com/rxvault/rxvault/segment"
)

// DumpStream is a running pg_dump of the database, joined exactly to the
// change stream: it holds every transaction whose commit LSN is before Pos
// and none at or after it. Read it to the end, then Close.
type DumpStream struct {
	id   capture.Identity
	tool string
	pos  segment.Position
	at   time.Time
	out  *proc.Output
	r    *bufio.Reader // reads out
	repl *pgconn.PgConn
	stop context.CancelFunc // kills pg_dump if it still runs

	closeOnce sync.Once
	closeErr  error
}

// Dump starts a consistent dump of cfg's database. It creates a temporary
// logical slot (pgoutput) with EXPORT_SNAPSHOT on a replication
// connection, then runs pg_dump --snapshot=<that snapshot> -Fc -Z0
// --no-publications --no-subscriptions on the database (custom format,
// uncompressed: rxvault compresses). Pos is the slot's consistent point:
// transactions committing before it are in the dump, those at or after it
// are not and come from the stream (the agent's own slot must not be past
// Pos; a slot created earlier never is). Time is the server's clock read
// just after the consistent point was reached: everything in the dump
// committed before it.
//
// DDL that commits after Pos but before pg_dump has read every definition
// would make the dump mix the schema at Pos with the later one (see
// dumpOnce), so Dump compares the catalogs at Pos with those at pg_dump's
// first output byte and, if DDL changed them, ends that pg_dump and starts
// over (up to 8 times, waiting 1 s, 2 s, ... between attempts, then a
// transient error). Dump returns once pg_dump has written its first byte
// (or ended).
//
// pg_dump is PGBin/pg_dump, or pg_dump from PATH if that is missing. The
// DSN's password reaches it through PGPASSWORD in its environment, never
// its command line. ctx bounds the whole dump: when it ends pg_dump is
// killed. The stream is read in constant memory.
func Dump(ctx context.Context, cfg Config) (*DumpStream, error) {
	d, err := dump(ctx, cfg)
	if err != nil {
		return nil, markPermanent(ctx, err)
	}
	return d, nil
}

var _ capture.Dump = (*DumpStream)(nil)

// dumpAttempts bounds how often dump starts over because DDL committed
// while pg_dump read the schema (see dumpOnce).
const dumpAttempts = 8

// errSchemaMoved is dumpOnce's verdict when the catalogs changed between
// the snapshot and the moment pg_dump had read every definition.
var errSchemaMoved = errors.New("DDL committed while pg_dump read the schema, after the dump's position")

func dump(ctx context.Context, cfg Config) (*DumpStream, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	bin, err := pgDumpPath(cfg.PGBin)
	if err != nil {
		return nil, err
	}
	ver, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("postgres dump: %s --version: %w", bin, err)
	}
	for attempt := 1; ; attempt++ {
		d, err := dumpOnce(ctx, cfg, bin, strings.TrimSpace(string(ver)))
		if !errors.Is(err, errSchemaMoved) {
			return d, err
		}
		if attempt == dumpAttempts {
			return nil, &transientError{fmt.Errorf("postgres dump: %w, %d times in a row; fix: take the base backup when no DDL runs", err, attempt)}
		}
		wait := time.Duration(attempt) * time.Second
		logs.For(cfg.Logger, "capture/postgres").Warn("base backup: DDL committed while pg_dump read the schema; starting over", "attempt", attempt, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// dumpOnce makes one attempt at a dump.
//
// pg_dump reads the catalogs under the snapshot, but only locks the tables
// (ACCESS SHARE) some time after importing it, and the server functions it
// uses for definitions (pg_get_indexdef, format_type, pg_get_viewdef, ...)
// and COPY (the table's current columns and file) see the latest catalogs.
// DDL that commits between the slot's consistent point and pg_dump's locks
// would give a dump that mixes both states, which replaying that DDL from
// the stream cannot repair (a rewritten table reads as empty under the old
// snapshot, renamed columns receive each other's values, an index rebuilt
// under a new oid is left out). So dumpOnce fingerprints the catalogs
// (every row's identity and xmin, temporary objects aside) under the
// exported snapshot, waits for pg_dump's first output byte (custom format
// writes nothing before it has read every definition and holds its table
// locks, so from then on only COPY runs, on locked tables), and
// fingerprints them again: if they differ, it ends pg_dump and returns
// errSchemaMoved, and dump starts over.
func dumpOnce(ctx context.Context, cfg Config, bin, tool string) (_ *DumpStream, err error) {
	args, env, err := pgDumpConn(cfg.DSN, cfg.Env)
	if err != nil {
		return nil, err
	}
	pc, err := cfg.replicationConfig()
	if err != nil {
		return nil, err
	}
	repl, err := pgconn.ConnectConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres dump: replication connection: %w", err)
	}
	defer func() {
		if err != nil {
			_ = repl.Close(context.WithoutCancel(ctx))
		}
	}()
	cc, err := cfg.regularConfig()
	if err != nil {
		return nil, err
	}
	clock, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("postgres dump: connect: %w", err)
	}
	defer clock.Close(context.WithoutCancel(ctx))
	sys, err := pglogrepl.IdentifySystem(ctx, repl)
	if err != nil {
		return nil, fmt.Errorf("postgres dump: identify system: %w", err)
	}

	name := "rxvault_dump_" + randomHex(6)
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, name, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Temporary: true, Mode: pglogrepl.LogicalReplication, SnapshotAction: "EXPORT_SNAPSHOT"})
	if err != nil {
		return nil, fmt.Errorf("postgres dump: create temporary slot: %w", err)
	}
	lsn, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return nil, fmt.Errorf("postgres dump: consistent point: %w", err)
	}
	// The replication connection must stay idle from here until pg_dump
	// has imported the snapshot: its next command would end the snapshot.
	var at time.Time
	if err := clock.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&at); err != nil {
		return nil, fmt.Errorf("postgres dump: read server clock: %w", err)
	}
	before, err := schemaPrint(ctx, clock, res.SnapshotName)
	if err != nil {
		return nil, err
	}
	if cfg.dumpSlotCreated != nil {
		if err := cfg.dumpSlotCreated(ctx); err != nil {
			return nil, err
		}
	}

	args = append([]string{"--snapshot=" + res.SnapshotName, "--format=custom", "--compress=0",
		"--no-publications", "--no-subscriptions", "--no-password"}, args...)
	pctx, stop := context.WithCancel(ctx)
	cmd := exec.CommandContext(pctx, bin, args...)
	cmd.Env = env
	d := &DumpStream{
		id:   capture.Identity{Engine: segment.EnginePostgres, SourceID: sys.SystemID + "/" + sys.DBName},
		tool: tool,
		pos:  segment.Position{Lo: uint64(lsn)},
		at:   at.UTC(),
		repl: repl,
		stop: stop,
	}
	if d.out, err = proc.Start(cmd); err != nil {
		stop()
		return nil, fmt.Errorf("postgres dump: start pg_dump: %w", err)
	}
	d.r = bufio.NewReaderSize(d.out, 64<<10)
	// The first byte, or the end of pg_dump (its failure, if any, is for
	// Close to report, unless the schema moved under it).
	if _, err := d.r.Peek(1); err != nil && !errors.Is(err, io.EOF) {
		stop()
		_ = d.out.Close()
		return nil, fmt.Errorf("postgres dump: read pg_dump: %w", err)
	}
	after, err := schemaPrint(ctx, clock, "")
	if err == nil && after != before {
		err = errSchemaMoved
	}
	if err != nil {
		stop()
		_ = d.out.Close()
		return nil, err
	}
	return d, nil
}

// schemaPrintSQL fingerprints the catalogs pg_dump reads definitions
// from: the identity and xmin of every row, so that any row inserted,
// updated or deleted by DDL changes it, while VACUUM and ANALYZE (which
// update pg_class in place) and row changes do not. Temporary objects,
// which pg_dump leaves out, are left out too, so that sessions using
// temporary tables do not make a dump start over.
const schemaPrintSQL = `
WITH ns AS (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname !~ '^pg_(toast_)?temp_'),
     rel AS (SELECT oid FROM pg_catalog.pg_class WHERE relpersistence <> 't')
SELECT pg_catalog.md5(coalesce(pg_catalog.string_agg(x, ',' ORDER BY x), '')) FROM (
	SELECT 'n' || oid || ':' || xmin FROM pg_catalog.pg_namespace WHERE oid IN (SELECT oid FROM ns)
	UNION ALL SELECT 'c' || oid || ':' || xmin FROM pg_catalog.pg_class WHERE relpersistence <> 't'
	UNION ALL SELECT 'a' || attrelid || '.' || attnum || ':' || xmin FROM pg_catalog.pg_attribute WHERE attrelid IN (SELECT oid FROM rel)
	UNION ALL SELECT 't' || oid || ':' || xmin FROM pg_catalog.pg_type WHERE typnamespace IN (SELECT oid FROM ns)
	UNION ALL SELECT 'i' || indexrelid || ':' || xmin FROM pg_catalog.pg_index WHERE indrelid IN (SELECT oid FROM rel)
	UNION ALL SELECT 'k' || oid || ':' || xmin FROM pg_catalog.pg_constraint WHERE connamespace IN (SELECT oid FROM ns)
	UNION ALL SELECT 'd' || oid || ':' || xmin FROM pg_catalog.pg_attrdef WHERE adrelid IN (SELECT oid FROM rel)
	UNION ALL SELECT 'g' || oid || ':' || xmin FROM pg_catalog.pg_trigger WHERE tgrelid IN (SELECT oid FROM rel)
	UNION ALL SELECT 'r' || oid || ':' || xmin FROM pg_catalog.pg_rewrite WHERE ev_class IN (SELECT oid FROM rel)
	UNION ALL SELECT 'p' || oid || ':' || xmin FROM pg_catalog.pg_proc WHERE pronamespace IN (SELECT oid FROM ns)
	UNION ALL SELECT 'A' || aggfnoid::oid || ':' || xmin FROM pg_catalog.pg_aggregate
	UNION ALL SELECT 'e' || oid || ':' || xmin FROM pg_catalog.pg_enum
	UNION ALL SELECT 'R' || rngtypid || ':' || xmin FROM pg_catalog.pg_range
	UNION ALL SELECT 's' || seqrelid || ':' || xmin FROM pg_catalog.pg_sequence WHERE seqrelid IN (SELECT oid FROM rel)
	UNION ALL SELECT 'h' || inhrelid || '.' || inhseqno || ':' || xmin FROM pg_catalog.pg_inherits WHERE inhrelid IN (SELECT oid FROM rel)
	UNION ALL SELECT 'P' || partrelid || ':' || xmin FROM pg_catalog.pg_partitioned_table WHERE partrelid IN (SELECT oid FROM rel)
	UNION ALL SELECT 'o' || oid || ':' || xmin FROM pg_catalog.pg_collation
	UNION ALL SELECT 'O' || oid || ':' || xmin FROM pg_catalog.pg_operator
	UNION ALL SELECT 'l' || oid || ':' || xmin FROM pg_catalog.pg_opclass
	UNION ALL SELECT 'L' || oid || ':' || xmin FROM pg_catalog.pg_opfamily
	UNION ALL SELECT 'C' || oid || ':' || xmin FROM pg_catalog.pg_cast
	UNION ALL SELECT 'x' || oid || ':' || xmin FROM pg_catalog.pg_extension
	UNION ALL SELECT 'y' || oid || ':' || xmin FROM pg_catalog.pg_policy
	UNION ALL SELECT 'X' || oid || ':' || xmin FROM pg_catalog.pg_statistic_ext
	UNION ALL SELECT 'f' || ftrelid || ':' || xmin FROM pg_catalog.pg_foreign_table
	UNION ALL SELECT 'F' || oid || ':' || xmin FROM pg_catalog.pg_foreign_server
	UNION ALL SELECT 'W' || oid || ':' || xmin FROM pg_catalog.pg_foreign_data_wrapper
	UNION ALL SELECT 'T' || oid || ':' || xmin FROM pg_catalog.pg_ts_config
	UNION ALL SELECT 'D' || oid || ':' || xmin FROM pg_catalog.pg_ts_dict
	UNION ALL SELECT 'E' || oid || ':' || xmin FROM pg_catalog.pg_event_trigger
) s(x)`

// snapshotNameRE is the form of an exported snapshot's name.
var snapshotNameRE = regexp.MustCompile(`^[0-9A-Fa-f-]+$`)

// schemaPrint returns schemaPrintSQL's fingerprint, under the exported
// snapshot named snap if it is not "", else under a new snapshot.
func schemaPrint(ctx context.Context, conn *pgx.Conn, snap string) (string, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return "", fmt.Errorf("postgres dump: fingerprint the schema: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if snap != "" {
		if !snapshotNameRE.MatchString(snap) {
			return "", fmt.Errorf("postgres dump: the server exported a snapshot named %q, which rxvault does not know how to import", snap)
		}
		if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+snap+"'"); err != nil {
			return "", fmt.Errorf("postgres dump: import the snapshot: %w", err)
		}
	}
	var p string
	if err := tx.QueryRow(ctx, schemaPrintSQL).Scan(&p); err != nil {
		return "", fmt.Errorf("postgres dump: fingerprint the schema: %w", err)
	}
	return p, nil
}

// Identity names the database dumped, as Reader.Identity does.
func (d *DumpStream) Identity() capture.Identity { return d.id }

// Tool is pg_dump's version line, e.g. "pg_dump (PostgreSQL) 15.8".
func (d *DumpStream) Tool() string { return d.tool }

// GTID is "": PostgreSQL has none.
func (d *DumpStream) GTID() string { return "" }

// Format is "pg_dump-custom": restore with pg_restore.
func (d *DumpStream) Format() string { return "pg_dump-custom" }

// Pos is the dump's position in the change stream: transactions with a
// commit LSN before it are in the dump, those at or after it are not.
func (d *DumpStream) Pos() segment.Position { return d.pos }

// Time is the server's clock just after Pos was reached (UTC): every
// transaction in the dump committed before it.
func (d *DumpStream) Time() time.Time { return d.at }

// Read reads pg_dump's output.
func (d *DumpStream) Read(p []byte) (int, error) { return d.r.Read(p) }

// Close waits for pg_dump and reports its failure (with the end of its
// error output), or that the dump was closed before its end; then it
// closes the replication connection, which drops the temporary slot.
func (d *DumpStream) Close() error {
	d.closeOnce.Do(func() {
		if err := d.out.Close(); err != nil {
			d.closeErr = fmt.Errorf("postgres dump: pg_dump: %w", err)
		}
		d.stop()
		_ = d.repl.Close(context.Background())
	})
	return d.closeErr
}

// pgDumpPath finds pg_dump in dir, else in PATH.
func pgDumpPath(dir string) (string, error) {
	p := filepath.Join(dir, "pg_dump")
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		return p, nil
	}
	p, err := exec.LookPath("pg_dump")
	if err != nil {
		return "", fmt.Errorf("postgres dump: pg_dump not found in %s nor in PATH; fix: install the PostgreSQL client matching the server (apt-get install postgresql-client-15) or set the PostgreSQL bin directory", dir)
	}
	return p, nil
}

// libpqParams are the URL parameters passed on to pg_dump; others (pgx's
// own, server settings meant for rxvault's sessions) are left out.
var libpqParams = map[string]bool{
	"sslmode": true, "sslrootcert": true, "sslcert": true, "sslkey": true, "sslcrl": true,
	"sslpassword": true, "sslsni": true, "ssl_min_protocol_version": true, "ssl_max_protocol_version": true,
	"connect_timeout": true, "keepalives": true, "keepalives_idle": true, "keepalives_interval": true,
	"keepalives_count": true, "tcp_user_timeout": true, "target_session_attrs": true,
	"gssencmode": true, "krbsrvname": true, "requirepeer": true, "channel_binding": true, "passfile": true,
}

// pgDumpConn turns the DSN into pg_dump's --dbname (without password or
// foreign parameters) and its environment: PATH, HOME, TZ and the PG*
// variables of environ, and PGPASSWORD when the DSN has a password.
func pgDumpConn(dsn string, environ []string) ([]string, []string, error) {
	u, err := parseDSN(dsn)
	if err != nil {
		return nil, nil, err
	}
	var env []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if k == "PATH" || k == "HOME" || k == "TZ" || strings.HasPrefix(k, "PG") {
			env = append(env, kv)
		}
	}
	if u.User != nil {
		if pw, ok := u.User.Password(); ok {
			env = append(env, "PGPASSWORD="+pw)
		}
		u.User = url.User(u.User.Username())
	}
	q := url.Values{}
	for k, v := range u.Query() {
		if libpqParams[k] {
			q[k] = v
		}
	}
	q.Set("application_name", "rxvault_dump")
	u.RawQuery = q.Encode()
	return []string{"--dbname=" + u.String()}, env, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
