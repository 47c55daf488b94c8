package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rxvault/rxvault/pitr"
)

// TestCheckEmpty: a new database is empty; any user object makes it not
// empty, with a one-line error wrapping pitr.ErrTargetNotEmpty that names
// what was found, never the password.
func TestCheckEmpty(t *testing.T) {
	pg := newServerOnly(t)
	const password = "s3cret-pw"
	withPassword := func(dsn string) string {
		return strings.Replace(dsn, "postgres@", "postgres:"+password+"@", 1)
	}
	ctx := context.Background()

	t.Run("empty", func(t *testing.T) {
		dsn := pg.CreateDatabase(t, "empty")
		if err := openTarget(t, withPassword(dsn)).CheckEmpty(ctx); err != nil {
			t.Fatalf("CheckEmpty of a new database: %v", err)
		}
	})
	cases := []struct {
		name, sql string
		want      []string // in the message
	}{
		{"tables", `CREATE TABLE a (x int); CREATE TABLE b (); CREATE TABLE c (); CREATE TABLE d ()`,
			[]string{"4 tables (public.a, public.b, public.c, …)"}},
		{"rows of a serial table", `CREATE TABLE "Odd" (id serial); INSERT INTO "Odd" DEFAULT VALUES`,
			[]string{`not empty: 1 table (public."Odd"), 1 sequence (public."Odd_id_seq")`}},
		{"function", `CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'`, []string{"1 function (public.f)"}},
		{"schema", `CREATE SCHEMA app`, []string{"1 schema (app)"}},
		{"view", `CREATE VIEW v AS SELECT 1 AS one`, []string{"1 view (public.v)"}},
		{"enum", `CREATE TYPE mood AS ENUM ('ok')`, []string{"1 type (mood)"}},
		{"extension", `CREATE EXTENSION citext`, []string{"1 extension (citext)"}},
		{"event trigger", `CREATE FUNCTION et() RETURNS event_trigger LANGUAGE plpgsql AS 'BEGIN END';
			CREATE EVENT TRIGGER e ON ddl_command_end EXECUTE FUNCTION et()`,
			[]string{"1 event trigger (e)", "1 function (public.et)"}},
		{"large object", `SELECT lo_create(4242)`, []string{"1 large object (4242)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dsn := pg.CreateDatabase(t, strings.ReplaceAll(c.name, " ", "_"))
			run(t, connect(t, dsn), c.sql)
			err := openTarget(t, withPassword(dsn)).CheckEmpty(ctx)
			if !errors.Is(err, pitr.ErrTargetNotEmpty) {
				t.Fatalf("CheckEmpty: got %v, want an error wrapping ErrTargetNotEmpty", err)
			}
			var ne *NotEmptyError
			if !errors.As(err, &ne) {
				t.Fatalf("CheckEmpty: got %T, want *NotEmptyError", err)
			}
			msg := err.Error()
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if !strings.HasPrefix(msg, "restore target postgres://postgres@127.0.0.1:") ||
				!strings.HasSuffix(msg, "restore into a new empty database (createdb NAME)") {
				t.Errorf("error %q: want the target's URL first and the fix last", msg)
			}
			if strings.Contains(msg, password) || strings.Contains(msg, "\n") {
				t.Errorf("error %q shows the password or spans lines", msg)
			}
		})
	}
}

// TestOpenErrors: Open refuses what it cannot use, with errors that never
// show the password.
func TestOpenErrors(t *testing.T) {
	pg := newServerOnly(t)
	dsn := pg.CreateDatabase(t, "target")
	run(t, connect(t, dsn), `CREATE ROLE clerk LOGIN PASSWORD 'clerk-pw'`)
	ctx := context.Background()
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"not a URL", Config{DSN: "host=localhost password=hunter2 dbname=x"}, "must be a postgres:// URL"},
		{"not a superuser", Config{DSN: strings.Replace(dsn, "postgres@", "clerk:clerk-pw@", 1)}, `"clerk" is not a superuser`},
		{"no pg_restore", Config{DSN: dsn, PGBin: t.TempDir()}, "pg_restore not found"},
		{"unreachable", Config{DSN: "postgres://postgres:hunter2@127.0.0.1:1/x"}, "connection refused"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tg, err := Open(ctx, c.cfg)
			if err == nil {
				tg.Close(ctx)
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("Open: %q, want it to contain %q", err, c.want)
			}
			for _, pw := range []string{"hunter2", "clerk-pw"} {
				if strings.Contains(err.Error(), pw) {
					t.Errorf("Open: %q shows the password", err)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("Open: %q spans lines", err)
			}
		})
	}
}
