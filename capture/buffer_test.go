package capture_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/segment"
)

var bufRel = &segment.Relation{Schema: "s", Table: "t", Columns: []segment.Column{{Name: "id", Key: true}}}

// row is an insert whose one value is name; ddl is a DDL change whose SQL
// is name. names reads back what a transaction yields in those terms.
func row(name string) segment.Change {
	return segment.Change{Op: segment.OpInsert, Rel: bufRel, New: []segment.Value{{Kind: segment.Text, Data: []byte(name)}}}
}

func ddl(name string) segment.Change { return segment.Change{Op: segment.OpDDL, SQL: name} }

func names(t *testing.T, tx *capture.Txn) []string {
	t.Helper()
	var got []string
	for c, err := range tx.Changes {
		if err != nil {
			t.Fatalf("Changes: %v", err)
		}
		if c.Op == segment.OpDDL {
			got = append(got, c.SQL)
		} else {
			got = append(got, string(c.New[0].Data))
		}
	}
	if len(got) != tx.Len {
		t.Fatalf("yielded %d changes, Len says %d", len(got), tx.Len)
	}
	return got
}

func add(t *testing.T, b *capture.Buffer, tag uint64, table uint32, c segment.Change) {
	t.Helper()
	if err := b.Add(tag, table, c); err != nil {
		t.Fatal(err)
	}
}

// TestBufferSpillsPastThreshold: a buffer carries transaction after
// transaction; one that outgrows the threshold goes to the spill file,
// and each yields exactly its own changes in order.
func TestBufferSpillsPastThreshold(t *testing.T) {
	b := capture.NewBuffer(t.TempDir(), 4<<10)
	defer b.Close()
	for round, n := range []int{3, 200, 1, 1000, 7} {
		var want []string
		for i := range n {
			name := fmt.Sprintf("round %d change %d", round, i)
			want = append(want, name)
			add(t, b, 0, 0, row(name))
		}
		// A change is 128 bytes and more to MemSize: 4 KiB holds fewer
		// than 32.
		if got, wantSpill := b.Spilled(), n > 32; got != wantSpill {
			t.Errorf("round %d (%d changes): Spilled %v, want %v", round, n, got, wantSpill)
		}
		if got := names(t, b.Txn(segment.TxnInfo{ID: fmt.Sprint(round)}, segment.Position{})); !slices.Equal(got, want) {
			t.Fatalf("round %d: yielded %d changes, not the %d added in order", round, len(got), n)
		}
		b.Reset()
	}
}

// TestBufferAbortTag: aborting a tag drops exactly its changes, hoisted
// ones too; tag 0, the top level, cannot be aborted.
func TestBufferAbortTag(t *testing.T) {
	for _, threshold := range []int64{0, 1 << 20} {
		t.Run(fmt.Sprint("threshold=", threshold), func(t *testing.T) {
			b := capture.NewBuffer(t.TempDir(), threshold)
			defer b.Close()
			add(t, b, 0, 0, row("top 1"))
			add(t, b, 7, 0, row("sub7 1"))
			add(t, b, 8, 3, row("sub8 1"))
			add(t, b, 7, 0, row("sub7 2"))
			add(t, b, 0, 0, row("top 2"))
			if err := b.AddBefore(7, 3, ddl("sub7 ddl")); err != nil {
				t.Fatal(err)
			}
			if !b.Spilled() {
				t.Error("a tagged change did not spill: only the spill records tags")
			}
			b.AbortTag(7)
			b.AbortTag(7) // twice is once
			b.AbortTag(0) // no-op
			got := names(t, b.Txn(segment.TxnInfo{ID: "1"}, segment.Position{}))
			if want := []string{"top 1", "sub8 1", "top 2"}; !slices.Equal(got, want) {
				t.Errorf("yielded %q, want %q", got, want)
			}
		})
	}
}

// TestBufferHoists: AddBefore places a change before the first change of
// its table, in memory and spilled; a table with no change yet gets it
// appended.
func TestBufferHoists(t *testing.T) {
	for _, threshold := range []int64{0, 1 << 20} {
		t.Run(fmt.Sprint("threshold=", threshold), func(t *testing.T) {
			b := capture.NewBuffer(t.TempDir(), threshold)
			defer b.Close()
			add(t, b, 0, 1, row("t1 a"))
			add(t, b, 0, 2, row("t2 a"))
			add(t, b, 0, 1, row("t1 b"))
			add(t, b, 0, 2, row("t2 b"))
			for _, h := range []struct {
				table uint32
				name  string
			}{{2, "create t2"}, {9, "create t9"}, {2, "comment t2"}} {
				if err := b.AddBefore(0, h.table, ddl(h.name)); err != nil {
					t.Fatal(err)
				}
			}
			if got, want := b.Spilled(), threshold == 0; got != want {
				t.Errorf("Spilled %v, want %v", got, want)
			}
			got := names(t, b.Txn(segment.TxnInfo{ID: "1"}, segment.Position{}))
			want := []string{"t1 a", "create t2", "comment t2", "t2 a", "t1 b", "t2 b", "create t9"}
			if !slices.Equal(got, want) {
				t.Errorf("yielded %q, want %q", got, want)
			}
		})
	}
}

// TestBufferResetForgets: what one transaction aborted or hoisted does not
// reach the next.
func TestBufferResetForgets(t *testing.T) {
	b := capture.NewBuffer(t.TempDir(), 1<<20)
	defer b.Close()
	add(t, b, 5, 1, row("a"))
	b.AbortTag(5)
	if err := b.AddBefore(0, 1, ddl("hoisted")); err != nil {
		t.Fatal(err)
	}
	b.Reset()
	add(t, b, 5, 1, row("b"))
	add(t, b, 0, 0, row("c"))
	if b.Len() != 2 {
		t.Fatalf("Len %d after Reset and two changes, want 2", b.Len())
	}
	got := names(t, b.Txn(segment.TxnInfo{ID: "2"}, segment.Position{}))
	if want := []string{"b", "c"}; !slices.Equal(got, want) {
		t.Errorf("yielded %q, want %q", got, want)
	}
}
