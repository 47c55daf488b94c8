package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rxvault/rxvault/archive"
	"github.com/rxvault/rxvault/internal/store"
	"github.com/rxvault/rxvault/segment"
	"github.com/rxvault/rxvault/shipper"
)

// readBack tracks, per store, how far the agent has read its own segments
// back: the last verified segment of the chain and its digest.
type readBack struct {
	seq    uint64
	hdr    segment.Header
	digest segment.Digest
}

// verifyLoop reads back, every VerifyInterval, the segments of chain each
// store received since the last pass, checking structure, digest and hash
// links without a key: what the store returns is what was written.
// Problems are counted and reported per store (a store's problem stands
// until a later pass of that store finds none); the agent keeps running.
// A store that does not answer (a transient error, also while reading an
// object) is not a problem: it is down, and the next pass reads it again
// from the first segment not yet verified.
func (a *Agent) verifyLoop(ctx context.Context, cfg shipper.Config, chain segment.ChainID) {
	if a.cfg.VerifyInterval <= 0 {
		return
	}
	src := archive.SourceDir(cfg.Engine, cfg.SourceID)
	marks := make([]readBack, len(cfg.Stores))
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(a.cfg.VerifyInterval):
		}
		clean := true
		for i, st := range cfg.Stores {
			n, err := a.verifyStore(ctx, st, src, chain, &marks[i])
			if ctx.Err() != nil {
				return
			}
			switch {
			case err != nil && store.IsTransient(err):
				clean = false
				a.log.Warn("read-back verification: the store does not answer; read again at the next pass", "store", st.String(), "verified", n, "err", err)
			case err != nil:
				clean = false
				a.log.Error("read-back verification found a problem", "store", st.String(), "err", err)
				a.mu.Lock()
				a.verifyProblems++
				a.lastVerifyProblem = fmt.Sprintf("%s: %v", st, err)
				a.verifyFailing[i] = err.Error()
				a.mu.Unlock()
			default:
				a.mu.Lock()
				a.verifyFailing[i] = ""
				a.mu.Unlock()
				a.log.Debug("read-back verification", "store", st.String(), "segments", n)
			}
		}
		if clean {
			a.mu.Lock()
			a.lastVerify = time.Now()
			a.mu.Unlock()
		}
	}
}

// storeReads marks the errors of a stream read from a store that say the
// store stopped answering (a network error, a body cut short) as transient,
// hiding them from the segment reader, which would take a body cut short
// for a truncated segment.
type storeReads struct{ r io.Reader }

func (s storeReads) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && (store.IsTransient(err) || errors.Is(err, io.ErrUnexpectedEOF)) {
		// The cause's text only: wrapping it would let the segment reader
		// see io.ErrUnexpectedEOF again.
		err = store.Transient(errors.New("reading from the store: " + err.Error()))
	}
	return n, err
}

// verifyStore verifies the chain's segments after m in st and advances m.
func (a *Agent) verifyStore(ctx context.Context, st store.Store, src string, chain segment.ChainID, m *readBack) (int, error) {
	idx, err := archive.Load(ctx, st, src)
	if err != nil {
		return 0, err
	}
	var segs []archive.Segment
	for _, c := range idx.Chains {
		if c.ID == chain {
			u, why := c.Usable()
			if why != "" {
				return 0, fmt.Errorf("chain %s: %s", chain, why)
			}
			segs = u
		}
	}
	n := 0
	for _, s := range segs {
		if s.Info.Seq <= m.seq {
			continue
		}
		rc, err := st.Get(ctx, s.Name)
		if err != nil {
			return n, err
		}
		h, sum, err := segment.Verify(storeReads{rc})
		rc.Close()
		if err != nil {
			return n, fmt.Errorf("%s: %w", s.Name, err)
		}
		if h.Info() != s.Info {
			return n, fmt.Errorf("%s: header does not match its name", s.Name)
		}
		if m.seq > 0 {
			if err := segment.CheckLink(&m.hdr, m.digest, &h); err != nil {
				return n, err
			}
		}
		m.seq, m.hdr, m.digest = h.Seq, h, sum.Digest
		n++
	}
	return n, nil
}
