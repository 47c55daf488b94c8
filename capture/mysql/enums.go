package mysql

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/rxvault/rxvault/internal/mysqlconn"
)

// MariaDB 10.11's SHOW CREATE TABLE, which mariadb-dump writes the
// schema by, renders an ENUM or SET column's members and its default
// through utf8mb3: a character outside the BMP (🙂) comes out as '?', so
// the restored column would have another member (battery seed
// 153069272). information_schema.COLUMNS renders them alike. The table
// itself holds them exactly, and a variable anchored to the column
// (DECLARE v TYPE OF t.c, in an anonymous block: no privilege beyond
// SELECT, nothing written) takes the column's exact type, so setting it
// to each index reads each member. enumFixes reads, for every ENUM and
// SET column whose character set can hold such characters and whose
// rendering holds a '?', the exact members and default; fixSchema puts
// them into the dump's CREATE TABLE statements.

// enumFix is the exact type of one ENUM or SET column.
type enumFix struct {
	set     bool
	members []string // utf8mb4
	// def is the rendered default matched to members, or nil: the
	// rendering is fixed by the line itself (see fixLine), except where it
	// cannot be told apart, which probeDefault resolves.
	def *string
}

// enumFixKey names a column: table, column.
type enumFixKey struct{ table, col string }

// enumFixes reads the exact members of db's ENUM and SET columns that
// SHOW CREATE TABLE may have rendered with '?' (see above).
// c is a session of Dump's; the members are read in one of enumFixes's
// own (an anonymous block's result set needs CLIENT_MULTI_RESULTS).
func enumFixes(ctx context.Context, c *client.Conn, d *mysqlconn.DSN) (_ map[enumFixKey]*enumFix, err error) {
	db := d.DB
	rows, err := mysqlconn.QueryRows(c, "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, HEX(COLUMN_TYPE), HEX(COLUMN_DEFAULT), IS_NULLABLE FROM information_schema.COLUMNS "+
		"WHERE TABLE_SCHEMA = ? AND DATA_TYPE IN ('enum', 'set') AND CHARACTER_SET_NAME IN ('utf8mb4', 'utf16', 'utf16le', 'utf32') "+
		"AND INSTR(COLUMN_TYPE, '?') > 0 ORDER BY TABLE_NAME, ORDINAL_POSITION", db)
	if err != nil {
		return nil, fmt.Errorf("list ENUM and SET columns: %w", err)
	}
	fixes := map[enumFixKey]*enumFix{}
	if len(rows) == 0 {
		return fixes, nil
	}
	mc, err := mysqlconn.Connect(ctx, d, "", func(c *client.Conn) error { return c.SetCapability(gomysql.CLIENT_MULTI_RESULTS) })
	if err != nil {
		return nil, err
	}
	defer mc.Close()
	for _, r := range rows {
		typ, err := hex.DecodeString(r[3])
		if err != nil {
			return nil, err
		}
		set := r[2] == "set"
		rendered, _, err := parseMembers(string(typ), 0)
		if err != nil {
			return nil, fmt.Errorf("column %s.%s: %w", mysqlconn.QuoteIdent(r[0]), mysqlconn.QuoteIdent(r[1]), err)
		}
		members, err := readMembers(mc, db, r[0], r[1], len(rendered), set)
		if err != nil {
			return nil, fmt.Errorf("column %s.%s: read its members: %w", mysqlconn.QuoteIdent(r[0]), mysqlconn.QuoteIdent(r[1]), err)
		}
		f := &enumFix{set: set, members: members}
		def, err := hex.DecodeString(r[4])
		if err != nil {
			return nil, err
		}
		// A default expression (not a quoted literal) is left as it is.
		if bytes.HasPrefix(def, []byte("'")) {
			// COLUMN_DEFAULT is the quoted literal, as SHOW CREATE TABLE's.
			rdef, _, err := parseQuoted(string(def), 0)
			if err != nil {
				return nil, fmt.Errorf("column %s.%s: default %q: %w", mysqlconn.QuoteIdent(r[0]), mysqlconn.QuoteIdent(r[1]), def, err)
			}
			exact, ok := matchDefault(rdef, members, set)
			if !ok {
				exact, err = probeDefault(c, db, r[0], r[1], r[5] == "YES")
				if err != nil {
					return nil, fmt.Errorf("column %s.%s: %w", mysqlconn.QuoteIdent(r[0]), mysqlconn.QuoteIdent(r[1]), err)
				}
			}
			f.def = &exact
		}
		fixes[enumFixKey{r[0], r[1]}] = f
	}
	return fixes, nil
}

// readMembers reads the n members of column table.col through a variable
// of its type: member i is index i of an ENUM, bit i-1 of a SET.
func readMembers(c *client.Conn, db, table, col string, n int, set bool) ([]string, error) {
	if n == 0 {
		return nil, nil
	}
	var q strings.Builder
	q.WriteString("BEGIN NOT ATOMIC DECLARE ")
	for i := range n {
		if i > 0 {
			q.WriteString(", ")
		}
		fmt.Fprintf(&q, "v%d", i)
	}
	fmt.Fprintf(&q, " TYPE OF %s.%s.%s; SET ", mysqlconn.QuoteIdent(db), mysqlconn.QuoteIdent(table), mysqlconn.QuoteIdent(col))
	for i := range n {
		if i > 0 {
			q.WriteString(", ")
		}
		if set {
			fmt.Fprintf(&q, "v%d = %d", i, uint64(1)<<i)
		} else {
			fmt.Fprintf(&q, "v%d = %d", i, i+1)
		}
	}
	q.WriteString("; SELECT ")
	for i := range n {
		if i > 0 {
			q.WriteString(", ")
		}
		fmt.Fprintf(&q, "HEX(CONVERT(v%d USING utf8mb4))", i)
	}
	q.WriteString("; END")
	var row []string
	_, err := c.ExecuteMultiple(q.String(), func(r *gomysql.Result, err error) {
		if err != nil || r == nil || r.Resultset == nil || r.RowNumber() != 1 || row != nil {
			return
		}
		row = make([]string, r.ColumnNumber())
		for i := range row {
			s, _ := r.GetString(0, i)
			row[i] = strings.Clone(s)
		}
	})
	if err != nil {
		return nil, err
	}
	if len(row) != n {
		return nil, errors.New("no row of members")
	}
	out := make([]string, n)
	for i, h := range row {
		b, err := hex.DecodeString(h)
		if err != nil {
			return nil, err
		}
		if !utf8.Valid(b) {
			return nil, fmt.Errorf("member %d is not UTF-8", i+1)
		}
		out[i] = string(b)
	}
	return out, nil
}

// renderUTF8MB3 is s as SHOW CREATE TABLE renders it: each character
// outside the BMP as '?'.
func renderUTF8MB3(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r > 0xFFFF {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// matchDefault finds the exact default whose rendering is rendered: one
// member of an ENUM, a comma-separated list of members of a SET. It
// fails where two members render alike.
func matchDefault(rendered string, members []string, set bool) (string, bool) {
	one := func(r string) (string, bool) {
		found, n := "", 0
		for _, m := range members {
			if renderUTF8MB3(m) == r {
				found, n = m, n+1
			}
		}
		return found, n == 1
	}
	if !set {
		return one(rendered)
	}
	if rendered == "" {
		return "", true // the empty set
	}
	var out []string
	for _, r := range strings.Split(rendered, ",") {
		m, ok := one(r)
		if !ok {
			return "", false
		}
		out = append(out, m)
	}
	return strings.Join(out, ","), true
}

// probeDefault reads column table.col's default from the server: DEFAULT()
// over a row outer-joined to nothing (which MariaDB answers for a nullable
// column), else over one of the table's rows.
func probeDefault(c *client.Conn, db, table, col string, nullable bool) (string, error) {
	t := mysqlconn.QuoteIdent(db) + "." + mysqlconn.QuoteIdent(table)
	expr := "HEX(CONVERT(DEFAULT(" + mysqlconn.QuoteIdent(col) + ") USING utf8mb4))"
	var queries []string
	if nullable {
		queries = append(queries, "SELECT "+expr+" FROM (SELECT 1) rxvault_one LEFT JOIN "+t+" ON 0")
	}
	queries = append(queries, "SELECT "+expr+" FROM "+t+" LIMIT 1")
	for _, q := range queries {
		rows, err := mysqlconn.QueryRows(c, q)
		if err != nil {
			return "", fmt.Errorf("read its default: %w", err)
		}
		if len(rows) == 1 && rows[0][0] != "" {
			b, err := hex.DecodeString(rows[0][0])
			if err != nil {
				return "", err
			}
			return string(b), nil
		}
	}
	return "", errors.New("its default names a member SHOW CREATE TABLE prints like another (they differ only in characters outside the BMP), " +
		"and the server tells the default only for a nullable column or a table with a row; fix: insert a row into the table, or make the column nullable, then take the base backup again")
}

// parseMembers parses the member list of an ENUM or SET type as SHOW
// CREATE TABLE renders it ("enum('a','it”s')"), starting at s[i], and
// returns the members and the index just past the closing parenthesis.
func parseMembers(s string, i int) ([]string, int, error) {
	open := strings.IndexByte(s[i:], '(')
	if open < 0 {
		return nil, 0, fmt.Errorf("no member list in %q", s)
	}
	i += open + 1
	var out []string
	for {
		if i < len(s) && s[i] == ')' && len(out) == 0 {
			return out, i + 1, nil
		}
		m, end, err := parseQuoted(s, i)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, m)
		i = end
		if i >= len(s) {
			return nil, 0, fmt.Errorf("member list %q does not end", s)
		}
		switch s[i] {
		case ',':
			i++
		case ')':
			return out, i + 1, nil
		default:
			return nil, 0, fmt.Errorf("member list %q: unexpected %q", s, s[i])
		}
	}
}

// parseQuoted parses the quoted literal at s[i] as SHOW CREATE TABLE
// writes it (” for a quote; \0, \n, \r, \\ and \x escapes) and returns
// its value and the index just past it.
func parseQuoted(s string, i int) (string, int, error) {
	if i >= len(s) || s[i] != '\'' {
		return "", 0, fmt.Errorf("no quoted literal at %d of %q", i, s)
	}
	var b strings.Builder
	for i++; i < len(s); i++ {
		switch ch := s[i]; ch {
		case '\'':
			if i+1 < len(s) && s[i+1] == '\'' {
				b.WriteByte('\'')
				i++
				continue
			}
			return b.String(), i + 1, nil
		case '\\':
			if i+1 >= len(s) {
				break
			}
			i++
			switch s[i] {
			case '0':
				b.WriteByte(0)
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 'Z':
				b.WriteByte(0x1a)
			default:
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(ch)
		}
	}
	return "", 0, fmt.Errorf("quoted literal in %q does not end", s)
}

// appendQuoted appends v as a quoted literal, escaped as SHOW CREATE
// TABLE escapes.
func appendQuoted(b []byte, v string) []byte {
	b = append(b, '\'')
	for i := 0; i < len(v); i++ {
		switch ch := v[i]; ch {
		case 0:
			b = append(b, `\0`...)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '\\':
			b = append(b, `\\`...)
		case '\'':
			b = append(b, `''`...)
		default:
			b = append(b, ch)
		}
	}
	return append(b, '\'')
}

// fixSchema rewrites, in a schema dump of mariadb-dump, the column lines
// of the CREATE TABLE statements fixes names (see enumFixes). A column
// named in fixes but not found is an error: the schema changed under the
// base backup.
func fixSchema(dump []byte, fixes map[enumFixKey]*enumFix) ([]byte, error) {
	if len(fixes) == 0 {
		return dump, nil
	}
	var out bytes.Buffer
	out.Grow(len(dump) + 1024)
	table := ""
	done := 0
	for len(dump) > 0 {
		line := dump
		if i := bytes.IndexByte(dump, '\n'); i >= 0 {
			line = dump[:i+1]
		}
		dump = dump[len(line):]
		switch {
		case bytes.HasPrefix(line, []byte("CREATE TABLE `")):
			name, _, ok := parseIdent(string(line), len("CREATE TABLE "))
			if ok {
				table = name
			}
		case bytes.HasPrefix(line, []byte(") ")), bytes.HasPrefix(line, []byte(");")):
			table = ""
		case table != "" && bytes.HasPrefix(line, []byte("  `")):
			col, end, ok := parseIdent(string(line), 2)
			if f := fixes[enumFixKey{table, col}]; ok && f != nil {
				fixed, err := fixLine(string(line), end, f)
				if err != nil {
					return nil, fmt.Errorf("table %s column %s: %w", mysqlconn.QuoteIdent(table), mysqlconn.QuoteIdent(col), err)
				}
				out.WriteString(fixed)
				done++
				continue
			}
		}
		out.Write(line)
	}
	if done != len(fixes) {
		return nil, fmt.Errorf("the schema dump holds %d of the %d ENUM and SET columns to fix: the schema changed while the base backup ran", done, len(fixes))
	}
	return out.Bytes(), nil
}

// fixLine rewrites one column line: the member list from s[i] on, and a
// quoted DEFAULT after it.
func fixLine(s string, i int, f *enumFix) (string, error) {
	typeStart := i
	rendered, typeEnd, err := parseMembers(s, i)
	if err != nil {
		return "", err
	}
	if len(rendered) != len(f.members) {
		return "", fmt.Errorf("%d members in the schema dump, %d read", len(rendered), len(f.members))
	}
	for k, m := range f.members {
		if renderUTF8MB3(m) != rendered[k] {
			return "", fmt.Errorf("member %d differs from the one read: the schema changed while the base backup ran", k+1)
		}
	}
	b := []byte(s[:typeStart])
	kw := strings.TrimSpace(s[typeStart : strings.IndexByte(s[typeStart:], '(')+typeStart])
	b = append(b, ' ')
	b = append(b, kw...)
	b = append(b, '(')
	for k, m := range f.members {
		if k > 0 {
			b = append(b, ',')
		}
		b = appendQuoted(b, m)
	}
	b = append(b, ')')
	rest := s[typeEnd:]
	if f.def != nil {
		// DEFAULT follows the type, character set, NULL and INVISIBLE,
		// none of which holds a quote.
		d := strings.Index(rest, " DEFAULT '")
		if d < 0 || strings.ContainsRune(rest[:d], '\'') {
			return "", errors.New("no DEFAULT in the schema dump, though the column has one")
		}
		b = append(b, rest[:d+len(" DEFAULT ")]...)
		_, end, err := parseQuoted(rest, d+len(" DEFAULT "))
		if err != nil {
			return "", err
		}
		b = appendQuoted(b, *f.def)
		rest = rest[end:]
	}
	return string(append(b, rest...)), nil
}

// parseIdent parses the backquoted identifier at s[i] and returns it and
// the index just past it.
func parseIdent(s string, i int) (string, int, bool) {
	if i >= len(s) || s[i] != '`' {
		return "", 0, false
	}
	var b strings.Builder
	for i++; i < len(s); i++ {
		if s[i] == '`' {
			if i+1 < len(s) && s[i+1] == '`' {
				b.WriteByte('`')
				i++
				continue
			}
			return b.String(), i + 1, true
		}
		b.WriteByte(s[i])
	}
	return "", 0, false
}
