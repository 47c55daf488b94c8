package pitr_test

import (
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
	f.doc(archive.ChainName(src, id), &archive.ChainMarker{Chain: id.String(), Engine: "postgres", SourceID: "1/db",
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
		f.doc(archive.ManifestName(src, id), &archive.Manifest{ID: id.String(), Engine: "postgres", SourceID: "1/db", Parts: 1,
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
		{pitr.Point{Pos: lsn(40)}, "after the restorable window"},
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

func TestPlanBrokenChain(t *testing.T) {
	f := newFixture(t)
	f.chain(0, 10, []int{20, 30, 40, 50}, 3) // segment 3 missing
	f.backup(15, true)
	idx := f.index()
	p, err := pitr.MakePlan(idx, pitr.Point{Latest: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := seqs(p), []uint64{1, 2}; !equal(got, want) {
		t.Errorf("segments %v, want %v (stop at the hole)", got, want)
	}
	if _, err := pitr.MakePlan(idx, pitr.Point{Time: at(45)}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("time past the hole: %v", err)
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
