package mysql

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"
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
	// DumpBin is the mariadb-dump (or mysqldump) program for Dump
	// (default: mariadb-dump from PATH, then mysqldump).
	DumpBin string
	// Logger receives the reader's logs (default slog.Default()). Nothing
	// logged holds row data, values or passwords.
	Logger *slog.Logger
}

// dsn is a parsed DSN.
type dsn struct {
	host     string
	port     uint16
	user     string
	password string
	db       string
	tls      *tls.Config // nil: plain
	tlsCA    string      // the ca_file parameter, for the client programs
}

func (d *dsn) addr() string { return net.JoinHostPort(d.host, strconv.Itoa(int(d.port))) }

// withDefaults returns cfg with defaults filled in and its DSN parsed, or
// an error naming the bad field and its fix.
func (cfg Config) withDefaults() (Config, *dsn, error) {
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
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.StateDir == "" {
		return cfg, nil, fmt.Errorf("mysql capture: no state directory; fix: set spool.dir")
	}
	if cfg.Heartbeat < 0 || cfg.SpillThreshold < 0 {
		return cfg, nil, fmt.Errorf("mysql capture: negative heartbeat or spill threshold; fix: leave them 0 for the defaults")
	}
	d, err := parseDSN(cfg.DSN, os.Getenv("MYSQL_PWD"))
	if err != nil {
		return cfg, nil, err
	}
	return cfg, d, nil
}

// parseDSN parses a mysql:// URL. It never quotes the DSN in errors: it
// may hold a password.
func parseDSN(raw, envPassword string) (*dsn, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "mysql" || u.Host == "" {
		return nil, fmt.Errorf("mysql: the DSN is not a mysql:// URL; fix: set it to mysql://user@host:3306/dbname")
	}
	d := &dsn{host: u.Hostname(), port: 3306}
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("mysql: the DSN's port %q is not a port number; fix: use host:3306", p)
		}
		d.port = uint16(n)
	}
	if u.User != nil {
		d.user = u.User.Username()
		d.password, _ = u.User.Password()
	}
	if d.password == "" {
		d.password = envPassword
	}
	if d.user == "" {
		return nil, fmt.Errorf("mysql: the DSN names no user; fix: use mysql://user@host:3306/dbname")
	}
	d.db, err = url.PathUnescape(trimSlash(u.Path))
	if err != nil || d.db == "" || len(d.db) > 64 {
		return nil, fmt.Errorf("mysql: the DSN names no database (or a bad one); fix: use mysql://user@host:3306/dbname, one database per agent")
	}
	q := u.Query()
	for k := range q {
		if k != "tls" && k != "ca_file" {
			return nil, fmt.Errorf("mysql: unknown DSN parameter %q; fix: use only tls and ca_file", k)
		}
	}
	loopback := isLoopback(d.host)
	useTLS := !loopback
	switch q.Get("tls") {
	case "":
	case "true":
		useTLS = true
	case "false":
		if !loopback {
			return nil, fmt.Errorf("mysql: tls=false for %s, which is not loopback; fix: remove tls=false (TLS 1.2+ is required off loopback)", d.host)
		}
		useTLS = false
	default:
		return nil, fmt.Errorf("mysql: DSN parameter tls=%q; fix: use tls=true or tls=false", q.Get("tls"))
	}
	if useTLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: d.host}
		if f := q.Get("ca_file"); f != "" {
			d.tlsCA = f
			pem, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("mysql: ca_file: %w; fix: point ca_file at a readable PEM file", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("mysql: ca_file %s holds no PEM certificate; fix: point it at the CA's certificate", f)
			}
			tc.RootCAs = pool
		}
		d.tls = tc
	}
	return d, nil
}

func trimSlash(p string) string {
	for len(p) > 0 && p[0] == '/' {
		p = p[1:]
	}
	return p
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
