package postgres

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rxvault/rxvault/segment"
)

// firstNormalOID is PostgreSQL's FirstNormalObjectId: OIDs below it are
// fixed at initdb and the same in every cluster of a version; OIDs above
// it (user types such as enums and domains) differ between the source and
// the restored database.
const firstNormalOID = 16384

// maxCachedPointers bounds relCache.byPtr. A segment reader hands out new
// *Relation values per segment; beyond this many, lookups fall back to
// the content key, which is slower but bounded.
const maxCachedPointers = 4096

// relCache maps the stream's relations to what the target knows of them,
// with the statements prepared for them.
type relCache struct {
	byPtr map[*segment.Relation]*relInfo
	byKey map[string]*relInfo
	// gen is bumped by every DDL statement replayed: a relInfo looked up
	// under an older gen is looked up again before use.
	gen uint64
}

func newRelCache() relCache {
	return relCache{byPtr: map[*segment.Relation]*relInfo{}, byKey: map[string]*relInfo{}}
}

// relInfo is a stream relation resolved against the target's catalog.
type relInfo struct {
	rel   *segment.Relation // the first Relation seen with this content
	ident string            // "schema"."table", quoted
	kind  byte              // relkind: 'r' table, 'p' partitioned table
	cols  []colInfo         // one per column of rel
	// keyed is true when some but not all columns are Key: rows are found
	// by those columns, which identify one row. Otherwise (no Key column,
	// or every column Key, as with REPLICA IDENTITY FULL) rows are found
	// by their whole old value and one of any identical rows is changed.
	keyed bool
	// writable counts the columns that are not skipped.
	writable int
	gen      uint64
	stmts    map[string]*stmt
	// plain counts the writable columns that are not always.
	plain int
}

// colInfo is one column of a relInfo.
type colInfo struct {
	ident string // quoted name
	oid   uint32 // the target's type OID
	key   bool
	// skip: a generated column (on the source or on the target), never
	// written and never compared.
	skip bool
	// always: an identity column GENERATED ALWAYS on the target, which
	// an UPDATE may not set (SQLSTATE 428C9); see relInfo.sets.
	always bool
}

// targetColumn is a column as the target's catalog describes it.
type targetColumn struct {
	oid       uint32
	generated bool
	always    bool // identity GENERATED ALWAYS
}

// lookupSQL describes a table on the target: its relkind, then each
// column with its type OID, whether it is generated and its identity
// kind (a for ALWAYS, d for BY DEFAULT, empty for none).
const lookupSQL = `SELECT c.relkind::text, a.attname::text, a.atttypid::text, (a.attgenerated <> '')::text, a.attidentity::text
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE n.nspname = $1 AND c.relname = $2
 ORDER BY a.attnum`

// contentKey identifies a Relation by content.
func contentKey(r *segment.Relation) string {
	var b strings.Builder
	b.WriteString(strconv.Quote(r.Schema))
	b.WriteString(strconv.Quote(r.Table))
	for _, c := range r.Columns {
		fmt.Fprintf(&b, "%q%q%d%t%t", c.Name, c.Type, c.TypeID, c.Key, c.Generated)
	}
	return b.String()
}

// newRelInfo resolves rel against the target's description of the table
// (rows of lookupSQL). It fails if the table or a column is missing, or if
// a column's built-in type differs: the target has diverged. flipped
// holds the ALWAYS identity columns the open group has made BY DEFAULT
// for the time being (see group.flip): they count as ALWAYS.
func newRelInfo(rel *segment.Relation, rows [][]string, gen uint64, flipped map[flipCol]struct{}) (*relInfo, error) {
	if len(rows) == 0 {
		return nil, fmt.Errorf("table %s does not exist on the target", relName(rel))
	}
	kind := rows[0][0]
	if kind != "r" && kind != "p" {
		return nil, fmt.Errorf("%s is not a table on the target (relkind %s)", relName(rel), kind)
	}
	cols := map[string]targetColumn{}
	for _, r := range rows {
		if r[1] == "" {
			continue // a table without columns
		}
		oid, err := strconv.ParseUint(r[2], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("describe %s: bad type OID", relName(rel))
		}
		cols[r[1]] = targetColumn{oid: uint32(oid), generated: r[3] == "true", always: r[4] == "a"}
	}
	ri := &relInfo{
		rel:   rel,
		ident: pgx.Identifier{rel.Schema, rel.Table}.Sanitize(),
		kind:  kind[0],
		gen:   gen,
		stmts: map[string]*stmt{},
	}
	nkey, nwritable, nplain := 0, 0, 0
	for _, c := range rel.Columns {
		tc, ok := cols[c.Name]
		if !ok {
			return nil, fmt.Errorf("column %q of %s does not exist on the target", c.Name, relName(rel))
		}
		if c.TypeID != 0 && (c.TypeID < firstNormalOID || tc.oid < firstNormalOID) && c.TypeID != tc.oid {
			return nil, fmt.Errorf("column %q of %s has type OID %d on the source but %d on the target", c.Name, relName(rel), c.TypeID, tc.oid)
		}
		ci := colInfo{
			ident: pgx.Identifier{c.Name}.Sanitize(),
			oid:   tc.oid,
			key:   c.Key,
			skip:  c.Generated || tc.generated,
		}
		_, flip := flipped[flipCol{table: ri.ident, col: ci.ident}]
		ci.always = !ci.skip && (tc.always || flip)
		if !ci.skip {
			nwritable++
			if ci.key {
				nkey++
			}
			if !ci.always {
				nplain++
			}
		}
		ri.cols = append(ri.cols, ci)
	}
	ri.keyed = nkey > 0 && nkey < nwritable
	ri.writable, ri.plain = nwritable, nplain
	return ri, nil
}

// sameShape reports whether a fresh lookup of the same relation gives
// the same statements.
func (ri *relInfo) sameShape(o *relInfo) bool {
	if ri.kind != o.kind || ri.keyed != o.keyed || len(ri.cols) != len(o.cols) {
		return false
	}
	for i := range ri.cols {
		if ri.cols[i] != o.cols[i] {
			return false
		}
	}
	return true
}

// stmt is a prepared statement for one shape of change to one relation.
type stmt struct {
	name string
	sql  string
	oids []uint32
	// params says where each parameter's value comes from.
	params []param
	// sd is the server's description, once the prepare has been read;
	// nil until then.
	sd *pgconn.StatementDescription
	// flips are the ALWAYS identity columns (quoted) an UPDATE sets: the
	// statement is prepared and run only while they are BY DEFAULT (see
	// group.flip).
	flips []string
}

// param is the source of one statement parameter: column col of the
// change's old or new tuple.
type param struct {
	col int
	old bool
}

// stmtKey describes a change's shape into buf: op, then per column
// whether the statement writes it, and where it finds the row. Changes
// with equal keys share a statement.
func (ri *relInfo) stmtKey(buf []byte, c *segment.Change) ([]byte, error) {
	buf = append(buf[:0], byte(c.Op))
	switch c.Op {
	case segment.OpInsert:
		for i, v := range c.New {
			if !ri.cols[i].skip && v.Kind == segment.Unchanged {
				return nil, fmt.Errorf("insert has an unchanged (unsent) value for column %d", i+1)
			}
		}
		return buf, nil
	case segment.OpUpdate:
		if ri.writable == 0 {
			return nil, fmt.Errorf("update of a table without writable columns")
		}
		if len(c.New) != len(ri.cols) {
			return nil, fmt.Errorf("update: %d values for %d columns", len(c.New), len(ri.cols))
		}
		for i := range c.New {
			if ri.sets(c, i) {
				buf = append(buf, 's')
			} else {
				buf = append(buf, '-')
			}
		}
	}
	where, old, err := ri.whereTuple(c)
	if err != nil {
		return nil, err
	}
	if old {
		buf = append(buf, 'o')
	} else {
		buf = append(buf, 'n')
	}
	if ri.keyed {
		// NULL key values are matched with IS NULL (no parameter), so
		// that the others can use the index.
		for i, v := range where {
			switch {
			case !ri.cols[i].key || ri.cols[i].skip:
			case v.Kind == segment.Null:
				buf = append(buf, 'z')
			default:
				buf = append(buf, 'k')
			}
		}
	}
	return buf, nil
}

// sets reports whether an update writes column i: a column that is not
// generated and whose new value was sent, except an identity column
// GENERATED ALWAYS whose value did not change. PostgreSQL refuses to SET
// such a column (428C9) even to its own value, so it is left out when its
// value is known to be unchanged: a key column of a keyed relation when
// the change has no old tuple (the key did not change: the row is found
// by that very value), or a column whose old value was sent and is
// identical. Otherwise (UPDATE … SET id = DEFAULT on the source gives a
// new value, and a non-key column's old value is not sent without
// REPLICA IDENTITY FULL) it is written, under a temporary BY DEFAULT
// (see group.flip).
func (ri *relInfo) sets(c *segment.Change, i int) bool {
	ci, v := ri.cols[i], c.New[i]
	if ci.skip || v.Kind == segment.Unchanged {
		return false
	}
	if !ci.always {
		return true
	}
	switch c.OldKind {
	case segment.OldNone:
		return !(ri.keyed && ci.key)
	case segment.OldKey:
		if !ci.key {
			return true // only key columns' old values are sent
		}
	}
	if i >= len(c.Old) {
		return true
	}
	o := c.Old[i]
	return o.Kind != v.Kind || o.Kind == segment.Unchanged || !bytes.Equal(o.Data, v.Data)
}

// whereTuple returns the tuple that locates the row of an update or delete:
// the old tuple if there is one, else the new one (an update that kept its
// key). It checks that the values needed are there.
func (ri *relInfo) whereTuple(c *segment.Change) ([]segment.Value, bool, error) {
	tuple, old := c.Old, true
	if c.OldKind == segment.OldNone {
		if !ri.keyed {
			return nil, false, fmt.Errorf("%s without its old row: the table has no key to find the row by", c.Op)
		}
		tuple, old = c.New, false
	}
	if len(tuple) != len(ri.cols) {
		return nil, false, fmt.Errorf("%s: %d values for %d columns", c.Op, len(tuple), len(ri.cols))
	}
	for i, v := range tuple {
		if ri.cols[i].skip || (ri.keyed && !ri.cols[i].key) {
			continue
		}
		if v.Kind == segment.Unchanged {
			return nil, false, fmt.Errorf("%s: the value of column %d, needed to find the row, was not sent", c.Op, i+1)
		}
	}
	return tuple, old, nil
}

// buildStmt makes the statement for change c; its command tag says how
// many rows it changed.
func (ri *relInfo) buildStmt(name string, c *segment.Change) *stmt {
	st := &stmt{name: name}
	add := func(col int, old bool) string {
		st.params = append(st.params, param{col: col, old: old})
		st.oids = append(st.oids, ri.cols[col].oid)
		return "$" + strconv.Itoa(len(st.params))
	}
	only := "ONLY "
	if ri.kind == 'p' {
		only = ""
	}
	switch c.Op {
	case segment.OpInsert:
		var cols, vals []string
		for i, ci := range ri.cols {
			if !ci.skip {
				cols = append(cols, ci.ident)
				vals = append(vals, add(i, false))
			}
		}
		if len(cols) == 0 {
			st.sql = "INSERT INTO " + ri.ident + " DEFAULT VALUES"
		} else {
			st.sql = "INSERT INTO " + ri.ident + " (" + strings.Join(cols, ", ") +
				") OVERRIDING SYSTEM VALUE VALUES (" + strings.Join(vals, ", ") + ")"
		}
	case segment.OpUpdate:
		var sets []string
		for i := range c.New {
			if ri.sets(c, i) {
				sets = append(sets, ri.cols[i].ident+" = "+add(i, false))
				if ri.cols[i].always {
					st.flips = append(st.flips, ri.cols[i].ident)
				}
			}
		}
		if len(sets) == 0 {
			// Nothing to write, but the row must still be there (and
			// ENABLE ALWAYS update triggers fire, as on the source): set
			// a column to itself, one that is not always if there is
			// one.
			for _, ci := range ri.cols {
				if !ci.skip && (!ci.always || ri.plain == 0) {
					sets = []string{ci.ident + " = " + ci.ident}
					if ci.always {
						st.flips = append(st.flips, ci.ident)
					}
					break
				}
			}
		}
		st.sql = "UPDATE " + only + ri.ident + " SET " + strings.Join(sets, ", ") + " WHERE " + ri.where(c, add)
	case segment.OpDelete:
		st.sql = "DELETE FROM " + only + ri.ident + " WHERE " + ri.where(c, add)
	}
	return st
}

// where returns the condition that finds the row of an update or delete.
//
// Keyed: each key column equals its value (typed, so the index applies).
//
// Otherwise the row is found by its whole old value, and exactly one of
// any identical rows is changed, through its ctid. Columns are compared
// by their text form on the target, with IS NOT DISTINCT FROM: both sides
// go through the same output function under the same session settings, so
// this matches exactly the rows that print the same, which works for types
// without an equality operator (json, xml, point) and tells apart values
// that are equal but not identical (numeric 1.5 and 1.50, -0 and 0,
// differently-cased citext) — deleting the wrong one of those would make
// the restore diverge.
func (ri *relInfo) where(c *segment.Change, add func(int, bool) string) string {
	tuple, old, _ := ri.whereTuple(c)
	var conds []string
	for i, ci := range ri.cols {
		if ci.skip {
			continue
		}
		if ri.keyed {
			if !ci.key {
				continue
			}
			if tuple[i].Kind == segment.Null {
				conds = append(conds, ci.ident+" IS NULL")
			} else {
				conds = append(conds, ci.ident+" = "+add(i, old))
			}
			continue
		}
		conds = append(conds, ci.ident+"::text IS NOT DISTINCT FROM "+add(i, old)+"::text")
	}
	if ri.keyed {
		return strings.Join(conds, " AND ")
	}
	cond := "true"
	if len(conds) > 0 {
		cond = strings.Join(conds, " AND ")
	}
	if ri.kind == 'p' {
		return "(tableoid, ctid) = (SELECT tableoid, ctid FROM " + ri.ident + " WHERE " + cond + " LIMIT 1)"
	}
	return "ctid = (SELECT ctid FROM ONLY " + ri.ident + " WHERE " + cond + " LIMIT 1)"
}

// bind fills vals and formats with the parameters of change c.
func (st *stmt) bind(c *segment.Change, vals [][]byte, formats []int16) ([][]byte, []int16) {
	vals = vals[:0]
	formats = formats[:0]
	binary := false
	for _, p := range st.params {
		tuple := c.New
		if p.old {
			tuple = c.Old
		}
		v := tuple[p.col]
		switch v.Kind {
		case segment.Null:
			vals = append(vals, nil)
			formats = append(formats, 0)
		case segment.Binary:
			vals = append(vals, nonNil(v.Data))
			formats = append(formats, 1)
			binary = true
		default:
			vals = append(vals, nonNil(v.Data))
			formats = append(formats, 0)
		}
	}
	if !binary {
		formats = formats[:0] // all text
	}
	return vals, formats
}

// nonNil returns b, or an empty non-nil slice: a nil parameter is NULL,
// and an empty string is not.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
