// Command demo shows rxvault's main job end to end with nothing to set up:
// it starts a private PostgreSQL, protects a pharmacy database with the
// rxvault agent shipping to a local file store, runs a dispensing workload
// for about 30 seconds, restores the database as it was at a moment in the
// middle of the run into a fresh database, and shows that every table and
// sequence equals the source at that moment. `make demo` runs it.
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

	"github.com/jackc/pgx/v5"

	"github.com/rxvault/rxvault/integration/workload"
	"github.com/rxvault/rxvault/internal/keys"
	"github.com/rxvault/rxvault/internal/testenv"
)

func main() {
	bin := flag.String("rxvault", "bin/rxvault", "the rxvault binary")
	out := flag.String("out", "demo-out", "directory for the demo's config, keys, archive and logs (kept afterwards)")
	seconds := flag.Int("seconds", 30, "how long the workload runs")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *bin, *out, time.Duration(*seconds)*time.Second)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo: "+err.Error())
		os.Exit(1)
	}
}

func say(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

func run(ctx context.Context, bin, out string, length time.Duration) error {
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
	pgDir, err := os.MkdirTemp("", "rxvdemo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(pgDir)

	say("starting a private PostgreSQL 15 (wal_level=logical)")
	pg, err := testenv.LaunchPostgres(pgDir)
	if err != nil {
		return fmt.Errorf("start PostgreSQL: %w (make deps installs it)", err)
	}
	defer func() {
		if err := pg.Shutdown(); err != nil {
			fmt.Fprintln(os.Stderr, "demo: stop PostgreSQL:", err)
		}
	}()
	dsn, err := pg.CreateDB(ctx, "pharmacy")
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if err := workload.Setup(ctx, conn); err != nil {
		return err
	}
	w := workload.NewRunner(conn, uint64(time.Now().UnixNano()))
	if err := w.RunFor(ctx, 500*time.Millisecond); err != nil {
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

	if err := w.RunFor(ctx, length/2); err != nil {
		return err
	}
	if err := w.AddColumn(ctx); err != nil {
		return err
	}
	// A quiet moment: the heartbeat records the sequences, then we note
	// the time and what the database holds at it.
	time.Sleep(2500 * time.Millisecond)
	mid := time.Now().UTC()
	want, err := workload.Snapshot(ctx, conn)
	if err != nil {
		return err
	}
	say("mid-run point T = %s (%d transactions so far)", mid.Format(time.RFC3339Nano), w.Committed)
	if err := w.CreateTable(ctx); err != nil {
		return err
	}
	if err := w.RunFor(ctx, length/2); err != nil {
		return err
	}
	say("workload done: %d transactions committed; letting the last segments ship", w.Committed)
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

	target, err := pg.CreateDB(ctx, "pharmacy_at_T")
	if err != nil {
		return err
	}
	say("rxvault restore --time %s --target .../pharmacy_at_T --identity %s", mid.Format(time.RFC3339Nano), identity)
	res, err := rx("restore", "--time", mid.Format(time.RFC3339Nano), "--target", target, "--identity", identity)
	fmt.Print(indent(res))
	if err != nil {
		return fmt.Errorf("restore failed: %w", err)
	}
	tconn, err := pgx.Connect(ctx, target)
	if err != nil {
		return err
	}
	defer tconn.Close(context.Background())
	got, err := workload.Snapshot(ctx, tconn)
	if err != nil {
		return err
	}
	say("comparing the restored database with the source as it was at T")
	for _, name := range sortedNames(want.Tables) {
		fmt.Printf("    %-28s %s  %s\n", name, mark(want.Tables[name] == got.Tables[name]), rowsOf(want.Tables[name]))
	}
	for _, name := range sortedNames(want.Sequences) {
		fmt.Printf("    %-28s %s  %s\n", name, mark(want.Sequences[name] == got.Sequences[name]), want.Sequences[name])
	}
	if diff := want.Diff(got); len(diff) > 0 {
		return errors.New("the restored database differs from the source at T:\n  " + strings.Join(diff, "\n  "))
	}
	say("the restored database equals the source at T, table by table and sequence by sequence")
	fmt.Printf(`
What to try next (the private PostgreSQL is gone; the archive, keys and config stay in %[1]s):
  %[2]s --config %[1]s/rxvault.yaml list                      # backups, windows, gaps
  %[2]s --config %[1]s/rxvault.yaml verify                    # digests and chains, no key needed
  %[2]s --config %[1]s/rxvault.yaml verify --identity %[1]s/keys/identity.key   # and decrypt everything
  %[2]s --config %[1]s/rxvault.yaml restore --latest --dry-run                 # print a plan
  %[2]s init                                                   # your own config and keys
Then point source.dsn at your database and archive.stores at S3 with Object Lock (see README.md).
`, out, bin)
	return nil
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
