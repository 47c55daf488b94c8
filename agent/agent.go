// Package agent is the long-running rxvault process: it connects a
// source's change stream to a shipper, keeps it running through
// disconnects, starts a new chain (and base backup) when the stream is
// lost, and takes base backups on schedule. It is engine-agnostic: cmd
// wires in the engine's capture.Source.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/rxvault/rxvault/archive"
	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/internal/logs"
	"github.com/rxvault/rxvault/internal/monitor"
	"github.com/rxvault/rxvault/internal/store"
	"github.com/rxvault/rxvault/segment"
	"github.com/rxvault/rxvault/shipper"
)

// Config configures an Agent.
type Config struct {
	Source capture.Source
	// Shipper is the shipper configuration minus what the source decides
	// (engine, source id, spool directory, OnDurable).
	Shipper shipper.Config
	// SpoolRoot holds one spool directory per source.
	SpoolRoot string
	// BackupInterval is the base backup schedule; 0 takes base backups
	// only when a chain starts.
	BackupInterval time.Duration
	// Slot names the source's slot in chain markers.
	Slot string
	// StopTimeout bounds the final flush when the agent is asked to stop.
	StopTimeout time.Duration
	// VerifyInterval is how often the agent reads back the segments it
	// shipped (structure, digest, links; no key); 0 disables it.
	VerifyInterval time.Duration
	// Report, if set, receives the agent's state about once a second
	// (for the monitoring endpoint).
	Report func(monitor.State)
	// Logger receives the agent's logs, tagged component=agent; nil
	// discards them. It is also the shipper's when Shipper.Logger is nil.
	Logger *slog.Logger
}

// Agent runs the pipeline. Create with New, then Run.
type Agent struct {
	cfg Config
	log *slog.Logger

	backupMu sync.Mutex // one base backup at a time

	mu          sync.Mutex // guards what the reporter reads
	sh          *shipper.Shipper
	id          capture.Identity
	sourceUp    bool
	sourceSince time.Time
	sourceErr   string
	recovery    time.Time // newest durable commit time seen
	lastBackup  time.Time
	chain       string
	gaps        int
	lastGap     string

	lastVerify        time.Time
	verifyProblems    int
	lastVerifyProblem string
	verifyFailing     []string // per store: the problem its last read-back found, or ""
}

// New returns an agent.
func New(cfg Config) *Agent {
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = 30 * time.Second
	}
	if len(cfg.Shipper.Stats) != len(cfg.Shipper.Stores) {
		cfg.Shipper.Stats = make([]*shipper.StoreStats, len(cfg.Shipper.Stores))
		for i := range cfg.Shipper.Stats {
			cfg.Shipper.Stats[i] = &shipper.StoreStats{}
		}
	}
	return &Agent{cfg: cfg, log: logs.For(cfg.Logger, "agent"), verifyFailing: make([]string, len(cfg.Shipper.Stores))}
}

// Run captures and ships until ctx ends. Disconnects and transient errors
// are retried with capped backoff; a lost stream starts a new chain. It
// returns nil when ctx ends (after a bounded final flush), or an error
// that retrying cannot fix (a refused setup, a conflicting archive).
func (a *Agent) Run(ctx context.Context) error {
	if a.cfg.Report != nil {
		var wg sync.WaitGroup
		rctx, stop := context.WithCancel(ctx)
		wg.Go(func() { a.report(rctx) })
		defer wg.Wait()
		defer stop()
	}
	backoff := time.Second
	lost := ""       // why the last stream was lost, for the next chain's reason
	waiting := false // the last session waited for a store
	for ctx.Err() == nil {
		started := time.Now()
		err := a.session(ctx, &lost)
		var sw *storeWait
		if errors.As(err, &sw) && ctx.Err() == nil {
			// The source is fine; the archive's state cannot be read.
			// Wait for the store, as a running agent rides out an outage.
			if !waiting {
				a.log.Warn("a store does not answer, and the spool cannot say where the archive stands: capture waits for the store; retrying", "err", sw.err)
			} else {
				a.log.Debug("still waiting for a store", "err", sw.err)
			}
			waiting = true
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(5 * time.Second):
			}
			continue
		}
		waiting = false
		if err != nil && ctx.Err() == nil {
			a.setSource(false, err)
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			continue
		case errors.Is(err, capture.ErrStreamLost):
			a.log.Error("GAP: the change stream was lost; starting a new chain with a new base backup", "err", err)
			lost = err.Error()
			if sl := (*capture.StreamLostError)(nil); errors.As(err, &sl) {
				lost = sl.Error()
			}
			backoff = time.Second
			continue
		case capture.IsPermanent(err), errors.Is(err, shipper.ErrConflict):
			return err
		}
		if time.Since(started) > time.Minute {
			backoff = time.Second
		}
		a.log.Warn("capture stopped; reconnecting", "in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
	return nil
}

// session runs one connection of the stream, until it fails or ctx ends.
// *lost, if not empty, is why the previous stream was lost: it goes to
// the archive's decision, and is cleared once that is made.
func (a *Agent) session(ctx context.Context, lost *string) error {
	r, err := a.cfg.Source.Open(ctx)
	if err != nil {
		return fmt.Errorf("open source: %w", err)
	}
	defer r.Close()
	id := r.Identity()
	a.mu.Lock()
	a.id = id
	a.mu.Unlock()
	cfg := a.cfg.Shipper
	cfg.Engine, cfg.SourceID = id.Engine, id.SourceID
	cfg.SpoolDir = filepath.Join(a.cfg.SpoolRoot, archive.SourceDir(id.Engine, id.SourceID))
	cfg.OnDurable = r.Acknowledge
	if cfg.Logger == nil {
		cfg.Logger = a.cfg.Logger
	}
	start := shipper.StreamStart{Created: r.SlotCreated(), Pos: r.StartPos(), Slot: a.cfg.Slot, Lost: *lost}
	if rw, ok := r.(capture.Rewinder); ok {
		start.Rewind = rw.Rewind
	}
	a.setSource(true, nil)
	d, err := shipper.Resume(ctx, cfg, start)
	if err != nil {
		if store.IsTransient(err) {
			return &storeWait{err: err}
		}
		return fmt.Errorf("resume archive: %w", err)
	}
	*lost = ""
	switch {
	case d.Offline:
		a.log.Warn("the first store does not answer: continuing the chain from where the spool says it stands; segments wait in the spool until the stores answer",
			"chain", d.Tip.Chain.String(), "seq", d.Tip.Seq, "resume", r.StartPos().Format(id.Engine))
	case d.New:
		log, msg := a.log.Info, "new chain"
		if d.Marker.Gap {
			log, msg = a.log.Error, "GAP in the archive: starting a new chain; times between the previous chain's end and the new base backup cannot be restored"
		}
		log(msg, "chain", d.Marker.Chain, "start", d.Marker.Start.Native, "reason", d.Marker.Reason, "gap", d.Marker.Gap)
	default:
		a.log.Info("continuing chain", "chain", d.Tip.Chain.String(), "seq", d.Tip.Seq, "resume", r.StartPos().Format(id.Engine))
	}
	sh, err := shipper.New(cfg, d.Tip)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.sh, a.chain = sh, d.Tip.Chain.String()
	if d.New && d.Marker.Gap {
		a.gaps++
		a.lastGap = d.Marker.Reason
	}
	a.mu.Unlock()
	defer func() {
		st := sh.Stats()
		a.mu.Lock()
		if st.DurableTime.After(a.recovery) {
			a.recovery = st.DurableTime
		}
		a.sh = nil
		a.mu.Unlock()
	}()

	// The reader stops when ctx ends; the shipper outlives it long
	// enough to ship what is open.
	readCtx, stopRead := context.WithCancel(ctx)
	defer stopRead()
	shipCtx, stopShip := context.WithCancel(context.Background())
	defer stopShip()
	var wg sync.WaitGroup
	var shipRunErr error
	wg.Go(func() {
		shipRunErr = sh.Run(shipCtx)
		stopRead() // a failed shipper ends the session
	})
	wg.Go(func() { a.schedule(readCtx, cfg, d) })
	wg.Go(func() { a.verifyLoop(readCtx, cfg, d.Tip.Chain) })
	for _, i := range d.Unregistered {
		wg.Go(func() { a.register(readCtx, cfg, i) })
	}
	readErr := r.Run(readCtx, sh)
	stopRead()
	// What the reader delivered is shipped before the session ends when
	// the agent stops, and when the stream is lost: the source cannot
	// send those transactions again, and the chain they end is kept up
	// to them. After other errors the source re-sends them.
	if lostStream := errors.Is(readErr, capture.ErrStreamLost); ctx.Err() != nil || lostStream {
		fctx, fcancel := context.WithTimeout(context.Background(), a.cfg.StopTimeout)
		if err := sh.Flush(fctx); err != nil {
			why := "the source re-sends what was not stored"
			if lostStream {
				why = "sealed segments wait in the spool, and the next session uploads them"
			}
			a.log.Warn("final flush incomplete; "+why, "err", err)
		}
		fcancel()
	}
	stopShip()
	wg.Wait()
	if shipRunErr != nil && !errors.Is(shipRunErr, context.Canceled) {
		return shipRunErr
	}
	if ctx.Err() != nil {
		return nil
	}
	return readErr
}

// schedule takes a base backup when a chain starts, then every
// BackupInterval after the newest backup in the archive.
func (a *Agent) schedule(ctx context.Context, cfg shipper.Config, d shipper.Decision) {
	next := time.Now()
	if !d.New {
		last, err := a.newestBackup(ctx, cfg)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			a.log.Warn("reading the archive's backups", "err", err)
		}
		a.mu.Lock()
		a.lastBackup = last
		a.mu.Unlock()
		switch {
		case last.IsZero():
			// No usable backup in the archive: take one now.
		case a.cfg.BackupInterval == 0:
			return
		default:
			next = last.Add(a.cfg.BackupInterval)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		// A backup holds the source's snapshot while it is stored: wait
		// for the stores first rather than dump into an outage.
		if err := a.waitStores(ctx, cfg); err != nil {
			if ctx.Err() != nil {
				return
			}
			a.log.Error("base backup failed; retrying in 5m", "err", err)
			next = time.Now().Add(5 * time.Minute)
			continue
		}
		m, err := a.Backup(ctx, cfg, d.Tip.Chain)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.log.Error("base backup failed; retrying in 5m", "err", err)
			next = time.Now().Add(5 * time.Minute)
			continue
		}
		a.mu.Lock()
		a.lastBackup = m.Finished
		a.mu.Unlock()
		if a.cfg.BackupInterval == 0 {
			return
		}
		next = time.Now().Add(a.cfg.BackupInterval)
	}
}

// newestBackup returns when the newest complete backup finished. While
// the first store does not answer it waits (a backup must not be taken
// because the archive could not be read), until ctx ends.
func (a *Agent) newestBackup(ctx context.Context, cfg shipper.Config) (time.Time, error) {
	var idx *archive.Index
	err := a.untilAnswers(ctx, "reading the archive's base backups", func() error {
		var err error
		idx, err = archive.Load(ctx, cfg.Stores[0], archive.SourceDir(cfg.Engine, cfg.SourceID))
		return err
	})
	if err != nil {
		return time.Time{}, err
	}
	var last time.Time
	for _, b := range idx.Backups {
		if ok, _ := b.Complete(); ok && b.Manifest.Finished.After(last) {
			last = b.Manifest.Finished
		}
	}
	return last, nil
}

// waitStores returns once every store answers a listing, or with the
// first permanent error, or ctx's.
func (a *Agent) waitStores(ctx context.Context, cfg shipper.Config) error {
	src := archive.SourceDir(cfg.Engine, cfg.SourceID)
	for _, st := range cfg.Stores {
		err := a.untilAnswers(ctx, "a base backup is due; waiting for store "+st.String(), func() error {
			_, err := st.List(ctx, store.ListOptions{Prefix: src + "/", Limit: 1})
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// untilAnswers calls f until it returns nil or a permanent error, or ctx
// ends, waiting between calls that fail with a transient error (a store
// that does not answer); what is logged once.
func (a *Agent) untilAnswers(ctx context.Context, what string, f func() error) error {
	backoff := 5 * time.Second
	for logged := false; ; logged = true {
		err := f()
		if err == nil || !store.IsTransient(err) || ctx.Err() != nil {
			return err
		}
		if !logged {
			a.log.Warn(what+": a store does not answer; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// register writes the source's registration to store i, which did not
// answer at start, retrying until it does or ctx ends.
func (a *Agent) register(ctx context.Context, cfg shipper.Config, i int) {
	err := a.untilAnswers(ctx, "registering the source in store "+cfg.Stores[i].String(), func() error {
		return shipper.RegisterSource(ctx, cfg, i)
	})
	if err != nil && ctx.Err() == nil {
		a.log.Error("registering the source in a store failed; it is retried at the next start", "store", cfg.Stores[i].String(), "err", err)
	}
}

// storeWait is a session that could not start because a store did not
// answer and the spool could not stand in for it.
type storeWait struct{ err error }

func (e *storeWait) Error() string { return "waiting for a store: " + e.err.Error() }
func (e *storeWait) Unwrap() error { return e.err }

// Backup takes one base backup of the source into cfg's stores.
func (a *Agent) Backup(ctx context.Context, cfg shipper.Config, chain segment.ChainID) (*archive.Manifest, error) {
	a.backupMu.Lock()
	defer a.backupMu.Unlock()
	want := capture.Identity{Engine: cfg.Engine, SourceID: cfg.SourceID}
	return TakeBackup(ctx, a.cfg.Source, cfg, a.cfg.SpoolRoot, chain, &want, a.cfg.Logger)
}

// TakeBackup dumps src and stores the dump as a base backup, passing its
// parts through the source's spool directory under spoolRoot. chain, if not
// zero, is the chain being written (recorded in the manifest); want, if
// not nil, is the source identity the dump must have. log receives its
// logs, tagged component=agent; nil discards them.
func TakeBackup(ctx context.Context, src capture.Source, cfg shipper.Config, spoolRoot string, chain segment.ChainID, want *capture.Identity, log *slog.Logger) (*archive.Manifest, error) {
	log = logs.For(log, "agent")
	log.Info("base backup starting")
	d, err := src.Dump(ctx)
	if err != nil {
		return nil, fmt.Errorf("dump: %w", err)
	}
	id := d.Identity()
	if want != nil && id != *want {
		d.Close()
		return nil, fmt.Errorf("dump: source is %s %s, the stream's is %s %s", id.Engine, id.SourceID, want.Engine, want.SourceID)
	}
	cfg.Engine, cfg.SourceID = id.Engine, id.SourceID
	cfg.SpoolDir = filepath.Join(spoolRoot, archive.SourceDir(id.Engine, id.SourceID))
	m, err := shipper.Backup(ctx, cfg, d, shipper.BackupOptions{Tool: d.Tool(), GTID: d.GTID(), DumpFormat: d.Format(), Chain: chain})
	if cerr := d.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("dump: %w", cerr)
	}
	if err != nil {
		return nil, err
	}
	log.Info("base backup stored", "id", m.ID, "pos", m.Pos.Native, "gtid", m.GTID, "time", m.Time, "parts", m.Parts, "bytes", m.Bytes)
	return m, nil
}
