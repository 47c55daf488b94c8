package mysql

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/rxvault/rxvault/internal/mysqlconn"
	"github.com/rxvault/rxvault/segment"
)

// tableInfo is what replay needs of a target table: which columns are
// generated.
type tableInfo struct {
	generated map[string]bool
	columns   int
}

// table returns the target's view of table name, cached until the next DDL.
// errNoTable marks a table the target does not have.
var errNoTable = errors.New("no such table")

func (t *Target) table(name string) (*tableInfo, error) {
	if ti := t.tables[name]; ti != nil {
		return ti, nil
	}
	rows, err := mysqlconn.QueryRows(t.conn, "SELECT COLUMN_NAME, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", name)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("table %s does not exist on the target: %w", mysqlconn.QuoteIdent(name), errNoTable)
	}
	ti := &tableInfo{generated: map[string]bool{}, columns: len(rows)}
	for _, r := range rows {
		if strings.Contains(strings.ToUpper(r[1]), "GENERATED") || strings.Contains(strings.ToUpper(r[1]), "VIRTUAL") ||
			strings.Contains(strings.ToUpper(r[1]), "PERSISTENT") || strings.Contains(strings.ToUpper(r[1]), "STORED") {
			ti.generated[r[0]] = true
		}
	}
	t.tables[name] = ti
	return ti, nil
}

// Apply applies one source transaction. Consecutive transactions share a
// target transaction, up to Config.GroupSize; a DDL statement commits the
// group first (MySQL commits implicitly around DDL anyway). Row statements
// are batched (see batch), so a failing statement may be found while a
// later transaction of the group is applied. An error rolls the target
// back to the last committed group and names the transaction and change
// that failed.
func (t *Target) Apply(ctx context.Context, info *segment.TxnInfo, changes iter.Seq2[*segment.Change, error]) error {
	if t.broken != nil {
		return fmt.Errorf("restore target unusable after an earlier error: %w", t.broken)
	}
	if t.finished {
		return fmt.Errorf("Apply after Finish")
	}
	t.seq++
	t.commitAt = info.Commit
	name := txnName(info)
	n := 0
	var nch int64
	for c, err := range changes {
		if err != nil {
			return t.fail(info, n, err)
		}
		n++
		if err := t.change(name, n, c); err != nil {
			return t.fail(info, n, err)
		}
		nch++
	}
	if t.fkOff {
		if err := t.foreignKeyChecks(name, n, true); err != nil {
			return t.fail(info, n, err)
		}
	}
	t.txns.Add(1)
	t.changes.Add(nch)
	t.moved.applied(info)
	if t.open {
		t.inGroup++
		if t.groupFrom == "" {
			t.groupFrom = name
		}
		if t.inGroup >= t.group {
			return t.commit(info)
		}
	}
	return nil
}

// change applies change n of transaction txn.
func (t *Target) change(txn string, n int, c *segment.Change) error {
	switch c.Op {
	case segment.OpInsert, segment.OpUpdate, segment.OpDelete:
		t.beginGroup(txn, n)
		return t.row(txn, n, c)
	case segment.OpDDL:
		return t.ddl(c)
	case segment.OpMessage:
		switch c.Prefix {
		case segment.MsgAutoIncrement:
			m := map[string]string{}
			if err := json.Unmarshal(c.Content, &m); err != nil {
				return fmt.Errorf("bad %s message: %w", c.Prefix, err)
			}
			t.autoInc = m
		case segment.MsgForeignKeyChecks:
			switch string(c.Content) {
			case "0":
				return t.foreignKeyChecks(txn, n, false)
			case "1":
				return t.foreignKeyChecks(txn, n, true)
			}
			return fmt.Errorf("bad %s message", c.Prefix)
		case segment.MsgDDLSession:
			var s ddlSession
			if err := json.Unmarshal(c.Content, &s); err != nil || !sqlModeRE.MatchString(s.SQLMode) ||
				s.TimeZone != "" && !timeZoneRE.MatchString(s.TimeZone) || s.Timestamp != "" && !timestampRE.MatchString(s.Timestamp) ||
				s.SystemOffset != "" && !offsetRE.MatchString(s.SystemOffset) {
				return fmt.Errorf("bad %s message", c.Prefix)
			}
			t.ddlSess = &s
		default:
			if segment.UnknownMessage(c.Prefix) {
				return fmt.Errorf("message %s is not one this rxvault knows (an archive written by a newer rxvault?): restore with that version", c.Prefix)
			}
		}
		return nil
	case segment.OpTruncate:
		return fmt.Errorf("truncate changes do not come from MySQL sources")
	}
	return fmt.Errorf("unknown change %s", c.Op)
}

// beginGroup opens a target transaction, if none is open, at change n of
// transaction txn.
func (t *Target) beginGroup(txn string, n int) {
	if !t.open {
		t.batch = append(t.sep(), "BEGIN"...)
		t.pending = append(t.pending, stmt{txn: txn, first: n, last: n})
		t.open = true
	}
}

// foreignKeyChecks sets foreign_key_checks for the row changes that follow
// (segment.MsgForeignKeyChecks), as a statement of the batch; Apply
// turns the checks back on at the end of each source transaction.
func (t *Target) foreignKeyChecks(txn string, n int, on bool) error {
	if on != t.fkOff {
		return nil // already so
	}
	t.beginGroup(txn, n)
	start := len(t.batch)
	if on {
		t.batch = append(t.sep(), "SET foreign_key_checks = 1"...)
	} else {
		t.batch = append(t.sep(), "SET foreign_key_checks = 0"...)
	}
	t.pending = append(t.pending, stmt{txn: txn, first: n, last: n})
	t.fkOff = !on
	return t.fill(start)
}

// stmt is one statement of the batch: BEGIN (op 0) or the row statement
// of changes first to last of transaction txn (a multi-row INSERT when
// last > first).
type stmt struct {
	op          segment.Op
	table       string
	txn         string
	seq         uint64 // the Apply call of txn
	first, last int
	hdr         int // an INSERT's column list ends at batch[hdr:], for merging
}

// where names the statement's changes in errors.
func (s *stmt) where() string {
	if s.last > s.first {
		return fmt.Sprintf("transaction %s, changes %d to %d (one INSERT into %s)", s.txn, s.first, s.last, mysqlconn.QuoteIdent(s.table))
	}
	return fmt.Sprintf("transaction %s, change %d", s.txn, s.first)
}

// batchError is the failure of a batched statement, found when the batch
// ran: it names its own transaction and change.
type batchError struct {
	where string
	err   error
}

func (e *batchError) Error() string { return e.where + ": " + e.err.Error() }
func (e *batchError) Unwrap() error { return e.err }

// failure is an error fail has already named and rolled back.
type failure struct{ err error }

func (e *failure) Error() string { return e.err.Error() }
func (e *failure) Unwrap() error { return errors.Unwrap(e.err) }

// row appends the statement of change n of transaction txn to the batch:
// an INSERT right after an INSERT of the same transaction into the same
// columns of the same table adds its row to that statement. The batch runs
// once it holds batchBytes.
func (t *Target) row(txn string, n int, c *segment.Change) error {
	ti, err := t.table(c.Rel.Table)
	if err != nil {
		return err
	}
	cols := c.Rel.Columns
	start := len(t.batch)
	lenient := lenientSyntax{}
	if enumErrorValue(cols, c.New) {
		lenient = t.lenient
	}
	if c.Op == segment.OpInsert {
		h := append(t.hdr[:0], lenient.before...)
		h = append(h, "INSERT"...)
		h = append(h, lenient.after...)
		h = append(h, " INTO "...)
		h = append(h, mysqlconn.QuoteIdent(c.Rel.Table)...)
		h = append(h, " ("...)
		first := true
		for i := range cols {
			if ti.generated[cols[i].Name] {
				continue
			}
			if !first {
				h = append(h, ',')
			}
			first = false
			h = append(h, mysqlconn.QuoteIdent(cols[i].Name)...)
		}
		h = append(h, ") VALUES "...)
		t.hdr = h
		last := len(t.pending) - 1
		merge := last >= 0 && t.pending[last].op == segment.OpInsert && t.pending[last].seq == t.seq &&
			t.pending[last].table == c.Rel.Table && len(t.batch) < t.batchBytes &&
			t.pending[last].hdr >= len(h) && bytes.Equal(t.batch[t.pending[last].hdr-len(h):t.pending[last].hdr], h)
		if merge {
			t.batch = append(t.batch, ',')
		} else {
			t.batch = t.sep()
			t.batch = append(t.batch, h...)
		}
		hdr := len(t.batch)
		if t.batch, err = values(t.batch, cols, ti, c.New); err != nil {
			t.batch = t.batch[:start]
			return err
		}
		if merge {
			if len(t.batch) > t.maxPacket {
				// Too large together: run the statement as it was, then
				// this row in a statement of its own.
				t.batch = t.batch[:start]
				if err := t.flush(); err != nil {
					return err
				}
				return t.row(txn, n, c)
			}
			t.pending[last].last = n
		} else {
			t.pending = append(t.pending, stmt{op: segment.OpInsert, table: c.Rel.Table, txn: txn, seq: t.seq, first: n, last: n, hdr: hdr})
		}
		return t.fill(start)
	}
	t.batch = t.sep()
	if c.Op == segment.OpUpdate {
		t.batch = append(t.batch, lenient.before...)
		t.batch = append(t.batch, "UPDATE"...)
		t.batch = append(t.batch, lenient.after...)
		t.batch = append(t.batch, ' ')
		t.batch = append(t.batch, mysqlconn.QuoteIdent(c.Rel.Table)...)
		t.batch = append(t.batch, " SET "...)
		first := true
		for i := range cols {
			if ti.generated[cols[i].Name] {
				continue
			}
			if !first {
				t.batch = append(t.batch, ',')
			}
			first = false
			t.batch = append(t.batch, mysqlconn.QuoteIdent(cols[i].Name)...)
			t.batch = append(t.batch, '=')
			if t.batch, err = appendLiteral(t.batch, &cols[i], c.New[i]); err != nil {
				t.batch = t.batch[:start]
				return err
			}
		}
	} else {
		t.batch = append(t.batch, "DELETE FROM "...)
		t.batch = append(t.batch, mysqlconn.QuoteIdent(c.Rel.Table)...)
	}
	if t.batch, err = where(t.batch, c, ti); err != nil {
		t.batch = t.batch[:start]
		return err
	}
	t.pending = append(t.pending, stmt{op: c.Op, table: c.Rel.Table, txn: txn, seq: t.seq, first: n, last: n})
	return t.fill(start)
}

// enumErrorValue reports that vals set an ENUM column to its error value
// (index 0), which only a statement without strict mode stores.
func enumErrorValue(cols []segment.Column, vals []segment.Value) bool {
	for i, v := range vals {
		if i < len(cols) && byte(cols[i].TypeID) == gomysql.MYSQL_TYPE_ENUM && v.Kind == segment.Text && string(v.Data) == "0" {
			return true
		}
	}
	return false
}

// sep returns the batch ready for one more statement.
func (t *Target) sep() []byte {
	if len(t.batch) == 0 {
		return t.batch
	}
	return append(t.batch, ';')
}

// fill runs the batch once it is full. A statement that would make it
// larger than the server accepts (max_allowed_packet) runs on its own,
// after the statements before it (from start).
func (t *Target) fill(start int) error {
	if start > 0 && len(t.batch) > t.maxPacket {
		s := t.pending[len(t.pending)-1]
		t.pending = t.pending[:len(t.pending)-1]
		stmtSQL := bytes.Clone(t.batch[start+1:]) // without the separator
		t.batch = t.batch[:start]
		if err := t.flush(); err != nil {
			return err
		}
		t.batch = append(t.batch, stmtSQL...)
		if s.op == segment.OpInsert {
			s.hdr -= start + 1
		}
		t.pending = append(t.pending, s)
	}
	if len(t.batch) >= t.batchBytes {
		return t.flush()
	}
	return nil
}

// flush runs the batch: its statements in one query, one round trip. The
// server runs them in order and stops at the first that fails; a delete
// that finds no row fails the batch too. The open group stays open.
func (t *Target) flush() error {
	if len(t.pending) == 0 {
		return nil
	}
	i := 0
	var failed error
	_, err := t.conn.ExecuteMultiple(string(t.batch), func(r *gomysql.Result, err error) {
		defer func() { i++ }()
		if r != nil {
			defer r.Close()
		}
		if failed != nil {
			return
		}
		if i >= len(t.pending) {
			failed = fmt.Errorf("the server answered more statements than the %d sent", len(t.pending))
			return
		}
		s := &t.pending[i]
		switch {
		case err != nil:
			failed = &batchError{where: s.where(), err: err}
		case s.op == segment.OpDelete && r.AffectedRows != 1:
			failed = &batchError{where: s.where(), err: fmt.Errorf("delete from %s found %d rows, want 1: the target does not match the source",
				mysqlconn.QuoteIdent(s.table), r.AffectedRows)}
		}
	})
	first, last := t.pending[0].txn, t.pending[len(t.pending)-1].txn
	count := len(t.pending)
	t.batch, t.pending = t.batch[:0], t.pending[:0]
	switch {
	case err != nil:
		t.broken = err
		return &batchError{where: fmt.Sprintf("transactions %s to %s", first, last), err: err}
	case failed != nil:
		return failed
	case i != count:
		err := fmt.Errorf("the server answered %d of %d statements", i, count)
		t.broken = err
		return &batchError{where: fmt.Sprintf("transactions %s to %s", first, last), err: err}
	}
	return nil
}

// values appends the parenthesized values of row for cols, without the
// generated columns.
func values(b []byte, cols []segment.Column, ti *tableInfo, row []segment.Value) ([]byte, error) {
	b = append(b, '(')
	first := true
	for i := range cols {
		if ti.generated[cols[i].Name] {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		var err error
		if b, err = appendLiteral(b, &cols[i], row[i]); err != nil {
			return b, err
		}
	}
	return append(b, ')'), nil
}

// where appends the WHERE clause finding the old row.
func where(b []byte, c *segment.Change, ti *tableInfo) ([]byte, error) {
	if c.OldKind != segment.OldFull {
		return b, fmt.Errorf("%s without the old row", c.Op)
	}
	cols := c.Rel.Columns
	keyed := false
	for i := range cols {
		keyed = keyed || cols[i].Key
	}
	b = append(b, " WHERE "...)
	first := true
	for i := range cols {
		if keyed && !cols[i].Key || !keyed && !comparable(&cols[i]) || ti.generated[cols[i].Name] {
			continue
		}
		if !first {
			b = append(b, " AND "...)
		}
		first = false
		b = append(b, mysqlconn.QuoteIdent(cols[i].Name)...)
		b = append(b, " <=> "...)
		var err error
		if b, err = appendLiteral(b, &cols[i], c.Old[i]); err != nil {
			return b, err
		}
	}
	if first {
		return b, fmt.Errorf("table %s has no column to find rows by", mysqlconn.QuoteIdent(c.Rel.Table))
	}
	return append(b, " LIMIT 1"...), nil
}

// comparable reports whether equality on a column finds exactly the
// captured value.
func comparable(c *segment.Column) bool {
	switch byte(c.TypeID) {
	case gomysql.MYSQL_TYPE_FLOAT, gomysql.MYSQL_TYPE_DOUBLE, gomysql.MYSQL_TYPE_JSON:
		return false
	}
	return true
}

var (
	numberRE   = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)
	temporalRE = regexp.MustCompile(`^-?[0-9][0-9 :.\-]*$`)
)

// literal writes v as an SQL literal for column c (see appendLiteral).
func literal(b *strings.Builder, c *segment.Column, v segment.Value) error {
	out, err := appendLiteral(nil, c, v)
	if err != nil {
		return err
	}
	b.Write(out)
	return nil
}

// appendLiteral appends v as an SQL literal for column c (see the package
// documentation). Text values are checked against their type's
// alphabet, so no captured value can change the statement's syntax.
func appendLiteral(b []byte, c *segment.Column, v segment.Value) ([]byte, error) {
	switch v.Kind {
	case segment.Null:
		return append(b, "NULL"...), nil
	case segment.Binary:
		if len(v.Data) == 0 {
			return append(b, "''"...), nil
		}
		json := byte(c.TypeID) == gomysql.MYSQL_TYPE_JSON
		if json {
			b = append(b, "CONVERT("...)
		}
		b = append(b, "X'"...)
		b = hex.AppendEncode(b, v.Data)
		b = append(b, '\'')
		if json {
			b = append(b, " USING utf8mb4)"...)
		}
		return b, nil
	case segment.Text:
		switch byte(c.TypeID) {
		case gomysql.MYSQL_TYPE_NEWDECIMAL, gomysql.MYSQL_TYPE_DECIMAL, gomysql.MYSQL_TYPE_DATE, gomysql.MYSQL_TYPE_NEWDATE,
			gomysql.MYSQL_TYPE_TIME, gomysql.MYSQL_TYPE_TIME2, gomysql.MYSQL_TYPE_DATETIME, gomysql.MYSQL_TYPE_DATETIME2,
			gomysql.MYSQL_TYPE_TIMESTAMP, gomysql.MYSQL_TYPE_TIMESTAMP2:
			if !temporalRE.Match(v.Data) {
				return b, fmt.Errorf("column %s: malformed %s value", c.Name, c.Type)
			}
			b = append(b, '\'')
			b = append(b, v.Data...)
			return append(b, '\''), nil
		}
		if !numberRE.Match(v.Data) {
			if s := string(v.Data); s == "NaN" || strings.HasSuffix(s, "Inf") {
				return b, fmt.Errorf("column %s: %s cannot be stored in MySQL", c.Name, s)
			}
			return b, fmt.Errorf("column %s: malformed %s value", c.Name, c.Type)
		}
		if byte(c.TypeID) == gomysql.MYSQL_TYPE_FLOAT {
			// The server reads a literal as a double and then rounds it
			// to a float: a FLOAT's shortest text can lie beyond FLT_MAX
			// (3.4028235e+38, refused as out of range) or round twice to
			// another float. The float's exact value as a double's text
			// round-trips.
			f, err := strconv.ParseFloat(string(v.Data), 32)
			if err != nil {
				return b, fmt.Errorf("column %s: malformed %s value", c.Name, c.Type)
			}
			return strconv.AppendFloat(b, float64(float32(f)), 'g', -1, 64), nil
		}
		return append(b, v.Data...), nil
	}
	return b, fmt.Errorf("column %s: value kind %d does not come from MySQL sources", c.Name, v.Kind)
}

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

// commitOpen runs the batch and commits the open group, if any.
func (t *Target) commitOpen() error {
	if !t.open {
		return nil
	}
	if err := t.flush(); err != nil {
		return t.fail(nil, 0, err)
	}
	if _, err := t.conn.Execute("COMMIT"); err != nil {
		t.broken = err
		return fmt.Errorf("commit: %w", err)
	}
	t.open, t.inGroup, t.groupFrom = false, 0, ""
	return nil
}

// commit commits the group that info closes.
func (t *Target) commit(info *segment.TxnInfo) error {
	if err := t.flush(); err != nil {
		return t.fail(info, 0, err)
	}
	from := t.groupFrom
	if err := t.commitOpen(); err != nil {
		return fmt.Errorf("transactions %s to %s: %w", from, txnName(info), err)
	}
	return nil
}

// fail rolls the open group back and names what failed: change n of info,
// or, for a batched statement, its own transaction and change.
func (t *Target) fail(info *segment.TxnInfo, n int, err error) error {
	var done *failure
	if errors.As(err, &done) {
		return err // named and rolled back already (a DDL's commit of the group)
	}
	from := t.groupFrom
	t.batch, t.pending = t.batch[:0], t.pending[:0]
	if t.open {
		if _, rerr := t.conn.Execute("ROLLBACK"); rerr != nil {
			t.broken = rerr
		}
		t.open, t.inGroup, t.groupFrom = false, 0, ""
	}
	t.broken = err
	undone := ""
	if from != "" {
		undone = fmt.Sprintf("; transactions from %s on were rolled back", from)
	}
	var be *batchError
	if errors.As(err, &be) || info == nil {
		return &failure{fmt.Errorf("%w%s", err, undone)}
	}
	return &failure{fmt.Errorf("transaction %s, change %d: %w%s", txnName(info), n, err, undone)}
}

func txnName(info *segment.TxnInfo) string {
	if info.ID != "" {
		return info.ID
	}
	return "at " + info.Pos.Format(segment.EngineMySQL)
}
