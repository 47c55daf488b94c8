package mysql

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// TestWithheldServerError: a server error's message is kept only for
// codes whose messages name objects; otherwise the column or key it names
// is kept, never the value it quotes, even a value made to look like the
// message's tail.
func TestWithheldServerError(t *testing.T) {
	const secret = "SECRET-patient"
	for _, c := range []struct {
		code  uint16
		state string
		msg   string
		want  string
	}{
		{1062, "23000", "Duplicate entry '" + secret + "' for key 'PRIMARY'",
			"server error 1062 (SQLSTATE 23000) (message withheld: it may quote row data) key=PRIMARY"},
		{1062, "23000", "Duplicate entry '" + secret + "' for key 'x' for key 'mrn_unique'",
			"server error 1062 (SQLSTATE 23000) (message withheld: it may quote row data) key=mrn_unique"},
		{1292, "22007", "Incorrect uuid value: '" + secret + "' for column `db`.`t`.`u` at row 1",
			"server error 1292 (SQLSTATE 22007) (message withheld: it may quote row data) column=`db`.`t`.`u`"},
		{1366, "22007", "Incorrect integer value: '" + secret + " for column `a` at row 1' for column `db`.`t`.`n``x` at row 3",
			"server error 1366 (SQLSTATE 22007) (message withheld: it may quote row data) column=`db`.`t`.`n``x`"},
		{1064, "42000", "You have an error in your SQL syntax; check the manual near 'X'" + secret + "'' at line 1",
			"server error 1064 (SQLSTATE 42000) (message withheld: it may quote row data)"},
		{1146, "42S02", "Table 'db.absent' doesn't exist", "server error 1146 (SQLSTATE 42S02): Table 'db.absent' doesn't exist"},
	} {
		err := withheldServerError(fmt.Errorf("wrapped: %w", &gomysql.MyError{Code: c.code, State: c.state, Message: c.msg}))
		if got := err.Error(); got != c.want {
			t.Errorf("%d %q:\n got %s\nwant %s", c.code, c.msg, got, c.want)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%d: the error quotes the value: %s", c.code, err)
		}
		if se, ok := errors.AsType[*ServerError](err); !ok || se.Code != c.code {
			t.Errorf("%d: got %T, want a *ServerError with the code", c.code, err)
		}
	}
	if other := errors.New("connection reset"); !errors.Is(withheldServerError(other), other) {
		t.Error("an error without a server error was changed")
	}
}
