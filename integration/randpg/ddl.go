package randpg

import (
	"fmt"
	"slices"
	"strings"
)

// ddl returns one DDL transaction, sometimes followed in the same
// transaction by row changes of the table it changed.
func (g *Gen) ddl() Txn {
	for range 10 {
		tx, t, ok := g.ddlOnce()
		if !ok {
			continue
		}
		if t != nil && !tx.NoBlock && g.r.IntN(2) == 0 && slices.Contains(g.tables, t) {
			if t.Kind != Partition || t.Parent.Method != "hash" {
				tx.Stmts = append(tx.Stmts, g.insert(t, 1), g.update(t))
			}
		}
		return tx
	}
	return Txn{What: "dml", Stmts: g.op()}
}

// columnTables lists the tables whose columns DDL may change: plain
// tables and the roots of partitioned and inheritance families (which
// pass the change on).
func (g *Gen) columnTables() []*Table {
	var out []*Table
	for _, t := range g.tables {
		if t.Kind == Plain || t.Kind == Partitioned || t.Kind == InhParent {
			out = append(out, t)
		}
	}
	return out
}

func (g *Gen) ddlOnce() (Txn, *Table, bool) {
	cts := g.columnTables()
	if len(cts) == 0 {
		return g.createPlain(true), nil, true
	}
	t := cts[g.r.IntN(len(cts))]
	alter := "ALTER TABLE " + t.Q() + " "
	one := func(what, sql string) (Txn, *Table, bool) {
		return Txn{What: "DDL: " + what, Stmts: []Stmt{{SQL: sql}}}, t, true
	}
	free := t.col(func(c *Column) bool { return !c.Key && !c.Fixed && !c.Gen && c.Identity == 0 })
	switch g.r.IntN(22) {
	case 19: // two tables swap names, in one transaction
		var ps []*Table
		for _, o := range g.tables {
			if o.Kind == Plain && o.Schema == t.Schema && o != t {
				ps = append(ps, o)
			}
		}
		if t.Kind != Plain || len(ps) == 0 {
			return Txn{}, nil, false
		}
		o := ps[g.r.IntN(len(ps))]
		tmp := g.name()
		q := ident(t.Schema) + "."
		stmts := []Stmt{
			{SQL: "ALTER TABLE " + t.Q() + " RENAME TO " + ident(tmp)},
			{SQL: "ALTER TABLE " + o.Q() + " RENAME TO " + ident(t.Name)},
			{SQL: "ALTER TABLE " + q + ident(tmp) + " RENAME TO " + ident(o.Name)},
		}
		t.Name, o.Name = o.Name, t.Name
		stmts = append(stmts, g.insert(o, 1), g.update(t), g.update(o))
		return Txn{What: "DDL: swap table names", Stmts: stmts}, t, true
	case 20: // two columns swap names (their types differ), in one transaction
		if len(free) < 2 {
			return Txn{}, nil, false
		}
		a, b := free[0], free[1+g.r.IntN(len(free)-1)]
		tmp := g.name()
		stmts := []Stmt{
			{SQL: alter + "RENAME COLUMN " + ident(a.Name) + " TO " + ident(tmp)},
			{SQL: alter + "RENAME COLUMN " + ident(b.Name) + " TO " + ident(a.Name)},
			{SQL: alter + "RENAME COLUMN " + ident(tmp) + " TO " + ident(b.Name)},
		}
		a.Name, b.Name = b.Name, a.Name
		return Txn{What: "DDL: swap column names", Stmts: stmts}, t, true
	case 21: // drop a column and add one of the same name and another type
		if len(free) == 0 {
			return Txn{}, nil, false
		}
		c := free[g.r.IntN(len(free))]
		n := g.newColumn(false)
		n.Name = c.Name
		for _, f := range t.family() {
			f.Cols = slices.DeleteFunc(f.Cols, func(x *Column) bool { return x == c })
			f.Cols = append(f.Cols, n)
		}
		return Txn{What: "DDL: replace a column", Stmts: []Stmt{
			{SQL: alter + "DROP COLUMN " + ident(c.Name)},
			{SQL: alter + "ADD COLUMN " + n.def()},
		}}, t, true
	case 16: // sequences
		q := g.seqs[g.r.IntN(len(g.seqs))]
		switch g.r.IntN(3) {
		case 0:
			q.restart += 37
			return Txn{What: "DDL: restart sequence", Stmts: []Stmt{{SQL: fmt.Sprintf("ALTER SEQUENCE %s RESTART WITH %d", q.Q(), q.restart)}}}, nil, true
		case 1:
			return Txn{What: "DDL: alter sequence", Stmts: []Stmt{{SQL: fmt.Sprintf("ALTER SEQUENCE %s INCREMENT BY %s", q.Q(), g.pick("-7", "3", "-1"))}}}, nil, true
		}
		old := q.Q()
		q.name = g.name()
		return Txn{What: "DDL: rename sequence", Stmts: []Stmt{{SQL: "ALTER SEQUENCE " + old + " RENAME TO " + ident(q.name)}}}, nil, true
	case 17: // restart an identity
		for _, c := range t.Cols {
			if c.Identity != 0 {
				g.next += 100_000
				return one("restart identity", fmt.Sprintf("%sALTER COLUMN %s RESTART WITH %d", alter, ident(c.Name), 10_000_000+g.next))
			}
		}
		return Txn{}, nil, false
	case 18: // add a stored generated column
		var src *Column
		for _, c := range free {
			if c.T.SQL == "integer" || c.T.SQL == "bigint" || c.T.SQL == "smallint" {
				src = c
				break
			}
		}
		if src == nil {
			return Txn{}, nil, false
		}
		src.Fixed = true
		c := &Column{Name: g.name(), T: g.byName["numeric"], Gen: true}
		for _, f := range t.family() {
			f.Cols = append(f.Cols, c)
		}
		return one("add generated column", fmt.Sprintf("%sADD COLUMN %s numeric GENERATED ALWAYS AS (coalesce(%s, 0)::numeric * 3 - 1) STORED", alter, ident(c.Name), ident(src.Name)))
	case 0, 1: // add a column
		c := g.newColumn(false)
		for _, f := range t.family() {
			f.Cols = append(f.Cols, c)
		}
		return one("add column", alter+"ADD COLUMN "+c.def())
	case 2: // drop a column
		if len(free) == 0 {
			return Txn{}, nil, false
		}
		c := free[g.r.IntN(len(free))]
		for _, f := range t.family() {
			f.Cols = slices.DeleteFunc(f.Cols, func(x *Column) bool { return x == c })
		}
		return one("drop column", alter+"DROP COLUMN "+ident(c.Name))
	case 3: // rename a column
		if len(t.Cols) == 0 {
			return Txn{}, nil, false
		}
		c := t.Cols[g.r.IntN(len(t.Cols))]
		old := c.Name
		c.Name = g.name()
		return one("rename column", alter+"RENAME COLUMN "+ident(old)+" TO "+ident(c.Name))
	case 4, 5: // change a column's type
		var cs []*Column
		for _, c := range free {
			if len(c.T.AlterTo) > 0 && c.Default == "" {
				cs = append(cs, c)
			}
		}
		if len(cs) == 0 {
			return Txn{}, nil, false
		}
		c := cs[g.r.IntN(len(cs))]
		to := g.byName[c.T.AlterTo[g.r.IntN(len(c.T.AlterTo))]]
		if to == nil {
			return Txn{}, nil, false
		}
		c.T = to
		return one("alter column type", fmt.Sprintf("%sALTER COLUMN %s TYPE %s USING %s::%s", alter, ident(c.Name), to.SQL, ident(c.Name), to.SQL))
	case 6: // defaults and NOT NULL
		if len(free) == 0 {
			return Txn{}, nil, false
		}
		c := free[g.r.IntN(len(free))]
		if c.NotNull {
			c.NotNull = false
			return one("drop not null", alter+"ALTER COLUMN "+ident(c.Name)+" DROP NOT NULL")
		}
		if c.Default != "" {
			c.Default = ""
			return one("drop default", alter+"ALTER COLUMN "+ident(c.Name)+" DROP DEFAULT")
		}
		d := g.safeDefault(c.T)
		if d == "" {
			return Txn{}, nil, false
		}
		c.Default = d
		return one("set default", alter+"ALTER COLUMN "+ident(c.Name)+" SET DEFAULT "+d)
	case 7: // create a table
		tx := g.createPlain(true)
		return tx, g.tables[len(g.tables)-1], true
	case 8: // drop a table
		if t.Kind != Plain || len(g.columnTables()) < 3 {
			return Txn{}, nil, false
		}
		g.dropTable(t)
		return one("drop table", "DROP TABLE "+t.Q()+" CASCADE")
	case 9: // rename a table
		tt := g.tables[g.r.IntN(len(g.tables))]
		old := tt.Q()
		tt.Name = g.name()
		return Txn{What: "DDL: rename table", Stmts: []Stmt{{SQL: "ALTER TABLE " + old + " RENAME TO " + ident(tt.Name)}}}, tt, true
	case 10: // move a table to another schema
		if t.Kind != Plain {
			return Txn{}, nil, false
		}
		s := g.schema()
		if s == t.Schema {
			return Txn{}, nil, false
		}
		old := t.Q()
		t.Schema = s
		return one("set schema", "ALTER TABLE "+old+" SET SCHEMA "+ident(s))
	case 11: // partitions
		return g.partitionDDL()
	case 12: // a new enum value
		e := g.enums[g.r.IntN(len(g.enums))]
		l := g.name()
		sql := "ALTER TYPE " + e.q + " ADD VALUE " + lit(l)
		if g.r.IntN(2) == 0 {
			sql += " BEFORE " + lit(e.labels[g.r.IntN(len(e.labels))])
		}
		e.labels = append(e.labels, l)
		return Txn{What: "DDL: alter type add value", Stmts: []Stmt{{SQL: sql}}}, nil, true
	case 13: // an index
		var cs []*Column
		for _, c := range t.Cols {
			if !c.T.NoEq && !strings.Contains(c.T.SQL, "[]") && (c.T.Big == nil || c.T.SQL == "jsonb") {
				cs = append(cs, c)
			}
		}
		if len(cs) == 0 {
			return Txn{}, nil, false
		}
		c := cs[g.r.IntN(len(cs))]
		c.Fixed = true // its type stays one that fits the index
		using := ""
		if c.T.SQL == "jsonb" || c.T.SQL == "tsvector" {
			using = " USING gin"
		}
		if t.Kind == Plain && g.r.IntN(2) == 0 {
			return Txn{What: "DDL: create index concurrently", NoBlock: true, Stmts: []Stmt{{SQL: fmt.Sprintf("CREATE INDEX CONCURRENTLY %s ON %s%s (%s)", ident(g.name()), t.Q(), using, ident(c.Name))}}}, t, true
		}
		return one("create index", fmt.Sprintf("CREATE INDEX %s ON %s%s (%s)", ident(g.name()), t.Q(), using, ident(c.Name)))
	case 14: // replica identity of a keyed table
		if t.Kind != Plain || t.key == keyNone {
			return Txn{}, nil, false
		}
		t.full = !t.full
		if t.full {
			return one("replica identity full", alter+"REPLICA IDENTITY FULL")
		}
		return one("replica identity default", alter+"REPLICA IDENTITY DEFAULT")
	default: // CREATE TABLE AS, then REPLICA IDENTITY FULL
		if t.Kind != Plain {
			return Txn{}, nil, false
		}
		n := &Table{Schema: g.schema(), Name: g.name(), Kind: Plain, key: keyNone, rows: t.rows}
		for _, c := range t.Cols {
			n.Cols = append(n.Cols, &Column{Name: c.Name, T: c.T})
		}
		g.tables = append(g.tables, n)
		return Txn{What: "DDL: create table as", Stmts: []Stmt{
			{SQL: fmt.Sprintf("CREATE TABLE %s AS SELECT * FROM ONLY %s", n.Q(), t.Q())},
			{SQL: "ALTER TABLE " + n.Q() + " REPLICA IDENTITY FULL"},
		}}, n, true
	}
}

// dropTable removes t (and, by CASCADE, the foreign keys to it) from the
// model.
func (g *Gen) dropTable(t *Table) {
	for _, f := range t.family() {
		g.tables = slices.DeleteFunc(g.tables, func(x *Table) bool { return x == f })
	}
	if t.Parent != nil {
		t.Parent.Children = slices.DeleteFunc(t.Parent.Children, func(x *Table) bool { return x == t })
	}
	for _, o := range g.tables {
		for _, c := range o.Cols {
			if c.Ref == t {
				c.Ref = nil
			}
		}
	}
	g.dropped++
}

// partitionDDL adds a range partition or drops a range or list partition
// (never the default one, nor a hash partition, which inserts need).
func (g *Gen) partitionDDL() (Txn, *Table, bool) {
	var roots []*Table
	for _, t := range g.tables {
		if t.Kind == Partitioned && t.Method != "hash" {
			roots = append(roots, t)
		}
	}
	if len(roots) == 0 {
		return Txn{}, nil, false
	}
	root := roots[g.r.IntN(len(roots))]
	if root.Method == "range" && g.r.IntN(2) == 0 {
		hi := 0
		for _, p := range root.Children {
			hi = max(hi, p.hi)
		}
		lo := max(1000, (hi+999)/1000*1000)
		if g.r.IntN(2) == 0 && !slices.ContainsFunc(root.Cols, func(c *Column) bool { return c.Gen }) {
			return g.attachPartition(root, lo, lo+1000), root.Children[len(root.Children)-1], true
		}
		s := g.addPartition(root, lo, lo+1000)
		return Txn{What: "DDL: add partition", Stmts: []Stmt{s}}, root.Children[len(root.Children)-1], true
	}
	var ps []*Table
	for _, p := range root.Children {
		if p.list != nil || p.lo >= 0 && root.Method == "range" {
			ps = append(ps, p)
		}
	}
	if len(ps) < 2 {
		return Txn{}, nil, false
	}
	p := ps[g.r.IntN(len(ps))]
	g.dropTable(p)
	return Txn{What: "DDL: drop partition", Stmts: []Stmt{{SQL: "DROP TABLE " + p.Q()}}}, nil, true
}

// attachPartition creates a table whose columns are in another order than
// root's, with a dropped column among them (so its attribute numbers
// differ from the root's), and attaches it as the range partition
// [lo, hi).
func (g *Gen) attachPartition(root *Table, lo, hi int) Txn {
	p := &Table{Schema: g.schema(), Name: g.name(), Kind: Partition, key: root.key, Parent: root, Cols: slices.Clone(root.Cols), lo: lo, hi: hi}
	gone := g.name()
	defs := []string{ident(gone) + " integer"}
	for i := len(root.Cols) - 1; i >= 0; i-- {
		c := root.Cols[i]
		d := ident(c.Name) + " " + c.T.SQL
		if c.NotNull {
			d += " NOT NULL"
		}
		defs = append(defs, d)
	}
	root.Children = append(root.Children, p)
	g.tables = append(g.tables, p)
	return Txn{What: "DDL: attach partition", Stmts: []Stmt{
		{SQL: fmt.Sprintf("CREATE TABLE %s (%s)", p.Q(), strings.Join(defs, ", "))},
		{SQL: fmt.Sprintf("ALTER TABLE %s DROP COLUMN %s", p.Q(), ident(gone))},
		{SQL: fmt.Sprintf("ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%d) TO (%d)", root.Q(), p.Q(), lo, hi)},
	}}
}
