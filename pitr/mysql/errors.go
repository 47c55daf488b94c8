package mysql

import (
	"errors"
	"fmt"
	"regexp"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// ServerError is an error the target server raised for a row statement.
// Row statements carry their values as literals, and many server messages
// quote them (a duplicate key's value, a value a column refused, the
// statement near a syntax error), so its text never holds the server's
// message unless the error's messages name objects alone: it holds the
// error code, the SQLSTATE, and the column or unique key the message
// names.
type ServerError struct {
	Code    uint16
	State   string // SQLSTATE
	Message string // empty when withheld
	// Column is the column the message names ("`db`.`t`.`c`"), if any,
	// for a withheld message that ends "for column … at row N".
	Column string
	// Key is the unique key a duplicate entry violates, if named.
	Key string
}

// safeMessages are the error codes whose messages name objects (tables,
// columns, constraints, users) and never quote a value.
var safeMessages = map[uint16]bool{
	1048: true, // Column '…' cannot be null
	1054: true, // Unknown column '…' in '…'
	1114: true, // The table '…' is full
	1136: true, // Column count doesn't match value count at row N
	1142: true, // … command denied to user … for table …
	1143: true, // … command denied to user … for column …
	1146: true, // Table '…' doesn't exist
	1153: true, // Got a packet bigger than 'max_allowed_packet' bytes
	1205: true, // Lock wait timeout exceeded
	1213: true, // Deadlock found when trying to get lock
	1264: true, // Out of range value for column '…' at row N
	1265: true, // Data truncated for column '…' at row N
	1348: true, // Column '…' is not updatable
	1364: true, // Field '…' doesn't have a default value
	1406: true, // Data too long for column '…' at row N
	1451: true, // Cannot delete or update a parent row: a foreign key constraint fails (…)
	1452: true, // Cannot add or update a child row: a foreign key constraint fails (…)
	1471: true, // The target table … of the … is not updatable
	1906: true, // The value specified for generated column '…' in table '…' has been ignored
	4025: true, // CONSTRAINT … failed for …
}

// What a withheld message may name, at its end (where no value can reach:
// a value is quoted before it, and a quoted name holds no lone backquote).
var (
	columnTailRE = regexp.MustCompile("for column ((?:`(?:[^`]|``){1,64}`\\.){0,2}`(?:[^`]|``){1,64}`) at row [0-9]+$")
	keyTailRE    = regexp.MustCompile(`for key '([^']{1,192})'$`)
)

// withheldServerError returns, for err that is (or wraps) a server error,
// a *ServerError in its place, which shows nothing of a message that may
// quote a value; other errors are returned as they are. Callers pass the
// server's error itself: context wrapped around it is dropped.
func withheldServerError(err error) error {
	var me *gomysql.MyError
	if !errors.As(err, &me) {
		return err
	}
	e := &ServerError{Code: me.Code, State: me.State}
	if safeMessages[me.Code] {
		e.Message = me.Message
		return e
	}
	if m := columnTailRE.FindStringSubmatch(me.Message); m != nil {
		e.Column = m[1]
	}
	if m := keyTailRE.FindStringSubmatch(me.Message); m != nil {
		e.Key = m[1]
	}
	return e
}

// Error returns one line: the code, SQLSTATE, and the message or what it
// names.
func (e *ServerError) Error() string {
	s := fmt.Sprintf("server error %d (SQLSTATE %s)", e.Code, e.State)
	if e.Message != "" {
		return s + ": " + e.Message
	}
	s += " (message withheld: it may quote row data)"
	if e.Column != "" {
		s += " column=" + e.Column
	}
	if e.Key != "" {
		s += " key=" + e.Key
	}
	return s
}
