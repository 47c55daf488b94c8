package mysql

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/internal/mysqlconn"
	"github.com/rxvault/rxvault/internal/proc"
	"github.com/rxvault/rxvault/segment"
)

// DumpFormat names the dump's format in base-backup manifests: SQL text
// for the mariadb (or mysql) client to load. On MariaDB the rows are
// rxvault's own INSERT statements between mariadb-dump's schema and its
// triggers (see Dump); that is still such text, loaded the same way, so
// the name is unchanged: archives written before load as they did, and
// a restore by an older rxvault loads the new ones.
const DumpFormat = "mysqldump-sql"

// DumpStream is a running mariadb-dump of the database, joined exactly to
// the binlog: it holds every transaction committed before Pos and none at
// or after it. Read it to the end, then Close.
type DumpStream struct {
	id   capture.Identity
	tool string
	pos  segment.Position
	gtid string
	// server is the identity of the server dumped (server.id).
	server string
	at     time.Time
	r      io.Reader // the head already read, then the rest
	eof    bool      // r is read to its end
	out    *proc.Output
	rows   *rowsStream // MariaDB: the rows section (see rows.go)
}

var _ capture.Dump = (*DumpStream)(nil)

// changeMasterRE matches the position line --master-data=2 writes.
var changeMasterRE = regexp.MustCompile(`^-- CHANGE MASTER TO MASTER_LOG_FILE='([^']+)', MASTER_LOG_POS=(\d+);`)

// Dump starts a consistent dump of cfg's database, with routines, events
// and triggers, TIMESTAMPs in UTC. Time is the server's clock read after
// the snapshot, so everything in the dump committed at or before Time.
//
// On MariaDB, rxvault reads the rows itself (see rows.go) in a
// consistent-snapshot transaction, whose binlog position
// (binlog_snapshot_file and binlog_snapshot_position, with no global
// lock) is the dump's; mariadb-dump --no-data writes the schema, its ENUM
// and SET members made exact (see enums.go), and, after the rows, the
// triggers. On MySQL, the dump is mysqldump --single-transaction
// --master-data=2, BLOBs in hex, whose snapshot takes FLUSH TABLES WITH
// READ LOCK for a moment to read its binlog position; Dump reads the
// dump's head up to that position before it returns.
//
// The password reaches mariadb-dump through MYSQL_PWD in its environment,
// never its command line. ctx bounds the whole dump.
func Dump(ctx context.Context, cfg Config) (*DumpStream, error) {
	cfg, d, c, srv, err := openChecked(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	bin, err := dumpPath(cfg.DumpBin)
	if err != nil {
		return nil, capture.Permanent(err)
	}
	ver, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("mysql dump: %s --version: %w", bin, err)
	}
	if srv.mariadb {
		return dumpMariaDB(ctx, cfg, d, c, srv.identity(cfg.ID, d.DB), srv.id, bin, strings.TrimSpace(string(ver)))
	}
	args := []string{"--single-transaction", "--master-data=2", "--routines", "--events", "--triggers", "--hex-blob"}
	if !strings.Contains(string(ver), "MariaDB") {
		// MySQL's mysqldump would otherwise write SET @@GLOBAL.GTID_PURGED
		// into the dump, and the restore would run it on the target.
		args = append(args, "--set-gtid-purged=OFF")
	}
	out, err := proc.Start(dumpCommand(ctx, bin, d, cfg.Env, args...))
	if err != nil {
		return nil, fmt.Errorf("mysql dump: start %s: %w", bin, err)
	}
	ds := &DumpStream{id: srv.identity(cfg.ID, d.DB), server: srv.id, tool: strings.TrimSpace(string(ver)), out: out}
	head, ahead, _, pos, err := readHead(out)
	if err != nil {
		_ = ds.Close()
		return nil, fmt.Errorf("mysql dump: %w: %s", err, out.Stderr())
	}
	ds.pos = pos
	if ds.at, err = serverClock(c); err != nil {
		_ = ds.Close()
		return nil, err
	}
	defaults, err := databaseDefaults(c, d.DB)
	if err != nil {
		_ = ds.Close()
		return nil, err
	}
	ds.r = io.MultiReader(bytes.NewReader(head), bytes.NewReader(defaults), bytes.NewReader(ahead), out)
	return ds, nil
}

// dumpAttempts bounds how often a MariaDB dump starts over because DDL
// changed the schema while it was read (see dumpMariaDBOnce).
const dumpAttempts = 8

// errSchemaMoved is dumpMariaDBOnce's verdict when DDL changed the schema
// between the snapshot and the end of the schema dump.
var errSchemaMoved = errors.New("DDL changed the schema while mariadb-dump read it, after the snapshot's position")

// dumpMariaDB dumps a MariaDB database (see Dump): c is a session of its
// own, open for Dump's call only. It starts over when DDL moved the
// schema under the dump (up to dumpAttempts times, waiting 1 s, 2 s, ...
// between attempts), then fails.
func dumpMariaDB(ctx context.Context, cfg Config, d *mysqlconn.DSN, c *client.Conn, id capture.Identity, server, bin, tool string) (*DumpStream, error) {
	for attempt := 1; ; attempt++ {
		ds, err := dumpMariaDBOnce(ctx, cfg, d, c, id, server, bin, tool)
		if !errors.Is(err, errSchemaMoved) {
			return ds, err
		}
		if attempt == dumpAttempts {
			return nil, fmt.Errorf("mysql dump: %w, %d times in a row; fix: take the base backup when no DDL runs", err, attempt)
		}
		wait := time.Duration(attempt) * time.Second
		cfg.Logger.Warn("base backup: DDL changed the schema while it was dumped; starting over", "attempt", attempt, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// dumpMariaDBOnce makes one attempt at a MariaDB dump.
//
// The rows come from a consistent snapshot, but the schema from
// mariadb-dump, which reads the definitions as they are when it runs:
// DDL is not transactional, and no snapshot holds it back. DDL that
// committed after the snapshot's position but before mariadb-dump read
// the definitions would be in both the schema and the binlog replayed
// after the position, so a restore would run it twice: a swap of two
// column names, swapped back by the replay, would silently exchange their
// values. So the schema is fingerprinted (schemaPrint) before the
// snapshot and again after the schema and the triggers are dumped; if
// the prints differ the attempt is dropped with errSchemaMoved. DDL after
// the second print is in the binlog after the position but not in the
// dumped schema, so it replays once; and the snapshot's reads of a table
// whose definition it changed fail (ER_TABLE_DEF_CHANGED) rather than mix
// the two.
func dumpMariaDBOnce(ctx context.Context, cfg Config, d *mysqlconn.DSN, c *client.Conn, id capture.Identity, server, bin, tool string) (_ *DumpStream, err error) {
	env := cfg.Env
	before, err := schemaPrint(c, d.DB)
	if err != nil {
		return nil, fmt.Errorf("mysql dump: %w", err)
	}
	snap, err := connect(ctx, d, d.DB)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			snap.Close()
		}
	}()
	for _, q := range []string{
		"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
		"SET time_zone = '+00:00'",
		// Values as stored, strings in no character set but their own.
		"SET character_set_results = binary",
		// The rows are read as fast as the dump is stored, which may stall.
		"SET SESSION net_write_timeout = 3600",
		"START TRANSACTION WITH CONSISTENT SNAPSHOT",
	} {
		if _, err := snap.Execute(q); err != nil {
			return nil, fmt.Errorf("mysql dump: %s: %w", q, err)
		}
	}
	st, err := mysqlconn.QueryRows(snap, "SHOW STATUS LIKE 'binlog_snapshot_%'")
	if err != nil {
		return nil, fmt.Errorf("mysql dump: the snapshot's binlog position: %w", err)
	}
	var file, off string
	for _, r := range st {
		switch strings.ToLower(r[0]) {
		case "binlog_snapshot_file":
			file = r[1]
		case "binlog_snapshot_position":
			off = r[1]
		}
	}
	_, n, perr := parseBinlogName(file)
	lo, oerr := strconv.ParseUint(off, 10, 64)
	if perr != nil || oerr != nil {
		return nil, fmt.Errorf("mysql dump: the snapshot's binlog position %q:%q: is the binlog on (log_bin)?", file, off)
	}
	if cfg.dumpSnapshotTaken != nil {
		if err := cfg.dumpSnapshotTaken(ctx); err != nil {
			return nil, err
		}
	}
	ds := &DumpStream{id: id, server: server, tool: tool + " (schema; rows by rxvault)", pos: segment.Position{Hi: n, Lo: lo}}
	// NULL (no GTID yet, or a position it cannot place) leaves it empty.
	r, err := c.Execute("SELECT BINLOG_GTID_POS(?, ?)", file, lo)
	if err != nil {
		return nil, fmt.Errorf("mysql dump: the snapshot's GTID position: %w", err)
	}
	ds.gtid, _ = r.GetString(0, 0)
	ds.gtid = strings.Clone(ds.gtid)
	r.Close()
	if ds.at, err = serverClock(c); err != nil {
		return nil, err
	}
	defaults, err := databaseDefaults(c, d.DB)
	if err != nil {
		return nil, err
	}
	tables, err := snapshotTables(snap, d.DB)
	if err != nil {
		return nil, fmt.Errorf("mysql dump: %w", err)
	}
	fixes, err := enumFixes(ctx, c, d)
	if err != nil {
		return nil, fmt.Errorf("mysql dump: %w", err)
	}
	schema, err := runDump(ctx, bin, d, env, "--single-transaction", "--no-data", "--skip-triggers", "--routines", "--events")
	if err != nil {
		return nil, err
	}
	if schema, err = fixSchema(schema, fixes); err != nil {
		return nil, fmt.Errorf("mysql dump: %w", err)
	}
	triggers, err := runDump(ctx, bin, d, env, "--single-transaction", "--no-data", "--no-create-info", "--skip-routines", "--skip-events", "--triggers")
	if err != nil {
		return nil, err
	}
	after, err := schemaPrint(c, d.DB)
	if err != nil {
		return nil, fmt.Errorf("mysql dump: %w", err)
	}
	if after != before {
		return nil, errSchemaMoved
	}
	ds.rows = startRows(ctx, snap, d.DB, tables)
	ds.r = io.MultiReader(bytes.NewReader(defaults), bytes.NewReader(schema), ds.rows, bytes.NewReader(triggers))
	return ds, nil
}

// serverClock reads the server's clock.
func serverClock(c *client.Conn) (time.Time, error) {
	now, err := mysqlconn.QueryRow(c, "SELECT DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%d %H:%i:%s.%f')")
	var at time.Time
	if err == nil {
		at, err = time.Parse("2006-01-02 15:04:05.999999", now[0])
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("mysql dump: read the server clock: %w", err)
	}
	return at, nil
}

// databaseDefaults returns the dump's statement that sets the database's
// defaults. The dump names no database, so that it loads into one of any
// name; it does carry the database's defaults (what tables created later
// by replayed DDL inherit), read after the snapshot so that a change
// between the two is in the binlog after Pos.
func databaseDefaults(c *client.Conn, db string) ([]byte, error) {
	dbDefaults, err := mysqlconn.QueryRow(c, "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", db)
	if err != nil {
		return nil, fmt.Errorf("mysql dump: read the database's character set: %w", err)
	}
	if !charsetRE.MatchString(dbDefaults[0]) || !charsetRE.MatchString(dbDefaults[1]) {
		return nil, fmt.Errorf("mysql dump: unexpected character set %q or collation %q", dbDefaults[0], dbDefaults[1])
	}
	return fmt.Appendf(nil, "\n-- rxvault: the database's defaults\nALTER DATABASE CHARACTER SET %s COLLATE %s;\n", dbDefaults[0], dbDefaults[1]), nil
}

// dumpCommand is the dump program's command for d's database with args
// (and the options every dump takes). The password reaches it through
// MYSQL_PWD in its environment, never its command line.
func dumpCommand(ctx context.Context, bin string, d *mysqlconn.DSN, env []string, args ...string) *exec.Cmd {
	all := []string{"--no-defaults", "--host=" + d.Host, "--port=" + strconv.Itoa(int(d.Port)), "--user=" + d.User, "--protocol=TCP",
		"--tz-utc", "--default-character-set=utf8mb4", "--skip-dump-date", "--no-tablespaces"}
	if d.TLS != nil {
		all = append(all, "--ssl", "--ssl-verify-server-cert")
		if d.TLSCA != "" {
			all = append(all, "--ssl-ca="+d.TLSCA)
		}
	}
	all = append(all, args...)
	all = append(all, "--", d.DB)
	cmd := exec.CommandContext(ctx, bin, all...)
	cmd.Env = []string{"PATH=" + proc.Getenv(env, "PATH"), "HOME=" + proc.Getenv(env, "HOME"), "MYSQL_PWD=" + d.Password, "TZ=UTC"}
	return cmd
}

// maxSchemaDump bounds a schema dump read into memory.
const maxSchemaDump = 256 << 20

// runDump runs the dump program with args and returns its output, which
// holds no rows (a schema).
func runDump(ctx context.Context, bin string, d *mysqlconn.DSN, env []string, args ...string) ([]byte, error) {
	out, err := proc.Start(dumpCommand(ctx, bin, d, env, args...))
	if err != nil {
		return nil, fmt.Errorf("mysql dump: start %s: %w", bin, err)
	}
	b, rerr := io.ReadAll(io.LimitReader(out, maxSchemaDump+1))
	if rerr == nil && len(b) > maxSchemaDump {
		rerr = fmt.Errorf("the schema dump is over %d MiB", maxSchemaDump>>20)
	}
	if rerr != nil {
		_ = out.Close()
		return nil, fmt.Errorf("mysql dump: %w", rerr)
	}
	if err := out.Close(); err != nil {
		return nil, fmt.Errorf("mysql dump: %s: %w", bin, err)
	}
	return b, nil
}

// charsetRE matches character set and collation names.
var charsetRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

// readHead reads the dump up to and including the position line and
// returns what it read (head: up to the end of the position line; then
// what was read ahead), the binlog file name and the position.
func readHead(out io.Reader) (head, ahead []byte, file string, pos segment.Position, err error) {
	br := bufio.NewReaderSize(out, 64<<10)
	for len(head) < 1<<20 {
		line, rerr := br.ReadBytes('\n')
		head = append(head, line...)
		if m := changeMasterRE.FindSubmatch(line); m != nil {
			_, n, perr := parseBinlogName(string(m[1]))
			off, oerr := strconv.ParseUint(string(m[2]), 10, 64)
			if perr != nil || oerr != nil {
				return nil, nil, "", segment.Position{}, fmt.Errorf("bad position line %q", bytes.TrimSpace(line))
			}
			// What bufio read ahead belongs to the stream too.
			rest, _ := br.Peek(br.Buffered())
			ahead = bytes.Clone(rest)
			return head, ahead, string(m[1]), segment.Position{Hi: n, Lo: off}, nil
		}
		if rerr != nil {
			return nil, nil, "", segment.Position{}, fmt.Errorf("the dump ended before its binlog position line (%w)", rerr)
		}
	}
	return nil, nil, "", segment.Position{}, errors.New("no binlog position in the dump's first MiB")
}

// Identity names the source dumped.
func (d *DumpStream) Identity() capture.Identity { return d.id }

// Tool names the dump program and its version.
func (d *DumpStream) Tool() string { return d.tool }

// Format is DumpFormat.
func (d *DumpStream) Format() string { return DumpFormat }

// Pos is the binlog position of the snapshot.
func (d *DumpStream) Pos() segment.Position { return d.pos }

// GTID is MariaDB's GTID position at Pos (BINLOG_GTID_POS, in
// gtid_binlog_pos form: 0-1-5012, one GTID per domain), or "" on MySQL
// and where the server has none.
func (d *DumpStream) GTID() string { return d.gtid }

// Time is the server's clock read just after the snapshot.
func (d *DumpStream) Time() time.Time { return d.at }

// Read reads the dump.
func (d *DumpStream) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if errors.Is(err, io.EOF) {
		d.eof = true
	}
	return n, err
}

// Close waits for the dump program, or the rows' reader, and reports its
// failure (with the end of the program's error output), or that the dump
// was closed before its end (proc.ErrClosedEarly).
func (d *DumpStream) Close() error {
	if d.rows != nil {
		err := d.rows.close()
		if err == nil && !d.eof {
			err = proc.ErrClosedEarly
		}
		if err != nil {
			return fmt.Errorf("mysql dump: %w", err)
		}
		return nil
	}
	if err := d.out.Close(); err != nil {
		return fmt.Errorf("mysql dump: %w", err)
	}
	return nil
}

// dumpPath finds the dump program: bin if set, else mariadb-dump, else
// mysqldump from PATH.
func dumpPath(bin string) (string, error) {
	if bin != "" {
		return exec.LookPath(bin)
	}
	for _, name := range []string{"mariadb-dump", "mysqldump"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("mysql dump: neither mariadb-dump nor mysqldump is in PATH; fix: install the client (apt-get install mariadb-client)")
}
