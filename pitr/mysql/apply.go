package mysql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strings"

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
