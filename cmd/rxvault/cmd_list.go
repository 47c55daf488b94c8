package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/rxvault/rxvault/archive"
	"github.com/rxvault/rxvault/pitr"
	"github.com/rxvault/rxvault/segment"
)

type listOptions struct {
	json  bool
	store string
}

// listing is the --json form of list, per source.
type listing struct {
	Source  string         `json:"source"`
	Engine  segment.Engine `json:"engine"`
	ID      string         `json:"source_id"`
	Chains  []chainJSON    `json:"chains"`
	Backups []backupJSON   `json:"backups"`
	Windows []windowJSON   `json:"restorable"`
	Gaps    []string       `json:"gaps"`
	Missing []string       `json:"missing"` // objects the archive proves missing
	Notes   []string       `json:"notes"`
}

type chainJSON struct {
	Chain      string    `json:"chain"`
	Start      string    `json:"start"`
	Started    time.Time `json:"started"`
	Reason     string    `json:"reason"`
	Gap        bool      `json:"gap"`
	Segments   int       `json:"segments"`
	End        string    `json:"archived_up_to"`
	LastCommit time.Time `json:"newest_commit,omitzero"`
	Broken     string    `json:"broken,omitempty"`
}

type backupJSON struct {
	ID       string    `json:"id"`
	Pos      string    `json:"pos"`
	GTID     string    `json:"gtid,omitempty"`
	Time     time.Time `json:"time"`
	Parts    int       `json:"parts"`
	Bytes    int64     `json:"dump_bytes"`
	Stored   int64     `json:"stored_bytes"`
	Complete bool      `json:"complete"`
}

type windowJSON struct {
	Chain string    `json:"chain"`
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
}

// errGaps makes list exit non-zero when the archive has a gap.
var errGaps = errors.New("the archive has gaps, broken chains or missing objects (see above): run rxvault verify")

func newListCommand(g *globals) *cobra.Command {
	var opts listOptions
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Show base backups, the restorable window of each chain, and gaps",
		Long: `List, per source in the store (--store, default the first of archive.stores):
its chains (unbroken runs of the change stream), base backups, the window of
source times each chain can restore to, and any gap. Reads the listing and the
small JSON documents only; nothing is decrypted.

Exit status 1 when the archive has a gap, a broken chain or missing objects
(segments missing between two it holds, a base backup's part, a chain's
document).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig(cmd)
			if err != nil {
				return usage(err)
			}
			ctx := cmd.Context()
			log := g.logger(cfg.Log)
			st, err := g.readStore(ctx, &cfg, opts.store, log)
			if err != nil {
				return err
			}
			sources, err := archive.Sources(ctx, st)
			if err != nil {
				return err
			}
			var all []listing
			gaps := false
			for _, sd := range sources {
				idx, err := archive.Load(ctx, st, sd.Dir)
				if err != nil {
					return err
				}
				l := describe(sd, idx)
				gaps = gaps || len(l.Gaps) > 0 || len(l.Missing) > 0
				all = append(all, l)
			}
			if opts.json {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(all); err != nil {
					return err
				}
			} else {
				printListing(g, st.String(), all)
			}
			if gaps {
				return errGaps
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, "print JSON")
	cmd.Flags().StringVar(&opts.store, "store", "", "store URL to read (default: the first of archive.stores)")
	return cmd
}

func describe(sd *archive.SourceDoc, idx *archive.Index) listing {
	l := listing{Source: sd.Dir, Engine: sd.Engine, ID: sd.SourceID, Notes: idx.Problems}
	for _, c := range idx.Chains {
		cj := chainJSON{Chain: c.ID.String(), Segments: len(c.Segments)}
		if m := c.Marker; m != nil {
			cj.Start, cj.Started, cj.Reason, cj.Gap = m.Start.Native, m.Started, m.Reason, m.Gap
			if m.Gap {
				l.Gaps = append(l.Gaps, fmt.Sprintf("before chain %s (started %s): %s", c.ID, m.Started.Format(time.RFC3339), m.Reason))
			}
		}
		usable, why := c.Usable()
		cj.Broken = why
		if _, fork := c.Present(); fork != "" {
			l.Gaps = append(l.Gaps, fmt.Sprintf("in chain %s: %s", c.ID, fork))
		}
		for _, s := range usable {
			cj.End = s.Info.EndPos.Format(sd.Engine)
			if s.Info.EndTime.After(cj.LastCommit) {
				cj.LastCommit = s.Info.EndTime
			}
		}
		l.Chains = append(l.Chains, cj)
	}
	for _, b := range idx.Backups {
		bj := backupJSON{ID: b.ID.String(), Parts: len(b.Parts)}
		for _, p := range b.Parts {
			bj.Stored += p.Size
		}
		bj.Complete, _ = b.Complete()
		if m := b.Manifest; m != nil {
			bj.Pos, bj.GTID, bj.Time, bj.Bytes = m.Pos.Native, m.GTID, m.Time, m.Bytes
		} else {
			l.Notes = append(l.Notes, fmt.Sprintf("base backup %s is incomplete (no manifest) and is never used", b.ID))
		}
		l.Backups = append(l.Backups, bj)
	}
	for _, m := range pitr.MissingObjects(idx) {
		if m.Kind != pitr.MissingManifest { // a backup without one is incomplete: noted below
			l.Missing = append(l.Missing, m.What)
		}
	}
	for _, w := range pitr.Windows(idx) {
		l.Windows = append(l.Windows, windowJSON{Chain: w.Chain.ID.String(), From: w.Start, To: w.End})
	}
	return l
}

func printListing(g *globals, store string, all []listing) {
	p := func(format string, args ...any) { fmt.Fprintf(g.stdout, format+"\n", args...) }
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02T15:04:05.999999Z")
	}
	if len(all) == 0 {
		p("%s holds no archive", store)
	}
	for _, l := range all {
		p("source %s (%s %s) in %s", l.Source, l.Engine, l.ID, store)
		p("  restorable:")
		if len(l.Windows) == 0 {
			p("    nothing yet: no complete base backup")
		}
		for _, w := range l.Windows {
			p("    %s .. %s  (chain %s)", ts(w.From), ts(w.To), w.Chain)
		}
		p("  chains:")
		for _, c := range l.Chains {
			p("    %s  from %s (%s), %d segments, archived up to %s, newest commit %s", c.Chain, c.Start, c.Reason, c.Segments, c.End, ts(c.LastCommit))
		}
		p("  base backups:")
		for _, b := range l.Backups {
			state := "complete"
			if !b.Complete {
				state = "INCOMPLETE"
			}
			p("    %s  at %s%s (%s), %d parts, %d bytes stored, %s", b.ID, b.Pos, gtidNote(b.GTID), ts(b.Time), b.Parts, b.Stored, state)
		}
		for _, gp := range l.Gaps {
			p("  GAP %s", gp)
		}
		for _, m := range l.Missing {
			p("  MISSING %s", m)
		}
		for _, n := range l.Notes {
			p("  note: %s", n)
		}
	}
}

// gtidNote writes a GTID position after a binlog position, or nothing.
func gtidNote(gtid string) string {
	if gtid == "" {
		return ""
	}
	return " (GTID " + gtid + ")"
}
