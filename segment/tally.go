package segment

import (
	"fmt"
	"time"
)

// Tally accumulates, transaction by transaction in commit order, the claims
// a header makes about its payload. Writers of segments use it to fill the
// header before writing; Writer and Reader use it to check the header.
type Tally struct {
	Txns, Records           uint64
	FirstPos, LastPos       Position
	FirstCommit, LastCommit time.Time // minimum and maximum commit times
}

// Add counts one transaction with the given number of changes. It fails if
// the position does not strictly follow the previous one or the
// transaction lacks a position or commit time.
func (t *Tally) Add(info TxnInfo, changes uint64) error {
	if err := t.admit(info); err != nil {
		return err
	}
	c := normTime(info.Commit)
	if t.Txns == 0 {
		t.FirstPos, t.FirstCommit, t.LastCommit = info.Pos, c, c
	}
	t.LastPos = info.Pos
	t.FirstCommit = minTime(t.FirstCommit, c)
	t.LastCommit = maxTime(t.LastCommit, c)
	t.Txns++
	t.Records += changes
	return nil
}

// admit checks that a transaction may come next.
func (t *Tally) admit(info TxnInfo) error {
	switch {
	case info.Pos.IsZero() || info.Commit.IsZero():
		return fmt.Errorf("transaction without position or commit time")
	case t.Txns > 0 && info.Pos.Compare(t.LastPos) <= 0:
		return fmt.Errorf("transaction position %s not after %s", info.Pos, t.LastPos)
	}
	return nil
}

// Apply copies the tally's claims into h.
func (t *Tally) Apply(h *Header) {
	h.Txns, h.Records = t.Txns, t.Records
	h.FirstPos, h.LastPos = t.FirstPos, t.LastPos
	h.FirstCommit, h.LastCommit = t.FirstCommit, t.LastCommit
}

// check compares the tally with what h claims.
func (t *Tally) check(h *Header) error {
	switch {
	case t.Txns != h.Txns:
		return fmt.Errorf("%d transactions, header claims %d", t.Txns, h.Txns)
	case t.Records != h.Records:
		return fmt.Errorf("%d records, header claims %d", t.Records, h.Records)
	case t.FirstPos != h.FirstPos || t.LastPos != h.LastPos:
		return fmt.Errorf("positions %s..%s, header claims %s..%s", t.FirstPos, t.LastPos, h.FirstPos, h.LastPos)
	case !t.FirstCommit.Equal(h.FirstCommit) || !t.LastCommit.Equal(h.LastCommit):
		return fmt.Errorf("commit times %s..%s, header claims %s..%s", t.FirstCommit, t.LastCommit, h.FirstCommit, h.LastCommit)
	}
	return nil
}
