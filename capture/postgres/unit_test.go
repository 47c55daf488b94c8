package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/segment"
)

func TestCountStatements(t *testing.T) {
	for _, c := range []struct {
		sql  string
		want int
	}{
		{"CREATE TABLE a (x int)", 1},
		{"CREATE TABLE a (x int);", 1},
		{"CREATE TABLE a (x int); CREATE TABLE b (y int)", 2},
		{"  ; ;CREATE TABLE a (x int);;  ", 1},
		{"ALTER TABLE a ADD COLUMN s text DEFAULT 'a;b'", 1},
		{"ALTER TABLE a ADD COLUMN s text DEFAULT 'it''s; fine'", 1},
		{`ALTER TABLE a ADD COLUMN s text DEFAULT E'back\'slash;'`, 1},
		{`CREATE TABLE "odd;name" (x int)`, 1},
		{"CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; SELECT 2 $$", 1},
		{"CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $body$ SELECT 1; $$; $body$; SELECT 1", 2},
		{"SELECT $1; SELECT 2", 2},
		{"CREATE TABLE a (x int) -- trailing; comment\n", 1},
		{"/* a; /* nested; */ still; */ CREATE TABLE a (x int)", 1},
		{"CREATE TABLE a (x int); INSERT INTO a VALUES (1)", 2},
		{"", 0},
	} {
		if got := countStatements(c.sql); got != c.want {
			t.Errorf("countStatements(%q) = %d, want %d", c.sql, got, c.want)
		}
	}
}

func TestDDLChange(t *testing.T) {
	d, err := parseDDL([]byte(`{"search_path": "app, public", "tag": "CREATE TABLE", "sql": "CREATE TABLE a (x int); CREATE TABLE b (x int)"}`))
	if err != nil {
		t.Fatal(err)
	}
	c := d.change
	if c.Op != segment.OpDDL || c.Schema != "app, public" || c.SQL != "CREATE TABLE a (x int); CREATE TABLE b (x int)" || d.tag != "CREATE TABLE" || d.stmts != 2 || d.created != 0 {
		t.Fatalf("got %s %q %q tag %q, %d statements, created %d", c.Op, c.Schema, c.SQL, d.tag, d.stmts, d.created)
	}
	d, err = parseDDL([]byte(`{"search_path": "public", "tag": "CREATE TABLE AS", "sql": "CREATE TABLE public.c (x integer)", "created": 16394}`))
	if err != nil || d.created != 16394 {
		t.Fatalf("created = %d, %v; want 16394", d.created, err)
	}
	for _, bad := range []string{`not json`, `{"tag": "X", "sql": "CREATE TABLE a ()"}`, `{"search_path": "", "sql": " "}`} {
		if _, err := parseDDL([]byte(bad)); err == nil {
			t.Errorf("parseDDL(%q) accepted", bad)
		}
	}
	// An empty search_path is a valid setting.
	if d, err := parseDDL([]byte(`{"search_path": "", "tag": "T", "sql": "CREATE TABLE s.a ()"}`)); err != nil || d.change.Schema != "" {
		t.Errorf("empty search_path: %q, %v", d.change.Schema, err)
	}
}

func TestIsTransient(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("plain"), false},
		{context.Canceled, false},
		{fmt.Errorf("x: %w", capture.ErrStreamLost), false},
		{capture.Permanent(errors.New("refused")), false},
		{&pgconn.PgError{Code: "57P01"}, true},
		{&pgconn.PgError{Code: "08006"}, true},
		{&pgconn.PgError{Code: "55006"}, true},
		{&pgconn.PgError{Code: "28P01"}, false},
		{&pgconn.PgError{Code: "42501"}, false},
		{fmt.Errorf("receive: %w", io.ErrUnexpectedEOF), true},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{&transientError{errors.New("slot busy")}, true},
		{streamLost("s", &pgconn.PgError{Code: "57P01"}), false},
	} {
		if got := IsTransient(c.err); got != c.want {
			t.Errorf("IsTransient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestSlotLostError(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "42704", Message: `replication slot "x" does not exist`}, true},
		{&pgconn.PgError{Code: "42704", Message: `publication "x" does not exist`}, false},
		{&pgconn.PgError{Code: "55000", Message: `cannot read from logical replication slot "x"`, Detail: "This slot has been invalidated because it exceeded the maximum reserved size."}, true},
		{&pgconn.PgError{Code: "58P01", Message: "requested WAL segment 000000010000000000000001 has already been removed"}, true},
		{&pgconn.PgError{Code: "57P01"}, false},
		{errors.New("EOF"), false},
	} {
		if got := slotLostError(c.err); got != c.want {
			t.Errorf("slotLostError(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestPgDumpConn(t *testing.T) {
	t.Setenv("PGSSLMODE", "disable")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not for pg_dump")
	args, env, err := pgDumpConn("postgres://rx:p%40ss@db.example:5433/pharmacy?sslmode=require&logical_decoding_work_mem=64kB&pool_max_conns=4", os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(args, " "), "--dbname=postgres://rx@db.example:5433/pharmacy?application_name=rxvault_dump&sslmode=require"; got != want {
		t.Errorf("args %q, want %q", got, want)
	}
	joined := strings.Join(env, "\n")
	if !strings.Contains(joined, "PGPASSWORD=p@ss") || !strings.Contains(joined, "PGSSLMODE=disable") {
		t.Errorf("environment lacks the password or the caller's PG variables: %q", env)
	}
	if strings.Contains(joined, "AWS_SECRET_ACCESS_KEY") {
		t.Errorf("environment passes unrelated secrets: %q", env)
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := Config{DSN: "postgres://u@h/db"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Slot != "rxvault" || cfg.Publication != "rxvault" || cfg.Heartbeat != DefaultHeartbeat || cfg.SpillThreshold != DefaultSpillThreshold {
		t.Errorf("defaults %+v", cfg)
	}
	for _, bad := range []Config{
		{},
		{DSN: "mysql://u@h/db"},
		{DSN: "postgres://u:secret@h/db", Slot: "Bad-Name"},
		{DSN: "postgres://u:secret@h/db", Publication: "a b"},
		{DSN: "postgres://u:secret@h/db", Tables: []string{" "}},
		{DSN: "postgres://u:secret@h/db", Heartbeat: -1},
		{DSN: "postgres://u:secret@h:notaport/db"},
		{DSN: "postgres://u:secret@h/db?sslmode=bogus"},
	} {
		_, err := bad.withDefaults()
		if err == nil {
			t.Errorf("%+v accepted", bad)
			continue
		}
		if strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "fix:") {
			t.Errorf("error %q leaks the password or lacks a fix", err)
		}
	}
}
