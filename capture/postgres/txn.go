package postgres

import (
	"fmt"

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
// spill is read back; the memory kept per transaction is a counter per
// subtransaction and per table.
//
// A DDL change that creates a table together with its rows (CREATE TABLE
// AS) arrives after those rows; addBefore holds it in memory and the
// iteration yields it just before the table's first change.
type txnBuf struct {
	dir       string
	threshold int64 // spill once mem holds this much; 0: spill from the first change

	mem      []segment.Change
	memBytes int64
	spill    *segment.Spill

	total   int            // changes added (index of the next one), aborted ones included
	n       int            // live changes (not aborted), hoisted ones included
	perTag  map[uint32]int // changes per subtransaction id
	aborted map[uint32]bool
	first   map[uint32]int       // index of the first change of each table (by relation id)
	hoisted map[int][]hoistedDDL // changes to yield before the change of that index
}

// hoistedDDL is a DDL change moved before the first change of the table it
// creates.
type hoistedDDL struct {
	tag    uint32
	change segment.Change
}

func newTxnBuf(dir string, threshold int64) *txnBuf {
	return &txnBuf{dir: dir, threshold: threshold, perTag: make(map[uint32]int), first: make(map[uint32]int)}
}

// add appends a change made by (sub)transaction tag (0 when unknown) to
// relation relid (0 for changes of no single table). The buffer keeps c
// and its values.
func (b *txnBuf) add(tag, relid uint32, c segment.Change) error {
	if relid != 0 {
		if _, ok := b.first[relid]; !ok {
			b.first[relid] = b.total
		}
	}
	if b.spill == nil {
		size := c.MemSize()
		if b.threshold > 0 && b.memBytes+size <= b.threshold {
			b.mem = append(b.mem, c)
			b.memBytes += size
			b.count(tag)
			return nil
		}
		if err := b.startSpill(); err != nil {
			return err
		}
	}
	if err := b.spill.Change(uint64(tag), &c); err != nil {
		return err
	}
	b.count(tag)
	return nil
}

func (b *txnBuf) count(tag uint32) {
	b.total++
	b.n++
	b.perTag[tag]++
}

// addBefore appends a DDL change that created table relid, placing it
// before that table's first change in the transaction if there is one.
func (b *txnBuf) addBefore(tag, relid uint32, c segment.Change) error {
	at, ok := b.first[relid]
	if !ok {
		return b.add(tag, 0, c)
	}
	if b.hoisted == nil {
		b.hoisted = make(map[int][]hoistedDDL)
	}
	b.hoisted[at] = append(b.hoisted[at], hoistedDDL{tag: tag, change: c})
	b.n++
	b.perTag[tag]++
	return nil
}

// startSpill moves what is in memory to a new spill file. The changes in
// memory all have tag 0 (only streamed transactions have others, and they
// spill from the start).
func (b *txnBuf) startSpill() error {
	s, err := segment.NewSpill(b.dir, segment.SpillCompressed)
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
	t.Changes = func(yield func(*segment.Change, error) bool) {
		var err error
		if b.spill == nil {
			err = b.readMem(yield)
		} else {
			err = b.readSpill(yield)
		}
		if err != nil {
			yield(nil, fmt.Errorf("read back transaction %s: %w", info.ID, err))
		}
	}
	return t
}

// yieldHoisted yields the DDL changes placed before change i; it reports
// false when the consumer stopped.
func (b *txnBuf) yieldHoisted(i int, got *int, yield func(*segment.Change, error) bool) bool {
	hs := b.hoisted[i]
	for j := range hs {
		if b.aborted[hs[j].tag] {
			continue
		}
		*got++
		if !yield(&hs[j].change, nil) {
			return false
		}
	}
	return true
}

// readMem yields the changes held in memory.
func (b *txnBuf) readMem(yield func(*segment.Change, error) bool) error {
	got := 0
	for i := range b.mem {
		if !b.yieldHoisted(i, &got, yield) {
			return nil
		}
		got++
		if !yield(&b.mem[i], nil) {
			return nil
		}
	}
	if got != b.n {
		return fmt.Errorf("%d changes read back, %d kept", got, b.n)
	}
	return nil
}

// readSpill yields the spill's live changes in order.
func (b *txnBuf) readSpill(yield func(*segment.Change, error) bool) error {
	rd, err := b.spill.Reader()
	if err != nil {
		return err
	}
	defer rd.Close()
	got, i := 0, 0
	for rec, err := range rd.Changes() {
		if err != nil {
			return err
		}
		if !b.yieldHoisted(i, &got, yield) {
			return nil
		}
		i++
		if b.aborted[uint32(rec.Tag)] {
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
	b.mem = nil
}
