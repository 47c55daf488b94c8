// Package mysqlconn parses rxvault's mysql:// DSNs and opens SQL
// connections to MySQL and MariaDB servers, for capture and restore.
package mysqlconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
)

// DSN is a parsed mysql:// URL.
type DSN struct {
	Host     string
	Port     uint16
	User     string
	Password string
	DB       string
	TLS      *tls.Config // nil: plain
	TLSCA    string      // the ca_file parameter, for the client programs
}

// Addr returns host:port.
func (d *DSN) Addr() string { return net.JoinHostPort(d.Host, strconv.Itoa(int(d.Port))) }

// Parse parses a mysql:// URL; envPassword is used when the URL has no
// password (MYSQL_PWD). Errors never quote the DSN: it may hold a password.
// Query parameters: tls (true: TLS 1.2+ with the server certificate
// verified; false: plain, accepted only for a loopback host; default true
// except on loopback) and ca_file (the CA of the server certificate).
func Parse(raw, envPassword string) (*DSN, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "mysql" || u.Host == "" {
		return nil, fmt.Errorf("mysql: the DSN is not a mysql:// URL; fix: set it to mysql://user@host:3306/dbname")
	}
	d := &DSN{Host: u.Hostname(), Port: 3306}
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("mysql: the DSN's port %q is not a port number; fix: use host:3306", p)
		}
		d.Port = uint16(n)
	}
	if u.User != nil {
		d.User = u.User.Username()
		d.Password, _ = u.User.Password()
	}
	if d.Password == "" {
		d.Password = envPassword
	}
	if d.User == "" {
		return nil, fmt.Errorf("mysql: the DSN names no user; fix: use mysql://user@host:3306/dbname")
	}
	d.DB, err = url.PathUnescape(trimSlash(u.Path))
	if err != nil || d.DB == "" || len(d.DB) > 64 {
		return nil, fmt.Errorf("mysql: the DSN names no database (or a bad one); fix: use mysql://user@host:3306/dbname, one database per agent")
	}
	q := u.Query()
	for k := range q {
		if k != "tls" && k != "ca_file" {
			return nil, fmt.Errorf("mysql: unknown DSN parameter %q; fix: use only tls and ca_file", k)
		}
	}
	loopback := IsLoopback(d.Host)
	useTLS := !loopback
	switch q.Get("tls") {
	case "":
	case "true":
		useTLS = true
	case "false":
		if !loopback {
			return nil, fmt.Errorf("mysql: tls=false for %s, which is not loopback; fix: remove tls=false (TLS 1.2+ is required off loopback)", d.Host)
		}
		useTLS = false
	default:
		return nil, fmt.Errorf("mysql: DSN parameter tls=%q; fix: use tls=true or tls=false", q.Get("tls"))
	}
	if useTLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: d.Host}
		if f := q.Get("ca_file"); f != "" {
			d.TLSCA = f
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
		d.TLS = tc
	}
	return d, nil
}

func trimSlash(p string) string {
	for len(p) > 0 && p[0] == '/' {
		p = p[1:]
	}
	return p
}

// IsLoopback reports whether host is localhost or a loopback address.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Connect opens a SQL connection to the DSN's server with database db
// ("" for none). The session is pinned to UTC and utf8mb4.
// Options (go-mysql's) run before the handshake, after rxvault's own.
func Connect(ctx context.Context, d *DSN, db string, more ...client.Option) (*client.Conn, error) {
	var opts []client.Option
	if d.TLS != nil {
		tc := d.TLS
		opts = append(opts, func(c *client.Conn) error { c.SetTLSConfig(tc); return nil })
	}
	opts = append(opts, more...)
	c, err := client.ConnectWithContext(ctx, d.Addr(), d.User, d.Password, db, 10*time.Second, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s as %s: %w", d.Addr(), d.User, err)
	}
	for _, q := range []string{"SET NAMES utf8mb4", "SET time_zone = '+00:00'"} {
		if _, err := c.Execute(q); err != nil {
			c.Close()
			return nil, fmt.Errorf("%s: %w", q, err)
		}
	}
	return c, nil
}

// QueryRow runs a query expected to return one row and returns its
// columns as strings (NULL as "").
func QueryRow(c *client.Conn, q string, args ...any) ([]string, error) {
	r, err := c.Execute(q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", firstWords(q), err)
	}
	defer r.Close()
	if r.Resultset == nil || r.RowNumber() == 0 {
		return nil, fmt.Errorf("%s: no row", firstWords(q))
	}
	out := make([]string, r.ColumnNumber())
	for i := range out {
		v, err := r.GetString(0, i)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", firstWords(q), err)
		}
		out[i] = strings.Clone(v) // GetString aliases the pooled result's buffer
	}
	return out, nil
}

// QueryRows runs a query and returns every row as strings.
func QueryRows(c *client.Conn, q string, args ...any) ([][]string, error) {
	r, err := c.Execute(q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", firstWords(q), err)
	}
	defer r.Close()
	if r.Resultset == nil {
		return nil, nil
	}
	rows := make([][]string, r.RowNumber())
	for i := range rows {
		rows[i] = make([]string, r.ColumnNumber())
		for j := range rows[i] {
			v, err := r.GetString(i, j)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", firstWords(q), err)
			}
			rows[i][j] = strings.Clone(v) // GetString aliases the pooled result's buffer
		}
	}
	return rows, nil
}

// firstWords names a query in errors without its arguments.
func firstWords(q string) string {
	f := strings.Fields(q)
	if len(f) > 4 {
		f = f[:4]
	}
	return strings.Join(f, " ")
}

// QuoteIdent quotes a MySQL identifier with backticks.
func QuoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// SystemOffset returns the offset from UTC, as +HH:MM, of the server's
// SYSTEM time zone (its host's) at Unix time when. c's session time zone
// must be a fixed offset or SYSTEM.
func SystemOffset(c *client.Conn, when int64) (string, error) {
	row, err := QueryRow(c, fmt.Sprintf("SELECT TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', CONVERT_TZ(FROM_UNIXTIME(%d), @@session.time_zone, 'SYSTEM'))", when))
	if err != nil {
		return "", fmt.Errorf("read the SYSTEM time zone's offset: %w", err)
	}
	wall, err := strconv.ParseInt(row[0], 10, 64)
	if err != nil {
		return "", fmt.Errorf("read the SYSTEM time zone's offset: got %q", row[0])
	}
	sec, sign := wall-when, byte('+')
	if sec < 0 {
		sec, sign = -sec, '-'
	}
	return fmt.Sprintf("%c%02d:%02d", sign, sec/3600, sec%3600/60), nil
}
