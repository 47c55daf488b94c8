// Command demo shows rxvault's main job end to end with nothing to set up:
// it starts a private PostgreSQL (or, with -engine mariadb, a private
// MariaDB), protects a pharmacy database with the rxvault agent shipping to
// a local file store, runs a dispensing workload for about 30 seconds with
// an ALTER TABLE and a CREATE TABLE along the way, restores the database as
// it was at a moment in the middle of the run into a fresh database, and
// shows that every table equals the source at that moment. `make demo`
// (or `make demo ENGINE=mariadb`) runs it.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rxvault/rxvault/internal/keys"
)

// engine is one kind of source database the demo protects: a private
// server with the pharmacy workload running on it.
type engine interface {
	// name is the server's name in messages, such as "PostgreSQL".
	name() string
	// server describes the private server started.
	server() string
	// launch starts the private server in dir, an empty directory.
	launch(dir string) error
	// createSource creates database pharmacy with the workload's schema
	// and returns the DSN the agent reads.
	createSource(ctx context.Context) (string, error)
	// shutdown stops the server; it is safe after a failed launch.
	shutdown() error
	runFor(ctx context.Context, d time.Duration) error
	addColumn(ctx context.Context) error
	createTable(ctx context.Context) error
	// committed counts the workload's committed transactions.
	committed() int
	// quietPoint waits for the source to stand still and returns a time at
	// which it did, keeping what the database held then.
	quietPoint(ctx context.Context) (time.Time, error)
	// createTarget creates an empty database and returns its DSN for
	// restore --target.
	createTarget(ctx context.Context, name string) (string, error)
	// compare prints the database at target beside the source at the
	// quiet point, a line per table, and returns the differences.
	compare(ctx context.Context, target string) ([]string, error)
	// equalWhat says what compare compared, for the closing message.
	equalWhat() string
	// nextSteps returns the engine's lines of "what to try next", given
	// the output of the restore.
	nextSteps(out, bin, restored string) string
}

func main() {
	bin := flag.String("rxvault", "bin/rxvault", "the rxvault binary")
	out := flag.String("out", "demo-out", "directory for the demo's config, keys, archive and logs (kept afterwards)")
	seconds := flag.Int("seconds", 30, "how long the workload runs")
	engineName := flag.String("engine", "postgres", "the source database: postgres or mariadb")
	flag.Parse()
	var e engine
	switch *engineName {
	case "postgres", "postgresql":
		e = &postgres{}
	case "mariadb", "mysql":
		e = &mariadb{}
	default:
		fmt.Fprintf(os.Stderr, "demo: -engine %q: want postgres or mariadb\n", *engineName)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, e, *bin, *out, time.Duration(*seconds)*time.Second)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo: "+err.Error())
		os.Exit(1)
	}
}

func say(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

func run(ctx context.Context, e engine, bin, out string, length time.Duration) error {
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s not found: run make build first (make demo does)", bin)
	}
	bin, _ = filepath.Abs(bin)
	out, _ = filepath.Abs(out)
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o700); err != nil {
		return err
	}
	serverDir, err := os.MkdirTemp("", "rxvdemo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(serverDir)

	say("starting a private %s", e.server())
	defer func() {
		if err := e.shutdown(); err != nil {
			fmt.Fprintf(os.Stderr, "demo: stop %s: %v\n", e.name(), err)
		}
	}()
	if err := e.launch(serverDir); err != nil {
		return fmt.Errorf("start %s: %w (make deps installs it)", e.name(), err)
	}
	dsn, err := e.createSource(ctx)
	if err != nil {
		return err
	}
	if err := e.runFor(ctx, 500*time.Millisecond); err != nil {
		return err
	}

	say("generating a key pair and a configuration in %s", out)
	id, err := keys.WriteKeyPair(filepath.Join(out, "keys"), time.Now())
	if err != nil {
		return err
	}
	identity := filepath.Join(out, "keys", keys.IdentityFileName)
	config := filepath.Join(out, "rxvault.yaml")
	cfg := fmt.Sprintf(`# written by the rxvault demo
source:
  dsn: %q
  heartbeat: 1s
archive:
  stores: ["file://%s"]
  lock_mode: compliance
  retention: 24h
keys:
  recipients: [%q]
segment:
  interval: 2s
spool:
  dir: %q
backup:
  interval: 0s
`, dsn, filepath.Join(out, "archive"), id.Recipient(), filepath.Join(out, "spool"))
	if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
		return err
	}
	rx := func(args ...string) (string, error) {
		c := exec.CommandContext(ctx, bin, append([]string{"--config", config}, args...)...)
		b, err := c.CombinedOutput()
		return string(b), err
	}

	say("starting the agent: rxvault run (log in %s)", filepath.Join(out, "agent.log"))
	logf, err := os.Create(filepath.Join(out, "agent.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	agent := exec.Command(bin, "--config", config, "run")
	agent.Stdout, agent.Stderr = logf, logf
	agent.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := agent.Start(); err != nil {
		return err
	}
	agentDone := make(chan error, 1)
	go func() { agentDone <- agent.Wait() }()
	defer func() {
		if agent.ProcessState == nil {
			_ = agent.Process.Kill()
		}
	}()
	if err := waitFor(ctx, filepath.Join(out, "agent.log"), "base backup stored", 2*time.Minute, agentDone); err != nil {
		return err
	}
	say("the first base backup is stored; running the pharmacy workload for %s", length)

	if err := e.runFor(ctx, length/2); err != nil {
		return err
	}
	if err := e.addColumn(ctx); err != nil {
		return err
	}
	mid, err := e.quietPoint(ctx)
	if err != nil {
		return err
	}
	say("mid-run point T = %s (%d transactions so far)", mid.Format(time.RFC3339Nano), e.committed())
	if err := e.createTable(ctx); err != nil {
		return err
	}
	if err := e.runFor(ctx, length/2); err != nil {
		return err
	}
	say("workload done: %d transactions committed; letting the last segments ship", e.committed())
	time.Sleep(5 * time.Second)
	if err := agent.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if err := <-agentDone; err != nil {
		return fmt.Errorf("agent: %w (see %s)", err, filepath.Join(out, "agent.log"))
	}

	say("rxvault list")
	listing, _ := rx("list")
	fmt.Print(indent(listing))

	target, err := e.createTarget(ctx, "pharmacy_at_T")
	if err != nil {
		return err
	}
	say("rxvault restore --time %s --target .../pharmacy_at_T --identity %s", mid.Format(time.RFC3339Nano), identity)
	res, err := rx("restore", "--time", mid.Format(time.RFC3339Nano), "--target", target, "--identity", identity)
	fmt.Print(indent(res))
	if err != nil {
		return fmt.Errorf("restore failed: %w", err)
	}
	say("comparing the restored database with the source as it was at T")
	diff, err := e.compare(ctx, target)
	if err != nil {
		return err
	}
	if len(diff) > 0 {
		return errors.New("the restored database differs from the source at T:\n  " + strings.Join(diff, "\n  "))
	}
	say("the restored database equals the source at T, %s", e.equalWhat())
	fmt.Printf(`
What to try next (the private %[3]s is gone; the archive, keys and config stay in %[1]s):
  %[2]s --config %[1]s/rxvault.yaml list                      # backups, windows, gaps
  %[2]s --config %[1]s/rxvault.yaml verify                    # digests and chains, no key needed
  %[2]s --config %[1]s/rxvault.yaml verify --identity %[1]s/keys/identity.key   # and decrypt everything
`, out, bin, e.name())
	fmt.Print(e.nextSteps(out, bin, res))
	return nil
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// waitFor waits until the file at path contains s, the process ends, or
// the timeout passes.
func waitFor(ctx context.Context, path, s string, timeout time.Duration, done <-chan error) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), s) {
			return nil
		}
		select {
		case err := <-done:
			return fmt.Errorf("the agent exited (%w); its log: %s", err, path)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("the agent did not report %q within %s; its log: %s", s, timeout, path)
}

// row prints one line of the comparison.
func row(name string, equal bool, detail string) {
	fmt.Printf("    %-28s %s  %s\n", name, mark(equal), detail)
}

func indent(s string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		b.WriteString("    " + sc.Text() + "\n")
	}
	return b.String()
}

func mark(ok bool) string {
	if ok {
		return "equal"
	}
	return "DIFFERENT"
}

func rowsOf(sum string) string {
	n, _, _ := strings.Cut(sum, ":")
	return n + " rows"
}

func sortedNames(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
