package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/rxvault/rxvault/internal/logs"
)

// Config configures a Monitor.
type Config struct {
	Listen  string // host:port; loopback unless the operator says otherwise
	TLSCert string // PEM certificate and key files: serve HTTPS when both are set
	TLSKey  string
	// Token, if set, is required as "Authorization: Bearer <token>" on
	// every request.
	Token string

	RPO time.Duration
	// BackupDue is how old the newest base backup may get before the
	// backup alert fires (backup.interval plus a grace); 0 disables it.
	BackupDue time.Duration
	// StoreDownAfter is how long a store may fail before its alert fires.
	StoreDownAfter time.Duration

	Webhook Webhook

	Version string
	// Logger receives the monitor's logs (alerts among them), tagged
	// component=internal/monitor; nil discards them.
	Logger *slog.Logger
	Now    func() time.Time
}

// Monitor holds the latest State and serves it. Update, the HTTP handlers
// and the alert loop may run concurrently.
type Monitor struct {
	cfg     Config
	log     *slog.Logger
	started time.Time
	reg     *prometheus.Registry
	alerts  *alerter

	mu    sync.Mutex
	state State
}

// New returns a monitor. Its registry holds rxvault's metrics and the Go
// and process collectors.
func New(cfg Config) *Monitor {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.StoreDownAfter == 0 {
		cfg.StoreDownAfter = 5 * time.Minute
	}
	m := &Monitor{cfg: cfg, log: logs.For(cfg.Logger, "internal/monitor"), started: cfg.Now()}
	m.reg = prometheus.NewRegistry()
	m.reg.MustRegister(
		newCollector(m),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.alerts = newAlerter(cfg.Webhook, m.log, cfg.Now)
	return m
}

// Registry returns the monitor's Prometheus registry.
func (m *Monitor) Registry() *prometheus.Registry { return m.reg }

// Update replaces the state, masking passwords its error text may quote.
func (m *Monitor) Update(s State) {
	s = s.redacted()
	m.mu.Lock()
	m.state = s
	m.mu.Unlock()
}

// Snapshot is the state with what follows from it at one instant.
type Snapshot struct {
	State
	At       time.Time     `json:"at"`
	Started  time.Time     `json:"agent_started"`
	Lag      time.Duration `json:"-"`
	LagSec   float64       `json:"recovery_point_lag_seconds"`
	RPOSec   float64       `json:"rpo_seconds"`
	Breached bool          `json:"rpo_breached"`
	Healthy  bool          `json:"healthy"`
	Reason   string        `json:"reason,omitempty"` // why not healthy
	Firing   []string      `json:"alerts_firing"`
	Version  string        `json:"version"`
}

// Snapshot evaluates the current state.
func (m *Monitor) Snapshot() Snapshot {
	m.mu.Lock()
	s := m.state
	m.mu.Unlock()
	now := m.cfg.Now()
	lag := s.Lag(now, m.started)
	snap := Snapshot{
		State: s, At: now.UTC(), Started: m.started.UTC(), Lag: lag, LagSec: lag.Seconds(),
		RPOSec: m.cfg.RPO.Seconds(), Breached: lag > m.cfg.RPO, Version: m.cfg.Version,
		Firing: m.alerts.firing(),
	}
	snap.Healthy, snap.Reason = health(snap, m.cfg)
	return snap
}

// health decides /healthz: the agent is healthy while within the RPO with
// its source and stores reachable.
func health(s Snapshot, cfg Config) (bool, string) {
	switch {
	case !s.Source.Up && s.Source.Since.IsZero():
		return false, "source not connected yet"
	case !s.Source.Up:
		return false, fmt.Sprintf("source unreachable since %s: %s", s.Source.Since.UTC().Format(time.RFC3339), s.Source.Error)
	case s.Breached && s.RecoveryPoint.IsZero():
		return false, fmt.Sprintf("nothing archived yet, %s after start (RPO %s)", s.Lag.Round(time.Second), cfg.RPO)
	case s.Breached:
		return false, fmt.Sprintf("recovery point lag %s exceeds the RPO %s", s.Lag.Round(time.Second), cfg.RPO)
	}
	for _, st := range s.Stores {
		if !st.Up && s.At.Sub(st.DownSince) >= cfg.StoreDownAfter {
			return false, fmt.Sprintf("store %s failing since %s: %s", st.Name, st.DownSince.UTC().Format(time.RFC3339), st.LastError)
		}
	}
	return true, "ok"
}

// Run evaluates alerts every second and delivers them until ctx ends.
func (m *Monitor) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { m.alerts.deliver(ctx) })
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-t.C:
			m.alerts.evaluate(m.Snapshot(), m.cfg)
		}
	}
}

// ErrBadConfig marks monitor configuration errors.
var ErrBadConfig = errors.New("monitor configuration")
