package segment_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"reflect"
	"testing"

	"github.com/rxvault/rxvault/internal/keys"
	"github.com/rxvault/rxvault/segment"
	"github.com/rxvault/rxvault/segment/segtest"
)

// spillModes names every spill mode, for subtests.
var spillModes = map[segment.SpillMode]string{
	segment.SpillSealed:     "sealed",
	segment.SpillCompressed: "compressed",
	segment.SpillSegment:    "segment",
}

func TestSpillRoundTrip(t *testing.T) {
	for mode, name := range spillModes {
		t.Run(name, func(t *testing.T) { spillRoundTrip(t, mode) })
	}
}

func spillRoundTrip(t *testing.T, mode segment.SpillMode) {
	dir := t.TempDir()
	s, err := segment.NewSpill(dir, mode)
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
	writeTxns(t, s, txns)
	var want segment.Tally
	for i := range txns {
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
	for mode, name := range spillModes {
		s, err := segment.NewSpill(t.TempDir(), mode)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		r, err := s.Reader()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Next(); !errors.Is(err, io.EOF) {
			t.Errorf("empty %s spill: %v, want io.EOF", name, err)
		}
	}
	if _, err := segment.NewSpill(t.TempDir(), 9); err == nil {
		t.Error("NewSpill accepted an unknown mode")
	}
}

// TestSpillConstantMemory writes 128 MiB through a spill and reads it back
// with a bounded heap.
func TestSpillConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 128 MiB")
	}
	s, err := segment.NewSpill(t.TempDir(), segment.SpillCompressed)
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

// fillSpill writes txns into a new spill of the given mode.
func fillSpill(t *testing.T, mode segment.SpillMode, txns []segment.Txn) *segment.Spill {
	t.Helper()
	s, err := segment.NewSpill(t.TempDir(), mode)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	writeTxns(t, s, txns)
	return s
}

// writeTxns writes whole transactions into s.
func writeTxns(t *testing.T, s *segment.Spill, txns []segment.Txn) {
	t.Helper()
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
	}
}

// TestWriteSpill: a spill of whole transactions is copied into a segment
// as its payload stands, which must be exactly the segment that writing
// the transactions one by one makes (same payload, so the same compressed
// size and chunks), and decode to the same transactions. A writer that
// already holds transactions takes the spill's records one by one.
func TestWriteSpill(t *testing.T) {
	txns := segtest.NewCorpus(21).Txns(12000) // several MiB
	t.Run("sealed", func(t *testing.T) { writeSpill(t, segment.SpillSealed, 64<<10, txns, true) })
	// Chunks compressed in the spill are sealed as they stand ...
	t.Run("segment", func(t *testing.T) { writeSpill(t, segment.SpillSegment, segment.DefaultChunkSize, txns, false) })
	// ... unless the segment's chunks are another size.
	t.Run("segment/other-size", func(t *testing.T) { writeSpill(t, segment.SpillSegment, 64<<10, txns, true) })
}

// writeSpill copies a spill of mode into a segment of chunkSize; compress
// says whether the writer must compress the chunks itself.
func writeSpill(t *testing.T, mode segment.SpillMode, chunkSize uint32, txns []segment.Txn, compress bool) {
	id := newIdentity(t)
	h, err := segtest.Header(testChain, 1, segment.Digest{}, txns)
	if err != nil {
		t.Fatal(err)
	}
	h.ChunkSize = chunkSize
	direct, dsum := encode(t, h, txns, id.Recipient())
	if dsum.Chunks < 3 {
		t.Fatalf("the corpus fills %d chunks of %d bytes; the test needs several", dsum.Chunks, chunkSize)
	}

	s := fillSpill(t, mode, txns)
	if tl := s.Tally(); tl.Txns != h.Txns || tl.Records != h.Records {
		t.Fatalf("spill tally %+v, header %+v", tl, h)
	}
	var buf bytes.Buffer
	w, err := segment.NewWriter(&buf, h, []*keys.Recipient{id.Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteSpill(s); err != nil {
		t.Fatal(err)
	}
	if err := w.Begin(txns[0].TxnInfo); err == nil {
		t.Fatal("the writer accepted a transaction after a copied spill")
	}
	// Begin failed the writer; copy again into a fresh one.
	buf.Reset()
	w, _ = segment.NewWriter(&buf, h, []*keys.Recipient{id.Recipient()})
	if err := w.WriteSpill(fillSpill(t, mode, txns)); err != nil {
		t.Fatal(err)
	}
	csum, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got := segment.WriterCompressed(w); got != compress {
		t.Errorf("the writer compressed chunks itself: %v, want %v", got, compress)
	}
	if csum.Size != dsum.Size || csum.Chunks != dsum.Chunks || len(direct) != buf.Len() {
		t.Errorf("copied segment: %d bytes in %d chunks; written one by one: %d bytes in %d chunks", csum.Size, csum.Chunks, dsum.Size, dsum.Chunks)
	}
	got, _, err := readAll(buf.Bytes(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, normalize(txns)) {
		t.Error("the copied segment decodes to other transactions")
	}

	// Records path: one transaction first, then the rest from a spill.
	buf.Reset()
	w, _ = segment.NewWriter(&buf, h, []*keys.Recipient{id.Recipient()})
	if err := w.WriteTxn(&txns[0]); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteSpill(fillSpill(t, mode, txns[1:])); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _, err := readAll(buf.Bytes(), id); err != nil || !reflect.DeepEqual(got, normalize(txns)) {
		t.Errorf("a spill written after a transaction: %d txns, %v", len(got), err)
	}

	// A spill holding a change outside any transaction is not a payload.
	loose, _ := segment.NewSpill(t.TempDir(), mode)
	defer loose.Close()
	if err := loose.Change(7, &txns[0].Changes[0]); err != nil {
		t.Fatal(err)
	}
	w, _ = segment.NewWriter(io.Discard, h, []*keys.Recipient{id.Recipient()})
	if err := w.WriteSpill(loose); err == nil {
		t.Error("WriteSpill accepted a spill with a loose, tagged change")
	}
}
