package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rxvault/rxvault/agent"
	"github.com/rxvault/rxvault/segment"
)

type backupOptions struct {
	json bool
}

func newBackupCommand(g *globals) *cobra.Command {
	var opts backupOptions
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Take a base backup now",
		Long: `Take a base backup of source.dsn now, joined exactly to the change stream
(PostgreSQL: a temporary logical slot exports the snapshot pg_dump reads), and
write it, encrypted, in parts to every store, the manifest last. It can run
while the agent runs. Prints the backup's id, position and time.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := g.setupSource(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			ctx := cmd.Context()
			stores, err := g.openStores(ctx, &s.cfg, s.log)
			if err != nil {
				return err
			}
			m, err := agent.TakeBackup(ctx, s.src, shipperConfig(&s.cfg, stores, s.recips, s.log), s.cfg.Spool.Dir, segment.ChainID{}, nil, s.log)
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			if opts.json {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(m)
			}
			fmt.Fprintf(g.stdout, "base backup %s stored: position %s%s, source time %s, %d parts, %d bytes dumped, %d stored\n",
				m.ID, m.Pos.Native, gtidNote(m.GTID), m.Time.Format("2006-01-02T15:04:05.999999Z07:00"), m.Parts, m.Bytes, m.Stored)
			return nil
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the manifest as JSON")
	return cmd
}
