package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rxvault/rxvault/capture"
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
	repl *pgconn.PgConn

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

func dump(ctx context.Context, cfg Config) (_ *DumpStream, err error) {
	cfg, err = cfg.withDefaults()
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
	args, env, err := pgDumpConn(cfg.DSN)
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

	if cfg.dumpSlotCreated != nil {
		if err := cfg.dumpSlotCreated(ctx); err != nil {
			return nil, err
		}
	}

	args = append([]string{"--snapshot=" + res.SnapshotName, "--format=custom", "--compress=0",
		"--no-publications", "--no-subscriptions", "--no-password"}, args...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	d := &DumpStream{
		id:   capture.Identity{Engine: segment.EnginePostgres, SourceID: sys.SystemID + "/" + sys.DBName},
		tool: strings.TrimSpace(string(ver)),
		pos:  segment.Position{Lo: uint64(lsn)},
		at:   at.UTC(),
		repl: repl,
	}
	if d.out, err = proc.Start(cmd); err != nil {
		return nil, fmt.Errorf("postgres dump: start pg_dump: %w", err)
	}
	return d, nil
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
func (d *DumpStream) Read(p []byte) (int, error) { return d.out.Read(p) }

// Close waits for pg_dump and reports its failure (with the end of its
// error output), or that the dump was closed before its end; then it
// closes the replication connection, which drops the temporary slot.
func (d *DumpStream) Close() error {
	d.closeOnce.Do(func() {
		if err := d.out.Close(); err != nil {
			d.closeErr = fmt.Errorf("postgres dump: pg_dump: %w", err)
		}
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
// foreign parameters) and its environment: PATH, HOME, TZ, the caller's
// PG* variables, and PGPASSWORD when the DSN has a password.
func pgDumpConn(dsn string) ([]string, []string, error) {
	u, err := parseDSN(dsn)
	if err != nil {
		return nil, nil, err
	}
	var env []string
	for _, kv := range os.Environ() {
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
