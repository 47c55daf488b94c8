package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Defaults of Config.
const (
	DefaultSlot           = "rxvault"
	DefaultPublication    = "rxvault"
	DefaultHeartbeat      = time.Second
	DefaultStatusInterval = 5 * time.Second
	DefaultSpillThreshold = 4 << 20
	DefaultPGBin          = "/usr/lib/postgresql/15/bin"
)

// Config says what to capture and how.
type Config struct {
	// DSN is a postgres:// (or postgresql://) URL of the database to
	// capture. Keep its password out of files: libpq's PGPASSWORD and
	// ~/.pgpass work as usual.
	DSN string
	// Slot is the logical replication slot's name: 1 to 63 lowercase
	// letters, digits or underscores (default "rxvault").
	Slot string
	// Publication is the publication's name: a lowercase SQL identifier
	// (default "rxvault").
	Publication string
	// Tables lists the tables to capture as "schema.table" (SQL identifier
	// syntax: quote mixed-case names). Empty captures every table (FOR ALL
	// TABLES). A partitioned table stands for its partitions.
	Tables []string
	// Heartbeat is how often Run writes the sequences and heartbeat
	// messages (default 1s).
	Heartbeat time.Duration
	// StatusInterval is how often Run reports the acknowledged position to
	// the server when nothing else prompts it (default 5s; the server's
	// wal_sender_timeout, 60s by default, must be larger).
	StatusInterval time.Duration
	// SpillDir holds spill files of large transactions (default the
	// system's temporary directory). Files are unlinked at creation and
	// encrypted under a per-process key; see segment.Spill.
	SpillDir string
	// SpillThreshold is how many bytes of changes a transaction the server
	// sends whole may hold in memory before it spills to SpillDir
	// (default 4 MiB). Streamed transactions always spill.
	SpillThreshold int64
	// PGBin is the directory holding pg_dump, for Dump (default
	// /usr/lib/postgresql/15/bin; when pg_dump is not there, PATH).
	PGBin string
	// Env is the process environment (KEY=VALUE pairs; cmd passes
	// os.Environ()): pg_dump gets its PATH, HOME, TZ and PG* variables.
	// Nothing else reads the environment (pgx reads libpq's PG* variables
	// itself).
	Env []string
	// Logger receives the reader's and the dump's logs, tagged
	// component=capture/postgres; nil discards them. Nothing logged holds
	// row data, values, SQL text or passwords.
	Logger *slog.Logger

	// dumpSlotCreated, if set (by tests), runs in Dump after the temporary
	// slot exists and before pg_dump starts: DDL it commits lands between
	// the backup's position and pg_dump's locks.
	dumpSlotCreated func(ctx context.Context) error
}

var (
	slotNameRE = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)
	pubNameRE  = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
)

// withDefaults returns cfg with defaults filled in, or an error naming the
// first bad field and its fix.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Slot == "" {
		cfg.Slot = DefaultSlot
	}
	if cfg.Publication == "" {
		cfg.Publication = DefaultPublication
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.StatusInterval == 0 {
		cfg.StatusInterval = DefaultStatusInterval
	}
	if cfg.SpillDir == "" {
		cfg.SpillDir = os.TempDir()
	}
	if cfg.SpillThreshold == 0 {
		cfg.SpillThreshold = DefaultSpillThreshold
	}
	if cfg.PGBin == "" {
		cfg.PGBin = DefaultPGBin
	}
	switch {
	case cfg.DSN == "":
		return cfg, fmt.Errorf("postgres capture: no DSN; fix: set source.dsn to a postgres:// URL")
	case !slotNameRE.MatchString(cfg.Slot):
		return cfg, fmt.Errorf("postgres capture: slot name %q is not 1-63 lowercase letters, digits or underscores; fix: choose a name like rxvault", cfg.Slot)
	case !pubNameRE.MatchString(cfg.Publication):
		return cfg, fmt.Errorf("postgres capture: publication name %q is not a lowercase SQL identifier; fix: choose a name like rxvault", cfg.Publication)
	case cfg.Heartbeat < 0 || cfg.StatusInterval < 0 || cfg.SpillThreshold < 0:
		return cfg, fmt.Errorf("postgres capture: negative heartbeat, status interval or spill threshold; fix: leave them 0 for the defaults")
	}
	for _, t := range cfg.Tables {
		if strings.TrimSpace(t) == "" {
			return cfg, fmt.Errorf("postgres capture: empty table name in the table list; fix: list tables as schema.table")
		}
	}
	if _, err := parseDSN(cfg.DSN); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// parseDSN checks that dsn is a postgres URL that pgx can use.
func parseDSN(dsn string) (*url.URL, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// Never echo the DSN: it may hold a password.
		return nil, fmt.Errorf("postgres capture: the DSN is not a postgres:// URL; fix: set source.dsn to postgres://user@host:5432/dbname")
	}
	if _, err := pgconn.ParseConfig(dsn); err != nil {
		return nil, fmt.Errorf("postgres capture: bad DSN: %w; fix: correct source.dsn", redact(err))
	}
	return u, nil
}

// redact replaces an error that may quote the DSN (pgconn's parse errors
// and the url.Errors inside them do) with one that does not.
func redact(err error) error {
	var pe *pgconn.ParseConfigError
	var ue *url.Error
	if errors.As(err, &pe) || errors.As(err, &ue) {
		return errors.New("cannot parse the DSN (check its syntax and escaping)")
	}
	return err
}

// regularConfig is the configuration of a regular (non-replication)
// connection. Its search_path is pg_catalog alone, so format_type qualifies
// every type outside pg_catalog with its schema.
func (cfg *Config) regularConfig() (*pgx.ConnConfig, error) {
	cc, err := pgx.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgres capture: bad DSN: %w; fix: correct source.dsn", redact(err))
	}
	for k, v := range outputSettings {
		cc.RuntimeParams[k] = v
	}
	cc.RuntimeParams["application_name"] = "rxvault"
	cc.RuntimeParams["search_path"] = "pg_catalog"
	return cc, nil
}

// outputSettings pin the session settings that shape values' text form,
// so that captured values do not depend on the server's or role's
// defaults and replay reads them back exactly: ISO dates, UTC offsets,
// shortest exact floats, hex bytea, C money format.
var outputSettings = map[string]string{
	"DateStyle":          "ISO, MDY",
	"IntervalStyle":      "postgres",
	"TimeZone":           "UTC",
	"extra_float_digits": "3",
	"bytea_output":       "hex",
	"lc_monetary":        "C",
}

// replicationConfig is the configuration of a logical replication
// connection to the DSN's database.
func (cfg *Config) replicationConfig() (*pgconn.Config, error) {
	pc, err := pgconn.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgres capture: bad DSN: %w; fix: correct source.dsn", redact(err))
	}
	for k, v := range outputSettings {
		pc.RuntimeParams[k] = v
	}
	pc.RuntimeParams["replication"] = "database"
	pc.RuntimeParams["application_name"] = "rxvault"
	return pc, nil
}
