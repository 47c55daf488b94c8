package archive

import (
	"fmt"
	"time"

	"github.com/rxvault/rxvault/segment"
)

// Usable returns the chain's segments that follow each other from sequence
// 1 without a hole or a duplicate, and a description of what stops them
// ("" when every segment is usable). Segments after a hole cannot be
// replayed: the transactions in the hole are unknown.
func (c *Chain) Usable() ([]Segment, string) {
	for i, s := range c.Segments {
		want := uint64(i + 1)
		switch {
		case s.Info.Seq == want:
		case s.Info.Seq < want:
			return c.Segments[:i-1], fmt.Sprintf("segment %d appears twice: the chain forks (two writers?)", s.Info.Seq)
		default:
			return c.Segments[:i], fmt.Sprintf("segments %d to %d are missing", want, s.Info.Seq-1)
		}
	}
	return c.Segments, ""
}

// Start returns the position and agent time from which the chain holds
// every transaction, from its marker.
func (c *Chain) Start() (segment.Position, time.Time, error) {
	if c.Marker == nil {
		return segment.Position{}, time.Time{}, fmt.Errorf("chain %s has no marker", c.ID)
	}
	p, err := c.Marker.Start.Pos()
	if err != nil {
		return p, time.Time{}, fmt.Errorf("chain %s marker: %w", c.ID, err)
	}
	return p, c.Marker.Started, nil
}

// Tip returns the last usable segment's name information, or false when
// the chain has none.
func (c *Chain) Tip() (segment.NameInfo, bool) {
	u, _ := c.Usable()
	if len(u) == 0 {
		return segment.NameInfo{}, false
	}
	return u[len(u)-1].Info, true
}

// Complete reports whether the backup can be restored: a manifest, and
// parts 1..n all present and agreeing with it. why says what is wrong.
func (b *Backup) Complete() (ok bool, why string) {
	m := b.Manifest
	if m == nil {
		return false, "no manifest: incomplete (its writer stopped before the end)"
	}
	if len(b.Parts) != m.Parts {
		return false, fmt.Sprintf("manifest lists %d parts, the store has %d", m.Parts, len(b.Parts))
	}
	pos, err := m.Pos.Pos()
	if err != nil {
		return false, err.Error()
	}
	for i, p := range b.Parts {
		if p.Info.Seq != uint64(i+1) {
			return false, fmt.Sprintf("part %d missing", i+1)
		}
		if p.Info.EndPos != pos || !p.Info.EndTime.Equal(m.Time.UTC().Truncate(time.Microsecond)) {
			return false, fmt.Sprintf("part %d names position %s, manifest %s", i+1, p.Info.EndPos.String(), m.Pos.Hex)
		}
	}
	return true, ""
}

// Pos returns the backup's position (replay starts there) from its
// manifest.
func (b *Backup) Pos() (segment.Position, error) {
	if b.Manifest == nil {
		return segment.Position{}, fmt.Errorf("backup %s has no manifest", b.ID)
	}
	return b.Manifest.Pos.Pos()
}
