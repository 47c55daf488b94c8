package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/internal/config"
	"github.com/rxvault/rxvault/internal/keys"
	"github.com/rxvault/rxvault/internal/monitor"
	"github.com/rxvault/rxvault/internal/store"
	"github.com/rxvault/rxvault/shipper"
)

// sourceSetup is what the commands that read the source share.
type sourceSetup struct {
	cfg    config.Config
	recips []*keys.Recipient
	log    *slog.Logger
	src    capture.Source
	anchor string // what chain markers record as the stream's anchor
}

// setupSource loads the configuration and prepares the capture source.
func (g *globals) setupSource(cmd *cobra.Command) (*sourceSetup, error) {
	cfg, err := g.loadConfig(cmd)
	if err != nil {
		return nil, usage(err)
	}
	recips, err := cfg.Recipients()
	if err != nil {
		return nil, usage(err)
	}
	log := g.logger(cfg.Log)
	spill, err := spillDir(&cfg)
	if err != nil {
		return nil, err
	}
	src, anchor, err := g.sourceFor(&cfg, spill, log)
	if err != nil {
		return nil, err
	}
	return &sourceSetup{cfg: cfg, recips: recips, log: log, src: src, anchor: anchor}, nil
}

// close releases what the source holds.
func (s *sourceSetup) close() {
	if c, ok := s.src.(io.Closer); ok {
		c.Close()
	}
}

// getenv looks a variable up in the globals' environment.
func (g *globals) getenv(key string) string {
	for _, kv := range g.env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// logger builds the process logger from the configuration.
func (g *globals) logger(cfg config.Log) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(g.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(g.stderr, opts))
}

// openStore opens one store URL with the configuration's retention and the
// environment's credentials.
func (g *globals) openStore(ctx context.Context, cfg *config.Config, rawURL string, log *slog.Logger) (store.Store, error) {
	return store.Open(ctx, rawURL, g.storeOptions(cfg, log, nil))
}

// openAgentStore opens one store for the agent, counting the retry layer's
// repeated attempts in stats. A store that does not answer is not an error
// (the agent rides out the outage, as it does one that begins later): it
// is opened when it answers, and stats reports it down meanwhile.
// Configuration errors still fail here.
func (g *globals) openAgentStore(ctx context.Context, cfg *config.Config, rawURL string, log *slog.Logger, stats *shipper.StoreStats) (store.Store, error) {
	s, down, err := store.OpenLazy(ctx, rawURL, g.storeOptions(cfg, log, stats.Retried))
	if down != nil {
		stats.Unreachable(down, time.Now())
	}
	return s, err
}

// storeOptions are the store options of the configuration, with a hook
// counting the retry layer's repeated attempts.
func (g *globals) storeOptions(cfg *config.Config, log *slog.Logger, onRetry func(string)) store.Options {
	return store.Options{
		Mode:        store.LockMode(cfg.Archive.LockMode),
		Retention:   cfg.Archive.Retention,
		Credentials: store.CredentialsFromEnv(g.getenv),
		Retry:       store.RetryPolicy{OnRetry: onRetry},
		Logger:      log,
	}
}

// newMonitor builds the monitoring endpoint from the configuration.
func newMonitor(cfg *config.Config, log *slog.Logger) *monitor.Monitor {
	due := time.Duration(0)
	if cfg.Backup.Interval > 0 {
		due = cfg.Backup.Interval + cfg.Monitor.BackupGrace
	}
	return monitor.New(monitor.Config{
		Listen: cfg.Monitor.Listen, TLSCert: cfg.Monitor.TLSCert, TLSKey: cfg.Monitor.TLSKey, Token: cfg.Monitor.Token,
		RPO: cfg.Monitor.RPO, BackupDue: due, StoreDownAfter: cfg.Monitor.StoreDownAfter,
		Webhook: monitor.Webhook{URL: cfg.Monitor.WebhookURL, Header: cfg.Monitor.WebhookHeader, Secret: cfg.Monitor.WebhookSecret},
		Version: version, Logger: log,
	})
}

// openStores opens every configured store.
func (g *globals) openStores(ctx context.Context, cfg *config.Config, log *slog.Logger) ([]store.Store, error) {
	var out []store.Store
	for _, u := range cfg.Archive.Stores {
		s, err := g.openStore(ctx, cfg, u, log)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// readStore opens the store a read-only command reads: --store if given,
// else the first configured one.
func (g *globals) readStore(ctx context.Context, cfg *config.Config, flag string, log *slog.Logger) (store.Store, error) {
	if flag == "" {
		flag = cfg.Archive.Stores[0]
	}
	if err := store.CheckURL(flag, store.Options{Mode: store.LockNone}); err != nil {
		return nil, usage(err)
	}
	return g.openStore(ctx, cfg, flag, log)
}

// shipperConfig is the shipping half of the configuration.
func shipperConfig(cfg *config.Config, stores []store.Store, recips []*keys.Recipient, log *slog.Logger) shipper.Config {
	return shipper.Config{
		Stores:     stores,
		Recipients: recips,
		Interval:   cfg.Segment.Interval,
		MaxBytes:   int64(cfg.Segment.MaxBytes),
		Logger:     log,
	}
}

// loadIdentities reads the --identity files.
func loadIdentities(paths []string) ([]*keys.Identity, error) {
	if len(paths) == 0 {
		return nil, usage(fmt.Errorf("no --identity: pass the identity file (identity.key) whose recipient the archive was sealed to"))
	}
	ids, err := keys.LoadIdentityFiles(paths)
	if err != nil {
		return nil, usage(err)
	}
	return ids, nil
}

// isTerminal reports whether w is an interactive terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
