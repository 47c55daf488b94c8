package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/rxvault/rxvault/segment"
)

func newVersionCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the Go toolchain and the formats this build reads and writes",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(g.stdout, "rxvault %s (%s, %s/%s; segment format v%d, reads v%d..v%d)\n",
				version, runtime.Version(), runtime.GOOS, runtime.GOARCH, segment.Version, segment.MinVersion, segment.MaxVersion)
			return err
		},
	}
}
