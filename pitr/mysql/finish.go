package mysql

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/rxvault/rxvault/internal/mysqlconn"
)

// trigger is a trigger kept aside during replay.
type trigger struct {
	name    string
	sqlMode string
	create  string // SHOW CREATE TRIGGER's statement
}

// setTriggersAside keeps every trigger of the target database aside:
// their definitions, in creation order, then DROP TRIGGER.
func (t *Target) setTriggersAside() error {
	rows, err := mysqlconn.QueryRows(t.conn, "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY CREATED, EVENT_OBJECT_TABLE, ACTION_ORDER")
	if err != nil {
		return fmt.Errorf("list triggers: %w", err)
	}
	for _, r := range rows {
		def, err := mysqlconn.QueryRow(t.conn, "SHOW CREATE TRIGGER "+mysqlconn.QuoteIdent(r[0]))
		if err != nil {
			return fmt.Errorf("keep trigger %s aside: %w", r[0], err)
		}
		t.triggers = append(t.triggers, trigger{name: r[0], sqlMode: def[1], create: def[2]})
		if _, err := t.conn.Execute("DROP TRIGGER " + mysqlconn.QuoteIdent(r[0])); err != nil {
			return fmt.Errorf("keep trigger %s aside: %w", r[0], err)
		}
	}
	return nil
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
	for table, next := range t.autoInc {
		if !numberRE.MatchString(next) {
			return fmt.Errorf("AUTO_INCREMENT of %s: malformed value", mysqlconn.QuoteIdent(table))
		}
		if _, err := t.table(table); err != nil {
			continue // dropped after the heartbeat
		}
		if _, err := t.conn.Execute("ALTER TABLE " + mysqlconn.QuoteIdent(table) + " AUTO_INCREMENT = " + next); err != nil {
			return fmt.Errorf("set AUTO_INCREMENT of %s: %w", mysqlconn.QuoteIdent(table), err)
		}
	}
	for _, tr := range t.triggers {
		if _, err := t.conn.Execute("SET SESSION sql_mode = ?", tr.sqlMode); err != nil {
			return fmt.Errorf("recreate trigger %s: %w", tr.name, err)
		}
		if _, err := t.conn.Execute(tr.create); err != nil {
			return fmt.Errorf("recreate trigger %s: %w", tr.name, err)
		}
	}
	if len(t.triggers) > 0 {
		if err := t.resetSession(); err != nil {
			return fmt.Errorf("restore replay's session settings after the triggers: %w", err)
		}
	}
	t.triggers = nil
	if t.events != nil {
		if err := t.runClient(ctx, bytes.NewReader(t.events)); err != nil {
			return fmt.Errorf("create the base backup's events with %s: %w", t.client, err)
		}
		t.events = nil
	}
	for _, q := range t.eventDDL {
		if err := t.runDDL(q.sql, q.sess, q.at); err != nil {
			return fmt.Errorf("replay an event statement after the rows: %w", err)
		}
	}
	t.eventDDL = nil
	return nil
}
