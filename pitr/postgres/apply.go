package postgres

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/segment"
)

// A transaction's requests are sent in one pipeline and read back when it
// commits, or sooner once this many bytes or requests are in flight.
const (
	drainBytes    = 1 << 20
	drainRequests = 4096
)

// oidText is the OID of type text.
const oidText = 25

// A transaction of at most smallTxnChanges changes holding at most
// smallTxnBytes of values is small: it goes to the server in one round
// trip with checked statements (see Apply).
const (
	smallTxnChanges = 4
	smallTxnBytes   = 64 << 10
)

// Requests of a large transaction are flushed to the server every
// flushEvery requests, so that the server executes while the client
// builds the rest.
const flushEvery = 32

// Apply applies one source transaction as one target transaction: all of
// its changes, or, on error, none.
//
// Row changes run as prepared statements with every value passed as a
// parameter in the source's exact text form (or binary form, for Binary
// values), typed with the target column's type, so the server parses it
// with the type's own input function. Each insert, update and delete must
// change exactly one row, or the transaction fails: anything else means
// the target has diverged from the source. See the package documentation
// for how rows are found.
//
// Statements are pipelined: a small transaction (at most 4 changes, 64
// KiB of values, no DDL) costs one round trip, a larger one two, however
// many rows it has; see "Speed" in the package documentation. DDL
// statements run in place (see ddl) and cost a round trip each.
// rxvault.sequences messages are remembered for Finish once the
// transaction commits; other messages are ignored.
//
// Errors name the transaction, the change (its index, operation and
// table) and the server's SQLSTATE, never a value: server messages that
// may quote row data are withheld. After an error the transaction has
// been rolled back and the Target may be used again, unless the error
// left the connection's state unknown (connection lost, commit outcome
// unknown): then every later call fails, and the restore must start over
// into a new empty database.
func (t *Target) Apply(ctx context.Context, info *segment.TxnInfo, changes iter.Seq2[*segment.Change, error]) error {
	if err := t.usable(); err != nil {
		return err
	}
	x := &txn{t: t, ctx: ctx, pending: t.pendingBuf[:0]}
	defer func() { t.pendingBuf = x.pending[:0] }()
	// Hold the first changes until the transaction proves small or not.
	var held []*segment.Change
	heldBytes, deciding := 0, true
	n := 0
	for c, err := range changes {
		if err != nil {
			return t.failed(x, info, fmt.Errorf("read change %d: %w", n+1, err))
		}
		n++
		if c == nil {
			return t.failed(x, info, fmt.Errorf("change %d: nil", n))
		}
		if deciding {
			heldBytes += changeBytes(c)
			if len(held) < smallTxnChanges && heldBytes <= smallTxnBytes {
				held = append(held, cloneChange(c))
				continue
			}
			deciding = false
			if err := x.applyAll(held); err != nil {
				return t.failed(x, info, err)
			}
		}
		if err := x.apply(n, c); err != nil {
			return t.failed(x, info, err)
		}
	}
	if deciding {
		x.check = true
		x.implicit = !slices.ContainsFunc(held, func(c *segment.Change) bool { return c.Op == segment.OpDDL })
		if err := x.applyAll(held); err != nil {
			return t.failed(x, info, err)
		}
	}
	if err := x.commit(); err != nil {
		return t.failed(x, info, err)
	}
	for k, v := range x.seqs {
		t.seqs[k] = v
	}
	t.txns.Add(1)
	t.changes.Add(int64(n))
	return nil
}

// failed rolls x back and returns err with the transaction's identity.
func (t *Target) failed(x *txn, info *segment.TxnInfo, err error) error {
	x.abort()
	return fmt.Errorf("restore target %s: apply transaction %s: %w", t.name, describeTxn(info), err)
}

func describeTxn(info *segment.TxnInfo) string {
	if info == nil {
		return "(no info)"
	}
	id := info.ID
	if id == "" {
		id = "-"
	}
	return fmt.Sprintf("%s (commit %s at %s)", id, info.Pos.Format(segment.EnginePostgres), info.Commit.UTC().Format(time.RFC3339Nano))
}

// txn is one Apply in progress.
type txn struct {
	t   *Target
	ctx context.Context
	// check: the transaction is small; its row statements are checked by
	// the server (see Apply).
	check bool
	// implicit: a small transaction without DDL runs as the pipeline's
	// implicit transaction, which its Sync commits: no BEGIN, no COMMIT.
	implicit bool
	// serverFailed: the server reported an error, so it rolled back the
	// implicit transaction.
	serverFailed bool
	p            *pgconn.Pipeline // open pipeline, or nil
	// unflushed counts requests queued since the last flush.
	unflushed int
	// began: BEGIN was sent. dbWork: a row change, truncate or DDL was.
	began, dbWork bool
	// resetPath: a DDL statement set search_path; set it back before the
	// next statement of the transaction.
	resetPath bool
	pending   []request // sent, not yet read
	queued    int       // bytes sent since the last drain
	seqs      map[string]seqValue
	looked    [][]string // the last lookup's result
}

type reqKind uint8

const (
	reqControl reqKind = iota // BEGIN, set_config, TRUNCATE
	reqCommit
	reqPrepare
	reqRow
	reqLookup
	reqDeallocate
)

// request is what a sent request's result is checked against.
type request struct {
	kind   reqKind
	change int // 1-based index of the change, 0 if none
	op     segment.Op
	rel    *segment.Relation
	st     *stmt // reqPrepare, reqRow
}

func (x *txn) push(r request) {
	x.pending = append(x.pending, r)
	x.unflushed++
}

// pipe returns the open pipeline, starting one (and the transaction) if
// needed.
func (x *txn) pipe() *pgconn.Pipeline {
	if x.p != nil {
		return x.p
	}
	x.p = x.t.conn.PgConn().StartPipeline(x.ctx)
	for _, name := range x.t.garbage {
		x.p.SendDeallocate(name)
		x.push(request{kind: reqDeallocate})
	}
	x.t.garbage = x.t.garbage[:0]
	if !x.began {
		if !x.implicit {
			x.p.SendQueryPrepared(stmtBegin, nil, nil, nil)
			x.push(request{kind: reqControl})
		}
		x.began = true
	}
	if x.resetPath {
		x.p.SendQueryParams("SELECT pg_catalog.set_config('search_path', $1, true)",
			[][]byte{[]byte(x.t.searchPath)}, []uint32{oidText}, nil, nil)
		x.push(request{kind: reqControl})
		x.resetPath = false
	}
	return x.p
}

// applyAll applies the held changes, the transaction's first.
func (x *txn) applyAll(held []*segment.Change) error {
	for i, c := range held {
		if err := x.apply(i+1, c); err != nil {
			return err
		}
	}
	return nil
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
	t := x.t
	key, err := ri.stmtKey(t.keyBuf, c, x.check)
	if err != nil {
		return changeErr(n, c.Op, c.Rel, err)
	}
	t.keyBuf = key
	p := x.pipe()
	st := ri.stmts[string(key)]
	if st == nil {
		t.stmtSeq++
		st = ri.buildStmt("rxv_"+strconv.FormatUint(t.stmtSeq, 10), c, x.check)
		ri.stmts[string(key)] = st
		p.SendPrepare(st.name, st.sql, st.oids)
		x.push(request{kind: reqPrepare, change: n, op: c.Op, rel: c.Rel, st: st})
	}
	t.vals, t.formats = st.bind(c, t.vals, t.formats)
	if st.sd != nil {
		p.SendQueryStatement(st.sd, t.vals, t.formats, nil)
	} else {
		p.SendQueryPrepared(st.name, t.vals, t.formats, nil)
	}
	x.push(request{kind: reqRow, change: n, op: c.Op, rel: c.Rel, st: st})
	x.dbWork = true
	for _, v := range t.vals {
		x.queued += len(v) + 4
	}
	if x.queued >= drainBytes || len(x.pending) >= drainRequests {
		return x.drain()
	}
	if !x.check && x.unflushed >= flushEvery {
		if err := p.Flush(); err != nil {
			return x.connErr(err)
		}
		x.unflushed = 0
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
	x.pipe().SendQueryParams(sql, nil, nil, nil, nil)
	x.push(request{kind: reqControl, change: n, op: c.Op, rel: c.Truncated[0]})
	x.dbWork = true
	return nil
}

// ddl runs a DDL statement in place, under SET LOCAL search_path =
// Change.Schema: the source session's search_path as capture records it
// (current_setting('search_path') with $user resolved), of which a single
// schema name is a special case. It leaves the pipeline (the statement may
// hold several commands, which only the simple query protocol takes) and
// makes every relation be looked up again.
func (x *txn) ddl(n int, c *segment.Change) error {
	first := !x.dbWork
	p := x.pipe()
	x.dbWork = true
	if c.Schema != "" {
		p.SendQueryParams("SELECT pg_catalog.set_config('search_path', $1, true)",
			[][]byte{[]byte(c.Schema)}, []uint32{oidText}, nil, nil)
		x.push(request{kind: reqControl, change: n, op: c.Op})
		x.resetPath = true
	}
	if err := x.sync(); err != nil {
		return err
	}
	x.t.rels.gen++
	_, err := x.t.conn.PgConn().Exec(x.ctx, c.SQL).ReadAll()
	if err == nil {
		return nil
	}
	if pe := pgErrorOf(err); pe != nil && pe.Code == "25001" && first {
		return x.ddlAlone(n, c)
	}
	return x.resultErr(request{kind: reqControl, change: n, op: c.Op}, err)
}

// ddlAlone runs a DDL statement that PostgreSQL refuses inside a
// transaction block (SQLSTATE 25001: CREATE INDEX CONCURRENTLY, …) on its
// own, as the source did. It is only done when the statement is the
// transaction's first change, so nothing is lost by rolling back; changes
// after it, if any, run in a new transaction.
func (x *txn) ddlAlone(n int, c *segment.Change) error {
	pc := x.t.conn.PgConn()
	if _, err := pc.Exec(x.ctx, "ROLLBACK").ReadAll(); err != nil {
		return x.resultErr(request{kind: reqControl, change: n, op: c.Op}, err)
	}
	x.began, x.dbWork, x.resetPath = false, false, false
	setPath := func(path string) error {
		_, err := pc.ExecParams(x.ctx, "SELECT pg_catalog.set_config('search_path', $1, false)",
			[][]byte{[]byte(path)}, []uint32{oidText}, nil, nil).Close()
		return err
	}
	if c.Schema != "" {
		if err := setPath(c.Schema); err != nil {
			return x.resultErr(request{kind: reqControl, change: n, op: c.Op}, err)
		}
	}
	_, err := pc.Exec(x.ctx, c.SQL).ReadAll()
	if c.Schema != "" {
		if perr := setPath(x.t.searchPath); perr != nil && err == nil {
			err = perr
		}
	}
	if err != nil {
		return x.resultErr(request{kind: reqControl, change: n, op: c.Op}, err)
	}
	return nil
}

func (x *txn) message(n int, c *segment.Change) error {
	if c.Prefix != capture.PrefixSequences {
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
// transaction, so that it sees the transaction's own DDL) when it is new
// or a DDL statement ran since it was last looked up.
func (x *txn) relation(n int, op segment.Op, rel *segment.Relation) (*relInfo, error) {
	if rel == nil {
		return nil, changeErr(n, op, rel, errors.New("no relation"))
	}
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
	p := x.pipe()
	p.SendQueryParams(lookupSQL, [][]byte{[]byte(rel.Schema), []byte(rel.Table)}, []uint32{oidText, oidText}, nil, nil)
	x.push(request{kind: reqLookup, change: n, op: op, rel: rel})
	if err := x.drain(); err != nil {
		return nil, err
	}
	fresh, err := newRelInfo(rel, x.looked, rc.gen)
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
