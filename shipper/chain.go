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
}

// Resume decides whether the stream continues the archive's newest chain
// or starts a new one, and returns the tip to continue from. A new chain
// starts when the source's slot was just created (unless start.Rewind
// takes the stream back to the chain's end), when the archive has no
// chain, or when the slot stands past the chain's tip (something
// acknowledged what the archive does not hold): the first with a chain
// before it and the last are gaps, and the marker says so. Resume registers the source and writes a new chain's
// marker to every store.
func Resume(ctx context.Context, cfg Config, start StreamStart) (Decision, error) {
	src := archive.SourceDir(cfg.Engine, cfg.SourceID)
	if err := putDoc(ctx, cfg.Stores, archive.SourceName(src), &archive.SourceDoc{Dir: src, Engine: cfg.Engine.String(), SourceID: cfg.SourceID}); err != nil {
		return Decision{}, err
	}
	idx, err := archive.Load(ctx, cfg.Stores[0], src)
	if err != nil {
		return Decision{}, err
	}
	var latest *archive.Chain
	for _, c := range idx.Chains {
		if c.Marker != nil {
			latest = c
		}
	}
	anchor := "replication slot"
	if cfg.Engine == segment.EngineMySQL || cfg.Engine == segment.EngineMariaDB {
		anchor = "saved binlog position"
	}
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
			tip, err := chainTip(ctx, cfg.Stores, src, latest)
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
		tip, err := chainTip(ctx, cfg.Stores, src, latest)
		if err != nil {
			return Decision{}, err
		}
		if start.Pos.Compare(tip.EndPos) <= 0 {
			return Decision{Tip: tip}, nil
		}
		reason, gap = fmt.Sprintf("the %s resumes at %s, past the archive's end %s: transactions in between were never archived",
			anchor, start.Pos.Format(cfg.Engine), tip.EndPos.Format(cfg.Engine)), true
	}
	id, err := archive.NewID(cfg.now())
	if err != nil {
		return Decision{}, err
	}
	m := &archive.ChainMarker{
		Chain: id.String(), Engine: cfg.Engine.String(), SourceID: cfg.SourceID,
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

// chainTip finds a chain's last segment across the stores (the furthest
// any store has) and reads its digest.
func chainTip(ctx context.Context, stores []store.Store, src string, c *archive.Chain) (Tip, error) {
	start, _, err := c.Start()
	if err != nil {
		return Tip{}, err
	}
	tip := Tip{Chain: c.ID, EndPos: start}
	var from store.Store
	var name string
	for _, st := range stores {
		idx, err := archive.Load(ctx, st, src)
		if err != nil {
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
