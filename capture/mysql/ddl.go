package mysql

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	_ "github.com/pingcap/tidb/pkg/parser/test_driver" // literal values for the parser
)

// ddlScope says which databases a DDL statement touches.
type ddlScope struct {
	ours   bool // it names a table (or the database) of the captured database
	others bool // it names another database's objects
	parsed bool // the parser understood it; otherwise the text was searched
}

// scopeOf finds the databases statement q touches when run with default
// database schema; db is the captured database. Names are compared
// case-insensitively (lower_case_table_names varies by server; a false
// match only captures a statement that replay then runs or refuses).
func scopeOf(q, schema, db string) ddlScope {
	stmts, _, err := parser.New().Parse(q, "", "")
	if err != nil || len(stmts) == 0 {
		return textScope(q, schema, db)
	}
	v := &nameVisitor{schema: schema, db: db}
	for _, s := range stmts {
		switch n := s.(type) {
		case *ast.CreateDatabaseStmt:
			v.name(n.Name.O)
		case *ast.DropDatabaseStmt:
			v.name(n.Name.O)
		case *ast.AlterDatabaseStmt:
			if n.AlterDefaultDatabase {
				v.name(schema)
			} else {
				v.name(n.Name.O)
			}
		}
		s.Accept(v)
	}
	if !v.any {
		v.name(schema)
	}
	return ddlScope{ours: v.ours, others: v.others, parsed: true}
}

// nameVisitor collects the databases of every table name in a statement.
type nameVisitor struct {
	schema, db   string
	ours, others bool
	any          bool
}

func (v *nameVisitor) name(s string) {
	v.any = true
	if s == "" {
		s = v.schema
	}
	if strings.EqualFold(s, v.db) {
		v.ours = true
	} else {
		v.others = true
	}
}

func (v *nameVisitor) Enter(n ast.Node) (ast.Node, bool) {
	if t, ok := n.(*ast.TableName); ok {
		v.name(t.Schema.O)
	}
	return n, false
}

func (v *nameVisitor) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// textScope is the fallback for statements the parser does not know
// (MariaDB-only syntax): the statement is ours if it ran in the captured
// database or names it followed by a dot.
func textScope(q, schema, db string) ddlScope {
	lq, ldb := strings.ToLower(q), strings.ToLower(db)
	named := strings.Contains(lq, "`"+ldb+"`.") || strings.Contains(lq, ldb+".")
	return ddlScope{ours: strings.EqualFold(schema, db) || named}
}

// ddlSession is what a DDL statement's session settings were, from its
// query event's status variables: what replay sets before running it, so
// routines, triggers and events it creates keep the source's sql_mode,
// and time literals in it are read in the source session's time zone.
type ddlSession struct {
	SQLMode  string `json:"sql_mode"`            // the mode's bits, in decimal (SET sql_mode takes them)
	TimeZone string `json:"time_zone,omitempty"` // empty: the server's default zone
}

// Query event status variable codes (MySQL's and MariaDB's log_event.h)
// and the size of each one's value, where it is fixed.
var statusVarSize = map[byte]int{
	0: 4, 1: 8, 3: 4, 4: 6, 7: 2, 8: 2, 9: 8, 10: 4, 13: 3,
	16: 1, 17: 8, 18: 2, 19: 1, 20: 1, // MySQL 8
	128: 3, 129: 8, 130: 1, // MariaDB
}

const (
	qSQLMode    = 1
	qCatalog    = 2 // length byte, name, NUL (MySQL 5.0.0 to 5.0.3)
	qTimeZone   = 5 // length byte, name
	qCatalogNZ  = 6 // length byte, name
	qInvoker    = 11
	qUpdatedDBs = 12
)

// parseStatusVars reads the sql_mode and time zone from a query event's
// status variables. Servers write sql_mode second and the time zone
// (only when the session's differs from the server default) soon after;
// parsing stops at the first code it does not know. ok is false when no
// sql_mode was found.
func parseStatusVars(b []byte) (s ddlSession, ok bool) {
	lenStr := func(i int) (string, int, bool) {
		if i >= len(b) || i+1+int(b[i]) > len(b) {
			return "", 0, false
		}
		return string(b[i+1 : i+1+int(b[i])]), 1 + int(b[i]), true
	}
	for i := 0; i < len(b); {
		code := b[i]
		i++
		if n, fixed := statusVarSize[code]; fixed {
			if i+n > len(b) {
				return s, ok
			}
			if code == qSQLMode {
				s.SQLMode, ok = strconv.FormatUint(binary.LittleEndian.Uint64(b[i:]), 10), true
			}
			i += n
			continue
		}
		switch code {
		case qTimeZone, qCatalogNZ, qCatalog:
			v, n, good := lenStr(i)
			if !good {
				return s, ok
			}
			if code == qTimeZone {
				s.TimeZone = v
			}
			i += n
			if code == qCatalog {
				i++ // its NUL
			}
		case qInvoker:
			_, n1, good1 := lenStr(i)
			_, n2, good2 := lenStr(i + n1)
			if !good1 || !good2 {
				return s, ok
			}
			i += n1 + n2
		case qUpdatedDBs:
			if i >= len(b) {
				return s, ok
			}
			count := int(b[i])
			i++
			if count == 254 { // more databases than it names
				continue
			}
			for range count {
				end := bytes.IndexByte(b[i:], 0)
				if end < 0 {
					return s, ok
				}
				i += end + 1
			}
		default:
			return s, ok
		}
	}
	return s, ok
}
