package postgres

import (
	"errors"
	"fmt"
	"io"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/segment"
)

// txnBuf collects one transaction's changes until it commits.
//
// Spill policy: a transaction the server sends whole (BEGIN ... COMMIT)
// stays in memory while its changes hold less than Config.SpillThreshold
// bytes; from then on it is written to a segment.Spill (an unlinked,
// encrypted scratch file) and read back from there when delivered. A
// streamed transaction (pgoutput protocol 2 streaming, which the server
// uses once a transaction exceeds its logical_decoding_work_mem) is written
// to a spill from its first change: it may still abort, and it is large by
// definition. Each change is tagged with the (sub)transaction id it came
// with, so that a subtransaction abort drops exactly its changes when the
// spill is read back; the memory kept per transaction is one counter per
// subtransaction.
type txnBuf struct {
	dir       string
	threshold int64 // spill once mem holds this much; 0: spill from the first change

	mem      []segment.Change
	memBytes int64
	spill    *segment.Spill

	n       int            // live changes (not aborted)
	perTag  map[uint32]int // changes per subtransaction id (spilled only)
	aborted map[uint32]bool
}

func newTxnBuf(dir string, threshold int64) *txnBuf {
	return &txnBuf{dir: dir, threshold: threshold}
}

// add appends a change made by (sub)transaction tag (0 when unknown).
// The buffer keeps c and its values.
func (b *txnBuf) add(tag uint32, c segment.Change) error {
	if b.spill == nil {
		size := changeSize(&c)
		if b.threshold > 0 && b.memBytes+size <= b.threshold {
			b.mem = append(b.mem, c)
			b.memBytes += size
			b.n++
			return nil
		}
		if err := b.startSpill(); err != nil {
			return err
		}
	}
	if err := b.spill.Change(uint64(tag), &c); err != nil {
		return err
	}
	if b.perTag == nil {
		b.perTag = make(map[uint32]int)
	}
	b.perTag[tag]++
	b.n++
	return nil
}

// startSpill moves what is in memory to a new spill file.
func (b *txnBuf) startSpill() error {
	s, err := segment.NewSpill(b.dir)
	if err != nil {
		return err
	}
	b.spill = s
	for i := range b.mem {
		if err := s.Change(0, &b.mem[i]); err != nil {
			return err
		}
	}
	if len(b.mem) > 0 {
		if b.perTag == nil {
			b.perTag = make(map[uint32]int)
		}
		b.perTag[0] += len(b.mem)
	}
	b.mem, b.memBytes = nil, 0
	return nil
}

// abortSub drops the changes of subtransaction xid.
func (b *txnBuf) abortSub(xid uint32) {
	if b.aborted[xid] {
		return
	}
	if b.aborted == nil {
		b.aborted = make(map[uint32]bool)
	}
	b.aborted[xid] = true
	b.n -= b.perTag[xid]
	delete(b.perTag, xid)
}

// spilled reports whether the transaction went to disk.
func (b *txnBuf) spilled() bool { return b.spill != nil }

// txn returns the committed transaction. Its Changes may be iterated once;
// close releases the buffer afterwards.
func (b *txnBuf) txn(info segment.TxnInfo, end segment.Position) *capture.Txn {
	t := &capture.Txn{Info: info, End: end, Len: b.n}
	if b.spill == nil {
		mem := b.mem
		t.Changes = func(yield func(*segment.Change, error) bool) {
			for i := range mem {
				if !yield(&mem[i], nil) {
					return
				}
			}
		}
		return t
	}
	t.Changes = func(yield func(*segment.Change, error) bool) {
		if err := b.readBack(yield); err != nil {
			yield(nil, fmt.Errorf("read back spilled transaction %s: %w", info.ID, err))
		}
	}
	return t
}

// readBack yields the spill's live changes in order.
func (b *txnBuf) readBack(yield func(*segment.Change, error) bool) error {
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
		if rec.Kind != segment.SpillChange || b.aborted[uint32(rec.Tag)] {
			continue
		}
		got++
		if !yield(rec.Change, nil) {
			return nil
		}
	}
	if got != b.n {
		return fmt.Errorf("%d changes read back, %d written", got, b.n)
	}
	return nil
}

// close releases the spill file, if any.
func (b *txnBuf) close() {
	if b.spill != nil {
		_ = b.spill.Close()
		b.spill = nil
	}
	b.mem = nil
}
