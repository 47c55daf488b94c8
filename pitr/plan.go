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
	return p.ID != "" && t.ID == p.ID && p.Engine.UniqueTxnIDs()
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

// ErrMissing marks a refusal because the restore point needs objects the
// archive lacks: segments missing from a chain, a base backup's part or
// manifest, a chain's document. Nothing was read from the target.
var ErrMissing = errors.New("the archive lacks objects this restore needs")

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
	// Notes says why newer base backups the point could have started
	// from are not used (a part or the manifest is missing).
	Notes []string
}

// Window is one restorable range: a run of a chain's segments with
// consecutive sequence numbers and the complete base backups it can replay
// from. A chain with a hole in its segments has a window before the hole
// and, if a backup lies after it, one after.
type Window struct {
	Chain      *archive.Chain
	Start, End time.Time        // source times: earliest usable backup, newest archived commit
	StartPos   segment.Position // the earliest usable backup's position
	EndPos     segment.Position // the stream is archived up to here
	Backups    []*archive.Backup
	Segments   []archive.Segment // the run, in sequence order
	// Last is set when nothing is known to follow the run in its chain:
	// no hole, no fork.
	Last   bool
	Broken string // why the chain's segments after the run cannot be replayed from its backups, or ""
}

// Missing is an object, or a run of objects, the archive lacks: segments
// missing between two a chain holds, a part a backup's manifest lists, the
// document of a chain whose segments remain, or a backup's manifest (which
// cannot be told apart from a backup still being written or abandoned).
type Missing struct {
	Kind   MissingKind
	What   string          // names the objects, for messages
	Chain  segment.ChainID // the chain it belongs to (a backup: the chain it was taken in), if known
	Backup segment.ChainID // the backup, for a part or a manifest
	// The restore points that may need it lie from From to To (source
	// times and positions); a zero From or To leaves that side open.
	FromTime, ToTime time.Time
	FromPos, ToPos   segment.Position
}

// MissingKind says what a Missing is.
type MissingKind int

// Kinds of Missing.
const (
	MissingSegments MissingKind = iota + 1
	MissingParts
	MissingManifest
	MissingChainDoc
)

// needs reports whether a restore to p may need m.
func (m Missing) needs(p Point) bool {
	switch {
	case !p.Time.IsZero():
		return (m.FromTime.IsZero() || !p.Time.Before(m.FromTime)) && (m.ToTime.IsZero() || !p.Time.After(m.ToTime))
	case !p.Pos.IsZero():
		return (m.FromPos.IsZero() || p.Pos.Compare(m.FromPos) >= 0) && (m.ToPos.IsZero() || p.Pos.Compare(m.ToPos) <= 0)
	}
	return false
}

// MissingObjects returns what the archive's listing proves missing, or
// lacks (a backup without a manifest), oldest chain first then backups. It
// is a pure function of the index. Segments missing after the last one a
// chain holds are found only when a newer chain's document records where
// that chain ended (documents written before rxvault recorded it do not).
func MissingObjects(idx *archive.Index) []Missing {
	var out []Missing
	type end struct {
		t time.Time
		p segment.Position
	}
	ends := make(map[segment.ChainID]end)
	for _, c := range idx.Chains {
		present, _ := c.Present()
		var endT time.Time
		var endP segment.Position
		for _, s := range present {
			endT, endP = maxTime(endT, s.Info.EndTime), maxPos(endP, s.Info.EndPos)
		}
		ends[c.ID] = end{endT, endP}
		if c.Marker == nil {
			out = append(out, Missing{Kind: MissingChainDoc, Chain: c.ID, ToTime: endT, ToPos: endP,
				What: fmt.Sprintf("chain %s has no chain document (%s is missing or unreadable), so its %d segments cannot be used",
					c.ID, archive.ChainName(idx.Source, c.ID), len(c.Segments))})
		}
		bySeq := make(map[uint64]archive.Segment, len(present))
		for _, s := range present {
			bySeq[s.Info.Seq] = s
		}
		if seq, endPos, by, started := recordedEnd(idx, c); len(present) == 0 || seq > present[len(present)-1].Info.Seq {
			if seq > 0 {
				h := archive.Hole{From: 1, To: seq}
				// What they held committed before the next chain started.
				m := Missing{Kind: MissingSegments, Chain: c.ID, ToPos: endPos, ToTime: started}
				if n := len(present); n > 0 {
					h.From = present[n-1].Info.Seq + 1
					m.FromTime, m.FromPos = present[n-1].Info.EndTime, present[n-1].Info.EndPos
				}
				m.What = fmt.Sprintf("%s of chain %s %s missing (under %s/wal/%s/; chain %s's document records that chain %s ended at segment %d)",
					h, c.ID, isAre(h.From == h.To), idx.Source, c.ID, by, c.ID, seq)
				out = append(out, m)
			}
		}
		for _, h := range c.Holes() {
			m := Missing{Kind: MissingSegments, Chain: c.ID, ToTime: endT, ToPos: endP,
				What: fmt.Sprintf("%s of chain %s %s missing (under %s/wal/%s/)", h, c.ID, isAre(h.From == h.To), idx.Source, c.ID)}
			if before, ok := bySeq[h.From-1]; ok {
				m.FromTime, m.FromPos = before.Info.EndTime, before.Info.EndPos
			}
			out = append(out, m)
		}
	}
	for _, b := range idx.Backups {
		ok, why := b.Complete()
		if ok {
			continue
		}
		m := Missing{Kind: MissingParts, Backup: b.ID, Chain: chainOf(idx, b)}
		switch {
		case b.Manifest == nil:
			m.Kind = MissingManifest
			m.What = fmt.Sprintf("base backup %s has no manifest (%s): it is incomplete (take a new one with 'rxvault backup'), or its manifest is missing", b.ID, archive.ManifestName(idx.Source, b.ID))
			if len(b.Parts) > 0 {
				m.FromTime, m.FromPos = b.Parts[0].Info.EndTime, b.Parts[0].Info.EndPos
			}
		case len(b.MissingParts()) == 0:
			continue // damaged otherwise: verify reports it
		default:
			m.What = fmt.Sprintf("base backup %s: %s (under %s/base/%s/)", b.ID, why, idx.Source, b.ID)
			m.FromTime = b.Manifest.Time
			m.FromPos, _ = b.Pos()
		}
		if e, ok := ends[m.Chain]; ok {
			m.ToTime, m.ToPos = e.t, e.p
		}
		out = append(out, m)
	}
	return out
}

// recordedEnd returns the last segment of c that a newer chain's document
// records (see archive.ChainMarker.PreviousSeq), its end position, and
// that chain and when it started; a zero seq when none does.
func recordedEnd(idx *archive.Index, c *archive.Chain) (uint64, segment.Position, segment.ChainID, time.Time) {
	var seq uint64
	var end segment.Position
	var by segment.ChainID
	var started time.Time
	for _, n := range idx.Chains {
		m := n.Marker
		if m == nil || m.Previous != c.ID.String() || m.PreviousSeq <= seq {
			continue
		}
		seq, by, started = m.PreviousSeq, n.ID, m.Started
		if m.PreviousEnd != nil {
			end, _ = m.PreviousEnd.Pos()
		}
	}
	return seq, end, by, started
}

// chainOf returns the chain a backup was taken in: the one its manifest
// names, else the newest chain created before it.
func chainOf(idx *archive.Index, b *archive.Backup) segment.ChainID {
	if b.Manifest != nil {
		if id, err := segment.ParseChainID(b.Manifest.Chain); err == nil {
			return id
		}
	}
	var out segment.ChainID
	for _, c := range idx.Chains {
		if !archive.IDTime(c.ID).After(archive.IDTime(b.ID)) {
			out = c.ID
		}
	}
	return out
}

func isAre(one bool) string {
	if one {
		return "is"
	}
	return "are"
}

// Windows returns every restorable window, oldest chain first and, within
// a chain, in stream order. A window starts at its earliest complete backup
// whose position its run covers and ends at its newest archived commit.
func Windows(idx *archive.Index) []Window {
	var out []Window
	for _, c := range idx.Chains {
		out = append(out, chainWindows(idx, c)...)
	}
	return out
}

// chainWindows splits a chain's segments into runs of consecutive
// sequence numbers. The first run, from sequence 1, holds the stream from
// the chain's start; a run after a hole holds it only from the end of its
// first segment (what the missing segments held is unknown, up to that
// end at most), so only a backup at or after that position replays from it.
func chainWindows(idx *archive.Index, c *archive.Chain) []Window {
	start, _, err := c.Start()
	if err != nil {
		return nil
	}
	present, fork := c.Present()
	endSeq, _, _, _ := recordedEnd(idx, c)
	type run struct {
		from segment.Position
		segs []archive.Segment
	}
	var runs []run
	if len(present) == 0 || present[0].Info.Seq == 1 {
		runs = append(runs, run{from: start})
	}
	for i, s := range present {
		if i == 0 && s.Info.Seq == 1 || i > 0 && s.Info.Seq == present[i-1].Info.Seq+1 {
			runs[len(runs)-1].segs = append(runs[len(runs)-1].segs, s)
			continue
		}
		runs = append(runs, run{from: maxPos(start, s.Info.EndPos), segs: []archive.Segment{s}})
	}
	var out []Window
	for j, r := range runs {
		w := Window{Chain: c, Segments: r.segs, EndPos: r.from}
		for _, s := range r.segs {
			w.End, w.EndPos = maxTime(w.End, s.Info.EndTime), maxPos(w.EndPos, s.Info.EndPos)
		}
		switch {
		case j < len(runs)-1:
			last, next := r.segs[len(r.segs)-1].Info.Seq, runs[j+1].segs[0].Info.Seq
			h := archive.Hole{From: last + 1, To: next - 1}
			w.Broken = fmt.Sprintf("%s of chain %s %s missing", h, c.ID, isAre(h.From == h.To))
		case fork != "":
			w.Broken = fork
		case endSeq > 0 && (len(r.segs) == 0 || r.segs[len(r.segs)-1].Info.Seq < endSeq):
			h := archive.Hole{From: 1, To: endSeq}
			if len(r.segs) > 0 {
				h.From = r.segs[len(r.segs)-1].Info.Seq + 1
			}
			w.Broken = fmt.Sprintf("%s of chain %s %s missing (the next chain's document records its end)", h, c.ID, isAre(h.From == h.To))
		default:
			w.Last = true
		}
		for _, b := range idx.Backups {
			if ok, _ := b.Complete(); !ok {
				continue
			}
			pos, err := b.Pos()
			if err != nil || pos.Compare(r.from) < 0 || pos.Compare(w.EndPos) > 0 {
				continue
			}
			if b.Manifest.Engine != c.Marker.Engine || b.Manifest.SourceID != c.Marker.SourceID {
				continue
			}
			w.Backups = append(w.Backups, b)
		}
		if len(w.Backups) == 0 {
			continue
		}
		first := w.Backups[0]
		w.Start = first.Manifest.Time
		w.StartPos, _ = first.Pos()
		if w.End.Before(w.Start) {
			w.End = w.Start
		}
		out = append(out, w)
	}
	return out
}

// MakePlan chooses a backup and the segments to replay to reach p. It is
// a pure function of the index: it reads nothing. It fails, with a message
// naming the restorable window, when p is outside every window or no
// complete base backup exists; and with an error wrapping ErrMissing,
// naming the objects and the newest point restorable short of them, when
// p needs objects the archive lacks. A plan never stops short of p: a
// restore to p either replays everything up to p or is refused here.
func MakePlan(idx *archive.Index, p Point) (*Plan, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	windows := Windows(idx)
	missing := MissingObjects(idx)
	if p.Latest {
		return planLatest(idx, windows, missing, p)
	}
	needed := func() []Missing {
		var out []Missing
		for _, m := range missing {
			if m.needs(p) && (p.Chain == (segment.ChainID{}) || m.Chain == p.Chain) {
				out = append(out, m)
			}
		}
		return out
	}
	if len(windows) == 0 && len(needed()) == 0 {
		return nil, noBackupErr(idx)
	}
	// Newest window first: the newest window that holds the point wins.
	for i := len(windows) - 1; i >= 0; i-- {
		w := windows[i]
		if p.Chain != (segment.ChainID{}) && w.Chain.ID != p.Chain {
			continue
		}
		b := pickBackup(w, p)
		if b == nil {
			continue
		}
		// Replay goes past the run when no segment of it ends past the
		// point.
		past := !p.Time.IsZero() && (p.Time.After(w.End) || !w.Last && !p.Time.Before(w.End)) ||
			!p.Pos.IsZero() && p.Pos.Compare(w.EndPos) > 0
		if !past {
			return planIn(idx, w, b, p, missing)
		}
		if n := needed(); len(n) > 0 {
			return nil, missingErr(p, n, windows)
		}
		if !p.Time.IsZero() && i < len(windows)-1 {
			continue // after this window's end: only the newest window may report that
		}
		return nil, afterWindow(idx, w, p)
	}
	if n := needed(); len(n) > 0 {
		return nil, missingErr(p, n, windows)
	}
	if len(windows) == 0 {
		return nil, noBackupErr(idx)
	}
	if p.Chain != (segment.ChainID{}) {
		return nil, fmt.Errorf("%s is in chain %s, which has no complete base backup at or before it: restore to a later point, or by --time", p, p.Chain)
	}
	return nil, outside(windows, p)
}

// noBackupErr says why no window exists: no complete base backup, or
// complete ones that no archived stream reaches past yet.
func noBackupErr(idx *archive.Index) error {
	var newest *archive.Backup
	for _, b := range idx.Backups {
		if ok, _ := b.Complete(); ok {
			newest = b
		}
	}
	if newest == nil {
		return fmt.Errorf("no restorable base backup for source %s: take one with 'rxvault backup' (an agent takes one when a chain starts)", idx.Source)
	}
	return fmt.Errorf("no restorable base backup for source %s: base backup %s is complete, but no archived segment of its chain reaches past its position yet: check that the agent is capturing and shipping ('rxvault status', the agent's log), then restore again", idx.Source, newest.ID)
}

// planLatest plans a restore of everything archived: the newest chain to
// its last segment.
func planLatest(idx *archive.Index, windows []Window, missing []Missing, p Point) (*Plan, error) {
	if len(idx.Chains) == 0 || len(windows) == 0 && len(missing) == 0 {
		return nil, noBackupErr(idx)
	}
	newest := idx.Chains[len(idx.Chains)-1]
	var last *Window
	for i := range windows {
		if windows[i].Chain == newest {
			last = &windows[i]
		}
	}
	if last != nil && last.Last {
		return planIn(idx, *last, last.Backups[len(last.Backups)-1], p, missing)
	}
	var needed []Missing
	for _, m := range missing {
		if m.Chain == newest.ID {
			needed = append(needed, m)
		}
	}
	if len(needed) > 0 {
		return nil, missingErr(p, needed, windows)
	}
	if last != nil {
		return nil, fmt.Errorf("latest: chain %s cannot be replayed to its end: %s; %s", newest.ID, last.Broken, reachNote(windows, p))
	}
	why := "it has no complete base backup yet"
	if m := newest.Marker; m != nil {
		why = fmt.Sprintf("it started %s (%s) and has no complete base backup within its archived stream yet", fmtTime(m.Started), m.Reason)
	}
	return nil, fmt.Errorf("latest: the newest chain %s cannot be restored: %s; %s", newest.ID, why, reachNote(windows, p))
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

// planIn plans the replay from b through w's run to p, which the caller
// checked lies within the run.
func planIn(idx *archive.Index, w Window, b *archive.Backup, p Point, missing []Missing) (*Plan, error) {
	pos, _ := b.Pos()
	plan := &Plan{
		Source: idx.Source, Engine: w.Chain.Marker.Engine, Point: p,
		Chain: w.Chain, Backup: b, BackupPos: pos, WindowStart: w.Start, WindowEnd: w.End,
	}
	for _, s := range w.Segments {
		if s.Info.EndPos.Compare(pos) <= 0 {
			continue // every transaction in it is in the backup
		}
		plan.Segments = append(plan.Segments, s)
		// The first segment holding a transaction past the point ends the
		// replay: nothing after it can be needed. A segment is complete up
		// to its end position, so one that ends at the point ends it too.
		if !p.Time.IsZero() && s.Info.EndTime.After(p.Time) {
			break
		}
		if !p.Pos.IsZero() && s.Info.EndPos.Compare(p.Pos) >= 0 {
			break
		}
	}
	for _, m := range missing {
		if m.Backup == (segment.ChainID{}) || m.Chain != w.Chain.ID || m.FromPos.Compare(pos) <= 0 || !p.Latest && !m.needs(p) {
			continue
		}
		plan.Notes = append(plan.Notes, fmt.Sprintf("%s: not used; replaying from the older base backup %s instead", m.What, b.ID))
	}
	return plan, nil
}

func afterWindow(idx *archive.Index, w Window, p Point) error {
	if !p.Time.IsZero() {
		return fmt.Errorf("time %s is after the restorable window of %s, which ends at %s (the newest archived commit%s): choose an earlier time, or latest",
			fmtTime(p.Time), idx.Source, fmtTime(w.End), brokenNote(w))
	}
	e := w.Chain.Marker.Engine
	return fmt.Errorf("position %s is after the restorable window of %s, which ends at %s%s: choose an earlier position, or latest",
		p.Pos.Format(e), idx.Source, w.EndPos.Format(e), brokenNote(w))
}

// missingErr refuses p, naming what it needs and the newest point
// restorable short of it.
func missingErr(p Point, needed []Missing, windows []Window) error {
	var whats []string
	for _, m := range needed {
		whats = append(whats, m.What)
	}
	return fmt.Errorf("restore to %s: %w: %s; %s", p, ErrMissing, strings.Join(whats, "; "), reachNote(windows, p))
}

// reachNote names the newest point restorable at or before p, and how to
// restore to it on purpose.
func reachNote(windows []Window, p Point) string {
	var best *Window
	for i := range windows {
		w := &windows[i]
		switch {
		case !p.Time.IsZero() && w.Start.After(p.Time), !p.Pos.IsZero() && w.StartPos.Compare(p.Pos) > 0:
			continue
		}
		best = w
	}
	if best == nil {
		return "no earlier point is restorable"
	}
	e := best.Chain.Marker.Engine
	return fmt.Sprintf("the newest point restorable short of them is position %s (newest commit %s, chain %s): restore up to it on purpose with --lsn %s, or bring the missing objects back (from another store?)",
		best.EndPos.Format(e), fmtTime(best.End), best.Chain.ID, best.EndPos.Format(e))
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

func maxPos(a, b segment.Position) segment.Position {
	if b.Compare(a) > 0 {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
