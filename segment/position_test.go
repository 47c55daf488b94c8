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
}
