package integration

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rxvault/rxvault/internal/monitor"
	"github.com/rxvault/rxvault/internal/testenv"
)

// status asks the deployment's agent for its status.
func (d *deployment) status(t *testing.T) *monitor.Snapshot {
	t.Helper()
	s, err := monitor.Client{Listen: d.monitor}.Status(context.Background())
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	return s
}

// healthz fetches /healthz.
func (d *deployment) healthz(t *testing.T) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + d.monitor + "/healthz")
	if err != nil {
		t.Fatalf("healthz: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// waitStatus polls the agent until cond holds or timeout passes.
func (d *deployment) waitStatus(t *testing.T, what string, timeout time.Duration, cond func(*monitor.Snapshot) bool) *monitor.Snapshot {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s, err := monitor.Client{Listen: d.monitor}.Status(context.Background())
		if err == nil && cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (last status %+v, err %v)", what, timeout, s, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// dbNow reads the database server's clock.
func dbNow(t *testing.T, dsn string) time.Time {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var now time.Time
	if err := conn.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	return now
}

// TestMonitorSteadyLoad: under a steady load the reported lag stays
// within the segment interval plus a few seconds (and the commit stamps'
// resolution), the source's log distance and retention are measured, and
// the reported recovery point agrees with the database's own clock and
// with a commit it made; the agent's read-back of a clean archive finds no
// problem, and /metrics parses.
func TestMonitorSteadyLoad(t *testing.T) {
	forEachEngine(t, 21, func(t *testing.T, h engineHarness) {
		d := newDeployment(t, h.dsn(), []string{"file://" + t.TempDir()}, nil)
		d.start()
		d.waitLog("base backup stored", 60*time.Second)
		stopLoad := startLoad(h, lightLoad)
		defer func() {
			if err := stopLoad(); err != nil {
				t.Error(err)
			}
		}()
		// segment.interval of the harness; a recovery point stamped to the
		// whole second trails by up to one more.
		const interval, slack = time.Second, 3 * time.Second
		res := h.commitResolution()
		bound := interval + slack + res
		d.waitStatus(t, "a first segment stored", bound, func(s *monitor.Snapshot) bool { return !s.RecoveryPoint.IsZero() })
		worst, worstBytes := time.Duration(0), int64(0)
		for range 30 {
			time.Sleep(500 * time.Millisecond)
			s := d.status(t)
			worst, worstBytes = max(worst, s.Lag), max(worstBytes, s.Source.LagBytes)
			if s.Lag > bound {
				t.Errorf("lag %s under steady load, want at most %s", s.Lag, bound)
			}
			if s.Source.LagBytes < 0 || s.Source.RetainedBytes <= 0 {
				t.Errorf("source lag %d bytes, retained %d: not measured", s.Source.LagBytes, s.Source.RetainedBytes)
			}
			if now := h.now(t); s.RecoveryPoint.After(now.Add(res)) || now.Sub(s.RecoveryPoint) > bound+time.Second {
				t.Errorf("recovery point %s disagrees with the database clock %s", s.RecoveryPoint, now)
			}
		}
		// A commit made now is durable, and reported, within the bound.
		committed := h.probeCommit(t)
		d.waitStatus(t, "the probe commit reported durable", bound+2*time.Second, func(s *monitor.Snapshot) bool {
			return !s.RecoveryPoint.Before(committed)
		})
		t.Logf("under load: worst lag %s, worst source lag %d bytes", worst, worstBytes)
		s := d.waitStatus(t, "a read-back verification pass", 10*time.Second, func(s *monitor.Snapshot) bool { return !s.LastVerify.IsZero() })
		if s.VerifyProblems != 0 {
			t.Errorf("read-back verification found %d problems in a clean archive: %s", s.VerifyProblems, s.LastVerifyProblem)
		}
		metricsParse(t, d)
	})
}

// TestMonitorReadBackFindsDamage damages a shipped segment in the file
// store before the agent reads it back: the problem is counted, reported
// and alerted.
func TestMonitorReadBackFindsDamage(t *testing.T) {
	src := newSource(t, 26)
	storeDir := t.TempDir()
	d := newDeployment(t, src.dsn, []string{"file://" + storeDir}, nil, "monitor.verify_interval=8s")
	d.start()
	d.waitLog("base backup stored", 60*time.Second)
	if err := src.w.RunFor(context.Background(), 2*time.Second); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(storeDir, "*", "wal", "*", "*.rxseg"))
	if len(segs) == 0 {
		t.Fatal("no segment shipped")
	}
	victim := segs[len(segs)-1]
	if err := os.Chmod(victim, 0o640); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(victim)
	data[len(data)/2] ^= 1
	if err := os.WriteFile(victim, data, 0o440); err != nil {
		t.Fatal(err)
	}
	s := d.waitStatus(t, "the damage found", 30*time.Second, func(s *monitor.Snapshot) bool { return s.VerifyProblems > 0 })
	if !strings.Contains(s.LastVerifyProblem, filepath.Base(victim)) {
		t.Errorf("problem %q does not name the damaged segment %s", s.LastVerifyProblem, filepath.Base(victim))
	}
	d.waitLog("ALERT verify_problem", 10*time.Second)
	d.stop()
}

// metricsParse fetches /metrics from the live agent: it must parse with
// the Prometheus text parser and every metric must have HELP and TYPE.
func metricsParse(t *testing.T, d *deployment) {
	t.Helper()
	resp, err := http.Get("http://" + d.monitor + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	for _, name := range []string{"rxvault_recovery_point_lag_seconds", "rxvault_rpo_seconds", "rxvault_rpo_breached",
		"rxvault_source_lag_bytes", "rxvault_source_retained_bytes", "rxvault_store_segments_shipped_total",
		"rxvault_store_bytes_shipped_total", "rxvault_store_upload_errors_total", "rxvault_spool_bytes",
		"rxvault_base_backup_age_seconds"} {
		if fams[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	for name, f := range fams {
		if f.GetHelp() == "" || f.Type == nil || !strings.Contains(string(body), "# TYPE "+name+" ") {
			t.Errorf("%s lacks HELP or TYPE", name)
		}
	}
	if got := fams["rxvault_source_lag_bytes"].Metric[0].Gauge.GetValue(); got < 0 {
		t.Errorf("rxvault_source_lag_bytes = %v: the slot lag is not measured", got)
	}
}

// TestMonitorIdle: after a light load, a database idle for two minutes
// is not lag: no breach, heartbeats keep the recovery point moving and the
// saved position following the source's log, /healthz answers 200 and
// status says WITHIN RPO; where the source retains its log for the agent
// (a PostgreSQL slot), what it retains does not grow without bound.
func TestMonitorIdle(t *testing.T) {
	forEachEngine(t, 22, func(t *testing.T, h engineHarness) {
		d := newDeployment(t, h.dsn(), []string{"file://" + t.TempDir()}, nil, "monitor.rpo=10s")
		d.start()
		d.waitLog("base backup stored", 60*time.Second)
		stopLoad := startLoad(h, lightLoad)
		time.Sleep(10 * time.Second)
		if err := stopLoad(); err != nil {
			t.Fatal(err)
		}

		const idle = 2 * time.Minute
		idleFrom := d.status(t).RecoveryPoint
		var lags []time.Duration
		var retained []int64
		start := time.Now()
		for time.Since(start) < idle {
			time.Sleep(2 * time.Second)
			s := d.status(t)
			lags = append(lags, s.Lag.Round(100*time.Millisecond))
			retained = append(retained, s.Source.RetainedBytes)
			if s.Breached || s.Lag > 5*time.Second {
				t.Errorf("idle database at %s: lag %s, breached %v", time.Since(start).Round(time.Second), s.Lag, s.Breached)
			}
		}
		s := d.status(t)
		if !s.RecoveryPoint.After(idleFrom.Add(idle - 10*time.Second)) {
			t.Errorf("recovery point went from %s to %s over %s idle: heartbeats do not advance it", idleFrom, s.RecoveryPoint, idle)
		}
		if s.Source.LagBytes < 0 || s.Source.LagBytes > 1<<20 {
			t.Errorf("source lag %d bytes on an idle database: the saved position does not follow the heartbeats", s.Source.LagBytes)
		}
		if code, body := d.healthz(t); code != 200 {
			t.Errorf("healthz after %s idle: %d %s", idle, code, body)
		}
		if code, out, errOut := d.cmd("status"); code != 0 || !strings.Contains(out, "WITHIN RPO") {
			t.Errorf("status after %s idle: exit %d\n%s%s", idle, code, out, errOut)
		}
		if r, ok := h.(logRetainer); ok {
			// Heartbeats write a little log; the source must keep
			// releasing it.
			if last, limit := retained[len(retained)-1], r.idleRetainLimit(); last < 0 || last > limit {
				t.Errorf("the source retains %d bytes after %s idle, want at most %d (samples %v)", last, idle, limit, retained)
			}
		}
		t.Logf("idle lags: %v; retained: %v", lags, retained)
		d.stop()
	})
}

// webhookSink records alert webhooks.
type webhookSink struct {
	mu     sync.Mutex
	alerts []monitor.Alert
}

func (w *webhookSink) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	var a monitor.Alert
	if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	if r.Header.Get("X-Rxvault-Secret") != "hook-secret" {
		http.Error(rw, "bad secret", http.StatusForbidden)
		return
	}
	w.mu.Lock()
	w.alerts = append(w.alerts, a)
	w.mu.Unlock()
}

func (w *webhookSink) named(name string) []monitor.Alert {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []monitor.Alert
	for _, a := range w.alerts {
		if a.Name == name {
			out = append(out, a)
		}
	}
	return out
}

// TestMonitorStoreOutage: with MinIO stopped the lag grows past a short
// RPO, /healthz turns 503 and exactly one breach webhook arrives; once
// MinIO is back, a recovery webhook, /healthz 200, and nothing lost.
func TestMonitorStoreOutage(t *testing.T) {
	src := newSource(t, 23)
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	m.MakeBucket(t, "archive", true)
	hook := &webhookSink{}
	hs := httptest.NewServer(hook)
	defer hs.Close()
	q := url.Values{"endpoint": {m.Endpoint}, "tls": {"false"}}
	d := newDeployment(t, src.dsn, []string{"s3://archive/rx?" + q.Encode()},
		[]string{"AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey, "RXVAULT_MONITOR_WEBHOOK_SECRET=hook-secret"},
		"monitor.rpo=8s", "monitor.webhook_url="+hs.URL, "monitor.webhook_header=X-Rxvault-Secret")
	d.start()
	d.waitLog("base backup stored", 60*time.Second)
	stop := src.load(t)
	time.Sleep(3 * time.Second)
	if code, body := d.healthz(t); code != 200 {
		t.Fatalf("healthz before the outage: %d %s", code, body)
	}

	m.Stop(t)
	d.waitStatus(t, "lag past the RPO", 40*time.Second, func(s *monitor.Snapshot) bool { return s.Breached })
	if code, body := d.healthz(t); code != 503 || !strings.Contains(body, "exceeds the RPO") {
		t.Errorf("healthz during the outage: %d %q", code, body)
	}
	time.Sleep(5 * time.Second) // many evaluations while breached
	if n := len(hook.named("rpo_breach")); n != 1 {
		t.Errorf("%d breach webhooks during one outage, want exactly 1", n)
	}
	m.Start(t)
	d.waitStatus(t, "lag back within the RPO", 60*time.Second, func(s *monitor.Snapshot) bool { return !s.Breached })
	deadline := time.Now().Add(15 * time.Second)
	for len(hook.named("rpo_breach")) < 2 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	got := hook.named("rpo_breach")
	if len(got) != 2 || got[0].State != "firing" || got[1].State != "resolved" {
		t.Errorf("breach webhooks %+v, want one firing then one resolved", got)
	}
	if code, body := d.healthz(t); code != 200 {
		t.Errorf("healthz after recovery: %d %s", code, body)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	want := snapshot(t, src.dsn)
	time.Sleep(2 * time.Second)
	d.stop()
	compare(t, "restore after the outage", want, restoreLatest(t, d, src.pg, "restored", ""))
}

// TestMonitorSourceRestart stops PostgreSQL under the running agent: the
// agent reports the source down (503, with the reason), and once the
// server is back it reconnects and continues the chain without a gap.
func TestMonitorSourceRestart(t *testing.T) {
	src := newSource(t, 24)
	d := newDeployment(t, src.dsn, []string{"file://" + t.TempDir()}, nil, "monitor.rpo=8s")
	d.start()
	d.waitLog("base backup stored", 60*time.Second)
	ctx := context.Background()
	if err := src.w.RunFor(ctx, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	src.conn.Close(ctx)
	src.pg.Stop(t)
	s := d.waitStatus(t, "source reported down", 30*time.Second, func(s *monitor.Snapshot) bool { return !s.Source.Up })
	if s.Source.Error == "" {
		t.Error("source down without a reason")
	}
	if code, body := d.healthz(t); code != 503 || !strings.Contains(body, "source unreachable") {
		t.Errorf("healthz with the source down: %d %q", code, body)
	}
	src.pg.Start(t)
	d.waitStatus(t, "source back and within the RPO", 90*time.Second, func(s *monitor.Snapshot) bool { return s.Source.Up && !s.Breached })
	conn, err := pgx.Connect(ctx, src.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	src.conn = conn
	src.w = workloadOn(conn, 25)
	if err := src.w.RunFor(ctx, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	want := snapshot(t, src.dsn)
	time.Sleep(2 * time.Second)
	d.stop()
	if code, out, _ := d.cmd("list"); code != 0 || strings.Contains(out, "GAP") {
		t.Errorf("list after a source restart: exit %d (a restart is not a gap)\n%s", code, out)
	}
	compare(t, "restore after the source restart", want, restoreLatest(t, d, src.pg, "restored", ""))
}

// TestStatusCommand: rxvault status asks the running agent; with the
// agent down it reads the stores and says so; its exit status is 0 within
// the RPO, 1 breached, 2 unknown.
func TestStatusCommand(t *testing.T) {
	src := newSource(t, 27)
	d := newDeployment(t, src.dsn, []string{"file://" + t.TempDir()}, nil, "monitor.rpo=6s")
	if code, out, errOut := d.cmd("status"); code != 2 || !strings.Contains(out, "does not answer") {
		t.Errorf("status with no agent and no archive: exit %d\n%s%s", code, out, errOut)
	}
	d.start()
	d.waitLog("base backup stored", 60*time.Second)
	d.waitStatus(t, "within the RPO", 20*time.Second, func(s *monitor.Snapshot) bool { return !s.Breached && !s.RecoveryPoint.IsZero() })
	code, out, errOut := d.cmd("status")
	if code != 0 || !strings.Contains(out, "WITHIN RPO") {
		t.Errorf("status of a running agent: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = d.cmd("status", "--json")
	var snap monitor.Snapshot
	if err := json.Unmarshal([]byte(out), &snap); code != 0 || err != nil || snap.RPOSec != 6 {
		t.Errorf("status --json: exit %d, %v: %s", code, err, out)
	}
	d.stop()
	if code, out, errOut := d.cmd("status"); code != 0 || !strings.Contains(out, "does not answer") || !strings.Contains(out, "newest archived commit") {
		t.Errorf("status right after the agent stopped: exit %d\n%s%s", code, out, errOut)
	}
	time.Sleep(7 * time.Second)
	if code, _, errOut := d.cmd("status"); code != 1 || !strings.Contains(errOut, "RPO") {
		t.Errorf("status with the agent down past the RPO: exit %d, %q", code, errOut)
	}
}
