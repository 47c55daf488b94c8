package pitr_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rxvault/rxvault/archive"
	"github.com/rxvault/rxvault/internal/store"
	"github.com/rxvault/rxvault/pitr"
	"github.com/rxvault/rxvault/segment"
)

const src = "postgres-1-db"

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// at is t0 plus n seconds; lsn is a position.
func at(n int) time.Time            { return t0.Add(time.Duration(n) * time.Second) }
func lsn(n uint64) segment.Position { return segment.Position{Lo: n} }

// fixture builds an index from a compact description.
type fixture struct {
	t    *testing.T
	objs []store.ObjectInfo
	docs map[string][]byte
}

func newFixture(t *testing.T) *fixture { return &fixture{t: t, docs: map[string][]byte{}} }

func (f *fixture) doc(name string, d any) {
	data, err := archive.Marshal(d)
	if err != nil {
		f.t.Fatal(err)
	}
	f.objs = append(f.objs, store.ObjectInfo{Name: name})
	f.docs[name] = data
}

// chain adds a chain starting at start whose segment i (1-based) ends at
// ends[i-1] (position and, as seconds after t0, time); skip leaves holes.
func (f *fixture) chain(created int, start uint64, ends []int, skip ...uint64) segment.ChainID {
	id, _ := archive.NewID(at(created))
	f.doc(archive.ChainName(src, id), &archive.ChainMarker{Chain: id.String(), Engine: segment.EnginePostgres, SourceID: "1/db",
		Start: archive.NewPosition(segment.EnginePostgres, lsn(start)), Started: at(created)})
	prevEnd := start
	for i, e := range ends {
		seq := uint64(i + 1)
		if contains(skip, seq) {
			prevEnd = uint64(e)
			continue
		}
		info := segment.NameInfo{Chain: id, Seq: seq, FirstPos: lsn(prevEnd), EndPos: lsn(uint64(e)), FirstCommit: at(int(prevEnd)), EndTime: at(e)}
		f.objs = append(f.objs, store.ObjectInfo{Name: archive.SegmentName(src, info)})
		prevEnd = uint64(e)
	}
	return id
}

func contains(xs []uint64, x uint64) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// backup adds a complete (or, with manifest false, incomplete) backup at
// position pos taken at time pos seconds.
func (f *fixture) backup(pos int, manifest bool) segment.ChainID {
	id, _ := archive.NewID(at(pos))
	info := segment.NameInfo{Chain: id, Seq: 1, EndPos: lsn(uint64(pos)), EndTime: at(pos)}
	f.objs = append(f.objs, store.ObjectInfo{Name: archive.PartName(src, info)})
	if manifest {
		f.doc(archive.ManifestName(src, id), &archive.Manifest{ID: id.String(), Engine: segment.EnginePostgres, SourceID: "1/db", Parts: 1,
			Pos: archive.NewPosition(segment.EnginePostgres, lsn(uint64(pos))), Time: at(pos)})
	}
	return id
}

func (f *fixture) index() *archive.Index { return archive.NewIndex(src, f.objs, f.docs) }

func seqs(p *pitr.Plan) []uint64 {
	var out []uint64
	for _, s := range p.Segments {
		out = append(out, s.Info.Seq)
	}
	return out
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPlanLatest(t *testing.T) {
	f := newFixture(t)
	f.chain(0, 10, []int{20, 30, 40, 50})
	f.backup(25, true)
	p, err := pitr.MakePlan(f.index(), pitr.Point{Latest: true})
	if err != nil {
		t.Fatal(err)
	}
	// Segment 1 ends at 20, before the backup at 25: everything in it is
	// in the backup.
	if got, want := seqs(p), []uint64{2, 3, 4}; !equal(got, want) {
		t.Errorf("segments %v, want %v", got, want)
	}
	if p.BackupPos != lsn(25) {
		t.Errorf("backup position %s", p.BackupPos)
	}
}

func TestPlanTime(t *testing.T) {
	f := newFixture(t)
	f.chain(0, 10, []int{20, 30, 40, 50, 60})
	f.backup(15, true)
	b2 := f.backup(35, true)
	f.backup(45, false) // incomplete: never used
	idx := f.index()

	p, err := pitr.MakePlan(idx, pitr.Point{Time: at(47)})
	if err != nil {
		t.Fatal(err)
	}
	if p.Backup.ID != b2 {
		t.Errorf("backup %s, want the newest complete one before the time (%s)", p.Backup.ID, b2)
	}
	// From the segment holding 35 up to the first ending after 47, which
	// holds the first transaction past the point.
	if got, want := seqs(p), []uint64{3, 4}; !equal(got, want) {
		t.Errorf("segments %v, want %v", got, want)
	}
	p, err = pitr.MakePlan(idx, pitr.Point{Time: at(33)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := seqs(p), []uint64{1, 2, 3}; !equal(got, want) {
		t.Errorf("t=33: segments %v, want %v (from the backup at 15)", got, want)
	}
	p, err = pitr.MakePlan(idx, pitr.Point{Time: at(60)})
	if err != nil {
		t.Fatalf("the window's last instant: %v", err)
	}
	if got := seqs(p); got[len(got)-1] != 5 {
		t.Errorf("t=60: segments %v", got)
	}
}

func TestPlanRefusals(t *testing.T) {
	f := newFixture(t)
	f.chain(0, 10, []int{20, 30, 40})
	f.backup(25, true)
	idx := f.index()
	for _, tc := range []struct {
		p    pitr.Point
		want string
	}{
		{pitr.Point{Time: at(24)}, "before the restorable window"},
		{pitr.Point{Time: at(41)}, "after the restorable window"},
		{pitr.Point{Pos: lsn(41)}, "after the restorable window"},
		{pitr.Point{Pos: lsn(5)}, "outside the restorable windows"},
		{pitr.Point{}, "exactly one"},
		{pitr.Point{Latest: true, Time: at(30)}, "exactly one"},
	} {
		_, err := pitr.MakePlan(idx, tc.p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.p, err, tc.want)
		}
	}
	empty := newFixture(t)
	empty.chain(0, 10, []int{20})
	empty.backup(15, false)
	if _, err := pitr.MakePlan(empty.index(), pitr.Point{Latest: true}); err == nil || !strings.Contains(err.Error(), "rxvault backup") {
		t.Errorf("no complete backup: %v", err)
	}
}

// TestPlanBrokenChain: a restore to a point past a hole in a chain is
// refused, naming the hole and the newest point restorable short of it;
// that point, and earlier ones, restore.
func TestPlanBrokenChain(t *testing.T) {
	f := newFixture(t)
	f.chain(0, 10, []int{20, 30, 40, 50}, 3) // segment 3 missing
	f.backup(15, true)
	idx := f.index()
	for _, p := range []pitr.Point{{Latest: true}, {Time: at(45)}, {Time: at(35)}, {Time: at(30)}, {Pos: lsn(31)}, {Pos: lsn(45)}} {
		_, err := pitr.MakePlan(idx, p)
		if !errors.Is(err, pitr.ErrMissing) || !strings.Contains(err.Error(), "segment 3 of chain") || !strings.Contains(err.Error(), "--lsn 0/1E") {
			t.Errorf("%s, past the hole: err %v, want ErrMissing naming segment 3 and position 0/1E", p, err)
		}
	}
	for _, tc := range []struct {
		p    pitr.Point
		want []uint64
	}{
		{pitr.Point{Pos: lsn(30)}, []uint64{1, 2}},
		{pitr.Point{Time: at(29)}, []uint64{1, 2}},
		{pitr.Point{Pos: lsn(20)}, []uint64{1}},
	} {
		p, err := pitr.MakePlan(idx, tc.p)
		if err != nil {
			t.Errorf("%s, before the hole: %v", tc.p, err)
			continue
		}
		if got := seqs(p); !equal(got, tc.want) {
			t.Errorf("%s: segments %v, want %v", tc.p, got, tc.want)
		}
	}
}

// TestPlanAfterHole: a backup past a hole replays from the run after it;
// a backup before it still restores points before it.
func TestPlanAfterHole(t *testing.T) {
	f := newFixture(t)
	f.chain(0, 10, []int{20, 30, 40, 50, 60}, 2) // segment 2 missing
	b1 := f.backup(15, true)
	f.backup(35, true) // inside segment 3: what segment 2 held after 20 is unknown
	b3 := f.backup(42, true)
	idx := f.index()
	p, err := pitr.MakePlan(idx, pitr.Point{Latest: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := seqs(p), []uint64{4, 5}; p.Backup.ID != b3 || !equal(got, want) {
		t.Errorf("latest: backup %s segments %v, want %s and %v", p.Backup.ID, got, b3, want)
	}
	if p, err := pitr.MakePlan(idx, pitr.Point{Time: at(19)}); err != nil || p.Backup.ID != b1 {
		t.Errorf("t=19: %v", err)
	}
	if _, err := pitr.MakePlan(idx, pitr.Point{Time: at(38)}); !errors.Is(err, pitr.ErrMissing) {
		t.Errorf("t=38 needs segment 2 (the backup at 35 is not after segment 3's end): %v", err)
	}
	if got := len(pitr.Windows(idx)); got != 2 {
		t.Errorf("%d windows, want 2", got)
	}
}

// TestPlanMissingBackupObjects: a backup whose manifest or part is missing
// is never used; an older one replays instead and the plan says so; a
// point only it could reach is refused naming it.
func TestPlanMissingBackupObjects(t *testing.T) {
	f := newFixture(t)
	f.chain(0, 10, []int{20, 30, 40, 50})
	b1 := f.backup(15, true)
	b2 := f.backup(35, true)
	f.objs = slices.DeleteFunc(f.objs, func(o store.ObjectInfo) bool {
		return strings.HasSuffix(o.Name, ".rxseg") && strings.Contains(o.Name, b2.String())
	})
	idx := f.index()
	p, err := pitr.MakePlan(idx, pitr.Point{Latest: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.Backup.ID != b1 || len(p.Notes) != 1 || !strings.Contains(p.Notes[0], b2.String()) || !strings.Contains(p.Notes[0], "part 1 of 1 is missing") {
		t.Errorf("latest: backup %s, notes %q; want %s and a note naming %s's missing part", p.Backup.ID, p.Notes, b1, b2)
	}

	g := newFixture(t)
	g.chain(0, 10, []int{20, 30})
	g.backup(15, true)
	g.chain(100, 100, []int{110, 120})
	lost := g.backup(105, true)
	g.objs = slices.DeleteFunc(g.objs, func(o store.ObjectInfo) bool { return o.Name == archive.ManifestName(src, lost) })
	idx = g.index()
	for _, pt := range []pitr.Point{{Latest: true}, {Time: at(115)}, {Pos: lsn(115)}} {
		if _, err := pitr.MakePlan(idx, pt); !errors.Is(err, pitr.ErrMissing) || !strings.Contains(err.Error(), lost.String()) {
			t.Errorf("%s: err %v, want ErrMissing naming backup %s", pt, err, lost)
		}
	}
	if _, err := pitr.MakePlan(idx, pitr.Point{Time: at(25)}); err != nil {
		t.Errorf("t=25, in the older chain: %v", err)
	}
}

// TestPlanMissingChainDoc: a chain whose document is missing cannot be
// used; points in it and latest are refused naming it.
func TestPlanMissingChainDoc(t *testing.T) {
	f := newFixture(t)
	f.chain(0, 10, []int{20, 30})
	f.backup(12, true)
	c2 := f.chain(100, 100, []int{110, 120})
	f.backup(105, true)
	f.objs = slices.DeleteFunc(f.objs, func(o store.ObjectInfo) bool { return o.Name == archive.ChainName(src, c2) })
	idx := f.index()
	for _, pt := range []pitr.Point{{Latest: true}, {Time: at(115)}, {Pos: lsn(115)}} {
		if _, err := pitr.MakePlan(idx, pt); !errors.Is(err, pitr.ErrMissing) || !strings.Contains(err.Error(), "chain "+c2.String()+" has no chain document") {
			t.Errorf("%s: err %v, want ErrMissing naming chain %s's document", pt, err, c2)
		}
	}
	if _, err := pitr.MakePlan(idx, pitr.Point{Time: at(25)}); err != nil {
		t.Errorf("t=25, in the older chain: %v", err)
	}
}

func TestPlanTwoChains(t *testing.T) {
	f := newFixture(t)
	old := f.chain(0, 10, []int{20, 30})
	f.backup(12, true)
	f.chain(100, 100, []int{110, 120}) // after a gap: the stream was lost
	f.backup(105, true)
	idx := f.index()
	p, err := pitr.MakePlan(idx, pitr.Point{Time: at(25)})
	if err != nil {
		t.Fatal(err)
	}
	if p.Chain.ID != old {
		t.Errorf("t=25 planned on chain %s, want the old one", p.Chain.ID)
	}
	p, err = pitr.MakePlan(idx, pitr.Point{Time: at(115)})
	if err != nil || p.Chain.ID == old {
		t.Errorf("t=115: %v, chain %v", err, p)
	}
	if _, err := pitr.MakePlan(idx, pitr.Point{Time: at(60)}); err == nil || !strings.Contains(err.Error(), "gap") {
		t.Errorf("time in the gap: %v", err)
	}
	if got := len(pitr.Windows(idx)); got != 2 {
		t.Errorf("%d windows, want 2", got)
	}
}

func TestPlanPosition(t *testing.T) {
	f := newFixture(t)
	f.chain(0, 10, []int{20, 30, 40})
	f.backup(15, true)
	p, err := pitr.MakePlan(f.index(), pitr.Point{Pos: lsn(25)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := seqs(p), []uint64{1, 2}; !equal(got, want) {
		t.Errorf("segments %v, want %v", got, want)
	}
}

// TestPlanMissingChainEnd: a chain whose last segments are missing looks
// like a shorter chain, except that the next chain's document records
// where it ended: points past what remains are refused naming them.
func TestPlanMissingChainEnd(t *testing.T) {
	f := newFixture(t)
	old := f.chain(0, 10, []int{20, 30, 40, 50}, 4) // segment 4 lost from this store
	f.backup(12, true)
	c2 := f.chain(100, 100, []int{110, 120})
	f.backup(105, true)
	name := archive.ChainName(src, c2)
	m, err := archive.ParseChainMarker(f.docs[name])
	if err != nil {
		t.Fatal(err)
	}
	end := archive.NewPosition(segment.EnginePostgres, lsn(50))
	m.Previous, m.PreviousSeq, m.PreviousEnd, m.Gap = old.String(), 4, &end, true
	if f.docs[name], err = archive.Marshal(m); err != nil {
		t.Fatal(err)
	}
	idx := f.index()
	for _, pt := range []pitr.Point{{Time: at(45)}, {Time: at(40)}, {Pos: lsn(45)}} {
		if _, err := pitr.MakePlan(idx, pt); !errors.Is(err, pitr.ErrMissing) || !strings.Contains(err.Error(), "segment 4 of chain "+old.String()) {
			t.Errorf("%s: err %v, want ErrMissing naming segment 4", pt, err)
		}
	}
	for _, pt := range []pitr.Point{{Time: at(35)}, {Pos: lsn(40)}, {Latest: true}} {
		if _, err := pitr.MakePlan(idx, pt); err != nil {
			t.Errorf("%s: %v", pt, err)
		}
	}
	if _, err := pitr.MakePlan(idx, pitr.Point{Time: at(102)}); errors.Is(err, pitr.ErrMissing) || err == nil {
		t.Errorf("t=102, after the new chain started: err %v, want the gap refusal", err)
	}
}

// TestPlanBackupNotReachedYet: a complete backup that no archived segment
// reaches past yet (capture stalled after it) is named as such, not
// reported as missing.
func TestPlanBackupNotReachedYet(t *testing.T) {
	f := newFixture(t)
	f.chain(0, 10, []int{20})
	id := f.backup(25, true)
	for _, p := range []pitr.Point{{Latest: true}, {Time: at(26)}} {
		_, err := pitr.MakePlan(f.index(), p)
		if err == nil || !strings.Contains(err.Error(), id.String()+" is complete") || strings.Contains(err.Error(), "take one") {
			t.Errorf("%s: err %v, want it to name complete backup %s", p, err, id)
		}
	}
}
