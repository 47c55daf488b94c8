package mysql

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/rxvault/rxvault/internal/mysqlconn"
	"github.com/rxvault/rxvault/segment"
)

// ddl runs a DDL statement in its place, after committing the open group,
// with its source session's settings when the archive has them (see
// runDDL). Statements on the database as a whole, and ones that change
// another database's objects, are turned to the target or refused; event
// statements are held for Finish.
func (t *Target) ddl(c *segment.Change) error {
	sess := t.ddlSess
	t.ddlSess = nil
	if err := t.commitOpen(); err != nil {
		return err
	}
	if err := t.checkNames(c); err != nil {
		return err
	}
	if sess != nil && sess.OtherDatabases {
		return errors.New("this DDL also creates, changes, drops or copies another database's objects (such as RENAME TABLE t TO other.t, DROP TABLE t, other.x or CREATE TABLE t LIKE other.t): replaying it would change that database on the restore server, or depend on it; fix: restore to a point before this transaction (--gtid ID --exclusive, or --time before its commit)")
	}
	q := c.SQL
	if verb, rest, ok := databaseStmt(q); ok {
		switch verb {
		case "DROP":
			return errors.New("the source database was dropped here (DROP DATABASE), and replay never drops a database; fix: restore to a point before this transaction (--gtid ID --exclusive, or --time before its commit)")
		case "CREATE":
			t.log.Info("replay skips CREATE DATABASE: the restore target is the database")
			return nil
		}
		q = "ALTER DATABASE " + mysqlconn.QuoteIdent(t.d.DB) + " " + alterDatabaseOptions(rest)
	}
	if isEventDDL(q) {
		coll, err := t.databaseCollation()
		if err != nil {
			return err
		}
		t.eventDDL = append(t.eventDDL, heldDDL{sql: q, at: t.commitAt, sess: sess, collation: coll}) // run by Finish (see events.go)
		return nil
	}
	clear(t.tables)
	if name, ok := dropTrigger(c.SQL); ok && t.dropKeptTrigger(name) {
		return nil // the trigger was kept aside: dropping it is forgetting it
	}
	if err := t.runDDL(q, sess, time.Time{}); err != nil {
		return err
	}
	if strings.Contains(strings.ToUpper(q), "TRIGGER") {
		return t.setTriggersAside()
	}
	return nil
}

// ddlSession is the session settings of a DDL statement on the source
// (segment.MsgDDLSession).
type ddlSession struct {
	SQLMode            string   `json:"sql_mode"`
	TimeZone           string   `json:"time_zone"`
	SystemOffset       string   `json:"system_offset"` // for SYSTEM: the source host zone's offset then (+HH:MM)
	Timestamp          string   `json:"timestamp"`     // seconds.microseconds
	Charset            []uint16 `json:"charset"`       // client, connection, server collation ids
	NoForeignKeyChecks bool     `json:"no_foreign_key_checks"`
	OtherDatabases     bool     `json:"other_databases"`
	// ExplicitDefaultsForTimestamp is nil when the source did not record
	// it.
	ExplicitDefaultsForTimestamp *bool `json:"explicit_defaults_for_timestamp"`
}

// What a ddlSession message may hold: sql_mode's bits in decimal, and a
// time zone name or offset ("+05:00", "SYSTEM", "America/New_York").
var (
	sqlModeRE   = regexp.MustCompile(`^[0-9]{1,20}$`)
	timeZoneRE  = regexp.MustCompile(`^[A-Za-z0-9_+\-:/]{1,64}$`)
	timestampRE = regexp.MustCompile(`^[0-9]{1,12}\.[0-9]{6}$`)
	offsetRE    = regexp.MustCompile(`^[+-][0-9]{2}:[0-9]{2}$`)
)

// runDDL runs q under the source session's settings sess (nil: replay's
// own, for archives written before they were captured): sql_mode, time
// zone, character sets, foreign_key_checks, explicit_defaults_for_timestamp
// and the session clock (sess.Timestamp, else at unless it is zero), as
// mariadb-binlog sets them; then puts replay's settings back. A source session on the
// server's default time zone runs in UTC, replay's zone: the archive does
// not know the source server's default.
func (t *Target) runDDL(q string, sess *ddlSession, at time.Time) error {
	var set []string
	if sess != nil {
		set = append(set, "sql_mode = "+sess.SQLMode)
		if sess.TimeZone != "" {
			tz, err := t.ddlTimeZone(sess, at)
			if err != nil {
				return err
			}
			set = append(set, "time_zone = '"+tz+"'") // checked against timeZoneRE or offsetRE
		}
		if len(sess.Charset) == 3 {
			set = append(set, fmt.Sprintf("character_set_client = %d, collation_connection = %d, collation_server = %d", sess.Charset[0], sess.Charset[1], sess.Charset[2]))
		}
		if sess.NoForeignKeyChecks {
			set = append(set, "foreign_key_checks = 0")
		}
		if e := sess.ExplicitDefaultsForTimestamp; e != nil {
			differs, err := t.explicitTSDiffers(*e)
			if err != nil {
				return err
			}
			if differs {
				set = append(set, fmt.Sprintf("explicit_defaults_for_timestamp = %d", boolInt(*e)))
			}
		}
	}
	switch {
	case sess != nil && sess.Timestamp != "":
		set = append(set, "timestamp = "+sess.Timestamp) // checked against timestampRE
	case !at.IsZero():
		set = append(set, fmt.Sprintf("timestamp = %d.%06d", at.Unix(), at.Nanosecond()/1000))
	}
	if len(set) > 0 {
		if _, err := t.conn.Execute("SET SESSION " + strings.Join(set, ", ")); err != nil {
			if sess != nil && sess.ExplicitDefaultsForTimestamp != nil && strings.Contains(err.Error(), "explicit_defaults_for_timestamp") {
				return fmt.Errorf("the source ran this DDL with explicit_defaults_for_timestamp = %d, which this server cannot set per session: %w; fix: restore into MariaDB 10.10+ or MySQL 8.0+, or a server started with explicit_defaults_for_timestamp = %[1]d",
					boolInt(*sess.ExplicitDefaultsForTimestamp), err)
			}
			if sess != nil && sess.TimeZone != "" && strings.Contains(err.Error(), "time zone") {
				return fmt.Errorf("the source ran this DDL in time zone %s, which the target does not know: %w; fix: load the target's time zone tables (mariadb-tzinfo-to-sql /usr/share/zoneinfo | mariadb mysql)", sess.TimeZone, err)
			}
			return fmt.Errorf("set the source session's settings for DDL: %w", err)
		}
	}
	_, err := t.conn.Execute(q)
	if len(set) > 0 {
		rerr := t.resetSession()
		if rerr == nil && slices.ContainsFunc(set, func(s string) bool { return strings.HasPrefix(s, "explicit_defaults_for_timestamp") }) {
			_, rerr = t.conn.Execute("SET SESSION explicit_defaults_for_timestamp = DEFAULT")
		}
		if err == nil && rerr != nil {
			return fmt.Errorf("restore replay's session settings after DDL: %w", rerr)
		}
	}
	return err
}

// ddlTimeZone returns the time zone to run a DDL statement of session
// sess in: the session's, but for SYSTEM, the source host's zone, the
// source's offset then (sess.SystemOffset) unless this server's own
// SYSTEM zone had the same offset at that time (the same zone, most
// likely: SYSTEM then keeps its daylight-saving rules too). at stands in
// for a session without a clock.
func (t *Target) ddlTimeZone(sess *ddlSession, at time.Time) (string, error) {
	if !strings.EqualFold(sess.TimeZone, "SYSTEM") || sess.SystemOffset == "" {
		return sess.TimeZone, nil
	}
	when := at.Unix()
	if sec, _, ok := strings.Cut(sess.Timestamp, "."); ok {
		when, _ = strconv.ParseInt(sec, 10, 64)
	}
	here, err := mysqlconn.SystemOffset(t.conn, when) // replay's session is in +00:00
	if err != nil {
		return "", err
	}
	if here == sess.SystemOffset {
		return "SYSTEM", nil
	}
	return sess.SystemOffset, nil
}

// explicitTSDiffers reports whether replay's session has another
// explicit_defaults_for_timestamp than on (resetSession gives it the
// server's default back).
func (t *Target) explicitTSDiffers(on bool) (bool, error) {
	row, err := mysqlconn.QueryRow(t.conn, "SELECT @@session.explicit_defaults_for_timestamp")
	if err != nil {
		return false, fmt.Errorf("read explicit_defaults_for_timestamp: %w", err)
	}
	return row[0] != strconv.Itoa(boolInt(on)), nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// databaseStmtRE matches CREATE, DROP and ALTER DATABASE (or SCHEMA).
var databaseStmtRE = regexp.MustCompile(`(?is)^\s*(CREATE|DROP|ALTER)\s+(?:DATABASE|SCHEMA)(?:\s+(.*))?$`)

// databaseStmt reports a statement on a whole database, which capture
// keeps only when it names the source database (or, for ALTER, names
// none and ran in it). Replay must never run one as written: on a server
// that also holds the source database it would change or drop that one.
// verb is CREATE, DROP or ALTER, rest what follows DATABASE.
func databaseStmt(q string) (verb, rest string, ok bool) {
	m := databaseStmtRE.FindStringSubmatch(q)
	if m == nil {
		return "", "", false
	}
	return strings.ToUpper(m[1]), m[2], true
}

// alterDatabaseOptions returns an ALTER DATABASE statement's options:
// rest without the database name, if it starts with one.
func alterDatabaseOptions(rest string) string {
	rest = strings.TrimSpace(rest)
	if strings.HasPrefix(rest, "`") {
		for i := 1; i < len(rest); i++ {
			if rest[i] != '`' {
				continue
			}
			if i+1 < len(rest) && rest[i+1] == '`' {
				i++ // a doubled backquote inside the name
				continue
			}
			return strings.TrimSpace(rest[i+1:])
		}
		return rest
	}
	word, after := rest, ""
	if i := strings.IndexFunc(rest, unicode.IsSpace); i >= 0 {
		word, after = rest[:i], rest[i:]
	}
	key, _, _ := strings.Cut(word, "=")
	switch strings.ToUpper(key) {
	case "DEFAULT", "CHARACTER", "CHARSET", "COLLATE", "COMMENT", "ENCRYPTION", "READ", "UPGRADE":
		return rest
	}
	return strings.TrimSpace(after)
}

// checkNames refuses a statement naming the source database explicitly
// when the target is named otherwise.
func (t *Target) checkNames(c *segment.Change) error {
	src := c.Schema
	if src == "" || strings.EqualFold(src, t.d.DB) {
		return nil
	}
	lq, ls := strings.ToLower(c.SQL), strings.ToLower(src)
	if strings.Contains(lq, "`"+ls+"`.") || strings.Contains(lq, `"`+ls+`".`) || strings.Contains(lq, ls+".") {
		return fmt.Errorf("DDL names the source database %s explicitly: replaying it here would change that database; restore into a database named %s", mysqlconn.QuoteIdent(src), mysqlconn.QuoteIdent(src))
	}
	return nil
}

var dropTriggerRE = regexp.MustCompile("(?is)^\\s*DROP\\s+TRIGGER\\s+(?:IF\\s+EXISTS\\s+)?(?:`?[^`.\\s]+`?\\.)?`?([^`\\s;]+)`?")

// dropTrigger returns the trigger a DROP TRIGGER statement drops.
func dropTrigger(q string) (string, bool) {
	m := dropTriggerRE.FindStringSubmatch(q)
	if m == nil {
		return "", false
	}
	return strings.Trim(m[1], `"`), true // "name" under ANSI_QUOTES
}
