package segment_test

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/rxvault/rxvault/internal/keys"
	"github.com/rxvault/rxvault/segment"
	"github.com/rxvault/rxvault/segment/segtest"
)

var fuzzID = sync.OnceValue(func() *keys.Identity {
	id, err := keys.GenerateIdentity()
	if err != nil {
		panic(err)
	}
	return id
})

// FuzzReader feeds arbitrary bytes to the key-holding reader and to Verify:
// neither may panic, hang or allocate beyond the format's bounds, and a
// successful read must agree with Verify.
func FuzzReader(f *testing.F) {
	id := fuzzID()
	for _, n := range []int{0, 1, 3, 40} {
		txns := segtest.NewCorpus(uint64(n)).Txns(n)
		h, err := segtest.Header(testChain, 1, segment.Digest{}, txns)
		if err != nil {
			f.Fatal(err)
		}
		if n == 0 {
			h.EndTime = h.LastCommit
		}
		h.ChunkSize = segment.MinChunkSize
		data, _ := encode(f, h, txns, id.Recipient())
		f.Add(data)
		f.Add(data[:len(data)/2])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, verr := segment.Verify(bytes.NewReader(data))
		txns, _, err := readAll(data, id)
		if err == nil && verr != nil {
			t.Fatalf("reader accepted %d txns that Verify rejects: %v", len(txns), verr)
		}
	})
}

// TestForgedFrameLengthAllocation checks that a frame claiming the maximum
// length but holding a few bytes fails without allocating that length.
func TestForgedFrameLengthAllocation(t *testing.T) {
	id := newIdentity(t)
	txns := segtest.NewCorpus(1).Txns(2)
	h, _ := segtest.Header(testChain, 1, segment.Digest{}, txns)
	h.ChunkSize = segment.MaxChunkSize
	data, _ := encode(t, h, txns, id.Recipient())
	l := parseLayout(t, data)
	forged := append(bytes.Clone(data[:l.headerEnd]), 'C', 0x01, 0x00, 0x00, 0x00) // 16 MiB claimed
	forged = append(forged, make([]byte, 100)...)
	allocated := allocatedBy(func() {
		if _, _, err := segment.Verify(bytes.NewReader(forged)); !errors.Is(err, segment.ErrTruncated) {
			t.Errorf("err %v, want ErrTruncated", err)
		}
	})
	if allocated > 2<<20 {
		t.Errorf("reading a forged 16 MiB frame of 100 bytes allocated %d bytes", allocated)
	}
}

// TestConstantMemory streams 256 MiB of payload through a writer into a
// concurrent reader and checks the heap stays bounded.
func TestConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 256 MiB")
	}
	id := newIdentity(t)
	rel := segtest.Fills
	value := make([]byte, 64<<10)
	for i := range value {
		value[i] = byte(i * 7919 >> 5)
	}
	const n = 4096 // 4096 x 64 KiB = 256 MiB of values
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	txns := make([]segment.Txn, n)
	for i := range txns {
		row := make([]segment.Value, len(rel.Columns))
		row[0] = segment.TextValue("1")
		row[7] = segment.Value{Kind: segment.Binary, Data: value}
		txns[i] = segment.Txn{
			TxnInfo: segment.TxnInfo{Pos: segment.Position{Lo: uint64(i + 1)}, Commit: start.Add(time.Duration(i) * time.Millisecond)},
			Changes: []segment.Change{{Op: segment.OpInsert, Rel: rel, New: row}},
		}
	}
	h, err := segtest.Header(testChain, 1, segment.Digest{}, txns)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		w, err := segment.NewWriter(pw, h, []*keys.Recipient{id.Recipient()})
		if err == nil {
			for i := range txns {
				if err = w.WriteTxn(&txns[i]); err != nil {
					break
				}
			}
		}
		if err == nil {
			_, err = w.Close()
		}
		werr = err
		pw.CloseWithError(err)
	}()
	r, err := segment.NewReader(pr, []*keys.Identity{id})
	if err != nil {
		t.Fatal(err)
	}
	var peak uint64
	var ms runtimeStats
	count := 0
	for {
		info, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		c, err := r.Change()
		if err != nil || !bytes.Equal(c.New[7].Data, value) {
			t.Fatalf("txn at %s: change %v err %v", info.Pos, c != nil, err)
		}
		count++
		if count%256 == 0 {
			peak = max(peak, ms.heapInUse())
		}
	}
	pr.Close()
	wg.Wait()
	if werr != nil {
		t.Fatal(werr)
	}
	if count != n {
		t.Fatalf("read %d txns, wrote %d", count, n)
	}
	if peak > 64<<20 {
		t.Errorf("heap in use peaked at %d MiB while streaming 256 MiB", peak>>20)
	}
	t.Logf("heap in use peaked at %.1f MiB while streaming 256 MiB", float64(peak)/(1<<20))
}
