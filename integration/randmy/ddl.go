package randmy

import "fmt"

// DDL runs one random schema change: add, drop, modify or rename a column,
// change a table's character set, rename, create or drop a table, move an
// AUTO_INCREMENT counter, add an index; some under another session's
// character set or explicit_defaults_for_timestamp.
func (g *Gen) DDL() error {
	t := g.table()
	if t == nil {
		return g.createTable()
	}
	switch k := g.rnd.IntN(24); {
	case k < 5:
		return g.addColumn(t)
	case k < 8:
		return g.dropColumn(t)
	case k < 11:
		return g.refused(g.modifyColumn(t))
	case k < 13:
		return g.refused(g.convertTable(t))
	case k < 14:
		return g.renameColumn(t)
	case k < 16:
		return g.renameTable(t)
	case k < 18:
		if err := g.createTable(); err != nil {
			return err
		}
		return g.insert(g.tables[len(g.tables)-1], 1+g.rnd.IntN(5))
	case k < 19:
		return g.dropTable(t)
	case k < 20:
		if t.auto == nil {
			return nil
		}
		return g.exec(fmt.Sprintf("ALTER TABLE %s AUTO_INCREMENT = %d", quoteIdent(t.name), 2000000+g.next()))
	case k < 21:
		for _, c := range t.cols {
			if c.t.isInt() && c.gen == "" && c != t.fk { // see skips
				return g.exec(fmt.Sprintf("ALTER TABLE %s ADD INDEX (%s)", quoteIdent(t.name), quoteIdent(c.name)))
			}
		}
		return nil
	case k < 22:
		return g.latin1Client(t)
	default:
		return g.legacyTimestamp(t)
	}
}

func (g *Gen) colTaken(t *table) func(string) bool {
	return func(n string) bool { return t.col(n) != nil || n == "tag" }
}

func (g *Gen) addColumn(t *table) error {
	c := &column{name: g.newName(columnNames, g.colTaken(t)), t: g.randomType(), null: g.rnd.IntN(2) == 0}
	if !c.null || g.rnd.IntN(3) == 0 {
		c.def = g.defaultFor(t, c)
	}
	if c.t.base == "timestamp" && g.rnd.IntN(2) == 0 {
		// Existing rows get the ALTER's clock.
		c.def = fmt.Sprintf("CURRENT_TIMESTAMP(%d)", c.t.n)
	}
	pos := ""
	switch g.rnd.IntN(3) {
	case 0:
		pos = " FIRST"
	case 1:
		pos = " AFTER " + quoteIdent(t.cols[g.rnd.IntN(len(t.cols))].name)
	}
	if err := g.exec("ALTER TABLE " + quoteIdent(t.name) + " ADD COLUMN " + c.sql(g) + pos); err != nil {
		return err
	}
	t.cols = append(t.cols, c) // the model's order does not matter
	return nil
}

func (g *Gen) loose(t *table) []*column {
	var out []*column
	for _, c := range t.cols {
		if !c.pinned && c.gen == "" && !c.auto {
			out = append(out, c)
		}
	}
	return out
}

func (g *Gen) dropColumn(t *table) error {
	cs := g.loose(t)
	if len(cs) == 0 || len(t.cols) < 3 {
		return nil
	}
	c := cs[g.rnd.IntN(len(cs))]
	if err := g.exec("ALTER TABLE " + quoteIdent(t.name) + " DROP COLUMN " + quoteIdent(c.name)); err != nil {
		return err
	}
	for i, x := range t.cols {
		if x == c {
			t.cols = append(t.cols[:i], t.cols[i+1:]...)
			break
		}
	}
	return nil
}

func (g *Gen) renameColumn(t *table) error {
	cs := g.loose(t)
	if len(cs) == 0 {
		return nil
	}
	c := cs[g.rnd.IntN(len(cs))]
	n := g.newName(columnNames, g.colTaken(t))
	if err := g.exec("ALTER TABLE " + quoteIdent(t.name) + " RENAME COLUMN " + quoteIdent(c.name) + " TO " + quoteIdent(n)); err != nil {
		return err
	}
	c.name = n
	return nil
}

// modifyColumn widens a column's type, keeping every value: an integer to
// BIGINT, a DECIMAL's integer digits, a VARCHAR's length, TEXT to
// MEDIUMTEXT; a string column may move to utf8mb4.
func (g *Gen) modifyColumn(t *table) error {
	var cs []*column
	for _, c := range g.loose(t) {
		switch {
		case c.t.isInt() && c.t.base != "bigint",
			c.t.base == "decimal" && c.t.n < 65,
			c.t.base == "varchar" || c.t.base == "text" || c.t.base == "char":
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return nil
	}
	c := cs[g.rnd.IntN(len(cs))]
	nt := c.t
	switch {
	case nt.isInt():
		nt.base, nt.n = "bigint", 8
	case nt.base == "decimal":
		nt.n = min(65, nt.n+1+g.rnd.IntN(5))
	case nt.base == "char":
		nt.base, nt.n = "varchar", nt.n+g.rnd.IntN(50)
	case nt.base == "varchar":
		nt.n += 1 + g.rnd.IntN(100)
	default:
		nt.base = "mediumtext"
	}
	if nt.isString() && t.colCharset(c).name != "binary" && g.rnd.IntN(2) == 0 {
		u := charsetByName("utf8mb4")
		nt.cs, nt.coll = u.name, u.collations[g.rnd.IntN(len(u.collations))]
	}
	nc := *c
	nc.t = nt
	if err := g.exec("ALTER TABLE " + quoteIdent(t.name) + " MODIFY COLUMN " + nc.sql(g)); err != nil {
		return err
	}
	c.t = nt
	return nil
}

// convertTable converts a table's text columns to utf8mb4 (which holds
// every value), or changes only its default character set (then the
// model pins each inherited column's old one).
func (g *Gen) convertTable(t *table) error {
	u := charsetByName("utf8mb4")
	coll := u.collations[g.rnd.IntN(len(u.collations))]
	if g.rnd.IntN(2) == 0 {
		if err := g.exec(fmt.Sprintf("ALTER TABLE %s CONVERT TO CHARACTER SET utf8mb4 COLLATE %s", quoteIdent(t.name), coll)); err != nil {
			return err
		}
		for _, c := range t.cols {
			if c.t.isString() && t.colCharset(c).name != "binary" {
				c.t.cs, c.t.coll = "", ""
			}
		}
		t.charset = "utf8mb4"
		return nil
	}
	ncs := charsets[g.rnd.IntN(3)]
	if err := g.exec(fmt.Sprintf("ALTER TABLE %s DEFAULT CHARACTER SET %s", quoteIdent(t.name), ncs.name)); err != nil {
		return err
	}
	for _, c := range t.cols {
		if c.t.isString() && c.t.cs == "" {
			c.t.cs = t.charset
		}
	}
	t.charset = ncs.name
	return nil
}

func (g *Gen) renameTable(t *table) error {
	n := g.newName(tableNames, g.tableTaken)
	q := "RENAME TABLE " + quoteIdent(t.name) + " TO " + quoteIdent(n)
	if g.rnd.IntN(2) == 0 {
		q = "ALTER TABLE " + quoteIdent(t.name) + " RENAME TO " + quoteIdent(n)
	}
	if err := g.exec(q); err != nil {
		return err
	}
	t.name = n
	return nil
}

func (g *Gen) dropTable(t *table) error {
	if g.referenced(t) || len(g.tables) < 3 {
		return nil
	}
	if err := g.exec("DROP TABLE " + quoteIdent(t.name)); err != nil {
		return err
	}
	for i, x := range g.tables {
		if x == t {
			g.tables = append(g.tables[:i], g.tables[i+1:]...)
			break
		}
	}
	return nil
}

// latin1Client adds a column whose DEFAULT literal a latin1 client sent:
// the byte E9 means é. The statement is sent in latin1, so it picks a
// table whose name latin1 can spell.
func (g *Gen) latin1Client(t *table) error {
	latin1 := charsetByName("latin1")
	if !representable(t.name, latin1) {
		return nil
	}
	c := &column{name: fmt.Sprintf("note_%d", g.next()), t: ctype{base: "varchar", n: 20, cs: "utf8mb4"}, null: true}
	var alter []byte
	for _, r := range "ALTER TABLE " + quoteIdent(t.name) + " ADD COLUMN " + quoteIdent(c.name) + " VARCHAR(20) CHARACTER SET utf8mb4 DEFAULT 'café'" {
		alter = append(alter, byte(r))
	}
	for _, q := range []string{
		"SET @cs = @@character_set_client, @coll = @@collation_connection, @res = @@character_set_results",
		"SET NAMES latin1",
		string(alter),
		"SET character_set_client = @cs, collation_connection = @coll, character_set_results = @res",
	} {
		if err := g.exec(q); err != nil {
			return err
		}
	}
	c.def = "'café'"
	t.cols = append(t.cols, c)
	return nil
}

// legacyTimestamp adds a bare TIMESTAMP column under
// explicit_defaults_for_timestamp = 0: NOT NULL DEFAULT CURRENT_TIMESTAMP
// ON UPDATE CURRENT_TIMESTAMP, existing rows get the ALTER's clock.
func (g *Gen) legacyTimestamp(t *table) error {
	for _, x := range t.cols {
		if x.t.base == "timestamp" {
			return nil // the new column would not be the first TIMESTAMP: DEFAULT 0
		}
	}
	c := &column{name: g.newName(columnNames, g.colTaken(t)), t: ctype{base: "timestamp"}, def: "CURRENT_TIMESTAMP"}
	for _, q := range []string{
		"SET explicit_defaults_for_timestamp = 0",
		"ALTER TABLE " + quoteIdent(t.name) + " ADD COLUMN " + quoteIdent(c.name) + " TIMESTAMP",
		"SET explicit_defaults_for_timestamp = DEFAULT",
	} {
		if err := g.exec(q); err != nil {
			return err
		}
	}
	t.cols = append(t.cols, c)
	return nil
}
