package segment_test

import (
	"testing"

	"github.com/rxvault/rxvault/segment"
)

func TestParsePosition(t *testing.T) {
	for _, tc := range []struct {
		e    segment.Engine
		text string
		want segment.Position
	}{
		{segment.EnginePostgres, "16/B374D848", segment.Position{Lo: 0x16B374D848}},
		{segment.EnginePostgres, "0/16b3748", segment.Position{Lo: 0x16B3748}},
		{segment.EngineMariaDB, "000042:1234", segment.Position{Hi: 42, Lo: 1234}},
		{segment.EngineMariaDB, "2/000042:1234", segment.Position{Hi: 2<<32 | 42, Lo: 1234}},
		{segment.EngineMySQL, "0/000007:4", segment.Position{Hi: 7, Lo: 4}},
		{segment.EnginePostgres, "00000000000000000000000016b3748a", segment.Position{Lo: 0x16B3748A}},
	} {
		got, err := segment.ParsePosition(tc.e, tc.text)
		if err != nil || got != tc.want {
			t.Errorf("ParsePosition(%s, %q) = %s, %v; want %s", tc.e, tc.text, got, err, tc.want)
		}
		if back, err := segment.ParsePosition(tc.e, got.Format(tc.e)); err != nil || back != got {
			t.Errorf("Format/Parse round trip of %s: %s, %v", got, back, err)
		}
	}
	for _, bad := range []string{"", "16", "16/", "x/y", "16/B374D848/1", "1 6/0"} {
		if _, err := segment.ParsePosition(segment.EnginePostgres, bad); err == nil {
			t.Errorf("ParsePosition(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"42", "1/2/3:4", "x/000042:1", "4294967296:1", "4294967296/000001:4", "/000001:4"} {
		if _, err := segment.ParsePosition(segment.EngineMariaDB, bad); err == nil {
			t.Errorf("ParsePosition(mariadb, %q) accepted", bad)
		}
	}
}

func TestParseTxnID(t *testing.T) {
	const u = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	for _, tc := range []struct {
		e          segment.Engine
		text, want string
	}{
		{segment.EnginePostgres, "7345", "7345"},
		{segment.EnginePostgres, "007345", "7345"},
		{segment.EngineMariaDB, "0-1-5012", "0-1-5012"},
		{segment.EngineMariaDB, "00-01-05012", "0-1-5012"},
		{segment.EngineMySQL, u + ":23", u + ":23"},
		{segment.EngineMySQL, "3E11FA47-71CA-11E1-9E33-C80AA9429562:23", u + ":23"},
		{segment.EngineMySQL, u + ":Nightly_2:7", u + ":nightly_2:7"},
	} {
		got, err := segment.ParseTxnID(tc.e, tc.text)
		if err != nil || got != tc.want {
			t.Errorf("ParseTxnID(%s, %q) = %q, %v; want %q", tc.e, tc.text, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		e    segment.Engine
		text string
	}{
		{segment.EnginePostgres, ""},
		{segment.EnginePostgres, "-1"},
		{segment.EnginePostgres, "4294967296"},
		{segment.EngineMariaDB, "0-1"},
		{segment.EngineMariaDB, "0-1-2-3"},
		{segment.EngineMariaDB, "a-1-2"},
		{segment.EngineMySQL, u},
		{segment.EngineMySQL, u + ":0"},
		{segment.EngineMySQL, u + ":1-5"},
		{segment.EngineMySQL, u + ":1:2"},
		{segment.EngineMySQL, "3e11fa47:23"},
		{segment.EngineMySQL, u + ":9tag:3"},
		{segment.EngineSQLServer, "1"},
	} {
		if got, err := segment.ParseTxnID(tc.e, tc.text); err == nil {
			t.Errorf("ParseTxnID(%s, %q) accepted as %q", tc.e, tc.text, got)
		}
	}
}
