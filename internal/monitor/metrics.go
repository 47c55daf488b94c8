package monitor

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// collector turns the latest Snapshot into metrics at each scrape, so the
// lag is always computed against the scrape's clock.
type collector struct {
	m *Monitor
}

func newCollector(m *Monitor) *collector { return &collector{m: m} }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("rxvault_"+name, help, labels, nil)
}

// The metrics, documented in the README.
var (
	descLag          = desc("recovery_point_lag_seconds", "Now minus the newest source instant up to which every committed transaction is durably in every store.")
	descRecovery     = desc("recovery_point_timestamp_seconds", "The newest source instant (Unix seconds) up to which every committed transaction is durably in every store; 0 before the first segment.")
	descRPO          = desc("rpo_seconds", "The configured recovery point objective (monitor.rpo).")
	descBreached     = desc("rpo_breached", "1 while the recovery point lag exceeds the RPO, else 0.")
	descHealthy      = desc("healthy", "1 while /healthz answers 200, else 0.")
	descSourceUp     = desc("source_up", "1 while the agent is connected to the source database and reading its change stream.")
	descSourceLag    = desc("source_lag_bytes", "Bytes of change stream the source holds beyond what rxvault has acknowledged (PostgreSQL: current WAL LSN minus the slot's confirmed flush LSN); -1 when unknown.")
	descRetained     = desc("source_retained_bytes", "Bytes the source retains for rxvault (PostgreSQL: WAL held by the replication slot); -1 when unknown.")
	descSpoolSegs    = desc("spool_segments", "Sealed segments in the local spool, not yet in every store.")
	descSpoolBytes   = desc("spool_bytes", "Bytes of sealed segments in the local spool.")
	descStoreUp      = desc("store_up", "1 while the store's last upload succeeded, else 0.", "store")
	descShipped      = desc("store_segments_shipped_total", "Segments stored in the store by this agent process.", "store")
	descShippedBytes = desc("store_bytes_shipped_total", "Segment bytes stored in the store by this agent process.", "store")
	descErrors       = desc("store_upload_errors_total", "Uploads to the store that failed (each is retried).", "store")
	descRetries      = desc("store_upload_retries_total", "Upload attempts repeated after a failure.", "store")
	descBackupTime   = desc("last_base_backup_timestamp_seconds", "When the newest complete base backup finished (Unix seconds); 0 if there is none.")
	descBackupAge    = desc("base_backup_age_seconds", "Age of the newest complete base backup; -1 if there is none.")
	descGaps         = desc("chain_gaps_total", "Gaps met since the agent started: new chains started because the change stream could not continue.")
	descVerifyTime   = desc("last_verify_timestamp_seconds", "When the agent last read back every segment it had shipped and found them intact (Unix seconds); 0 if not yet.")
	descVerifyProbs  = desc("verify_problems_total", "Problems the agent's read-back verification found since it started.")
	descBuild        = desc("build_info", "Always 1; the version label names the build.", "version")
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLag, descRecovery, descRPO, descBreached, descHealthy, descSourceUp, descSourceLag,
		descRetained, descSpoolSegs, descSpoolBytes, descStoreUp, descShipped, descShippedBytes, descErrors, descRetries,
		descBackupTime, descBackupAge, descGaps, descVerifyTime, descVerifyProbs, descBuild} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.Snapshot()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(descLag, s.LagSec)
	gauge(descRecovery, unix(s.RecoveryPoint))
	gauge(descRPO, s.RPOSec)
	gauge(descBreached, b2f(s.Breached))
	gauge(descHealthy, b2f(s.Healthy))
	gauge(descSourceUp, b2f(s.Source.Up))
	gauge(descSourceLag, float64(s.Source.LagBytes))
	gauge(descRetained, float64(s.Source.RetainedBytes))
	gauge(descSpoolSegs, float64(s.Spool.Segments))
	gauge(descSpoolBytes, float64(s.Spool.Bytes))
	for _, st := range s.Stores {
		gauge(descStoreUp, b2f(st.Up), st.Name)
		counter(descShipped, float64(st.Segments), st.Name)
		counter(descShippedBytes, float64(st.Bytes), st.Name)
		counter(descErrors, float64(st.Errors), st.Name)
		counter(descRetries, float64(st.Retries), st.Name)
	}
	gauge(descBackupTime, unix(s.LastBackup))
	age := -1.0
	if !s.LastBackup.IsZero() {
		age = s.At.Sub(s.LastBackup).Seconds()
	}
	gauge(descBackupAge, age)
	counter(descGaps, float64(s.Gaps))
	gauge(descVerifyTime, unix(s.LastVerify))
	counter(descVerifyProbs, float64(s.VerifyProblems))
	gauge(descBuild, 1, s.Version)
}

func unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
