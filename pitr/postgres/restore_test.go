package postgres

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/rxvault/rxvault/segment"
)

// sourceSchema is a source database as rxvault captures it: rxvault's DDL
// event triggers (ENABLE ALWAYS, emitting logical messages), a user's DDL
// audit event trigger (ENABLE ALWAYS, writing rows), tables of many types,
// sequences, a view, a materialized view (pg_restore refreshes it last,
// which fires ddl_command_end triggers), functions, a type.
const sourceSchema = `
CREATE SCHEMA rxvault;
CREATE FUNCTION rxvault.ddl_command_end() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_catalog.pg_logical_emit_message(true, 'rxvault.ddl',
		pg_catalog.json_build_object('search_path', current_setting('search_path'), 'tag', tg_tag, 'sql', current_query())::text);
END $$;
CREATE EVENT TRIGGER rxvault_ddl ON ddl_command_end EXECUTE FUNCTION rxvault.ddl_command_end();
ALTER EVENT TRIGGER rxvault_ddl ENABLE ALWAYS;
COMMENT ON EVENT TRIGGER rxvault_ddl IS 'rxvault DDL capture';

CREATE TABLE ddl_audit (id serial PRIMARY KEY, tag text, at_restore bool DEFAULT false);
CREATE FUNCTION audit_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.ddl_audit (tag) VALUES (tg_tag); END $$;
CREATE EVENT TRIGGER user_ddl ON ddl_command_end EXECUTE FUNCTION audit_ddl();
ALTER EVENT TRIGGER user_ddl ENABLE ALWAYS;
CREATE FUNCTION off_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disabled'; END $$;
CREATE EVENT TRIGGER "disabled one" ON ddl_command_start EXECUTE FUNCTION off_ddl();
ALTER EVENT TRIGGER "disabled one" DISABLE;

CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE patients (id bigserial PRIMARY KEY, name text NOT NULL, m mood, born date, weight numeric(6,2),
  doc jsonb, photo bytea, tags text[], seen timestamptz);
CREATE TABLE fills (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, patient bigint REFERENCES patients,
  qty int CHECK (qty > 0), note text);
CREATE SEQUENCE rx_numbers START 1000 INCREMENT 7;
CREATE SEQUENCE untouched;
CREATE TABLE bulk (id int PRIMARY KEY, payload text);
CREATE VIEW patient_fills AS SELECT p.name, count(f.id) AS fills FROM patients p LEFT JOIN fills f ON f.patient = p.id GROUP BY p.name;
CREATE MATERIALIZED VIEW fill_totals AS SELECT patient, sum(qty) AS total FROM fills GROUP BY patient;
CREATE FUNCTION age_of(d date) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT extract(year FROM age(d))::int $$;
CREATE TRIGGER no_op BEFORE UPDATE ON patients FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();

INSERT INTO patients (name, m, born, weight, doc, photo, tags, seen)
SELECT 'patient ' || g, (ARRAY['sad','ok','happy'])[g % 3 + 1]::mood, date '1950-01-01' + g, g / 7.0,
       jsonb_build_object('g', g, 'half', g / 2.0), decode(md5(g::text), 'hex'), ARRAY['t' || g, NULL],
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute'
  FROM generate_series(1, 500) g;
INSERT INTO fills (patient, qty, note) SELECT g % 500 + 1, g % 9 + 1, CASE WHEN g % 5 = 0 THEN NULL ELSE 'n' || g END
  FROM generate_series(1, 2000) g;
INSERT INTO bulk SELECT g, repeat(md5(g::text), 64) FROM generate_series(1, 15000) g;
SELECT nextval('rx_numbers') FROM generate_series(1, 3);
REFRESH MATERIALIZED VIEW fill_totals;
SELECT lo_from_bytea(777, 'large object bytes');
`

// dumpInto streams pg_dump -Fc -Z0 of srcDSN through an io.Pipe into f, as
// a restore does (the dump is never a file).
func dumpInto(t *testing.T, srcDSN string, f func(io.Reader) error) error {
	t.Helper()
	pr, pw := io.Pipe()
	cmd := exec.Command(filepath.Join(DefaultPGBin, "pg_dump"), "-Fc", "-Z0",
		"--no-publications", "--no-subscriptions", "--dbname", srcDSN)
	cmd.Stdout = pw
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		pw.CloseWithError(err) // nil: EOF
		done <- err
	}()
	err := f(pr)
	pr.CloseWithError(errors.New("reader done")) // unblocks pg_dump if f stopped early
	if derr := <-done; derr != nil && err == nil {
		t.Fatalf("pg_dump: %v: %s", derr, stderr.String())
	}
	return err
}

// eventTriggers describes a database's event triggers.
func eventTriggers(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT evtname || ' ' || evtevent || ' ' || evtenabled::text || ' ' ||
		evtfoid::regproc::text || ' ' || coalesce(obj_description(oid, 'pg_event_trigger'), '-')
		FROM pg_event_trigger ORDER BY evtname`)
	if err != nil {
		t.Fatal(err)
	}
	list, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(list, "; ")
}

// sequenceStates returns every user sequence's state.
func sequenceStates(t *testing.T, conn *pgx.Conn) map[string]string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT format('%I.%I', schemaname, sequencename) FROM pg_sequences ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range names {
		out[n] = sequenceState(t, conn, n)
	}
	return out
}

// schemaDump returns pg_dump --schema-only of dsn without owners,
// privileges and pg_dump's own comments and psql meta-commands.
func schemaDump(t *testing.T, dsn string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(DefaultPGBin, "pg_dump"), "--schema-only", "--no-owner", "--no-privileges", "--dbname", dsn).Output()
	if err != nil {
		t.Fatalf("pg_dump --schema-only: %v", err)
	}
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "--") || strings.HasPrefix(l, `\`) {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// TestRestoreBase restores a streamed dump whose source has event
// triggers, then replays DDL, then finishes: the target first equals the
// source (every table's rows, every sequence's state, without the restore
// firing any event trigger); replayed DDL fires none of them (no audit
// row, no logical message); Finish creates them as they were, working.
func TestRestoreBase(t *testing.T) {
	pg, srcDSN, targetDSN := newServer(t)
	src, target := connect(t, srcDSN), connect(t, targetDSN)
	run(t, src, sourceSchema)
	ctx := context.Background()
	tg := openTarget(t, targetDSN)
	if err := tg.CheckEmpty(ctx); err != nil {
		t.Fatal(err)
	}

	// The first pass reads the table of contents only: it keeps far less
	// than the dump.
	var size int64
	err := dumpInto(t, srcDSN, func(r io.Reader) error {
		_, head, err := tg.readTOC(ctx, r)
		if err != nil {
			return err
		}
		rest, err := io.Copy(io.Discard, r)
		size = int64(len(head)) + rest
		if len(head) > 2<<20 || int64(len(head))*10 > size {
			t.Errorf("the TOC pass kept %d bytes of a %d-byte dump", len(head), size)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	if err := dumpInto(t, srcDSN, func(r io.Reader) error { return tg.RestoreBase(ctx, r) }); err != nil {
		t.Fatalf("RestoreBase: %v", err)
	}
	if got, want := tg.Stats().BytesRestored, size; got != want {
		t.Errorf("Stats().BytesRestored = %d, want the dump's %d bytes", got, want)
	}
	compareTables(t, src, target)
	for name, want := range sequenceStates(t, src) {
		if got := sequenceStates(t, target)[name]; got != want {
			t.Errorf("sequence %s: got %s, want %s", name, got, want)
		}
	}
	if got := eventTriggers(t, target); got != "" {
		t.Errorf("event triggers after RestoreBase: %s, want none until Finish", got)
	}
	var lo string
	if err := target.QueryRow(ctx, "SELECT convert_from(lo_get(777), 'UTF8')").Scan(&lo); err != nil || lo != "large object bytes" {
		t.Errorf("large object 777: %q, %v", lo, err)
	}

	// Replay DDL: no event trigger may fire. A logical slot on the target
	// would see rxvault's messages.
	auditRows := func() int {
		var n int
		if err := target.QueryRow(ctx, "SELECT count(*) FROM ddl_audit").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	ddlMessages := func() int {
		var n int
		if err := target.QueryRow(ctx, "SELECT count(*) FROM pg_logical_slot_get_changes('watch', NULL, NULL) WHERE data LIKE '%rxvault.ddl%'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	audits := auditRows() // the source's own, restored
	run(t, target, `SELECT pg_create_logical_replication_slot('watch', 'test_decoding')`)
	const ddlSQL = "CREATE TABLE after_base (id int PRIMARY KEY, m mood); ALTER TABLE patients ADD COLUMN allergy text"
	patients := &segment.Relation{Schema: "public", Table: "patients", Columns: []segment.Column{
		col("id", oidInt8, true), col("name", 25, false), col("allergy", 25, false)}}
	mustApply(t, tg,
		ddl(`"$user", public`, ddlSQL),
		segment.Change{Op: segment.OpUpdate, Rel: patients, New: []segment.Value{tv("1"), tv("patient 1"), tv("penicillin")}},
	)
	commitGroup(t, tg) // what follows reads what the group did
	run(t, src, "SET search_path = public; "+ddlSQL+"; UPDATE patients SET allergy = 'penicillin' WHERE id = 1")
	if got, msgs := auditRows()-audits, ddlMessages(); got != 0 || msgs != 0 {
		t.Errorf("replayed DDL fired event triggers: %d new audit rows, %d rxvault.ddl messages; want none", got, msgs)
	}

	if err := tg.Finish(ctx); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if got, want := eventTriggers(t, target), eventTriggers(t, src); got != want {
		t.Errorf("event triggers after Finish:\n got %s\nwant %s", got, want)
	}
	if got, want := schemaDump(t, targetDSN), schemaDump(t, srcDSN); got != want {
		t.Errorf("schemas differ after Finish:\n--- target\n%s\n--- source\n%s", got, want)
	}
	// The recreated triggers work: DDL run directly on the restored
	// database fires both.
	run(t, target, "CREATE TABLE later (id int)")
	if got, msgs := auditRows()-audits, ddlMessages(); got != 1 || msgs != 1 {
		t.Errorf("DDL after Finish: %d new audit rows, %d rxvault.ddl messages; want 1 and 1", got, msgs)
	}
	run(t, target, `SELECT pg_drop_replication_slot('watch')`)
	_ = pg
}

// TestRestoreBaseFailures: a stream that is not a custom archive, a
// truncated archive, and a restore into a database that already holds the
// objects all fail with one line naming pg_restore's error.
func TestRestoreBaseFailures(t *testing.T) {
	pg, srcDSN, targetDSN := newServer(t)
	src := connect(t, srcDSN)
	run(t, src, `CREATE TABLE t (id int PRIMARY KEY, secret text); INSERT INTO t SELECT g, 'SECRET-' || g FROM generate_series(1, 20000) g`)
	ctx := context.Background()

	var dump bytes.Buffer
	if err := dumpInto(t, srcDSN, func(r io.Reader) error { _, err := io.Copy(&dump, r); return err }); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		input []byte
		dsn   string
		want  string
	}{
		{"not an archive", []byte("SELECT 1;\n"), targetDSN, "read the archive's table of contents: pg_restore:"},
		{"truncated", dump.Bytes()[:dump.Len()/2], pg.CreateDatabase(t, "t2"), "restore base backup into"},
		{"objects exist", dump.Bytes(), srcDSN, `relation "t" already exists`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tg := openTarget(t, c.dsn)
			err := tg.RestoreBase(ctx, bytes.NewReader(c.input))
			if err == nil {
				t.Fatal("RestoreBase succeeded")
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") || strings.Contains(msg, "SECRET") {
				t.Errorf("RestoreBase: %q, want one line containing %q and no row data", msg, c.want)
			}
		})
	}
}
