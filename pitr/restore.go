package pitr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rxvault/rxvault/archive"
	"github.com/rxvault/rxvault/internal/keys"
	"github.com/rxvault/rxvault/internal/store"
	"github.com/rxvault/rxvault/segment"
)

// Restorer carries out restore plans.
type Restorer struct {
	Store      store.Store // where the plan's objects are read from
	Identities []*keys.Identity
	// Logger is for the restorer's logs, tagged component=pitr; nil
	// discards them. Restore logs nothing at present: it reports through
	// its Result, its error and Progress.
	Logger *slog.Logger
	// Progress, if set, is called at most every ProgressEvery (default
	// 500ms) with the counts so far, from one goroutine at a time.
	Progress      func(Progress)
	ProgressEvery time.Duration
}

// Progress counts a restore's work so far.
type Progress struct {
	Phase      string // "verify", "base", "replay"
	Bytes      int64  // object bytes read in this phase
	TotalBytes int64  // object bytes this phase will read
	Txns       int64  // transactions replayed
}

// Result is where a restore ended.
type Result struct {
	Backup     string           // the base backup restored
	BackupPos  segment.Position // replay started here
	Txns       int64            // transactions replayed
	Changes    int64
	Skipped    int64            // transactions already in the backup or seen twice (segment overlap)
	Resent     int64            // of Skipped, those a source re-sent after it moved to another server (see ResentSkipper)
	LastCommit time.Time        // commit time of the last transaction applied (zero if none)
	LastPos    segment.Position // its commit position (the backup's position if none)
	LastID     string           // its source transaction id (GTID, xid), if it has one
}

// Restore carries out plan into target. It first verifies, without
// touching the target, that every object of the plan is intact and linked
// (digests and hash chains) and that an identity opens them; then it checks
// the target is empty, restores the base backup and replays the segments.
// If replay fails half way (a segment altered so that only decryption
// notices), the error says the target is partial.
func (r *Restorer) Restore(ctx context.Context, plan *Plan, target Target) (Result, error) {
	res := Result{Backup: plan.Backup.ID.String(), BackupPos: plan.BackupPos, LastPos: plan.BackupPos}
	if err := r.preflight(ctx, plan); err != nil {
		return res, err
	}
	if err := target.CheckEmpty(ctx); err != nil {
		return res, err
	}
	if err := r.restoreBase(ctx, plan, target); err != nil {
		return res, fmt.Errorf("restore base backup %s: %w", plan.Backup.ID, err)
	}
	if err := r.replay(ctx, plan, target, &res); err != nil {
		return res, fmt.Errorf("%w (the target holds a partial restore: drop it before trying again)", err)
	}
	if err := target.Finish(ctx); err != nil {
		return res, fmt.Errorf("finish restore: %w (the target holds a partial restore: drop it before trying again)", err)
	}
	return res, nil
}

// preflight verifies every part and segment of the plan without a key
// (structure, digest, links), and that the identities open each.
func (r *Restorer) preflight(ctx context.Context, plan *Plan) error {
	total := int64(0)
	for _, p := range plan.Backup.Parts {
		total += p.Size
	}
	for _, s := range plan.Segments {
		total += s.Size
	}
	prog := r.progress("verify", total)
	m := plan.Backup.Manifest
	var prev *segment.Header
	var prevDigest segment.Digest
	for _, p := range plan.Backup.Parts {
		h, sum, err := r.verifyObject(ctx, p, prog)
		if err != nil {
			return err
		}
		switch {
		case h.Payload != segment.PayloadBytes || h.EndPos != plan.BackupPos || h.SourceID != m.SourceID || h.Engine != m.Engine:
			return fmt.Errorf("base backup %s: part %s does not match its manifest", plan.Backup.ID, p.Name)
		case prev != nil:
			if err := segment.CheckLink(prev, prevDigest, &h); err != nil {
				return fmt.Errorf("base backup %s: %w", plan.Backup.ID, err)
			}
		}
		prev, prevDigest = &h, sum.Digest
	}
	if prevDigest.String() != m.LastDigest {
		return fmt.Errorf("base backup %s: last part's digest differs from the manifest's: parts are missing or replaced", plan.Backup.ID)
	}
	prev = nil
	if len(plan.Segments) > 0 && plan.Segments[0].Info.Seq > 1 {
		// Link the first segment to its predecessor too, so the replayed
		// range provably continues the chain.
		before, ok := segmentAt(plan.Chain, plan.Segments[0].Info.Seq-1)
		if !ok {
			return fmt.Errorf("chain %s: segment %d, before the first one replayed, is missing", plan.Chain.ID, plan.Segments[0].Info.Seq-1)
		}
		h, sum, err := r.verifyObject(ctx, before, r.progress("verify", before.Size))
		if err != nil {
			return err
		}
		prev, prevDigest = &h, sum.Digest
	}
	for _, s := range plan.Segments {
		h, sum, err := r.verifyObject(ctx, s, prog)
		if err != nil {
			return err
		}
		if h.Payload != segment.PayloadV1 || h.Info() != s.Info {
			return fmt.Errorf("segment %s: header does not match its name", s.Name)
		}
		if prev != nil {
			if err := segment.CheckLink(prev, prevDigest, &h); err != nil {
				return err
			}
		}
		prev, prevDigest = &h, sum.Digest
	}
	return nil
}

// segmentAt returns the segment of c with sequence number seq.
func segmentAt(c *archive.Chain, seq uint64) (archive.Segment, bool) {
	present, _ := c.Present()
	for _, s := range present {
		if s.Info.Seq == seq {
			return s, true
		}
	}
	return archive.Segment{}, false
}

// verifyObject reads one object: it must verify without a key, and its
// envelopes must open with one of the identities.
func (r *Restorer) verifyObject(ctx context.Context, s archive.Segment, prog *progress) (segment.Header, segment.Summary, error) {
	rc, err := r.Store.Get(ctx, s.Name)
	if err != nil {
		return segment.Header{}, segment.Summary{}, err
	}
	defer rc.Close()
	h, sum, err := segment.Verify(prog.reader(rc))
	if err != nil {
		return h, sum, fmt.Errorf("%s: %w", s.Name, err)
	}
	if err := matchIdentity(h, r.Identities); err != nil {
		return h, sum, fmt.Errorf("%s: %w", s.Name, err)
	}
	return h, sum, nil
}

// matchIdentity checks that one of ids is addressed by an envelope of h
// (the envelope itself is opened when the object is read).
func matchIdentity(h segment.Header, ids []*keys.Identity) error {
	var want, have []string
	for _, e := range h.Envelopes {
		for _, id := range ids {
			if e.KeyID == id.ID() {
				return nil
			}
		}
		want = append(want, e.KeyID.String())
	}
	for _, id := range ids {
		have = append(have, id.ID().String())
	}
	return fmt.Errorf("%w: sealed to key id %s, the identities given are %s: pass the matching --identity",
		segment.ErrWrongKey, strings.Join(want, ", "), strings.Join(have, ", "))
}

// restoreBase streams the backup's parts, decrypted and in order, into the
// target's dump loader.
func (r *Restorer) restoreBase(ctx context.Context, plan *Plan, target Target) error {
	total := int64(0)
	for _, p := range plan.Backup.Parts {
		total += p.Size
	}
	prog := r.progress("base", total)
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	var feedErr error
	wg.Go(func() {
		feedErr = r.feedParts(ctx, plan.Backup.Parts, pw, prog)
		pw.CloseWithError(feedErr)
	})
	err := target.RestoreBase(ctx, pr)
	pr.CloseWithError(errStoppedReading)
	wg.Wait()
	if feedErr != nil && !errors.Is(feedErr, errStoppedReading) {
		return feedErr // the cause; the target's error follows from it
	}
	if err == nil && feedErr != nil {
		return feedErr // the target returned before reading the whole backup
	}
	return err
}

// errStoppedReading is what the parts' feeder meets when the target stops
// reading the dump; the target's own error is then the cause.
var errStoppedReading = errors.New("the restore target stopped reading the base backup")

func (r *Restorer) feedParts(ctx context.Context, parts []archive.Segment, w io.Writer, prog *progress) error {
	for _, p := range parts {
		if err := r.copyPart(ctx, p, w, prog); err != nil {
			return err
		}
	}
	return nil
}

func (r *Restorer) copyPart(ctx context.Context, p archive.Segment, w io.Writer, prog *progress) error {
	rc, err := r.Store.Get(ctx, p.Name)
	if err != nil {
		return err
	}
	defer rc.Close()
	sr, err := segment.NewReader(prog.reader(rc), r.Identities)
	if err != nil {
		return fmt.Errorf("%s: %w", p.Name, err)
	}
	defer sr.Close()
	if _, err := io.Copy(w, sr); err != nil {
		return fmt.Errorf("%s: %w", p.Name, err)
	}
	return nil
}

// replay applies the plan's transactions in commit order, from the
// backup's position to the point, each once.
func (r *Restorer) replay(ctx context.Context, plan *Plan, target Target, res *Result) error {
	total := int64(0)
	for _, s := range plan.Segments {
		total += s.Size
	}
	prog := r.progress("replay", total)
	resent, _ := target.(ResentSkipper)
	if resent != nil {
		resent.StartReplay(plan.Engine, plan.BackupPos, plan.Backup.Manifest.GTID)
	}
	for _, s := range plan.Segments {
		done, err := r.replaySegment(ctx, s, plan, target, res, prog, resent)
		if err != nil {
			return err
		}
		if done {
			break
		}
	}
	prog.txns = res.Txns
	prog.report(true)
	return nil
}

// replaySegment applies one segment; done reports that the point was
// reached.
func (r *Restorer) replaySegment(ctx context.Context, s archive.Segment, plan *Plan, target Target, res *Result, prog *progress, resent ResentSkipper) (bool, error) {
	rc, err := r.Store.Get(ctx, s.Name)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	sr, err := segment.NewReader(prog.reader(rc), r.Identities)
	if err != nil {
		return false, fmt.Errorf("%s: %w", s.Name, err)
	}
	defer sr.Close()
	p := plan.Point
	for {
		info, err := sr.Next()
		if errors.Is(err, io.EOF) {
			return false, nil
		} else if err != nil {
			return false, fmt.Errorf("%s: %w", s.Name, err)
		}
		if info.Pos.Compare(plan.BackupPos) < 0 || (res.Txns > 0 && info.Pos.Compare(res.LastPos) <= 0) {
			res.Skipped++
			continue
		}
		if p.past(info) || p.Exclusive && p.isTxn(info) {
			return true, nil
		}
		if resent != nil {
			if dup, err := resent.SkipResent(info); err != nil {
				return false, err
			} else if dup {
				res.Skipped++
				res.Resent++
				continue
			}
		}
		var n int64
		changes := func(yield func(*segment.Change, error) bool) {
			for {
				c, err := sr.Change()
				if errors.Is(err, io.EOF) {
					return
				}
				if err != nil {
					yield(nil, fmt.Errorf("%s: %w", s.Name, err))
					return
				}
				n++
				if !yield(c, nil) {
					return
				}
			}
		}
		txn := *info
		if err := target.Apply(ctx, &txn, changes); err != nil {
			return false, err // the target names the failed transaction
		}
		res.Txns++
		res.Changes += n
		res.LastCommit, res.LastPos, res.LastID = txn.Commit, txn.Pos, txn.ID
		prog.txns = res.Txns
		prog.report(false)
		if p.isTxn(&txn) {
			return true, nil // the point's transaction, by id: its first copy
		}
	}
}

// progress tracks one phase's bytes and reports at intervals.
type progress struct {
	r     *Restorer
	phase string
	total int64
	bytes atomic.Int64
	txns  int64
	last  time.Time
}

func (r *Restorer) progress(phase string, total int64) *progress {
	return &progress{r: r, phase: phase, total: total}
}

func (p *progress) report(force bool) {
	if p.r.Progress == nil {
		return
	}
	every := p.r.ProgressEvery
	if every <= 0 {
		every = 500 * time.Millisecond
	}
	if now := time.Now(); force || now.Sub(p.last) >= every {
		p.last = now
		p.r.Progress(Progress{Phase: p.phase, Bytes: p.bytes.Load(), TotalBytes: p.total, Txns: p.txns})
	}
}

func (p *progress) reader(r io.Reader) io.Reader { return &countReader{r: r, p: p} }

type countReader struct {
	r io.Reader
	p *progress
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.bytes.Add(int64(n))
	c.p.report(false)
	return n, err
}
