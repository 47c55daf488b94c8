package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rxvault/rxvault/archive"
	"github.com/rxvault/rxvault/internal/config"
	"github.com/rxvault/rxvault/internal/keys"
	"github.com/rxvault/rxvault/internal/store"
	"github.com/rxvault/rxvault/pitr"
	"github.com/rxvault/rxvault/segment"
)

type restoreOptions struct {
	time       string
	lsn        string
	gtid, xid  string
	exclusive  bool
	latest     bool
	target     string
	identities []string
	source     string
	store      string
	dryRun     bool
	json       bool
}

func newRestoreCommand(g *globals) *cobra.Command {
	var opts restoreOptions
	cmd := &cobra.Command{
		Use:   "restore (--time T | --lsn POS | --gtid ID | --xid ID | --latest) --target DSN --identity FILE",
		Short: "Rebuild the database as it was at a point in time, into an empty database",
		Long: `Restore the archive into the empty database --target as of:

  --time T    an RFC 3339 time (2026-11-24T10:02:17.5Z): every transaction up to the
              first one committed after T, the rule PostgreSQL's own recovery uses
  --lsn POS   every transaction committed at or before this position (PostgreSQL:
              16/B374D848; MySQL and MariaDB: binlog file number and offset,
              000042:1234, the end_log_pos of a transaction's Xid or COMMIT in
              mariadb-binlog's output, 1/000042:1234 in epoch 1 after a failover;
              --position is the same flag)
  --gtid ID   every transaction up to and including the one with this GTID (MariaDB
              0-1-5012, MySQL 3e11fa47-71ca-11e1-9e33-c80aa9429562:23)
  --xid ID    the same for a PostgreSQL transaction id (7345)
  --latest    everything archived

--exclusive, with --lsn, --gtid or --xid, stops just before that transaction
instead: restore to just before a bad DELETE by naming its GTID. A --gtid or --xid
is looked up in the archive, newest segment first, which needs --identity even
with --dry-run; an id that recurs (an xid after wraparound) names the newest.

The plan is the newest base backup before the point plus the chain of segments
up to it; --dry-run prints it and stops. Before the target is touched, every
object of the plan is verified (digests, hash links, key ids). The target must be
empty. At the end rxvault prints the exact point reached: the last commit time
and its position.

A point that needs objects missing from the archive (a segment, a base backup's
part or manifest, a chain's document) is refused before the target is touched,
with --dry-run too, naming them and the newest point restorable short of them:
restore up to that point on purpose with --lsn. A newer base backup with a part
or its manifest missing is never used; an older one replays instead, and a note
says so.

Exit status: 0 restored; 1 failed, or refused for missing objects (a failure
after the base backup leaves the target partial, and says so); 2 bad usage, a
point outside the restorable window, a non-empty target or a wrong identity.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRestore(cmd.Context(), g, cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.time, "time", "", "restore as of this RFC 3339 time")
	f.StringVar(&opts.lsn, "lsn", "", "restore up to and including this commit position")
	f.StringVar(&opts.lsn, "position", "", "the same as --lsn (MySQL and MariaDB: binlog file number and offset, 000042:1234)")
	f.StringVar(&opts.gtid, "gtid", "", "restore up to and including the transaction with this GTID (MySQL, MariaDB)")
	f.StringVar(&opts.xid, "xid", "", "restore up to and including the transaction with this xid (PostgreSQL)")
	f.BoolVar(&opts.exclusive, "exclusive", false, "with --lsn, --gtid or --xid: stop just before that transaction")
	f.BoolVar(&opts.latest, "latest", false, "restore everything archived")
	f.StringVar(&opts.target, "target", "", "DSN of the empty database to restore into")
	f.StringArrayVar(&opts.identities, "identity", nil, "identity file (repeatable, e.g. across a key rotation)")
	f.StringVar(&opts.source, "source", "", "source to restore when the store holds several (see rxvault list)")
	f.StringVar(&opts.store, "store", "", "store URL to read (default: the first of archive.stores)")
	f.BoolVar(&opts.dryRun, "dry-run", false, "print the plan and stop")
	f.BoolVar(&opts.json, "json", false, "print the plan and result as JSON")
	return cmd
}

func runRestore(ctx context.Context, g *globals, cmd *cobra.Command, opts restoreOptions) error {
	cfg, err := g.loadConfig(cmd)
	if err != nil {
		return usage(err)
	}
	log := g.logger(cfg.Log)
	st, err := g.readStore(ctx, &cfg, opts.store, log)
	if err != nil {
		return err
	}
	src, err := pickSource(ctx, st, opts.source)
	if err != nil {
		return err
	}
	idx, err := archive.Load(ctx, st, src.Dir)
	if err != nil {
		return err
	}
	point, txnID, err := parsePoint(opts, src.Engine)
	if err != nil {
		return usage(err)
	}
	if !opts.dryRun && opts.target == "" {
		return usage(fmt.Errorf("restore needs --target DSN: an empty database to restore into (createdb it first)"))
	}
	var ids []*keys.Identity
	if !opts.dryRun || txnID != "" {
		if ids, err = loadIdentities(opts.identities); err != nil {
			return err
		}
	}
	r := &pitr.Restorer{Store: st, Identities: ids, Logger: log}
	if txnID != "" {
		if point, err = r.FindTxn(ctx, idx, txnID, opts.exclusive); err != nil {
			if errors.Is(err, pitr.ErrNoTxn) || errors.Is(err, segment.ErrWrongKey) {
				return usage(err)
			}
			return fmt.Errorf("find transaction %s: %w", txnID, err)
		}
	}
	plan, err := pitr.MakePlan(idx, point)
	if errors.Is(err, pitr.ErrMissing) {
		return err // the archive lacks objects: an integrity problem, exit 1
	} else if err != nil {
		return usage(err)
	}
	if !opts.json {
		for _, n := range plan.Notes {
			fmt.Fprintf(g.stdout, "note: %s\n", n)
		}
	}
	if opts.dryRun {
		return printPlan(g, plan, opts.json)
	}
	target, err := g.targetFor(ctx, opts.target, log)
	if err != nil {
		return err
	}
	defer target.Close(context.Background())
	if isTerminal(g.stderr) && !opts.json {
		r.Progress = progressPrinter(g)
	}
	res, err := r.Restore(ctx, plan, target)
	if isTerminal(g.stderr) && !opts.json {
		fmt.Fprintln(g.stderr)
	}
	if err != nil {
		if errorsIsRefusal(err) {
			return usage(err)
		}
		return fmt.Errorf("restore: %w", err)
	}
	if opts.json {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{
			"target": config.RedactURL(opts.target), "backup": res.Backup,
			"backup_pos": res.BackupPos.Format(plan.Engine), "transactions": res.Txns, "changes": res.Changes,
			"last_commit": res.LastCommit, "last_pos": res.LastPos.Format(plan.Engine), "last_id": res.LastID,
			"resent_skipped": res.Resent, "notes": plan.Notes,
		})
	}
	if res.Resent > 0 {
		fmt.Fprintf(g.stdout, "skipped %d transactions the source re-sent after it moved to another server\n", res.Resent)
	}
	if res.Txns == 0 {
		fmt.Fprintf(g.stdout, "restored %s to base backup %s at %s (no transaction after it up to %s)\n",
			config.RedactURL(opts.target), res.Backup, res.BackupPos.Format(plan.Engine), point)
		return nil
	}
	if res.LastID != "" {
		// A line of its own, before the summary line scripts read last.
		fmt.Fprintf(g.stdout, "last transaction replayed: %s\n", res.LastID)
	}
	fmt.Fprintf(g.stdout, "restored %s to %s: last commit %s at %s (%d transactions, %d changes replayed after base backup %s at %s)\n",
		config.RedactURL(opts.target), point, res.LastCommit.UTC().Format("2006-01-02T15:04:05.999999Z"), res.LastPos.Format(plan.Engine),
		res.Txns, res.Changes, res.Backup, res.BackupPos.Format(plan.Engine))
	return nil
}

// parsePoint reads the one restore point the flags give. For --gtid and
// --xid it returns the transaction id, which the archive must be searched
// for, instead of a point.
func parsePoint(opts restoreOptions, e segment.Engine) (pitr.Point, string, error) {
	p := pitr.Point{Engine: e, Exclusive: opts.exclusive}
	n := 0
	var id string
	if opts.time != "" {
		n++
		t, err := time.Parse(time.RFC3339Nano, opts.time)
		if err != nil {
			return p, "", fmt.Errorf("--time %q: not an RFC 3339 time; write it like 2026-11-24T10:02:17.5Z or 2026-11-24T11:02:17+01:00", opts.time)
		}
		p.Time = t
	}
	if opts.lsn != "" {
		n++
		pos, err := segment.ParsePosition(e, opts.lsn)
		if err != nil {
			return p, "", fmt.Errorf("--lsn: %w", err)
		}
		p.Pos = pos
	}
	for _, f := range []struct{ flag, value string }{{"gtid", opts.gtid}, {"xid", opts.xid}} {
		if f.value == "" {
			continue
		}
		n++
		if flag, kind := e.TxnIDFlag(); flag != f.flag {
			fix := "use --time or --lsn"
			if flag != "" {
				fix = fmt.Sprintf("name %s with --%s, or use --time", kind, flag)
			}
			return p, "", fmt.Errorf("--%s does not name a transaction of this source, which is %s: %s", f.flag, e, fix)
		}
		var err error
		if id, err = segment.ParseTxnID(e, f.value); err != nil {
			return p, "", fmt.Errorf("--%s: %w", f.flag, err)
		}
	}
	if opts.latest {
		n++
		p.Latest = true
	}
	switch {
	case n != 1:
		return p, "", fmt.Errorf("give exactly one of --time, --lsn, --gtid, --xid or --latest")
	case opts.exclusive && p.Pos.IsZero() && id == "":
		return p, "", fmt.Errorf("--exclusive goes with --lsn, --gtid or --xid: a --time point already excludes what committed after it")
	}
	return p, id, nil
}

// pickSource chooses the source to restore.
func pickSource(ctx context.Context, st store.Store, want string) (*archive.SourceDoc, error) {
	sources, err := archive.Sources(ctx, st)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range sources {
		if want == "" && len(sources) == 1 || s.Dir == want || s.SourceID == want {
			return s, nil
		}
		names = append(names, s.Dir)
	}
	switch {
	case len(sources) == 0:
		return nil, usage(fmt.Errorf("%s holds no archive: check --store and archive.stores", st))
	case want == "":
		return nil, usage(fmt.Errorf("%s holds several sources (%s): choose one with --source", st, strings.Join(names, ", ")))
	}
	return nil, usage(fmt.Errorf("no source %q in %s (it holds %s)", want, st, strings.Join(names, ", ")))
}

func printPlan(g *globals, p *pitr.Plan, asJSON bool) error {
	m := p.Backup.Manifest
	var segs []string
	var bytes int64
	for _, s := range p.Segments {
		segs = append(segs, s.Name)
		bytes += s.Size
	}
	if asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{
			"source": p.Source, "point": p.Point.String(), "chain": p.Chain.ID.String(),
			"backup": m.ID, "backup_pos": m.Pos.Native, "backup_time": m.Time,
			"segments": segs, "segment_bytes": bytes,
			"window_start": p.WindowStart, "window_end": p.WindowEnd, "notes": p.Notes,
		})
	}
	fmt.Fprintf(g.stdout, "plan for %s, restoring to %s:\n", p.Source, p.Point)
	fmt.Fprintf(g.stdout, "  base backup %s at %s (source time %s), %d parts\n", m.ID, m.Pos.Native, m.Time.UTC().Format(time.RFC3339Nano), m.Parts)
	fmt.Fprintf(g.stdout, "  then %d segments of chain %s (%d bytes):\n", len(p.Segments), p.Chain.ID, bytes)
	for _, s := range segs {
		fmt.Fprintf(g.stdout, "    %s\n", s)
	}
	fmt.Fprintf(g.stdout, "  restorable window of this chain: %s .. %s\n", p.WindowStart.UTC().Format(time.RFC3339Nano), p.WindowEnd.UTC().Format(time.RFC3339Nano))
	return nil
}

// progressPrinter renders restore progress on one terminal line.
func progressPrinter(g *globals) func(pitr.Progress) {
	start := time.Now()
	phase := ""
	return func(p pitr.Progress) {
		if p.Phase != phase {
			phase, start = p.Phase, time.Now()
		}
		eta := "?"
		if p.Bytes > 0 && p.TotalBytes > p.Bytes {
			left := time.Duration(float64(time.Since(start)) * float64(p.TotalBytes-p.Bytes) / float64(p.Bytes))
			eta = left.Round(time.Second).String()
		}
		pct := 100.0
		if p.TotalBytes > 0 {
			pct = 100 * float64(p.Bytes) / float64(p.TotalBytes)
		}
		fmt.Fprintf(g.stderr, "\r%-7s %5.1f%%  %s / %s  %d txns  ETA %s   ", p.Phase, pct, mib(p.Bytes), mib(p.TotalBytes), p.Txns, eta)
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// errorsIsRefusal reports restore refusals made before anything was
// written: a non-empty target, a wrong identity.
func errorsIsRefusal(err error) bool {
	return errors.Is(err, pitr.ErrTargetNotEmpty) || errors.Is(err, segment.ErrWrongKey)
}
