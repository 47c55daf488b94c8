package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rxvault/rxvault/integration/workload"
	"github.com/rxvault/rxvault/internal/keys"
)

// binOnce builds the rxvault binary once per test process.
var binOnce struct {
	sync.Once
	path string
	err  error
}

func rxvaultBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rxvault-bin-")
		if err != nil {
			binOnce.err = err
			return
		}
		binOnce.path = filepath.Join(dir, "rxvault")
		out, err := exec.Command("go", "build", "-race", "-o", binOnce.path, "../cmd/rxvault").CombinedOutput()
		if err != nil {
			binOnce.err = fmt.Errorf("build: %w\n%s", err, out)
		}
	})
	if binOnce.err != nil {
		t.Fatal(binOnce.err)
	}
	return binOnce.path
}

// deployment is one source database protected by rxvault: a config file,
// a key pair, stores and a spool, and the agent process when running.
type deployment struct {
	t        *testing.T
	bin      string
	dir      string
	config   string
	identity string
	monitor  string // the agent's monitor.listen
	env      []string

	mu    sync.Mutex
	agent *exec.Cmd
	logs  *bytes.Buffer
	waitc chan error
}

// newDeployment writes a configuration for source dsn with the given store
// URLs and extra --set style settings.
func newDeployment(t *testing.T, dsn string, stores []string, env []string, settings ...string) *deployment {
	t.Helper()
	d := &deployment{t: t, bin: rxvaultBinary(t), dir: t.TempDir(), env: env}
	id, err := keys.WriteKeyPair(filepath.Join(d.dir, "keys"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	d.identity = filepath.Join(d.dir, "keys", keys.IdentityFileName)
	d.monitor = freeAddr(t)
	cfg := fmt.Sprintf(`source:
  dsn: %q
  heartbeat: 500ms
archive:
  stores: [%s]
  lock_mode: compliance
  retention: 1h
keys:
  recipients: [%q]
segment:
  interval: 1s
spool:
  dir: %q
backup:
  interval: 0s
monitor:
  rpo: 30s
  listen: %q
  verify_interval: 2s
log:
  level: debug
`, dsn, quoteAll(stores), id.Recipient().String(), filepath.Join(d.dir, "spool"), d.monitor)
	for _, s := range settings {
		k, v, _ := strings.Cut(s, "=")
		d.env = append(d.env, "RXVAULT_"+strings.ToUpper(strings.ReplaceAll(k, ".", "_"))+"="+v)
	}
	d.config = filepath.Join(d.dir, "rxvault.yaml")
	if err := os.WriteFile(d.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.kill()
		if t.Failed() {
			t.Logf("agent log:\n%s", d.agentLog())
		}
	})
	return d
}

func quoteAll(ss []string) string {
	var q []string
	for _, s := range ss {
		q = append(q, fmt.Sprintf("%q", s))
	}
	return strings.Join(q, ", ")
}

// cmd runs one rxvault command to completion.
func (d *deployment) cmd(args ...string) (int, string, string) {
	d.t.Helper()
	c := exec.Command(d.bin, append([]string{"--config", d.config}, args...)...)
	c.Env = append(os.Environ(), d.env...)
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	err := c.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		d.t.Fatalf("run rxvault %v: %v", args, err)
	}
	return code, out.String(), errOut.String()
}

// start launches the agent (rxvault run).
func (d *deployment) start() {
	d.t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.agent != nil {
		d.t.Fatal("agent already running")
	}
	if d.logs == nil {
		d.logs = &bytes.Buffer{}
	}
	c := exec.Command(d.bin, "--config", d.config, "run")
	c.Env = append(os.Environ(), d.env...)
	c.Stdout, c.Stderr = syncWriter{&d.mu, d.logs}, syncWriter{&d.mu, d.logs}
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.agent = c
	d.waitc = make(chan error, 1)
	go func() { d.waitc <- c.Wait() }()
}

// stop sends SIGTERM and waits for a clean exit.
func (d *deployment) stop() {
	d.t.Helper()
	d.mu.Lock()
	c, waitc := d.agent, d.waitc
	d.agent = nil
	d.mu.Unlock()
	if c == nil {
		return
	}
	if err := c.Process.Signal(syscall.SIGTERM); err != nil {
		d.t.Fatal(err)
	}
	select {
	case err := <-waitc:
		if err != nil {
			d.t.Fatalf("agent exited with %v", err)
		}
	case <-time.After(90 * time.Second):
		_ = c.Process.Kill()
		d.t.Fatal("agent did not stop within 90s of SIGTERM")
	}
}

// kill kills the agent with SIGKILL, as a crash would.
func (d *deployment) kill() {
	d.mu.Lock()
	c, waitc := d.agent, d.waitc
	d.agent = nil
	d.mu.Unlock()
	if c == nil {
		return
	}
	_ = c.Process.Kill()
	if err := <-waitc; err == nil {
		d.t.Log("the agent had exited by itself before it was killed")
	}
}

func (d *deployment) agentLog() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.logs == nil {
		return ""
	}
	return d.logs.String()
}

// waitLog waits until the agent's log contains s.
func (d *deployment) waitLog(s string, timeout time.Duration) {
	d.t.Helper()
	d.waitLogCount(s, 1, timeout)
}

// waitLogCount waits until the agent's log contains s at least n times
// (the log spans every run of the deployment).
func (d *deployment) waitLogCount(s string, n int, timeout time.Duration) {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for strings.Count(d.agentLog(), s) < n {
		if time.Now().After(deadline) {
			d.t.Fatalf("agent log shows %q %d times, want %d", s, strings.Count(d.agentLog(), s), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freeAddr returns a free loopback address.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type syncWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// snapshot summarizes a database.
func snapshot(t *testing.T, dsn string) workload.State {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	s, err := workload.Snapshot(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// connectPG connects to dsn, closed when the test ends.
func connectPG(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	return conn
}
