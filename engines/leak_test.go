package engines_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// engineConstants are the segment constants that name an engine.
var engineConstants = []string{"EnginePostgres", "EngineMySQL", "EngineMariaDB", "EngineSQLServer"}

// engineNames are the engine names and DSN schemes a switch or comparison
// could tell engines apart by.
var engineNames = []string{"postgres", "postgresql", "mysql", "mariadb", "sqlserver"}

// mayNameEngines are the places that may tell engines apart (paths from
// the repository root, a directory ending in /): the engine packages,
// segment's notation table, the engine table, cmd, the test servers, the
// MySQL connection helpers, and test support (segment/segtest, the
// integration tests).
var mayNameEngines = []string{
	"capture/postgres/", "capture/mysql/", "pitr/postgres/", "pitr/mysql/",
	"segment/engine.go", "segment/segtest/", "engines/", "cmd/", "internal/testenv/", "internal/mysqlconn/", "integration/",
}

// TestNoEngineLeaks fails when a non-test Go file outside mayNameEngines
// names an engine constant, or switches on or compares with an engine's
// name: engine knowledge belongs in the engine table and the engine
// packages (make lint runs it too).
func TestNoEngineLeaks(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var leaks []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && rel != "." || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") ||
			slices.ContainsFunc(mayNameEngines, func(p string) bool { return rel == p || strings.HasSuffix(p, "/") && strings.HasPrefix(rel, p) }) {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		leak := func(n ast.Node, what string) {
			leaks = append(leaks, fset.Position(n.Pos()).String()[len(root)+1:]+": "+what)
		}
		isName := func(e ast.Expr) bool {
			lit, ok := e.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return false
			}
			s, err := strconv.Unquote(lit.Value)
			return err == nil && slices.Contains(engineNames, s)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				if slices.Contains(engineConstants, n.Sel.Name) {
					leak(n, "names "+n.Sel.Name)
				}
			case *ast.Ident:
				if slices.Contains(engineConstants, n.Name) && f.Name.Name == "segment" {
					leak(n, "names "+n.Name+" outside segment's notation table")
				}
			case *ast.CaseClause:
				for _, e := range n.List {
					if isName(e) {
						leak(e, "switches on an engine name")
					}
				}
			case *ast.BinaryExpr:
				if (n.Op == token.EQL || n.Op == token.NEQ) && (isName(n.X) || isName(n.Y)) {
					leak(n, "compares with an engine name")
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leaks {
		t.Errorf("engine knowledge outside the engine table and packages: %s", l)
	}
}
