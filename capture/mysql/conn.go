package mysql

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/rxvault/rxvault/capture"
)

// connect opens a SQL connection to the DSN's server with database db
// ("" for none). The session is pinned to UTC and utf8mb4.
func connect(ctx context.Context, d *dsn, db string) (*client.Conn, error) {
	var opts []client.Option
	if d.tls != nil {
		tc := d.tls
		opts = append(opts, func(c *client.Conn) error { c.SetTLSConfig(tc); return nil })
	}
	c, err := client.ConnectWithContext(ctx, d.addr(), d.user, d.password, db, 10*time.Second, opts...)
	if err != nil {
		return nil, classify(fmt.Errorf("connect to %s as %s: %w", d.addr(), d.user, err))
	}
	for _, q := range []string{"SET NAMES utf8mb4", "SET time_zone = '+00:00'"} {
		if _, err := c.Execute(q); err != nil {
			c.Close()
			return nil, classify(fmt.Errorf("%s: %w", q, err))
		}
	}
	return c, nil
}

// classify marks errors retrying cannot fix as permanent: access denied,
// unknown database, and the like.
func classify(err error) error {
	var me *gomysql.MyError
	if errors.As(err, &me) {
		switch me.Code {
		case gomysql.ER_ACCESS_DENIED_ERROR, gomysql.ER_DBACCESS_DENIED_ERROR, gomysql.ER_BAD_DB_ERROR,
			gomysql.ER_SPECIFIC_ACCESS_DENIED_ERROR, gomysql.ER_TABLEACCESS_DENIED_ERROR, gomysql.ER_NOT_SUPPORTED_AUTH_MODE:
			return capture.Permanent(err)
		}
	}
	return err
}

// queryRow runs a query expected to return one row and returns its
// columns as strings (NULL as "").
func queryRow(c *client.Conn, q string, args ...any) ([]string, error) {
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
		if out[i], err = r.GetString(0, i); err != nil {
			return nil, fmt.Errorf("%s: %w", firstWords(q), err)
		}
	}
	return out, nil
}

// queryRows runs a query and returns every row as strings.
func queryRows(c *client.Conn, q string, args ...any) ([][]string, error) {
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
			if rows[i][j], err = r.GetString(i, j); err != nil {
				return nil, fmt.Errorf("%s: %w", firstWords(q), err)
			}
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

// quoteIdent quotes a MySQL identifier with backticks.
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
