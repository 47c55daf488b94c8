package randmy

import (
	"fmt"
	"strconv"
	"strings"
)

// Run runs n random steps: transactions (committed or rolled back, with
// savepoints), autocommit statements, TRUNCATE, now and then a large
// transaction, and, when ddl is set, DDL mid-run.
func (g *Gen) Run(n int, ddl bool) error {
	for i := 0; i < n; i++ {
		var err error
		switch k := g.rnd.IntN(40); {
		case k < 3 && ddl:
			err = g.DDL()
		case k < 4:
			err = g.truncate()
		case k < 5:
			err = g.largeTxn()
		case k < 10:
			err = g.op() // autocommit
		default:
			err = g.txn()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (g *Gen) table() *table {
	if len(g.tables) == 0 {
		return nil
	}
	return g.tables[g.rnd.IntN(len(g.tables))]
}

func (g *Gen) txn() error {
	if err := g.exec("BEGIN"); err != nil {
		return err
	}
	for i := 0; i < 1+g.rnd.IntN(5); i++ {
		if g.rnd.IntN(5) == 0 {
			sp := fmt.Sprintf("sp_%d", i)
			if err := g.exec("SAVEPOINT " + sp); err != nil {
				return err
			}
			for j := 0; j < 1+g.rnd.IntN(3); j++ {
				if err := g.op(); err != nil {
					return err
				}
			}
			end := "RELEASE SAVEPOINT "
			if g.rnd.IntN(2) == 0 {
				end = "ROLLBACK TO SAVEPOINT "
			}
			if err := g.exec(end + sp); err != nil {
				return err
			}
			continue
		}
		if err := g.op(); err != nil {
			return err
		}
	}
	if g.rnd.IntN(10) == 0 {
		return g.exec("ROLLBACK") // burns AUTO_INCREMENT ids
	}
	g.Commits++
	return g.exec("COMMIT")
}

// largeTxn inserts several hundred rows into one table in one transaction
// (their values small), and updates many.
func (g *Gen) largeTxn() error {
	t := g.table()
	if err := g.exec("BEGIN"); err != nil {
		return err
	}
	g.small = true
	defer func() { g.small = false }()
	// A statement the server refuses is rolled back alone (as in op):
	// after a conversion the model may offer a value the column no
	// longer holds (seed 123280749: a SET member 'ÿ').
	for i := 0; i < 4+g.rnd.IntN(8); i++ {
		if err := g.refused(g.insert(t, 50)); err != nil {
			return err
		}
	}
	for _, c := range t.changeable() {
		if t.tag == nil || !floatish(c) {
			if err := g.refused(g.exec(fmt.Sprintf("UPDATE %s SET %s = %s", quoteIdent(t.name), quoteIdent(c.name), g.newValue(t, c)))); err != nil {
				return err
			}
			break
		}
	}
	g.Commits++
	return g.exec("COMMIT")
}

func (g *Gen) truncate() error {
	t := g.table()
	if t == nil || g.referenced(t) {
		return nil
	}
	return g.exec("TRUNCATE TABLE " + quoteIdent(t.name))
}

// op runs one DML statement on a random table.
func (g *Gen) op() error {
	t := g.table()
	if t == nil {
		return nil
	}
	var err error
	switch k := g.rnd.IntN(20); {
	case k < 8:
		err = g.insert(t, 1+g.rnd.IntN(4))
	case k < 9 && t.tag != nil:
		err = g.duplicate(t)
	case k < 13:
		err = g.update(t, false)
	case k < 15 && len(t.pk) > 0:
		err = g.update(t, true)
	case k < 16:
		err = g.updateRange(t)
	case k < 18:
		err = g.delete(t)
	default:
		err = g.deleteRange(t)
	}
	return g.refused(err)
}

func (g *Gen) next() int { g.seq++; return g.seq }

// keyValue returns a new, unique value for key column c.
func (g *Gen) keyValue(t *table, c *column) string {
	if c.t.isInt() {
		v := g.next()
		if c.auto {
			return strconv.Itoa(-v) // below every id the counter hands out
		}
		if g.rnd.IntN(3) == 0 {
			return strconv.Itoa(-v)
		}
		return strconv.Itoa(v)
	}
	cs := t.colCharset(c)
	b := g.randString(cs, fmt.Sprintf("k%d-", g.next()), 4+g.rnd.IntN(20), c.t.n, false)
	return g.literal(cs, b)
}

// rowValues returns the columns and values of a new row.
func (g *Gen) rowValues(t *table, cols []*column) []string {
	var vals []string
	for _, c := range cols {
		vals = append(vals, g.newValue(t, c))
	}
	return vals
}

func (g *Gen) newValue(t *table, c *column) string {
	switch {
	case c.auto:
		return "NULL"
	case c == t.tag:
		return strconv.Itoa(g.next())
	case c == t.fk:
		if g.rnd.IntN(5) == 0 {
			return "NULL"
		}
		k, ok, err := g.someKey(t.parent)
		if err != nil || !ok {
			return "NULL"
		}
		return k[0]
	case len(t.pk) > 0 && isIn(c, t.pk):
		return g.keyValue(t, c)
	case c.null && g.rnd.IntN(5) == 0:
		return "NULL"
	case c.def != "" && g.rnd.IntN(6) == 0:
		return "DEFAULT"
	}
	return g.value(t, c)
}

func isIn(c *column, cs []*column) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}

// insert inserts n rows into t in one statement, naming a random subset
// of the columns (the rest take their defaults).
func (g *Gen) insert(t *table, n int) error {
	var cols []*column
	for _, c := range t.writable() {
		mustName := !c.null && c.def == "" && !c.auto
		if mustName || c == t.tag || isIn(c, t.pk) && !c.auto || g.rnd.IntN(5) > 0 {
			cols = append(cols, c)
		}
	}
	var names []string
	for _, c := range cols {
		names = append(names, quoteIdent(c.name))
	}
	var rows []string
	for i := 0; i < n; i++ {
		rows = append(rows, "("+strings.Join(g.rowValues(t, cols), ", ")+")")
	}
	return g.exec(fmt.Sprintf("INSERT INTO %s (%s) VALUES %s", quoteIdent(t.name), strings.Join(names, ", "), strings.Join(rows, ", ")))
}

// duplicate copies a row of a table without a primary key: an identical
// row.
func (g *Gen) duplicate(t *table) error {
	k, ok, err := g.someKey(t)
	if err != nil || !ok {
		return err
	}
	var names []string
	for _, c := range t.writable() {
		names = append(names, quoteIdent(c.name))
	}
	cols := strings.Join(names, ", ")
	return g.exec(fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s WHERE %s LIMIT 1", quoteIdent(t.name), cols, cols, quoteIdent(t.name), g.where(t, k)))
}

// keyExprs returns the SELECT expressions that identify a row of t: its
// primary key columns (strings as hex), or its tag.
func (t *table) keyCols() []*column {
	if len(t.pk) > 0 {
		return t.pk
	}
	return []*column{t.tag}
}

func keyExpr(c *column) string {
	if c.t.isInt() {
		return "CAST(" + quoteIdent(c.name) + " AS CHAR)"
	}
	return "CONCAT('X''', HEX(" + quoteIdent(c.name) + "), '''')"
}

func orderBy(t *table) string {
	var o []string
	for _, c := range t.keyCols() {
		o = append(o, quoteIdent(c.name))
	}
	return strings.Join(o, ", ")
}

// someKey returns the key of a random row of t (as SQL literals), read in
// key order so that a seed replays.
func (g *Gen) someKey(t *table) ([]string, bool, error) {
	rows, err := g.query("SELECT COUNT(*) FROM " + quoteIdent(t.name))
	if err != nil {
		return nil, false, err
	}
	n, _ := strconv.Atoi(rows[0][0])
	if n == 0 {
		return nil, false, nil
	}
	var exprs []string
	for _, c := range t.keyCols() {
		exprs = append(exprs, keyExpr(c))
	}
	rows, err = g.query(fmt.Sprintf("SELECT %s FROM %s ORDER BY %s LIMIT 1 OFFSET %d", strings.Join(exprs, ", "), quoteIdent(t.name), orderBy(t), g.rnd.IntN(n)))
	if err != nil || len(rows) == 0 {
		return nil, false, err
	}
	return rows[0], true, nil
}

func (g *Gen) where(t *table, key []string) string {
	var w []string
	for i, c := range t.keyCols() {
		w = append(w, quoteIdent(c.name)+" = "+key[i])
	}
	return strings.Join(w, " AND ")
}

// changeable returns the columns an UPDATE may set (not keys, the tag,
// generated or AUTO_INCREMENT columns).
func (t *table) changeable() []*column {
	var out []*column
	for _, c := range t.writable() {
		if !c.auto && c != t.tag && !isIn(c, t.pk) {
			out = append(out, c)
		}
	}
	return out
}

func floatish(c *column) bool {
	return c.t.base == "float" || c.t.base == "double" || c.t.base == "json"
}

// update changes one row: its key (to a new unique value; foreign keys
// cascade), or one to three other columns. In a table without a primary
// key an update that sets a FLOAT, DOUBLE or JSON column also gives the
// row a new tag (see skips).
func (g *Gen) update(t *table, key bool) error {
	k, ok, err := g.someKey(t)
	if err != nil || !ok {
		return err
	}
	var sets []string
	if key {
		c := t.pk[g.rnd.IntN(len(t.pk))]
		if c.auto && c.t.unsigned {
			return nil // no value is sure to stay clear of the counter
		}
		sets = append(sets, quoteIdent(c.name)+" = "+g.keyValue(t, c))
	} else {
		cols := t.changeable()
		if len(cols) == 0 {
			return nil
		}
		newTag := false
		for i := 0; i < 1+g.rnd.IntN(3); i++ {
			c := cols[g.rnd.IntN(len(cols))]
			sets = append(sets, quoteIdent(c.name)+" = "+g.newValue(t, c))
			newTag = newTag || floatish(c)
		}
		if t.tag != nil && newTag {
			sets = append(sets, "`tag` = "+strconv.Itoa(g.next()))
		}
	}
	q := fmt.Sprintf("UPDATE %s SET %s WHERE %s", quoteIdent(t.name), strings.Join(sets, ", "), g.where(t, k))
	if t.tag != nil {
		q += " LIMIT 1"
	}
	return g.exec(q)
}

// updateRange sets one column of the first rows in key order.
func (g *Gen) updateRange(t *table) error {
	var cols []*column
	for _, c := range t.changeable() {
		if t.tag == nil || !floatish(c) {
			cols = append(cols, c)
		}
	}
	if len(cols) == 0 {
		return nil
	}
	c := cols[g.rnd.IntN(len(cols))]
	return g.exec(fmt.Sprintf("UPDATE %s SET %s = %s ORDER BY %s LIMIT %d", quoteIdent(t.name), quoteIdent(c.name), g.newValue(t, c), orderBy(t), 1+g.rnd.IntN(20)))
}

func (g *Gen) delete(t *table) error {
	k, ok, err := g.someKey(t)
	if err != nil || !ok {
		return err
	}
	q := fmt.Sprintf("DELETE FROM %s WHERE %s", quoteIdent(t.name), g.where(t, k))
	if t.tag != nil {
		q += " LIMIT 1"
	}
	return g.exec(q)
}

func (g *Gen) deleteRange(t *table) error {
	dir := ""
	if g.rnd.IntN(2) == 0 {
		dir = " DESC"
	}
	o := strings.ReplaceAll(orderBy(t), ", ", dir+", ") + dir
	return g.exec(fmt.Sprintf("DELETE FROM %s ORDER BY %s LIMIT %d", quoteIdent(t.name), o, 1+g.rnd.IntN(6)))
}
