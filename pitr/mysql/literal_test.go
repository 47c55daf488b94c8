package mysql

import (
	"strings"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/rxvault/rxvault/segment"
)

func TestLiteral(t *testing.T) {
	col := func(tp byte) *segment.Column { return &segment.Column{Name: "c", Type: "t", TypeID: uint32(tp)} }
	text := segment.TextValue
	bin := func(s string) segment.Value { return segment.Value{Kind: segment.Binary, Data: []byte(s)} }
	for _, tc := range []struct {
		c    *segment.Column
		v    segment.Value
		want string
	}{
		{col(gomysql.MYSQL_TYPE_LONGLONG), text("18446744073709551615"), "18446744073709551615"},
		{col(gomysql.MYSQL_TYPE_LONG), text("-7"), "-7"},
		{col(gomysql.MYSQL_TYPE_DOUBLE), text("2.5e-10"), "2.5e-10"},
		// A FLOAT's shortest text is beyond FLT_MAX as a double, which the
		// server refuses as out of range: its exact value is written.
		{col(gomysql.MYSQL_TYPE_FLOAT), text("3.4028235e+38"), "3.4028234663852886e+38"},
		{col(gomysql.MYSQL_TYPE_FLOAT), text("-3.4028235e+38"), "-3.4028234663852886e+38"},
		{col(gomysql.MYSQL_TYPE_FLOAT), text("0.1"), "0.10000000149011612"},
		{col(gomysql.MYSQL_TYPE_FLOAT), text("-0"), "-0"},
		{col(gomysql.MYSQL_TYPE_NEWDECIMAL), text("-1.000000000000000000000000000001"), "'-1.000000000000000000000000000001'"},
		{col(gomysql.MYSQL_TYPE_DATETIME2), text("2026-12-02 10:02:17.123456"), "'2026-12-02 10:02:17.123456'"},
		{col(gomysql.MYSQL_TYPE_TIME2), text("-838:59:58.125"), "'-838:59:58.125'"},
		{col(gomysql.MYSQL_TYPE_VARCHAR), bin("it's 💊"), "X'69742773" + "20f09f928a'"},
		{col(gomysql.MYSQL_TYPE_JSON), bin(`{"a":1}`), `CONVERT(X'7b2261223a317d' USING utf8mb4)`},
		{col(gomysql.MYSQL_TYPE_BLOB), bin(""), "''"},
		{col(gomysql.MYSQL_TYPE_LONG), segment.Value{Kind: segment.Null}, "NULL"},
	} {
		var b strings.Builder
		if err := literal(&b, tc.c, tc.v); err != nil || b.String() != tc.want {
			t.Errorf("literal(%d, %q) = %q, %v; want %q", tc.c.TypeID, tc.v.Data, b.String(), err, tc.want)
		}
	}
	// Text that is not of its column's alphabet never reaches SQL.
	for _, tc := range []struct {
		tp byte
		s  string
	}{
		{gomysql.MYSQL_TYPE_LONG, "1; DROP TABLE t"},
		{gomysql.MYSQL_TYPE_LONG, "0x41"},
		{gomysql.MYSQL_TYPE_DOUBLE, "NaN"},
		{gomysql.MYSQL_TYPE_NEWDECIMAL, "1' OR '1'='1"},
		{gomysql.MYSQL_TYPE_DATETIME2, "2026-01-01'"},
	} {
		var b strings.Builder
		if err := literal(&b, col(tc.tp), text(tc.s)); err == nil {
			t.Errorf("literal(%d, %q) accepted: %s", tc.tp, tc.s, b.String())
		}
	}
}

func TestDropTrigger(t *testing.T) {
	for q, want := range map[string]string{
		"DROP TRIGGER fills_audit":                        "fills_audit",
		"drop trigger if exists `pharmacy`.`fills_audit`": "fills_audit",
		"DROP TRIGGER pharmacy.t1;":                       "t1",
	} {
		if got, ok := dropTrigger(q); !ok || got != want {
			t.Errorf("dropTrigger(%q) = %q, %v; want %q", q, got, ok, want)
		}
	}
	if _, ok := dropTrigger("DROP TABLE t"); ok {
		t.Error("DROP TABLE taken for DROP TRIGGER")
	}
}
