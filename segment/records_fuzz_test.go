package segment

import (
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"
	"time"
)

// plainReader returns a Reader that decodes payload directly, cut into
// chunks of n bytes, bypassing framing and crypto.
func plainReader(payload []byte, n int) *Reader {
	r := &Reader{fr: &frameReader{hdr: Header{Txns: 1, Payload: PayloadV1}}, rels: make(map[uint64]*Relation)}
	r.nextChunk = func() ([]byte, error) {
		if len(payload) == 0 {
			return nil, io.EOF
		}
		k := min(n, len(payload))
		c := payload[:k]
		payload = payload[k:]
		return c, nil
	}
	return r
}

func drain(r *Reader) error {
	for {
		if _, err := r.Next(); err != nil {
			return err
		}
		for {
			if _, err := r.Change(); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return err
			}
		}
	}
}

// payloadOf encodes txns as a raw payload.
func payloadOf(t testing.TB, txns []Txn) []byte {
	var sink bytesSink
	e := newRecordEncoder(&sink)
	for i := range txns {
		if err := e.begin(&txns[i].TxnInfo); err != nil {
			t.Fatal(err)
		}
		for j := range txns[i].Changes {
			if err := e.change(&txns[i].Changes[j]); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.commit(uint64(len(txns[i].Changes))); err != nil {
			t.Fatal(err)
		}
	}
	return sink.b
}

type bytesSink struct{ b []byte }

func (s *bytesSink) Write(p []byte) (int, error) { s.b = append(s.b, p...); return len(p), nil }

// FuzzRecords feeds arbitrary payloads to the record decoder: no panic, no
// allocation driven by forged lengths.
func FuzzRecords(f *testing.F) {
	rel := &Relation{Schema: "s", Table: "t", Columns: []Column{{Name: "id", Type: "int", Key: true}, {Name: "v", Type: "text"}}}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Add(payloadOf(f, []Txn{{
		TxnInfo: TxnInfo{ID: "1", Pos: Position{Lo: 5}, Commit: at},
		Changes: []Change{
			{Op: OpInsert, Rel: rel, New: []Value{TextValue("1"), {Kind: Binary, Data: []byte{1, 2}}}},
			{Op: OpUpdate, Rel: rel, OldKind: OldKey, Old: []Value{TextValue("1"), {}}, New: []Value{TextValue("1"), {Kind: Unchanged}}},
			{Op: OpDelete, Rel: rel, OldKind: OldFull, Old: []Value{TextValue("1"), TextValue("x")}},
			{Op: OpTruncate, Truncated: []*Relation{rel}},
			{Op: OpDDL, Schema: "s", SQL: "ALTER TABLE t ADD c int"},
			{Op: OpMessage, Prefix: "p", Content: []byte("c")},
		},
	}}), 7)
	f.Add([]byte{recBegin, 0xff, 0xff, 0xff, 0xff, 0x03}, 3)
	f.Fuzz(func(t *testing.T, payload []byte, n int) {
		if n <= 0 || n > 1<<16 {
			n = 1 + len(payload)
		}
		_ = drain(plainReader(payload, n))
	})
}

// TestForgedRecordLength: a record claiming 1 GiB in a 20-byte payload
// fails without allocating the claimed size.
func TestForgedRecordLength(t *testing.T) {
	payload := binary.AppendUvarint([]byte{recBegin}, MaxRecordSize)
	payload = append(payload, make([]byte, 20)...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	err := drain(plainReader(payload, 8))
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err %v, want ErrCorrupt", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("forged record length allocated %d bytes", got)
	}
}
