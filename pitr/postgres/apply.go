package postgres

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/rxvault/rxvault/segment"
)

// Requests are read back once this many bytes or requests are in flight,
// and when the group commits.
const (
	drainBytes    = 1 << 20
	drainRequests = 4096
)

// oidText is the OID of type text.
const oidText = 25

// Requests are flushed to the server every flushEvery requests, so that
// the server executes while the client reads on.
const flushEvery = 32

// Apply applies one source transaction. Its changes run in the open
// commit group, the target transaction that consecutive source
// transactions share (see "Group commit" in the package documentation);
// the group commits when it reaches a bound, before a statement that
// cannot run in a transaction block, and in Finish. A source
// transaction's changes are therefore committed all together, later than
// Apply returns, or not at all: the group is all or nothing.
//
// Row changes run as prepared statements with every value passed as a
// parameter in the source's exact text form (or binary form, for Binary
// values), typed with the target column's type, so the server parses it
// with the type's own input function. Each insert, update and delete must
// change exactly one row, or the group fails before it commits: anything
// else means the target has diverged from the source. See the package
// documentation for how rows are found.
//
// Statements are pipelined: Apply sends them and returns without waiting
// for their results, which are read (and each row count checked) before
// the group's COMMIT is sent, or sooner once 1 MiB or 4096 requests are
// in flight. DDL statements run in place (see ddl) and cost a round trip
// each. rxvault.sequences messages are remembered for Finish once their
// group commits; other messages are ignored.
//
// An error names the transaction that failed, which may be an earlier
// transaction of the open group than this one (its statements' results
// arrive later), the change (its index, operation and table) and the
// server's SQLSTATE, never a value: server messages that may quote row
// data are withheld. The whole group has then been rolled back: the
// target is as after the last group commit. If the failed transaction was
// the only one of its group (no transaction Apply accepted was rolled
// back with it), the Target may be used again, as before that Apply;
// otherwise, or if the error left the connection's state unknown
// (connection lost, commit outcome unknown, rollback failed), every later
// call fails, and the restore must start over into a new empty database.
func (t *Target) Apply(ctx context.Context, info *segment.TxnInfo, changes iter.Seq2[*segment.Change, error]) error {
	if err := t.usable(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("restore target %s: apply transaction %s: %w", t.name, describeTxn(info), err)
	}
	g := &t.g
	if !g.open {
		g.start(t, ctx)
	}
	defer g.bind(ctx)()
	var ti segment.TxnInfo
	if info != nil {
		ti = *info
	}
	g.txns = append(g.txns, ti)
	x := &txn{g: g, t: t, ctx: ctx}
	n := 0
	for c, err := range changes {
		if err != nil {
			return t.failed(fmt.Errorf("read change %d: %w", n+1, err))
		}
		n++
		if c == nil {
			return t.failed(fmt.Errorf("change %d: nil", n))
		}
		g.bytes += changeBytes(c)
		if err := x.apply(n, c); err != nil {
			return t.failed(err)
		}
	}
	g.accept(n, x.seqs)
	t.txns.Add(1)
	t.changes.Add(int64(n))
	if g.full(t.limits) {
		if err := t.commit(ctx, false); err != nil {
			return t.failed(err)
		}
	} else if g.p != nil && g.unflushed > 0 {
		// Let the server work on this transaction while the next one is
		// read.
		if err := g.p.Flush(); err != nil {
			return t.failed(g.connErr(err))
		}
		g.unflushed = 0
	}
	return nil
}

// failed rolls the group back after err and returns the error, naming the
// transaction that failed.
func (t *Target) failed(err error) error {
	return fmt.Errorf("restore target %s: %w", t.name, t.fail(err))
}

func describeTxn(info *segment.TxnInfo) string {
	if info == nil || *info == (segment.TxnInfo{}) {
		return "(no info)"
	}
	id := info.ID
	if id == "" {
		id = "-"
	}
	return fmt.Sprintf("%s (commit %s at %s)", id, info.Pos.Format(segment.EnginePostgres), info.Commit.UTC().Format(time.RFC3339Nano))
}

// txn is one Apply in progress: one source transaction of the group.
type txn struct {
	g   *group
	t   *Target
	ctx context.Context
	// dbWork: a row change, truncate or DDL statement was sent for this
	// transaction.
	dbWork bool
	seqs   map[string]seqValue
	// ddlSession holds the settings of the segment.MsgDDLSession
	// message just before, for the DDL change that follows it.
	ddlSession map[string]string
}

type reqKind uint8

const (
	reqControl reqKind = iota // BEGIN, set_config, TRUNCATE, savepoints
	reqCommit
	reqPrepare
	reqRow
	reqLookup
	reqDeallocate
)

// request is what a sent request's result is checked against.
type request struct {
	kind   reqKind
	txn    int // index in group.txns of its transaction, -1 if none
	change int // 1-based index of the change, 0 if none
	op     segment.Op
	rel    *segment.Relation
	st     *stmt // reqPrepare, reqRow
}

// req describes a request for change n of this transaction.
func (x *txn) req(kind reqKind, n int, op segment.Op, rel *segment.Relation) request {
	return request{kind: kind, txn: x.g.current(), change: n, op: op, rel: rel}
}

func (x *txn) apply(n int, c *segment.Change) error {
	switch c.Op {
	case segment.OpInsert, segment.OpUpdate, segment.OpDelete:
		return x.row(n, c)
	case segment.OpTruncate:
		return x.truncate(n, c)
	case segment.OpDDL:
		return x.ddl(n, c)
	case segment.OpMessage:
		return x.message(n, c)
	}
	return fmt.Errorf("change %d: unknown operation %s", n, c.Op)
}

func (x *txn) row(n int, c *segment.Change) error {
	ri, err := x.relation(n, c.Op, c.Rel)
	if err != nil {
		return err
	}
	t, g := x.t, x.g
	key, err := ri.stmtKey(t.keyBuf, c)
	if err != nil {
		return changeErr(n, c.Op, c.Rel, err)
	}
	t.keyBuf = key
	p := g.pipe()
	st := ri.stmts[string(key)]
	fresh := st == nil
	if fresh {
		t.stmtSeq++
		st = ri.buildStmt("rxv_"+strconv.FormatUint(t.stmtSeq, 10), c)
		ri.stmts[string(key)] = st
	}
	if len(st.flips) > 0 {
		g.flip(ri, st, x.req(reqControl, n, c.Op, c.Rel))
	}
	if fresh {
		p.SendPrepare(st.name, st.sql, st.oids)
		r := x.req(reqPrepare, n, c.Op, c.Rel)
		r.st = st
		g.push(r)
	}
	t.vals, t.formats = st.bind(c, t.vals, t.formats)
	if st.sd != nil {
		p.SendQueryStatement(st.sd, t.vals, t.formats, nil)
	} else {
		p.SendQueryPrepared(st.name, t.vals, t.formats, nil)
	}
	r := x.req(reqRow, n, c.Op, c.Rel)
	r.st = st
	g.push(r)
	g.rels[ri] = struct{}{}
	x.dbWork = true
	for _, v := range t.vals {
		g.queued += len(v) + 4
	}
	if g.queued >= drainBytes || len(g.pending) >= drainRequests {
		return g.drain()
	}
	if g.unflushed >= flushEvery {
		if err := p.Flush(); err != nil {
			return g.connErr(err)
		}
		g.unflushed = 0
	}
	return nil
}

func (x *txn) truncate(n int, c *segment.Change) error {
	names := make([]string, 0, len(c.Truncated))
	for _, r := range c.Truncated {
		ri, err := x.relation(n, c.Op, r)
		if err != nil {
			return err
		}
		x.g.rels[ri] = struct{}{}
		if ri.kind == 'p' {
			names = append(names, ri.ident) // ONLY is refused for partitioned tables
		} else {
			names = append(names, "ONLY "+ri.ident)
		}
	}
	sql := "TRUNCATE " + strings.Join(names, ", ")
	if c.TruncateFlags&segment.TruncateRestartIdentity != 0 {
		sql += " RESTART IDENTITY"
	}
	if c.TruncateFlags&segment.TruncateCascade != 0 {
		sql += " CASCADE"
	}
	x.g.pipe().SendQueryParams(sql, nil, nil, nil, nil)
	x.g.push(x.req(reqControl, n, c.Op, c.Truncated[0]))
	x.dbWork = true
	return nil
}

// ddl runs a DDL statement in place, under SET LOCAL search_path =
// Change.Schema: the source session's search_path as capture records it
// (current_setting('search_path') with $user resolved), of which a single
// schema name is a special case; and under the source session's settings
// from the segment.MsgDDLSession message before it, if any (see
// ddlSettingNames). The next statement puts the session's own back. It
// leaves the pipeline (the statement may hold several commands, which only
// the simple query protocol takes) and makes every relation be looked up
// again.
//
// When the statement is its transaction's first change, a savepoint is
// taken before it, so that if PostgreSQL refuses it in a transaction block
// it can be undone and run on its own (see ddlAlone). After an ALTER TYPE
// (see commitsAfter) the group commits at the end of the transaction.
func (x *txn) ddl(n int, c *segment.Change) error {
	g := x.g
	first := !x.dbWork
	p := g.pipe()
	x.dbWork = true
	g.ddl++
	g.unflip(g.current(), n)
	if first {
		p.SendQueryParams("SAVEPOINT "+ddlSavepoint, nil, nil, nil, nil)
		g.push(x.req(reqControl, n, c.Op, nil))
	}
	set := x.t.ddlSettings(c, x.ddlSession)
	x.ddlSession = nil
	for _, s := range set {
		p.SendQueryParams("SELECT pg_catalog.set_config($1, $2, true)",
			[][]byte{[]byte(s.name), []byte(s.value)}, []uint32{oidText, oidText}, nil, nil)
		g.push(x.req(reqControl, n, c.Op, nil))
		g.reset = append(g.reset, s.name)
	}
	if err := g.sync(); err != nil {
		return err
	}
	x.t.rels.gen++
	results, err := x.t.conn.PgConn().Exec(x.ctx, c.SQL).ReadAll()
	if err == nil {
		for _, r := range results {
			if commitsAfter[r.CommandTag.String()] {
				g.commitAfter = true
			}
		}
		g.release = first
		return nil
	}
	if pe := pgErrorOf(err); pe != nil && pe.Code == "25001" && first {
		return x.ddlAlone(n, c, set)
	}
	return g.resultErr(x.req(reqControl, n, c.Op, nil), err)
}

// commitsAfter lists the command tags after which the group commits at
// the end of the transaction: ALTER TYPE … ADD VALUE adds an enum value
// that PostgreSQL refuses to use until the transaction that added it
// commits, and DO or CALL may have run it.
var commitsAfter = map[string]bool{"ALTER TYPE": true, "DO": true, "CALL": true}

// ddlAlone runs a DDL statement that PostgreSQL refuses inside a
// transaction block (SQLSTATE 25001: CREATE INDEX CONCURRENTLY, …) on its
// own, as the source did. It is only done when the statement is its
// transaction's first change: the statement's savepoint is rolled back,
// the group so far commits, the statement runs, and the transaction's
// changes after it, if any, run in a new group that ends with them.
func (x *txn) ddlAlone(n int, c *segment.Change, set []setting) error {
	g, t := x.g, x.t
	pc := t.conn.PgConn()
	fail := func(err error) error { return g.resultErr(x.req(reqControl, n, c.Op, nil), err) }
	if _, err := pc.Exec(x.ctx, "ROLLBACK TO SAVEPOINT "+ddlSavepoint).ReadAll(); err != nil {
		return fail(err)
	}
	g.reset = nil // the savepoint's rollback undid the SET LOCALs
	if err := t.commit(x.ctx, false); err != nil {
		return err
	}
	g.commitAfter = true
	setConfig := func(name, value string) error {
		_, err := pc.ExecParams(x.ctx, "SELECT pg_catalog.set_config($1, $2, false)",
			[][]byte{[]byte(name), []byte(value)}, []uint32{oidText, oidText}, nil, nil).Close()
		return err
	}
	var err error
	for i, s := range set {
		if err = setConfig(s.name, s.value); err != nil {
			set = set[:i]
			break
		}
	}
	if err == nil {
		_, err = pc.Exec(x.ctx, c.SQL).ReadAll()
	}
	for _, s := range set {
		if perr := setConfig(s.name, t.session[s.name]); perr != nil && err == nil {
			err = perr
		}
	}
	if err != nil {
		return fail(err)
	}
	x.dbWork = false
	return nil
}

func (x *txn) message(n int, c *segment.Change) error {
	if c.Prefix == segment.MsgDDLSession {
		sess, err := parseDDLSession(c.Content)
		if err != nil {
			return fmt.Errorf("change %d (message %s): %w", n, c.Prefix, err)
		}
		x.ddlSession = sess
		return nil
	}
	if segment.UnknownMessage(c.Prefix) {
		return fmt.Errorf("change %d: message %s is not one this rxvault knows (an archive written by a newer rxvault?): restore with that version", n, c.Prefix)
	}
	if c.Prefix != segment.MsgSequences {
		return nil // heartbeats and foreign messages change nothing
	}
	vals, err := parseSequences(c.Content)
	if err != nil {
		return fmt.Errorf("change %d (message %s): %w", n, c.Prefix, err)
	}
	if x.seqs == nil {
		x.seqs = map[string]seqValue{}
	}
	for k, v := range vals {
		x.seqs[k] = v
	}
	return nil
}

// relation resolves rel against the target, looking it up (inside the
// transaction, so that it sees the group's own DDL) when it is new or a
// DDL statement ran since it was last looked up.
func (x *txn) relation(n int, op segment.Op, rel *segment.Relation) (*relInfo, error) {
	if rel == nil {
		return nil, changeErr(n, op, rel, errors.New("no relation"))
	}
	g := x.g
	rc := &x.t.rels
	ri := rc.byPtr[rel]
	if ri == nil {
		ri = rc.byKey[contentKey(rel)]
		if ri != nil {
			x.t.rememberPtr(rel, ri)
		}
	}
	if ri != nil && ri.gen == rc.gen {
		return ri, nil
	}
	p := g.pipe()
	p.SendQueryParams(lookupSQL, [][]byte{[]byte(rel.Schema), []byte(rel.Table)}, []uint32{oidText, oidText}, nil, nil)
	g.push(x.req(reqLookup, n, op, rel))
	if err := g.drain(); err != nil {
		return nil, err
	}
	fresh, err := newRelInfo(rel, g.looked, rc.gen, g.flipped)
	if err != nil {
		return nil, changeErr(n, op, rel, fmt.Errorf("%w: the target has diverged from the source", err))
	}
	if ri != nil {
		if ri.sameShape(fresh) {
			ri.gen = rc.gen
			return ri, nil
		}
		// Same relation, new shape on the target: its statements go.
		for _, st := range ri.stmts {
			x.t.garbage = append(x.t.garbage, st.name)
		}
		*ri = *fresh
		return ri, nil
	}
	rc.byKey[contentKey(rel)] = fresh
	x.t.rememberPtr(rel, fresh)
	return fresh, nil
}

func (t *Target) rememberPtr(rel *segment.Relation, ri *relInfo) {
	if len(t.rels.byPtr) >= maxCachedPointers {
		clear(t.rels.byPtr)
	}
	t.rels.byPtr[rel] = ri
}
