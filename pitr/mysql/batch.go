package mysql

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/rxvault/rxvault/internal/mysqlconn"
	"github.com/rxvault/rxvault/segment"
)

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
// that finds no row fails the batch too. The open group stays open. A
// server error is a *ServerError, which quotes none of the values.
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
			failed = &batchError{where: s.where(), err: withheldServerError(err)}
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
		err = withheldServerError(err)
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
