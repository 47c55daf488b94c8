package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rxvault/rxvault/engines"
	"github.com/rxvault/rxvault/internal/config"
)

func newConfigCommand(g *globals) *cobra.Command {
	cmd := groupCommand("config", "Inspect the configuration")
	cmd.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Validate the configuration and print the effective values (secrets masked)",
		Long: `Load the configuration as every command does (file, then RXVAULT_<SECTION>_<KEY>
environment variables, then --set flags), validate it, and print each key's
effective value with passwords masked. Exit status 2 names the first bad key.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig(cmd)
			if err != nil {
				return usage(err)
			}
			if len(cfg.Keys.Recipients) > 0 {
				if _, err := cfg.Recipients(); err != nil {
					return usage(err)
				}
			}
			if cfg.Source.DSN != "" {
				// The engine's own keys, as run checks them.
				if _, err := engines.CheckSource(&cfg); err != nil {
					return usage(err)
				}
			}
			for _, kv := range config.Effective(&cfg) {
				fmt.Fprintf(g.stdout, "%s = %s\n", kv[0], kv[1])
			}
			if cfg.Source.DSN == "" || len(cfg.Keys.Recipients) == 0 {
				var missing []string
				if cfg.Source.DSN == "" {
					missing = append(missing, "source.dsn")
				}
				if len(cfg.Keys.Recipients) == 0 {
					missing = append(missing, "keys.recipients")
				}
				fmt.Fprintf(g.stdout, "note: %s not set; the agent needs them\n", strings.Join(missing, " and "))
			}
			return nil
		},
	})
	return cmd
}
