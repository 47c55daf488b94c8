package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rxvault/rxvault/agent"
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
chain (a gap, logged as an error).

On SIGTERM it ships what is open (up to 30s) and exits 0.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig(cmd)
			if err != nil {
				return usage(err)
			}
			recips, err := cfg.Recipients()
			if err != nil {
				return usage(err)
			}
			log := g.logger(cfg.Log)
			spill, err := spillDir(&cfg)
			if err != nil {
				return err
			}
			src, err := sourceFor(&cfg, spill, log)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			stores, err := g.openStores(ctx, &cfg, log)
			if err != nil {
				return err
			}
			a := agent.New(agent.Config{
				Source:         src,
				Shipper:        shipperConfig(&cfg, stores, recips, log),
				SpoolRoot:      cfg.Spool.Dir,
				BackupInterval: cfg.Backup.Interval,
				Slot:           cfg.Source.Slot,
				Logger:         log,
			})
			log.Info("rxvault agent starting", "version", version, "stores", len(stores), "interval", cfg.Segment.Interval)
			if err := a.Run(ctx); err != nil {
				return fmt.Errorf("agent: %w", err)
			}
			log.Info("rxvault agent stopped")
			return nil
		},
	}
}
