package shipper

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/rxvault/rxvault/archive"
	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/internal/store"
	"github.com/rxvault/rxvault/segment"
)

// StreamStart is what the source reader reports when it opens the stream.
type StreamStart struct {
	Created bool             // the reader created its slot: nothing older can be replayed from it
	Pos     segment.Position // where the stream resumes (slot confirmed flush, or consistent point)
	Slot    string
	// Rewind, if set, is offered the archive's end when Created (see
	// capture.Rewinder); true means the stream now resumes there, and the
	// chain continues.
	Rewind func(ctx context.Context, tip capture.ArchiveTip) (bool, error)
	// Lost, if set, is why the previous stream was lost (the slot or
	// saved position dropped): a new chain's marker gives it as the
	// reason.
	Lost string
}

// Decision is what Resume decided.
type Decision struct {
	Tip    Tip
	New    bool                 // a new chain starts (a base backup is needed)
	Marker *archive.ChainMarker // the new chain's marker, when New
	// Offline: the first store did not answer, and the chain continues
	// from where the spool says it stands.
	Offline bool
	// Unregistered lists the stores (by index) that did not answer when
	// the source's registration was written to them; see RegisterSource.
	Unregistered []int
}

// Resume decides whether the stream continues the archive's newest chain
// or starts a new one, and returns the tip to continue from. A new chain
// starts when the source's slot was just created (unless start.Rewind
// takes the stream back to the chain's end), when the archive has no
// chain, or when the slot stands past the chain's tip (something
// acknowledged what the archive does not hold): the first with a chain
// before it and the last are gaps, and the marker says so. Resume registers the source and writes a new chain's
// marker to every store.
//
// The archive's state comes from the first store's listing. When the first
// store does not answer (a transient error), Resume decides from the spool
// alone: if its tip file names the chain this source writes, and the
// stream resumes within that chain (the slot was not created anew and
// does not stand past the chain's end in the spool), the chain continues
// (Decision.Offline). A store after the first that does not answer is
// skipped in the same way when the spool names the chain it would be read
// for. Otherwise Resume returns an error that store.IsTransient reports:
// the caller waits for the store and calls again. A new chain is started
// only when every store answers. Stores that do not answer are marked down
// in cfg.Stats.
func Resume(ctx context.Context, cfg Config, start StreamStart) (Decision, error) {
	cfg.ensureStats()
	src := archive.SourceDir(cfg.Engine, cfg.SourceID)
	idx, err := archive.Load(ctx, cfg.Stores[0], src)
	if err != nil {
		if !store.IsTransient(err) {
			return Decision{}, err
		}
		cfg.Stats[0].Unreachable(err, cfg.now())
		return resumeOffline(cfg, start, fmt.Errorf("store %s: %w", cfg.Stores[0], err))
	}
	unregistered, err := registerSource(ctx, cfg, src)
	if err != nil {
		return Decision{}, err
	}
	d, err := resume(ctx, cfg, start, src, idx)
	d.Unregistered = unregistered
	return d, err
}

// resumeOffline decides from the spool alone, the first store being
// unreachable (cause); see Resume.
func resumeOffline(cfg Config, start StreamStart, cause error) (Decision, error) {
	tip, end, ok, err := spoolTip(cfg.SpoolDir)
	switch {
	case err != nil:
		return Decision{}, err
	case !ok:
		return Decision{}, fmt.Errorf("the spool does not say where the archive stands (a first run, or a new spool): waiting for %w", cause)
	case start.Created:
		return Decision{}, fmt.Errorf("the %s was created anew: the chain is decided from the archive: waiting for %w", cfg.Engine.Anchor(), cause)
	case start.Pos.Compare(end) > 0:
		return Decision{}, fmt.Errorf("the %s resumes at %s, past the spool's chain end %s: the chain is decided from the archive: waiting for %w",
			cfg.Engine.Anchor(), start.Pos.Format(cfg.Engine), end.Format(cfg.Engine), cause)
	}
	return Decision{Tip: tip, Offline: true}, nil
}

// resume is Resume once the first store's listing idx is read.
func resume(ctx context.Context, cfg Config, start StreamStart, src string, idx *archive.Index) (Decision, error) {
	var latest *archive.Chain
	for _, c := range idx.Chains {
		if c.Marker != nil {
			latest = c
		}
	}
	anchor := cfg.Engine.Anchor()
	reason := ""
	gap := false
	switch {
	case latest == nil && start.Created:
		reason = "first run: " + anchor + " created"
	case latest == nil:
		reason = "first run on an existing " + anchor
	case start.Created:
		reason, gap = anchor+" created anew: the previous chain cannot be continued", true
		if start.Lost != "" {
			reason += " (" + start.Lost + ")"
		}
		if start.Rewind != nil {
			tip, err := chainTip(ctx, cfg, src, latest)
			if err != nil {
				return Decision{}, err
			}
			if tip.Seq > 0 {
				ok, err := start.Rewind(ctx, capture.ArchiveTip{EndPos: tip.EndPos, LastPos: tip.LastPos, LastCommit: tip.LastCommit})
				if err != nil {
					return Decision{}, err
				}
				if ok {
					return Decision{Tip: tip}, nil
				}
			}
		}
	}
	if reason == "" {
		tip, err := chainTip(ctx, cfg, src, latest)
		if err != nil {
			return Decision{}, err
		}
		if start.Pos.Compare(tip.EndPos) <= 0 {
			return Decision{Tip: tip}, nil
		}
		reason, gap = fmt.Sprintf("the %s resumes at %s, past the archive's end %s: transactions in between were never archived",
			anchor, start.Pos.Format(cfg.Engine), tip.EndPos.Format(cfg.Engine)), true
	}
	// A new chain's marker goes to every store: check that each answers
	// first, so that a store down does not leave a marker in the others
	// (the next attempt would write another).
	for i, st := range cfg.Stores[1:] {
		if _, err := st.List(ctx, store.ListOptions{Prefix: src + "/", Limit: 1}); err != nil {
			if store.IsTransient(err) {
				cfg.Stats[i+1].Unreachable(err, cfg.now())
				return Decision{}, fmt.Errorf("a new chain starts (%s), and its marker goes to every store: waiting for store %s: %w", reason, st, err)
			}
			return Decision{}, fmt.Errorf("store %s: %w", st, err)
		}
	}
	id, err := archive.NewID(cfg.now())
	if err != nil {
		return Decision{}, err
	}
	m := &archive.ChainMarker{
		Chain: id.String(), Engine: cfg.Engine, SourceID: cfg.SourceID,
		Start: archive.NewPosition(cfg.Engine, start.Pos), Started: cfg.now().UTC(),
		Slot: start.Slot, Reason: reason, Gap: gap,
	}
	if latest != nil {
		m.Previous = latest.ID.String()
		if n := len(latest.Segments); n > 0 {
			last := latest.Segments[n-1].Info
			end := archive.NewPosition(cfg.Engine, last.EndPos)
			m.PreviousSeq, m.PreviousEnd = last.Seq, &end
		}
	}
	if err := putDoc(ctx, cfg.Stores, archive.ChainName(src, id), m); err != nil {
		return Decision{}, err
	}
	return Decision{Tip: Tip{Chain: id, EndPos: start.Pos}, New: true, Marker: m}, nil
}

// registerSource writes the source's registration to every store, and
// returns the stores that did not answer (transient errors).
func registerSource(ctx context.Context, cfg Config, src string) ([]int, error) {
	var missing []int
	for i := range cfg.Stores {
		err := RegisterSource(ctx, cfg, i)
		switch {
		case err == nil:
		case store.IsTransient(err):
			cfg.Stats[i].Unreachable(err, cfg.now())
			missing = append(missing, i)
		default:
			return nil, err
		}
	}
	return missing, nil
}

// RegisterSource writes the source's registration (sources/<src>.json) to
// store i of cfg; one already there with the same content is fine.
func RegisterSource(ctx context.Context, cfg Config, i int) error {
	src := archive.SourceDir(cfg.Engine, cfg.SourceID)
	return putDoc(ctx, cfg.Stores[i:i+1], archive.SourceName(src), &archive.SourceDoc{Dir: src, Engine: cfg.Engine, SourceID: cfg.SourceID})
}

// chainTip finds a chain's last segment across the stores (the furthest
// any store has) and reads its digest. A store after the first that does
// not answer is skipped when the spool's tip file names chain c: what
// any store holds beyond the first store is still in the spool, which
// New takes over.
func chainTip(ctx context.Context, cfg Config, src string, c *archive.Chain) (Tip, error) {
	start, _, err := c.Start()
	if err != nil {
		return Tip{}, err
	}
	tip := Tip{Chain: c.ID, EndPos: start}
	var from store.Store
	var name string
	for i, st := range cfg.Stores {
		idx, err := archive.Load(ctx, st, src)
		if err != nil {
			if i > 0 && store.IsTransient(err) {
				cfg.Stats[i].Unreachable(err, cfg.now())
				if local, ok, lerr := loadTip(cfg.SpoolDir); lerr == nil && ok && local.Chain == c.ID {
					continue
				}
				return Tip{}, fmt.Errorf("the spool does not name chain %s: its end is read from every store: waiting for store %s: %w", c.ID, st, err)
			}
			return Tip{}, err
		}
		for _, ch := range idx.Chains {
			if ch.ID != c.ID {
				continue
			}
			u, why := ch.Usable()
			if why != "" {
				return Tip{}, fmt.Errorf("chain %s in %s: %s: run rxvault verify", c.ID, st, why)
			}
			if len(u) > 0 && u[len(u)-1].Info.Seq > tip.Seq {
				last := u[len(u)-1]
				tip.Seq, tip.EndPos, from, name = last.Info.Seq, last.Info.EndPos, st, last.Name
			}
		}
	}
	if tip.Seq == 0 {
		return tip, nil
	}
	rc, err := from.Get(ctx, name)
	if err != nil {
		return Tip{}, fmt.Errorf("read chain tip: %w", err)
	}
	defer rc.Close()
	hdr, sum, err := segment.Verify(rc)
	if err != nil {
		return Tip{}, fmt.Errorf("chain tip %s: %w", name, err)
	}
	tip.Digest, tip.EndPos, tip.EndTime = sum.Digest, hdr.EndPos, hdr.EndTime
	tip.LastPos, tip.LastCommit = hdr.LastPos, hdr.LastCommit
	return tip, nil
}

// putDoc writes a JSON document to every store; one already there with the
// same bytes is fine.
func putDoc(ctx context.Context, stores []store.Store, name string, doc any) error {
	data, err := archive.Marshal(doc)
	if err != nil {
		return err
	}
	for _, st := range stores {
		err := st.Put(ctx, name, bytes.NewReader(data), int64(len(data)))
		if errors.Is(err, store.ErrExists) {
			same, cerr := store.SameContent(ctx, st, name, bytes.NewReader(data), int64(len(data)))
			if cerr != nil {
				return fmt.Errorf("write %s to %s: %w", name, st, cerr)
			}
			if !same {
				return fmt.Errorf("write %s to %s: %w", name, st, ErrConflict)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("write %s to %s: %w", name, st, err)
		}
	}
	return nil
}
