package mysql

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"time"

	"github.com/rxvault/rxvault/internal/mysqlconn"
	"github.com/rxvault/rxvault/internal/proc"
)

// Defaults of Config.
const (
	DefaultServerID       = 4217_0001
	DefaultHeartbeat      = time.Second
	DefaultSpillThreshold = 4 << 20
	// HeartbeatSchema is the database holding rxvault's heartbeat table
	// on the source; rxvault creates it when missing.
	HeartbeatSchema = "rxvault"
)

// Config says what to capture and how.
type Config struct {
	// DSN is a mysql:// URL naming the one database to capture:
	// mysql://user:password@host:3306/pharmacy. Query parameters: tls
	// (true: TLS 1.2+ with the server's certificate verified; false:
	// plain, accepted only for a loopback host; the default is true
	// except on loopback) and ca_file (PEM file of the CA that signed the
	// server's certificate). Keep the password out of files: set the DSN
	// through RXVAULT_SOURCE_DSN, or put the password in MYSQL_PWD.
	DSN string
	// ID, if set, names the source in the archive instead of the
	// server's identity (MySQL server_uuid, MariaDB server_id@host:port),
	// so that its chain continues when the database moves to another
	// server: a MariaDB replica promoted by a failover (see Open). Set it
	// before the first run: a new name is a new source in the archive.
	ID string
	// ServerID is the replica server id rxvault registers with; it must
	// differ from the source's and from every other replica's (default
	// 42170001).
	ServerID uint32
	// Heartbeat is how often Run writes the heartbeat row (default 1s).
	Heartbeat time.Duration
	// StateDir holds the saved binlog position (the acknowledged end of
	// the archive): rxvault's equivalent of a replication slot. It must
	// be durable; the agent uses the spool directory.
	StateDir string
	// SpillDir holds spill files of large transactions (default the
	// system's temporary directory).
	SpillDir string
	// SpillThreshold is how many bytes of changes a transaction may hold
	// in memory before it spills to SpillDir (default 4 MiB).
	SpillThreshold int64
	// Env is the process environment (KEY=VALUE pairs; cmd passes
	// os.Environ()): MYSQL_PWD is the password when the DSN has none, and
	// the dump program gets its PATH and HOME. Nothing else reads the
	// environment.
	Env []string
	// DumpBin is the mariadb-dump (or mysqldump) program for Dump
	// (default: mariadb-dump from PATH, then mysqldump).
	DumpBin string
	// Logger receives the reader's logs, tagged component=capture/mysql;
	// nil discards them. Nothing logged holds row data, values or
	// passwords.
	Logger *slog.Logger

	// dumpSnapshotTaken, if set, runs in Dump on MariaDB once the rows'
	// snapshot is taken and before the schema is dumped (a test hook).
	dumpSnapshotTaken func(context.Context) error
}

// withDefaults returns cfg with defaults filled in and its DSN parsed, or
// an error naming the bad field and its fix.
func (cfg Config) withDefaults() (Config, *mysqlconn.DSN, error) {
	if cfg.ServerID == 0 {
		cfg.ServerID = DefaultServerID
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.SpillDir == "" {
		cfg.SpillDir = os.TempDir()
	}
	if cfg.SpillThreshold == 0 {
		cfg.SpillThreshold = DefaultSpillThreshold
	}
	if cfg.StateDir == "" {
		return cfg, nil, fmt.Errorf("mysql capture: no state directory; fix: set spool.dir")
	}
	if cfg.ID != "" && !sourceIDRE.MatchString(cfg.ID) {
		return cfg, nil, fmt.Errorf("mysql capture: source id %q: want 1 to 64 letters, digits, '.', '_' or '-'; fix: set source.id to a name such as pharmacy-main", cfg.ID)
	}
	if cfg.Heartbeat < 0 || cfg.SpillThreshold < 0 {
		return cfg, nil, fmt.Errorf("mysql capture: negative heartbeat or spill threshold; fix: leave them 0 for the defaults")
	}
	d, err := mysqlconn.Parse(cfg.DSN, proc.Getenv(cfg.Env, "MYSQL_PWD"))
	if err != nil {
		return cfg, nil, err
	}
	if d.DB == HeartbeatSchema {
		return cfg, nil, fmt.Errorf("mysql capture: database %q is rxvault's own; fix: capture another database", d.DB)
	}
	return cfg, d, nil
}

// sourceIDRE matches a valid Config.ID.
var sourceIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
