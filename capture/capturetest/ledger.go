package capturetest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// want is a transaction a case committed: its row changes in statement
// order, and two ticks of the ledger's clock, taken just before its commit
// was sent and just after the server confirmed it.
type want struct {
	rows         []row
	issued, done int64
}

// ledger records the transactions a case commits, from any goroutine.
type ledger struct {
	clock atomic.Int64
	mu    sync.Mutex
	txns  []*want
}

// step is a statement and the row changes it makes, in order.
type step struct {
	sql  string
	rows []row
}

// commit runs query on c as the commit of w (COMMIT, or a statement that
// autocommits) and records w.
func (l *ledger) commit(ctx context.Context, c Conn, query string, w *want) error {
	w.issued = l.clock.Add(1)
	if err := c.Exec(ctx, query); err != nil {
		return fmt.Errorf("%s: %w", clip(query), err)
	}
	w.done = l.clock.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.txns = append(l.txns, w)
	return nil
}

// txn runs BEGIN, the steps and COMMIT on c, and records the transaction.
func (l *ledger) txn(ctx context.Context, c Conn, steps ...step) error {
	if err := c.Exec(ctx, "BEGIN"); err != nil {
		return fmt.Errorf("BEGIN: %w", err)
	}
	w := &want{}
	for _, s := range steps {
		if err := c.Exec(ctx, s.sql); err != nil {
			return fmt.Errorf("%s: %w", clip(s.sql), err)
		}
		w.rows = append(w.rows, s.rows...)
	}
	return l.commit(ctx, c, "COMMIT", w)
}

// mustTxn is txn, failing the test on error.
func (l *ledger) mustTxn(t *testing.T, c Conn, steps ...step) {
	t.Helper()
	if err := l.txn(t.Context(), c, steps...); err != nil {
		t.Fatal(err)
	}
}

// mustAuto runs one statement in autocommit as a transaction of its own,
// failing the test on error.
func (l *ledger) mustAuto(t *testing.T, c Conn, s step) {
	t.Helper()
	if err := l.commit(t.Context(), c, s.sql, &want{rows: s.rows}); err != nil {
		t.Fatal(err)
	}
}

// all returns the recorded transactions, in the order their commits
// returned.
func (l *ledger) all() []*want {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.txns)
}

// insert inserts rows ids with short values.
func insert(ids ...int64) step { return insertWide(0, ids...) }

// insertWide inserts rows ids, each with a value of width bytes (a short
// one if width is 0), in one statement.
func insertWide(width int, ids ...int64) step {
	var b strings.Builder
	b.WriteString("INSERT INTO " + table + " (id, v) VALUES ")
	for i, id := range ids {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "(%d, '%s')", id, value(id, width))
	}
	return step{b.String(), ins(ids...)}
}

// update changes row id's value.
func update(id int64, width int) step {
	return step{fmt.Sprintf("UPDATE %s SET v = '%s' WHERE id = %d", table, value(id+1, width), id), upd(id)}
}

// remove deletes row id.
func remove(id int64) step {
	return step{fmt.Sprintf("DELETE FROM %s WHERE id = %d", table, id), del(id)}
}

// value is a value for row id: "v<id>", or width bytes of a letter.
func value(id int64, width int) string {
	if width == 0 {
		return "v" + strconv.FormatInt(id, 10)
	}
	return strings.Repeat(string(rune('a'+id%26)), width)
}

// checkDelivered checks the transactions delivered (those that changed
// rows, in delivery order) against the ones committed: each delivered
// transaction is one of them with exactly its row changes in statement
// order; none is missing and none comes twice; and one whose commit
// returned before another's was sent is delivered before it.
func checkDelivered(t *testing.T, delivered []got, committed []*want) {
	t.Helper()
	byID := make(map[int64]int) // every row id a transaction wrote → the transaction
	for i, w := range committed {
		for _, r := range w.rows {
			byID[r.id] = i
		}
	}
	at := make([]int, len(committed))
	for i := range at {
		at[i] = -1
	}
	for gi, g := range delivered {
		i, ok := byID[g.rows[0].id]
		switch {
		case !ok:
			t.Errorf("delivered %d: txn %q (rows %v) is none of the %d expected here", gi, g.info.ID, g.rows, len(committed))
			continue
		case at[i] >= 0:
			t.Errorf("delivered %d: txn %q (rows %v) delivered twice, first as delivered %d", gi, g.info.ID, g.rows, at[i])
			continue
		}
		at[i] = gi
		if !slices.Equal(g.rows, committed[i].rows) {
			t.Errorf("delivered %d: txn %q has rows %v, want %v (its statements' order)", gi, g.info.ID, g.rows, committed[i].rows)
		}
	}
	for i, w := range committed {
		if at[i] < 0 {
			t.Errorf("the committed transaction with rows %v was not delivered", w.rows)
		}
	}
	for i, x := range committed {
		for j, y := range committed {
			if x.done < y.issued && at[i] >= 0 && at[j] >= 0 && at[i] > at[j] {
				t.Errorf("txn with rows %v, committed before txn with rows %v began committing, delivered after it (%d, %d)", x.rows, y.rows, at[i], at[j])
			}
		}
	}
}

// sameTxn checks that a transaction delivered again carries what it did the
// first time: id, commit position, commit time and End.
func sameTxn(t *testing.T, again, first got) {
	t.Helper()
	if again.info.ID != first.info.ID || again.info.Pos != first.info.Pos || !again.info.Commit.Equal(first.info.Commit) || again.end != first.end {
		t.Errorf("txn with rows %v delivered again as %q at %s (commit %s, End %s); first as %q at %s (commit %s, End %s)",
			first.rows, again.info.ID, again.info.Pos, again.info.Commit, again.end, first.info.ID, first.info.Pos, first.info.Commit, first.end)
	}
}
