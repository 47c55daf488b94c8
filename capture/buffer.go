package capture

import (
	"fmt"

	"github.com/rxvault/rxvault/segment"
)

// Buffer collects one transaction's changes until it commits, for any
// engine's reader, in bounded memory.
//
// Spill policy: the changes stay in memory while they hold at most the
// threshold's bytes (segment.Change.MemSize); from then on the
// transaction goes to a segment.Spill (an unlinked, encrypted scratch
// file in the buffer's directory) and is read back from there when
// delivered. A threshold of 0 spills from the first change (a PostgreSQL
// streamed transaction: large by definition, and it may still abort), and
// so does the first change with a tag: only the spill records tags.
//
// Two hooks serve what only some sources need; a reader that does not
// use them passes 0 and pays nothing:
//   - Tags: each change may carry a tag (PostgreSQL: the subtransaction
//     id it came with), and AbortTag drops exactly that tag's changes.
//     Tag 0 is the top level and is never aborted.
//   - Hoisting: each change may name the table it touches by an id the
//     reader chooses (PostgreSQL: the relation id), and AddBefore places
//     a change before the first change of that table (a CREATE TABLE AS,
//     which the server sends after the table's rows).
//
// A Buffer serves transaction after transaction: Reset keeps its memory
// (a Change handed to the sink is valid only until the sink returns, Txn),
// so a stream of small transactions allocates almost nothing per change.
// A Buffer is not safe for concurrent use.
type Buffer struct {
	dir       string
	threshold int64

	mem      []segment.Change
	memBytes int64
	spill    *segment.Spill

	total   int            // changes added (index of the next one), aborted ones included
	n       int            // live changes (not aborted), hoisted ones included
	perTag  map[uint64]int // changes per nonzero tag
	aborted map[uint64]bool
	first   map[uint32]int       // index of the first change of each table
	hoisted map[int][]hoistedDDL // changes to yield before the change of that index

	t Txn // what Txn returns; its Changes is b.changes
}

// hoistedDDL is a change moved before the first change of a table.
type hoistedDDL struct {
	tag    uint64
	change segment.Change
}

// NewBuffer returns an empty buffer that spills to dir once its changes
// hold more than threshold bytes (0: from the first change).
func NewBuffer(dir string, threshold int64) *Buffer {
	b := &Buffer{dir: dir, threshold: threshold}
	b.t.Changes = b.changes
	return b
}

// Add appends c, made by tag (0: the top level) to table (0: no single
// table, or no hoisting wanted). The buffer keeps c and its values until
// Reset, or until the change is spilled: once Spilled reports true, the
// values of every change added are in the spill file and the caller may
// reuse their memory.
func (b *Buffer) Add(tag uint64, table uint32, c segment.Change) error {
	if table != 0 {
		if b.first == nil {
			b.first = make(map[uint32]int)
		}
		if _, ok := b.first[table]; !ok {
			b.first[table] = b.total
		}
	}
	if b.spill == nil {
		size := c.MemSize()
		if tag == 0 && b.threshold > 0 && b.memBytes+size <= b.threshold {
			b.mem = append(b.mem, c)
			b.memBytes += size
			b.count(tag)
			return nil
		}
		if err := b.startSpill(); err != nil {
			return err
		}
	}
	if err := b.spill.Change(tag, &c); err != nil {
		return err
	}
	b.count(tag)
	return nil
}

func (b *Buffer) count(tag uint64) {
	b.total++
	b.n++
	if tag != 0 {
		if b.perTag == nil {
			b.perTag = make(map[uint64]int)
		}
		b.perTag[tag]++
	}
}

// AddBefore appends c, made by tag, placing it before the first change of
// table in the transaction if there is one (else it is added like Add).
// A hoisted change stays in memory.
func (b *Buffer) AddBefore(tag uint64, table uint32, c segment.Change) error {
	at, ok := b.first[table]
	if !ok {
		return b.Add(tag, 0, c)
	}
	if b.hoisted == nil {
		b.hoisted = make(map[int][]hoistedDDL)
	}
	b.hoisted[at] = append(b.hoisted[at], hoistedDDL{tag: tag, change: c})
	b.n++
	if tag != 0 {
		if b.perTag == nil {
			b.perTag = make(map[uint64]int)
		}
		b.perTag[tag]++
	}
	return nil
}

// startSpill moves what is in memory to a new spill file. The changes in
// memory all have tag 0 (Add spills a tagged change).
func (b *Buffer) startSpill() error {
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
	clear(b.mem)
	b.mem, b.memBytes = b.mem[:0], 0
	return nil
}

// AbortTag drops the changes of tag (not 0).
func (b *Buffer) AbortTag(tag uint64) {
	if tag == 0 || b.aborted[tag] {
		return
	}
	if b.aborted == nil {
		b.aborted = make(map[uint64]bool)
	}
	b.aborted[tag] = true
	b.n -= b.perTag[tag]
	delete(b.perTag, tag)
}

// Spilled reports whether the transaction went to disk.
func (b *Buffer) Spilled() bool { return b.spill != nil }

// Len is the number of live changes: what Txn's Changes will yield.
func (b *Buffer) Len() int { return b.n }

// Txn returns the committed transaction. Its Changes may be iterated
// once; the Txn is valid until Reset or Close.
func (b *Buffer) Txn(info segment.TxnInfo, end segment.Position) *Txn {
	b.t.Info, b.t.End, b.t.Len = info, end, b.n
	return &b.t
}

// changes yields the transaction's live changes in order, from memory or
// the spill; an error ends them (the transaction could not be read back,
// or fewer changes came back than were kept).
func (b *Buffer) changes(yield func(*segment.Change, error) bool) {
	var err error
	if b.spill == nil {
		err = b.readMem(yield)
	} else {
		err = b.readSpill(yield)
	}
	if err != nil {
		yield(nil, fmt.Errorf("read back transaction %s: %w", b.t.Info.ID, err))
	}
}

// yieldHoisted yields the changes placed before change i; it reports
// false when the consumer stopped.
func (b *Buffer) yieldHoisted(i int, got *int, yield func(*segment.Change, error) bool) bool {
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

func (b *Buffer) readMem(yield func(*segment.Change, error) bool) error {
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

func (b *Buffer) readSpill(yield func(*segment.Change, error) bool) error {
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
		if b.aborted[rec.Tag] {
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

// Changes slices larger than this are not kept from one transaction to
// the next.
const maxKeptChanges = 4096

// Reset empties the buffer for the next transaction and releases the
// spill file, if any. A changes slice that grew large is dropped rather
// than kept.
func (b *Buffer) Reset() {
	b.releaseSpill()
	clear(b.mem)
	b.mem = b.mem[:0]
	if cap(b.mem) > maxKeptChanges {
		b.mem = nil
	}
	b.memBytes, b.total, b.n = 0, 0, 0
	b.perTag, b.aborted, b.first, b.hoisted = nil, nil, nil, nil
	b.t = Txn{Changes: b.t.Changes}
}

// Close releases the spill file and the memory; the buffer may be Reset
// and used again.
func (b *Buffer) Close() {
	b.Reset()
	b.mem = nil
}

func (b *Buffer) releaseSpill() {
	if b.spill != nil {
		_ = b.spill.Close()
		b.spill = nil
	}
}
