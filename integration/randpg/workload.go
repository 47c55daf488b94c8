package randpg

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Populate returns transactions that fill every table, before capture
// starts (so the base backup holds rows, TOASTed values among them, that
// later updates leave unchanged).
func (g *Gen) Populate() []Txn {
	var out []Txn
	for _, t := range slices.Clone(g.tables) {
		if t.Kind == Partition && t.Parent.Method == "hash" {
			continue
		}
		var stmts []Stmt
		for range 1 + g.r.IntN(3) {
			stmts = append(stmts, g.insert(t, 1+g.r.IntN(4)))
		}
		out = append(out, Txn{What: "populate " + t.Q(), Stmts: stmts})
	}
	return out
}

// Workload returns n random transactions, DDL among them.
func (g *Gen) Workload(n int) []Txn {
	var out []Txn
	for range n {
		out = append(out, g.txn())
	}
	return out
}

func (g *Gen) txn() Txn {
	switch p := g.r.IntN(100); {
	case p < 12:
		return g.ddl()
	case p < 15:
		return g.bulk()
	case p < 20: // rolled back whole, DDL included
		tx := Txn{What: "rolled back", Rollback: true}
		if g.r.IntN(2) == 0 {
			tmp := ident(g.schema()) + "." + ident(g.name())
			tx.Stmts = append(tx.Stmts, Stmt{SQL: "CREATE TABLE " + tmp + " (a integer PRIMARY KEY, b text)"},
				Stmt{SQL: "INSERT INTO " + tmp + " VALUES (1, 'gone')"})
		}
		for range 1 + g.r.IntN(3) {
			tx.Stmts = append(tx.Stmts, g.op()...)
		}
		return tx
	}
	tx := Txn{What: "dml"}
	nops := 1 + g.r.IntN(5)
	for i := range nops {
		if i > 0 && g.r.IntN(5) == 0 { // a savepoint, rolled back or released
			sp := ident("sp " + strconv.Itoa(i))
			tx.Stmts = append(tx.Stmts, Stmt{SQL: "SAVEPOINT " + sp})
			for range 1 + g.r.IntN(2) {
				tx.Stmts = append(tx.Stmts, g.op()...)
			}
			switch g.r.IntN(3) {
			case 0:
				tx.Stmts = append(tx.Stmts, Stmt{SQL: "SELECT 1/0", Fails: true}, Stmt{SQL: "ROLLBACK TO SAVEPOINT " + sp})
			case 1:
				tx.Stmts = append(tx.Stmts, Stmt{SQL: "ROLLBACK TO SAVEPOINT " + sp})
			default:
				tx.Stmts = append(tx.Stmts, Stmt{SQL: "RELEASE SAVEPOINT " + sp})
			}
			continue
		}
		tx.Stmts = append(tx.Stmts, g.op()...)
	}
	return tx
}

// dataTables lists the tables rows are written through: everything but
// hash partitions (written through their root).
func (g *Gen) dataTables() []*Table {
	var out []*Table
	for _, t := range g.tables {
		if t.Kind == Partition && t.Parent.Method == "hash" {
			continue
		}
		out = append(out, t)
	}
	return out
}

func (g *Gen) anyTable() *Table {
	ts := g.dataTables()
	return ts[g.r.IntN(len(ts))]
}

// op returns the statements of one random row operation.
func (g *Gen) op() []Stmt {
	t := g.anyTable()
	switch p := g.r.IntN(100); {
	case p < 35:
		return []Stmt{g.insert(t, 1+g.r.IntN(3))}
	case p < 60:
		return []Stmt{g.update(t)}
	case p < 68:
		if s, ok := g.updateKey(t); ok {
			return []Stmt{s}
		}
		return []Stmt{g.update(t)}
	case p < 78:
		return []Stmt{g.delete(t)}
	case p < 85:
		if ss, ok := g.duplicate(t); ok {
			return ss
		}
		return []Stmt{g.insert(t, 1)}
	case p < 89:
		if ss, ok := g.deferredFK(); ok {
			return ss
		}
	case p < 93:
		if s, ok := g.swapRanks(); ok {
			return []Stmt{s}
		}
	case p < 96:
		// Deferred checks pending on a table make TRUNCATE fail: run them
		// first (every op leaves the constraints satisfied).
		return []Stmt{{SQL: "SET CONSTRAINTS ALL IMMEDIATE"}, g.truncate(t), {SQL: "SET CONSTRAINTS ALL DEFERRED"}}
	case p < 98 && len(g.seqs) > 0:
		q := g.seqs[g.r.IntN(len(g.seqs))]
		if g.r.IntN(3) == 0 {
			return []Stmt{{SQL: fmt.Sprintf("SELECT setval(%s, %d, %t)", lit(q.Q()), g.r.IntN(10000)-9000, g.r.IntN(2) == 0)}}
		}
		return []Stmt{{SQL: fmt.Sprintf("SELECT nextval(%s)", lit(q.Q()))}}
	case p < 99 && g.r.IntN(2) == 0:
		if s, ok := g.upsert(t); ok {
			return []Stmt{s}
		}
	case p < 99:
		if cs := updatable(t); len(cs) > 0 { // an update that changes nothing
			c := cs[g.r.IntN(len(cs))]
			return []Stmt{{SQL: fmt.Sprintf("UPDATE %s SET %s = %s WHERE %s", t.Q(), ident(c.Name), ident(c.Name), g.where(t, 2))}}
		}
	}
	return []Stmt{g.update(t)}
}

// keyKindOf returns how t's key columns get their values.
func keyKindOf(t *Table) keyKind { return t.root().key }

// countersKey reports whether t's key values come from the generator's
// counter (not an identity or serial).
func countersKey(t *Table) bool {
	k := keyKindOf(t)
	return k != keyNone && k != keyIdentity && k != keySerial
}

// insertable lists the columns an INSERT names.
func insertable(t *Table) []*Column {
	return t.col(func(c *Column) bool {
		if c.Gen || c.Identity != 0 {
			return false
		}
		if c.Key && keyKindOf(t) == keySerial && c != t.root().PartCol {
			return false
		}
		return true
	})
}

// rowValues returns the values of one new row for cols, key number n.
func (g *Gen) rowValues(t *Table, cols []*Column, n int64) []string {
	var keys []string
	if countersKey(t) {
		keys = keyLits(keyKindOf(t), n)
	}
	ki := 0
	root := t.root()
	var vals []string
	for _, c := range cols {
		var v string
		switch {
		case c == root.PartCol:
			v = g.partValueFor(t)
		case c.Key:
			v = keys[min(ki, len(keys)-1)]
			ki++
		case c.Rank:
			g.rank++
			v = strconv.FormatInt(g.rank*10, 10)
		case c.UK:
			v = strconv.FormatInt(2_000_000_000_000+n, 10)
		case c.Ref != nil:
			v = g.refValue(c)
		default:
			v = g.value(c)
		}
		vals = append(vals, v)
	}
	return vals
}

// value returns a value for an ordinary column: DEFAULT, NULL, a big
// value or an ordinary one.
func (g *Gen) value(c *Column) string {
	switch p := g.r.IntN(12); {
	case p == 0 && c.Default != "":
		return "DEFAULT"
	case p == 1 && !c.NotNull:
		return "NULL"
	case p < 5 && c.T.Big != nil:
		return c.T.Big(g)
	}
	return c.T.Val(g)
}

func (g *Gen) refValue(c *Column) string {
	if c.Ref == nil || g.r.IntN(4) == 0 {
		return "NULL"
	}
	k := c.Ref.keyCols()[0]
	return fmt.Sprintf("(SELECT x.%s FROM %s x ORDER BY 1 LIMIT 1 OFFSET %d)", ident(k.Name), c.Ref.Q(), g.r.IntN(c.Ref.rows+1))
}

// partValueFor returns a partition key value that t (a partitioned table
// or one of its partitions) accepts.
func (g *Gen) partValueFor(t *Table) string {
	if t.Kind != Partition {
		return g.partValue(t.root())
	}
	switch {
	case t.list != nil:
		return t.list[g.r.IntN(len(t.list))]
	case t.lo >= 0 && t.Parent.Method == "range":
		return strconv.Itoa(t.lo + g.r.IntN(t.hi-t.lo))
	case t.Parent.Method == "range": // default partition
		return strconv.Itoa(1_000_000 + g.r.IntN(1000))
	}
	return lit("other " + g.plainWord()) // list default
}

// insert writes rows new rows into t.
func (g *Gen) insert(t *Table, rows int) Stmt {
	cols := insertable(t)
	var names []string
	for _, c := range cols {
		names = append(names, ident(c.Name))
	}
	var tuples []string
	for range rows {
		n := g.next
		g.next++
		tuples = append(tuples, "("+strings.Join(g.rowValues(t, cols, n), ", ")+")")
	}
	t.rows += rows
	if len(cols) == 0 {
		return Stmt{SQL: "INSERT INTO " + t.Q() + " DEFAULT VALUES"}
	}
	return Stmt{SQL: fmt.Sprintf("INSERT INTO %s (%s) VALUES %s", t.Q(), strings.Join(names, ", "), strings.Join(tuples, ", "))}
}

// famRows estimates the rows of t and the tables below it.
func famRows(t *Table) int {
	n := 0
	for _, f := range t.family() {
		n += f.rows
	}
	return n
}

// order returns an ORDER BY list that sorts t's rows by content: its key,
// else the row's text; ties (identical rows) are broken by position, as
// identical rows are interchangeable.
func order(t *Table) string {
	var ks []string
	if t.key != keyNone {
		for _, c := range t.keyCols() {
			ks = append(ks, "x."+ident(c.Name))
		}
	}
	if len(ks) == 0 {
		ks = append(ks, `x::text COLLATE "C"`)
	}
	return strings.Join(append(ks, "x.tableoid", "x.ctid"), ", ")
}

// where returns a condition selecting up to n of t's rows (of its
// family), chosen by content.
func (g *Gen) where(t *Table, n int) string {
	return fmt.Sprintf("(tableoid, ctid) IN (SELECT x.tableoid, x.ctid FROM %s x ORDER BY %s LIMIT %d OFFSET %d)",
		t.Q(), order(t), n, g.r.IntN(famRows(t)+1))
}

// updatable lists the columns an update may set freely.
func updatable(t *Table) []*Column {
	root := t.root()
	return t.col(func(c *Column) bool {
		return !c.Key && !c.Gen && c.Identity == 0 && c != root.PartCol && !c.Rank && !c.UK
	})
}

func (g *Gen) update(t *Table) Stmt {
	cols := updatable(t)
	if len(cols) == 0 {
		return g.insert(t, 1)
	}
	// Mostly leave large columns alone, so their TOASTed values stay
	// unchanged.
	var sets []string
	seen := map[*Column]bool{}
	for range 1 + g.r.IntN(min(3, len(cols))) {
		c := cols[g.r.IntN(len(cols))]
		if seen[c] || c.T.Big != nil && g.r.IntN(4) != 0 {
			continue
		}
		seen[c] = true
		sets = append(sets, ident(c.Name)+" = "+g.newValue(c))
	}
	if len(sets) == 0 {
		c := cols[0]
		sets = append(sets, ident(c.Name)+" = "+g.newValue(c))
	}
	return Stmt{SQL: fmt.Sprintf("UPDATE %s SET %s WHERE %s", t.Q(), strings.Join(sets, ", "), g.where(t, 1+g.r.IntN(3)))}
}

// newValue returns the expression an update sets column c to.
func (g *Gen) newValue(c *Column) string {
	switch {
	case c.Ref != nil:
		return g.refValue(c)
	case c.T.SQL == "text" && g.r.IntN(3) == 0:
		return "coalesce(" + ident(c.Name) + ", '') || " + lit(g.str(2))
	}
	return g.value(c)
}

// updateKey changes one row's primary key (or partition key, moving it to
// another partition, or its replica identity column).
func (g *Gen) updateKey(t *Table) (Stmt, bool) {
	root := t.root()
	var sets []string
	if uk := t.col(func(c *Column) bool { return c.UK }); len(uk) > 0 && g.r.IntN(2) == 0 {
		sets = append(sets, ident(uk[0].Name)+" = "+strconv.FormatInt(2_000_000_000_000+g.next, 10))
		g.next++
	}
	if t.Kind == Partitioned && g.r.IntN(3) != 0 {
		sets = append(sets, ident(root.PartCol.Name)+" = "+g.partValue(root))
	}
	if len(sets) == 0 {
		k := keyKindOf(t)
		ks := t.keyCols()
		if k == keyNone || len(ks) == 0 {
			return Stmt{}, false
		}
		if ks[0].Identity != 0 && (ks[0].Identity == 'a' || g.r.IntN(2) == 0) {
			// A new value from the identity's sequence (the only update
			// an ALWAYS identity allows).
			return Stmt{SQL: fmt.Sprintf("UPDATE %s SET %s = DEFAULT WHERE %s", t.Q(), ident(ks[0].Name), g.where(t, 1))}, true
		}
		n := g.next
		g.next++
		var vals []string
		switch k {
		case keyIdentity, keySerial:
			// Below the sequence: a value above it would raise the
			// restored sequence to the column's maximum (README: "except
			// through the owned-column floor").
			vals = []string{strconv.FormatInt(-n, 10)}
		default:
			vals = keyLits(k, n)
		}
		for i, c := range ks {
			if c == root.PartCol {
				continue
			}
			sets = append(sets, ident(c.Name)+" = "+vals[min(i, len(vals)-1)])
		}
	}
	return Stmt{SQL: fmt.Sprintf("UPDATE %s SET %s WHERE %s", t.Q(), strings.Join(sets, ", "), g.where(t, 1))}, true
}

func (g *Gen) delete(t *Table) Stmt {
	n := 1 + g.r.IntN(3)
	t.rows = max(0, t.rows-n)
	return Stmt{SQL: fmt.Sprintf("DELETE FROM %s WHERE %s", t.Q(), g.where(t, n))}
}

// duplicate copies one row of a table without a key, making two identical
// rows, and then updates or deletes one of the two.
func (g *Gen) duplicate(t *Table) ([]Stmt, bool) {
	if t.key != keyNone || len(t.Children) > 0 {
		return nil, false
	}
	cols := t.col(func(c *Column) bool { return !c.Gen && c.Identity == 0 })
	if len(cols) == 0 {
		return nil, false
	}
	var names []string
	for _, c := range cols {
		names = append(names, ident(c.Name))
	}
	off := g.r.IntN(t.rows + 1)
	pick := fmt.Sprintf(`(SELECT x.ctid FROM ONLY %s x ORDER BY x::text COLLATE "C", x.ctid LIMIT 1 OFFSET %d)`, t.Q(), off)
	l := strings.Join(names, ", ")
	ss := []Stmt{{SQL: fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM ONLY %s WHERE ctid = %s", t.Q(), l, l, t.Q(), pick)}}
	t.rows++
	if g.r.IntN(3) == 0 {
		ss = append(ss, Stmt{SQL: fmt.Sprintf("DELETE FROM ONLY %s WHERE ctid = %s", t.Q(), pick)})
		return ss, true
	}
	if up := updatable(t); len(up) > 0 {
		c := up[g.r.IntN(len(up))]
		ss = append(ss, Stmt{SQL: fmt.Sprintf("UPDATE ONLY %s SET %s = %s WHERE ctid = %s", t.Q(), ident(c.Name), g.newValue(c), pick)})
	}
	return ss, true
}

// deferredFK inserts a child row before the parent row it references,
// which the deferred foreign key allows until commit.
func (g *Gen) deferredFK() ([]Stmt, bool) {
	for _, t := range g.tables {
		for _, c := range t.Cols {
			if c.Ref == nil || !countersKey(c.Ref) || c.Ref.Kind != Plain {
				continue
			}
			n := g.next
			g.next++
			key := keyLits(keyKindOf(c.Ref), n)[0]
			// The new child row points at the parent row about to come.
			cols := insertable(t)
			var names, vals []string
			for _, cc := range cols {
				names = append(names, ident(cc.Name))
				if cc == c {
					vals = append(vals, key)
				} else {
					vals = append(vals, g.rowValues(t, []*Column{cc}, g.next)[0])
				}
			}
			g.next++
			t.rows++
			child := Stmt{SQL: fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", t.Q(), strings.Join(names, ", "), strings.Join(vals, ", "))}
			pcols := insertable(c.Ref)
			var pnames []string
			for _, pc := range pcols {
				pnames = append(pnames, ident(pc.Name))
			}
			parent := Stmt{SQL: fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", c.Ref.Q(), strings.Join(pnames, ", "),
				strings.Join(g.rowValues(c.Ref, pcols, n), ", "))}
			c.Ref.rows++
			return []Stmt{child, parent}, true
		}
	}
	return nil, false
}

// swapRanks swaps the values of a deferrable unique column between two
// rows in one statement: a duplicate exists in between, which only the
// deferred check allows.
func (g *Gen) swapRanks() (Stmt, bool) {
	for _, t := range g.tables {
		for _, c := range t.Cols {
			if !c.Rank {
				continue
			}
			r := ident(c.Name)
			return Stmt{SQL: fmt.Sprintf(`WITH p AS (SELECT x.ctid AS tid, x.%s AS r, row_number() OVER (ORDER BY %s) AS n FROM ONLY %s x ORDER BY %s LIMIT 2 OFFSET %d)
UPDATE ONLY %s t SET %s = q.r FROM p, p q WHERE t.ctid = p.tid AND q.n = 3 - p.n`,
				r, order(t), t.Q(), order(t), g.r.IntN(t.rows+1), t.Q(), r)}, true
		}
	}
	return Stmt{}, false
}

// referencing lists the tables with a foreign key to t.
func (g *Gen) referencing(t *Table) []*Table {
	var out []*Table
	for _, o := range g.tables {
		for _, c := range o.Cols {
			if c.Ref == t {
				out = append(out, o)
				break
			}
		}
	}
	return out
}

func (g *Gen) truncate(t *Table) Stmt {
	var b strings.Builder
	b.WriteString("TRUNCATE ")
	only := t.Kind == InhParent && g.r.IntN(2) == 0
	if only {
		b.WriteString("ONLY ")
	}
	b.WriteString(t.Q())
	if g.r.IntN(3) == 0 {
		b.WriteString(" RESTART IDENTITY")
	}
	gone := []*Table{t}
	if !only {
		gone = t.family()
	}
	var cascade bool
	for _, f := range slices.Clone(gone) {
		if refs := g.referencing(f.root()); len(refs) > 0 {
			cascade = true
			gone = append(gone, refs...)
		}
	}
	if cascade {
		b.WriteString(" CASCADE")
	}
	for _, f := range gone {
		f.rows = 0
	}
	return Stmt{SQL: b.String()}
}

// bulk returns a large transaction: thousands of rows (megabytes, more
// than a segment and than logical_decoding_work_mem, so the server streams
// it before it commits), with a savepoint rolled back in the middle, and
// an update of many rows.
func (g *Gen) bulk() Txn {
	t := g.anyTable()
	tx := Txn{What: "large transaction on " + t.Q()}
	tx.Stmts = append(tx.Stmts, g.bulkInsert(t, 200+g.r.IntN(1200)))
	if g.r.IntN(2) == 0 {
		tx.Stmts = append(tx.Stmts, Stmt{SQL: `SAVEPOINT "bulk"`}, g.bulkInsert(t, 100+g.r.IntN(400)))
		if g.r.IntN(2) == 0 {
			tx.Stmts = append(tx.Stmts, Stmt{SQL: "SELECT 1/0", Fails: true})
		}
		tx.Stmts = append(tx.Stmts, Stmt{SQL: `ROLLBACK TO SAVEPOINT "bulk"`})
	}
	if (t.Kind == Plain || t.Kind == Partitioned || t.Kind == InhParent) && g.r.IntN(3) == 0 {
		// DDL in the middle of a transaction the server streams: the
		// relation changes between its changes.
		c := g.newColumn(false)
		for _, f := range t.family() {
			f.Cols = append(f.Cols, c)
		}
		tx.Stmts = append(tx.Stmts, Stmt{SQL: "SET CONSTRAINTS ALL IMMEDIATE"}, // no trigger events may be pending
			Stmt{SQL: "ALTER TABLE " + t.Q() + " ADD COLUMN " + c.def()}, g.bulkInsert(t, 50+g.r.IntN(200)), g.update(t))
	}
	if up := updatable(t); len(up) > 0 && g.r.IntN(2) == 0 {
		c := up[g.r.IntN(len(up))]
		if c.T.Big == nil {
			tx.Stmts = append(tx.Stmts, Stmt{SQL: fmt.Sprintf("UPDATE %s SET %s = %s", t.Q(), ident(c.Name), g.newValue(c))})
		}
	}
	return tx
}

// bulkInsert inserts n rows with generate_series, filling one text-like
// column with about 1.3 kB per row.
func (g *Gen) bulkInsert(t *Table, n int) Stmt {
	base := g.next
	g.next += int64(n) + 1
	root := t.root()
	var keys []string
	if countersKey(t) {
		keys = keySQL(keyKindOf(t), base)
	}
	ki := 0
	filled := false
	var names, exprs []string
	for _, c := range insertable(t) {
		var e string
		switch {
		case c == root.PartCol:
			e = g.partValueFor(t)
		case c.Key:
			e = keys[min(ki, len(keys)-1)]
			ki++
		case c.UK:
			e = "2000000000000 + " + strconv.FormatInt(base, 10) + " + g"
		case c.Rank || c.Ref != nil:
			continue
		case !filled && (c.T.SQL == "text" || c.T.SQL == "bytea" || c.T.SQL == "jsonb"):
			filled = true
			switch c.T.SQL {
			case "text":
				e = "repeat(md5(g::text), 40)"
			case "bytea":
				e = "decode(repeat(md5(g::text), 40), 'hex')"
			default:
				e = "jsonb_build_object('p', repeat(md5(g::text), 40), 'g', g)"
			}
		case c.NotNull && c.Default == "":
			e = c.T.Val(g)
		default:
			continue
		}
		names = append(names, ident(c.Name))
		exprs = append(exprs, e)
	}
	t.rows += n
	if len(names) == 0 {
		return Stmt{SQL: fmt.Sprintf("INSERT INTO %s SELECT FROM generate_series(1, %d) g", t.Q(), n)}
	}
	return Stmt{SQL: fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM generate_series(1, %d) g", t.Q(), strings.Join(names, ", "), strings.Join(exprs, ", "), n)}
}

// upsert inserts a row whose key may already be taken (an earlier key
// number): ON CONFLICT then updates that row, or does nothing.
func (g *Gen) upsert(t *Table) (Stmt, bool) {
	if t.Kind != Plain || !countersKey(t) || g.next < 2 || slices.ContainsFunc(t.Cols, func(c *Column) bool { return c.UK }) {
		return Stmt{}, false // (an old key number would reuse its UK value too)
	}
	cols := insertable(t)
	var names, keys, sets []string
	for _, c := range cols {
		names = append(names, ident(c.Name))
		if c.Key {
			keys = append(keys, ident(c.Name))
		} else if !c.Rank && !c.UK {
			sets = append(sets, ident(c.Name)+" = EXCLUDED."+ident(c.Name))
		}
	}
	vals := g.rowValues(t, cols, 1+g.r.Int64N(g.next-1))
	action := "DO NOTHING"
	if len(sets) > 0 && g.r.IntN(3) != 0 {
		action = "DO UPDATE SET " + strings.Join(sets, ", ")
	}
	t.rows++
	return Stmt{SQL: fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (%s) %s", t.Q(), strings.Join(names, ", "), strings.Join(vals, ", "), strings.Join(keys, ", "), action)}, true
}
