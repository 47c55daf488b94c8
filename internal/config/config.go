// Package config defines rxvault's configuration: its structure, defaults,
// loading (a YAML file, RXVAULT_<SECTION>_<KEY> environment variables and
// --set flags, in rising precedence) and validation.
//
// Configuration is read once, in cmd/rxvault, and passed down as values;
// no other package reads files, the environment or viper.
package config

import "time"

// Config is the whole configuration. Each field's mapstructure tag is its
// key within its section; the section's tag is the section name.
type Config struct {
	Source  Source  `mapstructure:"source"`
	Archive Archive `mapstructure:"archive"`
	Keys    Keys    `mapstructure:"keys"`
	Segment Segment `mapstructure:"segment"`
	Spool   Spool   `mapstructure:"spool"`
	Backup  Backup  `mapstructure:"backup"`
	Monitor Monitor `mapstructure:"monitor"`
	Log     Log     `mapstructure:"log"`
}

// Source is the database rxvault captures from.
type Source struct {
	// DSN selects the engine by scheme: postgres://, mysql:// (MySQL and
	// MariaDB) or sqlserver://. The password may come from the
	// environment (PGPASSWORD and the like) instead of the DSN.
	DSN string `mapstructure:"dsn"`
	// Slot is the PostgreSQL logical replication slot rxvault creates and
	// reads.
	Slot string `mapstructure:"slot"`
	// Publication is the PostgreSQL publication rxvault creates and reads.
	Publication string `mapstructure:"publication"`
	// Tables limits capture to these schema.table names; empty captures
	// every table (PostgreSQL: a publication FOR ALL TABLES).
	Tables []string `mapstructure:"tables"`
	// Heartbeat is how often rxvault writes a heartbeat (and the values of
	// the sequences) into the change stream, so an idle database still
	// shows progress and sequences restore to their values.
	Heartbeat time.Duration `mapstructure:"heartbeat"`
	// ServerID is the replica server id rxvault registers with a MySQL or
	// MariaDB source; no server or other replica may use it.
	ServerID uint32 `mapstructure:"server_id"`
	// ID, MySQL and MariaDB only, names the source in the archive instead
	// of the server's identity, so that the archive's chain follows the
	// database to another server (a MariaDB failover to a replica). Empty:
	// the server's identity. Set it before the first run.
	ID string `mapstructure:"id"`
}

// Archive is where segments and base backups are stored.
type Archive struct {
	// Stores are store URLs: file:///abs/path or
	// s3://bucket/prefix?endpoint=host:port&region=r. Every store receives
	// every object; an object counts as archived once it is in all of them.
	Stores []string `mapstructure:"stores"`
	// LockMode is the retention mode of every object: compliance,
	// governance or none. A store URL may override it with ?lock=.
	LockMode string `mapstructure:"lock_mode"`
	// Retention is how long each object is locked after it is written. A
	// store URL may override it with ?retention=.
	Retention time.Duration `mapstructure:"retention"`
}

// Keys holds the public keys data keys are wrapped to.
type Keys struct {
	// Recipients are recipient lines (rxvault-pub-v1:...). Every object is
	// readable by each matching identity; add a recipient to rotate.
	Recipients []string `mapstructure:"recipients"`
}

// Segment controls how the stream is cut into segments.
type Segment struct {
	Interval time.Duration `mapstructure:"interval"`  // close a segment this often
	MaxBytes ByteSize      `mapstructure:"max_bytes"` // or once it holds this much payload
}

// Spool is the agent's local durable queue.
type Spool struct {
	Dir string `mapstructure:"dir"`
}

// Backup schedules base backups.
type Backup struct {
	Interval time.Duration `mapstructure:"interval"`
}

// Monitor is the agent's monitoring endpoint and alerts.
type Monitor struct {
	Listen string        `mapstructure:"listen"` // host:port; loopback by default
	RPO    time.Duration `mapstructure:"rpo"`    // recovery point objective
	// TLSCert and TLSKey (PEM files) make the endpoint serve HTTPS; they
	// are required when Listen is not a loopback address.
	TLSCert string `mapstructure:"tls_cert"`
	TLSKey  string `mapstructure:"tls_key"`
	// Token, if set, is required as a bearer token on every request. Keep
	// it in the environment: RXVAULT_MONITOR_TOKEN.
	Token string `mapstructure:"token"`
	// WebhookURL receives alerts as JSON POSTs (https, except to loopback).
	WebhookURL string `mapstructure:"webhook_url"`
	// WebhookHeader and WebhookSecret add one header to every webhook
	// request (RXVAULT_MONITOR_WEBHOOK_SECRET for the secret).
	WebhookHeader string `mapstructure:"webhook_header"`
	WebhookSecret string `mapstructure:"webhook_secret"`
	// StoreDownAfter is how long a store may fail before it is unhealthy
	// and alerted.
	StoreDownAfter time.Duration `mapstructure:"store_down_after"`
	// BackupGrace is how far past backup.interval the newest base backup
	// may age before the backup alert fires.
	BackupGrace time.Duration `mapstructure:"backup_grace"`
	// VerifyInterval is how often the agent reads back the segments it
	// shipped, checking them without a key; 0 disables it.
	VerifyInterval time.Duration `mapstructure:"verify_interval"`
}

// Log sets up logging.
type Log struct {
	Level  string `mapstructure:"level"`  // debug, info, warn, error
	Format string `mapstructure:"format"` // text or json
}

// ByteSize is a size in bytes; in YAML, the environment and flags it may be
// written as a number or with a unit: 64MiB, 512KB, 1GiB.
type ByteSize int64

// Default returns the configuration used for every key not set otherwise.
func Default() Config {
	return Config{
		Source: Source{Slot: "rxvault", Publication: "rxvault", Tables: []string{}, Heartbeat: time.Second, ServerID: 42170001},
		Archive: Archive{
			Stores:    []string{"file:///var/lib/rxvault/archive"},
			LockMode:  "compliance",
			Retention: 6 * 365 * 24 * time.Hour, // HIPAA's six years
		},
		Segment: Segment{Interval: 5 * time.Second, MaxBytes: 64 << 20},
		Spool:   Spool{Dir: "/var/lib/rxvault/spool"},
		Backup:  Backup{Interval: 24 * time.Hour},
		Monitor: Monitor{Listen: "127.0.0.1:9187", RPO: 60 * time.Second, StoreDownAfter: 5 * time.Minute, BackupGrace: time.Hour, VerifyInterval: 15 * time.Minute},
		Log:     Log{Level: "info", Format: "text"},
	}
}
