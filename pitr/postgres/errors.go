package postgres

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// ServerError is an error the target server raised while replaying. Its
// text never quotes row data: it holds the SQLSTATE, the names of the
// objects involved, and the server's message only for classes of errors
// whose messages name objects rather than quote values (a data exception
// such as `invalid input syntax for type integer: "…"`, or a unique
// violation's detail, would quote them).
type ServerError struct {
	Code       string // SQLSTATE
	Message    string // empty when withheld
	Schema     string
	Table      string
	Column     string
	DataType   string
	Constraint string
}

// newServerError keeps what of pe is safe to show.
func newServerError(pe *pgconn.PgError) *ServerError {
	e := &ServerError{
		Code:       pe.Code,
		Schema:     pe.SchemaName,
		Table:      pe.TableName,
		Column:     pe.ColumnName,
		DataType:   pe.DataTypeName,
		Constraint: pe.ConstraintName,
	}
	if messageSafe(pe.Code) {
		e.Message = pe.Message
	}
	return e
}

// messageSafe reports whether messages of SQLSTATE code name objects
// rather than quote data: feature not supported (0A), transaction state
// (25), dependent objects (2B), invalid schema (3F), syntax or access
// rule (42), insufficient resources (53), object state (55), operator
// intervention (57).
func messageSafe(code string) bool {
	if len(code) != 5 {
		return false
	}
	switch code[:2] {
	case "0A", "25", "2B", "3F", "42", "53", "55", "57":
		return true
	}
	return false
}

// conditionNames names the SQLSTATEs replay most often meets.
var conditionNames = map[string]string{
	"22001": "string_data_right_truncation",
	"22003": "numeric_value_out_of_range",
	"22007": "invalid_datetime_format",
	"22008": "datetime_field_overflow",
	"22021": "character_not_in_repertoire",
	"22P02": "invalid_text_representation",
	"23502": "not_null_violation",
	"23503": "foreign_key_violation",
	"23505": "unique_violation",
	"23514": "check_violation",
	"23P01": "exclusion_violation",
	"25001": "active_sql_transaction",
	"40001": "serialization_failure",
	"40P01": "deadlock_detected",
	"42501": "insufficient_privilege",
	"42601": "syntax_error",
	"42701": "duplicate_column",
	"42703": "undefined_column",
	"42704": "undefined_object",
	"42710": "duplicate_object",
	"42804": "datatype_mismatch",
	"42883": "undefined_function",
	"42P01": "undefined_table",
	"42P07": "duplicate_table",
	"55P03": "lock_not_available",
	"57014": "query_canceled",
}

// Error returns one line: SQLSTATE, condition name, objects and, if safe,
// the message.
func (e *ServerError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "server error %s", e.Code)
	if name, ok := conditionNames[e.Code]; ok {
		fmt.Fprintf(&b, " (%s)", name)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", strings.ReplaceAll(e.Message, "\n", " "))
	} else {
		b.WriteString(" (message withheld: it may quote row data)")
	}
	for _, f := range [...]struct{ k, v string }{
		{"schema", e.Schema}, {"table", e.Table}, {"column", e.Column},
		{"type", e.DataType}, {"constraint", e.Constraint},
	} {
		if f.v != "" {
			fmt.Fprintf(&b, " %s=%s", f.k, f.v)
		}
	}
	return b.String()
}

// SQLState returns the SQLSTATE.
func (e *ServerError) SQLState() string { return e.Code }
