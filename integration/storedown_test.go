package integration

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rxvault/rxvault/internal/monitor"
	"github.com/rxvault/rxvault/internal/testenv"
)

// alive reports whether the deployment's agent process is still running.
func (d *deployment) alive() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.agent == nil {
		return false
	}
	select {
	case err := <-d.waitc:
		d.waitc <- err // leave it for stop or kill
		return false
	default:
		return true
	}
}

// s3Deployment is a deployment whose one store is a bucket with Object
// Lock on a private MinIO.
func s3Deployment(t *testing.T, dsn string, settings ...string) (*deployment, *testenv.MinIO) {
	t.Helper()
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	m.MakeBucket(t, "archive", true)
	q := url.Values{"endpoint": {m.Endpoint}, "tls": {"false"}}
	d := newDeployment(t, dsn, []string{"s3://archive/rx?" + q.Encode()},
		[]string{"AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey}, settings...)
	return d, m
}

// storeDownWhileRunning waits (up to timeout) for the agent to report its
// one store down, with /healthz failing and the store_down alert logged,
// while the process keeps running.
func storeDownWhileRunning(t *testing.T, d *deployment, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if !d.alive() {
			t.Fatalf("the agent exited while the store was unreachable:\n%s", lastLines(d.agentLog(), 5))
		}
		s, err := monitor.Client{Listen: d.monitor}.Status(t.Context())
		if err == nil && len(s.Stores) == 1 && !s.Stores[0].Up && !s.Healthy &&
			strings.Contains(s.Reason, "store") && strings.Contains(d.agentLog(), "ALERT store_down") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("store not reported down within %s (status %+v, err %v)", timeout, s, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestStartWithStoreDown restarts the agent while MinIO is down, after a
// run that shipped: the agent must keep running, report the store down,
// capture into the spool from the slot, and once MinIO is back ship it
// all on the same chain (no gap, no new base backup).
func TestStartWithStoreDown(t *testing.T) {
	src := newSource(t, 31)
	d, m := s3Deployment(t, src.dsn, "monitor.store_down_after=2s")
	d.start()
	d.waitLog("base backup stored", 60*time.Second)
	if err := src.w.RunFor(t.Context(), 2*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	d.stop()

	m.Stop(t)
	d.start()
	stopLoad := src.load(t)
	storeDownWhileRunning(t, d, 30*time.Second)
	held := src.confirmedFlush(t)
	deadline := time.Now().Add(90 * time.Second)
	var spooled []string
	for len(spooled) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Second)
		spooled, _ = filepath.Glob(filepath.Join(d.dir, "spool", "*", "ready", "*"))
	}
	if len(spooled) == 0 {
		t.Errorf("nothing captured into the spool while the store was down")
	}
	if !d.alive() {
		t.Fatalf("the agent exited while the store was down:\n%s", lastLines(d.agentLog(), 5))
	}
	if got := src.confirmedFlush(t); got != held {
		t.Errorf("the slot moved from %s to %s while the store was down", held, got)
	}
	if !strings.Contains(d.agentLog(), "continuing the chain from where the spool says it stands") {
		t.Error("the agent did not say it continues the chain from the spool")
	}
	m.Start(t)
	d.waitStatus(t, "the store up and the spool empty", 90*time.Second, func(s *monitor.Snapshot) bool {
		return len(s.Stores) == 1 && s.Stores[0].Up && s.Spool.Segments == 0 && s.Healthy
	})
	if err := stopLoad(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	want := snapshot(t, src.dsn)
	time.Sleep(2 * time.Second)
	d.stop()
	if n := strings.Count(d.agentLog(), "base backup stored"); n != 1 {
		t.Errorf("%d base backups stored, want 1: the outage must not start a backup", n)
	}
	if strings.Contains(d.agentLog(), "new chain") && strings.Count(d.agentLog(), "new chain") != 1 {
		t.Errorf("a new chain was started after the outage")
	}
	if code, out, errOut := d.cmd("list"); code != 0 || strings.Contains(out, "GAP") {
		t.Errorf("list after a start with the store down: exit %d\n%s%s", code, out, errOut)
	}
	compare(t, "restore after a start with the store down", want, restoreLatest(t, d, src.pg, "restored", ""))
}

// TestFirstRunWithStoreDown starts the agent for the first time while
// MinIO is down: it cannot know the archive, so it waits, reporting the
// store down, and starts the chain once MinIO answers. Rows written
// meanwhile are restorable.
func TestFirstRunWithStoreDown(t *testing.T) {
	src := newSource(t, 32)
	d, m := s3Deployment(t, src.dsn, "monitor.store_down_after=2s")
	m.Stop(t)
	d.start()
	if err := src.w.RunFor(t.Context(), 2*time.Second); err != nil {
		t.Fatal(err)
	}
	storeDownWhileRunning(t, d, 30*time.Second)
	// The store's own retries (about 30 s, jittered) run out first; only
	// then does capture wait. Wait for that, then through the next
	// session's retries (5 s, then at most about 35 s), whose wait must
	// not be logged again.
	d.waitLog("capture waits for the store", 90*time.Second)
	time.Sleep(40 * time.Second)
	if !d.alive() {
		t.Fatalf("the agent exited while the store was down:\n%s", lastLines(d.agentLog(), 5))
	}
	if strings.Contains(d.agentLog(), "base backup stored") {
		t.Fatal("a base backup was stored while the store was down")
	}
	if n := strings.Count(d.agentLog(), "capture waits for the store"); n != 1 {
		t.Errorf("the wait for the store logged %d times, want once", n)
	}
	m.Start(t)
	d.waitLog("base backup stored", 120*time.Second)
	if err := src.w.RunFor(t.Context(), 2*time.Second); err != nil {
		t.Fatal(err)
	}
	d.waitStatus(t, "the store up", 30*time.Second, func(s *monitor.Snapshot) bool {
		return len(s.Stores) == 1 && s.Stores[0].Up && s.Healthy
	})
	time.Sleep(1500 * time.Millisecond)
	want := snapshot(t, src.dsn)
	time.Sleep(2 * time.Second)
	d.stop()
	if code, out, errOut := d.cmd("list"); code != 0 || strings.Contains(out, "GAP") {
		t.Errorf("list after a first run with the store down: exit %d\n%s%s", code, out, errOut)
	}
	compare(t, "restore after a first run with the store down", want, restoreLatest(t, d, src.pg, "restored", ""))
}

// TestVerifyDuringStoreOutage stops MinIO while the agent reads back what
// it shipped every second: an unreachable store is store_down, never a
// read-back problem, and reading back resumes once MinIO is back.
func TestVerifyDuringStoreOutage(t *testing.T) {
	src := newSource(t, 33)
	d, m := s3Deployment(t, src.dsn, "monitor.verify_interval=1s", "monitor.store_down_after=2s")
	d.start()
	d.waitLog("base backup stored", 60*time.Second)
	stopLoad := src.load(t)
	d.waitStatus(t, "a read-back pass", 20*time.Second, func(s *monitor.Snapshot) bool { return !s.LastVerify.IsZero() })
	m.Stop(t)
	storeDownWhileRunning(t, d, 30*time.Second)
	time.Sleep(40 * time.Second) // many read-back passes, past the store's retries
	m.Start(t)
	before := time.Now()
	d.waitStatus(t, "a clean read-back pass after the outage", 90*time.Second, func(s *monitor.Snapshot) bool {
		return s.LastVerify.After(before) && s.Spool.Segments == 0
	})
	if err := stopLoad(); err != nil {
		t.Fatal(err)
	}
	s := d.status(t)
	if s.VerifyProblems != 0 {
		t.Errorf("a store outage counted %d read-back problems (last: %s)", s.VerifyProblems, s.LastVerifyProblem)
	}
	if strings.Contains(d.agentLog(), "ALERT verify_problem") {
		t.Error("a store outage raised verify_problem")
	}
	if !strings.Contains(d.agentLog(), "ALERT store_down") {
		t.Error("the outage did not raise store_down")
	}
	d.stop()
}
