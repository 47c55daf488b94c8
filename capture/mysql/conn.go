package mysql

import (
	"context"
	"errors"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/internal/mysqlconn"
)

// connect opens a SQL connection (see mysqlconn.Connect), marking
// errors retrying cannot fix as permanent.
func connect(ctx context.Context, d *mysqlconn.DSN, db string) (*client.Conn, error) {
	c, err := mysqlconn.Connect(ctx, d, db)
	return c, classify(err)
}

// openChecked fills in cfg's defaults, connects without a default
// database and checks the server (see inspect). The caller closes the
// connection.
func openChecked(ctx context.Context, cfg Config) (Config, *mysqlconn.DSN, *client.Conn, *server, error) {
	cfg, d, err := cfg.withDefaults()
	if err != nil {
		return cfg, nil, nil, nil, capture.Permanent(err)
	}
	c, err := connect(ctx, d, "")
	if err != nil {
		return cfg, nil, nil, nil, err
	}
	srv, err := inspect(c, &cfg, d.DB)
	if err != nil {
		c.Close()
		return cfg, nil, nil, nil, err
	}
	return cfg, d, c, srv, nil
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
