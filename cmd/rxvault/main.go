// Command rxvault is the log-shipping backup and point-in-time-recovery
// agent and CLI. This package only wires commands to the library packages;
// it is the one place that reads the environment and exits.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand(newGlobals()).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "rxvault: "+oneLine(err.Error()))
	}
	os.Exit(exitCode(err))
}
