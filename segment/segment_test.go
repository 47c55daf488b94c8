package segment_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rxvault/rxvault/internal/keys"
	"github.com/rxvault/rxvault/segment"
	"github.com/rxvault/rxvault/segment/segtest"
)

var testChain = segment.ChainID{0xc4, 0xa1, 0x7e, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d}

func newIdentity(t testing.TB) *keys.Identity {
	t.Helper()
	id, err := keys.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// encode writes txns as one segment and returns its bytes and summary.
func encode(t testing.TB, h segment.Header, txns []segment.Txn, recips ...*keys.Recipient) ([]byte, segment.Summary) {
	t.Helper()
	var buf bytes.Buffer
	w, err := segment.NewWriter(&buf, h, recips)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	for i := range txns {
		if err := w.WriteTxn(&txns[i]); err != nil {
			t.Fatalf("WriteTxn %d: %v", i, err)
		}
	}
	sum, err := w.Close()
	if err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got, want := sum.Size, int64(buf.Len()); got != want {
		t.Fatalf("summary size %d, wrote %d", got, want)
	}
	return buf.Bytes(), sum
}

// encodeCorpus makes a segment of n corpus transactions with the given
// chunk size (0 = default).
func encodeCorpus(t testing.TB, seed uint64, n int, chunkSize uint32, id *keys.Identity) ([]byte, segment.Summary, []segment.Txn) {
	t.Helper()
	txns := segtest.NewCorpus(seed).Txns(n)
	h, err := segtest.Header(testChain, 1, segment.Digest{}, txns)
	if err != nil {
		t.Fatal(err)
	}
	h.ChunkSize = chunkSize
	data, sum := encode(t, h, txns, id.Recipient())
	return data, sum, txns
}

// readAll decodes every transaction of a segment.
func readAll(data []byte, ids ...*keys.Identity) ([]segment.Txn, *segment.Reader, error) {
	r, err := segment.NewReader(bytes.NewReader(data), ids)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	var out []segment.Txn
	for {
		t, err := r.ReadTxn()
		if errors.Is(err, io.EOF) {
			return out, r, nil
		} else if err != nil {
			return out, r, err
		}
		out = append(out, *t)
	}
}

// normalize makes txns comparable with decoded ones: times in UTC to the
// µs, Text and Binary values non-nil.
func normalize(txns []segment.Txn) []segment.Txn {
	out := make([]segment.Txn, len(txns))
	for i, t := range txns {
		t.Commit = t.Commit.UTC().Truncate(time.Microsecond)
		t.Changes = append([]segment.Change(nil), t.Changes...)
		for j := range t.Changes {
			c := &t.Changes[j]
			c.Old = normValues(c.Old)
			c.New = normValues(c.New)
			if c.Op == segment.OpMessage && c.Content == nil {
				c.Content = []byte{}
			}
		}
		out[i] = t
	}
	return out
}

func normValues(vs []segment.Value) []segment.Value {
	if vs == nil {
		return nil
	}
	out := make([]segment.Value, len(vs))
	for i, v := range vs {
		if (v.Kind == segment.Text || v.Kind == segment.Binary) && v.Data == nil {
			v.Data = []byte{}
		}
		out[i] = v
	}
	return out
}

func TestRoundTripCorpus(t *testing.T) {
	id := newIdentity(t)
	for _, chunk := range []uint32{segment.MinChunkSize, 64 << 10, 0} {
		data, sum, txns := encodeCorpus(t, 1, 3000, chunk, id)
		got, r, err := readAll(data, id)
		if err != nil {
			t.Fatalf("chunk %d: read: %v", chunk, err)
		}
		if want := normalize(txns); !reflect.DeepEqual(got, want) {
			t.Fatalf("chunk %d: decoded transactions differ from written ones", chunk)
		}
		if got, want := r.Summary(), sum; got != want {
			t.Errorf("chunk %d: reader summary %+v, writer %+v", chunk, got, want)
		}
		h, vsum, err := segment.Verify(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("chunk %d: Verify: %v", chunk, err)
		}
		if got, want := vsum, sum; got != want {
			t.Errorf("chunk %d: Verify summary %+v, writer %+v", chunk, got, want)
		}
		if got, want := h.Txns, uint64(len(txns)); got != want {
			t.Errorf("chunk %d: header txns %d, want %d", chunk, got, want)
		}
	}
}

func TestEmptySegment(t *testing.T) {
	id := newIdentity(t)
	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	h := segment.Header{Engine: segment.EngineMariaDB, SourceID: "srv-1", Chain: testChain, Seq: 7,
		PrevHash: segment.Digest{1}, EndPos: segment.Position{Hi: 3, Lo: 4096}, EndTime: end}
	data, _ := encode(t, h, nil, id.Recipient())
	got, r, err := readAll(data, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("got %d transactions from an empty segment", len(got))
	}
	rh := r.Header()
	if !rh.EndTime.Equal(end) || rh.EndPos != h.EndPos || rh.Seq != 7 {
		t.Errorf("header round trip: got end %s %s seq %d", rh.EndTime, rh.EndPos, rh.Seq)
	}
}

func TestLargeValuesAndAllOps(t *testing.T) {
	id := newIdentity(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 40_000) // 640 kB, spans chunks
	rel := &segment.Relation{Schema: "public", Table: "docs", Columns: []segment.Column{
		{Name: "id", Type: "integer", TypeID: 23, Key: true},
		{Name: "body", Type: "text", TypeID: 25},
		{Name: "blob", Type: "bytea", TypeID: 17},
		{Name: "total", Type: "integer", TypeID: 23, Generated: true},
	}}
	other := &segment.Relation{Schema: "public", Table: "other", Columns: []segment.Column{{Name: "x", Type: "int", Key: true}}}
	at := time.Date(2026, 2, 1, 0, 0, 0, 123456789, time.FixedZone("x", 3600))
	txns := []segment.Txn{
		{TxnInfo: segment.TxnInfo{ID: "501", Pos: segment.Position{Lo: 10}, Commit: at}, Changes: []segment.Change{
			{Op: segment.OpDDL, Schema: "public", SQL: "CREATE TABLE docs (id int primary key, body text, blob bytea)"},
			{Op: segment.OpInsert, Rel: rel, New: []segment.Value{segment.TextValue("1"), {Kind: segment.Text, Data: big}, {Kind: segment.Binary, Data: big[:9000]}, {Kind: segment.Null}}},
			{Op: segment.OpUpdate, Rel: rel, OldKind: segment.OldFull,
				Old: []segment.Value{segment.TextValue("1"), {Kind: segment.Text, Data: big}, {Kind: segment.Null}, {Kind: segment.Null}},
				New: []segment.Value{segment.TextValue("1"), {Kind: segment.Unchanged}, {Kind: segment.Binary, Data: []byte{0, 1, 2}}, {Kind: segment.Null}}},
			{Op: segment.OpMessage, Prefix: "rxvault.seq", Content: []byte(`{"public.docs_id_seq": 42}`), Transactional: true},
		}},
		{TxnInfo: segment.TxnInfo{ID: "502", Pos: segment.Position{Lo: 11}, Commit: at.Add(-time.Millisecond)}, Changes: []segment.Change{
			{Op: segment.OpDelete, Rel: rel, OldKind: segment.OldKey, Old: []segment.Value{segment.TextValue("1"), {}, {}, {}}},
			{Op: segment.OpTruncate, Truncated: []*segment.Relation{rel, other}, TruncateFlags: segment.TruncateCascade | segment.TruncateRestartIdentity},
			{Op: segment.OpMessage, Prefix: "", Content: nil},
		}},
		{TxnInfo: segment.TxnInfo{ID: "", Pos: segment.Position{Lo: 12}, Commit: at}},
	}
	h, err := segtest.Header(testChain, 1, segment.Digest{}, txns)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h.FirstCommit, at.Add(-time.Millisecond).UTC().Truncate(time.Microsecond); !got.Equal(want) {
		t.Fatalf("tally first commit %s, want the minimum %s", got, want)
	}
	h.ChunkSize = segment.MinChunkSize
	data, _ := encode(t, h, txns, id.Recipient())
	got, _, err := readAll(data, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := normalize(txns); !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded transactions differ:\n got %+v\nwant %+v", got, want)
	}
}

// TestRelationChangedInPlace checks that a Relation mutated between changes
// (a column added by ALTER TABLE) is re-emitted, not silently reused.
func TestRelationChangedInPlace(t *testing.T) {
	id := newIdentity(t)
	rel := &segment.Relation{Schema: "s", Table: "t", Columns: []segment.Column{{Name: "a", Type: "int", Key: true}}}
	c1 := segment.Change{Op: segment.OpInsert, Rel: rel, New: []segment.Value{segment.TextValue("1")}}
	// Capture the first change's view of the relation before mutating.
	before := &segment.Relation{Schema: "s", Table: "t", Columns: append([]segment.Column(nil), rel.Columns...)}
	txns := []segment.Txn{{TxnInfo: segment.TxnInfo{Pos: segment.Position{Lo: 1}, Commit: time.Unix(1e9, 0)}}}
	h, _ := segtest.Header(testChain, 1, segment.Digest{}, []segment.Txn{{TxnInfo: txns[0].TxnInfo, Changes: make([]segment.Change, 2)}})
	var buf bytes.Buffer
	w, err := segment.NewWriter(&buf, h, []*keys.Recipient{id.Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Begin(txns[0].TxnInfo); err != nil {
		t.Fatal(err)
	}
	if err := w.Change(&c1); err != nil {
		t.Fatal(err)
	}
	rel.Columns = append(rel.Columns, segment.Column{Name: "b", Type: "text"})
	c2 := segment.Change{Op: segment.OpInsert, Rel: rel, New: []segment.Value{segment.TextValue("2"), segment.TextValue("x")}}
	if err := w.Change(&c2); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, _, err := readAll(buf.Bytes(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got[0].Changes[0].Rel, before) {
		t.Errorf("first change has relation %+v, want %+v", got[0].Changes[0].Rel, before)
	}
	if !reflect.DeepEqual(got[0].Changes[1].Rel, rel) {
		t.Errorf("second change has relation %+v, want %+v", got[0].Changes[1].Rel, rel)
	}
}

func TestWriterRefusesFalseClaims(t *testing.T) {
	id := newIdentity(t)
	txns := segtest.NewCorpus(2).Txns(5)
	base, err := segtest.Header(testChain, 1, segment.Digest{}, txns)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(h *segment.Header, txns []segment.Txn) []segment.Txn{
		"too few txns": func(h *segment.Header, txns []segment.Txn) []segment.Txn { return txns[:4] },
		"too many txns": func(h *segment.Header, txns []segment.Txn) []segment.Txn {
			h.Txns = 4
			h.Records -= uint64(len(txns[4].Changes))
			return txns
		},
		"wrong records":  func(h *segment.Header, txns []segment.Txn) []segment.Txn { h.Records++; return txns },
		"wrong last pos": func(h *segment.Header, txns []segment.Txn) []segment.Txn { h.LastPos.Lo++; h.EndPos.Lo++; return txns },
		"wrong first time": func(h *segment.Header, txns []segment.Txn) []segment.Txn {
			h.FirstCommit = h.FirstCommit.Add(-time.Second)
			return txns
		},
		"position reused": func(h *segment.Header, txns []segment.Txn) []segment.Txn {
			txns = append([]segment.Txn(nil), txns...)
			txns[3].Pos = txns[2].Pos
			return txns
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			h := base
			txns := mutate(&h, append([]segment.Txn(nil), txns...))
			w, err := segment.NewWriter(io.Discard, h, []*keys.Recipient{id.Recipient()})
			if err != nil {
				t.Fatal(err)
			}
			for i := range txns {
				if err = w.WriteTxn(&txns[i]); err != nil {
					break
				}
			}
			if err == nil {
				_, err = w.Close()
			}
			if err == nil {
				t.Fatal("writer accepted a header whose claims are false")
			}
		})
	}
}

func TestWriterRefusesBadChanges(t *testing.T) {
	id := newIdentity(t)
	rel := &segment.Relation{Schema: "s", Table: "t", Columns: []segment.Column{{Name: "a", Key: true}}}
	for name, c := range map[string]segment.Change{
		"insert without relation": {Op: segment.OpInsert, New: []segment.Value{{}}},
		"short tuple":             {Op: segment.OpInsert, Rel: rel},
		"delete without old":      {Op: segment.OpDelete, Rel: rel, OldKind: segment.OldNone},
		"bad value kind":          {Op: segment.OpInsert, Rel: rel, New: []segment.Value{{Kind: 9}}},
		"empty ddl":               {Op: segment.OpDDL},
		"empty truncate":          {Op: segment.OpTruncate},
		"unknown op":              {Op: 42},
	} {
		t.Run(name, func(t *testing.T) {
			txn := segment.Txn{TxnInfo: segment.TxnInfo{Pos: segment.Position{Lo: 1}, Commit: time.Unix(1e9, 0)}, Changes: []segment.Change{c}}
			h, _ := segtest.Header(testChain, 1, segment.Digest{}, []segment.Txn{txn})
			w, err := segment.NewWriter(io.Discard, h, []*keys.Recipient{id.Recipient()})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WriteTxn(&txn); err == nil {
				t.Fatal("writer accepted an invalid change")
			}
		})
	}
}

func TestHeaderValidate(t *testing.T) {
	txns := segtest.NewCorpus(3).Txns(3)
	good, _ := segtest.Header(testChain, 2, segment.Digest{9}, txns)
	good.Compression, good.Payload, good.ChunkSize = segment.CompressZstd, segment.PayloadV1, segment.DefaultChunkSize
	good.Envelopes = []keys.Envelope{{Wrapped: []byte{1}}}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid header refused: %v", err)
	}
	for name, mutate := range map[string]func(h *segment.Header){
		"engine":            func(h *segment.Header) { h.Engine = 9 },
		"empty source":      func(h *segment.Header) { h.SourceID = "" },
		"long source":       func(h *segment.Header) { h.SourceID = strings.Repeat("x", 256) },
		"zero chain":        func(h *segment.Header) { h.Chain = segment.ChainID{} },
		"zero seq":          func(h *segment.Header) { h.Seq = 0 },
		"seq 1 with prev":   func(h *segment.Header) { h.Seq = 1 },
		"seq 2 no prev":     func(h *segment.Header) { h.PrevHash = segment.Digest{} },
		"compression":       func(h *segment.Header) { h.Compression = 7 },
		"payload":           func(h *segment.Header) { h.Payload = 2 },
		"chunk too small":   func(h *segment.Header) { h.ChunkSize = 100 },
		"chunk too big":     func(h *segment.Header) { h.ChunkSize = 1 << 30 },
		"no envelopes":      func(h *segment.Header) { h.Envelopes = nil },
		"first after last":  func(h *segment.Header) { h.FirstPos, h.LastPos = h.LastPos, h.FirstPos },
		"end before last":   func(h *segment.Header) { h.EndPos = h.FirstPos },
		"end time early":    func(h *segment.Header) { h.EndTime = h.FirstCommit },
		"commit order":      func(h *segment.Header) { h.FirstCommit = h.LastCommit.Add(time.Second) },
		"records no txns":   func(h *segment.Header) { h.Txns = 0 },
		"empty with pos":    func(h *segment.Header) { h.Txns, h.Records = 0, 0 },
		"pre-1970 end time": func(h *segment.Header) { h.EndTime = time.Unix(-5, 0) },
	} {
		h := good
		mutate(&h)
		if err := h.Validate(); err == nil {
			t.Errorf("%s: invalid header accepted", name)
		}
	}
}

func TestRecipientsAndRotation(t *testing.T) {
	custodian, escrow, newKey, stranger := newIdentity(t), newIdentity(t), newIdentity(t), newIdentity(t)
	txns := segtest.NewCorpus(4).Txns(20)
	h, _ := segtest.Header(testChain, 1, segment.Digest{}, txns)
	old, _ := encode(t, h, txns, custodian.Recipient(), escrow.Recipient())
	rotated, _ := encode(t, h, txns, newKey.Recipient(), escrow.Recipient())

	for _, tc := range []struct {
		name string
		data []byte
		ids  []*keys.Identity
		ok   bool
	}{
		{"old segment, custodian", old, []*keys.Identity{custodian}, true},
		{"old segment, escrow", old, []*keys.Identity{escrow}, true},
		{"old segment, new key only", old, []*keys.Identity{newKey}, false},
		{"rotated segment, new key", rotated, []*keys.Identity{newKey}, true},
		{"rotated segment, old key only", rotated, []*keys.Identity{custodian}, false},
		{"rotated segment, both keys", rotated, []*keys.Identity{custodian, newKey}, true},
		{"stranger", old, []*keys.Identity{stranger}, false},
		{"no identity", old, nil, false},
	} {
		got, _, err := readAll(tc.data, tc.ids...)
		if tc.ok {
			if err != nil || len(got) != len(txns) {
				t.Errorf("%s: got %d txns, err %v", tc.name, len(got), err)
			}
			continue
		}
		if !errors.Is(err, segment.ErrWrongKey) {
			t.Errorf("%s: err %v, want ErrWrongKey", tc.name, err)
		}
	}
}

func TestCheckLink(t *testing.T) {
	id := newIdentity(t)
	c := segtest.NewCorpus(5)
	var hdrs []segment.Header
	var sums []segment.Summary
	prev := segment.Digest{}
	for seq := uint64(1); seq <= 3; seq++ {
		txns := c.Txns(10)
		h, _ := segtest.Header(testChain, seq, prev, txns)
		data, sum := encode(t, h, txns, id.Recipient())
		vh, _, err := segment.Verify(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		hdrs, sums, prev = append(hdrs, vh), append(sums, sum), sum.Digest
	}
	if err := segment.CheckLink(&hdrs[0], sums[0].Digest, &hdrs[1]); err != nil {
		t.Fatalf("1 -> 2: %v", err)
	}
	if err := segment.CheckLink(&hdrs[1], sums[1].Digest, &hdrs[2]); err != nil {
		t.Fatalf("2 -> 3: %v", err)
	}
	other := hdrs[1]
	other.Chain[0]++
	otherSource := hdrs[1]
	otherSource.SourceID = "another-cluster"
	for name, tc := range map[string]struct {
		prev *segment.Header
		d    segment.Digest
		next *segment.Header
	}{
		"swapped order":   {&hdrs[1], sums[1].Digest, &hdrs[0]},
		"skipped segment": {&hdrs[0], sums[0].Digest, &hdrs[2]},
		"wrong digest":    {&hdrs[1], sums[0].Digest, &hdrs[2]},
		"other chain":     {&hdrs[0], sums[0].Digest, &other},
		"other source":    {&hdrs[0], sums[0].Digest, &otherSource},
	} {
		if err := segment.CheckLink(tc.prev, tc.d, tc.next); !errors.Is(err, segment.ErrBrokenChain) {
			t.Errorf("%s: err %v, want ErrBrokenChain", name, err)
		}
	}
}

func TestObjectName(t *testing.T) {
	txns := segtest.NewCorpus(6).Txns(4)
	h, _ := segtest.Header(testChain, 0x2a, segment.Digest{1}, txns)
	name := h.Info().ObjectName()
	got, err := segment.ParseObjectName(name)
	if err != nil {
		t.Fatal(err)
	}
	if want := h.Info(); !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseObjectName(%q) = %+v, want %+v", name, got, want)
	}
	// Names sort by sequence within a chain.
	h2 := h
	h2.Seq = 0x100
	if name >= h2.Info().ObjectName() {
		t.Errorf("name of seq 0x2a does not sort before seq 0x100")
	}
	for _, bad := range []string{"", "x.rxseg", name + "x", strings.Replace(name, "-", "_", 1), strings.ToUpper(name), "../" + name} {
		if _, err := segment.ParseObjectName(bad); err == nil {
			t.Errorf("ParseObjectName(%q) accepted", bad)
		}
	}
}

// TestRandomRoundTrip is a property test: arbitrary relations, values
// (empty, large, binary, unchanged, null), ops and chunk sizes survive a
// round trip exactly.
func TestRandomRoundTrip(t *testing.T) {
	id := newIdentity(t)
	for seed := uint64(0); seed < 40; seed++ {
		r := rand.New(rand.NewPCG(seed, 99))
		txns := randomTxns(r)
		h, err := segtest.Header(testChain, 1, segment.Digest{}, txns)
		if err != nil {
			t.Fatal(err)
		}
		h.ChunkSize = []uint32{segment.MinChunkSize, 5000, 1 << 16, segment.DefaultChunkSize}[r.IntN(4)]
		h.Engine = segment.Engine(1 + r.IntN(4))
		data, _ := encode(t, h, txns, id.Recipient())
		got, _, err := readAll(data, id)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if want := normalize(txns); !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: round trip differs", seed)
		}
	}
}

func randomTxns(r *rand.Rand) []segment.Txn {
	randBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		return b
	}
	randStr := func() string { return string(randBytes(r.IntN(20))) }
	var rels []*segment.Relation
	for range 1 + r.IntN(5) {
		rel := &segment.Relation{Schema: randStr(), Table: randStr()}
		for range 1 + r.IntN(12) {
			rel.Columns = append(rel.Columns, segment.Column{Name: randStr(), Type: randStr(), TypeID: r.Uint32(), Key: r.IntN(3) == 0, Generated: r.IntN(9) == 0})
		}
		rels = append(rels, rel)
	}
	tuple := func(rel *segment.Relation) []segment.Value {
		vs := make([]segment.Value, len(rel.Columns))
		for i := range vs {
			switch k := segment.ValueKind(r.IntN(4)); k {
			case segment.Text, segment.Binary:
				n := r.IntN(40)
				if r.IntN(30) == 0 {
					n = 8<<10 + r.IntN(100<<10) // past bigValue
				}
				vs[i] = segment.Value{Kind: k, Data: randBytes(n)}
			default:
				vs[i] = segment.Value{Kind: k}
			}
		}
		return vs
	}
	var txns []segment.Txn
	pos := segment.Position{Hi: r.Uint64N(5), Lo: r.Uint64N(1 << 40)}
	at := time.Unix(1_700_000_000+r.Int64N(1e8), r.Int64N(1e9))
	for range r.IntN(60) {
		pos.Lo += 1 + r.Uint64N(1000)
		if r.IntN(20) == 0 {
			pos.Hi++
		}
		at = at.Add(time.Duration(r.Int64N(int64(time.Second))) - 100*time.Millisecond)
		t := segment.Txn{TxnInfo: segment.TxnInfo{ID: randStr(), Pos: pos, Commit: at}}
		for range r.IntN(8) {
			rel := rels[r.IntN(len(rels))]
			var c segment.Change
			switch op := segment.Op(1 + r.IntN(6)); op {
			case segment.OpInsert:
				c = segment.Change{Op: op, Rel: rel, New: tuple(rel)}
			case segment.OpUpdate:
				c = segment.Change{Op: op, Rel: rel, OldKind: segment.OldKind(r.IntN(3)), New: tuple(rel)}
				if c.OldKind != segment.OldNone {
					c.Old = tuple(rel)
				}
			case segment.OpDelete:
				c = segment.Change{Op: op, Rel: rel, OldKind: segment.OldKind(1 + r.IntN(2)), Old: tuple(rel)}
			case segment.OpTruncate:
				c = segment.Change{Op: op, Truncated: []*segment.Relation{rel, rels[r.IntN(len(rels))]}, TruncateFlags: uint8(r.IntN(4))}
			case segment.OpDDL:
				c = segment.Change{Op: op, Schema: randStr(), SQL: "x" + randStr()}
			case segment.OpMessage:
				c = segment.Change{Op: op, Prefix: randStr(), Content: randBytes(r.IntN(100)), Transactional: r.IntN(2) == 0}
			}
			t.Changes = append(t.Changes, c)
		}
		txns = append(txns, t)
	}
	return txns
}

func TestBytePayload(t *testing.T) {
	id := newIdentity(t)
	h := segment.Header{Engine: segment.EnginePostgres, SourceID: "base", Chain: testChain, Seq: 2, PrevHash: segment.Digest{7},
		Payload: segment.PayloadBytes, ChunkSize: segment.MinChunkSize,
		EndPos: segment.Position{Lo: 99}, EndTime: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
	payload := make([]byte, 100_000)
	r := rand.New(rand.NewPCG(1, 1))
	for i := range payload {
		payload[i] = byte(r.UintN(16))
	}
	var buf bytes.Buffer
	w, err := segment.NewWriter(&buf, h, []*keys.Recipient{id.Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Begin(segment.TxnInfo{Pos: segment.Position{Lo: 1}, Commit: time.Now()}); err == nil {
		t.Fatal("transaction accepted in a byte-stream segment")
	}
	buf.Reset()
	if w, err = segment.NewWriter(&buf, h, []*keys.Recipient{id.Recipient()}); err != nil {
		t.Fatal(err)
	}
	for p := payload; len(p) > 0; {
		n := min(len(p), 7777)
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	rd, err := segment.NewReader(bytes.NewReader(data), []*keys.Identity{id})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rd)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("read back %d bytes, err %v", len(got), err)
	}
	if _, err := rd.Next(); err == nil {
		t.Error("Next on a byte-stream segment")
	}
	// Truncated at a chunk boundary: the reader must end in ErrTruncated,
	// not a clean short read.
	l := parseLayout(t, data)
	rd, err = segment.NewReader(bytes.NewReader(data[:l.frames[2][1]]), []*keys.Identity{id})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(rd); !errors.Is(err, segment.ErrTruncated) {
		t.Errorf("truncated byte stream: err %v, want ErrTruncated", err)
	}
	// A byte-stream header claiming transactions is invalid.
	bad := h
	bad.Txns, bad.Records, bad.FirstPos, bad.LastPos = 1, 0, segment.Position{Lo: 1}, segment.Position{Lo: 1}
	bad.FirstCommit, bad.LastCommit = h.EndTime, h.EndTime
	if _, err := segment.NewWriter(io.Discard, bad, []*keys.Recipient{id.Recipient()}); err == nil {
		t.Error("byte-stream header with transactions accepted")
	}
}
