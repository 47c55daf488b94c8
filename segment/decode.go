package segment

import "fmt"

// relation parses a relation record and defines its id.
func (r *Reader) relation(body []byte) error {
	c := cursor{b: body}
	id := c.uvarint()
	rel := &Relation{Schema: c.str(), Table: c.str()}
	n := c.uvarint()
	if n > uint64(len(c.b)) { // each column takes at least 4 bytes
		return corrupt("relation with %d columns in %d bytes", n, len(c.b))
	}
	rel.Columns = make([]Column, n)
	for i := range rel.Columns {
		col := &rel.Columns[i]
		col.Name = c.str()
		col.Type = c.str()
		tid := c.uvarint()
		f := c.u8()
		if tid > 1<<32-1 || f&^colFlagMask != 0 {
			return corrupt("relation %d column %d: bad type id or flags", id, i)
		}
		col.TypeID = uint32(tid)
		col.Key = f&colKey != 0
		col.Generated = f&colGenerated != 0
	}
	if c.err != nil || len(c.b) != 0 {
		return corrupt("bad relation record")
	}
	if id == 0 || r.rels[id] != nil {
		return corrupt("relation id %d zero or defined twice", id)
	}
	r.rels[id] = rel
	return nil
}

// begin parses a begin record and checks its ordering.
func (r *Reader) begin(body []byte) error {
	c := cursor{b: body}
	info := TxnInfo{ID: c.str()}
	info.Pos.Hi, info.Pos.Lo = c.uvarint(), c.uvarint()
	info.Commit = fromMicros(c.varint())
	if c.err != nil || len(c.b) != 0 {
		return corrupt("bad begin record")
	}
	// Check ordering now so a bad transaction fails before its changes.
	if err := r.got.admit(info); err != nil {
		return corrupt("%v", err)
	}
	r.info = info
	r.inTxn = true
	r.changes = 0
	return nil
}

// change parses a change record into r.ch, reusing the reader's buffers.
func (r *Reader) change(body []byte) error {
	ch := &r.ch
	*ch = Change{}
	c := cursor{b: body}
	ch.Op = Op(c.u8())
	switch ch.Op {
	case OpInsert:
		ch.Rel = r.rel(&c)
		ch.New = r.tuple(&c, ch.Rel, &r.newBuf)
	case OpUpdate:
		ch.Rel = r.rel(&c)
		ch.OldKind = OldKind(c.u8())
		if ch.OldKind > OldFull {
			return corrupt("update with old kind %d", ch.OldKind)
		}
		if ch.OldKind != OldNone {
			ch.Old = r.tuple(&c, ch.Rel, &r.oldBuf)
		}
		ch.New = r.tuple(&c, ch.Rel, &r.newBuf)
	case OpDelete:
		ch.Rel = r.rel(&c)
		ch.OldKind = OldKind(c.u8())
		if ch.OldKind != OldKey && ch.OldKind != OldFull {
			return corrupt("delete with old kind %d", ch.OldKind)
		}
		ch.Old = r.tuple(&c, ch.Rel, &r.oldBuf)
	case OpTruncate:
		ch.TruncateFlags = c.u8()
		n := c.uvarint()
		if n == 0 || n > uint64(len(c.b)) || ch.TruncateFlags&^truncateFlagMask != 0 {
			return corrupt("bad truncate record")
		}
		r.relBuf = r.relBuf[:0]
		for range n {
			r.relBuf = append(r.relBuf, r.rel(&c))
		}
		ch.Truncated = r.relBuf
	case OpDDL:
		ch.Schema = c.str()
		ch.SQL = c.str()
		if ch.SQL == "" && c.err == nil {
			return corrupt("empty ddl statement")
		}
	case OpMessage:
		f := c.u8()
		if f&^msgFlagMask != 0 {
			return corrupt("message with flags %#x", f)
		}
		ch.Transactional = f&msgTransactional != 0
		ch.Prefix = c.str()
		ch.Content = c.bytes()
	default:
		return corrupt("unknown op %d", ch.Op)
	}
	if c.err != nil {
		return corrupt("bad %s record: %v", ch.Op, c.err)
	}
	if len(c.b) != 0 {
		return corrupt("%d stray bytes after %s record", len(c.b), ch.Op)
	}
	return nil
}

// rel reads a relation id and resolves it; an unknown id fails the cursor.
func (r *Reader) rel(c *cursor) *Relation {
	id := c.uvarint()
	rel := r.rels[id]
	if rel == nil && c.err == nil {
		c.err = fmt.Errorf("undefined relation id %d", id)
		c.b = nil
	}
	return rel
}

// tuple reads a tuple of rel's width into *buf (reusing its storage) and
// returns it.
func (r *Reader) tuple(c *cursor, rel *Relation, buf *[]Value) []Value {
	dst := (*buf)[:0]
	defer func() { *buf = dst }()
	n := c.uvarint()
	if c.err != nil || rel == nil {
		return dst
	}
	if n != uint64(len(rel.Columns)) {
		c.err = fmt.Errorf("tuple of %d values for %d columns of %s.%s", n, len(rel.Columns), rel.Schema, rel.Table)
		c.b = nil
		return dst
	}
	for range n {
		v := Value{Kind: ValueKind(c.u8())}
		switch v.Kind {
		case Null, Unchanged:
		case Text, Binary:
			v.Data = c.bytes()
		default:
			c.err = fmt.Errorf("bad value kind %d", v.Kind)
			c.b = nil
			return dst
		}
		dst = append(dst, v)
	}
	return dst
}
