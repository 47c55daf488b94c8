package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/rxvault/rxvault/capture"
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
