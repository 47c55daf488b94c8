package segment_test

import (
	"errors"
	"io"
	"os"
	"reflect"
	"testing"

	"github.com/rxvault/rxvault/segment"
	"github.com/rxvault/rxvault/segment/segtest"
)

func TestSpillRoundTrip(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(map[bool]string{false: "sealed", true: "compressed"}[compress], func(t *testing.T) { spillRoundTrip(t, compress) })
	}
}

func spillRoundTrip(t *testing.T, compress bool) {
	dir := t.TempDir()
	s, err := segment.NewSpill(dir, compress)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("spill left %d directory entries: it must be unlinked at once", len(entries))
	}
	c := segtest.NewCorpus(8)
	loose := c.Txn().Changes // changes of a transaction not yet committed
	for i := range loose {
		if err := s.Change(uint64(100+i), &loose[i]); err != nil {
			t.Fatal(err)
		}
	}
	txns := c.Txns(2000)
	var want segment.Tally
	for i := range txns {
		if err := s.Begin(txns[i].TxnInfo); err != nil {
			t.Fatal(err)
		}
		for j := range txns[i].Changes {
			if err := s.Change(0, &txns[i].Changes[j]); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := want.Add(txns[i].TxnInfo, uint64(len(txns[i].Changes))); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Tally(); !reflect.DeepEqual(got, want) {
		t.Errorf("tally %+v, want %+v", got, want)
	}
	if s.Size() == 0 {
		t.Error("size 0 after writing")
	}
	r, err := s.Reader()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := s.Begin(txns[0].TxnInfo); err == nil {
		t.Error("spill accepted a write after Reader")
	}
	var gotLoose []segment.Change
	var tags []uint64
	var got []segment.Txn
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		switch rec.Kind {
		case segment.SpillBegin:
			got = append(got, segment.Txn{TxnInfo: *rec.Info})
		case segment.SpillChange:
			if len(got) == 0 {
				gotLoose = append(gotLoose, cloneChange(rec.Change))
				tags = append(tags, rec.Tag)
			} else {
				if rec.Tag != 0 {
					t.Errorf("tag %d on an untagged change", rec.Tag)
				}
				got[len(got)-1].Changes = append(got[len(got)-1].Changes, cloneChange(rec.Change))
			}
		case segment.SpillCommit:
		}
	}
	if !reflect.DeepEqual(got, normalize(txns)) {
		t.Error("spilled transactions differ after reading back")
	}
	if !reflect.DeepEqual(gotLoose, normalize([]segment.Txn{{Changes: loose}})[0].Changes) {
		t.Error("loose changes differ")
	}
	for i, tag := range tags {
		if tag != uint64(100+i) {
			t.Errorf("loose change %d has tag %d", i, tag)
		}
	}
}

func cloneChange(c *segment.Change) segment.Change {
	out := *c
	cp := func(vs []segment.Value) []segment.Value {
		if vs == nil {
			return nil
		}
		o := make([]segment.Value, len(vs))
		for i, v := range vs {
			o[i] = segment.Value{Kind: v.Kind}
			if v.Data != nil {
				o[i].Data = append([]byte{}, v.Data...)
			}
		}
		return o
	}
	out.Old, out.New = cp(c.Old), cp(c.New)
	out.Truncated = append([]*segment.Relation(nil), c.Truncated...)
	if c.Content != nil {
		out.Content = append([]byte{}, c.Content...)
	}
	return out
}

func TestSpillEmpty(t *testing.T) {
	s, err := segment.NewSpill(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.Reader()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("empty spill: %v, want io.EOF", err)
	}
}

// TestSpillConstantMemory writes 128 MiB through a spill and reads it back
// with a bounded heap.
func TestSpillConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 128 MiB")
	}
	s, err := segment.NewSpill(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	value := make([]byte, 64<<10)
	for i := range value {
		value[i] = byte(i * 31 >> 3)
	}
	row := make([]segment.Value, len(segtest.Fills.Columns))
	row[0] = segment.TextValue("1")
	row[7] = segment.Value{Kind: segment.Binary, Data: value}
	ch := segment.Change{Op: segment.OpInsert, Rel: segtest.Fills, New: row}
	var ms runtimeStats
	var peak uint64
	for i := range 2048 {
		if err := s.Change(7, &ch); err != nil {
			t.Fatal(err)
		}
		if i%256 == 0 {
			peak = max(peak, ms.heapInUse())
		}
	}
	r, err := s.Reader()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if rec.Kind == segment.SpillChange {
			n++
			if n%256 == 0 {
				peak = max(peak, ms.heapInUse())
			}
		}
	}
	if n != 2048 {
		t.Fatalf("read %d changes, wrote 2048", n)
	}
	if peak > 32<<20 {
		t.Errorf("heap peaked at %d MiB spilling 128 MiB", peak>>20)
	}
}
