package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/rxvault/rxvault/archive"
	"github.com/rxvault/rxvault/internal/config"
	"github.com/rxvault/rxvault/internal/monitor"
	"github.com/rxvault/rxvault/internal/store"
)

type statusOptions struct {
	json bool
}

// Exit codes of rxvault status (a Nagios-style check).
const (
	statusOK       = 0 // within the RPO
	statusBreached = 1 // the recovery point lag exceeds the RPO
	statusUnknown  = 2 // neither the agent nor the stores could tell
)

// storeStatus is what status reports when the agent does not answer.
type storeStatus struct {
	AgentRunning  bool          `json:"agent_running"`
	AgentError    string        `json:"agent_error"`
	RecoveryPoint time.Time     `json:"recovery_point,omitzero"`
	LagSec        float64       `json:"recovery_point_lag_seconds"`
	RPOSec        float64       `json:"rpo_seconds"`
	Breached      bool          `json:"rpo_breached"`
	Stores        []storeTipRow `json:"stores"`
}

type storeTipRow struct {
	Store         string    `json:"store"`
	RecoveryPoint time.Time `json:"newest_commit,omitzero"`
	Error         string    `json:"error,omitempty"`
}

func newStatusCommand(g *globals) *cobra.Command {
	var opts statusOptions
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the recovery point lag against the RPO (a cron or Nagios-style check)",
		Long: `Ask the running agent (monitor.listen, with monitor.token and monitor.tls_cert)
for its status: the recovery point lag (now minus the newest moment up to which
every committed transaction is in every store) against monitor.rpo, the source,
stores, spool and base backups. If the agent does not answer, read the stores
instead and report the lag as of the newest shipped segment, saying so.

Exit status: 0 within the RPO; 1 breached; 2 unknown (no agent, no archive).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig(cmd)
			if err != nil {
				return usage(err)
			}
			ctx := cmd.Context()
			cl := monitor.Client{Listen: cfg.Monitor.Listen, Token: cfg.Monitor.Token, CertFile: cfg.Monitor.TLSCert}
			snap, agentErr := cl.Status(ctx)
			if agentErr == nil {
				return printAgentStatus(g, snap, opts.json)
			}
			return storeStatusReport(ctx, g, &cfg, agentErr, opts.json)
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, "print JSON")
	return cmd
}

func printAgentStatus(g *globals, s *monitor.Snapshot, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s); err != nil {
			return err
		}
	} else {
		p := func(format string, args ...any) { fmt.Fprintf(g.stdout, format+"\n", args...) }
		state := "WITHIN RPO"
		if s.Breached {
			state = "RPO BREACHED"
		}
		p("%s: recovery point lag %s, RPO %s (agent %s, up since %s)", state,
			time.Duration(s.LagSec*float64(time.Second)).Round(time.Millisecond), time.Duration(s.RPOSec*float64(time.Second)), s.Version, s.Started.Format(time.RFC3339))
		if !s.RecoveryPoint.IsZero() {
			p("  recovery point: %s", s.RecoveryPoint.UTC().Format(time.RFC3339Nano))
		}
		src := "connected"
		if !s.Source.Up {
			src = "DOWN: " + s.Source.Error
		}
		p("  source %s %s: %s; %d bytes not yet acknowledged, %d retained", s.Source.Engine, s.Source.ID, src, s.Source.LagBytes, s.Source.RetainedBytes)
		if s.Source.Server != "" {
			p("  streaming from server %s (epoch %d)", s.Source.Server, s.Source.Epoch)
		}
		for _, st := range s.Stores {
			up := "up"
			if !st.Up {
				up = "FAILING since " + st.DownSince.UTC().Format(time.RFC3339) + ": " + st.LastError
			}
			p("  store %s: %s; %d segments shipped, %d errors", st.Name, up, st.Segments, st.Errors)
		}
		p("  spool: %d segments, %d bytes waiting", s.Spool.Segments, s.Spool.Bytes)
		if !s.LastBackup.IsZero() {
			p("  newest base backup finished %s", s.LastBackup.UTC().Format(time.RFC3339))
		}
		if s.Gaps > 0 {
			p("  GAPS since start: %d (%s)", s.Gaps, s.LastGap)
		}
		if !s.Healthy {
			p("  unhealthy: %s", s.Reason)
		}
	}
	if s.Breached {
		return &exitError{code: statusBreached, err: fmt.Errorf("recovery point lag %s exceeds the RPO %s", time.Duration(s.LagSec*float64(time.Second)).Round(time.Second), time.Duration(s.RPOSec*float64(time.Second)))}
	}
	return nil
}

// storeStatusReport measures the lag from the stores when the agent does
// not answer: the recovery point is the oldest, across stores, of each
// store's newest archived commit.
func storeStatusReport(ctx context.Context, g *globals, cfg *config.Config, agentErr error, asJSON bool) error {
	rep := storeStatus{AgentError: agentErr.Error(), RPOSec: cfg.Monitor.RPO.Seconds()}
	var oldest time.Time
	complete := true
	for _, u := range cfg.Archive.Stores {
		row := storeTipRow{Store: config.RedactURL(u)}
		t, err := newestCommit(ctx, g, cfg, u)
		switch {
		case err != nil:
			row.Error, complete = err.Error(), false
		case t.IsZero():
			row.Error, complete = "no archive", false
		default:
			row.RecoveryPoint = t
			if oldest.IsZero() || t.Before(oldest) {
				oldest = t
			}
		}
		rep.Stores = append(rep.Stores, row)
	}
	if complete {
		rep.RecoveryPoint = oldest
		rep.LagSec = time.Since(oldest).Seconds()
		rep.Breached = rep.LagSec > rep.RPOSec
	}
	if asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(g.stdout, "the agent does not answer (%s); from the stores:\n", agentErr)
		for _, r := range rep.Stores {
			if r.Error != "" {
				fmt.Fprintf(g.stdout, "  %s: %s\n", r.Store, r.Error)
			} else {
				fmt.Fprintf(g.stdout, "  %s: newest archived commit %s\n", r.Store, r.RecoveryPoint.UTC().Format(time.RFC3339Nano))
			}
		}
		if complete {
			fmt.Fprintf(g.stdout, "recovery point lag %s as of the newest shipped segment, RPO %s\n", time.Duration(rep.LagSec*float64(time.Second)).Round(time.Second), cfg.Monitor.RPO)
		}
	}
	switch {
	case !complete:
		return &exitError{code: statusUnknown, err: fmt.Errorf("status unknown: the agent does not answer and not every store holds an archive")}
	case rep.Breached:
		return &exitError{code: statusBreached, err: fmt.Errorf("the agent does not answer, and the newest shipped commit is %s old (RPO %s)", time.Duration(rep.LagSec*float64(time.Second)).Round(time.Second), cfg.Monitor.RPO)}
	}
	return nil
}

// newestCommit returns the newest archived commit time of the newest
// chain of every source in the store (the oldest of those, when the store
// holds several sources).
func newestCommit(ctx context.Context, g *globals, cfg *config.Config, u string) (time.Time, error) {
	st, err := g.openStore(ctx, cfg, u, nil)
	if err != nil {
		return time.Time{}, err
	}
	return newestIn(ctx, st)
}

func newestIn(ctx context.Context, st store.Store) (time.Time, error) {
	sources, err := archive.Sources(ctx, st)
	if err != nil {
		return time.Time{}, err
	}
	var oldest time.Time
	for _, sd := range sources {
		idx, err := archive.Load(ctx, st, sd.Dir)
		if err != nil {
			return time.Time{}, err
		}
		var newest time.Time
		for _, c := range idx.Chains {
			usable, _ := c.Usable()
			for _, s := range usable {
				if s.Info.EndTime.After(newest) {
					newest = s.Info.EndTime
				}
			}
		}
		if !newest.IsZero() && (oldest.IsZero() || newest.Before(oldest)) {
			oldest = newest
		}
	}
	return oldest, nil
}
