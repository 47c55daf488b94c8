package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rxvault/rxvault/segment"
)

// drain asks the server for the results of every request sent and reads
// them.
func (x *txn) drain() error {
	if len(x.pending) == 0 {
		return nil
	}
	x.p.SendFlushRequest()
	if err := x.p.Flush(); err != nil {
		return x.connErr(err)
	}
	x.unflushed = 0
	return x.readPending()
}

// sync ends the pipeline with a Sync, which commits an implicit
// transaction (an explicit one stays open), and reads every result.
func (x *txn) sync() error {
	if x.p == nil {
		return nil
	}
	if err := x.p.Sync(); err != nil {
		return x.connErr(err)
	}
	err := x.readPending()
	if err == nil {
		var res any
		res, err = x.p.GetResults()
		if err != nil {
			// An error at the Sync itself: the implicit commit failed.
			err = x.resultErr(request{kind: reqCommit}, err)
		} else if _, ok := res.(*pgconn.PipelineSync); !ok {
			err = x.connErr(fmt.Errorf("pipeline: got %T, want the end of the pipeline", res))
		}
	}
	if err != nil {
		if x.implicit && !x.serverFailed {
			// The Sync went out and the server reported nothing wrong:
			// it may have committed what the client now rejects.
			x.t.unknownOutcome(err)
		}
		return err
	}
	p := x.p
	x.p = nil
	if err := p.Close(); err != nil {
		return x.connErr(err)
	}
	return nil
}

// readPending reads and checks the result of every pending request.
func (x *txn) readPending() error {
	for i, req := range x.pending {
		res, err := x.p.GetResults()
		if err == nil && res == nil {
			err = errors.New("pipeline: a result is missing")
		}
		if err == nil {
			err = x.checkResult(req, res)
		}
		if err != nil {
			x.pending = x.pending[:copy(x.pending, x.pending[i+1:])]
			return x.resultErr(req, err)
		}
	}
	x.pending = x.pending[:0]
	x.queued = 0
	return nil
}

// checkResult checks one request's result.
func (x *txn) checkResult(req request, res any) error {
	if req.kind == reqPrepare {
		sd, ok := res.(*pgconn.StatementDescription)
		if !ok {
			return fmt.Errorf("pipeline: got %T for a prepare", res)
		}
		sd.Name, sd.SQL = req.st.name, req.st.sql
		req.st.sd = sd
		return nil
	}
	if req.kind == reqDeallocate {
		if _, ok := res.(*pgconn.CloseComplete); !ok {
			return fmt.Errorf("pipeline: got %T for a deallocate", res)
		}
		return nil
	}
	rr, ok := res.(*pgconn.ResultReader)
	if !ok {
		return fmt.Errorf("pipeline: got %T for a statement", res)
	}
	switch req.kind {
	case reqRow:
		if req.st.checked {
			got := rr.NextRow() && len(rr.Values()) == 1 && string(rr.Values()[0]) == "1"
			if _, err := rr.Close(); err != nil {
				return err
			}
			if !got {
				return errors.New("the statement did not confirm it changed exactly one row")
			}
			return nil
		}
		tag, err := rr.Close()
		if err != nil {
			return err
		}
		if n := tag.RowsAffected(); n != 1 {
			return rowCountError(strconv.FormatInt(n, 10))
		}
	case reqLookup:
		x.looked = x.looked[:0]
		for rr.NextRow() {
			vals := rr.Values()
			row := make([]string, len(vals))
			for i, v := range vals {
				row[i] = string(v)
			}
			x.looked = append(x.looked, row)
		}
		if _, err := rr.Close(); err != nil {
			return err
		}
	case reqCommit:
		tag, err := rr.Close()
		if err != nil {
			return err
		}
		if tag.String() != "COMMIT" {
			return fmt.Errorf("the transaction was rolled back at commit (%s)", tag)
		}
	default:
		if _, err := rr.Close(); err != nil {
			return err
		}
	}
	return nil
}

func (x *txn) commit() error {
	if !x.began {
		return nil // nothing was sent: messages only
	}
	if x.implicit {
		return x.sync()
	}
	x.resetPath = false // SET LOCAL ends with the transaction
	if !x.check {
		// Unchecked statements: read their tags before committing.
		if err := x.drain(); err != nil {
			return err
		}
	}
	x.pipe().SendQueryPrepared(stmtCommit, nil, nil, nil)
	x.push(request{kind: reqCommit})
	return x.sync()
}

// abort ends the pipeline and rolls the transaction back. Statements
// prepared so far are forgotten (and deallocated by the next transaction),
// since the failed transaction may have left some unprepared or its DDL
// undone.
func (x *txn) abort() {
	t := x.t
	if x.p != nil {
		if x.implicit {
			// The Sync below would commit the implicit transaction:
			// make it fail first. (After a Sync already sent this
			// starts a new, empty, implicit transaction: harmless.)
			x.p.SendQueryParams(abandonSQL, nil, nil, nil, nil)
		}
		x.p.SendPipelineSync()
		_ = x.p.Flush()
		_ = x.p.Close()
		x.p = nil
	}
	x.pending = x.pending[:0]
	for _, ri := range t.rels.byKey {
		for _, st := range ri.stmts {
			t.garbage = append(t.garbage, st.name)
		}
	}
	t.rels = newRelCache()
	pc := t.conn.PgConn()
	if pc.IsClosed() {
		t.connLost(errors.New("connection lost during a transaction; its outcome is unknown"))
		return
	}
	if !x.began || x.implicit {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(x.ctx), 30*time.Second)
	defer cancel()
	if _, err := pc.Exec(ctx, "ROLLBACK").ReadAll(); err != nil {
		t.broken = fmt.Errorf("rollback after a failed transaction: %w", err)
	}
}

// abandonSQL fails, so that the Sync after it rolls back the implicit
// transaction it is part of.
const abandonSQL = "SELECT 'rxvault: transaction abandoned'::int"

// connErr is an error of the connection rather than of a statement.
func (x *txn) connErr(err error) error {
	x.t.connLost(err)
	return fmt.Errorf("connection: %w", err)
}

// resultErr turns a request's failure into an error naming the change.
// Server messages that may quote row values are left out (see
// serverError).
func (x *txn) resultErr(req request, err error) error {
	pe := pgErrorOf(err)
	if pe != nil {
		x.serverFailed = true
	}
	if pe == nil {
		if x.t.conn.PgConn().IsClosed() || x.ctx.Err() != nil {
			return x.connErr(err)
		}
		if req.change == 0 {
			return err
		}
		return changeErr(req.change, req.op, req.rel, err)
	}
	var what error
	if n, ok := rowsChanged(pe); ok {
		what = rowCountError(n)
	} else {
		what = newServerError(pe)
	}
	if req.change == 0 {
		return fmt.Errorf("%s: %w", controlName(req), what)
	}
	return changeErr(req.change, req.op, req.rel, what)
}

// rowCountError says a row statement changed n rows, not one.
func rowCountError(n string) error {
	return fmt.Errorf("%s rows matched where exactly 1 must: the target has diverged from the source", n)
}

func controlName(req request) string {
	if req.kind == reqCommit {
		return "commit"
	}
	return "statement"
}

// changeErr names change n: its index, operation and table.
func changeErr(n int, op segment.Op, rel *segment.Relation, err error) error {
	if rel == nil {
		return fmt.Errorf("change %d (%s): %w", n, op, err)
	}
	return fmt.Errorf("change %d (%s %s): %w", n, op, relName(rel), err)
}
