package pitr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/rxvault/rxvault/archive"
	"github.com/rxvault/rxvault/segment"
)

// ErrNoTxn is returned by FindTxn when no archived transaction has the id.
var ErrNoTxn = errors.New("transaction not in the archive")

// FindTxn reads the archive for the transaction whose source id (a GTID, a
// PostgreSQL xid) is id, in the form segment.ParseTxnID returns, and
// returns a Point at it: inclusive, or just before it with exclusive. It
// reads the segments newest first, newest chain first, and stops at
// the first match, so an id that recurs (a PostgreSQL xid after
// wraparound) names its newest transaction. Each segment read is
// authenticated as it is read. It fails with ErrNoTxn when no segment
// holds the id.
func (r *Restorer) FindTxn(ctx context.Context, idx *archive.Index, id string, exclusive bool) (Point, error) {
	searched := 0
	for _, c := range slices.Backward(idx.Chains) {
		e := segment.Engine(0)
		if c.Marker != nil {
			e = c.Marker.Engine
		}
		// Every segment, holes or not: a transaction past a hole is
		// found, and planning refuses it naming the hole.
		present, _ := c.Present()
		for _, s := range slices.Backward(present) {
			info, err := r.findIn(ctx, s, id)
			if err != nil {
				return Point{}, err
			}
			searched++
			if info != nil {
				return Point{Pos: info.Pos, Exclusive: exclusive, Chain: c.ID, ID: id, Engine: e}, nil
			}
		}
	}
	return Point{}, fmt.Errorf("%w: no transaction %s among the %d archived segments of %s: check the id (mariadb-binlog or mysqlbinlog print it), or restore by --time",
		ErrNoTxn, id, searched, idx.Source)
}

// findIn returns the begin information of the transaction id in segment
// s, or nil.
func (r *Restorer) findIn(ctx context.Context, s archive.Segment, id string) (*segment.TxnInfo, error) {
	rc, err := r.Store.Get(ctx, s.Name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	sr, err := segment.NewReader(rc, r.Identities)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	defer sr.Close()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		info, err := sr.Next()
		if errors.Is(err, io.EOF) {
			return nil, nil
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
		if info.ID == id {
			found := *info
			return &found, nil
		}
	}
}
