package mysql

import (
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
