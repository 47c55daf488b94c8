package main

import (
	"context"
	"fmt"
	"net"
	"runtime/debug"
	"sync"

	"github.com/spf13/cobra"

	"github.com/rxvault/rxvault/agent"
	"github.com/rxvault/rxvault/internal/store"
	"github.com/rxvault/rxvault/shipper"
)

func newRunCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Run the agent: capture the source's changes and ship them to the stores",
		Long: `Run the agent until interrupted (SIGINT or SIGTERM). It captures every committed
transaction of source.dsn, cuts segments every segment.interval (or at
segment.max_bytes), seals them into spool.dir, uploads them to every store in
archive.stores with their retention, and acknowledges the source only once a
segment is in every store. It takes a base backup when a chain starts and every
backup.interval. Disconnects are retried; a lost replication slot starts a new
chain (a gap, logged as an error). A store that does not answer, at start or
later, is reported down and waited for; configuration errors (a bad URL,
credentials, a missing bucket or Object Lock) stop the agent at once.

On SIGTERM it ships what is open (up to 30s) and exits 0.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tuneGC(g.getenv)
			s, err := g.setupSource(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			cfg, recips, log, src := s.cfg, s.recips, s.log, s.src
			ctx := cmd.Context()
			stats := make([]*shipper.StoreStats, len(cfg.Archive.Stores))
			stores := make([]store.Store, len(cfg.Archive.Stores))
			for i, u := range cfg.Archive.Stores {
				stats[i] = &shipper.StoreStats{}
				if stores[i], err = g.openAgentStore(ctx, &cfg, u, log, stats[i]); err != nil {
					return err
				}
			}
			mon := newMonitor(&cfg, log)
			ln, err := net.Listen("tcp", cfg.Monitor.Listen)
			if err != nil {
				return fmt.Errorf("monitor.listen %s: %w: choose another address or stop what holds it", cfg.Monitor.Listen, err)
			}
			sc := shipperConfig(&cfg, stores, recips, log)
			sc.Stats = stats
			a := agent.New(agent.Config{
				Source:         src,
				Shipper:        sc,
				SpoolRoot:      cfg.Spool.Dir,
				BackupInterval: cfg.Backup.Interval,
				Slot:           s.anchor,
				VerifyInterval: cfg.Monitor.VerifyInterval,
				Report:         mon.Update,
				Logger:         log,
			})
			log.Info("rxvault agent starting", "version", version, "stores", len(stores), "interval", cfg.Segment.Interval, "monitor", ln.Addr().String())
			mctx, stopMon := context.WithCancel(ctx)
			var wg sync.WaitGroup
			var serveErr error
			wg.Go(func() { serveErr = mon.ServeListener(mctx, ln) })
			wg.Go(func() { _ = mon.Run(mctx) })
			err = a.Run(ctx)
			stopMon()
			wg.Wait()
			if err != nil {
				return fmt.Errorf("agent: %w", err)
			}
			if serveErr != nil {
				return serveErr
			}
			log.Info("rxvault agent stopped")
			return nil
		},
	}
}

// Garbage collector settings for the agent, unless GOGC or GOMEMLIMIT set
// them. The agent's live heap is small and bounded (large transactions
// spill to disk), and with Go's default GOGC=100 collecting took a third
// of the binlog reader's CPU: at 400 a backlog drains about a third
// faster (BENCHMARKS.md). The soft limit keeps the heap's peak under the
// 256 MB memory goal even so.
const (
	agentGCPercent   = 400
	agentMemoryLimit = 192 << 20
)

// tuneGC applies the agent's garbage collector settings where the
// environment does not set its own.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(agentGCPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(agentMemoryLimit)
	}
}
