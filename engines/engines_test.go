package engines_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rxvault/rxvault/engines"
	"github.com/rxvault/rxvault/internal/config"
)

// TestCheckSource: the engine table refuses a scheme no engine has and the
// keys that do not belong to the DSN's engine, as one validation error
// naming the key, with a fix and no password.
func TestCheckSource(t *testing.T) {
	for _, c := range []struct {
		dsn, set, key string // key "" accepts
	}{
		{"postgres://rx@db:5432/pharmacy", "", ""},
		{"postgresql:///pharmacy?host=/run/postgresql", "", ""},
		{"mysql://rx@db:3306/pharmacy", "", ""},
		{"mysql://rx@db:3306/pharmacy", "source.id=main", ""},
		{"oracle://admin:hunter2@db/x", "", "source.dsn"},
		{"sqlserver://sa:hunter2@db:1433/pharmacy", "", "source.dsn"},
		{"mysql:///pharmacy", "", "source.dsn"},
		{"postgres://rx@db:5432/pharmacy", "source.id=main", "source.id"},
		{"mysql://rx:hunter2@db:3306/pharmacy", "source.tables=pharmacy.rx", "source.tables"},
	} {
		set := []string{"source.dsn=" + c.dsn}
		if c.set != "" {
			set = append(set, c.set)
		}
		cfg, err := config.Load(config.Sources{Set: set})
		if err != nil {
			t.Fatalf("%s %s: load: %v", c.dsn, c.set, err)
		}
		e, err := engines.CheckSource(&cfg)
		var ve *config.ValidationError
		switch {
		case c.key == "" && err != nil:
			t.Errorf("%s %s: %v", c.dsn, c.set, err)
		case c.key == "" && (e == nil || e.Source == nil || e.Target == nil):
			t.Errorf("%s %s: no engine", c.dsn, c.set)
		case c.key != "" && (!errors.As(err, &ve) || ve.Key != c.key || ve.Fix == ""):
			t.Errorf("%s %s: %v, want a validation error of %s with a fix", c.dsn, c.set, err, c.key)
		case err != nil && strings.Contains(err.Error(), "hunter2"):
			t.Errorf("%s: error shows the password: %v", c.dsn, err)
		}
	}
}

// TestTableIsWhole: every engine row is complete, and no scheme names two.
func TestTableIsWhole(t *testing.T) {
	seen := map[string]string{}
	for _, e := range engines.All {
		if e.Name == "" || len(e.Schemes) == 0 || len(e.Archives) == 0 || e.Check == nil || e.Source == nil || e.Target == nil || e.Anchor == nil {
			t.Errorf("engine %q: incomplete row", e.Name)
		}
		for _, s := range e.Schemes {
			if other, ok := seen[s]; ok {
				t.Errorf("scheme %s names %s and %s", s, other, e.Name)
			}
			seen[s] = e.Name
		}
	}
}
