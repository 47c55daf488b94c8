package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Webhook is where alerts are POSTed as JSON, if URL is set.
type Webhook struct {
	URL string
	// Header and Secret, if set, are sent as one more header (for example
	// "X-Rxvault-Secret"), so the receiver can tell rxvault from others.
	Header  string
	Secret  string
	Timeout time.Duration // per attempt; default 10s
	Retries int           // attempts after the first; default 5
	Client  *http.Client  // default: a client with Timeout
}

// Alert is one alert notification.
type Alert struct {
	Name       string    `json:"alert"` // rpo_breach, backup_overdue, store_down, chain_gap, verify_problem
	State      string    `json:"state"` // firing or resolved
	Summary    string    `json:"summary"`
	Source     string    `json:"source"`
	Store      string    `json:"store,omitempty"`
	At         time.Time `json:"at"`
	LagSeconds float64   `json:"recovery_point_lag_seconds"`
	RPOSeconds float64   `json:"rpo_seconds"`
}

// alerter turns conditions into alerts that fire once per incident and
// resolve once, and delivers them.
type alerter struct {
	hook  Webhook
	log   *slog.Logger
	now   func() time.Time
	queue chan Alert

	mu     sync.Mutex
	active map[string]Alert // firing, by key
	gaps   int
}

func newAlerter(h Webhook, log *slog.Logger, now func() time.Time) *alerter {
	if h.Timeout == 0 {
		h.Timeout = 10 * time.Second
	}
	if h.Retries == 0 {
		h.Retries = 5
	}
	if h.Client == nil {
		h.Client = &http.Client{Timeout: h.Timeout}
	}
	return &alerter{hook: h, log: log, now: now, queue: make(chan Alert, 256), active: map[string]Alert{}}
}

// firing lists the keys of firing alerts.
func (a *alerter) firing() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.active))
	for k := range a.active {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// evaluate fires and resolves alerts for snapshot s.
func (a *alerter) evaluate(s Snapshot, cfg Config) {
	base := Alert{Source: s.Source.Engine + " " + s.Source.ID, At: s.At, LagSeconds: s.LagSec, RPOSeconds: s.RPOSec}
	a.check("rpo_breach", s.Breached, base, fmt.Sprintf("recovery point lag %s exceeds the RPO %s", s.Lag.Round(time.Second), cfg.RPO),
		fmt.Sprintf("recovery point lag %s is back within the RPO %s", s.Lag.Round(time.Second), cfg.RPO))
	if cfg.BackupDue > 0 {
		since := s.LastBackup
		if since.IsZero() {
			since = s.Started
		}
		age := s.At.Sub(since)
		a.check("backup_overdue", age > cfg.BackupDue, base,
			fmt.Sprintf("no base backup for %s (due every %s)", age.Round(time.Minute), cfg.BackupDue),
			"a base backup is stored again")
	}
	for _, st := range s.Stores {
		down := !st.Up && s.At.Sub(st.DownSince) >= cfg.StoreDownAfter
		al := base
		al.Store = st.Name
		a.check("store_down "+st.Name, down, al,
			fmt.Sprintf("store %s failing since %s: %s", st.Name, st.DownSince.UTC().Format(time.RFC3339), st.LastError),
			fmt.Sprintf("store %s accepts uploads again", st.Name))
		// A damaged object stays damaged (stores are write-once), so this
		// resolves only when a later read-back of the store finds nothing
		// wrong: the damage was in the read, not in the store, or the
		// agent writes a new chain (after a restart, a new base backup
		// and chain are needed to be restorable past the damage).
		a.check("verify_problem "+st.Name, st.VerifyProblem != "", al,
			fmt.Sprintf("read-back verification of store %s: %s", st.Name, st.VerifyProblem),
			fmt.Sprintf("store %s reads back intact again", st.Name))
	}
	a.mu.Lock()
	newGap := s.Gaps > a.gaps
	a.gaps = s.Gaps
	a.mu.Unlock()
	if newGap {
		al := base
		al.Name, al.State, al.Summary = "chain_gap", "firing", "gap in the archive: "+s.LastGap
		a.emit(al)
	}
}

// check fires key when cond turns true and resolves it when it turns false.
func (a *alerter) check(key string, cond bool, al Alert, firing, resolved string) {
	a.mu.Lock()
	_, on := a.active[key]
	switch {
	case cond && !on:
		al.Name, al.State, al.Summary = nameOf(key), "firing", firing
		a.active[key] = al
	case !cond && on:
		al.Name, al.State, al.Summary = nameOf(key), "resolved", resolved
		delete(a.active, key)
	default:
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	a.emit(al)
}

func nameOf(key string) string {
	for i, r := range key {
		if r == ' ' {
			return key[:i]
		}
	}
	return key
}

// emit logs an alert and queues it for the webhook.
func (a *alerter) emit(al Alert) {
	if al.State == "firing" {
		a.log.Warn("ALERT "+al.Name, "summary", al.Summary, "store", al.Store)
	} else {
		a.log.Info("RESOLVED "+al.Name, "summary", al.Summary, "store", al.Store)
	}
	if a.hook.URL == "" {
		return
	}
	select {
	case a.queue <- al:
	default:
		a.log.Error("alert queue full; webhook notification dropped", "alert", al.Name)
	}
}

// deliver posts queued alerts, in order, until ctx ends.
func (a *alerter) deliver(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case al := <-a.queue:
			if err := a.post(ctx, al); err != nil {
				a.log.Error("webhook delivery failed", "alert", al.Name, "state", al.State, "err", err)
			}
		}
	}
}

// post sends one alert, retrying with capped backoff.
func (a *alerter) post(ctx context.Context, al Alert) error {
	body, err := json.Marshal(al)
	if err != nil {
		return err
	}
	backoff := time.Second
	var last error
	for attempt := 0; attempt <= a.hook.Retries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.hook.URL, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "rxvault")
		if a.hook.Header != "" {
			req.Header.Set(a.hook.Header, a.hook.Secret)
		}
		resp, err := a.hook.Client.Do(req)
		if err != nil {
			last = err
			continue
		}
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return nil
		}
		last = fmt.Errorf("webhook answered %s", resp.Status)
		if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout {
			return last // the receiver refuses it; retrying will not help
		}
	}
	return last
}
