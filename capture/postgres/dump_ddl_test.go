package postgres

import (
	"context"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pglogrepl"

	"github.com/rxvault/rxvault/integration/randpg"
	pitrpg "github.com/rxvault/rxvault/pitr/postgres"
	"github.com/rxvault/rxvault/segment"
)

// TestDumpUnderDDL commits DDL after the dump's position (the temporary
// slot's consistent point, whose snapshot pg_dump dumps) but before
// pg_dump has locked the tables: a table rewrite (ALTER COLUMN TYPE), a
// swap of two column names, a column dropped and added again with another
// type (in one transaction), an index dropped and created again
// (pg_get_indexdef finds no index under the old oid, so the dump lacks it
// and the replayed DROP INDEX fails), a sequence restarted. pg_dump
// reads the catalogs under the snapshot, but pg_get_indexdef and COPY
// (which uses the table's current columns and file) see the latest state,
// so such a dump would mix both, and replaying the DDL after the position
// cannot repair it. The restore (pg_restore of the dump, then every
// streamed transaction at or after Pos, through pitr/postgres) must equal
// the source, compared by fingerprints computed in SQL on both databases
// (randpg.Fingerprint, which shares nothing with rxvault's decoding).
//
// The window is deterministic: the DDL runs from a hook between the
// slot's creation and pg_dump's start (the first time only, should Dump
// try again).
func TestDumpUnderDDL(t *testing.T) {
	pg, dsn := newDB(t, "src")
	conn := connect(t, dsn)
	ctx := context.Background()
	execAll(t, conn,
		`CREATE TABLE gate (id int PRIMARY KEY)`,
		`CREATE TABLE rewritten (id int PRIMARY KEY, v int)`,
		`CREATE INDEX rewritten_v ON rewritten (v)`,
		`INSERT INTO rewritten SELECT g, g * 10 FROM generate_series(1, 50) g`,
		`CREATE TABLE swapped (id int PRIMARY KEY, a text, b text)`,
		`INSERT INTO swapped SELECT g, 'a' || g, 'b' || g FROM generate_series(1, 50) g`,
		`CREATE TABLE replaced (id int PRIMARY KEY, y xml)`,
		`INSERT INTO replaced SELECT g, xmlparse(content '<v>' || g || '</v>') FROM generate_series(1, 50) g`,
		`CREATE TABLE indexed (id int PRIMARY KEY, v int)`,
		`CREATE INDEX indexed_v ON indexed (v)`,
		`INSERT INTO indexed SELECT g, g FROM generate_series(1, 50) g`,
		`CREATE SEQUENCE counter`,
		`SELECT nextval('counter') FROM generate_series(1, 5)`,
	)
	cfg := testConfig(t, dsn)
	r := openReader(t, cfg)
	sink := newRecSink()
	run := start(t, r, sink)

	ddl := connect(t, dsn)
	ran := 0
	cfg.dumpSlotCreated = func(ctx context.Context) error {
		ran++
		if ran > 1 {
			return nil
		}
		execAll(t, ddl,
			`ALTER TABLE rewritten ALTER COLUMN v TYPE bigint`,
			`BEGIN`,
			`ALTER TABLE swapped RENAME COLUMN a TO tmp`,
			`ALTER TABLE swapped RENAME COLUMN b TO a`,
			`ALTER TABLE swapped RENAME COLUMN tmp TO b`,
			`COMMIT`,
			`BEGIN`,
			`ALTER TABLE replaced DROP COLUMN y`,
			`ALTER TABLE replaced ADD COLUMN y timestamptz[]`,
			`COMMIT`,
			`UPDATE replaced SET y = ARRAY['2024-05-06 07:08:09+00'::timestamptz] WHERE id % 2 = 0`,
			`DROP INDEX indexed_v`,
			`CREATE INDEX indexed_v ON indexed (v DESC)`,
			`ALTER SEQUENCE counter RESTART WITH 1000`,
		)
		return nil
	}
	d, err := Dump(ctx, cfg)
	if err != nil {
		t.Fatalf("Dump: %v", err)
	}
	file := filepath.Join(t.TempDir(), "base.dump")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadFrom(d); err != nil {
		t.Fatalf("read dump: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("dump Close: %v", err)
	}
	if ran == 0 {
		t.Fatal("the hook did not run")
	}

	// Rows after the dump, then wait for a heartbeat (it carries the
	// sequences) committed after them.
	execAll(t, conn,
		`INSERT INTO gate VALUES (1)`,
		`INSERT INTO rewritten VALUES (51, 5000000000)`,
		`INSERT INTO swapped VALUES (51, 'b51', 'a51')`,
		`INSERT INTO replaced (id) VALUES (51)`,
		`INSERT INTO indexed VALUES (51, 51)`,
	)
	var lsn string
	if err := conn.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	after, err := pglogrepl.ParseLSN(lsn)
	if err != nil {
		t.Fatal(err)
	}
	txns := sink.waitUntil(t, run, "a heartbeat after the last rows", func(txns []recTxn) bool {
		return len(txns) > 0 && !txns[len(txns)-1].user() && txns[len(txns)-1].Info.Pos.Compare(segment.Position{Lo: uint64(after)}) > 0
	})
	want, err := randpg.Fingerprint(ctx, connect(t, dsn))
	if err != nil {
		t.Fatal(err)
	}

	restored := pg.CreateDatabase(t, "restored")
	tgt, err := pitrpg.Open(ctx, pitrpg.Config{DSN: restored, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close(ctx)
	if err := tgt.CheckEmpty(ctx); err != nil {
		t.Fatal(err)
	}
	df, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer df.Close()
	if err := tgt.RestoreBase(ctx, df); err != nil {
		t.Fatalf("RestoreBase: %v", err)
	}
	for _, tx := range txns {
		if tx.Info.Pos.Compare(d.Pos()) < 0 {
			continue
		}
		if err := tgt.Apply(ctx, &tx.Info, changesOf(tx)); err != nil {
			t.Fatalf("Apply %s: %v", tx.Info.ID, err)
		}
	}
	if err := tgt.Finish(ctx); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	got, err := randpg.Fingerprint(ctx, connect(t, restored))
	if err != nil {
		t.Fatal(err)
	}
	if diff := want.Diff(got); len(diff) > 0 {
		t.Errorf("the dump taken under DDL, with the stream after its position replayed, differs from the source:\n  %s", strings.Join(diff, "\n  "))
	}
}

// changesOf yields a recorded transaction's changes.
func changesOf(tx recTxn) iter.Seq2[*segment.Change, error] {
	return func(yield func(*segment.Change, error) bool) {
		for i := range tx.Changes {
			if !yield(&tx.Changes[i], nil) {
				return
			}
		}
	}
}
