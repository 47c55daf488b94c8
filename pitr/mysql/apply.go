package mysql

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"iter"
	"regexp"
	"strings"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/rxvault/rxvault/capture"
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
func (t *Target) table(name string) (*tableInfo, error) {
	if ti := t.tables[name]; ti != nil {
		return ti, nil
	}
	rows, err := mysqlconn.QueryRows(t.conn, "SELECT COLUMN_NAME, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", name)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("table %s does not exist on the target", mysqlconn.QuoteIdent(name))
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
// group first (MySQL commits implicitly around DDL anyway). An error rolls
// the target back to the last committed group and names the transaction
// and change that failed.
func (t *Target) Apply(ctx context.Context, info *segment.TxnInfo, changes iter.Seq2[*segment.Change, error]) error {
	if t.broken != nil {
		return fmt.Errorf("restore target unusable after an earlier error: %w", t.broken)
	}
	if t.finished {
		return fmt.Errorf("Apply after Finish")
	}
	n := 0
	var nch int64
	for c, err := range changes {
		if err != nil {
			return t.fail(info, n, err)
		}
		n++
		if err := t.change(c); err != nil {
			return t.fail(info, n, err)
		}
		nch++
	}
	t.txns.Add(1)
	t.changes.Add(nch)
	if t.open {
		t.inGroup++
		if t.groupFrom == "" {
			t.groupFrom = txnName(info)
		}
		if t.inGroup >= t.group {
			return t.commit(info)
		}
	}
	return nil
}

// change applies one change.
func (t *Target) change(c *segment.Change) error {
	switch c.Op {
	case segment.OpInsert, segment.OpUpdate, segment.OpDelete:
		if !t.open {
			if _, err := t.conn.Execute("BEGIN"); err != nil {
				return err
			}
			t.open = true
		}
		return t.row(c)
	case segment.OpDDL:
		return t.ddl(c)
	case segment.OpMessage:
		if c.Prefix == capture.PrefixAutoIncrement {
			m := map[string]string{}
			if err := json.Unmarshal(c.Content, &m); err != nil {
				return fmt.Errorf("bad %s message: %w", c.Prefix, err)
			}
			t.autoInc = m
		}
		return nil
	case segment.OpTruncate:
		return fmt.Errorf("truncate changes do not come from MySQL sources")
	}
	return fmt.Errorf("unknown change %s", c.Op)
}

// row builds and runs the statement of a row change.
func (t *Target) row(c *segment.Change) error {
	ti, err := t.table(c.Rel.Table)
	if err != nil {
		return err
	}
	cols := c.Rel.Columns
	b := &t.sql
	b.Reset()
	tbl := mysqlconn.QuoteIdent(c.Rel.Table)
	switch c.Op {
	case segment.OpInsert:
		b.WriteString("INSERT INTO " + tbl + " (")
		first := true
		for i := range cols {
			if ti.generated[cols[i].Name] {
				continue
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			b.WriteString(mysqlconn.QuoteIdent(cols[i].Name))
		}
		b.WriteString(") VALUES (")
		first = true
		for i := range cols {
			if ti.generated[cols[i].Name] {
				continue
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			if err := literal(b, &cols[i], c.New[i]); err != nil {
				return err
			}
		}
		b.WriteByte(')')
	case segment.OpUpdate:
		b.WriteString("UPDATE " + tbl + " SET ")
		first := true
		for i := range cols {
			if ti.generated[cols[i].Name] {
				continue
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			b.WriteString(mysqlconn.QuoteIdent(cols[i].Name) + "=")
			if err := literal(b, &cols[i], c.New[i]); err != nil {
				return err
			}
		}
		if err := where(b, c, ti); err != nil {
			return err
		}
	case segment.OpDelete:
		b.WriteString("DELETE FROM " + tbl)
		if err := where(b, c, ti); err != nil {
			return err
		}
	}
	r, err := t.conn.Execute(b.String())
	if err != nil {
		return err
	}
	defer r.Close()
	if c.Op == segment.OpDelete && r.AffectedRows != 1 {
		return fmt.Errorf("delete from %s found %d rows, want 1: the target does not match the source", tbl, r.AffectedRows)
	}
	return nil
}

// where writes the WHERE clause finding the old row.
func where(b *strings.Builder, c *segment.Change, ti *tableInfo) error {
	if c.OldKind != segment.OldFull {
		return fmt.Errorf("%s without the old row", c.Op)
	}
	cols := c.Rel.Columns
	keyed := false
	for i := range cols {
		keyed = keyed || cols[i].Key
	}
	b.WriteString(" WHERE ")
	first := true
	for i := range cols {
		if keyed && !cols[i].Key || !keyed && !comparable(&cols[i]) || ti.generated[cols[i].Name] {
			continue
		}
		if !first {
			b.WriteString(" AND ")
		}
		first = false
		b.WriteString(mysqlconn.QuoteIdent(cols[i].Name) + " <=> ")
		if err := literal(b, &cols[i], c.Old[i]); err != nil {
			return err
		}
	}
	if first {
		return fmt.Errorf("table %s has no column to find rows by", mysqlconn.QuoteIdent(c.Rel.Table))
	}
	b.WriteString(" LIMIT 1")
	return nil
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

// literal writes v as an SQL literal for column c (see the package
// documentation). Text values are checked against their type's
// alphabet, so no captured value can change the statement's syntax.
func literal(b *strings.Builder, c *segment.Column, v segment.Value) error {
	switch v.Kind {
	case segment.Null:
		b.WriteString("NULL")
		return nil
	case segment.Binary:
		if len(v.Data) == 0 {
			b.WriteString("''")
			return nil
		}
		json := byte(c.TypeID) == gomysql.MYSQL_TYPE_JSON
		if json {
			b.WriteString("CONVERT(")
		}
		b.WriteString("X'")
		b.WriteString(hex.EncodeToString(v.Data))
		b.WriteByte('\'')
		if json {
			b.WriteString(" USING utf8mb4)")
		}
		return nil
	case segment.Text:
		s := string(v.Data)
		switch byte(c.TypeID) {
		case gomysql.MYSQL_TYPE_NEWDECIMAL, gomysql.MYSQL_TYPE_DECIMAL, gomysql.MYSQL_TYPE_DATE, gomysql.MYSQL_TYPE_NEWDATE,
			gomysql.MYSQL_TYPE_TIME, gomysql.MYSQL_TYPE_TIME2, gomysql.MYSQL_TYPE_DATETIME, gomysql.MYSQL_TYPE_DATETIME2,
			gomysql.MYSQL_TYPE_TIMESTAMP, gomysql.MYSQL_TYPE_TIMESTAMP2:
			if !temporalRE.MatchString(s) {
				return fmt.Errorf("column %s: malformed %s value", c.Name, c.Type)
			}
			b.WriteByte('\'')
			b.WriteString(s)
			b.WriteByte('\'')
			return nil
		}
		if !numberRE.MatchString(s) {
			if s == "NaN" || strings.HasSuffix(s, "Inf") {
				return fmt.Errorf("column %s: %s cannot be stored in MySQL", c.Name, s)
			}
			return fmt.Errorf("column %s: malformed %s value", c.Name, c.Type)
		}
		b.WriteString(s)
		return nil
	}
	return fmt.Errorf("column %s: value kind %d does not come from MySQL sources", c.Name, v.Kind)
}

// ddl runs a DDL statement in its place, after committing the open group.
func (t *Target) ddl(c *segment.Change) error {
	if err := t.commitOpen(); err != nil {
		return err
	}
	if err := t.checkNames(c); err != nil {
		return err
	}
	clear(t.tables)
	if name, ok := dropTrigger(c.SQL); ok && t.dropKeptTrigger(name) {
		return nil // the trigger was kept aside: dropping it is forgetting it
	}
	if _, err := t.conn.Execute(c.SQL); err != nil {
		return err
	}
	if strings.Contains(strings.ToUpper(c.SQL), "TRIGGER") {
		return t.setTriggersAside()
	}
	return nil
}

// checkNames refuses a statement naming the source database explicitly
// when the target is named otherwise.
func (t *Target) checkNames(c *segment.Change) error {
	src := c.Schema
	if src == "" || strings.EqualFold(src, t.d.DB) {
		return nil
	}
	lq, ls := strings.ToLower(c.SQL), strings.ToLower(src)
	if strings.Contains(lq, "`"+ls+"`.") || strings.Contains(lq, ls+".") {
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
	return m[1], true
}

// commitOpen commits the open group, if any.
func (t *Target) commitOpen() error {
	if !t.open {
		return nil
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
	from := t.groupFrom
	if err := t.commitOpen(); err != nil {
		return fmt.Errorf("transactions %s to %s: %w", from, txnName(info), err)
	}
	return nil
}

// fail rolls the open group back and names what failed.
func (t *Target) fail(info *segment.TxnInfo, n int, err error) error {
	from := t.groupFrom
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
	return fmt.Errorf("transaction %s, change %d: %w%s", txnName(info), n, err, undone)
}

func txnName(info *segment.TxnInfo) string {
	if info.ID != "" {
		return info.ID
	}
	return "at " + info.Pos.Format(segment.EngineMySQL)
}
