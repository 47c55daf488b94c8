package monitor_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rxvault/rxvault/internal/monitor"
	"github.com/rxvault/rxvault/internal/testenv"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func healthyState(now time.Time) monitor.State {
	return monitor.State{
		RecoveryPoint: now.Add(-3 * time.Second),
		Source:        monitor.SourceState{Engine: "postgres", ID: "1/pharmacy", Up: true, Since: now.Add(-time.Hour), LagBytes: 1234, RetainedBytes: 5678},
		Spool:         monitor.SpoolState{Segments: 1, Bytes: 4096},
		Stores:        []monitor.StoreState{{Name: "file:///archive", Up: true, Segments: 10, Bytes: 9999}},
		LastBackup:    now.Add(-2 * time.Hour),
		Chain:         "abc",
	}
}

func get(t *testing.T, h http.Handler, path string, hdr ...string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestMetricsParseWithHelpAndType(t *testing.T) {
	c := &clock{t: t0}
	m := monitor.New(monitor.Config{RPO: time.Minute, Now: c.now, Version: "v1.2.3"})
	m.Update(healthyState(c.now()))
	code, body := get(t, m.Handler(), "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	for name, f := range fams {
		if f.GetHelp() == "" || f.Type == nil {
			t.Errorf("%s lacks HELP or TYPE", name)
		}
		// Every HELP and TYPE line is in the text itself, too.
		if !strings.Contains(body, "# HELP "+name+" ") || !strings.Contains(body, "# TYPE "+name+" ") {
			t.Errorf("%s: no # HELP / # TYPE line", name)
		}
	}
	for name, want := range map[string]float64{
		"rxvault_recovery_point_lag_seconds":   3,
		"rxvault_rpo_seconds":                  60,
		"rxvault_rpo_breached":                 0,
		"rxvault_healthy":                      1,
		"rxvault_source_lag_bytes":             1234,
		"rxvault_source_retained_bytes":        5678,
		"rxvault_spool_segments":               1,
		"rxvault_base_backup_age_seconds":      7200,
		"rxvault_store_segments_shipped_total": 10,
	} {
		f := fams[name]
		if f == nil || len(f.Metric) == 0 {
			t.Errorf("%s missing", name)
			continue
		}
		var got float64
		switch {
		case f.Metric[0].Gauge != nil:
			got = f.Metric[0].Gauge.GetValue()
		case f.Metric[0].Counter != nil:
			got = f.Metric[0].Counter.GetValue()
		}
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if f := fams["rxvault_store_up"]; f == nil || f.Metric[0].Label[0].GetValue() != "file:///archive" {
		t.Errorf("rxvault_store_up labels: %v", f)
	}
	for _, n := range []string{"go_goroutines", "process_open_fds"} {
		if fams[n] == nil {
			t.Errorf("%s missing: the Go and process collectors belong on the registry", n)
		}
	}
}

func TestHealthAndStatus(t *testing.T) {
	c := &clock{t: t0}
	m := monitor.New(monitor.Config{RPO: 30 * time.Second, StoreDownAfter: time.Minute, Now: c.now})
	h := m.Handler()
	s := healthyState(c.now())
	m.Update(s)
	if code, body := get(t, h, "/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("healthy: %d %q", code, body)
	}
	c.add(time.Minute) // nothing stored since: lag 63s
	if code, body := get(t, h, "/healthz"); code != 503 || !strings.Contains(body, "exceeds the RPO") || strings.Count(body, "\n") != 1 {
		t.Errorf("breached: %d %q", code, body)
	}
	_, body := get(t, h, "/status")
	var snap monitor.Snapshot
	if err := json.Unmarshal([]byte(body), &snap); err != nil {
		t.Fatal(err)
	}
	if !snap.Breached || snap.LagSec != 63 || snap.RPOSec != 30 || snap.Healthy {
		t.Errorf("status %+v", snap)
	}
	s.RecoveryPoint = c.now()
	s.Source.Up, s.Source.Error = false, "connection refused"
	m.Update(s)
	if code, body := get(t, h, "/healthz"); code != 503 || !strings.Contains(body, "source unreachable") {
		t.Errorf("source down: %d %q", code, body)
	}
	s.Source.Up = true
	s.Stores[0].Up, s.Stores[0].DownSince, s.Stores[0].LastError = false, c.now().Add(-2*time.Minute), "connection refused"
	m.Update(s)
	if code, body := get(t, h, "/healthz"); code != 503 || !strings.Contains(body, "store file:///archive failing") {
		t.Errorf("store down: %d %q", code, body)
	}
	s.Stores[0].DownSince = c.now().Add(-10 * time.Second) // not long enough yet
	m.Update(s)
	if code, _ := get(t, h, "/healthz"); code != 200 {
		t.Errorf("store failing briefly: %d, want 200", code)
	}
}

func TestToken(t *testing.T) {
	m := monitor.New(monitor.Config{RPO: time.Minute, Token: "s3cret"})
	m.Update(healthyState(time.Now()))
	h := m.Handler()
	for _, path := range []string{"/metrics", "/healthz", "/status"} {
		if code, body := get(t, h, path); code != 401 || strings.Contains(body, "s3cret") {
			t.Errorf("%s without token: %d", path, code)
		}
		if code, _ := get(t, h, path, "Authorization", "Bearer wrong"); code != 401 {
			t.Errorf("%s with a wrong token: %d", path, code)
		}
		if code, _ := get(t, h, path, "Authorization", "Bearer s3cret"); code != 200 {
			t.Errorf("%s with the token: %d", path, code)
		}
	}
}

// hook is a test webhook receiver.
type hook struct {
	mu     sync.Mutex
	alerts []monitor.Alert
	bodies []string // raw request bodies, as received
	secret []string
	fail   int // answer 500 to this many requests first
}

func (k *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail > 0 {
		k.fail--
		http.Error(w, "try later", 500)
		return
	}
	var a monitor.Alert
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &a); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	k.alerts = append(k.alerts, a)
	k.bodies = append(k.bodies, string(b))
	k.secret = append(k.secret, r.Header.Get("X-Rxvault-Secret"))
}

func (k *hook) got() []monitor.Alert {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]monitor.Alert(nil), k.alerts...)
}

// handlerTransport serves requests with an http.Handler in memory, so that
// a synctest bubble holds the whole exchange (a bubble cannot wait on
// sockets). The rig's tests (alerts_test.go) deliver over real HTTP.
type handlerTransport struct{ h http.Handler }

func (tr handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		defer r.Body.Close()
	}
	rec := httptest.NewRecorder()
	tr.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// TestAlertsFireOnceAndRecover runs the alert loop (Run: an evaluation a
// second, and delivery) in a synctest bubble, whose clock only moves when
// every goroutine in it waits: a breach lasting many evaluations sends
// exactly one webhook, recovery one more; the webhook is retried through a
// failure and carries the secret.
func TestAlertsFireOnceAndRecover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := &hook{fail: 1}
		m := monitor.New(monitor.Config{RPO: 10 * time.Second,
			Webhook: monitor.Webhook{URL: "http://webhook.test/", Header: "X-Rxvault-Secret", Secret: "hush",
				Client: &http.Client{Transport: handlerTransport{k}}}})
		s := healthyState(time.Now()) // lag 3s, growing: breached after 7s more
		m.Update(s)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		}()

		time.Sleep(30 * time.Second) // over 20 evaluations while breached
		synctest.Wait()              // and whatever they queued is delivered
		got := k.got()
		if len(got) != 1 || got[0].Name != "rpo_breach" || got[0].State != "firing" {
			t.Fatalf("webhook got %+v after over 20 evaluations in breach, want exactly one rpo_breach firing", got)
		}
		if k.fail != 0 {
			t.Errorf("the webhook's failure was not retried")
		}

		s.RecoveryPoint = time.Now().Add(-time.Second)
		m.Update(s)
		time.Sleep(5 * time.Second) // five evaluations, the lag under the RPO
		synctest.Wait()
		got = k.got()
		if len(got) != 2 || got[1].Name != "rpo_breach" || got[1].State != "resolved" {
			t.Fatalf("webhook got %+v, want exactly 2 (breach, recovery)", got)
		}
		for _, sec := range k.secret {
			if sec != "hush" {
				t.Errorf("secret header %q", sec)
			}
		}
	})
}

func TestTLSAndClient(t *testing.T) {
	dir := t.TempDir()
	_, cert, key, err := testenv.WriteCerts(dir)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := monitor.New(monitor.Config{RPO: time.Minute, TLSCert: cert, TLSKey: key, Token: "tok", Listen: ln.Addr().String()})
	m.Update(healthyState(time.Now()))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.ServeListener(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	// ln listens already: a connection made before the server goroutine
	// accepts waits in the backlog, so the first call is answered.
	cl := monitor.Client{Listen: ln.Addr().String(), Token: "tok", CertFile: cert}
	snap, err := cl.Status(ctx)
	if err != nil || !snap.Healthy {
		t.Fatalf("status over TLS: %v %+v", err, snap)
	}
	// TLS 1.1 is refused.
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11})
	if err == nil {
		conn.Close()
		t.Error("a TLS 1.1 client was accepted")
	}
	if _, err := (monitor.Client{Listen: ln.Addr().String(), Token: "bad", CertFile: cert}).Status(ctx); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong token: %v", err)
	}
}
