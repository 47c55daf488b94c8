package mysql

import (
	"errors"
	"fmt"
	"io"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/segment"
)

// txnBuf collects one transaction's changes until it commits: in memory
// while they hold less than the threshold, then in a segment.Spill (an
// unlinked, encrypted scratch file), so a transaction of any size is
// captured in bounded memory.
type txnBuf struct {
	dir       string
	threshold int64

	mem      []segment.Change
	memBytes int64
	spill    *segment.Spill
	n        int
}

func newTxnBuf(dir string, threshold int64) *txnBuf {
	return &txnBuf{dir: dir, threshold: threshold}
}

// add appends c; the buffer keeps c and its values.
func (b *txnBuf) add(c segment.Change) error {
	if b.spill == nil {
		size := c.MemSize()
		if b.memBytes+size <= b.threshold {
			b.mem = append(b.mem, c)
			b.memBytes += size
			b.n++
			return nil
		}
		s, err := segment.NewSpill(b.dir, true)
		if err != nil {
			return err
		}
		b.spill = s
		for i := range b.mem {
			if err := s.Change(0, &b.mem[i]); err != nil {
				return err
			}
		}
		b.mem, b.memBytes = nil, 0
	}
	if err := b.spill.Change(0, &c); err != nil {
		return err
	}
	b.n++
	return nil
}

// txn returns the committed transaction; its Changes may be iterated
// once, before close.
func (b *txnBuf) txn(info segment.TxnInfo, end segment.Position) *capture.Txn {
	t := &capture.Txn{Info: info, End: end, Len: b.n}
	t.Changes = func(yield func(*segment.Change, error) bool) {
		if b.spill == nil {
			for i := range b.mem {
				if !yield(&b.mem[i], nil) {
					return
				}
			}
			return
		}
		if err := b.readSpill(yield); err != nil {
			yield(nil, fmt.Errorf("read back transaction %s: %w", info.ID, err))
		}
	}
	return t
}

func (b *txnBuf) readSpill(yield func(*segment.Change, error) bool) error {
	rd, err := b.spill.Reader()
	if err != nil {
		return err
	}
	defer rd.Close()
	got := 0
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if rec.Kind != segment.SpillChange {
			continue
		}
		got++
		if !yield(rec.Change, nil) {
			return nil
		}
	}
	if got != b.n {
		return fmt.Errorf("%d changes read back, %d kept", got, b.n)
	}
	return nil
}

// close releases the spill file, if any.
func (b *txnBuf) close() {
	if b.spill != nil {
		_ = b.spill.Close()
		b.spill = nil
	}
	b.mem, b.memBytes, b.n = nil, 0, 0
}
