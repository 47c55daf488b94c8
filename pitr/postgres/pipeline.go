package postgres

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rxvault/rxvault/segment"
)

// drain asks the server for the results of every request sent and reads
// them.
func (g *group) drain() error {
	if len(g.pending) == 0 {
		return nil
	}
	g.p.SendFlushRequest()
	if err := g.p.Flush(); err != nil {
		return g.connErr(err)
	}
	g.unflushed = 0
	return g.readPending()
}

// sync ends the pipeline with a Sync (the transaction stays open) and
// reads every result.
func (g *group) sync() error {
	if g.p == nil {
		return nil
	}
	if err := g.p.Sync(); err != nil {
		return g.connErr(err)
	}
	if err := g.readPending(); err != nil {
		return err
	}
	res, err := g.p.GetResults()
	if err != nil {
		return g.resultErr(request{kind: reqControl, txn: -1}, err)
	}
	if _, ok := res.(*pgconn.PipelineSync); !ok {
		return g.connErr(fmt.Errorf("pipeline: got %T, want the end of the pipeline", res))
	}
	p := g.p
	g.p = nil
	g.unflushed = 0
	if err := p.Close(); err != nil {
		return g.connErr(err)
	}
	return nil
}

// readPending reads and checks the result of every pending request.
func (g *group) readPending() error {
	for i, req := range g.pending {
		res, err := g.p.GetResults()
		if err == nil && res == nil {
			err = errors.New("pipeline: a result is missing")
		}
		if err == nil {
			err = g.checkResult(req, res)
		}
		if err != nil {
			g.pending = g.pending[:copy(g.pending, g.pending[i+1:])]
			return g.resultErr(req, err)
		}
	}
	g.pending = g.pending[:0]
	g.queued = 0
	return nil
}

// checkResult checks one request's result.
func (g *group) checkResult(req request, res any) error {
	switch req.kind {
	case reqPrepare:
		sd, ok := res.(*pgconn.StatementDescription)
		if !ok {
			return fmt.Errorf("pipeline: got %T for a prepare", res)
		}
		sd.Name, sd.SQL = req.st.name, req.st.sql
		req.st.sd = sd
		return nil
	case reqDeallocate:
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
		tag, err := rr.Close()
		if err != nil {
			return err
		}
		if n := tag.RowsAffected(); n != 1 {
			return rowCountError(strconv.FormatInt(n, 10))
		}
	case reqLookup:
		g.looked = g.looked[:0]
		for rr.NextRow() {
			vals := rr.Values()
			row := make([]string, len(vals))
			for i, v := range vals {
				row[i] = string(v)
			}
			g.looked = append(g.looked, row)
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

// connErr is an error of the connection rather than of a statement.
func (g *group) connErr(err error) error {
	g.t.connLost(err)
	return fmt.Errorf("connection: %w", err)
}

// resultErr turns a request's failure into an error naming the change,
// and its transaction (see txnError). Server messages that may quote row
// values are left out (see serverError). A COMMIT whose result never
// came leaves the group's outcome unknown.
func (g *group) resultErr(req request, err error) error {
	pe := pgErrorOf(err)
	if pe == nil {
		if req.kind == reqCommit {
			g.t.unknownOutcome(err)
		}
		if g.t.conn.PgConn().IsClosed() || (g.ctx != nil && g.ctx.Err() != nil) {
			return g.connErr(err)
		}
		if req.change == 0 {
			return &txnError{txn: req.txn, err: err}
		}
		return &txnError{txn: req.txn, err: changeErr(req.change, req.op, req.rel, err)}
	}
	what := newServerError(pe)
	if req.change == 0 {
		return &txnError{txn: req.txn, err: fmt.Errorf("%s: %w", controlName(req), what)}
	}
	return &txnError{txn: req.txn, err: changeErr(req.change, req.op, req.rel, what)}
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
