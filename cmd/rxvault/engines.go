package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/engines"
	"github.com/rxvault/rxvault/internal/config"
	"github.com/rxvault/rxvault/pitr"
)

// sourceFor returns the capture source the configured DSN names, and the
// anchor name chain markers record for it.
func (g *globals) sourceFor(cfg *config.Config, spill string, log *slog.Logger) (capture.Source, string, error) {
	e, err := engines.CheckSource(cfg)
	if err != nil {
		return nil, "", usage(err)
	}
	return e.Source(cfg, engines.Wiring{Env: g.env, Spill: spill, Log: log}), e.Anchor(cfg), nil
}

// targetFor opens the restore target a DSN names.
func (g *globals) targetFor(ctx context.Context, dsn string, log *slog.Logger) (pitr.Target, error) {
	e, err := engines.ForDSN(dsn)
	if err != nil {
		return nil, usage(fmt.Errorf("--target %s: %w", config.RedactURL(dsn), err))
	}
	return e.Target(ctx, dsn, engines.Wiring{Env: g.env, Log: log})
}

// spillDir is where large transactions spill: inside the spool, so it is on
// the disk the DBA sized for rxvault.
func spillDir(cfg *config.Config) (string, error) {
	dir := cfg.Spool.Dir + "/spill"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("spool: %w", err)
	}
	return dir, nil
}
