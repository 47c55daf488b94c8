package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/rxvault/rxvault/internal/config"
)

// globals holds what every command shares: the configuration sources, the
// process's streams and environment, and the clock.
type globals struct {
	configPath string
	set        []string
	stdout     io.Writer
	stderr     io.Writer
	env        []string
	now        func() time.Time
}

func newGlobals() *globals {
	return &globals{stdout: os.Stdout, stderr: os.Stderr, env: os.Environ(), now: time.Now}
}

func newRootCommand(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "rxvault",
		Short: "Continuous encrypted log shipping and point-in-time recovery for pharmacy databases",
		Long: `rxvault tails a database's change stream (PostgreSQL WAL, MySQL/MariaDB binlog)
into compressed, encrypted, hash-chained segments and ships them to write-once
storage, so that any moment can be restored exactly.

Configuration comes from --config (default ./rxvault.yaml), then RXVAULT_<SECTION>_<KEY>
environment variables, then --set section.key=value flags.

Exit status: 0 success; 1 the operation failed or found an integrity problem;
2 bad usage or configuration (nothing was done).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          unknownSubcommand,
		RunE:          func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usage(err) })
	pf := root.PersistentFlags()
	pf.StringVar(&g.configPath, "config", config.DefaultPath, "configuration file")
	pf.StringArrayVar(&g.set, "set", nil, "override a configuration key: --set section.key=value (repeatable)")
	root.AddCommand(
		newInitCommand(g),
		newKeysCommand(g),
		newRunCommand(g),
		newBackupCommand(g),
		newListCommand(g),
		newVerifyCommand(g),
		newRestoreCommand(g),
		newStatusCommand(g),
		newVersionCommand(g),
		newConfigCommand(g),
	)
	return root
}

// loadConfig reads the configuration for cmd.
func (g *globals) loadConfig(cmd *cobra.Command) (config.Config, error) {
	return config.Load(config.Sources{
		Path:     g.configPath,
		Explicit: cmd.Flags().Changed("config"),
		Env:      g.env,
		Set:      g.set,
	})
}

// groupCommand returns a command that only groups subcommands: without
// one it prints its help; with an unknown one it is a usage error.
func groupCommand(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  unknownSubcommand,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
}

func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usage(fmt.Errorf("unknown command %q: see %s --help", args[0], cmd.CommandPath()))
	}
	return nil
}

// noArgs refuses positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usage(fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), args))
	}
	return nil
}
