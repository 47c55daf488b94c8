package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/rxvault/rxvault/internal/keys"
)

func newKeysCommand(g *globals) *cobra.Command {
	cmd := groupCommand("keys", "Manage encryption keys")
	cmd.AddCommand(newKeysGenerateCommand(g))
	return cmd
}

type keysGenerateOptions struct {
	out string
}

func newKeysGenerateCommand(g *globals) *cobra.Command {
	var opts keysGenerateOptions
	cmd := &cobra.Command{
		Use:   "generate --out DIR",
		Short: "Generate a key pair: an identity (private) and a recipient (public)",
		Long: `Generate a key pair into DIR (created with mode 0700):

  identity.key   the identity, PRIVATE, mode 0600. It opens the archive: keep it
                 off the agent host (offline, or in a secret vault). Restores need it.
  recipient.txt  the recipient, one public line for keys.recipients in the config.

Existing files are never replaced. To rotate keys, generate a new pair and add
its recipient to keys.recipients; keep the old identity for older objects.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runKeysGenerate(g, opts)
		},
	}
	cmd.Flags().StringVar(&opts.out, "out", "", "directory to write identity.key and recipient.txt into (required)")
	return cmd
}

func runKeysGenerate(g *globals, opts keysGenerateOptions) error {
	if opts.out == "" {
		return usage(fmt.Errorf("keys generate needs --out DIR: the directory to write the key pair into"))
	}
	id, err := keys.WriteKeyPair(opts.out, g.now())
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, `key id %s
identity (PRIVATE, 0600): %s
recipient (public):       %s

Add the recipient to keys.recipients in the agent's configuration:
  %s

Move the identity off the agent host and keep a second copy safe: without it
nothing sealed to this key can ever be restored.
`, id.ID(), filepath.Join(opts.out, keys.IdentityFileName), filepath.Join(opts.out, keys.RecipientFileName), id.Recipient())
	return nil
}
