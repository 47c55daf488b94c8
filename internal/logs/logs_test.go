package logs_test

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"log/slog"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rxvault/rxvault/internal/logs"
)

func TestFor(t *testing.T) {
	var buf bytes.Buffer
	logs.For(slog.New(slog.NewTextHandler(&buf, nil)), "capture/postgres").Info("hello", "k", 1)
	if got, want := buf.String(), "component=capture/postgres k=1"; !strings.Contains(got, want) {
		t.Errorf("got %q, want it to hold %q", got, want)
	}
	if l := logs.For(nil, "agent"); l.Enabled(t.Context(), slog.LevelError) {
		t.Error("For(nil) logs; it must discard")
	}
}

// TestComponentNames keeps to one scheme the component attribute of
// every library package: each logs.For call names the directory of its
// file (the package path within the module), nobody sets the attribute
// by hand, and no package but cmd falls back to slog.Default.
func TestComponentNames(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	calls := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && rel != "." || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") || strings.HasPrefix(rel, "internal/logs/") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		where := func(n ast.Node) string { return fset.Position(n.Pos()).String()[len(root)+1:] }
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if n.Kind == token.STRING && n.Value == strconv.Quote(logs.Key) {
					t.Errorf("%s: sets the %s attribute by hand; use logs.For", where(n), logs.Key)
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				pkg, ok := sel.X.(*ast.Ident)
				if !ok {
					return true
				}
				switch {
				case pkg.Name == "slog" && sel.Sel.Name == "Default" && !strings.HasPrefix(rel, "cmd/"):
					t.Errorf("%s: falls back to slog.Default; a nil logger discards (logs.For)", where(n))
				case pkg.Name == "logs" && sel.Sel.Name == "For":
					calls++
					want := path.Dir(rel)
					got := ""
					if lit, ok := n.Args[1].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						got, _ = strconv.Unquote(lit.Value)
					}
					if got != want {
						t.Errorf("%s: component must be the literal %q, the package path within the module", where(n), want)
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls == 0 {
		t.Error("found no logs.For call: is the walk looking at the module?")
	}
}
