package postgres

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/segment"
)

// TestRefuseTableWithoutIdentity checks that Open refuses tables whose
// updates and deletes could not be replayed, naming each with the ALTER
// TABLE that fixes it, before it publishes anything; that tables outside
// the configured list do not matter; and that the fix is enough.
func TestRefuseTableWithoutIdentity(t *testing.T) {
	_, dsn := newDB(t, "refuse")
	conn := connect(t, dsn)
	ctx := context.Background()
	execAll(t, conn,
		`CREATE TABLE nopk (a integer)`,
		`CREATE TABLE "Odd Name" (a integer)`,
		`CREATE TABLE ok (id integer PRIMARY KEY)`,
		`CREATE TABLE full_ident (a integer)`,
		`ALTER TABLE full_ident REPLICA IDENTITY FULL`,
		`CREATE TABLE nothing (id integer PRIMARY KEY)`,
		`ALTER TABLE nothing REPLICA IDENTITY NOTHING`,
		`INSERT INTO nopk VALUES (1)`,
	)
	cfg := testConfig(t, dsn)
	_, err := Open(ctx, cfg)
	if err == nil {
		t.Fatalf("Open accepted tables without replica identity")
	}
	msg := err.Error()
	t.Logf("error: %s", msg)
	for _, want := range []string{
		"ALTER TABLE public.nopk REPLICA IDENTITY FULL;",
		`ALTER TABLE public."Odd Name" REPLICA IDENTITY FULL;`,
		"ALTER TABLE public.nothing REPLICA IDENTITY FULL;",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not say %q", want)
		}
	}
	for _, fine := range []string{"public.ok", "full_ident"} {
		if strings.Contains(msg, fine) {
			t.Errorf("error names %s, which is fine", fine)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line")
	}
	if !capture.IsPermanent(err) || IsTransient(err) {
		t.Errorf("refusal is not permanent")
	}
	var pubs, slots int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_publication), (SELECT count(*) FROM pg_replication_slots)`).Scan(&pubs, &slots); err != nil {
		t.Fatal(err)
	}
	if pubs != 0 || slots != 0 {
		t.Fatalf("refused Open left %d publications and %d slots", pubs, slots)
	}
	// Nothing was published, so the application's updates still work.
	execAll(t, conn, `UPDATE nopk SET a = 2`)

	// Listing only good tables is accepted.
	listed := cfg
	listed.Tables = []string{"public.ok", "public.full_ident"}
	listed.Slot, listed.Publication = "listed", "listed"
	r := openReader(t, listed)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	execAll(t, conn,
		`ALTER TABLE nopk REPLICA IDENTITY FULL`,
		`ALTER TABLE "Odd Name" REPLICA IDENTITY FULL`,
		`ALTER TABLE nothing REPLICA IDENTITY DEFAULT`,
	)
	openReader(t, cfg)
}

// TestRolePrivileges checks what a role that is not a superuser is told:
// without REPLICATION it may not stream; it cannot install the DDL
// capture; once a superuser has, it needs to read the captured sequences;
// with those grants it captures.
func TestRolePrivileges(t *testing.T) {
	_, dsn := newDB(t, "roles")
	conn := connect(t, dsn)
	execAll(t, conn,
		`CREATE TABLE t (id serial PRIMARY KEY)`,
		`CREATE ROLE plain LOGIN`,
		`CREATE ROLE capturer LOGIN REPLICATION`,
	)
	as := func(role string) Config {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.User(role)
		return testConfig(t, u.String())
	}
	ctx := context.Background()
	for _, c := range []struct {
		role, want string
	}{
		{"plain", "fix: ALTER ROLE plain REPLICATION;"},
		{"capturer", "event triggers need a superuser"},
	} {
		_, err := Open(ctx, as(c.role))
		if err == nil || !strings.Contains(err.Error(), c.want) || !capture.IsPermanent(err) {
			t.Fatalf("Open as %s = %v, want a permanent error saying %q", c.role, err, c.want)
		}
	}

	// A superuser installs the capture once.
	r := openReader(t, testConfig(t, dsn))
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := Open(ctx, as("capturer"))
	if err == nil || !strings.Contains(err.Error(), "GRANT USAGE ON SCHEMA rxvault TO capturer;") {
		t.Fatalf("Open as capturer = %v, want the grants to run", err)
	}
	execAll(t, conn,
		`GRANT USAGE ON SCHEMA rxvault TO capturer`,
		`GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO capturer`,
	)
	r = openReader(t, as("capturer"))
	sink := newRecSink()
	run := start(t, r, sink)
	execAll(t, conn, `INSERT INTO t DEFAULT VALUES`)
	sink.waitUntil(t, run, "the insert", func(txns []recTxn) bool {
		for _, tx := range txns {
			if tx.Changes[0].Op == segment.OpInsert {
				return true
			}
		}
		return false
	})
}
