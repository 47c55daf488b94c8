package mysql

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/rxvault/rxvault/internal/mysqlconn"
)

// trigger is a trigger kept aside during replay, with its creation
// context.
type trigger struct {
	name    string
	sqlMode string
	create  string // SHOW CREATE TRIGGER's statement, in the bytes of its client character set
	// client, connection and database are the trigger's
	// character_set_client, collation_connection and database
	// collation.
	client, connection, database string
}

// setTriggersAside keeps every trigger of the target database aside:
// their definitions and creation contexts, in creation order, then DROP
// TRIGGER. The definitions are read as stored (character_set_results =
// binary), as mariadb-dump reads them, so they keep their meaning when
// run again under their own client character set.
func (t *Target) setTriggersAside() error {
	rows, err := mysqlconn.QueryRows(t.conn, "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY CREATED, EVENT_OBJECT_TABLE, ACTION_ORDER")
	if err != nil {
		return fmt.Errorf("list triggers: %w", err)
	}
	if len(rows) == 0 {
		return nil
	}
	if _, err := t.conn.Execute("SET character_set_results = binary"); err != nil {
		return fmt.Errorf("keep triggers aside: %w", err)
	}
	for _, r := range rows {
		def, err := mysqlconn.QueryRow(t.conn, "SHOW CREATE TRIGGER "+mysqlconn.QuoteIdent(r[0]))
		if err != nil {
			return fmt.Errorf("keep trigger %s aside: %w", r[0], err)
		}
		if len(def) < 6 || !charsetNameRE.MatchString(def[3]) || !charsetNameRE.MatchString(def[4]) || !charsetNameRE.MatchString(def[5]) {
			return fmt.Errorf("keep trigger %s aside: SHOW CREATE TRIGGER gave no character sets", r[0])
		}
		t.triggers = append(t.triggers, trigger{name: r[0], sqlMode: def[1], create: def[2], client: def[3], connection: def[4], database: def[5]})
		if _, err := t.conn.Execute("DROP TRIGGER " + mysqlconn.QuoteIdent(r[0])); err != nil {
			return fmt.Errorf("keep trigger %s aside: %w", r[0], err)
		}
	}
	if _, err := t.conn.Execute("SET character_set_results = utf8mb4"); err != nil {
		return fmt.Errorf("keep triggers aside: %w", err)
	}
	return nil
}

// charsetNameRE matches character set and collation names.
var charsetNameRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

// createTrigger creates a trigger kept aside in its creation context:
// its sql_mode, client character set and connection collation, and its
// database collation (see underCollation). current is the target's
// default collation.
func (t *Target) createTrigger(tr trigger, current string) error {
	if _, err := t.conn.Execute("SET SESSION sql_mode = ?, character_set_client = ?, collation_connection = ?", tr.sqlMode, tr.client, tr.connection); err != nil {
		return err
	}
	return t.underCollation(tr.database, current, func() error {
		_, err := t.conn.Execute(tr.create)
		return err
	})
}

// databaseCollation returns the target database's default collation.
func (t *Target) databaseCollation() (string, error) {
	row, err := mysqlconn.QueryRow(t.conn, "SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()")
	if err != nil {
		return "", fmt.Errorf("read the target database's collation: %w", err)
	}
	if !charsetNameRE.MatchString(row[0]) {
		return "", fmt.Errorf("read the target database's collation: unexpected %q", row[0])
	}
	return row[0], nil
}

// underCollation runs create, which creates a trigger, event or routine,
// with the target database's default collation set to coll: the server
// records the default as the creating session knows it as the object's
// database collation. The target's default now (current) may differ from
// the one the object was created under on the source, when the source
// changed it since. Where they differ, the default is set to coll for the
// time of create, then set back, as mariadb-dump does (replay's session
// and a client started meanwhile both see it).
func (t *Target) underCollation(coll, current string, create func() error) error {
	if coll == "" || strings.EqualFold(coll, current) {
		return create()
	}
	db := mysqlconn.QuoteIdent(t.d.DB)
	if _, err := t.conn.Execute("ALTER DATABASE " + db + " COLLATE " + coll); err != nil { // checked against charsetNameRE
		return fmt.Errorf("set the database collation it was created under: %w", err)
	}
	err := create()
	if _, berr := t.conn.Execute("ALTER DATABASE " + db + " COLLATE " + current); berr != nil && err == nil {
		err = fmt.Errorf("set the database collation back: %w", berr)
	}
	return err
}

// dropKeptTrigger forgets a trigger kept aside; it reports whether there
// was one of that name.
func (t *Target) dropKeptTrigger(name string) bool {
	for i, tr := range t.triggers {
		if strings.EqualFold(tr.name, name) {
			t.triggers = append(t.triggers[:i], t.triggers[i+1:]...)
			return true
		}
	}
	return false
}

// Finish commits the last group, sets every table's AUTO_INCREMENT to the
// value of the last heartbeat replayed (the server never sets it below the
// table's largest value plus one), creates the triggers kept aside, then
// the dump's events and the replayed event statements, in order (see
// events.go).
func (t *Target) Finish(ctx context.Context) error {
	if t.broken != nil {
		return fmt.Errorf("restore target unusable after an earlier error: %w", t.broken)
	}
	if err := t.commitOpen(); err != nil {
		return err
	}
	t.finished = true
	if err := t.setAutoIncrements(); err != nil {
		return err
	}
	current, err := t.databaseCollation()
	if err != nil {
		return err
	}
	if len(t.triggers) > 0 {
		for _, tr := range t.triggers {
			if err := t.createTrigger(tr, current); err != nil {
				return fmt.Errorf("recreate trigger %s: %w", tr.name, err)
			}
		}
		if err := t.resetSession(); err != nil {
			return fmt.Errorf("restore replay's session settings after the triggers: %w", err)
		}
	}
	t.triggers = nil
	if t.events != nil {
		err := t.underCollation(t.baseCollation, current, func() error { return t.runClient(ctx, bytes.NewReader(t.events)) })
		if err != nil {
			return fmt.Errorf("create the base backup's events with %s: %w", t.client, err)
		}
		t.events = nil
	}
	for _, q := range t.eventDDL {
		if err := t.underCollation(q.collation, current, func() error { return t.runDDL(q.sql, q.sess, q.at) }); err != nil {
			return fmt.Errorf("replay an event statement after the rows: %w", err)
		}
	}
	t.eventDDL = nil
	return nil
}

// setAutoIncrements sets every table's AUTO_INCREMENT to the value of the
// last heartbeat replayed. It does so with explicit_defaults_for_timestamp
// on: with it off, an ALTER TABLE gives the table's first bare TIMESTAMP
// NOT NULL column DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
// which the source's table does not have.
func (t *Target) setAutoIncrements() error {
	if len(t.autoInc) == 0 {
		return nil
	}
	off, err := t.explicitTSDiffers(true)
	if err != nil {
		return err
	}
	if off {
		if _, err := t.conn.Execute("SET SESSION explicit_defaults_for_timestamp = 1"); err != nil {
			return fmt.Errorf("set the AUTO_INCREMENT counters: this server cannot set explicit_defaults_for_timestamp per session: %w; fix: restore into MariaDB 10.10+ or MySQL 8.0+, or a server started with explicit_defaults_for_timestamp = 1", err)
		}
	}
	for table, next := range t.autoInc {
		if !numberRE.MatchString(next) {
			return fmt.Errorf("AUTO_INCREMENT of %s: malformed value", mysqlconn.QuoteIdent(table))
		}
		if _, err := t.table(table); errors.Is(err, errNoTable) {
			// Dropped or renamed after the heartbeat; said, since a name
			// the heartbeat garbled would otherwise go unseen.
			t.log.Warn("restore: a table the last heartbeat counted is not on the target; its AUTO_INCREMENT is left as replay made it", "table", table)
			continue
		} else if err != nil {
			return fmt.Errorf("set AUTO_INCREMENT of %s: %w", mysqlconn.QuoteIdent(table), err)
		}
		if _, err := t.conn.Execute("ALTER TABLE " + mysqlconn.QuoteIdent(table) + " AUTO_INCREMENT = " + next); err != nil {
			return fmt.Errorf("set AUTO_INCREMENT of %s: %w", mysqlconn.QuoteIdent(table), err)
		}
	}
	if off {
		if _, err := t.conn.Execute("SET SESSION explicit_defaults_for_timestamp = DEFAULT"); err != nil {
			return fmt.Errorf("restore replay's explicit_defaults_for_timestamp after the AUTO_INCREMENT counters: %w", err)
		}
	}
	return nil
}
