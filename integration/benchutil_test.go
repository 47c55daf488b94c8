package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rxvault/rxvault/internal/keys"
	"github.com/rxvault/rxvault/internal/testenv"
	"github.com/rxvault/rxvault/segment"
)

// Helpers of the benchmark report (bench_postgres_test.go).

// benchBinary builds cmd/rxvault without -race, as users run it.
func benchBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rxvault")
	out, err := exec.Command("go", "build", "-trimpath", "-o", bin, "../cmd/rxvault").CombinedOutput()
	if err != nil {
		t.Fatalf("build rxvault: %v\n%s", err, out)
	}
	return bin
}

// newBenchDeployment is newDeployment for benchmarks: the binary bin, one
// file store at storeDir, rxvault's defaults (segment.interval 5s,
// source.heartbeat 1s, monitoring on, read-back every 15m) unless settings
// say otherwise, no backup schedule, the monitor on a free loopback port,
// info logs.
func newBenchDeployment(t *testing.T, bin, dsn, storeDir string, settings ...string) *deployment {
	t.Helper()
	d := &deployment{t: t, bin: bin, dir: t.TempDir()}
	id, err := keys.WriteKeyPair(filepath.Join(d.dir, "keys"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	d.identity = filepath.Join(d.dir, "keys", keys.IdentityFileName)
	cfg := fmt.Sprintf(`source:
  dsn: %q
archive:
  stores: [%q]
  lock_mode: compliance
  retention: 1h
keys:
  recipients: [%q]
spool:
  dir: %q
backup:
  interval: 0s
monitor:
  listen: %q
log:
  level: info
`, dsn, "file://"+storeDir, id.Recipient().String(), filepath.Join(d.dir, "spool"), freeAddr(t))
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

// pid returns the running agent's process id.
func (d *deployment) pid() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.agent == nil {
		d.t.Fatal("agent not running")
	}
	return d.agent.Process.Pid
}

// benchDB is one database of the benchmark server, with a connection for
// queries.
type benchDB struct {
	pg   *testenv.Postgres
	name string
	dsn  string
	conn *pgx.Conn
	bin  string // PostgreSQL's bin directory
}

func openBenchDB(t *testing.T, pg *testenv.Postgres, name string) *benchDB {
	t.Helper()
	db := &benchDB{pg: pg, name: name, dsn: pg.DSN(name), bin: testenv.Need(t, testenv.ServerPostgres)}
	conn, err := pgx.Connect(context.Background(), db.dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.conn = conn
	t.Cleanup(func() { conn.Close(context.Background()) })
	return db
}

func (db *benchDB) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := db.conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// lsn returns the server's current WAL insert position.
func (db *benchDB) lsn(t *testing.T) uint64 {
	t.Helper()
	return db.lsnQuery(t, `SELECT pg_current_wal_lsn()::text`)
}

// confirmed returns a slot's confirmed_flush_lsn (0 if it has none).
func (db *benchDB) confirmed(t *testing.T, slot string) uint64 {
	t.Helper()
	return db.lsnQuery(t, `SELECT coalesce(confirmed_flush_lsn::text, '0/0') FROM pg_replication_slots WHERE slot_name = $1`, slot)
}

func (db *benchDB) lsnQuery(t *testing.T, q string, args ...any) uint64 {
	t.Helper()
	var s string
	if err := db.conn.QueryRow(context.Background(), q, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	p, err := segment.ParsePosition(segment.EnginePostgres, s)
	if err != nil {
		t.Fatal(err)
	}
	return p.Lo
}

// waitConfirmed waits until slot's confirmed_flush_lsn reaches lsn, polling
// every 10ms, and returns when it saw it there.
func (db *benchDB) waitConfirmed(t *testing.T, slot string, lsn uint64, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if db.confirmed(t, slot) >= lsn {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot %s did not reach %s within %s (at %s)", slot, fmtLSN(lsn), timeout, fmtLSN(db.confirmed(t, slot)))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tool runs one of PostgreSQL's programs against the server and returns its
// combined output.
func (db *benchDB) tool(ctx context.Context, name string, args ...string) (string, error) {
	return runTool(ctx, filepath.Join(db.bin, name), args...)
}

// pgbench runs pgbench on the database with args and returns its output.
func (db *benchDB) pgbench(t *testing.T, args ...string) string {
	t.Helper()
	args = append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(db.pg.Port), "-U", "postgres"}, args...)
	out, err := db.tool(context.Background(), "pgbench", append(args, db.name)...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var tpsRE = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// pgbenchTPS reads the TPS pgbench reported.
func pgbenchTPS(t *testing.T, out string) float64 {
	t.Helper()
	m := tpsRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no tps in pgbench output:\n%s", out)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func runTool(ctx context.Context, path string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		s := out.String()
		if len(s) > 2000 {
			s = "…" + s[len(s)-2000:]
		}
		return out.String(), fmt.Errorf("%s %s: %w\n%s", filepath.Base(path), strings.Join(args, " "), err, s)
	}
	return out.String(), nil
}

func fmtLSN(lsn uint64) string {
	return segment.Position{Lo: lsn}.Format(segment.EnginePostgres)
}

// procStatusKB reads a field in kB (VmHWM, VmRSS) of /proc/<pid>/status.
func procStatusKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read status: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// runPeak runs cmd to its end and returns its combined output and the
// highest VmHWM (KiB) of the process itself, polled from /proc every 20ms
// while it runs (a peak in its last 20ms can be missed). Not wait4's
// ru_maxrss: Go starts a child with vfork, and Linux counts the parent's
// resident set at that moment into the child's maxrss, so a child of a
// large test process would report the test's memory.
func runPeak(cmd *exec.Cmd) (out []byte, peak int64, err error) {
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		return nil, 0, err
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if v, err := procStatusKB(cmd.Process.Pid, "VmHWM"); err == nil && v > peak {
				peak = v
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	err = cmd.Wait()
	close(done)
	wg.Wait()
	return buf.Bytes(), peak, err
}

// procCPU returns the user plus system CPU time a process has used, from
// /proc/<pid>/stat (clock ticks of 10ms).
func procCPU(pid int) (time.Duration, error) {
	f, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	k, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return time.Duration(u+k) * 10 * time.Millisecond, nil
}

// treeCPU returns the CPU time used by process root and its descendants:
// the user and system time of the live ones plus what each has collected
// from its reaped children (a postmaster's exited backends). PostgreSQL's
// backends call setsid, so a process group would miss them.
func treeCPU(root int) (time.Duration, error) {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("read /proc: %w", err)
	}
	stats := map[int][]string{}
	children := map[int][]int{}
	for _, e := range dirs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := procStat(pid)
		if err != nil {
			continue // exited meanwhile
		}
		stats[pid] = f
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
	}
	if stats[root] == nil {
		return 0, fmt.Errorf("process %d not found", root)
	}
	var ticks int64
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = append(queue[1:], children[pid]...)
		for _, i := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime
			v, _ := strconv.ParseInt(stats[pid][i], 10, 64)
			ticks += v
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// procStat returns the fields of /proc/<pid>/stat after the command name:
// f[0] is field 3 (state).
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, fmt.Errorf("read stat: %w", err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 15 {
		return nil, fmt.Errorf("short /proc/%d/stat", pid)
	}
	return f, nil
}

// loadAvg returns the 1-minute load average.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(string(b))[0]
}

// selfCPU returns the CPU time this test process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// storePoller records when each segment object of a file store first
// appears in its directory listing. A file store links an object into
// place only once its data is fsynced, so appearing is being durably
// stored.
type storePoller struct {
	root  string
	every time.Duration

	mu      sync.Mutex
	seen    map[string]time.Time // store-relative object name -> first seen
	maxScan time.Duration        // the longest listing, for the error bound
	err     error

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startPoller lists root every interval until stop is called.
func startPoller(t *testing.T, root string, every time.Duration) *storePoller {
	ctx, cancel := context.WithCancel(context.Background())
	p := &storePoller{root: root, every: every, seen: map[string]time.Time{}, cancel: cancel}
	p.wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			p.scan()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	t.Cleanup(p.stop)
	return p
}

func (p *storePoller) scan() {
	start := time.Now()
	matches, err := filepath.Glob(filepath.Join(p.root, "*", "wal", "*", "*"+segment.NameExt))
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil && p.err == nil {
		p.err = err
	}
	for _, m := range matches {
		rel, err := filepath.Rel(p.root, m)
		if err != nil {
			continue
		}
		name := filepath.ToSlash(rel)
		if _, ok := p.seen[name]; !ok {
			p.seen[name] = now
		}
	}
	p.maxScan = max(p.maxScan, now.Sub(start))
}

// stop ends the polling and waits for it.
func (p *storePoller) stop() {
	p.cancel()
	p.wg.Wait()
}

// results returns what the poller saw; call after stop.
func (p *storePoller) results() (map[string]time.Time, time.Duration, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen, p.maxScan, p.err
}

// median returns the median of xs (the mean of the middle two of an even
// count).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// percentile returns the nearest-rank q-th percentile of sorted xs.
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// dirSize sums the sizes of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if info, err := e.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// appendBenchSection appends a report section to the file out: head (the
// title and the setup), the table of rows, then the notes.
func appendBenchSection(t *testing.T, out, head string, rows []benchRow, notes []string) {
	t.Helper()
	var b strings.Builder
	b.WriteString(head)
	b.WriteString("| measurement | rxvault | baseline | ratio | goal | met |\n|---|---:|---:|---:|:---:|:---:|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", r.name, r.ours, r.base, r.ratio, r.goal, r.met)
	}
	b.WriteString("\n")
	for _, n := range notes {
		b.WriteString(n + "\n\n")
	}
	t.Logf("report:\n%s", b.String())
	f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(b.String()); err != nil {
		t.Fatal(err)
	}
}

// benchParts returns which parts of a benchmark report to run: all of
// them, or the comma-separated subset in environment variable env (for
// development). Replay restores the RPO run's archive, so it needs rpo.
func benchParts(t *testing.T, env string, all ...string) map[string]bool {
	t.Helper()
	parts := map[string]bool{}
	for _, p := range all {
		parts[p] = true
	}
	if s := os.Getenv(env); s != "" {
		clear(parts)
		for p := range strings.SplitSeq(s, ",") {
			parts[strings.TrimSpace(p)] = true
		}
		if parts["replay"] && !parts["rpo"] {
			t.Fatalf("%s: replay needs rpo (it restores the RPO run's archive)", env)
		}
	}
	return parts
}
