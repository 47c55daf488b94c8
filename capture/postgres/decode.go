package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/rxvault/rxvault/segment"
)

// typeKey identifies a column type as format_type sees it.
type typeKey struct {
	oid    uint32
	typmod int32
}

// typeNames caches format_type(oid, typmod) results, looked up on a
// regular connection whose search_path is pg_catalog alone, so types
// outside pg_catalog come schema-qualified ("public.mood").
type typeNames struct {
	conn  *pgx.Conn
	names map[typeKey]string
	// fallback holds names from pgoutput Type messages, for a type the
	// catalog no longer has.
	fallback map[uint32]string
}

func newTypeNames(conn *pgx.Conn) *typeNames {
	return &typeNames{conn: conn, names: make(map[typeKey]string), fallback: make(map[uint32]string)}
}

// resolve looks up every column type of m not cached yet, in one query.
func (tn *typeNames) resolve(ctx context.Context, m *pglogrepl.RelationMessage) error {
	var oids []uint32
	var mods []int32
	for _, c := range m.Columns {
		k := typeKey{c.DataType, c.TypeModifier}
		if _, ok := tn.names[k]; !ok {
			oids = append(oids, c.DataType)
			mods = append(mods, c.TypeModifier)
		}
	}
	if len(oids) == 0 {
		return nil
	}
	rows, err := tn.conn.Query(ctx, `SELECT format_type(t.o, t.m) FROM unnest($1::oid[], $2::int4[]) WITH ORDINALITY AS t(o, m, i) ORDER BY t.i`, oids, mods)
	if err != nil {
		return fmt.Errorf("look up column types: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[*string])
	if err != nil {
		return fmt.Errorf("look up column types: %w", err)
	}
	for i, n := range names {
		name := "???"
		if n != nil {
			name = *n
		}
		if name == "???" {
			if fb, ok := tn.fallback[oids[i]]; ok {
				name = fb
			}
		}
		tn.names[typeKey{oids[i], mods[i]}] = name
	}
	return nil
}

// relation builds the segment.Relation of a Relation message; resolve must
// have run for it.
func (tn *typeNames) relation(m *pglogrepl.RelationMessage) *segment.Relation {
	rel := &segment.Relation{Schema: m.Namespace, Table: m.RelationName, Columns: make([]segment.Column, len(m.Columns))}
	for i, c := range m.Columns {
		rel.Columns[i] = segment.Column{
			Name:   c.Name,
			Type:   tn.names[typeKey{c.DataType, c.TypeModifier}],
			TypeID: c.DataType,
			Key:    c.Flags&1 != 0,
		}
	}
	return rel
}

// tuple converts pgoutput tuple data for rel. The byte slices are the ones
// pglogrepl allocated for this message; they are not copied again.
func tuple(rel *segment.Relation, td *pglogrepl.TupleData) ([]segment.Value, error) {
	if td == nil {
		return nil, fmt.Errorf("%s.%s: missing tuple", rel.Schema, rel.Table)
	}
	if len(td.Columns) != len(rel.Columns) {
		return nil, fmt.Errorf("%s.%s: tuple of %d columns for a relation of %d", rel.Schema, rel.Table, len(td.Columns), len(rel.Columns))
	}
	vals := make([]segment.Value, len(td.Columns))
	for i, c := range td.Columns {
		switch c.DataType {
		case pglogrepl.TupleDataTypeNull:
			vals[i] = segment.Value{Kind: segment.Null}
		case pglogrepl.TupleDataTypeToast:
			vals[i] = segment.Value{Kind: segment.Unchanged}
		case pglogrepl.TupleDataTypeText:
			vals[i] = segment.Value{Kind: segment.Text, Data: c.Data}
		case pglogrepl.TupleDataTypeBinary:
			vals[i] = segment.Value{Kind: segment.Binary, Data: c.Data}
		default:
			return nil, fmt.Errorf("%s.%s: column %d: unknown tuple data type %q", rel.Schema, rel.Table, i, c.DataType)
		}
	}
	return vals, nil
}

// oldKind maps pgoutput's old-tuple marker to segment's.
func oldKind(t uint8) (segment.OldKind, error) {
	switch t {
	case 0:
		return segment.OldNone, nil
	case pglogrepl.UpdateMessageTupleTypeKey:
		return segment.OldKey, nil
	case pglogrepl.UpdateMessageTupleTypeOld:
		return segment.OldFull, nil
	}
	return 0, fmt.Errorf("unknown old tuple type %q", t)
}
