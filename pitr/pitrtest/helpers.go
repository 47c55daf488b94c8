package pitrtest

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rxvault/rxvault/pitr"
	"github.com/rxvault/rxvault/segment"
)

// fixture is one case's (or subtest's) use of the harness: it numbers
// the transactions it makes. It is not safe for concurrent use: each
// parallel subtest makes its own.
type fixture struct {
	h    Harness
	txns uint64
}

// txnBase is added to a transaction's number for its id, so that ids are
// long and distinctive in error messages.
const txnBase = 50000000

// commitEpoch is the commit time of a case's transaction 0.
var commitEpoch = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// txn is one source transaction to apply.
type txn struct {
	info    segment.TxnInfo
	changes []*segment.Change
}

// txn returns the fixture's next transaction, holding changes, with
// increasing positions and commit times.
func (f *fixture) txn(changes ...*segment.Change) *txn {
	f.txns++
	n := f.txns
	return &txn{
		info: segment.TxnInfo{
			ID:     f.h.TxnID(txnBase + n),
			Pos:    segment.Position{Hi: 1, Lo: n << 12},
			Commit: commitEpoch.Add(time.Duration(n) * time.Second),
		},
		changes: changes,
	}
}

// insert, update and delete build row changes of rel as capture writes
// them: updates and deletes carry the whole old row.
func (f *fixture) insert(rel *segment.Relation, id int, v string) *segment.Change {
	return &segment.Change{Op: segment.OpInsert, Rel: rel, New: f.h.Row(id, v)}
}

func (f *fixture) update(rel *segment.Relation, id int, oldV, newV string) *segment.Change {
	return &segment.Change{Op: segment.OpUpdate, Rel: rel, OldKind: segment.OldFull, Old: f.h.Row(id, oldV), New: f.h.Row(id, newV)}
}

func (f *fixture) delete(rel *segment.Relation, id int, v string) *segment.Change {
	return &segment.Change{Op: segment.OpDelete, Rel: rel, OldKind: segment.OldFull, Old: f.h.Row(id, v)}
}

// table creates table name in db and returns its relation.
func (f *fixture) table(t *testing.T, db Database, name string) *segment.Relation {
	t.Helper()
	create, rel := f.h.Table(name)
	db.Exec(t, create)
	return rel
}

// apply applies x to tg as a restore does: Apply gets a copy of the
// transaction's info and its changes as an iterator.
func apply(ctx context.Context, tg pitr.Target, x *txn) error {
	info := x.info
	return tg.Apply(ctx, &info, func(yield func(*segment.Change, error) bool) {
		for _, c := range x.changes {
			if !yield(c, nil) {
				return
			}
		}
	})
}

// open opens a target on db. The returned function closes it, failing
// the test if Close fails; if the test ends first, the target is closed
// then.
func open(t *testing.T, db Database) (pitr.Target, func()) {
	t.Helper()
	tg := db.Open(t)
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = tg.Close(context.Background())
		}
	})
	return tg, func() {
		t.Helper()
		closed = true
		if err := tg.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}

// row is a row of the suite's tables.
type row struct {
	id int
	v  string
}

func (r row) String() string { return fmt.Sprintf("(%d, %q)", r.id, r.v) }

// rows reads table's rows, ordered by id, on a new connection.
func rows(t *testing.T, db Database, table string) []row {
	t.Helper()
	var out []row
	for _, r := range db.Query(t, "SELECT id, v FROM "+table+" ORDER BY id") {
		if len(r) != 2 {
			t.Fatalf("SELECT id, v gave %d columns", len(r))
		}
		id, err := strconv.Atoi(r[0])
		if err != nil {
			t.Fatalf("SELECT id, v: id %q is not an integer", r[0])
		}
		out = append(out, row{id, r[1]})
	}
	return out
}

// checkRows fails the test unless table holds exactly want (by id).
func checkRows(t *testing.T, db Database, table, when string, want []row) {
	t.Helper()
	if got := rows(t, db, table); !slices.Equal(got, want) {
		t.Errorf("%s: table %s holds\n%v\nwant\n%v", when, table, got, want)
	}
}

// names reports whether msg names the transaction id: id occurs in it
// as a whole word, not inside a longer id, number or position.
func names(msg, id string) bool {
	for i := 0; ; {
		j := strings.Index(msg[i:], id)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(id)
		if (start == 0 || !idChar(msg[start-1])) && (end == len(msg) || !idChar(msg[end])) {
			return true
		}
		i = start + 1
	}
}

// idChar reports whether b may continue a transaction id or a position.
func idChar(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b == '-' || b == ':' || b == '/' || b == '_'
}

// checkNamesOnly fails the test unless err names the transaction failed
// and none of the transactions applied after it.
func checkNamesOnly(t *testing.T, err error, failed *txn, later ...*txn) {
	t.Helper()
	msg := err.Error()
	if !names(msg, failed.info.ID) {
		t.Errorf("the error does not name the failed transaction %s: %s", failed.info.ID, msg)
	}
	for _, x := range later {
		if names(msg, x.info.ID) {
			t.Errorf("the error names transaction %s, applied after the failed one (%s): %s", x.info.ID, failed.info.ID, msg)
		}
	}
}

// checkNoValues fails the test if err quotes a value of the changes of
// txns, as it is or in hex: errors may be logged, and row data never is.
func checkNoValues(t *testing.T, err error, txns ...*txn) {
	t.Helper()
	msg := strings.ToLower(err.Error())
	for _, x := range txns {
		for _, c := range x.changes {
			for _, v := range slices.Concat(c.Old, c.New) {
				if len(v.Data) == 0 {
					continue
				}
				if strings.Contains(msg, strings.ToLower(string(v.Data))) || strings.Contains(msg, hex.EncodeToString(v.Data)) {
					t.Errorf("the error quotes the value %q of transaction %s: %s", v.Data, x.info.ID, err)
				}
			}
		}
	}
}
