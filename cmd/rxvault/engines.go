package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/rxvault/rxvault/capture"
	mycapture "github.com/rxvault/rxvault/capture/mysql"
	pgcapture "github.com/rxvault/rxvault/capture/postgres"
	"github.com/rxvault/rxvault/internal/config"
	"github.com/rxvault/rxvault/pitr"
	mytarget "github.com/rxvault/rxvault/pitr/mysql"
	pgtarget "github.com/rxvault/rxvault/pitr/postgres"
)

// sourceFor returns the capture source the configured DSN names.
func sourceFor(cfg *config.Config, spill string, log *slog.Logger) (capture.Source, error) {
	if err := cfg.RequireSource(); err != nil {
		return nil, usage(err)
	}
	switch dsnScheme(cfg.Source.DSN) {
	case "postgres", "postgresql":
		if cfg.Source.ID != "" {
			return nil, usage(fmt.Errorf("source.id: a PostgreSQL source is named by its system identifier, which a promoted standby keeps; fix: remove source.id"))
		}
		return pgcapture.NewSource(pgcapture.Config{
			DSN:         cfg.Source.DSN,
			Slot:        cfg.Source.Slot,
			Publication: cfg.Source.Publication,
			Tables:      cfg.Source.Tables,
			Heartbeat:   cfg.Source.Heartbeat,
			SpillDir:    spill,
			Logger:      log,
		}), nil
	case "mysql":
		if len(cfg.Source.Tables) > 0 {
			return nil, usage(fmt.Errorf("source.tables: MySQL and MariaDB sources capture the DSN's whole database; fix: remove source.tables, or give each database its own agent"))
		}
		return mycapture.NewSource(mycapture.Config{
			DSN:       cfg.Source.DSN,
			ID:        cfg.Source.ID,
			ServerID:  cfg.Source.ServerID,
			Heartbeat: cfg.Source.Heartbeat,
			StateDir:  cfg.Spool.Dir,
			SpillDir:  spill,
			Logger:    log,
		}), nil
	}
	return nil, usage(fmt.Errorf("source.dsn: %s sources are not supported yet (PostgreSQL, MySQL and MariaDB are); see the README's known limits", dsnScheme(cfg.Source.DSN)))
}

// targetFor opens the restore target a DSN names.
func targetFor(ctx context.Context, dsn string, log *slog.Logger) (pitr.Target, error) {
	switch dsnScheme(dsn) {
	case "postgres", "postgresql":
		return pgtarget.Open(ctx, pgtarget.Config{DSN: dsn, Logger: log})
	case "mysql":
		return mytarget.Open(ctx, mytarget.Config{DSN: dsn, Logger: log})
	}
	return nil, usage(fmt.Errorf("--target %s: restoring into %s is not supported yet (PostgreSQL, MySQL and MariaDB are)", config.RedactURL(dsn), dsnScheme(dsn)))
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

// slotName is what chain markers record as the stream's anchor: the
// PostgreSQL slot's name; MySQL sources have none (their position is saved
// in the spool).
func slotName(cfg *config.Config) string {
	if dsnScheme(cfg.Source.DSN) == "mysql" {
		return ""
	}
	return cfg.Source.Slot
}
