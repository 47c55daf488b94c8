package postgres

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/rxvault/rxvault/segment"
)

// ddlPrefix is the prefix of the logical messages rxvault's event trigger
// emits for DDL (see setupsql.go); the reader turns each into an OpDDL
// change, preceded by a segment.MsgDDLSession message.
const ddlPrefix = "rxvault.ddl"

// ddlMessage is the content of an rxvault.ddl logical message, written by
// the event trigger function in setupsql.go.
type ddlMessage struct {
	SearchPath *string `json:"search_path"`
	Tag        string  `json:"tag"`
	SQL        *string `json:"sql"`
	// Created is the oid of the table a CREATE TABLE AS or SELECT INTO
	// made; SQL then creates it empty.
	Created uint32 `json:"created"`
	// Settings are the session's DDLSettings (absent from messages of
	// capture objects before v4).
	Settings map[string]*string `json:"settings"`
}

// ddlSession is the content of the segment.MsgDDLSession message that
// goes before a DDL change.
type ddlSession struct {
	Settings map[string]string `json:"settings"`
}

// ddl is a decoded rxvault.ddl message.
type ddl struct {
	// session is the segment.MsgDDLSession message to go before
	// change, if the message recorded settings.
	session *segment.Change
	change  segment.Change // OpDDL: Schema, SQL
	tag     string         // the command tag
	stmts   int            // how many statements SQL seems to hold
	created uint32         // see ddlMessage.Created; 0 if none
}

// parseDDL turns an rxvault.ddl message into an OpDDL change: Schema is
// the search_path to replay it under (a value for set_config('search_path',
// Schema, true)), SQL the client's whole query string (or, for a table
// created with its rows, the CREATE TABLE of the empty table).
func parseDDL(content []byte) (ddl, error) {
	var m ddlMessage
	if err := json.Unmarshal(content, &m); err != nil {
		return ddl{}, fmt.Errorf("bad rxvault.ddl message: %w", err)
	}
	if m.SearchPath == nil || m.SQL == nil || strings.TrimSpace(*m.SQL) == "" {
		return ddl{}, fmt.Errorf("bad rxvault.ddl message: search_path or sql missing")
	}
	d := ddl{
		change:  segment.Change{Op: segment.OpDDL, Schema: *m.SearchPath, SQL: *m.SQL},
		tag:     m.Tag,
		stmts:   countStatements(*m.SQL),
		created: m.Created,
	}
	if len(m.Settings) > 0 {
		sess := ddlSession{Settings: make(map[string]string, len(m.Settings))}
		for k, v := range m.Settings {
			if v != nil {
				sess.Settings[k] = *v
			}
		}
		content, err := json.Marshal(sess)
		if err != nil {
			return ddl{}, fmt.Errorf("rxvault.ddl message: %w", err)
		}
		d.session = &segment.Change{Op: segment.OpMessage, Prefix: segment.MsgDDLSession, Content: content, Transactional: true}
	}
	return d, nil
}

// countStatements counts the non-empty statements of an SQL string split
// at semicolons outside quotes, quoted identifiers, dollar quotes and
// comments. It is a heuristic (it does not know every lexical corner, such
// as a semicolon inside a function body quoted with plain quotes, which it
// treats right anyway since that is a quoted string) used only to warn.
func countStatements(sql string) int {
	n := 0
	nonEmpty := false
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == ';':
			if nonEmpty {
				n++
			}
			nonEmpty = false
			i++
			continue
		case c == '-' && strings.HasPrefix(sql[i:], "--"):
			j := strings.IndexByte(sql[i:], '\n')
			if j < 0 {
				i = len(sql)
			} else {
				i += j + 1
			}
			continue
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			i = skipBlockComment(sql, i)
			continue
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
			continue
		}
		nonEmpty = true
		switch c {
		case '\'':
			// E'...' strings escape quotes with a backslash too.
			escapes := i > 0 && (sql[i-1] == 'E' || sql[i-1] == 'e')
			i = skipQuoted(sql, i, '\'', escapes)
		case '"':
			i = skipQuoted(sql, i, '"', false)
		case '$':
			i = skipDollar(sql, i)
		default:
			i++
		}
	}
	if nonEmpty {
		n++
	}
	return n
}

// skipQuoted returns the index just past the quoted text starting at i
// (a doubled quote stands for itself).
func skipQuoted(s string, i int, q byte, escapes bool) int {
	for i++; i < len(s); i++ {
		switch {
		case escapes && s[i] == '\\':
			i++
		case s[i] == q:
			if i+1 < len(s) && s[i+1] == q {
				i++
				continue
			}
			return i + 1
		}
	}
	return len(s)
}

// skipDollar skips a dollar-quoted string $tag$...$tag$ starting at i, or
// just the '$' when it does not start one (a parameter such as $1).
func skipDollar(s string, i int) int {
	j := i + 1
	for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9' || s[j] >= 0x80) {
		j++
	}
	if j >= len(s) || s[j] != '$' || (j > i+1 && s[i+1] >= '0' && s[i+1] <= '9') {
		return i + 1
	}
	tag := s[i : j+1]
	end := strings.Index(s[j+1:], tag)
	if end < 0 {
		return len(s)
	}
	return j + 1 + end + len(tag)
}

// skipBlockComment skips a (nestable) /* */ comment starting at i.
func skipBlockComment(s string, i int) int {
	depth := 0
	for i < len(s) {
		switch {
		case strings.HasPrefix(s[i:], "/*"):
			depth++
			i += 2
		case strings.HasPrefix(s[i:], "*/"):
			depth--
			i += 2
			if depth == 0 {
				return i
			}
		default:
			i++
		}
	}
	return len(s)
}
