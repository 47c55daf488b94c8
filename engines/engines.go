// Package engines is rxvault's engine table: the one list of the source
// engines it captures from and restores into, and what each provides (its
// DSN schemes, its archive engines, the configuration keys that belong to
// it, its capture source and restore target). Only cmd imports it
// (depguard enforces that); every other package is engine-neutral or one
// engine's own. There is no registration: an engine is a row of All.
//
// Adding an engine: a capture package (capture.Source, passing
// capture/capturetest when it exists), a restore target package
// (pitr.Target), the engine's notation row in segment, a row here, a test
// server in internal/testenv, and a harness in integration.
package engines

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"

	"github.com/rxvault/rxvault/capture"
	mycapture "github.com/rxvault/rxvault/capture/mysql"
	pgcapture "github.com/rxvault/rxvault/capture/postgres"
	"github.com/rxvault/rxvault/internal/config"
	"github.com/rxvault/rxvault/pitr"
	mytarget "github.com/rxvault/rxvault/pitr/mysql"
	pgtarget "github.com/rxvault/rxvault/pitr/postgres"
	"github.com/rxvault/rxvault/segment"
)

// Engine is one row of the table.
type Engine struct {
	// Name is the engine's name in messages.
	Name string
	// Schemes are the DSN schemes that name it, for sources and targets.
	Schemes []string
	// Archives are the segment engines its sources' archives are marked
	// with (MySQL and MariaDB share a capture and a target).
	Archives []segment.Engine
	// Check refuses configuration keys that do not apply to it, as a
	// *config.ValidationError.
	Check func(cfg *config.Config) error
	// Source returns the capture source for cfg's DSN.
	Source func(cfg *config.Config, w Wiring) capture.Source
	// Target opens the restore target a DSN names.
	Target func(ctx context.Context, dsn string, w Wiring) (pitr.Target, error)
	// Anchor is the name chain markers record for the stream's anchor on
	// the source (a replication slot's name), or "".
	Anchor func(cfg *config.Config) string
}

// Wiring is what cmd gives a constructor besides the configuration.
type Wiring struct {
	// Env is the process environment (os.Environ()): only cmd reads it,
	// and the engines take passwords (MYSQL_PWD), PGOPTIONS and their
	// child programs' environment from here.
	Env []string
	// Spill is where a source's large transactions spill.
	Spill string
	Log   *slog.Logger
}

// All is the table, in the order messages list the engines.
var All = []Engine{
	{
		Name:     "PostgreSQL",
		Schemes:  []string{"postgres", "postgresql"},
		Archives: []segment.Engine{segment.EnginePostgres},
		Check: func(cfg *config.Config) error {
			if cfg.Source.ID != "" {
				return &config.ValidationError{Key: "source.id", Value: cfg.Source.ID,
					Problem: "a PostgreSQL source is named by its system identifier, which a promoted standby keeps", Fix: "remove source.id"}
			}
			return nil
		},
		Source: func(cfg *config.Config, w Wiring) capture.Source {
			return pgcapture.NewSource(pgcapture.Config{
				DSN:         cfg.Source.DSN,
				Slot:        cfg.Source.Slot,
				Publication: cfg.Source.Publication,
				Tables:      cfg.Source.Tables,
				Heartbeat:   cfg.Source.Heartbeat,
				SpillDir:    w.Spill,
				Env:         w.Env,
				Logger:      w.Log,
			})
		},
		Target: func(ctx context.Context, dsn string, w Wiring) (pitr.Target, error) {
			return pgtarget.Open(ctx, pgtarget.Config{DSN: dsn, Env: w.Env, Logger: w.Log})
		},
		Anchor: func(cfg *config.Config) string { return cfg.Source.Slot },
	},
	{
		Name:     "MySQL and MariaDB",
		Schemes:  []string{"mysql"},
		Archives: []segment.Engine{segment.EngineMySQL, segment.EngineMariaDB},
		Check: func(cfg *config.Config) error {
			if u, err := url.Parse(cfg.Source.DSN); err != nil || u.Host == "" {
				return &config.ValidationError{Key: "source.dsn", Value: config.RedactURL(cfg.Source.DSN),
					Problem: "not a URL with a host", Fix: "write it as mysql://user@host:3306/database"}
			}
			if len(cfg.Source.Tables) > 0 {
				return &config.ValidationError{Key: "source.tables", Value: strings.Join(cfg.Source.Tables, ","),
					Problem: "MySQL and MariaDB sources capture the DSN's whole database", Fix: "remove source.tables, or give each database its own agent"}
			}
			return nil
		},
		Source: func(cfg *config.Config, w Wiring) capture.Source {
			return mycapture.NewSource(mycapture.Config{
				DSN:       cfg.Source.DSN,
				ID:        cfg.Source.ID,
				ServerID:  cfg.Source.ServerID,
				Heartbeat: cfg.Source.Heartbeat,
				StateDir:  cfg.Spool.Dir,
				SpillDir:  w.Spill,
				Env:       w.Env,
				Logger:    w.Log,
			})
		},
		Target: func(ctx context.Context, dsn string, w Wiring) (pitr.Target, error) {
			return mytarget.Open(ctx, mytarget.Config{DSN: dsn, Env: w.Env, Logger: w.Log})
		},
		Anchor: func(*config.Config) string { return "" }, // the position is saved in the spool
	},
}

// ForDSN returns the engine whose scheme starts dsn, or an error naming
// the engines there are.
func ForDSN(dsn string) (*Engine, error) {
	scheme := ""
	if u, err := url.Parse(dsn); err == nil {
		scheme = u.Scheme
	}
	for i := range All {
		if slices.Contains(All[i].Schemes, scheme) {
			return &All[i], nil
		}
	}
	return nil, fmt.Errorf("%s:// names no engine rxvault has (it has %s)", scheme, names())
}

// CheckSource validates cfg's source for its engine: the DSN's scheme names
// an engine, and the keys that do not apply to that engine are unset. It
// returns the engine, or a *config.ValidationError.
func CheckSource(cfg *config.Config) (*Engine, error) {
	if err := cfg.RequireSource(); err != nil {
		return nil, err
	}
	e, err := ForDSN(cfg.Source.DSN)
	if err != nil {
		var schemes []string
		for _, e := range All {
			for _, s := range e.Schemes[:1] {
				schemes = append(schemes, s+"://")
			}
		}
		return nil, &config.ValidationError{Key: "source.dsn", Value: config.RedactURL(cfg.Source.DSN), Problem: err.Error(),
			Fix: "start it with " + strings.Join(schemes, " or ") + " (see the README's known limits for engines to come)"}
	}
	if err := e.Check(cfg); err != nil {
		return nil, err
	}
	return e, nil
}

// names lists the engines for messages: "PostgreSQL, MySQL and MariaDB".
func names() string {
	var n []string
	for _, e := range All {
		n = append(n, e.Name)
	}
	return strings.Join(n, ", ")
}
