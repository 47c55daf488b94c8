package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/rxvault/rxvault/internal/config"
	"github.com/rxvault/rxvault/internal/fsutil"
	"github.com/rxvault/rxvault/internal/keys"
)

type initOptions struct {
	keysDir string
	store   string
	spool   string
}

func newInitCommand(g *globals) *cobra.Command {
	var opts initOptions
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a commented configuration file and a new key pair",
		Long: `Write a commented configuration file (--config, default ./rxvault.yaml, mode
0600) listing every key with its default, and a new key pair in --keys-dir whose
recipient the configuration already uses. Nothing existing is replaced.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInit(g, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.keysDir, "keys-dir", "rxvault-keys", "directory for the new key pair")
	f.StringVar(&opts.store, "store", "", "first store URL (default file:///var/lib/rxvault/archive)")
	f.StringVar(&opts.spool, "spool", "", "spool directory (default /var/lib/rxvault/spool)")
	return cmd
}

func runInit(g *globals, opts initOptions) error {
	path := g.configPath
	if _, err := os.Lstat(path); err == nil {
		return usage(fmt.Errorf("%s already exists: move it away or pass --config with a new path", path))
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("check %s: %w", path, err)
	}
	// The written file must load: refuse a bad --store or --spool before
	// anything is written.
	if _, err := config.Load(config.Sources{Set: []string{
		"archive.stores=" + firstNonEmpty(opts.store, config.Default().Archive.Stores[0]),
		"spool.dir=" + firstNonEmpty(opts.spool, config.Default().Spool.Dir),
	}}); err != nil {
		return usage(err)
	}
	id, err := keys.WriteKeyPair(opts.keysDir, g.now())
	if err != nil {
		return err
	}
	text, err := config.Template(config.TemplateData{Recipient: id.Recipient().String(), Store: opts.store, SpoolDir: opts.spool})
	if err != nil {
		return err
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create config dir: %w", err)
		}
	}
	if err := fsutil.CreateExclusive(path, []byte(text), 0o600); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	fmt.Fprintf(g.stdout, `wrote %s (every key, commented)
wrote key pair %s: identity %s (PRIVATE), recipient %s

Next:
  1. move %s off this host (restores need it; the agent does not)
  2. set source.dsn and archive.stores in %s
`, path, id.ID(), filepath.Join(opts.keysDir, keys.IdentityFileName), filepath.Join(opts.keysDir, keys.RecipientFileName),
		filepath.Join(opts.keysDir, keys.IdentityFileName), path)
	return nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
