package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rxvault/rxvault/internal/testenv"
	"github.com/rxvault/rxvault/pitr"
	"github.com/rxvault/rxvault/pitr/pitrtest"
	"github.com/rxvault/rxvault/pitr/postgres"
	"github.com/rxvault/rxvault/segment"
)

// TestContract runs the restore target contract suite on one private
// PostgreSQL server, a new database per case.
func TestContract(t *testing.T) {
	pitrtest.Run(t, &harness{pg: testenv.StartPostgres(t)})
}

// harness is PostgreSQL's pitrtest.Harness.
type harness struct {
	pg  *testenv.Postgres
	dbs atomic.Int64
}

// Type OIDs of the suite's table, as pgoutput sends them.
const (
	oidInt4 = 23
	oidText = 25
)

func (h *harness) NewDatabase(t *testing.T) pitrtest.Database {
	t.Helper()
	return &database{dsn: h.pg.CreateDatabase(t, fmt.Sprintf("contract_%d", h.dbs.Add(1)))}
}

func (h *harness) Table(name string) (string, *segment.Relation) {
	return "CREATE TABLE " + name + " (id integer PRIMARY KEY, v text)", &segment.Relation{
		Schema: "public", Table: name, Columns: []segment.Column{
			{Name: "id", Type: "integer", TypeID: oidInt4, Key: true},
			{Name: "v", Type: "text", TypeID: oidText},
		}}
}

func (h *harness) Row(id int, v string) []segment.Value {
	return []segment.Value{segment.TextValue(strconv.Itoa(id)), segment.TextValue(v)}
}

func (h *harness) TxnID(n uint64) string { return strconv.FormatUint(n, 10) }

func (h *harness) Restart(t *testing.T) {
	t.Helper()
	h.pg.Kill(t)
	h.pg.Start(t)
}

// Refusals lists every kind of object CheckEmpty looks for (see
// userObjectsSQL), but tables, which the suite tries itself.
func (h *harness) Refusals() []pitrtest.Refusal {
	rel := func(kind, name string) string {
		return "SELECT relname FROM pg_class WHERE relkind = '" + kind + "' AND relname = '" + name + "'"
	}
	typ := func(name string) string { return "SELECT typname FROM pg_type WHERE typname = '" + name + "'" }
	return []pitrtest.Refusal{
		{Name: "schema", Setup: []string{"CREATE SCHEMA rxv_schema"},
			Found: "rxv_schema", Probe: "SELECT nspname FROM pg_namespace WHERE nspname = 'rxv_schema'"},
		{Name: "partitioned table", Setup: []string{"CREATE TABLE rxv_parted (id int) PARTITION BY RANGE (id)"},
			Found: "public.rxv_parted", Probe: rel("p", "rxv_parted")},
		{Name: "view", Setup: []string{"CREATE VIEW rxv_view AS SELECT 1 AS one"},
			Found: "public.rxv_view", Probe: rel("v", "rxv_view")},
		{Name: "materialized view", Setup: []string{"CREATE MATERIALIZED VIEW rxv_matview AS SELECT 1 AS one"},
			Found: "public.rxv_matview", Probe: "SELECT one FROM rxv_matview"},
		{Name: "sequence", Setup: []string{"CREATE SEQUENCE rxv_seq START 7340010"},
			Found: "public.rxv_seq", Probe: "SELECT last_value, is_called FROM rxv_seq"},
		{Name: "foreign table", Setup: []string{"CREATE FOREIGN DATA WRAPPER rxv_fdw", "CREATE SERVER rxv_server FOREIGN DATA WRAPPER rxv_fdw",
			"CREATE FOREIGN TABLE rxv_foreign (id int) SERVER rxv_server"},
			Found: "public.rxv_foreign", Probe: rel("f", "rxv_foreign")},
		{Name: "foreign-data wrapper", Setup: []string{"CREATE FOREIGN DATA WRAPPER rxv_fdw"},
			Found: "rxv_fdw", Probe: "SELECT fdwname FROM pg_foreign_data_wrapper WHERE fdwname = 'rxv_fdw'"},
		{Name: "foreign server", Setup: []string{"CREATE FOREIGN DATA WRAPPER rxv_fdw", "CREATE SERVER rxv_server FOREIGN DATA WRAPPER rxv_fdw"},
			Found: "rxv_server", Probe: "SELECT srvname FROM pg_foreign_server WHERE srvname = 'rxv_server'"},
		{Name: "composite type", Setup: []string{"CREATE TYPE rxv_composite AS (a int)"},
			Found: "rxv_composite", Probe: typ("rxv_composite")},
		{Name: "enum type", Setup: []string{"CREATE TYPE rxv_enum AS ENUM ('a')"},
			Found: "rxv_enum", Probe: "SELECT enumlabel FROM pg_enum WHERE enumtypid = 'rxv_enum'::regtype"},
		{Name: "domain", Setup: []string{"CREATE DOMAIN rxv_domain AS int"},
			Found: "rxv_domain", Probe: typ("rxv_domain")},
		{Name: "range type", Setup: []string{"CREATE TYPE rxv_range AS RANGE (SUBTYPE = float8)"},
			Found: "rxv_range", Probe: typ("rxv_range")},
		{Name: "function", Setup: []string{"CREATE FUNCTION rxv_func() RETURNS int LANGUAGE sql AS 'SELECT 1'"},
			Found: "public.rxv_func", Probe: "SELECT rxv_func()"},
		{Name: "procedure", Setup: []string{"CREATE PROCEDURE rxv_proc() LANGUAGE sql AS 'SELECT 1'"},
			Found: "public.rxv_proc", Probe: "SELECT proname FROM pg_proc WHERE proname = 'rxv_proc'"},
		{Name: "aggregate", Setup: []string{"CREATE AGGREGATE rxv_agg(int) (SFUNC = int4pl, STYPE = int)"},
			Found: "public.rxv_agg", Probe: "SELECT rxv_agg(x) FROM generate_series(1, 3) x"},
		{Name: "extension", Setup: []string{"CREATE EXTENSION citext"},
			Found: "citext", Probe: "SELECT extname FROM pg_extension WHERE extname = 'citext'"},
		{Name: "event trigger", Setup: []string{"CREATE FUNCTION rxv_evt_fn() RETURNS event_trigger LANGUAGE plpgsql AS 'BEGIN END'",
			"CREATE EVENT TRIGGER rxv_evt ON ddl_command_end EXECUTE FUNCTION rxv_evt_fn()"},
			Found: "rxv_evt", Probe: "SELECT evtname FROM pg_event_trigger WHERE evtname = 'rxv_evt'"},
		{Name: "publication", Setup: []string{"CREATE PUBLICATION rxv_pub"},
			Found: "rxv_pub", Probe: "SELECT pubname FROM pg_publication WHERE pubname = 'rxv_pub'"},
		{Name: "subscription", Setup: []string{"CREATE SUBSCRIPTION rxv_sub CONNECTION 'dbname=rxv_nowhere' PUBLICATION rxv_pub WITH (connect = false)"},
			Found: "rxv_sub", Probe: "SELECT subname FROM pg_subscription WHERE subname = 'rxv_sub'"},
		{Name: "large object", Setup: []string{"SELECT lo_create(7340077)"},
			Found: "7340077", Probe: "SELECT oid FROM pg_largeobject_metadata WHERE oid = 7340077"},
		{Name: "operator", Setup: []string{"CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = int4eq)"},
			Found: "public.===", Probe: "SELECT 1 === 1"},
		{Name: "operator family", Setup: []string{"CREATE OPERATOR FAMILY rxv_opfamily USING btree"},
			Found: "public.rxv_opfamily", Probe: "SELECT opfname FROM pg_opfamily WHERE opfname = 'rxv_opfamily'"},
		{Name: "collation", Setup: []string{`CREATE COLLATION rxv_coll FROM "C"`},
			Found: "public.rxv_coll", Probe: "SELECT collname FROM pg_collation WHERE collname = 'rxv_coll'"},
		{Name: "conversion", Setup: []string{"CREATE CONVERSION rxv_conv FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8"},
			Found: "public.rxv_conv", Probe: "SELECT conname FROM pg_conversion WHERE conname = 'rxv_conv'"},
		{Name: "text search configuration", Setup: []string{"CREATE TEXT SEARCH CONFIGURATION rxv_tsconfig (COPY = simple)"},
			Found: "public.rxv_tsconfig", Probe: "SELECT to_tsvector('rxv_tsconfig', 'word')"},
		{Name: "text search dictionary", Setup: []string{"CREATE TEXT SEARCH DICTIONARY rxv_tsdict (TEMPLATE = simple)"},
			Found: "public.rxv_tsdict", Probe: "SELECT dictname FROM pg_ts_dict WHERE dictname = 'rxv_tsdict'"},
		{Name: "cast", Setup: []string{"CREATE TYPE rxv_casted AS (a int)", "CREATE CAST (rxv_casted AS int) WITH INOUT"},
			Found: "rxv_casted AS integer", Probe: "SELECT castmethod FROM pg_cast WHERE castsource = 'rxv_casted'::regtype"},
		{Name: "language", Setup: []string{"CREATE LANGUAGE rxv_lang HANDLER plpgsql_call_handler"},
			Found: "rxv_lang", Probe: "SELECT lanname FROM pg_language WHERE lanname = 'rxv_lang'"},
		{Name: "access method", Setup: []string{"CREATE ACCESS METHOD rxv_am TYPE INDEX HANDLER bthandler"},
			Found: "rxv_am", Probe: "SELECT amname FROM pg_am WHERE amname = 'rxv_am'"},
	}
}

// database is one database of the harness's server.
type database struct{ dsn string }

func (d *database) Open(t *testing.T) pitr.Target {
	t.Helper()
	tg, err := postgres.Open(t.Context(), postgres.Config{DSN: d.dsn, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return tg
}

// connect opens a plain connection, closed before the call returns.
func (d *database) connect(t *testing.T) *pgconn.PgConn {
	t.Helper()
	conn, err := pgconn.Connect(t.Context(), d.dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	return conn
}

func (d *database) Exec(t *testing.T, statements ...string) {
	t.Helper()
	conn := d.connect(t)
	defer conn.Close(context.Background())
	for _, s := range statements {
		if _, err := conn.Exec(t.Context(), s).ReadAll(); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func (d *database) Query(t *testing.T, query string) [][]string {
	t.Helper()
	conn := d.connect(t)
	defer conn.Close(context.Background())
	res, err := conn.Exec(t.Context(), query).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	if len(res) != 1 {
		t.Fatalf("%s: %d results, want 1", query, len(res))
	}
	var out [][]string
	for _, r := range res[0].Rows {
		row := make([]string, len(r))
		for i, v := range r {
			row[i] = string(v)
		}
		out = append(out, row)
	}
	return out
}
