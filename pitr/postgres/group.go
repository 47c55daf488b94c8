package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rxvault/rxvault/segment"
)

// limits bound a commit group: the open group commits at the end of the
// source transaction that reaches any of them. See "Group commit" in the
// package documentation for why these values.
type limits struct {
	txns      int // source transactions
	changes   int // changes
	bytes     int // bytes of values, DDL text and messages
	relations int // distinct tables written
	ddl       int // DDL statements
}

var defaultLimits = limits{
	txns:      1000,
	changes:   10000,
	bytes:     32 << 20,
	relations: 100,
	ddl:       64,
}

// group is the target transaction that stays open across Apply calls:
// the source transactions applied since the last commit, in commit order,
// with the pipeline their requests go through.
type group struct {
	t    *Target
	open bool
	// ctx is the pipeline's context. It outlives the calls that use it;
	// each call ties its own context's cancellation to it (see bind).
	ctx    context.Context
	cancel context.CancelFunc
	p      *pgconn.Pipeline // open pipeline, or nil
	began  bool             // BEGIN was sent
	// txns are the group's source transactions: the first accepted of
	// them (Apply returned nil), then, during an Apply, the current one.
	txns     []segment.TxnInfo
	accepted int
	changes  int64 // of the accepted transactions
	bytes    int
	rels     map[*relInfo]struct{} // tables written
	ddl      int
	// commitAfter: end the group with the current transaction (an ALTER
	// TYPE ran, or a statement ran on its own).
	commitAfter bool
	seqs        map[string]seqValue // from the accepted transactions
	// reset: the settings a DDL statement ran under (see txn.ddl), to
	// set back to the session's before the next statement. release: a
	// savepoint taken before a DDL statement is released before the next
	// statement.
	reset   []string
	release bool
	// flipped are the ALWAYS identity columns made BY DEFAULT for now
	// (see flip).
	flipped map[flipCol]struct{}

	pending   []request // sent, not yet read
	unflushed int       // requests queued since the last flush
	queued    int       // bytes sent since the last drain
	looked    [][]string
}

// start opens a new group (nothing is sent yet: BEGIN goes with the
// first statement).
func (g *group) start(t *Target, ctx context.Context) {
	g.t = t
	g.open = true
	g.ctx, g.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if g.rels == nil {
		g.rels = map[*relInfo]struct{}{}
		g.seqs = map[string]seqValue{}
		g.flipped = map[flipCol]struct{}{}
	}
}

// end closes the group, keeping its buffers for the next one.
func (g *group) end() {
	if g.cancel != nil {
		g.cancel()
	}
	g.open, g.began, g.p = false, false, nil
	g.ctx, g.cancel = nil, nil
	g.resetState()
	g.txns = g.txns[:0]
	g.pending = g.pending[:0]
}

// resetState forgets what the group committed: its transactions but the
// one in progress, if any, stay.
func (g *group) resetState() {
	g.txns = g.txns[:copy(g.txns, g.txns[g.accepted:])]
	g.accepted, g.changes, g.bytes, g.ddl = 0, 0, 0, 0
	g.commitAfter, g.reset, g.release = false, g.reset[:0], false
	clear(g.rels)
	clear(g.seqs)
	clear(g.flipped) // committed or rolled back with the changes
	g.unflushed, g.queued = 0, 0
}

// bind ties ctx, the context of one call, to the group's pipeline: if ctx
// ends during the call, the pipeline is interrupted (which closes the
// connection). The returned function unties it.
func (g *group) bind(ctx context.Context) func() bool {
	return context.AfterFunc(ctx, g.cancel)
}

// current is the index in txns of the transaction being applied.
func (g *group) current() int { return len(g.txns) - 1 }

// full reports whether the group must commit now.
func (g *group) full(l limits) bool {
	return g.commitAfter || g.accepted >= l.txns || g.changes >= int64(l.changes) ||
		g.bytes >= l.bytes || len(g.rels) >= l.relations || g.ddl >= l.ddl
}

// accept records the end of the current transaction: n changes, and the
// sequence values it carried.
func (g *group) accept(n int, seqs map[string]seqValue) {
	g.accepted++
	g.changes += int64(n)
	for k, v := range seqs {
		g.seqs[k] = v
	}
}

// commit commits the open group; sync makes the commit wait for the WAL
// flush (synchronous_commit = on for it). The transaction in progress, if
// any (a statement that must run on its own commits the group in the
// middle of one), stays in the group.
func (t *Target) commit(ctx context.Context, sync bool) error {
	g := &t.g
	if !g.open {
		return nil
	}
	defer g.bind(ctx)()
	if g.began {
		g.reset, g.release = g.reset[:0], false // SET LOCAL and savepoints end with the transaction
		if err := g.drain(); err != nil {
			return err
		}
		p := g.pipe()
		g.unflip(-1, 0)
		if sync {
			p.SendQueryParams("SET LOCAL synchronous_commit = on", nil, nil, nil, nil)
			g.push(request{kind: reqControl, txn: -1})
		}
		p.SendQueryPrepared(stmtCommit, nil, nil, nil)
		g.push(request{kind: reqCommit, txn: -1})
		if err := g.sync(); err != nil {
			return err
		}
		g.began = false
	}
	for k, v := range g.seqs {
		t.seqs[k] = v
	}
	t.committedTxns.Add(int64(g.accepted))
	t.committedChanges.Add(g.changes)
	if len(g.txns) > g.accepted {
		g.resetState() // the transaction in progress goes on in a new transaction
		return nil
	}
	g.end()
	return nil
}

// fail rolls the open group back after err and returns the error to
// report: it names the source transaction that failed (err may concern an
// earlier transaction of the group than the current one) and, when the
// group held other transactions, says that they were rolled back too; the
// target then refuses further work, since Apply had accepted them.
func (t *Target) fail(err error) error {
	g := &t.g
	idx := -1 // no transaction in progress: the group's commit failed
	if len(g.txns) > g.accepted {
		idx = g.current()
	}
	if te, ok := errors.AsType[*txnError](err); ok && te.txn >= 0 {
		idx = te.txn
	}
	what := "commit the group"
	if idx >= 0 && idx < len(g.txns) {
		what = "apply transaction " + describeTxn(&g.txns[idx])
	}
	lost := len(g.txns) // the group's transactions but the one named
	if idx >= 0 {
		lost--
	}
	first := ""
	if len(g.txns) > 0 {
		first = describeTxn(&g.txns[0])
	}
	g.abort()
	if lost == 0 {
		return fmt.Errorf("%s: %w", what, err)
	}
	rolled := fmt.Errorf("rolled back to the last group commit, before transaction %s: the %d other transactions applied since are undone too", first, lost)
	if t.broken == nil {
		t.broken = rolled
	}
	return fmt.Errorf("%s: %w (%w)", what, err, rolled)
}

// txnError is an error of request of the group's transaction txn (an
// index in group.txns; -1 for the group as a whole).
type txnError struct {
	txn int
	err error
}

func (e *txnError) Error() string { return e.err.Error() }
func (e *txnError) Unwrap() error { return e.err }

// abort ends the pipeline and rolls the group back. Statements prepared
// so far are forgotten (and deallocated in the next group), since the
// failed transaction may have left some unprepared or its DDL undone.
func (g *group) abort() {
	t := g.t
	if !g.open {
		return
	}
	if g.p != nil {
		g.p.SendPipelineSync()
		_ = g.p.Flush()
		_ = g.p.Close()
		g.p = nil
	}
	for _, ri := range t.rels.byKey {
		for _, st := range ri.stmts {
			t.garbage = append(t.garbage, st.name)
		}
	}
	t.rels = newRelCache()
	began := g.began
	g.end()
	pc := t.conn.PgConn()
	if pc.IsClosed() {
		t.connLost(errors.New("connection lost during a transaction; its outcome is unknown"))
		return
	}
	if !began {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := pc.Exec(ctx, "ROLLBACK").ReadAll(); err != nil {
		t.broken = fmt.Errorf("rollback after a failed transaction: %w", err)
	}
}

// pipe returns the open pipeline, starting one (and the transaction) if
// needed, and sends what must precede the next statement.
func (g *group) pipe() *pgconn.Pipeline {
	if g.p == nil {
		g.p = g.t.conn.PgConn().StartPipeline(g.ctx)
	}
	if !g.began {
		g.p.SendQueryPrepared(stmtBegin, nil, nil, nil)
		g.push(request{kind: reqControl, txn: -1})
		g.began = true
	}
	for _, name := range g.t.garbage {
		g.p.SendDeallocate(name)
		g.push(request{kind: reqDeallocate, txn: -1})
	}
	g.t.garbage = g.t.garbage[:0]
	if g.release {
		g.p.SendQueryParams("RELEASE SAVEPOINT "+ddlSavepoint, nil, nil, nil, nil)
		g.push(request{kind: reqControl, txn: -1})
		g.release = false
	}
	for _, name := range g.reset {
		g.p.SendQueryParams("SELECT pg_catalog.set_config($1, $2, true)",
			[][]byte{[]byte(name), []byte(g.t.session[name])}, []uint32{oidText, oidText}, nil, nil)
		g.push(request{kind: reqControl, txn: -1})
	}
	g.reset = g.reset[:0]
	return g.p
}

// flipCol is a column of a table, both quoted.
type flipCol struct{ table, col string }

// flip makes the ALWAYS identity columns an UPDATE statement sets (st.flips)
// of table ri BY DEFAULT, unless the group did already, before the
// statement is prepared or run: PostgreSQL refuses any other value than
// DEFAULT for an ALWAYS identity column in an UPDATE, and has no
// OVERRIDING clause for UPDATE, yet the source's UPDATE … SET id =
// DEFAULT gave the row a new value that replay must write as it is. The
// change is the group's: unflip sets the columns back to ALWAYS before
// the group commits and before any DDL statement runs (which must see the
// catalog as the source had it), and a rollback undoes it. Nothing but
// the restore uses the target meanwhile. r describes the change.
func (g *group) flip(ri *relInfo, st *stmt, r request) {
	for _, c := range st.flips {
		k := flipCol{table: ri.ident, col: c}
		if _, ok := g.flipped[k]; ok {
			continue
		}
		g.pipe().SendQueryParams("ALTER TABLE ONLY "+ri.ident+" ALTER COLUMN "+c+" SET GENERATED BY DEFAULT", nil, nil, nil, nil)
		r.kind = reqControl
		g.push(r)
		g.flipped[k] = struct{}{}
	}
}

// unflip sets the columns flip made BY DEFAULT back to ALWAYS, in the open
// pipeline; txn and change describe the request for errors (-1 and 0 for
// the group as a whole).
func (g *group) unflip(txn, change int) {
	if len(g.flipped) == 0 {
		return
	}
	for _, k := range slices.SortedFunc(maps.Keys(g.flipped), func(a, b flipCol) int {
		return cmp.Or(strings.Compare(a.table, b.table), strings.Compare(a.col, b.col))
	}) {
		g.p.SendQueryParams("ALTER TABLE ONLY "+k.table+" ALTER COLUMN "+k.col+" SET GENERATED ALWAYS", nil, nil, nil, nil)
		g.push(request{kind: reqControl, txn: txn, change: change})
	}
	clear(g.flipped)
}

func (g *group) push(r request) {
	g.pending = append(g.pending, r)
	g.unflushed++
}

// ddlSavepoint is taken before a DDL statement that is its transaction's
// first change, so that one PostgreSQL refuses in a transaction block can
// be undone without losing the group (see txn.ddl).
const ddlSavepoint = "rxv_ddl"

// changeBytes is about how many bytes c sends: its values, DDL text or
// message content.
func changeBytes(c *segment.Change) int {
	n := len(c.Content) + len(c.SQL)
	for _, v := range c.Old {
		n += len(v.Data)
	}
	for _, v := range c.New {
		n += len(v.Data)
	}
	return n
}
