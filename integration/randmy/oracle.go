package randmy

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/rxvault/rxvault/integration/myworkload"
)

// State is a database's fingerprint: per table its definition (SHOW
// CREATE TABLE without the AUTO_INCREMENT= option), its AUTO_INCREMENT
// counter and a digest of its rows; the database's defaults, triggers and
// events. Every part is computed by SQL on the server, independent of
// rxvault's decoding.
type State map[string]string

// rowDigestSQL returns a query giving count, sum and xor of the rows'
// MD5s, an order-independent digest of the multiset of rows. Each column
// is rendered exactly for its type: strings and binaries as their bytes
// (HEX), numbers and temporals as text (FLOAT through DOUBLE, so all its
// digits), TIMESTAMP also as seconds since the epoch, ENUM and SET also
// by index, NULL as N.
func rowDigestSQL(table string, cols, types []string) string {
	var exprs []string
	for i, c := range cols {
		q := quoteIdent(c)
		var e string
		switch types[i] {
		case "tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "year",
			"date", "time", "datetime", "uuid", "inet6", "inet4":
			e = "CAST(" + q + " AS CHAR)"
		case "float":
			e = "CONCAT('', " + q + " + 0e0)"
		case "double":
			e = "CONCAT('', " + q + ")"
		case "bit":
			e = "CAST(" + q + " + 0 AS CHAR)"
		case "timestamp":
			e = "CONCAT(UNIX_TIMESTAMP(" + q + "), '@', CAST(" + q + " AS CHAR))"
		case "enum", "set":
			e = "CONCAT(" + q + " + 0, ':', HEX(" + q + "))"
		default: // char, varchar, text, binary, blob, JSON (longtext)
			e = "HEX(" + q + ")"
		}
		exprs = append(exprs, "IFNULL(MD5("+e+"), 'N')")
	}
	h := "MD5(CONCAT_WS(',', " + strings.Join(exprs, ", ") + "))"
	return fmt.Sprintf(`SELECT COUNT(*), IFNULL(SUM(CAST(CONV(SUBSTR(h, 1, 15), 16, 10) AS UNSIGNED)), 0),
		IFNULL(BIT_XOR(CAST(CONV(SUBSTR(h, 16, 16), 16, 10) AS UNSIGNED)), 0) FROM (SELECT %s AS h FROM %s) AS x`, h, quoteIdent(table))
}

var autoIncOption = regexp.MustCompile(` AUTO_INCREMENT=\d+`)

// sessionSQL fixes the oracle session's settings, so both servers render
// alike whatever their defaults.
var sessionSQL = []string{"SET NAMES utf8mb4", "SET SESSION time_zone = '+00:00'", "SET SESSION sql_mode = ''"}

// Fingerprint reads conn's current database in one consistent snapshot
// and returns its State and the binlog position of the snapshot, as
// rxvault's --position takes it (000001:1234; "" without a binlog).
func Fingerprint(conn *client.Conn) (State, string, error) {
	g := &Gen{conn: conn}
	for _, q := range sessionSQL {
		if _, err := g.query(q); err != nil {
			return nil, "", err
		}
	}
	if _, err := g.query("START TRANSACTION WITH CONSISTENT SNAPSHOT"); err != nil {
		return nil, "", err
	}
	defer g.query("COMMIT") //nolint:errcheck // read-only
	pos := ""
	st, err := g.query("SHOW STATUS LIKE 'binlog_snapshot_%'")
	if err != nil {
		return nil, "", err
	}
	var file, off string
	for _, r := range st {
		switch r[0] {
		case "Binlog_snapshot_file":
			file = r[1]
		case "Binlog_snapshot_position":
			off = r[1]
		}
	}
	if i := strings.LastIndexByte(file, '.'); i >= 0 && off != "" {
		pos = file[i+1:] + ":" + off
	}
	tables, err := g.query("SELECT TABLE_NAME, IFNULL(AUTO_INCREMENT, 'none') FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1")
	if err != nil {
		return nil, "", err
	}
	s := State{}
	for _, tr := range tables {
		t := tr[0]
		s[t+" auto_increment"] = tr[1]
		def, err := g.query("SHOW CREATE TABLE " + quoteIdent(t))
		if err != nil {
			return nil, "", err
		}
		s[t+" definition"] = autoIncOption.ReplaceAllString(def[0][1], "")
		cols, err := g.query(fmt.Sprintf("SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '%s' ORDER BY ORDINAL_POSITION", strings.ReplaceAll(t, "'", "''")))
		if err != nil {
			return nil, "", err
		}
		var names, types []string
		for _, c := range cols {
			names, types = append(names, c[0]), append(types, strings.ToLower(c[1]))
		}
		d, err := g.query(rowDigestSQL(t, names, types))
		if err != nil {
			return nil, "", err
		}
		s[t+" rows"] = fmt.Sprintf("%s rows, sum %s, xor %s", d[0][0], d[0][1], d[0][2])
	}
	for k, q := range map[string]string{
		"database defaults": "SELECT CONCAT(DEFAULT_CHARACTER_SET_NAME, ' ', DEFAULT_COLLATION_NAME) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()",
		"triggers":          "SELECT CONCAT(TRIGGER_NAME, ' ', ACTION_TIMING, ' ', EVENT_MANIPULATION, ' ', EVENT_OBJECT_TABLE) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY 1",
		"events":            "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE() ORDER BY 1",
		"views and others":  "SELECT CONCAT(TABLE_NAME, ' ', TABLE_TYPE) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE <> 'BASE TABLE' ORDER BY 1",
	} {
		rows, err := g.query(q)
		if err != nil {
			return nil, "", err
		}
		var vs []string
		for _, r := range rows {
			vs = append(vs, r[0])
		}
		s[k] = strings.Join(vs, "; ")
	}
	return s, pos, nil
}

// Diff lists the differences between s (wanted) and got, one line each.
func (s State) Diff(got State) []string {
	return myworkload.State(s).Diff(myworkload.State(got))
}

// RowTexts returns every row of table as text, one string per row with
// each column rendered as the digest renders it (before hashing), sorted:
// for showing which rows differ when a digest does.
func RowTexts(conn *client.Conn, table string) ([]string, error) {
	g := &Gen{conn: conn}
	for _, q := range sessionSQL {
		if _, err := g.query(q); err != nil {
			return nil, err
		}
	}
	cols, err := g.query(fmt.Sprintf("SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '%s' ORDER BY ORDINAL_POSITION", strings.ReplaceAll(table, "'", "''")))
	if err != nil {
		return nil, err
	}
	var names, types []string
	for _, c := range cols {
		names, types = append(names, c[0]), append(types, strings.ToLower(c[1]))
	}
	q := rowDigestSQL(table, names, types)
	// The digest's row expression, without the MD5s: between "SELECT " of
	// the inner query and " AS h".
	inner := q[strings.Index(q, "(SELECT ")+len("(SELECT ") : strings.LastIndex(q, " AS h FROM")]
	inner = strings.ReplaceAll(inner, "IFNULL(MD5(", "IFNULL((")
	inner = strings.Replace(inner, "MD5(CONCAT_WS(", "(CONCAT_WS(", 1)
	rows, err := g.query("SELECT LEFT(" + inner + ", 2000) FROM " + quoteIdent(table))
	if err != nil {
		return nil, err
	}
	var out []string
	for i, r := range rows {
		_ = i
		out = append(out, r[0])
	}
	sort.Strings(out)
	return out, nil
}
