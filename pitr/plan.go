package pitr

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rxvault/rxvault/archive"
	"github.com/rxvault/rxvault/segment"
)

// Point is what a restore aims for: exactly one of Time, Pos or Latest.
//
// Time: replay, in commit order, every transaction up to the first one
// committed after Time, and stop there (PostgreSQL's own rule for
// recovery_target_time; when commit times follow commit order, as they do
// between concurrent transactions but for clock effects, this is every
// transaction committed at or before Time and none after).
//
// Pos: replay every transaction whose commit position is at or before Pos
// or, with Exclusive, before Pos.
//
// Latest: replay everything the archive holds.
type Point struct {
	Time      time.Time
	Pos       segment.Position
	Exclusive bool
	Latest    bool
	// Chain, if set, restricts the plan to that chain (FindTxn sets it to
	// the chain the transaction was found in).
	Chain segment.ChainID
	// ID, if set, is the transaction at Pos. On MySQL and MariaDB, whose
	// GTIDs are unique, replay also stops at the first transaction with
	// that id: a source that moved to another server may have re-sent it
	// (see movedSource), and FindTxn finds the newest copy.
	ID string
	// Engine, if set, is the source's engine: String writes Pos in its
	// native notation.
	Engine segment.Engine
}

// String describes the point for messages.
func (p Point) String() string {
	switch {
	case p.Latest:
		return "latest"
	case !p.Time.IsZero():
		return p.Time.UTC().Format(time.RFC3339Nano)
	}
	s := "position " + p.Pos.Format(p.Engine)
	if p.ID != "" {
		s = "transaction " + p.ID + " (" + s + ")"
	}
	if p.Exclusive {
		s = "just before " + s
	}
	return s
}

// past reports whether the transaction t lies beyond the point: replay
// stops before it.
func (p Point) past(t *segment.TxnInfo) bool {
	switch {
	case !p.Time.IsZero():
		return t.Commit.After(p.Time)
	case !p.Pos.IsZero():
		c := t.Pos.Compare(p.Pos)
		return c > 0 || c == 0 && p.Exclusive
	}
	return false
}

// isTxn reports whether t is the point's transaction by id, on an engine
// whose ids are unique (GTIDs).
func (p Point) isTxn(t *segment.TxnInfo) bool {
	return p.ID != "" && t.ID == p.ID && (p.Engine == segment.EngineMariaDB || p.Engine == segment.EngineMySQL)
}

func (p Point) check() error {
	n := 0
	if p.Latest {
		n++
	}
	if !p.Time.IsZero() {
		n++
	}
	if !p.Pos.IsZero() {
		n++
	}
	if n != 1 {
		return errors.New("restore point: give exactly one of a time, a position or latest")
	}
	if p.Exclusive && p.Pos.IsZero() {
		return errors.New("restore point: only a position or a transaction can be exclusive")
	}
	return nil
}

// Plan is what a restore will do: restore Backup, then replay Segments (of
// Chain, in order) from the backup's position up to Point.
type Plan struct {
	Source    string
	Engine    segment.Engine
	Point     Point
	Chain     *archive.Chain
	Backup    *archive.Backup
	BackupPos segment.Position
	Segments  []archive.Segment
	// Window is the range of source times this chain can restore to from
	// this backup, for messages.
	WindowStart, WindowEnd time.Time
}

// Window is the restorable range of one chain.
type Window struct {
	Chain      *archive.Chain
	Start, End time.Time        // source times: earliest usable backup, newest archived commit
	StartPos   segment.Position // the earliest usable backup's position
	EndPos     segment.Position // the stream is archived up to here
	Backups    []*archive.Backup
	Broken     string // why segments after the usable ones cannot be used, or ""
}

// Windows returns the restorable window of every chain with at least one
// usable backup, oldest chain first. A chain's window starts at its
// earliest complete backup whose position the chain covers and ends at
// its newest archived commit.
func Windows(idx *archive.Index) []Window {
	var out []Window
	for _, c := range idx.Chains {
		w, ok := window(idx, c)
		if ok {
			out = append(out, w)
		}
	}
	return out
}

func window(idx *archive.Index, c *archive.Chain) (Window, bool) {
	w := Window{Chain: c}
	start, _, err := c.Start()
	if err != nil {
		return w, false
	}
	usable, broken := c.Usable()
	w.Broken = broken
	w.EndPos = start
	for _, s := range usable {
		if s.Info.EndTime.After(w.End) {
			w.End = s.Info.EndTime
		}
		w.EndPos = maxPos(w.EndPos, s.Info.EndPos)
	}
	for _, b := range idx.Backups {
		if ok, _ := b.Complete(); !ok {
			continue
		}
		pos, err := b.Pos()
		if err != nil || pos.Compare(start) < 0 || pos.Compare(w.EndPos) > 0 {
			continue
		}
		if b.Manifest.Engine != c.Marker.Engine || b.Manifest.SourceID != c.Marker.SourceID {
			continue
		}
		w.Backups = append(w.Backups, b)
	}
	if len(w.Backups) == 0 {
		return w, false
	}
	first := w.Backups[0]
	w.Start = first.Manifest.Time
	w.StartPos, _ = first.Pos()
	if w.End.Before(w.Start) {
		w.End = w.Start
	}
	return w, true
}

// MakePlan chooses a backup and the segments to replay to reach p. It is
// a pure function of the index: it reads nothing. It fails, with a message
// naming the restorable window, when p is outside every window or no
// complete base backup exists.
func MakePlan(idx *archive.Index, p Point) (*Plan, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	windows := Windows(idx)
	if len(windows) == 0 {
		return nil, fmt.Errorf("no restorable base backup for source %s: take one with 'rxvault backup' (an agent takes one when a chain starts)", idx.Source)
	}
	// Newest chain first: the newest window that holds the point wins.
	for i := len(windows) - 1; i >= 0; i-- {
		w := windows[i]
		if p.Chain != (segment.ChainID{}) && w.Chain.ID != p.Chain {
			continue
		}
		b := pickBackup(w, p)
		if b == nil {
			continue
		}
		if !p.Time.IsZero() && p.Time.After(w.End) && i < len(windows)-1 {
			continue // after this chain's end: only the newest chain may report that
		}
		return planIn(idx, w, b, p)
	}
	if p.Chain != (segment.ChainID{}) {
		return nil, fmt.Errorf("%s is in chain %s, which has no complete base backup at or before it: restore to a later point, or by --time", p, p.Chain)
	}
	return nil, outside(windows, p)
}

// pickBackup returns the newest backup of w from which p can be reached.
func pickBackup(w Window, p Point) *archive.Backup {
	var best *archive.Backup
	for _, b := range w.Backups {
		pos, _ := b.Pos()
		switch {
		case p.Latest:
		case !p.Time.IsZero():
			if b.Manifest.Time.After(p.Time) {
				continue
			}
		default:
			if pos.Compare(p.Pos) > 0 {
				continue
			}
		}
		best = b
	}
	return best
}

func planIn(idx *archive.Index, w Window, b *archive.Backup, p Point) (*Plan, error) {
	pos, _ := b.Pos()
	plan := &Plan{
		Source: idx.Source, Engine: engineOf(w.Chain.Marker.Engine), Point: p,
		Chain: w.Chain, Backup: b, BackupPos: pos, WindowStart: w.Start, WindowEnd: w.End,
	}
	switch {
	case !p.Time.IsZero() && p.Time.After(w.End):
		return nil, fmt.Errorf("time %s is after the restorable window of %s, which ends at %s (the newest archived commit%s): choose an earlier time, or latest",
			fmtTime(p.Time), idx.Source, fmtTime(w.End), brokenNote(w))
	case !p.Pos.IsZero() && p.Pos.Compare(w.EndPos) >= 0:
		return nil, fmt.Errorf("position %s is after the restorable window of %s, which ends at %s%s: choose an earlier position, or latest",
			p.Pos.Format(plan.Engine), idx.Source, w.EndPos.Format(plan.Engine), brokenNote(w))
	}
	usable, _ := w.Chain.Usable()
	for _, s := range usable {
		if s.Info.EndPos.Compare(pos) <= 0 {
			continue // every transaction in it is in the backup
		}
		plan.Segments = append(plan.Segments, s)
		// The first segment holding a transaction past the point ends the
		// replay: nothing after it can be needed.
		if !p.Time.IsZero() && s.Info.EndTime.After(p.Time) {
			break
		}
		if !p.Pos.IsZero() && s.Info.EndPos.Compare(p.Pos) > 0 {
			break
		}
	}
	return plan, nil
}

// outside explains why no window holds p.
func outside(windows []Window, p Point) error {
	first, last := windows[0], windows[len(windows)-1]
	var ws []string
	for _, w := range windows {
		ws = append(ws, fmt.Sprintf("%s to %s", fmtTime(w.Start), fmtTime(w.End)))
	}
	switch {
	case !p.Time.IsZero() && p.Time.Before(first.Start):
		return fmt.Errorf("time %s is before the restorable window: the earliest base backup is at %s; choose a time in %s",
			fmtTime(p.Time), fmtTime(first.Start), strings.Join(ws, ", "))
	case !p.Time.IsZero():
		return fmt.Errorf("time %s is outside the restorable windows %s (the archive has a gap there): choose a time inside one",
			fmtTime(p.Time), strings.Join(ws, ", "))
	}
	return fmt.Errorf("position %s is outside the restorable windows: the earliest base backup is at %s, the archive ends at %s",
		p.Pos.Format(p.Engine), first.StartPos.Format(p.Engine), last.EndPos.Format(p.Engine))
}

func brokenNote(w Window) string {
	if w.Broken == "" {
		return ""
	}
	return "; the chain is broken after that: " + w.Broken
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func engineOf(name string) segment.Engine {
	for e := segment.EnginePostgres; e <= segment.EngineSQLServer; e++ {
		if e.String() == name {
			return e
		}
	}
	return 0
}

func maxPos(a, b segment.Position) segment.Position {
	if b.Compare(a) > 0 {
		return b
	}
	return a
}
