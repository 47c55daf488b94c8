package postgres

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestDump checks that a dump joins the stream exactly: rows committed
// before Dump are in the dump (restored with pg_restore into a fresh
// database) and come from the stream with a commit LSN before Pos; rows
// committed after Dump are not in the dump and come from the stream with a
// commit LSN at or after Pos.
func TestDump(t *testing.T) {
	pg, dsn := newDB(t, "src")
	conn := connect(t, dsn)
	ctx := context.Background()
	execAll(t, conn, `CREATE TABLE items (id integer PRIMARY KEY, name text)`, `INSERT INTO items VALUES (1, 'before the slot')`)
	cfg := testConfig(t, dsn)
	r := openReader(t, cfg)
	sink := newRecSink()
	run := start(t, r, sink)
	execAll(t, conn, `INSERT INTO items VALUES (2, 'before the dump')`, `INSERT INTO items VALUES (3, 'before the dump')`)

	d, err := Dump(ctx, cfg)
	if err != nil {
		t.Fatalf("Dump: %v", err)
	}
	execAll(t, conn, `INSERT INTO items VALUES (4, 'after the dump')`, `UPDATE items SET name = 'changed after' WHERE id = 2`)

	file := filepath.Join(t.TempDir(), "base.dump")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, d); err != nil {
		t.Fatalf("read dump: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("dump Close: %v", err)
	}
	if got, want := d.Identity(), r.Identity(); got != want {
		t.Errorf("dump identity %+v, want %+v", got, want)
	}
	if got := d.Tool(); !strings.HasPrefix(got, "pg_dump (PostgreSQL) ") {
		t.Errorf("Tool = %q", got)
	}
	if got, want := d.Format(), "pg_dump-custom"; got != want {
		t.Errorf("Format = %q, want %q", got, want)
	}
	// The server drops a temporary slot when its session's backend exits,
	// which happens just after Close has closed the connection.
	poll(t, "the temporary slot to go with its session", func() bool {
		var slots int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'rxvault_dump_%'`).Scan(&slots); err != nil {
			t.Fatal(err)
		}
		return slots == 0
	})

	restored := pg.CreateDatabase(t, "restored")
	out, err := exec.Command(filepath.Join(DefaultPGBin, "pg_restore"), "--exit-on-error", "--no-owner", "--dbname="+restored, file).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	rconn := connect(t, restored)
	rows, err := rconn.Query(ctx, `SELECT id::text || '=' || name FROM items ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"1=before the slot", "2=before the dump", "3=before the dump"}; !slices.Equal(got, want) {
		t.Fatalf("restored rows %q, want %q", got, want)
	}

	// The stream holds rows 2..4 and the update; the dump's position
	// splits them exactly.
	txns := sink.waitUntil(t, run, "the update after the dump", func(txns []recTxn) bool { return len(userOnly(txns)) == 4 })
	for _, tx := range userOnly(txns) {
		c := tx.Changes[0]
		row := fmt.Sprintf("%s %s", c.Op, c.New[0].Data)
		inDump := tx.Info.Pos.Compare(d.Pos()) < 0
		wantInDump := row == "insert 2" || row == "insert 3"
		if inDump != wantInDump {
			t.Errorf("%s at %v: before the dump position %v is %v, want %v", row, tx.Info.Pos, d.Pos(), inDump, wantInDump)
		}
		if inDump && tx.Info.Commit.After(d.Time()) {
			t.Errorf("%s in the dump committed at %v, after the dump time %v", row, tx.Info.Commit, d.Time())
		}
	}
	if d.Time().IsZero() || d.Time().Location() != time.UTC {
		t.Errorf("dump time %v", d.Time())
	}
}

// TestDumpFailure checks that pg_dump gets the password only through its
// environment and that its failure, with its message, is what Close
// reports.
func TestDumpFailure(t *testing.T) {
	_, dsn := newDB(t, "fail")
	bin := t.TempDir()
	record := filepath.Join(bin, "record")
	script := `#!/bin/sh
if [ "$1" = --version ]; then echo "pg_dump (PostgreSQL) 15.0"; exit 0; fi
echo "args: $*" > ` + record + `
echo "password: $PGPASSWORD" >> ` + record + `
echo "pg_dump: error: something broke" >&2
exit 3
`
	if err := os.WriteFile(filepath.Join(bin, "pg_dump"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("postgres", "s3cret-pw")
	cfg := testConfig(t, u.String()+"&logical_decoding_work_mem=64kB")
	cfg.PGBin = bin
	d, err := Dump(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Dump: %v", err)
	}
	if _, err := io.Copy(io.Discard, d); err != nil {
		t.Fatal(err)
	}
	err = d.Close()
	if err == nil || !strings.Contains(err.Error(), "something broke") {
		t.Fatalf("Close = %v, want pg_dump's failure", err)
	}
	rec, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(rec), "\n")
	if strings.Contains(lines[0], "s3cret-pw") || !strings.Contains(lines[0], "--snapshot=") {
		t.Errorf("pg_dump command line %q: want a snapshot and no password", lines[0])
	}
	if strings.Contains(lines[0], "logical_decoding_work_mem") {
		t.Errorf("pg_dump command line %q carries a parameter libpq does not know", lines[0])
	}
	if got, want := lines[1], "password: s3cret-pw"; got != want {
		t.Errorf("pg_dump environment: %q, want %q", got, want)
	}
}
