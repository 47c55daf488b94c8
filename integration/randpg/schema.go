package randpg

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// Stmt is one statement of the workload, sent as its own query.
type Stmt struct {
	SQL string
	// Fails marks a statement that must fail; it runs inside a savepoint
	// that a later statement rolls back to.
	Fails bool
}

// Txn is one transaction of the workload: its statements run between
// BEGIN and COMMIT, or ROLLBACK when Rollback is set. NoBlock marks a
// statement that must run outside a transaction block (one statement, no
// BEGIN).
type Txn struct {
	What     string // what it does, for messages
	Stmts    []Stmt
	Rollback bool
	NoBlock  bool
}

// Kind is what a table is in its family.
type Kind int

// Table kinds.
const (
	Plain       Kind = iota // an ordinary table
	Partitioned             // a partitioned table (no rows of its own)
	Partition               // a partition of a Partitioned table
	InhParent               // a table other tables inherit from
	InhChild                // a table that INHERITS an InhParent
)

// keyKind is how a table's primary key is made.
type keyKind int

const (
	keyNone      keyKind = iota // no primary key: REPLICA IDENTITY FULL
	keyInt                      // integer from a counter
	keyBigint                   // bigint from a counter, far from zero
	keyText                     // text from a counter, with odd characters
	keyUUID                     // uuid from a counter
	keyNumeric                  // numeric from a counter, with a fraction
	keyDate                     // date from a counter
	keyComposite                // (integer, text)
	keyIdentity                 // bigint identity BY DEFAULT (or ALWAYS)
	keySerial                   // serial
)

// Column is one column of the model.
type Column struct {
	Name     string
	T        *Type
	NotNull  bool
	Default  string // SQL, "" for none
	Identity byte   // 'a' ALWAYS, 'd' BY DEFAULT, 0 none
	Gen      bool   // stored generated column
	Key      bool   // part of the primary key
	// Fixed columns are referenced by something else (a generated
	// column, a foreign key, a partition key, a replica identity index,
	// a deferrable unique constraint) and are never dropped or changed in
	// type.
	Fixed bool
	Ref   *Table // foreign key to Ref's single key column
	Rank  bool   // deferrable unique, values from the rank counter
	UK    bool   // unique NOT NULL column that is the replica identity index
}

// Table is one table of the model.
type Table struct {
	Schema, Name string
	Kind         Kind
	Cols         []*Column
	key          keyKind
	Parent       *Table
	Children     []*Table
	// Partitioned tables: the partition method and the key column;
	// partitions: their bound's values.
	Method  string // range, list, hash
	PartCol *Column
	lo, hi  int      // range partitions: [lo, hi)
	list    []string // list partitions: their values (SQL literals)
	rows    int      // estimated rows
	full    bool     // REPLICA IDENTITY FULL set on a keyed table
}

// Q is the table's qualified, quoted name.
func (t *Table) Q() string { return ident(t.Schema) + "." + ident(t.Name) }

func (t *Table) root() *Table {
	for t.Parent != nil {
		t = t.Parent
	}
	return t
}

// family returns t and every table below it.
func (t *Table) family() []*Table {
	out := []*Table{t}
	for _, c := range t.Children {
		out = append(out, c.family()...)
	}
	return out
}

func (t *Table) keyCols() []*Column {
	var ks []*Column
	for _, c := range t.Cols {
		if c.Key {
			ks = append(ks, c)
		}
	}
	return ks
}

func (t *Table) col(pred func(*Column) bool) []*Column {
	var out []*Column
	for _, c := range t.Cols {
		if pred(c) {
			out = append(out, c)
		}
	}
	return out
}

// Gen generates one seed's schema and workload. It is not safe for
// concurrent use.
type Gen struct {
	Seed   uint64
	r      *rand.Rand
	n      int // name counter
	next   int64
	rank   int64
	exts   []string
	types  []*Type
	byName map[string]*Type
	// schemas holds "public" and the generated ones.
	schemas []string
	tables  []*Table
	enums   []*enumType
	seqs    []*sequence
	dropped int // tables dropped, for messages
}

// sequence is a standalone sequence: it counts down by 7 and cycles, so
// nextval and setval never fail.
type sequence struct {
	schema, name string
	restart      int // the next RESTART WITH value
}

func (q *sequence) Q() string { return ident(q.schema) + "." + ident(q.name) }

type enumType struct {
	q      string // qualified, quoted
	labels []string
	t      *Type
}

// New returns the generator for seed.
func New(seed uint64) *Gen {
	g := &Gen{Seed: seed, r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), next: 1, rank: 1}
	return g
}

// namePool holds names that need quoting: mixed case, reserved words,
// spaces, dots, double quotes, Unicode.
var namePool = []string{
	"Patient", "order", "select", "user", "Dose Log", "café", "naïve ñ", "表格", `a"b`, "x.y",
	"MiXeD", "from", "check", "ü-ber", "col umn", "$d", "1st", "group", "limit", "Rx#", "end",
	"trailing ", "ключ", "default", "table", "primary",
}

// name returns a new unique name.
func (g *Gen) name() string {
	g.n++
	if g.r.IntN(4) == 0 {
		return fmt.Sprintf("%d %s", g.n, namePool[g.r.IntN(len(namePool))])
	}
	return fmt.Sprintf("%s_%d", namePool[g.r.IntN(len(namePool))], g.n)
}

// Extensions lists the contrib extensions the schema uses.
func (g *Gen) Extensions() []string { return g.exts }

// Schema returns the statements that create the seed's schema, each its
// own query, to run before capture starts (they are in the base backup).
func (g *Gen) Schema() []Txn {
	var out []Txn
	// Contrib types in play this seed.
	all := builtinTypes()
	extOn := map[string]bool{"": true}
	for _, e := range []string{"citext", "hstore", "ltree", "cube", "seg", "isn"} {
		if g.r.IntN(2) == 0 {
			extOn[e] = true
			g.exts = append(g.exts, e)
			out = append(out, Txn{What: "create extension", Stmts: []Stmt{{SQL: "CREATE EXTENSION IF NOT EXISTS " + ident(e)}}})
		}
	}
	g.byName = map[string]*Type{}
	for _, t := range all {
		if extOn[t.Ext] {
			g.types = append(g.types, t)
			if g.byName[t.SQL] == nil {
				g.byName[t.SQL] = t
			}
		}
	}
	g.schemas = []string{"public"}
	for range 1 + g.r.IntN(2) {
		s := g.name()
		g.schemas = append(g.schemas, s)
		out = append(out, Txn{What: "create schema", Stmts: []Stmt{{SQL: "CREATE SCHEMA " + ident(s)}}})
	}
	out = append(out, g.userTypes()...)
	q := &sequence{schema: g.schema(), name: g.name(), restart: -500}
	g.seqs = append(g.seqs, q)
	out = append(out, Txn{What: "create sequence", Stmts: []Stmt{{SQL: "CREATE SEQUENCE " + q.Q() +
		" AS bigint INCREMENT BY -7 MINVALUE -1000000 MAXVALUE 1000 START WITH 3 CYCLE"}}})

	nPlain := 2 + g.r.IntN(3)
	for range nPlain {
		out = append(out, g.createPlain(false))
	}
	if g.r.IntN(3) != 0 {
		out = append(out, g.createPartitioned())
	}
	if g.r.IntN(2) == 0 {
		out = append(out, g.createInheritance())
	}
	if g.r.IntN(3) == 0 { // a table without columns: its rows are all alike
		t := &Table{Schema: g.schema(), Name: g.name(), Kind: Plain, key: keyNone}
		g.tables = append(g.tables, t)
		out = append(out, Txn{What: "create table without columns", Stmts: []Stmt{
			{SQL: "CREATE TABLE " + t.Q() + " ()"}, {SQL: "ALTER TABLE " + t.Q() + " REPLICA IDENTITY FULL"}}})
	}
	if t := g.fkParent(); t != nil {
		out = append(out, g.createFKChild(t))
	}
	return out
}

func (g *Gen) schema() string { return g.schemas[g.r.IntN(len(g.schemas))] }

// userTypes creates an enum, domains and a composite type, and adds them
// (and arrays of them) to the type list.
func (g *Gen) userTypes() []Txn {
	var stmts []Stmt
	// enum
	e := &enumType{q: ident(g.schema()) + "." + ident(g.name())}
	e.labels = []string{"new", "in progress", "don't", "ümlaut", "NULL", g.str(2) + "x", "Z"}
	var ls []string
	for _, l := range e.labels {
		ls = append(ls, lit(l))
	}
	stmts = append(stmts, Stmt{SQL: fmt.Sprintf("CREATE TYPE %s AS ENUM (%s)", e.q, strings.Join(ls, ", "))})
	e.t = &Type{SQL: e.q, Val: func(g *Gen) string { return cast(e.labels[g.r.IntN(len(e.labels))], e.q) }}
	g.enums = append(g.enums, e)
	// domains
	dInt := ident(g.schema()) + "." + ident(g.name())
	stmts = append(stmts, Stmt{SQL: fmt.Sprintf("CREATE DOMAIN %s AS integer DEFAULT 7 CHECK (VALUE > 0)", dInt)})
	dIntT := &Type{SQL: dInt, Val: func(g *Gen) string { return strconv.Itoa(1+g.r.IntN(1e6)) + "::" + dInt }}
	dText := ident(g.schema()) + "." + ident(g.name())
	stmts = append(stmts, Stmt{SQL: fmt.Sprintf(`CREATE DOMAIN %s AS text COLLATE "C" CHECK (VALUE <> '')`, dText)})
	dTextT := &Type{SQL: dText, Val: func(g *Gen) string { return lit("d"+g.str(3)) + "::" + dText }}
	// composite
	comp := ident(g.schema()) + "." + ident(g.name())
	stmts = append(stmts, Stmt{SQL: fmt.Sprintf(`CREATE TYPE %s AS ("n" integer, "Label" text, "amt" numeric(12,2), "when" timestamptz)`, comp)})
	compT := &Type{SQL: comp, NoEq: false, Val: func(g *Gen) string {
		return fmt.Sprintf("ROW(%s, %s, %s, %s)::%s", g.maybeNull(g.byName["integer"]), g.maybeNull(g.byName["text"]),
			g.maybeNull(g.byName["numeric(12,2)"]), g.maybeNull(g.byName["timestamptz"]), comp)
	}}
	for _, t := range []*Type{e.t, dIntT, dTextT, compT} {
		g.types = append(g.types, t)
		arr := t.SQL + "[]"
		g.types = append(g.types, &Type{SQL: arr, Val: func(g *Gen) string { return g.arrayOf(t, arr) }})
	}
	var out []Txn
	for _, s := range stmts {
		out = append(out, Txn{What: "create type", Stmts: []Stmt{s}})
	}
	return out
}

// safeDefault returns a constant default for a column of type t, or "".
// The date, time and interval literals are read under the session's
// DateStyle, TimeZone and IntervalStyle (what they mean depends on them).
func (g *Gen) safeDefault(t *Type) string {
	switch t.SQL {
	case "smallint", "integer", "bigint", "numeric", "numeric(12,2)", "text", "varchar(40)", "boolean", "bytea", "jsonb", "uuid":
		return t.Val(g)
	case "date":
		return "'02/03/2000'::date"
	case "timestamptz":
		return "'03/02/2001 04:05:06.789'::timestamptz"
	case "interval":
		return "'-1 2:03:04'::interval"
	}
	return ""
}

// volatileDefault returns a volatile or clock default, for CREATE TABLE
// only (inserts then carry the values the source computed).
func (g *Gen) volatileDefault(t *Type) string {
	switch t.SQL {
	case "timestamptz", "timestamptz(3)":
		return g.pick("now()", "clock_timestamp()", "statement_timestamp()")
	case "uuid":
		return "gen_random_uuid()"
	case "double precision":
		return "random()"
	case "text":
		return "md5(random()::text)"
	}
	return ""
}

// newColumn returns a random ordinary column (creating is set for CREATE
// TABLE, where volatile defaults are allowed).
func (g *Gen) newColumn(creating bool) *Column {
	t := g.types[g.r.IntN(len(g.types))]
	c := &Column{Name: g.name(), T: t}
	switch g.r.IntN(8) {
	case 0:
		if d := g.safeDefault(t); d != "" {
			c.Default = d
			c.NotNull = g.r.IntN(2) == 0
		}
	case 1:
		if creating {
			c.Default = g.volatileDefault(t)
		}
	case 2:
		c.NotNull = creating // ADD COLUMN … NOT NULL needs a default
	}
	return c
}

func (c *Column) def() string {
	var b strings.Builder
	b.WriteString(ident(c.Name) + " " + c.T.SQL)
	if c.Default != "" {
		b.WriteString(" DEFAULT " + c.Default)
	}
	if c.NotNull {
		b.WriteString(" NOT NULL")
	}
	return b.String()
}

func (g *Gen) keyColumns(k keyKind) []*Column {
	mk := func(typ string) *Column {
		return &Column{Name: g.name(), T: g.byName[typ], NotNull: true, Key: true}
	}
	switch k {
	case keyInt:
		return []*Column{mk("integer")}
	case keyBigint:
		return []*Column{mk("bigint")}
	case keyText:
		return []*Column{mk("text")}
	case keyUUID:
		return []*Column{mk("uuid")}
	case keyNumeric:
		return []*Column{mk("numeric")}
	case keyDate:
		return []*Column{mk("date")}
	case keyComposite:
		return []*Column{mk("integer"), mk("text")}
	case keyIdentity:
		c := mk("bigint")
		c.Identity = 'd'
		if g.r.IntN(2) == 0 {
			c.Identity = 'a'
		}
		return []*Column{c}
	case keySerial:
		return []*Column{mk("integer")}
	}
	return nil
}

// keyLits returns the SQL values of key number n for columns cs.
func keyLits(k keyKind, n int64) []string {
	switch k {
	case keyInt, keySerial:
		return []string{strconv.FormatInt(n, 10)}
	case keyBigint, keyIdentity:
		return []string{strconv.FormatInt(4_000_000_000_000+n, 10)}
	case keyText:
		return []string{lit(fmt.Sprintf("k%d é'\"\\ %d", n, n%7))}
	case keyUUID:
		return []string{cast(fmt.Sprintf("%08x-0000-4000-8000-%012x", n%0xffffffff, n), "uuid")}
	case keyNumeric:
		return []string{fmt.Sprintf("%d.50", n)}
	case keyDate:
		return []string{fmt.Sprintf("'1970-01-01'::date + %d", n)}
	case keyComposite:
		return []string{strconv.FormatInt(n%1000, 10), lit(fmt.Sprintf("part %d", n))}
	}
	return nil
}

// keySQL returns expressions of key number (base + g) for generate_series
// variable g.
func keySQL(k keyKind, base int64) []string {
	b := strconv.FormatInt(base, 10)
	switch k {
	case keyInt, keySerial:
		return []string{"(" + b + " + g)::integer"}
	case keyBigint, keyIdentity:
		return []string{"4000000000000 + " + b + " + g"}
	case keyText:
		return []string{"'bulk ' || (" + b + " + g)"}
	case keyUUID:
		return []string{"md5('bulk' || (" + b + " + g))::uuid"}
	case keyNumeric:
		return []string{"(" + b + " + g) + 0.25"}
	case keyDate:
		return []string{"'1970-01-01'::date + (" + b + " + g)::integer"}
	case keyComposite:
		return []string{"((" + b + " + g) % 1000)::integer", "'bulk ' || (" + b + " + g)"}
	}
	return nil
}

func (g *Gen) pickKeyKind(allowNone bool) keyKind {
	ks := []keyKind{keyInt, keyBigint, keyText, keyUUID, keyNumeric, keyDate, keyComposite, keyIdentity, keySerial}
	if allowNone {
		ks = append(ks, keyNone, keyNone)
	}
	return ks[g.r.IntN(len(ks))]
}

func colDefs(cs []*Column) []string {
	var out []string
	for _, c := range cs {
		d := c.def()
		switch c.Identity {
		case 'a':
			d = ident(c.Name) + " " + c.T.SQL + " GENERATED ALWAYS AS IDENTITY"
		case 'd':
			d = ident(c.Name) + " " + c.T.SQL + " GENERATED BY DEFAULT AS IDENTITY (START WITH 5 INCREMENT BY 3)"
		}
		out = append(out, d)
	}
	return out
}

// createPlain creates an ordinary table, before capture or (mid) as DDL
// mid-run. Volatile defaults are fine in CREATE TABLE at any time: they
// are not evaluated until an insert, whose values the stream carries.
func (g *Gen) createPlain(mid bool) Txn {
	t := &Table{Schema: g.schema(), Name: g.name(), Kind: Plain, key: g.pickKeyKind(true)}
	keys := g.keyColumns(t.key)
	if t.key == keySerial {
		keys[0].T = g.byName["integer"]
	}
	t.Cols = append(t.Cols, keys...)
	for range 2 + g.r.IntN(6) {
		t.Cols = append(t.Cols, g.newColumn(true))
	}
	var extra []string
	// A large value column, stored out of line.
	var stmts []Stmt
	if g.r.IntN(2) == 0 {
		bigs := []string{"text", "jsonb", "bytea", "json"}
		c := &Column{Name: g.name(), T: g.byName[bigs[g.r.IntN(len(bigs))]]}
		t.Cols = append(t.Cols, c)
		if g.r.IntN(2) == 0 {
			stmts = append(stmts, Stmt{SQL: fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET STORAGE EXTERNAL", t.Q(), ident(c.Name))})
		}
	}
	// A stored generated column.
	if g.r.IntN(2) == 0 {
		if src := t.col(func(c *Column) bool {
			return !c.Key && (c.T.SQL == "integer" || c.T.SQL == "bigint" || c.T.SQL == "smallint")
		}); len(src) > 0 {
			s := src[0]
			s.Fixed = true
			c := &Column{Name: g.name(), T: g.byName["numeric"], Gen: true}
			t.Cols = append(t.Cols, c)
			extra = append(extra, fmt.Sprintf("%s numeric GENERATED ALWAYS AS (coalesce(%s, 0)::numeric * 2 + 1) STORED", ident(c.Name), ident(s.Name)))
		} else if src := t.col(func(c *Column) bool { return c.T.SQL == "text" }); len(src) > 0 {
			s := src[0]
			s.Fixed = true
			c := &Column{Name: g.name(), T: g.byName["text"], Gen: true}
			t.Cols = append(t.Cols, c)
			extra = append(extra, fmt.Sprintf("%s text GENERATED ALWAYS AS (md5(coalesce(%s, ''))) STORED", ident(c.Name), ident(s.Name)))
		}
	}
	// A deferrable unique column.
	if t.key != keyNone && g.r.IntN(3) == 0 {
		c := &Column{Name: g.name(), T: g.byName["bigint"], Rank: true, Fixed: true}
		t.Cols = append(t.Cols, c)
		extra = append(extra, fmt.Sprintf("%s bigint UNIQUE DEFERRABLE INITIALLY %s", ident(c.Name), g.pick("IMMEDIATE", "DEFERRED")))
	}
	// A unique NOT NULL column used as the replica identity.
	var riIndex string
	if t.key != keyNone && g.r.IntN(4) == 0 {
		c := &Column{Name: g.name(), T: g.byName["bigint"], NotNull: true, UK: true, Fixed: true}
		t.Cols = append(t.Cols, c)
		riIndex = g.name()
	}
	var defs []string
	for _, c := range t.Cols {
		if c.Gen || c.Rank {
			continue
		}
		defs = append(defs, colDefs([]*Column{c})...)
	}
	defs = append(defs, extra...)
	if t.key != keyNone {
		var ks []string
		for _, k := range t.keyCols() {
			ks = append(ks, ident(k.Name))
		}
		defs = append(defs, "PRIMARY KEY ("+strings.Join(ks, ", ")+")")
	}
	if c := t.col(func(c *Column) bool { return c.T.SQL == "integer" && !c.Key }); len(c) > 0 && g.r.IntN(2) == 0 {
		c[0].Fixed = true
		defs = append(defs, fmt.Sprintf("CONSTRAINT %s CHECK (%s IS DISTINCT FROM 12345678)", ident(g.name()), ident(c[0].Name)))
	}
	// Columns appear in model order with generated ones where declared:
	// reorder the model to match the DDL (generated and extra last).
	ordered := t.col(func(c *Column) bool { return !c.Gen && !c.Rank })
	ordered = append(ordered, t.col(func(c *Column) bool { return c.Gen })...)
	ordered = append(ordered, t.col(func(c *Column) bool { return c.Rank })...)
	t.Cols = ordered
	create := fmt.Sprintf("CREATE TABLE %s (%s)", t.Q(), strings.Join(defs, ", "))
	if serial := t.key == keySerial; serial {
		create = strings.Replace(create, ident(keys[0].Name)+" integer NOT NULL", ident(keys[0].Name)+" serial", 1)
	}
	stmts = append([]Stmt{{SQL: create}}, stmts...)
	if t.key == keyNone {
		stmts = append(stmts, Stmt{SQL: "ALTER TABLE " + t.Q() + " REPLICA IDENTITY FULL"})
	}
	if riIndex != "" {
		uk := t.col(func(c *Column) bool { return c.UK })[0]
		stmts = append(stmts,
			Stmt{SQL: fmt.Sprintf("CREATE UNIQUE INDEX %s ON %s (%s)", ident(riIndex), t.Q(), ident(uk.Name))},
			Stmt{SQL: fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY USING INDEX %s", t.Q(), ident(riIndex))})
	}
	g.tables = append(g.tables, t)
	what := "create table"
	if mid {
		what = "DDL: create table"
	}
	tx := Txn{What: what, Stmts: stmts}
	return tx
}

// createPartitioned creates a partitioned table and its partitions.
func (g *Gen) createPartitioned() Txn {
	t := &Table{Schema: g.schema(), Name: g.name(), Kind: Partitioned, key: keyBigint}
	t.Method = g.pick("range", "list", "hash")
	id := &Column{Name: g.name(), T: g.byName["bigint"], NotNull: true, Key: true}
	pk := &Column{Name: g.name(), NotNull: true, Key: true, Fixed: true}
	if t.Method == "list" {
		pk.T = g.byName["text"]
	} else {
		pk.T = g.byName["integer"]
	}
	t.PartCol = pk
	t.Cols = []*Column{id, pk}
	for range 2 + g.r.IntN(4) {
		t.Cols = append(t.Cols, g.newColumn(true))
	}
	defs := colDefs(t.Cols)
	defs = append(defs, fmt.Sprintf("PRIMARY KEY (%s, %s)", ident(id.Name), ident(pk.Name)))
	stmts := []Stmt{{SQL: fmt.Sprintf("CREATE TABLE %s (%s) PARTITION BY %s (%s)", t.Q(), strings.Join(defs, ", "), strings.ToUpper(t.Method), ident(pk.Name))}}
	g.tables = append(g.tables, t)
	switch t.Method {
	case "range":
		for i := range 3 {
			stmts = append(stmts, g.addPartition(t, i*100, i*100+100))
		}
		stmts = append(stmts, g.addPartition(t, -1, -1))
	case "list":
		vals := [][]string{{lit("a"), lit("b")}, {lit("é x"), lit("NULL")}, {lit(`q"'\`)}}
		for _, v := range vals {
			p := g.partition(t)
			p.list = v
			stmts = append(stmts, Stmt{SQL: fmt.Sprintf("CREATE TABLE %s PARTITION OF %s FOR VALUES IN (%s)", p.Q(), t.Q(), strings.Join(v, ", "))})
		}
		stmts = append(stmts, g.addPartition(t, -1, -1))
	case "hash":
		n := 2 + g.r.IntN(3)
		for i := range n {
			p := g.partition(t)
			stmts = append(stmts, Stmt{SQL: fmt.Sprintf("CREATE TABLE %s PARTITION OF %s FOR VALUES WITH (MODULUS %d, REMAINDER %d)", p.Q(), t.Q(), n, i)})
		}
	}
	return Txn{What: "create partitioned table", Stmts: stmts}
}

func (g *Gen) partition(t *Table) *Table {
	p := &Table{Schema: g.schema(), Name: g.name(), Kind: Partition, key: t.key, Parent: t, Cols: slices.Clone(t.Cols)}
	t.Children = append(t.Children, p)
	g.tables = append(g.tables, p)
	return p
}

// addPartition adds a range partition [lo, hi), or the default partition
// when lo < 0.
func (g *Gen) addPartition(t *Table, lo, hi int) Stmt {
	p := g.partition(t)
	p.lo, p.hi = lo, hi
	if lo < 0 {
		p.lo, p.hi = -1, -1
		return Stmt{SQL: fmt.Sprintf("CREATE TABLE %s PARTITION OF %s DEFAULT", p.Q(), t.Q())}
	}
	return Stmt{SQL: fmt.Sprintf("CREATE TABLE %s PARTITION OF %s FOR VALUES FROM (%d) TO (%d)", p.Q(), t.Q(), lo, hi)}
}

// partValue returns a partition key value for t's partitioned root.
func (g *Gen) partValue(root *Table) string {
	switch root.Method {
	case "list":
		var vals []string
		for _, p := range root.Children {
			vals = append(vals, p.list...)
		}
		vals = append(vals, lit("other "+g.plainWord())) // the default partition
		return vals[g.r.IntN(len(vals))]
	case "range":
		var ps []*Table
		for _, p := range root.Children {
			if p.lo >= 0 {
				ps = append(ps, p)
			}
		}
		if len(ps) == 0 || g.r.IntN(5) == 0 {
			return strconv.Itoa(1_000_000 + g.r.IntN(1000)) // the default partition
		}
		p := ps[g.r.IntN(len(ps))]
		return strconv.Itoa(p.lo + g.r.IntN(p.hi-p.lo))
	}
	return strconv.Itoa(g.r.IntN(100000) - 50000)
}

// createInheritance creates a parent table and one or two children.
func (g *Gen) createInheritance() Txn {
	t := &Table{Schema: g.schema(), Name: g.name(), Kind: InhParent, key: keyBigint}
	t.Cols = g.keyColumns(keyBigint)
	for range 1 + g.r.IntN(3) {
		t.Cols = append(t.Cols, g.newColumn(true))
	}
	defs := colDefs(t.Cols)
	defs = append(defs, "PRIMARY KEY ("+ident(t.Cols[0].Name)+")")
	stmts := []Stmt{{SQL: fmt.Sprintf("CREATE TABLE %s (%s)", t.Q(), strings.Join(defs, ", "))}}
	g.tables = append(g.tables, t)
	for range 1 + g.r.IntN(2) {
		c := &Table{Schema: g.schema(), Name: g.name(), Kind: InhChild, Parent: t, Cols: slices.Clone(t.Cols), key: keyBigint}
		own := g.newColumn(true)
		c.Cols = append(c.Cols, own)
		t.Children = append(t.Children, c)
		g.tables = append(g.tables, c)
		stmts = append(stmts, Stmt{SQL: fmt.Sprintf("CREATE TABLE %s (%s) INHERITS (%s)", c.Q(), own.def(), t.Q())})
		if g.r.IntN(2) == 0 {
			stmts = append(stmts, Stmt{SQL: fmt.Sprintf("ALTER TABLE %s ADD PRIMARY KEY (%s)", c.Q(), ident(t.Cols[0].Name))})
		} else {
			c.key = keyNone // rows found by their whole value
			stmts = append(stmts, Stmt{SQL: "ALTER TABLE " + c.Q() + " REPLICA IDENTITY FULL"})
		}
	}
	return Txn{What: "create inheritance", Stmts: stmts}
}

// fkParent returns a plain table with a single-column key that a foreign
// key may reference, or nil.
func (g *Gen) fkParent() *Table {
	for _, t := range g.tables {
		if t.Kind == Plain && len(t.keyCols()) == 1 && t.key != keyDate {
			return t
		}
	}
	return nil
}

// createFKChild creates a table whose column references parent's key,
// deferred, cascading updates and setting NULL on delete.
func (g *Gen) createFKChild(parent *Table) Txn {
	pk := parent.keyCols()[0]
	pk.Fixed = true
	t := &Table{Schema: g.schema(), Name: g.name(), Kind: Plain, key: keyInt}
	t.Cols = g.keyColumns(keyInt)
	ref := &Column{Name: g.name(), T: pk.T, Ref: parent, Fixed: true}
	t.Cols = append(t.Cols, ref, g.newColumn(true))
	defs := colDefs([]*Column{t.Cols[0], t.Cols[2]})
	defs = append(defs, fmt.Sprintf("%s %s REFERENCES %s (%s) ON UPDATE CASCADE ON DELETE %s DEFERRABLE INITIALLY DEFERRED",
		ident(ref.Name), pk.T.SQL, parent.Q(), ident(pk.Name), g.pick("SET NULL", "CASCADE")))
	defs = append(defs, "PRIMARY KEY ("+ident(t.Cols[0].Name)+")")
	t.Cols = []*Column{t.Cols[0], t.Cols[2], ref}
	g.tables = append(g.tables, t)
	return Txn{What: "create table with foreign key", Stmts: []Stmt{{SQL: fmt.Sprintf("CREATE TABLE %s (%s)", t.Q(), strings.Join(defs, ", "))}}}
}
