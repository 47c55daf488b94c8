package config

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"
	"time"
)

// TemplateData fills the configuration file 'rxvault init' writes.
type TemplateData struct {
	Recipient string // the new key pair's recipient line
	Store     string // the first store URL
	SpoolDir  string
}

var fileTemplate = template.Must(template.New("config").Parse(`# rxvault configuration.
# Every key can be overridden by an environment variable RXVAULT_<SECTION>_<KEY>
# (for example RXVAULT_SEGMENT_INTERVAL=2s; lists are comma-separated) and by
# --set section.key=value on the command line. Precedence: --set, environment,
# this file, built-in defaults.

source:
  # The database to protect. The scheme picks the engine: postgres://,
  # mysql:// (MySQL and MariaDB) or sqlserver://. Keep the password out of
  # this file: use PGPASSWORD / MYSQL_PWD or a secret manager via the
  # environment (RXVAULT_SOURCE_DSN). Use TLS (sslmode=verify-full; for
  # MySQL, TLS is on except for loopback) for any host that is not loopback.
  # MySQL and MariaDB: the DSN names the one database to protect,
  # mysql://rxvault@db.example:3306/pharmacy.
  dsn: ""
  # PostgreSQL: the logical replication slot and publication rxvault creates
  # on first run and reads from then on.
  slot: rxvault
  publication: rxvault
  # Capture only these tables (schema.table). Empty: every table (a
  # publication FOR ALL TABLES, which needs a superuser to create).
  tables: []
  # How often rxvault writes a heartbeat, with the sequences' values, into
  # the change stream: the archive then shows progress while the database
  # is idle, and sequences restore to their values.
  heartbeat: 1s
  # MySQL and MariaDB: the replica server id rxvault registers with to read
  # the binlog. No server or other replica may use the same id.
  server_id: 42170001
  # MySQL and MariaDB: a name for the source that stays the same when the
  # database moves to another server (a failover to a replica), so the
  # archive's chain follows it (MariaDB, by GTID). Empty: the server's own
  # identity, and a failover starts a new chain. Set it before the first run.
  id: ""

archive:
  # Where segments and base backups go. Every store receives every object.
  #   file:///absolute/path                     local disk (NOT tamper-proof against root)
  #   s3://bucket/prefix?endpoint=host:port&region=us-east-1
  #                                             S3 with Object Lock; credentials from
  #                                             AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
  stores:
    - {{.Store}}
  # Retention applied to every object: compliance (nobody can shorten or
  # delete, not even the bucket owner), governance, or none.
  lock_mode: {{.LockMode}}
  # How long each object stays locked after it is written (HIPAA: 6 years).
  retention: {{.Retention}}

keys:
  # Public keys every data key is wrapped to. The agent needs only these; keep
  # the matching identity (private key) off this host. To rotate, add the new
  # recipient: new objects use every listed recipient, old ones still open
  # with the old identity.
  recipients:
    - {{.Recipient}}

segment:
  # Close and ship a segment this often (1s..1h) ...
  interval: {{.Interval}}
  # ... or once it holds this much (1MiB..4GiB), whichever comes first.
  max_bytes: 64MiB

spool:
  # Local durable queue for segments not yet in every store.
  dir: {{.SpoolDir}}

backup:
  # Take a base backup this often (0 = only on 'rxvault backup').
  interval: {{.BackupInterval}}

monitor:
  # The monitoring endpoint (/metrics, /healthz, /status). Loopback only by
  # default; any other address needs tls_cert and tls_key.
  listen: {{.Listen}}
  # Recovery point objective: the lag beyond which /healthz fails and alerts fire.
  rpo: {{.RPO}}
  # PEM certificate and key: serve HTTPS (TLS 1.2 or newer).
  tls_cert: ""
  tls_key: ""
  # A bearer token every request must carry. Set it in the environment:
  # RXVAULT_MONITOR_TOKEN.
  token: ""
  # Alerts (RPO breach and recovery, overdue base backup, failing store, gap)
  # are logged, and POSTed as JSON here if set (https, except to loopback).
  webhook_url: ""
  # One more header on webhook requests, e.g. X-Rxvault-Secret; the secret
  # goes in RXVAULT_MONITOR_WEBHOOK_SECRET.
  webhook_header: ""
  webhook_secret: ""
  # How long a store may fail before it is unhealthy and alerted.
  store_down_after: 5m
  # How far past backup.interval the newest base backup may age before the
  # backup alert fires.
  backup_grace: 1h
  # How often the agent reads back the segments it shipped since the last
  # time and checks them (structure, digests, links; no key). 0 turns it off.
  verify_interval: 15m

log:
  level: info   # debug, info, warn, error
  format: text  # text or json
`))

// Template returns the commented configuration file 'rxvault init' writes:
// every key, with the defaults and the given values.
func Template(d TemplateData) (string, error) {
	def := Default()
	if d.Store == "" {
		d.Store = def.Archive.Stores[0]
	}
	if d.SpoolDir == "" {
		d.SpoolDir = def.Spool.Dir
	}
	var b bytes.Buffer
	err := fileTemplate.Execute(&b, struct {
		TemplateData
		LockMode                                 string
		Retention, Interval, BackupInterval, RPO string
		Listen                                   string
	}{
		TemplateData:   d,
		LockMode:       def.Archive.LockMode,
		Retention:      durationText(def.Archive.Retention),
		Interval:       durationText(def.Segment.Interval),
		BackupInterval: durationText(def.Backup.Interval),
		RPO:            durationText(def.Monitor.RPO),
		Listen:         def.Monitor.Listen,
	})
	if err != nil {
		return "", fmt.Errorf("config template: %w", err)
	}
	return b.String(), nil
}

// durationText renders d as Go would parse it, without trailing zero units
// ("24h", not "24h0m0s").
func durationText(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
