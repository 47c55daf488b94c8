package randmy

import (
	"fmt"
	"strings"
)

// charset is a character set a column, table or database may use.
type charset struct {
	name       string
	collations []string
	maxRune    rune // the largest code point it holds (0: bytes)
}

var charsets = []charset{
	{"latin1", []string{"latin1_swedish_ci", "latin1_bin", "latin1_general_cs", "latin1_german2_ci"}, 0xff},
	{"utf8mb3", []string{"utf8mb3_general_ci", "utf8mb3_bin", "utf8mb3_unicode_ci"}, 0xffff},
	{"utf8mb4", []string{"utf8mb4_general_ci", "utf8mb4_bin", "utf8mb4_unicode_520_ci", "utf8mb4_unicode_ci", "utf8mb4_uca1400_ai_ci"}, 0x10ffff},
	{"binary", []string{"binary"}, 0},
}

func charsetByName(name string) charset {
	for _, c := range charsets {
		if c.name == name {
			return c
		}
	}
	return charsets[2]
}

// ctype is a column type.
type ctype struct {
	base     string // lower-case type name: int, decimal, varchar, …
	unsigned bool
	n, m     int    // int: bytes; decimal: precision, scale; bit: bits; char types: length; temporal: fsp
	cs, coll string // string types: explicit character set and collation ("" inherits)
	members  []string
}

var intTypes = []struct {
	name  string
	bytes int
}{{"tinyint", 1}, {"smallint", 2}, {"mediumint", 3}, {"int", 4}, {"bigint", 8}}

func (t *ctype) isString() bool {
	switch t.base {
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set":
		return true
	}
	return false
}

func (t *ctype) isInt() bool {
	for _, it := range intTypes {
		if it.name == t.base {
			return true
		}
	}
	return false
}

// sql renders the type as a column definition's type, for g's session.
func (t *ctype) sql(g *Gen) string {
	var s string
	switch t.base {
	case "tinyint", "smallint", "mediumint", "int", "bigint":
		s = strings.ToUpper(t.base)
		if t.unsigned {
			s += " UNSIGNED"
		}
	case "decimal":
		s = fmt.Sprintf("DECIMAL(%d,%d)", t.n, t.m)
		if t.unsigned {
			s += " UNSIGNED"
		}
	case "float", "double", "date", "year", "json", "uuid", "inet6", "inet4",
		"tinytext", "text", "mediumtext", "longtext", "tinyblob", "blob", "mediumblob", "longblob":
		s = strings.ToUpper(t.base)
	case "bit":
		s = fmt.Sprintf("BIT(%d)", t.n)
	case "time", "datetime", "timestamp":
		s = fmt.Sprintf("%s(%d)", strings.ToUpper(t.base), t.n)
	case "char", "varchar", "binary", "varbinary":
		s = fmt.Sprintf("%s(%d)", strings.ToUpper(t.base), t.n)
	case "enum", "set":
		var q []string
		for _, m := range t.members {
			q = append(q, g.quoteString(m))
		}
		s = strings.ToUpper(t.base) + "(" + strings.Join(q, ",") + ")"
	default:
		panic("randmy: unknown type " + t.base)
	}
	if t.cs != "" {
		s += " CHARACTER SET " + t.cs
	}
	if t.coll != "" {
		s += " COLLATE " + t.coll
	}
	return s
}

// column is one column of a table in the model.
type column struct {
	name   string
	t      ctype
	null   bool
	def    string // the DEFAULT clause's expression, "" for none
	gen    string // a generated column's expression
	stored bool
	auto   bool // AUTO_INCREMENT
	pinned bool // a key, the tag, a foreign key, or used by a generated column: never dropped or changed
}

func (c *column) sql(g *Gen) string {
	s := quoteIdent(c.name) + " " + c.t.sql(g)
	if c.gen != "" {
		kind := "VIRTUAL"
		if c.stored {
			kind = "STORED"
		}
		return s + " AS (" + c.gen + ") " + kind
	}
	if !c.null {
		s += " NOT NULL"
	} else if c.t.base == "timestamp" {
		s += " NULL"
	}
	if c.auto {
		s += " AUTO_INCREMENT"
	}
	if c.def != "" {
		s += " DEFAULT " + c.def
	}
	return s
}

// table is one table in the model.
type table struct {
	name    string
	cols    []*column
	pk      []*column // empty: no primary key; then tag is set
	tag     *column
	charset string // the table's default character set
	parent  *table // the table its foreign key references (by parent.pk[0])
	fk      *column
	auto    *column
}

// col returns the column named name (compared as MariaDB compares column
// names: case-insensitively).
func (t *table) col(name string) *column {
	for _, c := range t.cols {
		if strings.EqualFold(c.name, name) {
			return c
		}
	}
	return nil
}

// writable returns the columns an INSERT may name.
func (t *table) writable() []*column {
	var out []*column
	for _, c := range t.cols {
		if c.gen == "" {
			out = append(out, c)
		}
	}
	return out
}

func (g *Gen) referenced(t *table) bool {
	for _, o := range g.tables {
		if o.parent == t {
			return true
		}
	}
	return false
}

// names that need quoting: mixed case, reserved words, spaces, Unicode,
// a backtick.
var tableNames = []string{"Patients", "order", "select", "fill log", "Überweisung", "处方", "rx`log", "Key", "group by", "données", "ta-ble", "T_mixed"}
var columnNames = []string{"id", "Name", "desc", "from", "col umn", "naïve", "值", "we`ird", "Index", "x1", "TS", "amount €", "key", "limit", "ÅÄÖ", "a.b"}

func (g *Gen) newName(pool []string, taken func(string) bool) string {
	for {
		g.seq++
		n := pool[g.rnd.IntN(len(pool))]
		if g.rnd.IntN(3) > 0 {
			n = fmt.Sprintf("%s_%d", n, g.seq)
		}
		// Names compare case-insensitively for columns (and we keep it so
		// for tables).
		if !taken(strings.ToLower(n)) {
			return n
		}
	}
}

func (g *Gen) tableTaken(n string) bool {
	for _, t := range g.tables {
		if strings.ToLower(t.name) == n {
			return true
		}
	}
	return false
}

// randomType draws a column type for a table whose default charset is cs.
func (g *Gen) randomType() ctype {
	r := g.rnd
	switch k := r.IntN(30); {
	case k < 5:
		it := intTypes[r.IntN(len(intTypes))]
		return ctype{base: it.name, n: it.bytes, unsigned: r.IntN(2) == 0}
	case k < 7:
		if r.IntN(3) == 0 {
			return ctype{base: "decimal", n: 65, m: 30}
		}
		p := 1 + r.IntN(65)
		return ctype{base: "decimal", n: p, m: r.IntN(min(p, 30) + 1), unsigned: r.IntN(5) == 0}
	case k < 8:
		return ctype{base: "float"}
	case k < 9:
		return ctype{base: "double"}
	case k < 10:
		return ctype{base: "bit", n: 1 + r.IntN(64)}
	case k < 11:
		return ctype{base: "date"}
	case k < 12:
		return ctype{base: "time", n: r.IntN(7)}
	case k < 13:
		return ctype{base: "datetime", n: r.IntN(7)}
	case k < 14:
		return ctype{base: "timestamp", n: r.IntN(7)}
	case k < 15:
		return ctype{base: "year"}
	case k < 20:
		t := ctype{base: []string{"char", "varchar", "varchar", "tinytext", "text", "mediumtext", "longtext"}[r.IntN(7)]}
		switch t.base {
		case "char":
			t.n = 1 + r.IntN(30)
		case "varchar":
			t.n = 1 + r.IntN(300)
		}
		g.maybeCharset(&t)
		return t
	case k < 23:
		t := ctype{base: []string{"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}[r.IntN(6)]}
		switch t.base {
		case "binary":
			t.n = 1 + r.IntN(40)
		case "varbinary":
			t.n = 1 + r.IntN(500)
		}
		return t
	case k < 25:
		t := ctype{base: []string{"enum", "set"}[r.IntN(2)]}
		pool := []string{"a", "B", "it's", `back\slash`, "with space ", "é", "ß", "x y", "", "Ω", "🙂", "ab", "AB "}
		if t.base == "set" {
			pool = []string{"a", "b", "it's", `back\slash`, "é", "x y", "ÿ", "z", "Ω", "🙂"}
		}
		seen := map[string]bool{}
		for i := 0; i < 2+r.IntN(6); i++ {
			m := pool[r.IntN(len(pool))]
			if seen[strings.ToLower(strings.TrimRight(m, " "))] {
				continue
			}
			seen[strings.ToLower(strings.TrimRight(m, " "))] = true
			t.members = append(t.members, m)
		}
		g.maybeCharset(&t)
		// Members must be representable in the column's character set.
		cs := charsetByName(g.effectiveCharsetHint(&t))
		var ok []string
		for _, m := range t.members {
			if representable(m, cs) {
				ok = append(ok, m)
			}
		}
		if len(ok) == 0 {
			ok = []string{"a"}
		}
		t.members = ok
		return t
	case k < 27:
		return ctype{base: "json"}
	case k < 28:
		return ctype{base: "uuid"}
	case k < 29:
		return ctype{base: "inet6"}
	default:
		return ctype{base: "inet4"}
	}
}

// effectiveCharsetHint is used while a type is drawn, before it has a
// table: the explicit charset, or the most restrictive one it may inherit.
func (g *Gen) effectiveCharsetHint(t *ctype) string {
	if t.cs != "" {
		return t.cs
	}
	return "latin1"
}

func (g *Gen) maybeCharset(t *ctype) {
	if g.rnd.IntN(2) == 0 {
		return
	}
	cs := charsets[g.rnd.IntN(len(charsets))]
	if cs.name == "binary" && (t.base == "enum" || t.base == "set") {
		cs = charsets[2]
	}
	t.cs = cs.name
	if g.rnd.IntN(2) == 0 && cs.name != "binary" {
		t.coll = cs.collations[g.rnd.IntN(len(cs.collations))]
	}
}

// colCharset returns the charset a string column of t stores in.
func (t *table) colCharset(c *column) charset {
	switch c.t.base {
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		return charsetByName("binary")
	}
	if c.t.cs != "" {
		return charsetByName(c.t.cs)
	}
	return charsetByName(t.charset)
}

func representable(s string, cs charset) bool {
	if cs.maxRune == 0 {
		return true
	}
	for _, r := range s {
		if r > cs.maxRune {
			return false
		}
	}
	return true
}

// createTable creates a random table and adds it to the model.
func (g *Gen) createTable() error {
	r := g.rnd
	t := &table{name: g.newName(tableNames, g.tableTaken), charset: g.dbCharset}
	var opts []string
	if r.IntN(2) == 0 {
		cs := charsets[r.IntN(3)]
		t.charset = cs.name
		opt := "DEFAULT CHARSET=" + cs.name
		if r.IntN(2) == 0 {
			opt += " COLLATE=" + cs.collations[r.IntN(len(cs.collations))]
		}
		opts = append(opts, opt)
	}
	colTaken := g.colTaken(t)
	addCol := func(c *column) { t.cols = append(t.cols, c) }
	// The key.
	var parentCandidates []*table
	for _, o := range g.tables {
		if len(o.pk) == 1 && o.pk[0].t.isInt() {
			parentCandidates = append(parentCandidates, o)
		}
	}
	switch k := r.IntN(10); {
	case k < 4:
		it := []ctype{{base: "int", n: 4}, {base: "bigint", n: 8, unsigned: true}, {base: "mediumint", n: 3, unsigned: true}, {base: "bigint", n: 8}}[r.IntN(4)]
		c := &column{name: g.newName(columnNames, colTaken), t: it, auto: true, pinned: true}
		addCol(c)
		t.pk, t.auto = []*column{c}, c
		if r.IntN(3) == 0 {
			opts = append(opts, fmt.Sprintf("AUTO_INCREMENT=%d", 1+r.IntN(100000)))
		}
	case k < 6:
		c := &column{name: g.newName(columnNames, colTaken), t: ctype{base: "bigint", n: 8}, pinned: true}
		addCol(c)
		t.pk = []*column{c}
	case k < 7:
		ct := ctype{base: "varchar", n: 64}
		g.maybeCharset(&ct)
		if ct.cs == "binary" {
			ct.cs = ""
		}
		c := &column{name: g.newName(columnNames, colTaken), t: ct, pinned: true}
		addCol(c)
		t.pk = []*column{c}
	case k < 8:
		a := &column{name: g.newName(columnNames, colTaken), t: ctype{base: "int", n: 4}, pinned: true}
		addCol(a)
		bt := ctype{base: "varchar", n: 30}
		g.maybeCharset(&bt)
		b := &column{name: g.newName(columnNames, colTaken), t: bt, pinned: true}
		addCol(b)
		t.pk = []*column{a, b}
	default:
		t.tag = &column{name: "tag", t: ctype{base: "bigint", n: 8}, pinned: true}
		addCol(t.tag)
	}
	if len(parentCandidates) > 0 && r.IntN(2) == 0 {
		p := parentCandidates[r.IntN(len(parentCandidates))]
		pt := p.pk[0].t
		c := &column{name: g.newName(columnNames, colTaken), t: ctype{base: pt.base, n: pt.n, unsigned: pt.unsigned}, null: true, pinned: true}
		addCol(c)
		t.parent, t.fk = p, c
	}
	for i := 0; i < 2+r.IntN(9); i++ {
		c := &column{name: g.newName(columnNames, colTaken), t: g.randomType(), null: r.IntN(3) > 0}
		if r.IntN(4) == 0 {
			c.def = g.defaultFor(t, c)
		}
		if c.t.base == "timestamp" && r.IntN(2) == 0 {
			c.def = fmt.Sprintf("CURRENT_TIMESTAMP(%d) ON UPDATE CURRENT_TIMESTAMP(%d)", c.t.n, c.t.n)
		}
		if !c.null && c.def == "" && r.IntN(2) == 0 {
			c.def = g.defaultFor(t, c)
		}
		addCol(c)
	}
	if r.IntN(2) == 0 {
		g.addGenerated(t, colTaken)
	}
	var defs []string
	for _, c := range t.cols {
		defs = append(defs, c.sql(g))
	}
	if len(t.pk) > 0 {
		var ks []string
		for _, c := range t.pk {
			ks = append(ks, quoteIdent(c.name))
		}
		defs = append(defs, "PRIMARY KEY ("+strings.Join(ks, ", ")+")")
	}
	if t.fk != nil {
		action := "ON DELETE CASCADE ON UPDATE CASCADE"
		if r.IntN(3) == 0 {
			action = "ON DELETE SET NULL ON UPDATE CASCADE"
		}
		defs = append(defs, fmt.Sprintf("FOREIGN KEY (%s) REFERENCES %s (%s) %s", quoteIdent(t.fk.name), quoteIdent(t.parent.name), quoteIdent(t.parent.pk[0].name), action))
	}
	for _, c := range t.cols {
		if c.t.isInt() && c.gen == "" && !c.pinned && r.IntN(4) == 0 {
			defs = append(defs, "KEY ("+quoteIdent(c.name)+")")
		}
	}
	if r.IntN(3) > 0 {
		opts = append([]string{"ENGINE=InnoDB"}, opts...)
	}
	q := "CREATE TABLE " + quoteIdent(t.name) + " (\n  " + strings.Join(defs, ",\n  ") + "\n) " + strings.Join(opts, " ")
	if err := g.exec(q); err != nil {
		return err
	}
	g.tables = append(g.tables, t)
	return nil
}

// addGenerated adds a virtual or stored generated column computed from an
// existing column, which becomes pinned.
func (g *Gen) addGenerated(t *table, taken func(string) bool) *column {
	var src []*column
	for _, c := range t.cols {
		if c.gen == "" && c != t.fk && !c.auto && (c.t.isInt() || c.t.base == "varchar" || c.t.base == "decimal") {
			src = append(src, c)
		}
	}
	if len(src) == 0 {
		return nil
	}
	s := src[g.rnd.IntN(len(src))]
	c := &column{name: g.newName(columnNames, taken), null: true, stored: g.rnd.IntN(2) == 0}
	switch {
	case s.t.isInt():
		c.t, c.gen = ctype{base: "bigint", n: 8}, quoteIdent(s.name)+" MOD 1000"
	case s.t.base == "decimal":
		c.t, c.gen = ctype{base: "varchar", n: 80, cs: "utf8mb4"}, "CONCAT('~', "+quoteIdent(s.name)+")"
	default:
		c.t, c.gen = ctype{base: "int", n: 4}, "CHAR_LENGTH("+quoteIdent(s.name)+")"
	}
	s.pinned = true
	t.cols = append(t.cols, c)
	return c
}

// defaultFor returns a DEFAULT expression for c, or "" when the type has
// no literal default the generator uses.
func (g *Gen) defaultFor(t *table, c *column) string {
	switch c.t.base {
	case "json":
		return "'{\"k\": [1, \"it''s\"]}'"
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		n := 5 // bytes 00 FF 27 ' 00 5C \
		if c.t.n > 0 {
			n = min(n, c.t.n)
		}
		return "X'" + "00FF27005C"[:2*n] + "'"
	case "enum":
		return g.quoteString(c.t.members[g.rnd.IntN(len(c.t.members))])
	case "tinytext", "text", "mediumtext", "longtext", "char", "varchar":
		cs := t.colCharset(c)
		s := "d'q\\u "
		if cs.maxRune >= 0xe9 {
			s += "é"
		}
		if c.t.base == "char" || c.t.base == "varchar" {
			s = truncRunes(s, c.t.n)
		}
		return g.quoteString(s)
	}
	return g.value(t, c)
}

func truncRunes(s string, n int) string {
	rs := []rune(s)
	if len(rs) > n {
		rs = rs[:n]
	}
	return string(rs)
}
