// Package randmy generates, from a seed, a random MariaDB 10.11 schema and a
// random workload over it, for the randomized exactness battery
// (TestRandomizedMariaDB), and computes the battery's oracle: fingerprints
// of a database computed by SQL on the server (see Fingerprint).
//
// Everything the generator does is drawn from one PCG stream seeded by the
// seed, and every choice that depends on the data (which row to update)
// reads the server in a fixed order, so a seed replays the same statements
// on a fresh database. The generator is not tuned by hand: it draws tables
// from the whole type list (every numeric, temporal, string, binary, JSON,
// BIT, ENUM, SET, UUID, INET6 and INET4 type, with per-table and
// per-column character sets and collations), names that need quoting,
// defaults, generated columns, AUTO_INCREMENT, tables without a primary
// key, foreign keys that cascade; and a workload of inserts, updates of
// keys and non-keys, deletes, TRUNCATE, multi-statement transactions,
// rollbacks, savepoints, large transactions and DDL mid-run. It may leave
// out only what the README lists as a limit: see skips.
package randmy

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
)

// skip is one thing the generator leaves out, with the README limit that
// allows it.
type skip struct {
	what   string // what the generator never produces
	limit  string // the README's "Known limits" entry, quoted
	reason string // why the limit means the battery must not produce it
}

// skips is every restriction the generator places on itself because
// rxvault cannot restore it exactly. Nothing else may be left out.
var skips = []skip{
	{
		what: "two rows of a table without a primary key that differ only in FLOAT, DOUBLE or JSON columns " +
			"(every such table has a BIGINT tag column; an update that changes a FLOAT, DOUBLE or JSON column gives the row a new tag, " +
			"and no column of such a table is changed to FLOAT, DOUBLE or JSON)",
		limit:  "a table without a primary key is replayed by matching every column but FLOAT, DOUBLE and JSON, with LIMIT 1: exact unless two rows differ only in those columns.",
		reason: "an update or delete of one of them may be replayed on the other",
	},
	{
		what:   "statements that name another database",
		limit:  "MySQL and MariaDB: one database per agent. A DDL statement that names the source database explicitly",
		reason: "the workload runs in the seed's database only, naming no database",
	},
	{
		what:   "ADD INDEX on a foreign key's column (InnoDB indexed it by itself when the key named no index)",
		limit:  "an index InnoDB made by itself for a foreign key that named none is an ordinary index once a base backup is restored",
		reason: "the generated ADD INDEX picks a column that is not a foreign key's",
	},
	{
		what:   "a query string holding more than one statement",
		limit:  "A single query string that mixes DDL and DML (`ALTER TABLE …; UPDATE …` sent as one query) would replay its DML twice",
		reason: "the workload sends one statement per query",
	},
	{
		what:   "XA transactions; sessions that change binlog_format, binlog_row_image or sql_log_bin",
		limit:  "XA transactions are refused. MySQL's compressed binlog transactions and partial JSON updates are refused at start",
		reason: "refused or a documented gap, never a restore",
	},
}

// Limits returns the README limit each entry of the skip table cites.
func Limits() []string {
	var out []string
	for _, s := range skips {
		out = append(out, s.limit)
	}
	return out
}

// Skips returns the generator's skip table as lines "what — README: limit".
func Skips() []string {
	var out []string
	for _, s := range skips {
		out = append(out, s.what+" — README: "+s.limit)
	}
	return out
}

// Gen is one seed's generator. It runs its statements on one connection to
// one database, and keeps a model of the schema it created.
type Gen struct {
	conn   *client.Conn
	rnd    *rand.Rand
	tables []*table
	// mode is the workload session's sql_mode.
	mode sqlMode
	// dbCharset is the database's default character set.
	dbCharset string
	seq       int  // unique numbers for names, keys and tags
	small     bool // values short (in a large transaction)
	// Log, when set, receives every statement run (for replaying a seed by
	// hand).
	Log func(stmt string)
	// Stmts counts the statements run, Commits the transactions committed,
	// Refused the statements the server refused (see refused).
	Stmts, Commits, Refused int
}

// refused passes err on unless the server refused the statement (a row
// value the column cannot hold under the session's sql_mode, a default a
// conversion makes invalid, members a conversion makes equal): such a
// statement changes nothing, on the source or in the binlog, so the
// workload goes on. Only single-statement operations whose model changes
// after success may be passed through it.
func (g *Gen) refused(err error) error {
	var me *mysql.MyError
	if err != nil && errors.As(err, &me) {
		g.Refused++
		if g.Log != nil {
			g.Log(fmt.Sprintf("-- refused: %d %s", me.Code, me.Message))
		}
		return nil
	}
	return err
}

// sqlMode is one sql_mode the workload session may run under, with what
// it allows.
type sqlMode struct {
	mode          string
	zeroDates     bool // '0000-00-00' and '2020-00-10' are accepted
	invalidDates  bool // '2023-02-30' is accepted in DATE and DATETIME
	noBackslashes bool // NO_BACKSLASH_ESCAPES: a backslash is an ordinary character
}

var sqlModes = []sqlMode{
	{mode: "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION", zeroDates: true},
	{mode: "", zeroDates: true},
	{mode: "STRICT_TRANS_TABLES,ALLOW_INVALID_DATES", zeroDates: true, invalidDates: true},
	{mode: "TRADITIONAL"},
	{mode: "STRICT_ALL_TABLES,NO_BACKSLASH_ESCAPES,ANSI_QUOTES,PAD_CHAR_TO_FULL_LENGTH,NO_ZERO_DATE,NO_ZERO_IN_DATE", noBackslashes: true},
}

var sessionZones = []string{"+00:00", "-07:00", "+05:45", "SYSTEM"}

// New returns the generator of seed for conn's current database, which
// must be empty.
func New(conn *client.Conn, seed uint64) *Gen {
	return &Gen{conn: conn, rnd: rand.New(rand.NewPCG(seed, seed^0x6a09e667f3bcc909))}
}

// DatabaseOptions returns the CREATE DATABASE options of the seed (drawn
// from a stream of its own, so it does not depend on call order).
func DatabaseOptions(seed uint64) string {
	r := rand.New(rand.NewPCG(seed, 0xbb67ae8584caa73b))
	cs := charsets[r.IntN(3)] // latin1, utf8mb3 or utf8mb4
	return fmt.Sprintf("CHARACTER SET %s COLLATE %s", cs.name, cs.collations[r.IntN(len(cs.collations))])
}

func (g *Gen) exec(q string) error {
	g.Stmts++
	if g.Log != nil {
		g.Log(q)
	}
	if r, err := g.conn.Execute(q); err != nil {
		return fmt.Errorf("%s: %w", clip(q), err)
	} else {
		r.Close()
	}
	return nil
}

// query runs q and returns its rows as strings (NULL as "\x00NULL").
func (g *Gen) query(q string) ([][]string, error) {
	r, err := g.conn.Execute(q)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", clip(q), err)
	}
	defer r.Close()
	var out [][]string
	for i := 0; i < r.RowNumber(); i++ {
		var row []string
		for j := 0; j < r.ColumnNumber(); j++ {
			v, err := r.GetValue(i, j)
			if err != nil {
				return nil, err
			}
			if v == nil {
				row = append(row, "\x00NULL")
				continue
			}
			s, err := r.GetString(i, j)
			if err != nil {
				return nil, err
			}
			row = append(row, strings.Clone(s))
		}
		out = append(out, row)
	}
	return out, nil
}

func clip(q string) string {
	if len(q) > 600 {
		return q[:600] + fmt.Sprintf("… (%d bytes)", len(q))
	}
	return q
}

// Setup sets the workload session up (sql_mode, time zone, utf8mb4) and
// creates the initial schema: 3 to 6 tables.
func (g *Gen) Setup() error {
	g.mode = sqlModes[g.rnd.IntN(len(sqlModes))]
	rows, err := g.query("SELECT @@character_set_database")
	if err != nil {
		return err
	}
	g.dbCharset = rows[0][0]
	for _, q := range []string{
		"SET NAMES utf8mb4",
		"SET SESSION sql_mode = '" + g.mode.mode + "'",
		"SET SESSION time_zone = '" + sessionZones[g.rnd.IntN(len(sessionZones))] + "'",
	} {
		if err := g.exec(q); err != nil {
			return err
		}
	}
	n := 3 + g.rnd.IntN(4)
	for i := 0; i < n; i++ {
		if err := g.createTable(); err != nil {
			return err
		}
	}
	return nil
}

// Describe says what the seed's session is, for the test log.
func (g *Gen) Describe() string {
	var names []string
	for _, t := range g.tables {
		names = append(names, t.name)
	}
	return fmt.Sprintf("sql_mode %q, database charset %s, tables %q", g.mode.mode, g.dbCharset, names)
}

// quoteIdent quotes a name with backticks.
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// quoteString quotes s as a string literal under the session's sql_mode.
func (g *Gen) quoteString(s string) string {
	if g.mode.noBackslashes {
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", `\0`).Replace(s) + "'"
}
