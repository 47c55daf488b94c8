package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rxvault/rxvault/integration/randpg"
)

// ddlSettingsSchema is in the base backup: the DDL below converts its
// columns.
const ddlSettingsSchema = `
CREATE TABLE doses (id int PRIMARY KEY, given timestamp, amount float8, label bytea, code text);
INSERT INTO doses VALUES
  (1, '2024-03-10 01:30:00', 0.1 + 0.2, '\x00ff41', '3.5'),
  (2, '2024-11-03 23:59:59.5', 1e-7 / 3, 'abc', '-1 2:03:04'),
  (3, NULL, NULL, NULL, NULL);
`

// ddlSettingsSession is the settings of the session that runs the DDL:
// each changes what some DDL below computes.
var ddlSettingsSession = []string{
	"SET TimeZone = 'Asia/Kathmandu'",
	"SET DateStyle = 'SQL, DMY'",
	"SET IntervalStyle = 'sql_standard'",
	"SET extra_float_digits = 0",
	"SET bytea_output = 'escape'",
}

// ddlSettingsWork is DDL whose result reads the session's settings:
// conversions of existing rows (which the stream does not carry: replay
// converts them again) and literals in defaults.
var ddlSettingsWork = []string{
	`ALTER TABLE doses ALTER COLUMN given TYPE timestamptz`,
	`ALTER TABLE doses ALTER COLUMN amount TYPE text`,
	`ALTER TABLE doses ALTER COLUMN label TYPE text USING label::text`,
	`ALTER TABLE doses ALTER COLUMN code TYPE interval USING CASE WHEN code LIKE '-%' THEN code::interval END`,
	`CREATE TABLE refills (id int PRIMARY KEY, due timestamptz DEFAULT '02/03/2024 10:00',
		day date DEFAULT '01/02/2024', every interval DEFAULT '-1 2:03:04', note text DEFAULT 0.1::float8 + 0.2)`,
	`ALTER TABLE doses ADD COLUMN checked date DEFAULT '05/06/2024'`,
	`INSERT INTO refills (id) VALUES (1)`,
}

// TestPostgresDDLUnderSessionSettings replays DDL that a session ran
// under other TimeZone, DateStyle, IntervalStyle, extra_float_digits and
// bytea_output than replay's own: the restore must hold what the source
// computed (converted rows, column defaults), compared by the battery's
// catalog and row fingerprint.
func TestPostgresDDLUnderSessionSettings(t *testing.T) {
	pg, dsn, conn, d := pgBackedUp(t, ddlSettingsSchema)
	ctx := context.Background()
	for _, q := range append(ddlSettingsSession, ddlSettingsWork...) {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	time.Sleep(1500 * time.Millisecond) // a heartbeat after the last transaction
	want, err := randpg.Fingerprint(ctx, connectPG(t, dsn))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	d.stop()

	target := restoreLatest(t, d, pg, "restored", "")
	got, err := randpg.Fingerprint(ctx, connectPG(t, target))
	if err != nil {
		t.Fatal(err)
	}
	if diff := want.Diff(got); len(diff) > 0 {
		t.Errorf("restore of DDL run under other session settings differs from the source:\n%s", strings.Join(diff, "\n"))
	}
}
