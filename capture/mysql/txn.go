package mysql

import (
	"fmt"
	"strconv"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/segment"
)

// txnBuf collects one transaction's changes until it commits: in memory
// while they hold less than the threshold, then in a segment.Spill (an
// unlinked, encrypted scratch file), so a transaction of any size is
// captured in bounded memory. One txnBuf serves transaction after
// transaction: reset keeps its buffers (a Change handed to the sink is
// valid only until the sink returns, capture.Txn), so a stream of small
// transactions allocates almost nothing per change.
type txnBuf struct {
	dir       string
	threshold int64

	mem      []segment.Change
	memBytes int64
	spill    *segment.Spill
	n        int
	// arena holds the values of the changes in mem, or of the change
	// being built.
	arena arena
	t     capture.Txn // what txn returns; its Changes is b.changes
}

func newTxnBuf(dir string, threshold int64) *txnBuf {
	b := &txnBuf{dir: dir, threshold: threshold}
	b.t.Changes = b.changes
	return b
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
	}
	if err := b.spill.Change(0, &c); err != nil {
		return err
	}
	// Everything the arena holds is in the spill now.
	b.arena.reset()
	b.n++
	return nil
}

// txn returns the committed transaction; its Changes may be iterated
// once, before reset. It is valid until reset.
func (b *txnBuf) txn(info segment.TxnInfo, end segment.Position) *capture.Txn {
	b.t.Info, b.t.End, b.t.Len = info, end, b.n
	return &b.t
}

// changes yields the transaction's changes, from memory or the spill.
func (b *txnBuf) changes(yield func(*segment.Change, error) bool) {
	if b.spill == nil {
		for i := range b.mem {
			if !yield(&b.mem[i], nil) {
				return
			}
		}
		return
	}
	if err := b.readSpill(yield); err != nil {
		yield(nil, fmt.Errorf("read back transaction %s: %w", b.t.Info.ID, err))
	}
}

func (b *txnBuf) readSpill(yield func(*segment.Change, error) bool) error {
	rd, err := b.spill.Reader()
	if err != nil {
		return err
	}
	defer rd.Close()
	got := 0
	for rec, err := range rd.Changes() {
		if err != nil {
			return err
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

// reset empties the buffer for the next transaction and releases the
// spill file, if any. Buffers that grew large are dropped rather than
// kept.
func (b *txnBuf) reset() {
	if b.spill != nil {
		_ = b.spill.Close()
		b.spill = nil
	}
	clear(b.mem)
	b.mem = b.mem[:0]
	if cap(b.mem) > maxKeptChanges {
		b.mem = nil
	}
	b.memBytes, b.n = 0, 0
	b.t = capture.Txn{Changes: b.t.Changes}
	b.arena.reset()
}

// Buffers larger than these are not kept from one transaction to the next.
const (
	maxKeptChanges = 4096
	maxKeptValues  = 16 << 10
	maxKeptBytes   = 1 << 20
)

// arena hands out value slices and value bytes from shared buffers. What
// it hands out stays valid until reset; growing a buffer moves on to a new
// one, and earlier slices keep the old.
type arena struct {
	vals []segment.Value
	buf  []byte
}

// values returns n zero values.
func (a *arena) values(n int) []segment.Value {
	if len(a.vals)+n > cap(a.vals) {
		a.vals = make([]segment.Value, 0, max(2*cap(a.vals), n, 64))
	}
	at := len(a.vals)
	a.vals = a.vals[:at+n]
	return a.vals[at : at+n : at+n]
}

// grow makes room for n more bytes without moving what is there in place:
// a full buffer is replaced, and slices of the old one stay as they are.
func (a *arena) grow(n int) {
	if len(a.buf)+n > cap(a.buf) {
		a.buf = make([]byte, 0, max(2*cap(a.buf), n, 4096))
	}
}

// taken returns the bytes appended since at.
func (a *arena) taken(at int) []byte { return a.buf[at:len(a.buf):len(a.buf)] }

func (a *arena) bytes(b []byte) []byte { return a.close(append(a.open(len(b)), b...)) }

func (a *arena) str(s string) []byte { return a.close(append(a.open(len(s)), s...)) }

func (a *arena) int(v int64) []byte { return a.close(strconv.AppendInt(a.open(20), v, 10)) }

func (a *arena) uint(v uint64) []byte { return a.close(strconv.AppendUint(a.open(20), v, 10)) }

func (a *arena) float(v float64, bits int) []byte {
	return a.close(strconv.AppendFloat(a.open(32), v, 'g', -1, bits))
}

// open returns the buffer, with room for about n more bytes, for a value
// to be appended to; close hands out what was appended since open.
func (a *arena) open(n int) []byte {
	a.grow(n)
	return a.buf
}

func (a *arena) close(b []byte) []byte {
	at := len(a.buf)
	a.buf = b
	return a.taken(at)
}

// reset forgets everything handed out.
func (a *arena) reset() {
	clear(a.vals)
	a.vals = a.vals[:0]
	if cap(a.vals) > maxKeptValues {
		a.vals = nil
	}
	a.buf = a.buf[:0]
	if cap(a.buf) > maxKeptBytes {
		a.buf = nil
	}
}
