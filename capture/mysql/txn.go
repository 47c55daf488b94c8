package mysql

import (
	"strconv"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/segment"
)

// txnBuf is the open transaction: a capture.Buffer (memory, then an
// encrypted spill past the threshold) and the arena the row values are
// decoded into. Once the buffer spills, everything the arena held is in
// the spill file, so the arena is emptied after each spilled change.
type txnBuf struct {
	buf   *capture.Buffer
	arena arena
}

func newTxnBuf(dir string, threshold int64) *txnBuf {
	return &txnBuf{buf: capture.NewBuffer(dir, threshold)}
}

// add appends c; the buffer keeps c and its values.
func (b *txnBuf) add(c segment.Change) error {
	if err := b.buf.Add(0, 0, c); err != nil {
		return err
	}
	if b.buf.Spilled() {
		b.arena.reset()
	}
	return nil
}

// len is the number of changes added.
func (b *txnBuf) len() int { return b.buf.Len() }

// txn returns the committed transaction; its Changes may be iterated
// once, before reset. It is valid until reset.
func (b *txnBuf) txn(info segment.TxnInfo, end segment.Position) *capture.Txn {
	return b.buf.Txn(info, end)
}

// reset empties the buffer for the next transaction and releases the
// spill file, if any.
func (b *txnBuf) reset() {
	b.buf.Reset()
	b.arena.reset()
}

// Arena buffers larger than these are not kept from one transaction to
// the next.
const (
	maxKeptValues = 16 << 10
	maxKeptBytes  = 1 << 20
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
