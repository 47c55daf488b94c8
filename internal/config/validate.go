package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/rxvault/rxvault/internal/keys"
	"github.com/rxvault/rxvault/internal/store"
)

// ValidationError is a bad configuration value: which key, its value (with
// secrets masked), what is wrong and how to fix it.
type ValidationError struct {
	Key     string
	Value   string
	Problem string
	Fix     string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("config: %s = %q: %s; fix: %s", e.Key, e.Value, e.Problem, e.Fix)
}

func bad(key, value, problem, fix string) *ValidationError {
	return &ValidationError{Key: key, Value: value, Problem: problem, Fix: fix}
}

// fixFor is the generic fix for a key whose value did not even decode.
func fixFor(key string) string {
	switch key {
	case "segment.interval", "backup.interval", "monitor.rpo", "archive.retention", "source.heartbeat", "monitor.store_down_after", "monitor.backup_grace", "monitor.verify_interval":
		return fmt.Sprintf("set %s to a duration such as 5s, 10m or 2190h", key)
	case "segment.max_bytes":
		return "set segment.max_bytes to a size such as 64MiB"
	case "archive.stores", "keys.recipients", "source.tables":
		return fmt.Sprintf("set %s to a YAML list (or a comma-separated string in %s)", key, EnvName(key))
	}
	return fmt.Sprintf("correct %s (see the commented file 'rxvault init' writes)", key)
}

// Validate checks every key that has a value. Keys a command needs but that
// may be empty in general (source.dsn, keys.recipients) are checked by
// RequireSource and RequireRecipients.
func (c *Config) Validate() error {
	if c.Source.DSN != "" {
		if err := checkDSN(c.Source.DSN); err != nil {
			return err
		}
	}
	if !identifier(c.Source.Slot) {
		return bad("source.slot", c.Source.Slot, "not a valid slot name", "use lower-case letters, digits and _ (at most 63), e.g. rxvault")
	}
	if !identifier(c.Source.Publication) {
		return bad("source.publication", c.Source.Publication, "not a valid publication name", "use lower-case letters, digits and _ (at most 63), e.g. rxvault")
	}
	for _, t := range c.Source.Tables {
		if s, tb, ok := strings.Cut(t, "."); !ok || s == "" || tb == "" {
			return bad("source.tables", t, "not schema.table", "list tables as schema.table, e.g. public.prescriptions")
		}
	}
	if id := c.Source.ID; id != "" && !sourceIDRE.MatchString(id) {
		return bad("source.id", id, "not a valid source name", "use 1 to 64 letters, digits, '.', '_' or '-', e.g. pharmacy-main")
	}
	if c.Source.ServerID == 0 {
		return bad("source.server_id", "0", "MySQL and MariaDB reserve server id 0", "set source.server_id to a number no server or replica uses, e.g. 42170001")
	}
	if d := c.Source.Heartbeat; d < 100*time.Millisecond || d > time.Minute {
		return bad("source.heartbeat", d.String(), "must be between 100ms and 1m", "set source.heartbeat, e.g. 1s")
	}
	if len(c.Archive.Stores) == 0 {
		return bad("archive.stores", "", "no store configured", "list at least one store URL, e.g. file:///var/lib/rxvault/archive")
	}
	switch c.Archive.LockMode {
	case "none", "governance", "compliance":
	default:
		return bad("archive.lock_mode", c.Archive.LockMode, "unknown lock mode", "set archive.lock_mode to compliance, governance or none")
	}
	if c.Archive.LockMode != "none" && (c.Archive.Retention < time.Second || c.Archive.Retention > 100*365*24*time.Hour) {
		return bad("archive.retention", c.Archive.Retention.String(), "must be between 1s and 100 years while objects are locked", "set archive.retention, e.g. 52560h for six years")
	}
	for _, s := range c.Archive.Stores {
		if err := checkStoreURL(s, c.Archive.LockMode, c.Archive.Retention); err != nil {
			return err
		}
	}
	for _, r := range c.Keys.Recipients {
		if _, err := keys.ParseRecipient(r); err != nil {
			return bad("keys.recipients", abbreviate(r), "not a recipient line", "paste the line from recipient.txt written by 'rxvault keys generate' (it starts with "+keys.RecipientPrefix+")")
		}
	}
	if d := c.Segment.Interval; d < time.Second || d > time.Hour {
		return bad("segment.interval", d.String(), "must be between 1s and 1h", "set segment.interval, e.g. 5s")
	}
	if n := c.Segment.MaxBytes; n < 1<<20 || n > 4<<30 {
		return bad("segment.max_bytes", fmt.Sprint(int64(n)), "must be between 1MiB and 4GiB", "set segment.max_bytes, e.g. 64MiB")
	}
	if c.Spool.Dir == "" {
		return bad("spool.dir", "", "empty", "set spool.dir to a directory on local disk, e.g. /var/lib/rxvault/spool")
	}
	if d := c.Backup.Interval; d != 0 && d < time.Minute {
		return bad("backup.interval", d.String(), "must be 0 (no schedule) or at least 1m", "set backup.interval, e.g. 24h")
	}
	if _, _, err := net.SplitHostPort(c.Monitor.Listen); err != nil {
		return bad("monitor.listen", c.Monitor.Listen, "not host:port", "set monitor.listen, e.g. 127.0.0.1:9187")
	}
	if loop := loopbackHost(c.Monitor.Listen); !loop && (c.Monitor.TLSCert == "" || c.Monitor.TLSKey == "") {
		return bad("monitor.listen", c.Monitor.Listen, "not a loopback address, and no TLS certificate", "set monitor.tls_cert and monitor.tls_key (and monitor.token), or listen on 127.0.0.1")
	}
	if (c.Monitor.TLSCert == "") != (c.Monitor.TLSKey == "") {
		return bad("monitor.tls_cert", c.Monitor.TLSCert, "tls_cert and tls_key go together", "set both monitor.tls_cert and monitor.tls_key, or neither")
	}
	if u := c.Monitor.WebhookURL; u != "" {
		pu, err := url.Parse(u)
		switch {
		case err != nil || pu.Host == "" || (pu.Scheme != "https" && pu.Scheme != "http"):
			return bad("monitor.webhook_url", RedactURL(u), "not an http(s) URL", "set monitor.webhook_url to https://host/path")
		case pu.Scheme == "http" && !loopbackHost(pu.Host):
			return bad("monitor.webhook_url", RedactURL(u), "plain http to a host that is not loopback", "use https:// (TLS) for the webhook")
		}
	}
	if (c.Monitor.WebhookHeader == "") != (c.Monitor.WebhookSecret == "") {
		return bad("monitor.webhook_header", c.Monitor.WebhookHeader, "webhook_header and webhook_secret go together", "set both (the secret in RXVAULT_MONITOR_WEBHOOK_SECRET), or neither")
	}
	if c.Monitor.StoreDownAfter < time.Second {
		return bad("monitor.store_down_after", c.Monitor.StoreDownAfter.String(), "must be at least 1s", "set monitor.store_down_after, e.g. 5m")
	}
	if d := c.Monitor.VerifyInterval; d != 0 && d < time.Second {
		return bad("monitor.verify_interval", d.String(), "must be 0 (off) or at least 1s", "set monitor.verify_interval, e.g. 15m")
	}
	if c.Monitor.BackupGrace < 0 {
		return bad("monitor.backup_grace", c.Monitor.BackupGrace.String(), "negative", "set monitor.backup_grace, e.g. 1h")
	}
	if c.Monitor.RPO <= c.Segment.Interval {
		return bad("monitor.rpo", c.Monitor.RPO.String(), "must exceed segment.interval ("+c.Segment.Interval.String()+"), or every segment breaches it", "raise monitor.rpo (e.g. 60s) or lower segment.interval")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return bad("log.level", c.Log.Level, "unknown level", "set log.level to debug, info, warn or error")
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return bad("log.format", c.Log.Format, "unknown format", "set log.format to text or json")
	}
	return nil
}

// RequireSource checks that a source DSN is configured.
func (c *Config) RequireSource() error {
	if c.Source.DSN == "" {
		return bad("source.dsn", "", "no source database configured", "set source.dsn (or "+EnvName("source.dsn")+"), e.g. postgres://rxvault@db.example:5432/pharmacy?sslmode=verify-full")
	}
	return nil
}

// Recipients parses keys.recipients, requiring at least one.
func (c *Config) Recipients() ([]*keys.Recipient, error) {
	if len(c.Keys.Recipients) == 0 {
		return nil, bad("keys.recipients", "", "no recipient: segments could not be encrypted", "run 'rxvault keys generate --out DIR' and add DIR/recipient.txt's line to keys.recipients")
	}
	if len(c.Keys.Recipients) > keys.MaxEnvelopes {
		return nil, bad("keys.recipients", fmt.Sprint(len(c.Keys.Recipients)), fmt.Sprintf("more than %d recipients", keys.MaxEnvelopes), "remove retired recipients")
	}
	out := make([]*keys.Recipient, 0, len(c.Keys.Recipients))
	for _, s := range c.Keys.Recipients {
		r, err := keys.ParseRecipient(s)
		if err != nil {
			return nil, bad("keys.recipients", abbreviate(s), "not a recipient line", "paste the line from recipient.txt")
		}
		out = append(out, r)
	}
	return out, nil
}

// checkDSN checks that dsn is a URL with a scheme; which schemes name an
// engine, and what else each engine needs of it, the engine table checks
// (see the engines package).
func checkDSN(dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return bad("source.dsn", RedactURL(dsn), "not a URL", "write it as scheme://user@host:port/database, e.g. postgres://rxvault@db:5432/pharmacy")
	}
	return nil
}

// checkStoreURL checks a store URL as the store would open it, without
// touching it.
func checkStoreURL(s string, mode string, retention time.Duration) error {
	if err := store.CheckURL(s, store.Options{Mode: store.LockMode(mode), Retention: retention}); err != nil {
		return bad("archive.stores", RedactURL(s), err.Error(), "write file:///absolute/path or s3://bucket/prefix?endpoint=host:port (see the README's Stores section)")
	}
	return nil
}

// RedactURL masks the password and secret-looking query parameters of a
// URL so it can appear in messages and logs.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<unparseable URL>"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	changed := false
	for k := range q {
		lk := strings.ToLower(k)
		if strings.Contains(lk, "password") || strings.Contains(lk, "secret") || strings.Contains(lk, "token") || lk == "sslkey" {
			q.Set(k, "xxxxx")
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// loopbackHost reports whether host:port (or host) names a loopback address.
func loopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// identifier reports whether s is a plain lower-case SQL identifier, as
// replication slot names must be.
func identifier(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}

func abbreviate(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

// sourceIDRE matches a valid source.id.
var sourceIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
