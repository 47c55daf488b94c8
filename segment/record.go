package segment

import (
	"fmt"
	"time"
)

// MaxRecordSize bounds one encoded record (a change with all its values):
// PostgreSQL's largest field is 1 GiB.
const MaxRecordSize = 1<<30 + 1<<20

// TxnInfo is what a transaction's begin record carries.
type TxnInfo struct {
	// ID is the source's transaction id: the PostgreSQL xid in decimal, the
	// MySQL GTID ("uuid:n") or MariaDB GTID ("domain-server-seq"), the SQL
	// Server transaction id. It may be empty when the source has none.
	ID string
	// Pos is the commit position; it strictly increases within a segment.
	Pos Position
	// Commit is the commit time, kept to the microsecond, in UTC.
	Commit time.Time
}

// Txn is a whole transaction, for callers that hold it in memory.
type Txn struct {
	TxnInfo
	Changes []Change
}

// Column describes one column of a relation.
type Column struct {
	Name string
	// Type is the engine's type name as it would appear in DDL, for example
	// "numeric(12,2)", "timestamp with time zone", "decimal(65,30) unsigned".
	Type string
	// TypeID is the engine's numeric type id (PostgreSQL type OID, MySQL
	// column type code), or 0.
	TypeID uint32
	// Key reports whether the column belongs to the replica identity or
	// primary key used to find rows on update and delete.
	Key bool
	// Generated reports a generated column: replay must not write it.
	Generated bool
}

// Relation is a table as of a point in the stream. A Relation passed to a
// Writer is compared by content with what the Writer emitted for the same
// pointer, so callers may reuse or replace Relations freely; a Relation
// returned by a Reader is shared by all changes to that table in the
// segment and must not be modified.
type Relation struct {
	Schema  string // PostgreSQL schema, MySQL database, SQL Server schema
	Table   string
	Columns []Column
}

// Op is the kind of a change.
type Op uint8

// Change operations. The values are part of the format.
const (
	OpInsert   Op = 1
	OpUpdate   Op = 2
	OpDelete   Op = 3
	OpTruncate Op = 4
	OpDDL      Op = 5
	OpMessage  Op = 6
)

// String returns the operation's name.
func (o Op) String() string {
	switch o {
	case OpInsert:
		return "insert"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
	case OpTruncate:
		return "truncate"
	case OpDDL:
		return "ddl"
	case OpMessage:
		return "message"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// OldKind says what Change.Old holds.
type OldKind uint8

// Old tuple kinds. The values are part of the format.
const (
	OldNone OldKind = 0 // no old tuple (an update that kept its key)
	OldKey  OldKind = 1 // key columns set, the other columns null
	OldFull OldKind = 2 // the whole old row
)

// Truncate flags.
const (
	TruncateCascade         uint8 = 1 << 0
	TruncateRestartIdentity uint8 = 1 << 1
	truncateFlagMask              = TruncateCascade | TruncateRestartIdentity
)

// Change is one change within a transaction. Which fields are set depends on
// Op:
//
//   - insert: Rel, New;
//   - update: Rel, OldKind, Old (unless OldKind is OldNone), New;
//   - delete: Rel, OldKind (OldKey or OldFull), Old;
//   - truncate: Truncated, TruncateFlags;
//   - ddl: Schema (the schema or database the statement ran in), SQL;
//   - message: Prefix, Content, Transactional.
//
// Old and New have one Value per column of Rel.
type Change struct {
	Op            Op
	Rel           *Relation
	OldKind       OldKind
	Old           []Value
	New           []Value
	Truncated     []*Relation
	TruncateFlags uint8
	Schema        string
	SQL           string
	Prefix        string
	Content       []byte
	Transactional bool
}

// MemSize estimates the memory c and its values hold, for spill
// thresholds.
func (c *Change) MemSize() int64 {
	n := int64(128 + len(c.SQL) + len(c.Schema) + len(c.Prefix) + len(c.Content) + 8*len(c.Truncated))
	for _, v := range c.Old {
		n += int64(32 + len(v.Data))
	}
	for _, v := range c.New {
		n += int64(32 + len(v.Data))
	}
	return n
}

// ValueKind says how a Value is represented.
type ValueKind uint8

// Value kinds. The values are part of the format.
const (
	Null      ValueKind = 0 // SQL NULL
	Text      ValueKind = 1 // the engine's exact text form
	Binary    ValueKind = 2 // raw bytes
	Unchanged ValueKind = 3 // not sent because unchanged: replay leaves it as is
)

// Value is one column value.
type Value struct {
	Kind ValueKind
	Data []byte // for Text and Binary; nil otherwise
}

// TextValue returns a Text value holding s.
func TextValue(s string) Value { return Value{Kind: Text, Data: []byte(s)} }

// validate checks a change against the rules of the format, so that a
// Writer never produces a segment its Reader rejects.
func (c *Change) validate() error {
	switch c.Op {
	case OpInsert:
		if err := checkTuple(c.Rel, c.New, "new"); err != nil {
			return err
		}
	case OpUpdate:
		if c.OldKind > OldFull {
			return fmt.Errorf("update: bad old kind %d", c.OldKind)
		}
		if c.OldKind != OldNone {
			if err := checkTuple(c.Rel, c.Old, "old"); err != nil {
				return err
			}
		}
		if err := checkTuple(c.Rel, c.New, "new"); err != nil {
			return err
		}
	case OpDelete:
		if c.OldKind != OldKey && c.OldKind != OldFull {
			return fmt.Errorf("delete: old kind must be key or full, got %d", c.OldKind)
		}
		if err := checkTuple(c.Rel, c.Old, "old"); err != nil {
			return err
		}
	case OpTruncate:
		if len(c.Truncated) == 0 {
			return fmt.Errorf("truncate: no relations")
		}
		for _, r := range c.Truncated {
			if r == nil {
				return fmt.Errorf("truncate: nil relation")
			}
		}
		if c.TruncateFlags&^truncateFlagMask != 0 {
			return fmt.Errorf("truncate: unknown flags %#x", c.TruncateFlags)
		}
	case OpDDL:
		if c.SQL == "" {
			return fmt.Errorf("ddl: empty statement")
		}
	case OpMessage:
	default:
		return fmt.Errorf("unknown op %d", c.Op)
	}
	return nil
}

func checkTuple(rel *Relation, vals []Value, which string) error {
	if rel == nil {
		return fmt.Errorf("%s tuple: no relation", which)
	}
	if len(vals) != len(rel.Columns) {
		return fmt.Errorf("%s tuple of %s.%s: %d values for %d columns", which, rel.Schema, rel.Table, len(vals), len(rel.Columns))
	}
	for i, v := range vals {
		if v.Kind > Unchanged {
			return fmt.Errorf("%s tuple of %s.%s: column %d: bad value kind %d", which, rel.Schema, rel.Table, i, v.Kind)
		}
	}
	return nil
}
