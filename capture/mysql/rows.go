package mysql

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/rxvault/rxvault/internal/mysqlconn"
)

// On MariaDB the base backup's rows are not mariadb-dump's: it writes a
// FLOAT as the server prints it, to 6 significant digits (16777217 as
// 16777200), and no option or server setting changes that. rxvault reads
// the rows itself, in a consistent-snapshot transaction whose binlog
// position (binlog_snapshot_file and binlog_snapshot_position, which is
// how mariadb-dump --single-transaction --master-data finds its own) is
// the base backup's, and writes each value as a literal that stores it
// exactly:
//
//   - integers, DECIMAL, YEAR: the server's text, unquoted;
//   - FLOAT: CAST(… AS DOUBLE), which is exact, as the shortest text that
//     parses back to that double, with an exponent (so -0 stays -0);
//     storing it in the FLOAT column gives back the same float;
//   - DOUBLE: likewise;
//   - ENUM and SET: the member's index and the bitmask (…+0), unquoted;
//     a row holding ENUM's error value (index 0), which strict mode
//     refuses as input, is inserted on its own without strict mode;
//   - DATE, TIME, DATETIME, TIMESTAMP (in UTC: the session and the load
//     run at time_zone '+00:00'), UUID, INET6, INET4: the server's text,
//     quoted;
//   - every other type (strings of any character set, binaries, BIT,
//     JSON, geometry): the stored bytes as an X'…' literal, read with
//     character_set_results binary, so no character set conversion
//     happens either way.
//
// Generated columns are left out (the server computes them); invisible
// ones are named. The rows load under strict mode with
// ALLOW_INVALID_DATES and NO_AUTO_VALUE_ON_ZERO, foreign-key and unique
// checks off, in statements of about 1 MiB, after the schema and before
// the triggers (so loading fires none).

// rowsSQLMode is the sql_mode the rows load under: a value that would not
// store as it is fails the restore instead of storing something else.
const rowsSQLMode = "STRICT_ALL_TABLES,ALLOW_INVALID_DATES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION"

// rowsLenientSQLMode is rowsSQLMode without strict mode, for a row that
// holds ENUM's error value.
const rowsLenientSQLMode = "ALLOW_INVALID_DATES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION"

// rowsHeader and rowsFooter frame the rows section of a dump.
const (
	rowsHeader = "\n-- rxvault: the rows, read in the snapshot\n" +
		"SET @rxvault_old_sql_mode = @@sql_mode, @rxvault_old_time_zone = @@time_zone, " +
		"@rxvault_old_fk = @@foreign_key_checks, @rxvault_old_uc = @@unique_checks;\n" +
		"SET sql_mode = '" + rowsSQLMode + "', time_zone = '+00:00', foreign_key_checks = 0, unique_checks = 0;\n"
	rowsFooter = "SET sql_mode = @rxvault_old_sql_mode, time_zone = @rxvault_old_time_zone, " +
		"foreign_key_checks = @rxvault_old_fk, unique_checks = @rxvault_old_uc;\n"
)

// rowsStatementBytes is about how long one INSERT of the rows section is
// (mariadb-dump's default is about 1 MiB too).
const rowsStatementBytes = 1 << 20

// valueForm is how a column's values are selected and written.
type valueForm int

const (
	formBytes  valueForm = iota // X'…' of the stored bytes
	formNumber                  // the text, unquoted
	formFloat                   // float64 text with an exponent
	formIndex                   // ENUM's index or SET's bitmask
	formQuoted                  // the text, quoted
)

// dumpColumn is one column the rows section writes.
type dumpColumn struct {
	name string
	form valueForm
	enum bool // an ENUM column (index 0 is the error value)
}

// dumpTable is one table whose rows the section writes.
type dumpTable struct {
	name string
	cols []dumpColumn
}

// formOf maps information_schema.COLUMNS.DATA_TYPE to a value form.
func formOf(dataType string) valueForm {
	switch strings.ToLower(dataType) {
	case "tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "year":
		return formNumber
	case "float", "double":
		return formFloat
	case "enum", "set":
		return formIndex
	case "date", "time", "datetime", "timestamp", "uuid", "inet6", "inet4":
		return formQuoted
	}
	return formBytes
}

// selectExpr is the expression the snapshot reads column c by.
func (c dumpColumn) selectExpr() string {
	q := mysqlconn.QuoteIdent(c.name)
	switch c.form {
	case formFloat:
		return "CAST(" + q + " AS DOUBLE)"
	case formIndex:
		return q + "+0"
	}
	return q
}

// snapshotTables lists the tables of db whose rows the base backup holds,
// with their columns, in the snapshot's session c. Views, sequences
// (whose state the schema's SETVAL holds) and tables whose rows are not
// theirs (MERGE, FEDERATED: as mariadb-dump) are left out.
func snapshotTables(c *client.Conn, db string) ([]dumpTable, error) {
	rows, err := mysqlconn.QueryRows(c, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? "+
		"AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') AND UPPER(IFNULL(ENGINE, '')) NOT IN ('MRG_MYISAM', 'MRG_ISAM', 'FEDERATED') ORDER BY TABLE_NAME", db)
	if err != nil {
		return nil, fmt.Errorf("list the tables: %w", err)
	}
	byName := map[string]*dumpTable{}
	tables := make([]dumpTable, len(rows))
	for i, r := range rows {
		tables[i].name = r[0]
		byName[r[0]] = &tables[i]
	}
	cols, err := mysqlconn.QueryRows(c, "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, IS_GENERATED FROM information_schema.COLUMNS "+
		"WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION", db)
	if err != nil {
		return nil, fmt.Errorf("list the columns: %w", err)
	}
	for _, r := range cols {
		t := byName[r[0]]
		if t == nil || r[3] == "ALWAYS" {
			continue
		}
		t.cols = append(t.cols, dumpColumn{name: r[1], form: formOf(r[2]), enum: strings.EqualFold(r[2], "enum")})
	}
	return tables, nil
}

// writeRows writes the rows section of tables, read in the snapshot's
// session c, to w. It stops at ctx's end or w's first error.
func writeRows(ctx context.Context, c *client.Conn, db string, tables []dumpTable, w io.Writer) error {
	if _, err := io.WriteString(w, rowsHeader); err != nil {
		return err
	}
	for _, t := range tables {
		if err := ctx.Err(); err != nil {
			return err
		}
		if len(t.cols) == 0 {
			continue
		}
		if err := writeTableRows(ctx, c, db, t, w); err != nil {
			return fmt.Errorf("table %s: %w", mysqlconn.QuoteIdent(t.name), err)
		}
	}
	_, err := io.WriteString(w, rowsFooter)
	return err
}

// writeTableRows writes table t's rows as INSERT statements.
func writeTableRows(ctx context.Context, c *client.Conn, db string, t dumpTable, w io.Writer) error {
	var sel, head strings.Builder
	sel.WriteString("SELECT ")
	head.WriteString("INSERT INTO " + mysqlconn.QuoteIdent(t.name) + " (")
	for i, col := range t.cols {
		if i > 0 {
			sel.WriteString(", ")
			head.WriteString(",")
		}
		sel.WriteString(col.selectExpr())
		head.WriteString(mysqlconn.QuoteIdent(col.name))
	}
	sel.WriteString(" FROM " + mysqlconn.QuoteIdent(db) + "." + mysqlconn.QuoteIdent(t.name))
	head.WriteString(") VALUES ")
	insert := head.String()
	var stmt, row []byte
	flush := func() error {
		if len(stmt) == 0 {
			return nil
		}
		stmt = append(stmt, ";\n"...)
		_, err := w.Write(stmt)
		stmt = stmt[:0]
		return err
	}
	var result gomysql.Result
	err := c.ExecuteSelectStreaming(sel.String(), &result, func(vals []gomysql.FieldValue) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var lenient bool
		var err error
		row, lenient, err = appendRow(row[:0], t.cols, vals)
		if err != nil {
			return err
		}
		if lenient {
			// SET STATEMENT: this one statement runs without strict mode.
			if err := flush(); err != nil {
				return err
			}
			stmt = append(stmt, "SET STATEMENT sql_mode = '"+rowsLenientSQLMode+"' FOR "...)
			stmt = append(stmt, insert...)
			stmt = append(stmt, row...)
			return flush()
		}
		if len(stmt) > 0 && len(stmt)+len(row) > rowsStatementBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		if len(stmt) == 0 {
			stmt = append(stmt, insert...)
		} else {
			stmt = append(stmt, ',')
		}
		stmt = append(stmt, row...)
		return nil
	}, nil)
	if err != nil {
		return err
	}
	return flush()
}

// appendRow appends one row's tuple of literals. lenient reports an ENUM
// at its error value (index 0).
func appendRow(b []byte, cols []dumpColumn, vals []gomysql.FieldValue) (_ []byte, lenient bool, _ error) {
	if len(vals) != len(cols) {
		return b, false, fmt.Errorf("read %d values for %d columns", len(vals), len(cols))
	}
	b = append(b, '(')
	for i := range vals {
		if i > 0 {
			b = append(b, ',')
		}
		v := &vals[i]
		if v.Type == gomysql.FieldValueTypeNull {
			b = append(b, "NULL"...)
			continue
		}
		col := cols[i]
		var err error
		switch col.form {
		case formFloat:
			if v.Type != gomysql.FieldValueTypeFloat {
				return b, false, fmt.Errorf("column %s: read as %d, not a float", mysqlconn.QuoteIdent(col.name), v.Type)
			}
			b, err = appendFloat(b, v.AsFloat64())
		case formNumber, formIndex:
			var text string
			switch v.Type {
			case gomysql.FieldValueTypeSigned:
				text = strconv.FormatInt(v.AsInt64(), 10)
			case gomysql.FieldValueTypeUnsigned:
				text = strconv.FormatUint(v.AsUint64(), 10)
			case gomysql.FieldValueTypeString:
				text = string(v.AsString())
			default:
				return b, false, fmt.Errorf("column %s: read as %d, not a number", mysqlconn.QuoteIdent(col.name), v.Type)
			}
			if !numberRE.MatchString(text) {
				return b, false, fmt.Errorf("column %s: malformed number", mysqlconn.QuoteIdent(col.name))
			}
			if col.enum && text == "0" {
				lenient = true
			}
			b = append(b, text...)
		case formQuoted:
			s := v.AsString()
			if !quotedRE.Match(s) {
				return b, false, fmt.Errorf("column %s: malformed value", mysqlconn.QuoteIdent(col.name))
			}
			b = append(b, '\'')
			b = append(b, s...)
			b = append(b, '\'')
		default:
			s := v.AsString()
			if len(s) == 0 {
				b = append(b, "''"...)
				break
			}
			b = append(b, "X'"...)
			b = hex.AppendEncode(b, s)
			b = append(b, '\'')
		}
		if err != nil {
			return b, false, fmt.Errorf("column %s: %w", mysqlconn.QuoteIdent(col.name), err)
		}
	}
	return append(b, ')'), lenient, nil
}

// appendFloat appends f as the shortest literal that parses back to it,
// always with an exponent, so that it is a floating-point literal (-0e0
// keeps its sign; -0 would be the integer 0).
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, errors.New("not a finite number")
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'g', -1, 64)
	if !strings.ContainsAny(string(b[start:]), "eE") {
		b = append(b, "e0"...)
	}
	return b, nil
}

var (
	// numberRE matches an integer or DECIMAL's text.
	numberRE = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)
	// quotedRE matches the text of temporal, UUID, INET6 and INET4
	// values: nothing in it can end the quoted literal.
	quotedRE = regexp.MustCompile(`^[-0-9A-Fa-f :.]*$`)
)

// rowsStream is the rows section being read from the snapshot's session
// by a goroutine it owns (see startRows).
type rowsStream struct {
	pr     *io.PipeReader
	conn   *client.Conn
	cancel context.CancelFunc
	done   chan error
	closed bool
}

// startRows starts reading tables' rows in the snapshot's session c,
// which the stream owns from then on, as the rows section.
func startRows(ctx context.Context, c *client.Conn, db string, tables []dumpTable) *rowsStream {
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	s := &rowsStream{pr: pr, conn: c, cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := writeRows(ctx, c, db, tables, pw)
		if err != nil {
			err = fmt.Errorf("the rows: %w", err)
		}
		pw.CloseWithError(err) // nil: io.EOF
		s.done <- err
	}()
	return s
}

// Read reads the rows section.
func (s *rowsStream) Read(p []byte) (int, error) { return s.pr.Read(p) }

// close stops the goroutine (a Read still to come fails), waits for it,
// ends the snapshot and returns the goroutine's error, unless it only
// stopped because the stream was closed.
func (s *rowsStream) close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.cancel()
	_ = s.pr.CloseWithError(errRowsClosed)
	err := <-s.done
	_, _ = s.conn.Execute("ROLLBACK")
	s.conn.Close()
	if errors.Is(err, errRowsClosed) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// errRowsClosed is what the rows' goroutine meets when the stream is
// closed under it.
var errRowsClosed = errors.New("the dump was closed")
