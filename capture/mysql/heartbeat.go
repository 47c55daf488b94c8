package mysql

import (
	"context"
	"encoding/json"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/rxvault/rxvault/internal/mysqlconn"
)

// heartbeats writes this database's heartbeat row every Config.Heartbeat
// until ctx ends. The row carries the server's clock (NOW(6)) and the
// next AUTO_INCREMENT value of every table of the database; its
// transaction gives the archive a recent commit while the database is
// idle, and replay sets the counters from it. Failures are logged once
// per outage and retried on the next tick: capture goes on without them.
func (r *Reader) heartbeats(ctx context.Context) {
	var c *client.Conn
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	failing := false
	t := time.NewTicker(r.cfg.Heartbeat)
	defer t.Stop()
	for {
		err := func() error {
			if c == nil {
				var err error
				if c, err = connect(ctx, r.d, ""); err != nil {
					return err
				}
				if !r.srv.mariadb {
					// information_schema caches AUTO_INCREMENT for a day by default.
					if _, err := c.Execute("SET SESSION information_schema_stats_expiry = 0"); err != nil {
						return err
					}
				}
			}
			return r.heartbeat(c)
		}()
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				r.log.Warn("heartbeat failed; retrying (the recovery point does not advance on an idle database meanwhile)", "err", err)
			}
			failing = true
			if c != nil {
				c.Close()
				c = nil
			}
		case err == nil && failing:
			r.log.Info("heartbeat recovered")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// heartbeat writes one heartbeat row.
func (r *Reader) heartbeat(c *client.Conn) error {
	rows, err := mysqlconn.QueryRows(c, "SELECT TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND AUTO_INCREMENT IS NOT NULL", r.d.DB)
	if err != nil {
		return err
	}
	ai := make(map[string]string, len(rows))
	for _, row := range rows {
		ai[row[0]] = row[1]
	}
	data, err := json.Marshal(ai)
	if err != nil {
		return err
	}
	_, err = c.Execute("INSERT INTO "+HeartbeatSchema+".heartbeat (db, at, auto_increment) VALUES (?, NOW(6), ?) ON DUPLICATE KEY UPDATE at = VALUES(at), auto_increment = VALUES(auto_increment)",
		r.d.DB, string(data))
	return err
}
