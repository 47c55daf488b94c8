package postgres

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/rxvault/rxvault/segment"
)

// TestFinishSequences: Finish sets each captured sequence to its latest
// value from committed transactions, exactly (is_called too, quoted names
// too), skips captured sequences that no longer exist, and raises a
// sequence owned by a column (SERIAL, IDENTITY, OWNED BY; ascending or
// descending) whose next value the column already holds.
func TestFinishSequences(t *testing.T) {
	_, _, dsn := newServer(t)
	conn := connect(t, dsn)
	run(t, conn, `
CREATE SEQUENCE plain;
CREATE SEQUENCE notcalled;
CREATE SEQUENCE "Mixed Case";
CREATE SEQUENCE untouched START 77;
CREATE TABLE orders (id serial PRIMARY KEY);
CREATE TABLE ahead (id serial PRIMARY KEY);
CREATE TABLE empty_owner (id serial PRIMARY KEY);
CREATE TABLE ident (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY);
CREATE TABLE down_t (id int PRIMARY KEY);
CREATE SEQUENCE down INCREMENT -1 START -1 MINVALUE -1000 MAXVALUE -1 OWNED BY down_t.id;
CREATE TABLE not_int (code text);
CREATE SEQUENCE text_owned OWNED BY not_int.code;
`)
	tg := openTarget(t, dsn)
	ctx := context.Background()
	rel := func(table string) *segment.Relation {
		return &segment.Relation{Schema: "public", Table: table, Columns: []segment.Column{col("id", oidInt4, true)}}
	}
	rows := func(table string, ids ...int) []segment.Change {
		var cs []segment.Change
		for _, id := range ids {
			cs = append(cs, insert(rel(table), tv(fmt.Sprint(id))))
		}
		return cs
	}
	mustApply(t, tg, message("rxvault.sequences", `{"public.plain": {"last_value": "10", "is_called": true}}`))
	mustApply(t, tg, append(append(append(append(
		rows("orders", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
		rows("ahead", 1, 2, 3)...),
		rows("ident", 1, 2, 3)...),
		rows("down_t", -1, -2, -3, -4, -5)...),
		message("rxvault.heartbeat", "2024-03-01 12:00:00+00"),
		message("rxvault.sequences", `{"public.plain": {"last_value": "42", "is_called": true},
			"public.notcalled": {"last_value": "5", "is_called": false},
			"public.\"Mixed Case\"": {"last_value": "33", "is_called": true},
			"public.orders_id_seq": {"last_value": "5", "is_called": true},
			"public.ahead_id_seq": {"last_value": "100", "is_called": true},
			"public.empty_owner_id_seq": {"last_value": "8", "is_called": false},
			"public.down": {"last_value": "-3", "is_called": true},
			"public.gone_seq": {"last_value": "1", "is_called": true}}`),
	)...)
	// A transaction that fails, alone in its group: its sequence values
	// must not count.
	commitGroup(t, tg)
	err := applyCommit(ctx, tg,
		message("rxvault.sequences", `{"public.plain": {"last_value": "999", "is_called": true}}`),
		update(rel("orders"), tv("12345")))
	if err == nil {
		t.Fatal("Apply of a transaction updating a missing row succeeded")
	}
	if err := tg.Finish(ctx); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	want := map[string]string{
		"plain":              "42/true",
		"notcalled":          "5/false",
		`"Mixed Case"`:       "33/true",
		"untouched":          "77/false",
		"orders_id_seq":      "10/true", // raised: rows 6..10 came after the capture
		"ahead_id_seq":       "100/true",
		"empty_owner_id_seq": "8/false",
		"ident_id_seq":       "3/true",  // never captured, raised to the column's max
		"down":               "-5/true", // descending: lowered to the column's min
		"text_owned":         "1/false",
	}
	for seq, w := range want {
		if got := sequenceState(t, conn, seq); got != w {
			t.Errorf("sequence %s: got %s, want %s", seq, got, w)
		}
	}
	if err := apply(ctx, tg, rows("orders", 11)...); err == nil || !strings.Contains(err.Error(), "already finished") {
		t.Errorf("Apply after Finish: %v, want an error saying the restore is finished", err)
	}
}

// TestFinishBadSequencesMessage: a sequences message that cannot be read
// fails its transaction instead of being ignored, and so do a DDL session
// naming a setting replay does not know and an rxvault message this
// version does not know; an application's own message changes nothing.
func TestFinishBadSequencesMessage(t *testing.T) {
	_, _, dsn := newServer(t)
	tg := openTarget(t, dsn)
	for _, content := range []string{`not json`, `{"public.s": {"last_value": "x1", "is_called": true}}`, `{"public.s": {"last_value": "1"}}`} {
		err := apply(context.Background(), tg, message("rxvault.sequences", content))
		if err == nil || !strings.Contains(err.Error(), "bad sequences message") {
			t.Errorf("sequences message %q: got %v, want an error", content, err)
		}
	}
	for _, c := range []struct{ prefix, content, want string }{
		{"rxvault.ddl_session", `{"settings": {"work_mem": "1GB"}}`, "not one this rxvault replays DDL under"},
		{"rxvault.ddl_session", `not json`, "message rxvault.ddl_session"},
		{"rxvault.vacuum_hint", `{}`, "not one this rxvault knows"},
	} {
		if err := apply(context.Background(), tg, message(c.prefix, c.content)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("message %s %s: got %v, want an error saying %q", c.prefix, c.content, err, c.want)
		}
	}
	if err := apply(context.Background(), tg, message("app.audit", `anything`)); err != nil {
		t.Errorf("an application's message: %v", err)
	}
}

// TestFinishEventTriggerFunctionDropped: an event trigger whose function a
// replayed DDL statement dropped (with CASCADE, which on the source
// dropped the trigger too) is not created; the others are.
func TestFinishEventTriggerFunctionDropped(t *testing.T) {
	_, srcDSN, targetDSN := newServer(t)
	run(t, connect(t, srcDSN), sourceSchema)
	target := connect(t, targetDSN)
	tg := openTarget(t, targetDSN)
	ctx := context.Background()
	if err := dumpInto(t, srcDSN, func(r io.Reader) error { return tg.RestoreBase(ctx, r) }); err != nil {
		t.Fatalf("RestoreBase: %v", err)
	}
	mustApply(t, tg, ddl("public", "DROP FUNCTION audit_ddl() CASCADE"))
	if err := tg.Finish(ctx); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	got := eventTriggers(t, target)
	if strings.Contains(got, "user_ddl") || !strings.Contains(got, "rxvault_ddl") || !strings.Contains(got, "disabled one") {
		t.Errorf("event triggers after Finish: %s; want rxvault_ddl and \"disabled one\", not user_ddl", got)
	}
}
