package archive

import (
	"fmt"
	"strings"
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

// Present returns the chain's segments in sequence order up to a fork (a
// sequence number stored twice), holes and all, and a description of the
// fork ("" when there is none). Segments from a fork on cannot be used:
// which copy follows the chain is unknown.
func (c *Chain) Present() ([]Segment, string) {
	for i := 1; i < len(c.Segments); i++ {
		if c.Segments[i].Info.Seq == c.Segments[i-1].Info.Seq {
			return c.Segments[:i-1], fmt.Sprintf("segment %d appears twice: the chain forks (two writers?)", c.Segments[i].Info.Seq)
		}
	}
	return c.Segments, ""
}

// Hole is a run of sequence numbers missing from a chain, From to To.
type Hole struct{ From, To uint64 }

// Holes returns the runs of sequence numbers missing between sequence 1
// and the last present segment (before any fork). Only the listing is
// read: segments missing after the last one stored leave no trace here.
func (c *Chain) Holes() []Hole {
	present, _ := c.Present()
	var out []Hole
	want := uint64(1)
	for _, s := range present {
		if s.Info.Seq > want {
			out = append(out, Hole{From: want, To: s.Info.Seq - 1})
		}
		want = s.Info.Seq + 1
	}
	return out
}

// String describes the hole: "segment 7" or "segments 7 to 9".
func (h Hole) String() string {
	if h.From == h.To {
		return fmt.Sprintf("segment %d", h.From)
	}
	return fmt.Sprintf("segments %d to %d", h.From, h.To)
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
	if miss := b.MissingParts(); len(miss) > 0 {
		return false, missingParts(miss, m.Parts)
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

// MissingParts returns the numbers of the parts the backup's manifest
// lists that the store does not hold (none without a manifest).
func (b *Backup) MissingParts() []uint64 {
	if b.Manifest == nil {
		return nil
	}
	have := make(map[uint64]bool, len(b.Parts))
	for _, p := range b.Parts {
		have[p.Info.Seq] = true
	}
	var out []uint64
	for i := uint64(1); i <= uint64(b.Manifest.Parts); i++ {
		if !have[i] {
			out = append(out, i)
		}
	}
	return out
}

func missingParts(miss []uint64, of int) string {
	if len(miss) == 1 {
		return fmt.Sprintf("part %d of %d is missing", miss[0], of)
	}
	var ns []string
	for _, n := range miss {
		ns = append(ns, fmt.Sprint(n))
	}
	return fmt.Sprintf("parts %s of %d are missing", strings.Join(ns, ", "), of)
}
