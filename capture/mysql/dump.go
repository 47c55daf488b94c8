package mysql

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/internal/mysqlconn"
	"github.com/rxvault/rxvault/internal/proc"
	"github.com/rxvault/rxvault/segment"
)

// DumpFormat names the dump's format in base-backup manifests: SQL text
// as mariadb-dump (or mysqldump) writes it, for the mariadb (or mysql)
// client to load.
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
	out    *proc.Output
}

var _ capture.Dump = (*DumpStream)(nil)

// changeMasterRE matches the position line --master-data=2 writes.
var changeMasterRE = regexp.MustCompile(`^-- CHANGE MASTER TO MASTER_LOG_FILE='([^']+)', MASTER_LOG_POS=(\d+);`)

// Dump starts a consistent dump of cfg's database: mariadb-dump
// --single-transaction --master-data=2, with routines, events and
// triggers, BLOBs in hex, TIMESTAMPs in UTC. Its snapshot is a
// consistent-snapshot transaction whose binlog position the dump records
// (MariaDB reads it from binlog_snapshot_file and binlog_snapshot_position
// with no global lock; MySQL's mysqldump takes FLUSH TABLES WITH READ LOCK
// for a moment to read it). Dump reads the dump's head up to that
// position before it returns; Time is the server's clock read after it,
// so everything in the dump committed at or before Time.
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
	args := []string{"--no-defaults", "--host=" + d.Host, "--port=" + strconv.Itoa(int(d.Port)), "--user=" + d.User, "--protocol=TCP",
		"--single-transaction", "--master-data=2", "--routines", "--events", "--triggers", "--hex-blob", "--tz-utc",
		"--default-character-set=utf8mb4", "--skip-dump-date", "--no-tablespaces"}
	if d.TLS != nil {
		args = append(args, "--ssl", "--ssl-verify-server-cert")
		if d.TLSCA != "" {
			args = append(args, "--ssl-ca="+d.TLSCA)
		}
	}
	if !strings.Contains(string(ver), "MariaDB") {
		// MySQL's mysqldump would otherwise write SET @@GLOBAL.GTID_PURGED
		// into the dump, and the restore would run it on the target.
		args = append(args, "--set-gtid-purged=OFF")
	}
	args = append(args, "--", d.DB)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "MYSQL_PWD=" + d.Password, "TZ=UTC"}
	out, err := proc.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("mysql dump: start %s: %w", bin, err)
	}
	ds := &DumpStream{id: srv.identity(cfg.ID, d.DB), server: srv.id, tool: strings.TrimSpace(string(ver)), out: out}
	head, ahead, file, pos, err := readHead(out)
	if err != nil {
		_ = ds.Close()
		return nil, fmt.Errorf("mysql dump: %w: %s", err, out.Stderr())
	}
	ds.pos = pos
	if srv.mariadb {
		// NULL (no GTID yet, or a position it cannot place) leaves it empty.
		r, err := c.Execute("SELECT BINLOG_GTID_POS(?, ?)", file, pos.Lo)
		if err != nil {
			_ = ds.Close()
			return nil, fmt.Errorf("mysql dump: the snapshot's GTID position: %w", err)
		}
		ds.gtid, _ = r.GetString(0, 0)
		ds.gtid = strings.Clone(ds.gtid)
		r.Close()
	}
	now, err := mysqlconn.QueryRow(c, "SELECT DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%d %H:%i:%s.%f')")
	if err == nil {
		ds.at, err = time.Parse("2006-01-02 15:04:05.999999", now[0])
	}
	if err != nil {
		_ = ds.Close()
		return nil, fmt.Errorf("mysql dump: read the server clock: %w", err)
	}
	// The dump names no database, so that it loads into one of any name;
	// it does carry the database's defaults (what tables created later by
	// replayed DDL inherit), read after the snapshot so that a change
	// between the two is in the binlog after Pos.
	dbDefaults, err := mysqlconn.QueryRow(c, "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", d.DB)
	if err != nil {
		_ = ds.Close()
		return nil, fmt.Errorf("mysql dump: read the database's character set: %w", err)
	}
	if !charsetRE.MatchString(dbDefaults[0]) || !charsetRE.MatchString(dbDefaults[1]) {
		_ = ds.Close()
		return nil, fmt.Errorf("mysql dump: unexpected character set %q or collation %q", dbDefaults[0], dbDefaults[1])
	}
	defaults := fmt.Appendf(nil, "\n-- rxvault: the database's defaults\nALTER DATABASE CHARACTER SET %s COLLATE %s;\n", dbDefaults[0], dbDefaults[1])
	ds.r = io.MultiReader(bytes.NewReader(head), bytes.NewReader(defaults), bytes.NewReader(ahead), out)
	return ds, nil
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
func (d *DumpStream) Read(p []byte) (int, error) { return d.r.Read(p) }

// Close waits for the dump program and reports its failure (with the end
// of its error output), or that the dump was closed before its end.
func (d *DumpStream) Close() error {
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
