package archive_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rxvault/rxvault/archive"
	"github.com/rxvault/rxvault/internal/store"
	"github.com/rxvault/rxvault/segment"
)

func TestSourceDir(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want string
	}{
		{"srv-1", "mariadb-srv-1"},
		{"a.b_c", "mariadb-a.b_c"},
	} {
		if got := archive.SourceDir(segment.EngineMariaDB, tc.id); got != tc.want {
			t.Errorf("SourceDir(%q) = %q, want %q", tc.id, got, tc.want)
		}
	}
	a := archive.SourceDir(segment.EnginePostgres, "7441/pharmacy")
	b := archive.SourceDir(segment.EnginePostgres, "7441-pharmacy")
	if a == b || !strings.HasPrefix(a, "postgres-7441-pharmacy-") {
		t.Errorf("sanitized ids must stay distinct: %q vs %q", a, b)
	}
	if err := store.ValidName(a); err != nil {
		t.Errorf("%q is not a valid object name: %v", a, err)
	}
	long := archive.SourceDir(segment.EnginePostgres, strings.Repeat("x", 300))
	if len(long) > 120 || store.ValidName(long) != nil {
		t.Errorf("long id gives %q", long)
	}
}

func TestIDsSortByTime(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, _ := archive.NewID(t0)
	b, _ := archive.NewID(t0.Add(time.Nanosecond))
	if a.String() >= b.String() {
		t.Errorf("ids do not sort by time: %s >= %s", a, b)
	}
	if got := archive.IDTime(a); !got.Equal(t0) {
		t.Errorf("IDTime = %s, want %s", got, t0)
	}
}

func segInfo(chain segment.ChainID, seq uint64, end uint64) segment.NameInfo {
	at := time.Date(2026, 3, 1, 0, 0, int(seq), 0, time.UTC)
	return segment.NameInfo{Chain: chain, Seq: seq, FirstPos: segment.Position{Lo: end - 5}, EndPos: segment.Position{Lo: end}, FirstCommit: at, EndTime: at}
}

func TestIndex(t *testing.T) {
	src := "postgres-1-db"
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	c1, _ := archive.NewID(t0)
	c2, _ := archive.NewID(t0.Add(time.Hour))
	b1, _ := archive.NewID(t0.Add(time.Minute))
	b2, _ := archive.NewID(t0.Add(2 * time.Minute))
	docs := map[string][]byte{}
	var objs []store.ObjectInfo
	add := func(name string, doc any) {
		objs = append(objs, store.ObjectInfo{Name: name, Size: 10})
		if doc != nil {
			data, err := archive.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			docs[name] = data
		}
	}
	add(archive.ChainName(src, c1), &archive.ChainMarker{Chain: c1.String(), Engine: segment.EnginePostgres, Start: archive.NewPosition(segment.EnginePostgres, segment.Position{Lo: 100})})
	add(archive.ChainName(src, c2), &archive.ChainMarker{Chain: c2.String(), Engine: segment.EnginePostgres, Gap: true, Previous: c1.String()})
	for _, seq := range []uint64{1, 2, 3, 5} { // 4 is missing
		add(archive.SegmentName(src, segInfo(c1, seq, 100+seq*10)), nil)
	}
	for _, seq := range []uint64{1, 2, 2} { // 2 twice: a fork
		add(archive.SegmentName(src, segInfo(c2, seq, 500+seq*10)), nil)
	}
	pos := segment.Position{Lo: 115}
	at := time.Date(2026, 3, 1, 0, 0, 1, 0, time.UTC)
	part := func(b segment.ChainID, seq uint64) segment.NameInfo {
		return segment.NameInfo{Chain: b, Seq: seq, EndPos: pos, EndTime: at}
	}
	add(archive.PartName(src, part(b1, 1)), nil)
	add(archive.PartName(src, part(b1, 2)), nil)
	add(archive.ManifestName(src, b1), &archive.Manifest{ID: b1.String(), Engine: segment.EnginePostgres, Parts: 2, Pos: archive.NewPosition(segment.EnginePostgres, pos), Time: at})
	add(archive.PartName(src, part(b2, 1)), nil) // no manifest: incomplete
	add(src+"/stray.txt", nil)
	add("other-src/wal/x", nil) // another source: ignored

	idx := archive.NewIndex(src, objs, docs)
	if got, want := len(idx.Chains), 2; got != want {
		t.Fatalf("%d chains, want %d", got, want)
	}
	u, why := idx.Chains[0].Usable()
	if len(u) != 3 || !strings.Contains(why, "4 to 4 are missing") {
		t.Errorf("chain 1 usable %d, %q", len(u), why)
	}
	if tip, ok := idx.Chains[0].Tip(); !ok || tip.Seq != 3 {
		t.Errorf("chain 1 tip %+v", tip)
	}
	u, why = idx.Chains[1].Usable()
	if len(u) != 1 || !strings.Contains(why, "forks") {
		t.Errorf("chain 2 usable %d, %q", len(u), why)
	}
	if start, _, err := idx.Chains[0].Start(); err != nil || start.Lo != 100 {
		t.Errorf("chain 1 start %v %v", start, err)
	}
	if got, want := len(idx.Backups), 2; got != want {
		t.Fatalf("%d backups, want %d", got, want)
	}
	if ok, why := idx.Backups[0].Complete(); !ok {
		t.Errorf("backup 1 incomplete: %s", why)
	}
	if ok, why := idx.Backups[1].Complete(); ok || !strings.Contains(why, "no manifest") {
		t.Errorf("backup 2: %v %q", ok, why)
	}
	if len(idx.Problems) != 1 || !strings.Contains(idx.Problems[0], "stray.txt") {
		t.Errorf("problems %q", idx.Problems)
	}
}

func TestDocs(t *testing.T) {
	m := &archive.Manifest{ID: "x", Engine: segment.EnginePostgres, Parts: 3, Pos: archive.NewPosition(segment.EnginePostgres, segment.Position{Lo: 0x16B3748})}
	data, err := archive.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := archive.ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := back.Pos.Pos(); p.Lo != 0x16B3748 || back.Pos.Native != "0/16B3748" {
		t.Errorf("position round trip: %+v", back.Pos)
	}
	if _, err := archive.ParseManifest([]byte(strings.Replace(string(data), `"version": 1`, `"version": 9`, 1))); err == nil || !strings.Contains(err.Error(), "upgrade") {
		t.Errorf("future version: %v", err)
	}
	if _, err := archive.ParseChainMarker(data); err == nil {
		t.Error("a manifest parsed as a chain marker")
	}
}
