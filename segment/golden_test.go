package segment_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/rxvault/rxvault/internal/keys"
	"github.com/rxvault/rxvault/segment"
)

// Regenerate the golden files with: go test ./segment -run Golden -update
// Do that only for a deliberate format change, with a new version number;
// the old fixture must then stay readable (keep it beside the new one).
var update = flag.Bool("update", false, "rewrite the golden segment fixtures in testdata")

const (
	goldenSegment  = "testdata/golden-v1.rxseg"
	goldenIdentity = "testdata/golden-identity.key"
)

// goldenTxns is the content of the golden segment: every op and value kind.
func goldenTxns() []segment.Txn {
	rx := &segment.Relation{Schema: "pharmacy", Table: "rx", Columns: []segment.Column{
		{Name: "id", Type: "bigint", TypeID: 20, Key: true},
		{Name: "sig", Type: "text", TypeID: 25},
		{Name: "label", Type: "bytea", TypeID: 17},
		{Name: "qty", Type: "numeric(10,3)", TypeID: 1700},
		{Name: "total", Type: "numeric(12,2)", TypeID: 1700, Generated: true},
	}}
	at := time.Date(2026, 11, 24, 10, 2, 17, 123456000, time.UTC)
	return []segment.Txn{
		{TxnInfo: segment.TxnInfo{ID: "740", Pos: segment.Position{Lo: 0x16B3748}, Commit: at}, Changes: []segment.Change{
			{Op: segment.OpDDL, Schema: "pharmacy", SQL: "ALTER TABLE rx ADD COLUMN label bytea"},
			{Op: segment.OpInsert, Rel: rx, New: []segment.Value{segment.TextValue("1"), segment.TextValue("Take 1 tablet daily"), {Kind: segment.Binary, Data: []byte{0, 1, 0xfe}}, segment.TextValue("30.000"), {Kind: segment.Null}}},
		}},
		{TxnInfo: segment.TxnInfo{ID: "741", Pos: segment.Position{Lo: 0x16B3900}, Commit: at.Add(1500 * time.Microsecond)}, Changes: []segment.Change{
			{Op: segment.OpUpdate, Rel: rx, OldKind: segment.OldKey,
				Old: []segment.Value{segment.TextValue("1"), {}, {}, {}, {}},
				New: []segment.Value{segment.TextValue("1"), {Kind: segment.Unchanged}, {Kind: segment.Unchanged}, segment.TextValue("60.000"), {Kind: segment.Null}}},
			{Op: segment.OpDelete, Rel: rx, OldKind: segment.OldFull, Old: []segment.Value{segment.TextValue("1"), segment.TextValue(""), {Kind: segment.Binary, Data: []byte{}}, segment.TextValue("60.000"), {Kind: segment.Null}}},
			{Op: segment.OpTruncate, Truncated: []*segment.Relation{rx}, TruncateFlags: segment.TruncateRestartIdentity},
			{Op: segment.OpMessage, Prefix: "rxvault.seq", Content: []byte(`{"pharmacy.rx_id_seq":[42,true]}`), Transactional: true},
		}},
	}
}

func goldenHeader(t *testing.T) segment.Header {
	txns := goldenTxns()
	h := segment.Header{Engine: segment.EnginePostgres, SourceID: "7441234567890123456", Chain: testChain, Seq: 3,
		PrevHash: segment.Digest{0xde, 0xad, 0xbe, 0xef}, ChunkSize: segment.MinChunkSize,
		EndPos: segment.Position{Lo: 0x16B3A00}, EndTime: time.Date(2026, 11, 24, 10, 2, 18, 0, time.UTC)}
	var tally segment.Tally
	for _, tx := range txns {
		if err := tally.Add(tx.TxnInfo, uint64(len(tx.Changes))); err != nil {
			t.Fatal(err)
		}
	}
	tally.Apply(&h)
	return h
}

// TestGolden checks that the checked-in v1 fixture still decodes to the
// expected content, and that the writer, given the same randomness, still
// produces it byte for byte.
func TestGolden(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 20261124)
	if *update {
		id, err := keys.GenerateIdentity()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(goldenIdentity), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenIdentity, []byte("# test key for the golden fixture only\n"+id.String()+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(goldenIdentity, 0o600); err != nil { // git does not keep 0600
		t.Fatal(err)
	}
	ids, err := keys.LoadIdentityFile(goldenIdentity)
	if err != nil {
		t.Fatal(err)
	}
	cryptotest.SetGlobalRandom(t, 1)
	encoded, _ := encode(t, goldenHeader(t), goldenTxns(), ids[0].Recipient())
	if *update {
		if err := os.WriteFile(goldenSegment, encoded, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fixture, err := os.ReadFile(goldenSegment)
	if err != nil {
		t.Fatal(err)
	}

	got, r, err := readAll(fixture, ids...)
	if err != nil {
		t.Fatalf("golden fixture no longer decodes: %v", err)
	}
	if want := normalize(goldenTxns()); !reflect.DeepEqual(got, want) {
		t.Fatalf("golden fixture decodes to other content:\n got %+v\nwant %+v", got, want)
	}
	h := r.Header()
	if want := goldenHeader(t); h.Seq != want.Seq || h.PrevHash != want.PrevHash || !h.EndTime.Equal(want.EndTime) || h.Records != want.Records {
		t.Errorf("golden header %+v", h)
	}
	if !bytes.Equal(encoded, fixture) {
		t.Fatalf("the writer's output differs from %s (%d vs %d bytes): the format changed. "+
			"If deliberate, bump the version and regenerate with -update", goldenSegment, len(encoded), len(fixture))
	}
}
