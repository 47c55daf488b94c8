package monitor_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rxvault/rxvault/internal/monitor"
)

// rig drives a monitor's alerts step by step: a fake clock, a crafted
// State, one evaluation per step (Run's ticker is not used), and a webhook
// receiver that records every notification.
type rig struct {
	t     *testing.T
	c     *clock
	m     *monitor.Monitor
	k     *hook
	s     monitor.State
	marks int // marker alerts sent by delivered (each one firing, one resolved)
}

// markerStore names the store the rig's marker alerts are about; it is
// added to every State the rig reports, after the test's own stores.
const markerStore = "rig-marker"

// update reports r.s, with the marker store's read-back problem set if on.
func (r *rig) update(on bool) {
	s := r.s
	s.Stores = append(slices.Clone(s.Stores), monitor.StoreState{Name: markerStore, Up: true})
	if on {
		s.Stores[len(s.Stores)-1].VerifyProblem = "marker"
	}
	r.m.Update(s)
}

// newRig starts a monitor with cfg, a webhook receiver and delivery. The
// state starts healthy; every step keeps the recovery point fresh so
// rpo_breach stays quiet unless a test breaks it itself.
func newRig(t *testing.T, cfg monitor.Config) *rig {
	t.Helper()
	k := &hook{}
	srv := httptest.NewServer(k)
	t.Cleanup(srv.Close)
	c := &clock{t: t0}
	cfg.Now = c.now
	cfg.Webhook.URL = srv.URL
	if cfg.RPO == 0 {
		cfg.RPO = time.Minute
	}
	r := &rig{t: t, c: c, m: monitor.New(cfg), k: k, s: healthyState(t0)}
	var wg sync.WaitGroup
	wg.Go(func() { r.m.Deliver(t.Context()) })
	t.Cleanup(wg.Wait) // t.Context ends first; runs before srv.Close
	r.update(false)
	return r
}

// step advances the clock by d, applies change to the state, and
// evaluates the alerts once.
func (r *rig) step(d time.Duration, change func(s *monitor.State)) {
	r.c.add(d)
	r.s.RecoveryPoint = r.c.now().Add(-3 * time.Second)
	if change != nil {
		change(&r.s)
	}
	r.update(false)
	r.m.Evaluate()
}

// steps evaluates n times, d apart, without changing the state.
func (r *rig) steps(n int, d time.Duration) {
	for range n {
		r.step(d, nil)
	}
}

// delivered returns every alert the webhook has received so far, as
// "name state" or "name state store", in order. It first raises and
// resolves a verify_problem alert about the marker store and waits for
// both: delivery is in order, so once they are in, so is everything
// evaluated before them, and the count is exact. Markers are left out of
// the result.
func (r *rig) delivered() []string {
	r.t.Helper()
	r.marks++
	for _, on := range []bool{true, false} {
		r.update(on)
		r.m.Evaluate()
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var out []string
		marks := 0
		for _, a := range r.k.got() {
			if a.Store == markerStore {
				marks++
				continue
			}
			out = append(out, strings.TrimSpace(a.Name+" "+a.State+" "+a.Store))
		}
		if marks == 2*r.marks {
			return out
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("webhook received %d of %d marker alerts", marks, 2*r.marks)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alert returns the webhook's last alert named name.
func (r *rig) alert(name string) monitor.Alert {
	r.t.Helper()
	got := r.k.got()
	for i := len(got) - 1; i >= 0; i-- {
		if got[i].Name == name {
			return got[i]
		}
	}
	r.t.Fatalf("no %s alert received", name)
	return monitor.Alert{}
}

func (r *rig) expect(what string, want ...string) {
	r.t.Helper()
	if got := r.delivered(); !slices.Equal(got, want) {
		r.t.Fatalf("%s: webhook got %q, want exactly %q", what, got, want)
	}
}

func (r *rig) firing() []string { return r.m.Snapshot().Firing }

func TestBackupOverdue(t *testing.T) {
	const due = 3 * time.Hour
	t.Run("old backup", func(t *testing.T) {
		r := newRig(t, monitor.Config{BackupDue: due}) // the newest backup is 2h old
		r.steps(3, time.Second)
		r.step(time.Hour-3*time.Second, nil) // exactly due: not older yet
		r.expect("backup 3h old")
		r.step(time.Minute, nil)
		r.steps(5, time.Minute)
		r.expect("backup overdue", "backup_overdue firing")
		if a := r.alert("backup_overdue"); !strings.Contains(a.Summary, "no base backup for 3h") || a.Source != "postgres 1/pharmacy" {
			t.Errorf("alert %+v", a)
		}
		if got := r.firing(); !slices.Equal(got, []string{"backup_overdue"}) {
			t.Errorf("firing %q", got)
		}
		r.step(time.Minute, func(s *monitor.State) { s.LastBackup = r.c.now() })
		r.steps(5, 30*time.Minute) // 2.5h old at most
		r.expect("fresh backup", "backup_overdue firing", "backup_overdue resolved")
		if got := r.firing(); len(got) != 0 {
			t.Errorf("firing %q after a fresh backup", got)
		}
		r.step(due, nil) // overdue again: a new incident
		r.expect("overdue again", "backup_overdue firing", "backup_overdue resolved", "backup_overdue firing")
	})
	t.Run("none since start", func(t *testing.T) {
		r := newRig(t, monitor.Config{BackupDue: due})
		r.step(0, func(s *monitor.State) { s.LastBackup = time.Time{} })
		r.step(due-time.Minute, nil)
		r.expect("no backup, before due")
		r.step(2*time.Minute, nil)
		r.steps(3, time.Hour)
		r.expect("no backup, past due", "backup_overdue firing")
		r.step(time.Second, func(s *monitor.State) { s.LastBackup = r.c.now() })
		r.steps(3, time.Minute)
		r.expect("first backup", "backup_overdue firing", "backup_overdue resolved")
	})
	t.Run("disabled", func(t *testing.T) {
		r := newRig(t, monitor.Config{})
		r.step(0, func(s *monitor.State) { s.LastBackup = time.Time{} })
		r.steps(5, 1000*time.Hour)
		r.step(time.Second, func(s *monitor.State) { s.LastBackup = r.c.now().Add(-1000 * time.Hour) })
		r.steps(5, 1000*time.Hour)
		r.expect("BackupDue 0")
		if got := r.firing(); len(got) != 0 {
			t.Errorf("firing %q with BackupDue 0", got)
		}
	})
}

func TestChainGapOncePerGap(t *testing.T) {
	r := newRig(t, monitor.Config{})
	r.steps(3, time.Second)
	r.expect("no gap")
	r.step(time.Second, func(s *monitor.State) { s.Gaps, s.LastGap = 1, "slot lost at 0/16B3748; new chain def" })
	r.steps(5, time.Second)
	r.expect("first gap", "chain_gap firing")
	if a := r.alert("chain_gap"); a.Summary != "gap in the archive: slot lost at 0/16B3748; new chain def" {
		t.Errorf("summary %q", a.Summary)
	}
	r.step(time.Second, func(s *monitor.State) { s.Gaps, s.LastGap = 2, "WAL removed; new chain f00" })
	r.steps(5, time.Minute)
	r.expect("second gap", "chain_gap firing", "chain_gap firing")
	if a := r.alert("chain_gap"); !strings.Contains(a.Summary, "new chain f00") {
		t.Errorf("summary %q", a.Summary)
	}
	if got := r.firing(); len(got) != 0 {
		t.Errorf("firing %q: a gap is an event, not a condition", got)
	}
}

// TestVerifyProblemResolves: a read-back problem fires once per store
// while it stands, however many passes find it, and resolves when a later
// pass of that store finds none; a store that is only down does not fire it.
func TestVerifyProblemResolves(t *testing.T) {
	const s3 = "s3://rx-archive/pharmacy?endpoint=minio.internal:9000"
	r := newRig(t, monitor.Config{StoreDownAfter: time.Hour})
	r.step(time.Second, func(s *monitor.State) {
		s.Stores = append(s.Stores, monitor.StoreState{Name: s3, Up: false, DownSince: r.c.now(), LastError: "connection refused"})
	})
	r.steps(5, time.Second)
	r.expect("store down, no read-back problem")
	for i := range 5 {
		r.step(time.Second, func(s *monitor.State) {
			s.Stores[1].Up, s.Stores[1].VerifyProblem = true, "wal/seg-7: digest mismatch"
			s.VerifyProblems, s.LastVerifyProblem = i+1, s3+": wal/seg-7: digest mismatch"
		})
	}
	r.expect("a problem found by five passes", "verify_problem firing "+s3)
	for _, a := range r.k.got() {
		if a.Name == "verify_problem" && a.Store == s3 && !strings.Contains(a.Summary, "seg-7: digest mismatch") {
			t.Errorf("alert %+v does not say what was found", a)
		}
	}
	if got := r.firing(); !slices.Equal(got, []string{"verify_problem " + s3}) {
		t.Errorf("firing %q", got)
	}
	r.step(time.Second, func(s *monitor.State) { s.Stores[1].VerifyProblem = "" })
	r.steps(3, time.Second)
	r.expect("a clean pass", "verify_problem firing "+s3, "verify_problem resolved "+s3)
	if got := r.firing(); len(got) != 0 {
		t.Errorf("firing %q after a clean pass", got)
	}
}

func TestStoreDownAlertAndHealth(t *testing.T) {
	const s3 = "s3://rx-archive/pharmacy?endpoint=minio.internal:9000"
	r := newRig(t, monitor.Config{StoreDownAfter: time.Minute})
	h := r.m.Handler()
	r.step(0, func(s *monitor.State) {
		s.Stores = append(s.Stores, monitor.StoreState{Name: s3, Up: true})
	})
	fail := func(s *monitor.State) {
		s.Stores[1].Up, s.Stores[1].DownSince = false, r.c.now()
		s.Stores[1].LastError = `put 000000010000000a-000000010000000f: Put "https://minio.internal:9000/rx-archive/pharmacy/seg": dial tcp 10.0.0.7:9000: connect: connection refused`
	}
	r.step(time.Second, fail)
	r.steps(5, 10*time.Second) // failing for 50s
	r.expect("store failing 50s")
	if code, body := get(t, h, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz with the store failing briefly: %d %q", code, body)
	}
	r.step(10*time.Second, nil) // 60s: the alert is due
	r.steps(5, time.Minute)
	r.expect("store down", "store_down firing "+s3)
	a := r.alert("store_down")
	if a.Store != s3 || !strings.Contains(a.Summary, "store "+s3+" failing since ") || !strings.Contains(a.Summary, "connection refused") {
		t.Errorf("alert %+v", a)
	}
	code, body := get(t, h, "/healthz")
	if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "store "+s3+" failing since ") ||
		strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "\n") {
		t.Errorf("/healthz while the store is down: %d %q, want 503 and one line naming the store", code, body)
	}
	if got := r.firing(); !slices.Equal(got, []string{"store_down " + s3}) {
		t.Errorf("firing %q", got)
	}
	r.step(time.Second, func(s *monitor.State) {
		s.Stores[1].Up, s.Stores[1].DownSince, s.Stores[1].LastError = true, time.Time{}, ""
		s.Stores[1].Segments++
	})
	r.steps(5, time.Minute)
	r.expect("store back", "store_down firing "+s3, "store_down resolved "+s3)
	if a := r.alert("store_down"); a.State != "resolved" || a.Summary != "store "+s3+" accepts uploads again" {
		t.Errorf("resolution %+v", a)
	}
	if code, body := get(t, h, "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz with the store back: %d %q", code, body)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestNoSecretsInResponses configures a token and a webhook secret and
// feeds error text that quotes credentials, as a driver's error may; no
// endpoint body, webhook body or log line may carry any of them.
func TestNoSecretsInResponses(t *testing.T) {
	const (
		token    = "tok-0f9e8d7c6b5a"
		whSecret = "whsec-1a2b3c4d5e"
		urlPass  = "pw-u7Rl.9x"
		kwPass   = "pw-kw-5q!z"
		s3       = "s3://rx-archive/pharmacy?endpoint=minio.internal:9000"
	)
	var logs syncBuffer
	r := newRig(t, monitor.Config{
		RPO: 30 * time.Second, StoreDownAfter: time.Minute, Token: token,
		Webhook: monitor.Webhook{Header: "X-Rxvault-Secret", Secret: whSecret},
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
	})
	h := r.m.Handler()
	dsn := "postgres://rxvault:" + urlPass + "@db.internal:5432/pharmacy?sslmode=verify-full"
	r.step(0, func(s *monitor.State) {
		s.Source.Up, s.Source.Since = false, r.c.now()
		s.Source.Error = `postgres capture: connect: parse "` + dsn + `": invalid port`
		s.Stores = append(s.Stores, monitor.StoreState{Name: s3, Up: false, DownSince: r.c.now(),
			LastError:     `upload: Put "https://minio.internal:9000/rx-archive/pharmacy/seg": connection refused (source ` + dsn + `)`,
			VerifyProblem: "segment 00ab: digest mismatch, read from " + dsn})
		s.Gaps, s.LastGap = 1, "slot lost on host=db.internal user=rxvault password="+kwPass+" dbname=pharmacy"
		s.VerifyProblems, s.LastVerifyProblem = 1, "segment 00ab: cannot read back from "+dsn
	})
	r.step(2*time.Minute, func(s *monitor.State) { s.RecoveryPoint = r.c.now().Add(-time.Hour) })
	got := r.delivered()
	for _, want := range []string{"chain_gap firing", "rpo_breach firing", "store_down firing " + s3, "verify_problem firing " + s3} {
		if !slices.Contains(got, want) {
			t.Errorf("webhook got %q, want %q among them", got, want)
		}
	}

	bodies := map[string]string{}
	for _, path := range []string{"/metrics", "/status", "/healthz"} {
		code, body := get(t, h, path, "Authorization", "Bearer "+token)
		if code != http.StatusOK && code != http.StatusServiceUnavailable {
			t.Fatalf("%s: %d %q", path, code, body)
		}
		bodies[path] = body
	}
	r.k.mu.Lock()
	for i, b := range r.k.bodies {
		bodies[fmt.Sprintf("webhook body %d", i)] = b
	}
	for _, sec := range r.k.secret {
		if sec != whSecret { // the secret is in use, so a leak would show
			t.Errorf("webhook secret header %q", sec)
		}
	}
	r.k.mu.Unlock()
	bodies["log"] = logs.String()
	for where, body := range bodies {
		for _, secret := range []string{token, whSecret, urlPass, kwPass} {
			if strings.Contains(body, secret) {
				t.Errorf("%s holds secret %q:\n%s", where, secret, body)
			}
		}
	}
	// What is left around the secrets still tells the operator what failed.
	if !strings.Contains(bodies["/healthz"], "postgres://rxvault:xxxxx@db.internal:5432/pharmacy") {
		t.Errorf("/healthz %q lost the redacted DSN", bodies["/healthz"])
	}
	if !strings.Contains(bodies["/status"], "password=xxxxx dbname=pharmacy") || !strings.Contains(bodies["/status"], `"name": "`+s3+`"`) {
		t.Errorf("/status lost the redacted gap or the store name:\n%s", bodies["/status"])
	}
	if !strings.Contains(bodies["/metrics"], `store="`+s3+`"`) {
		t.Errorf("/metrics lost the store label")
	}
}

// TestUpdateRedactsPasswords checks the masking of passwords in error
// text, and that text without one passes unchanged.
func TestUpdateRedactsPasswords(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`parse "postgres://rx:hunter2@db:5432/x": invalid port`, `parse "postgres://rx:xxxxx@db:5432/x": invalid port`},
		{"dial postgres://rx:p@ss/w:rd@db/x failed", "dial postgres://rx:xxxxx@db/x failed"},
		{"sqlserver://sa:Secr3t%21@mssql:1433?database=rx", "sqlserver://sa:xxxxx@mssql:1433?database=rx"},
		{"host=db user=rx password='a b;c' dbname=x", "host=db user=rx password=xxxxx dbname=x"},
		{"Server=mssql;User Id=sa;Password=Secr3t!;Database=rx", "Server=mssql;User Id=sa;Password=xxxxx;Database=rx"},
		{"postgres://rx@db:5432/x: connection refused", "postgres://rx@db:5432/x: connection refused"},
		{`Put "https://minio:9000/rx/seg": dial tcp 10.0.0.7:9000: connect: connection refused`, `Put "https://minio:9000/rx/seg": dial tcp 10.0.0.7:9000: connect: connection refused`},
		{"s3://rx-archive/pharmacy?endpoint=minio.internal:9000", "s3://rx-archive/pharmacy?endpoint=minio.internal:9000"},
	} {
		m := monitor.New(monitor.Config{RPO: time.Minute})
		s := healthyState(time.Now())
		s.Source.Error, s.LastGap, s.LastVerifyProblem = tc.in, tc.in, tc.in
		s.Stores[0].Name, s.Stores[0].LastError = tc.in, tc.in
		m.Update(s)
		got := m.Snapshot()
		for field, v := range map[string]string{"source error": got.Source.Error, "last gap": got.LastGap,
			"verify problem": got.LastVerifyProblem, "store name": got.Stores[0].Name, "store error": got.Stores[0].LastError} {
			if v != tc.want {
				t.Errorf("%s %q = %q, want %q", field, tc.in, v, tc.want)
			}
		}
		if s.Stores[0].LastError != tc.in {
			t.Errorf("Update changed the caller's Stores: %q", s.Stores[0].LastError)
		}
	}
}
