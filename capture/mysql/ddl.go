package mysql

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strconv"
	"strings"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	tidbmysql "github.com/pingcap/tidb/pkg/parser/mysql"
	_ "github.com/pingcap/tidb/pkg/parser/test_driver" // literal values for the parser
)

// ddlScope says which databases a DDL statement touches.
type ddlScope struct {
	ours   bool // it names a table (or the database) of the captured database
	others bool // it names another database's objects
	// othersChanged: it creates, changes, renames, drops or copies
	// another database's objects (RENAME TABLE t TO other.t, DROP TABLE
	// t, other.x, CREATE TABLE t LIKE other.t), not only names them in a
	// query (CREATE VIEW v AS SELECT … FROM other.t); see changedTables.
	othersChanged bool
	parsed        bool // the parser understood it; otherwise the text was searched
}

// scopeOf finds the databases statement q touches when run with default
// database schema; db is the captured database. Names are compared
// case-insensitively (lower_case_table_names varies by server; a false
// match only captures a statement that replay then runs or refuses).
func scopeOf(q, schema, db string, ansiQuotes bool) ddlScope {
	p := parser.New()
	if ansiQuotes {
		p.SetSQLMode(tidbmysql.ModeANSIQuotes) // "name" is an identifier, as the server logged it
	}
	stmts, _, err := p.Parse(q, "", "")
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
	sc := ddlScope{ours: v.ours, others: v.others, parsed: true}
	for _, s := range stmts {
		for _, tn := range changedTables(s) {
			if name := tn.Schema.O; name != "" && !strings.EqualFold(name, db) || name == "" && !strings.EqualFold(schema, db) {
				sc.othersChanged = true
			}
		}
	}
	return sc
}

// changedTables returns the tables (and views) a DDL statement creates,
// changes, renames or drops, and the one CREATE TABLE … LIKE copies: what
// replay cannot run exactly when they are another database's (their state
// on the restore server is not the source's). Tables it only reads, as a
// view's query does, are not among them.
func changedTables(s ast.StmtNode) []*ast.TableName {
	var out []*ast.TableName
	switch n := s.(type) {
	case *ast.CreateTableStmt:
		out = append(out, n.Table, n.ReferTable) // LIKE copies the other's definition
	case *ast.DropTableStmt:
		out = append(out, n.Tables...)
	case *ast.RenameTableStmt:
		for _, tt := range n.TableToTables {
			out = append(out, tt.OldTable, tt.NewTable)
		}
	case *ast.AlterTableStmt:
		out = append(out, n.Table)
		for _, sp := range n.Specs {
			if sp.NewTable != nil {
				out = append(out, sp.NewTable)
			}
		}
	case *ast.TruncateTableStmt:
		out = append(out, n.Table)
	case *ast.CreateIndexStmt:
		out = append(out, n.Table)
	case *ast.DropIndexStmt:
		out = append(out, n.Table)
	case *ast.CreateViewStmt:
		out = append(out, n.ViewName)
	}
	return slices.DeleteFunc(out, func(t *ast.TableName) bool { return t == nil })
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
	named := strings.Contains(lq, "`"+ldb+"`.") || strings.Contains(lq, `"`+ldb+`".`) || strings.Contains(lq, ldb+".")
	return ddlScope{ours: strings.EqualFold(schema, db) || named}
}

// ddlSession is what a DDL statement's session settings were, from its
// query event's status variables: what replay sets before running it, so
// routines, triggers and events it creates keep the source's sql_mode,
// and time literals in it are read in the source session's time zone.
type ddlSession struct {
	SQLMode string `json:"sql_mode"` // the mode's bits, in decimal (SET sql_mode takes them)
	// TimeZone is the session's time zone, where the statement used it
	// (so the server logged it). For SYSTEM, the source host's zone,
	// SystemOffset is that zone's offset from UTC at the statement's time
	// (+HH:MM): a restore host whose own zone differs then uses it.
	TimeZone     string `json:"time_zone,omitempty"`
	SystemOffset string `json:"system_offset,omitempty"`
	// Timestamp is the session's clock when the statement ran, seconds
	// and microseconds ("1796000000.123456"): what CURRENT_TIMESTAMP was
	// for it (the default that ALTER TABLE … ADD COLUMN … DEFAULT
	// CURRENT_TIMESTAMP gives existing rows, an event's default STARTS).
	Timestamp string `json:"timestamp,omitempty"`
	// Charset is the session's character_set_client, collation_connection
	// and collation_server, as collation ids (SET takes them): how the
	// server read the statement's text and literals.
	Charset []uint16 `json:"charset,omitempty"`
	// NoForeignKeyChecks: the session ran with foreign_key_checks=0 (so
	// a table may reference one created later).
	NoForeignKeyChecks bool `json:"no_foreign_key_checks,omitempty"`
	// ExplicitDefaultsForTimestamp is the session's
	// explicit_defaults_for_timestamp, where the server records it (MySQL
	// 8; MariaDB 10.10 and newer, in the session flags): whether a
	// TIMESTAMP column declared without NULL or a default is NULL DEFAULT
	// NULL (true) or NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE … (false).
	ExplicitDefaultsForTimestamp *bool `json:"explicit_defaults_for_timestamp,omitempty"`
	// micros is the microseconds of that clock, from the status
	// variables (0 if the server wrote none).
	micros uint32
	// flags2 is the session flags (Q_FLAGS2); mysqlExplicitTS MySQL's
	// explicit_defaults_for_timestamp variable (-1: not written).
	flags2          uint32
	mysqlExplicitTS int8
	// OtherDatabases says the statement also creates, changes or drops
	// another database's objects (RENAME TABLE t TO other.t, DROP TABLE
	// t, other.x).
	OtherDatabases bool `json:"other_databases,omitempty"`
}

// Query event status variable codes (MySQL's and MariaDB's log_event.h)
// and the size of each one's value, where it is fixed.
var statusVarSize = map[byte]int{
	0: 4, 1: 8, 3: 4, 4: 6, 7: 2, 8: 2, 9: 8, 10: 4, 13: 3,
	16: 1, 17: 8, 18: 2, 19: 1, 20: 1, // MySQL 8
	128: 3, 129: 8, 130: 1, // MariaDB
}

// optionNoForeignKeyChecks is the session flags' (Q_FLAGS2) bit for
// foreign_key_checks=0, the same in MySQL and MariaDB.
const optionNoForeignKeyChecks = 1 << 26

// mariadbOptionExplicitTS is MariaDB's session flags bit for
// explicit_defaults_for_timestamp=1, written from MariaDB 10.10 on (where
// the variable became a session one); MySQL has no such bit.
const mariadbOptionExplicitTS = 1 << 24

// explicitDefaultsForTimestamp sets s.ExplicitDefaultsForTimestamp from
// what the server (MariaDB or not, and of the version given) wrote.
func (s *ddlSession) explicitDefaultsForTimestamp(mariadb bool, version string) {
	var on bool
	switch {
	case mariadb && versionAtLeast(version, 10, 10):
		on = s.flags2&mariadbOptionExplicitTS != 0
	case !mariadb && s.mysqlExplicitTS >= 0:
		on = s.mysqlExplicitTS == 1
	default:
		return
	}
	s.ExplicitDefaultsForTimestamp = &on
}

// versionAtLeast reports whether a server version string ("10.11.6-MariaDB-log",
// "8.0.36") is at least major.minor.
func versionAtLeast(version string, major, minor int) bool {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

const (
	qFlags2     = 0
	qCharset    = 4   // character_set_client, collation_connection, collation_server (2 bytes each)
	qMicros     = 13  // MySQL: the statement's start, microseconds (3 bytes)
	qHRNow      = 128 // MariaDB: the same
	qSQLMode    = 1
	qCatalog    = 2 // length byte, name, NUL (MySQL 5.0.0 to 5.0.3)
	qTimeZone   = 5 // length byte, name
	qCatalogNZ  = 6 // length byte, name
	qInvoker    = 11
	qUpdatedDBs = 12
	qExplicitTS = 16 // MySQL: explicit_defaults_for_timestamp (1 byte)
)

// modeANSIQuotes is sql_mode's ANSI_QUOTES bit (the same in MySQL and
// MariaDB): the statement quotes identifiers with ".
const modeANSIQuotes = 1 << 2

// ansiQuotes reports whether the session's sql_mode had ANSI_QUOTES.
func (s ddlSession) ansiQuotes() bool {
	m, err := strconv.ParseUint(s.SQLMode, 10, 64)
	return err == nil && m&modeANSIQuotes != 0
}

// parseStatusVars reads the sql_mode and time zone from a query event's
// status variables. Servers write sql_mode second and the time zone
// (only when the session's differs from the server default) soon after;
// parsing stops at the first code it does not know. ok is false when no
// sql_mode was found.
func parseStatusVars(b []byte) (s ddlSession, ok bool) {
	s.mysqlExplicitTS = -1
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
			switch code {
			case qFlags2:
				s.flags2 = binary.LittleEndian.Uint32(b[i:])
				s.NoForeignKeyChecks = s.flags2&optionNoForeignKeyChecks != 0
			case qExplicitTS:
				s.mysqlExplicitTS = int8(min(b[i], 1))
			case qCharset:
				s.Charset = []uint16{binary.LittleEndian.Uint16(b[i:]), binary.LittleEndian.Uint16(b[i+2:]), binary.LittleEndian.Uint16(b[i+4:])}
			case qSQLMode:
				s.SQLMode, ok = strconv.FormatUint(binary.LittleEndian.Uint64(b[i:]), 10), true
			case qMicros, qHRNow:
				s.micros = uint32(b[i]) | uint32(b[i+1])<<8 | uint32(b[i+2])<<16
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
