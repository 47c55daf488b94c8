package agent

import (
	"context"
	"time"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/internal/monitor"
)

// setSource records whether the source is reachable.
func (a *Agent) setSource(up bool, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if up != a.sourceUp || a.sourceSince.IsZero() {
		a.sourceSince = time.Now()
	}
	a.sourceUp = up
	a.sourceErr = ""
	if err != nil {
		a.sourceErr = err.Error()
	}
}

// report sends the agent's state to cfg.Report every second until ctx ends.
func (a *Agent) report(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		a.cfg.Report(a.state(ctx))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// state assembles the monitoring state.
func (a *Agent) state(ctx context.Context) monitor.State {
	lag := capture.Lag{Bytes: -1, Retained: -1}
	if lr, ok := a.cfg.Source.(capture.LagReporter); ok {
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if l, err := lr.Lag(lctx); err == nil {
			lag = l
		}
		cancel()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s := monitor.State{
		RecoveryPoint: a.recovery,
		Source: monitor.SourceState{
			Engine: a.id.Engine.String(), ID: a.id.SourceID, Up: a.sourceUp, Error: a.sourceErr, Since: a.sourceSince,
			LagBytes: lag.Bytes, RetainedBytes: lag.Retained, Server: lag.Server, Epoch: lag.Epoch,
		},
		LastBackup: a.lastBackup,
		Chain:      a.chain,
		Gaps:       a.gaps,
		LastGap:    a.lastGap,

		LastVerify:        a.lastVerify,
		VerifyProblems:    a.verifyProblems,
		LastVerifyProblem: a.lastVerifyProblem,
	}
	if a.id.Engine == 0 {
		s.Source.Engine = ""
	}
	if a.sh != nil {
		st := a.sh.Stats()
		if st.DurableTime.After(a.recovery) {
			a.recovery = st.DurableTime
			s.RecoveryPoint = st.DurableTime
		}
		s.Spool = monitor.SpoolState{Segments: st.SpoolSegments, Bytes: st.SpoolBytes}
	}
	for i, st := range a.cfg.Shipper.Stores {
		ss := monitor.StoreState{Name: st.String(), Up: true}
		if i < len(a.cfg.Shipper.Stats) {
			snap := a.cfg.Shipper.Stats[i].Snapshot()
			ss.Up, ss.DownSince, ss.LastError = snap.Up, snap.DownSince, snap.LastError
			ss.Segments, ss.Bytes, ss.Errors, ss.Retries = snap.Segments, snap.Bytes, snap.Errors, snap.Retries
		}
		if i < len(a.verifyFailing) {
			ss.VerifyProblem = a.verifyFailing[i]
		}
		s.Stores = append(s.Stores, ss)
	}
	return s
}
