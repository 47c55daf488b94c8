package pitr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rxvault/rxvault/archive"
	"github.com/rxvault/rxvault/internal/keys"
	"github.com/rxvault/rxvault/internal/store"
	"github.com/rxvault/rxvault/segment"
)

// Report is what Verify found in a store.
type Report struct {
	Store     string         `json:"store"`
	Decrypted bool           `json:"decrypted"` // payloads were read with an identity
	Sources   []SourceReport `json:"sources"`
	Problems  int            `json:"problems"` // total across sources
}

// SourceReport is one source's part of a Report.
type SourceReport struct {
	Source   string        `json:"source"`
	Chains   []ChainReport `json:"chains"`
	Backups  []BackupInfo  `json:"backups"`
	Problems []string      `json:"problems"` // integrity problems and gaps: verify fails on any
	Notes    []string      `json:"notes"`    // worth knowing, not failures (incomplete backups)
}

// ChainReport summarizes one chain.
type ChainReport struct {
	Chain     string    `json:"chain"`
	Start     string    `json:"start"`
	Reason    string    `json:"reason"`
	Gap       bool      `json:"gap"` // the chain starts after a gap in the stream
	Segments  int       `json:"segments"`
	Verified  int       `json:"verified"`
	Txns      uint64    `json:"transactions"`
	FirstTime time.Time `json:"first_commit,omitzero"`
	LastTime  time.Time `json:"last_commit,omitzero"`
	EndPos    string    `json:"end"`
}

// BackupInfo summarizes one base backup.
type BackupInfo struct {
	ID       string    `json:"id"`
	Complete bool      `json:"complete"`
	Pos      string    `json:"pos,omitempty"`
	Time     time.Time `json:"time,omitzero"`
	Parts    int       `json:"parts"`
	Stored   int64     `json:"stored_bytes"`
	Verified bool      `json:"verified"`
}

// Verify checks every object of every source in st: each segment's and
// part's structure and digest, every hash link, every chain's continuity,
// every backup against its manifest. With identities it also decrypts and
// decodes every payload. Gaps between chains count as problems: the
// archive cannot restore across them.
func Verify(ctx context.Context, st store.Store, ids []*keys.Identity) (*Report, error) {
	rep := &Report{Store: st.String(), Decrypted: len(ids) > 0}
	sources, err := archive.Sources(ctx, st)
	if err != nil {
		return nil, err
	}
	for _, sd := range sources {
		idx, err := archive.Load(ctx, st, sd.Dir)
		if err != nil {
			return nil, err
		}
		sr := SourceReport{Source: sd.Dir, Problems: append([]string{}, idx.Problems...)}
		for _, c := range idx.Chains {
			cr, problems := verifyChain(ctx, st, ids, c)
			sr.Chains = append(sr.Chains, cr)
			sr.Problems = append(sr.Problems, problems...)
		}
		for _, m := range MissingObjects(idx) {
			if m.Kind == MissingSegments { // parts, manifests and chain documents are reported below and by the index
				sr.Problems = append(sr.Problems, m.What)
			}
		}
		for _, b := range idx.Backups {
			bi, problems, notes := verifyBackup(ctx, st, ids, b)
			sr.Backups = append(sr.Backups, bi)
			sr.Problems = append(sr.Problems, problems...)
			sr.Notes = append(sr.Notes, notes...)
		}
		rep.Problems += len(sr.Problems)
		rep.Sources = append(rep.Sources, sr)
	}
	return rep, nil
}

func verifyChain(ctx context.Context, st store.Store, ids []*keys.Identity, c *archive.Chain) (ChainReport, []string) {
	cr := ChainReport{Chain: c.ID.String(), Segments: len(c.Segments)}
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf("chain %s: ", c.ID)+fmt.Sprintf(format, args...))
	}
	if c.Marker != nil {
		cr.Start, cr.Reason, cr.Gap = c.Marker.Start.Native, c.Marker.Reason, c.Marker.Gap
		if c.Marker.Gap {
			bad("starts after a gap in the stream (%s): the archive cannot restore to times between the previous chain's end and this chain's first base backup", c.Marker.Reason)
		}
	}
	// Every segment up to a fork is read, holes or not; the holes are
	// reported with the source's missing objects.
	present, fork := c.Present()
	if fork != "" {
		bad("%s", fork)
	}
	var prev *segment.Header
	var prevDigest segment.Digest
	for _, s := range present {
		if prev != nil && s.Info.Seq != prev.Seq+1 {
			prev = nil // after a hole: nothing to link to
		}
		h, sum, txns, err := readObject(ctx, st, ids, s)
		if err != nil {
			bad("%v", err)
			prev = nil
			continue
		}
		if h.Info() != s.Info {
			bad("%s: header does not match its name", s.Name)
		}
		if prev != nil {
			if err := segment.CheckLink(prev, prevDigest, &h); err != nil {
				bad("%v", err)
			}
		} else if s.Info.Seq == 1 && !h.PrevHash.IsZero() {
			bad("%s: first segment names a predecessor", s.Name)
		}
		prev, prevDigest = &h, sum.Digest
		cr.Verified++
		cr.Txns += txns
		if cr.FirstTime.IsZero() && !h.FirstCommit.IsZero() {
			cr.FirstTime = h.FirstCommit
		}
		if h.LastCommit.After(cr.LastTime) {
			cr.LastTime = h.LastCommit
		}
		cr.EndPos = h.EndPos.Format(h.Engine)
	}
	return cr, problems
}

func verifyBackup(ctx context.Context, st store.Store, ids []*keys.Identity, b *archive.Backup) (BackupInfo, []string, []string) {
	bi := BackupInfo{ID: b.ID.String(), Parts: len(b.Parts)}
	for _, p := range b.Parts {
		bi.Stored += p.Size
	}
	ok, why := b.Complete()
	if !ok {
		if b.Manifest == nil {
			return bi, nil, []string{fmt.Sprintf("base backup %s is incomplete (%s); it is never used", b.ID, why)}
		}
		return bi, []string{fmt.Sprintf("base backup %s: %s", b.ID, why)}, nil
	}
	bi.Complete, bi.Pos, bi.Time = true, b.Manifest.Pos.Native, b.Manifest.Time
	var problems []string
	var prev *segment.Header
	var prevDigest segment.Digest
	for _, p := range b.Parts {
		h, sum, _, err := readObject(ctx, st, ids, p)
		if err != nil {
			problems = append(problems, fmt.Sprintf("base backup %s: %v", b.ID, err))
			return bi, problems, nil
		}
		if prev != nil {
			if err := segment.CheckLink(prev, prevDigest, &h); err != nil {
				problems = append(problems, fmt.Sprintf("base backup %s: %v", b.ID, err))
			}
		}
		prev, prevDigest = &h, sum.Digest
	}
	if prevDigest.String() != b.Manifest.LastDigest {
		problems = append(problems, fmt.Sprintf("base backup %s: last part's digest differs from the manifest's", b.ID))
	}
	bi.Verified = len(problems) == 0
	return bi, problems, nil
}

// readObject reads one object: without identities it verifies structure
// and digest; with them it also decrypts and decodes every record (and
// returns the transaction count).
func readObject(ctx context.Context, st store.Store, ids []*keys.Identity, s archive.Segment) (segment.Header, segment.Summary, uint64, error) {
	rc, err := st.Get(ctx, s.Name)
	if err != nil {
		return segment.Header{}, segment.Summary{}, 0, err
	}
	defer rc.Close()
	if len(ids) == 0 {
		h, sum, err := segment.Verify(rc)
		if err != nil {
			return h, sum, 0, fmt.Errorf("%s: %w", s.Name, err)
		}
		return h, sum, h.Txns, nil
	}
	r, err := segment.NewReader(rc, ids)
	if err != nil {
		return segment.Header{}, segment.Summary{}, 0, fmt.Errorf("%s: %w", s.Name, err)
	}
	defer r.Close()
	h := r.Header()
	var n uint64
	if h.Payload == segment.PayloadBytes {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return h, segment.Summary{}, 0, fmt.Errorf("%s: %w", s.Name, err)
		}
	} else {
		for {
			if _, err := r.Next(); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return h, segment.Summary{}, 0, fmt.Errorf("%s: %w", s.Name, err)
			}
			n++
		}
	}
	return h, r.Summary(), n, nil
}
