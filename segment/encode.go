package segment

import (
	"encoding/binary"
	"fmt"
	"io"
	"slices"
)

// Record kinds. The values are part of the format.
const (
	recRelation = 1
	recBegin    = 2
	recChange   = 3
	recCommit   = 4
)

// Flag bits inside records.
const (
	colKey       = 1 << 0
	colGenerated = 1 << 1
	colFlagMask  = colKey | colGenerated

	msgTransactional = 1 << 0
	msgFlagMask      = msgTransactional
)

// bigValue is the size from which a value's bytes are written straight to
// the sink instead of being copied into the record buffer.
const bigValue = 8 << 10

// recordEncoder encodes records onto a payload sink. A record's body is
// built in buf, except large values, which are referenced in bigs and
// written in place, so a record never needs a second copy of its values.
type recordEncoder struct {
	out  io.Writer
	buf  []byte
	bigs []bigRef
	size int // len(buf) plus the bytes in bigs

	rels   map[*Relation]*relState
	nextID uint64
}

type bigRef struct {
	at   int // offset in buf before which data goes
	data []byte
}

type relState struct {
	id   uint64
	snap Relation // what was emitted, to detect a Relation changed in place
}

func newRecordEncoder(out io.Writer) *recordEncoder {
	return &recordEncoder{out: out, rels: make(map[*Relation]*relState)}
}

func (e *recordEncoder) reset() {
	e.buf = e.buf[:0]
	e.bigs = e.bigs[:0]
	e.size = 0
}

func (e *recordEncoder) u8(v uint8) { e.buf = append(e.buf, v); e.size++ }

func (e *recordEncoder) uvarint(v uint64) {
	n := len(e.buf)
	e.buf = binary.AppendUvarint(e.buf, v)
	e.size += len(e.buf) - n
}

func (e *recordEncoder) varint(v int64) {
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	e.uvarint(u)
}

func (e *recordEncoder) bytes(b []byte) {
	e.uvarint(uint64(len(b)))
	if len(b) >= bigValue {
		e.bigs = append(e.bigs, bigRef{at: len(e.buf), data: b})
	} else {
		e.buf = append(e.buf, b...)
	}
	e.size += len(b)
}

func (e *recordEncoder) str(s string) {
	e.uvarint(uint64(len(s)))
	e.buf = append(e.buf, s...)
	e.size += len(s)
}

// emit writes the record built so far with the given kind and resets.
func (e *recordEncoder) emit(kind byte) error {
	defer e.reset()
	if e.size > MaxRecordSize {
		return fmt.Errorf("record of %d bytes exceeds %d", e.size, MaxRecordSize)
	}
	var hdr [1 + binary.MaxVarintLen64]byte
	hdr[0] = kind
	n := binary.PutUvarint(hdr[1:], uint64(e.size))
	if _, err := e.out.Write(hdr[:1+n]); err != nil {
		return err
	}
	at := 0
	for _, b := range e.bigs {
		if _, err := e.out.Write(e.buf[at:b.at]); err != nil {
			return err
		}
		if _, err := e.out.Write(b.data); err != nil {
			return err
		}
		at = b.at
	}
	_, err := e.out.Write(e.buf[at:])
	return err
}

// relation returns the segment-local id of r, emitting a relation record
// first if r is new to this segment or changed since it was emitted.
func (e *recordEncoder) relation(r *Relation) (uint64, error) {
	if st, ok := e.rels[r]; ok && sameRelation(&st.snap, r) {
		return st.id, nil
	}
	e.nextID++
	id := e.nextID
	e.uvarint(id)
	e.str(r.Schema)
	e.str(r.Table)
	e.uvarint(uint64(len(r.Columns)))
	for _, c := range r.Columns {
		e.str(c.Name)
		e.str(c.Type)
		e.uvarint(uint64(c.TypeID))
		var f uint8
		if c.Key {
			f |= colKey
		}
		if c.Generated {
			f |= colGenerated
		}
		e.u8(f)
	}
	if err := e.emit(recRelation); err != nil {
		return 0, err
	}
	e.rels[r] = &relState{id: id, snap: Relation{Schema: r.Schema, Table: r.Table, Columns: slices.Clone(r.Columns)}}
	return id, nil
}

func sameRelation(a, b *Relation) bool {
	return a.Schema == b.Schema && a.Table == b.Table && slices.Equal(a.Columns, b.Columns)
}

func (e *recordEncoder) begin(t *TxnInfo) error {
	e.str(t.ID)
	e.uvarint(t.Pos.Hi)
	e.uvarint(t.Pos.Lo)
	e.varint(micros(t.Commit))
	return e.emit(recBegin)
}

func (e *recordEncoder) commit(changes uint64) error {
	e.uvarint(changes)
	return e.emit(recCommit)
}

// change encodes c, which has been validated.
func (e *recordEncoder) change(c *Change) error {
	// Relation records must precede the change record that uses them, so
	// resolve ids before building the change.
	var ids []uint64
	switch c.Op {
	case OpInsert, OpUpdate, OpDelete:
		id, err := e.relation(c.Rel)
		if err != nil {
			return err
		}
		ids = []uint64{id}
	case OpTruncate:
		ids = make([]uint64, len(c.Truncated))
		for i, r := range c.Truncated {
			id, err := e.relation(r)
			if err != nil {
				return err
			}
			ids[i] = id
		}
	}
	e.u8(uint8(c.Op))
	switch c.Op {
	case OpInsert:
		e.uvarint(ids[0])
		e.tuple(c.New)
	case OpUpdate:
		e.uvarint(ids[0])
		e.u8(uint8(c.OldKind))
		if c.OldKind != OldNone {
			e.tuple(c.Old)
		}
		e.tuple(c.New)
	case OpDelete:
		e.uvarint(ids[0])
		e.u8(uint8(c.OldKind))
		e.tuple(c.Old)
	case OpTruncate:
		e.u8(c.TruncateFlags)
		e.uvarint(uint64(len(ids)))
		for _, id := range ids {
			e.uvarint(id)
		}
	case OpDDL:
		e.str(c.Schema)
		e.str(c.SQL)
	case OpMessage:
		var f uint8
		if c.Transactional {
			f |= msgTransactional
		}
		e.u8(f)
		e.str(c.Prefix)
		e.bytes(c.Content)
	}
	return e.emit(recChange)
}

func (e *recordEncoder) tuple(vals []Value) {
	e.uvarint(uint64(len(vals)))
	for _, v := range vals {
		e.u8(uint8(v.Kind))
		if v.Kind == Text || v.Kind == Binary {
			e.bytes(v.Data)
		}
	}
}
