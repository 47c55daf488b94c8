package mysql_test

import (
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/rxvault/rxvault/internal/mysqlconn"
	"github.com/rxvault/rxvault/internal/testenv"
	"github.com/rxvault/rxvault/pitr"
	"github.com/rxvault/rxvault/pitr/mysql"
	"github.com/rxvault/rxvault/pitr/pitrtest"
	"github.com/rxvault/rxvault/segment"
)

// TestContract runs the restore target contract suite on one private
// MariaDB server, a new database per case.
func TestContract(t *testing.T) {
	pitrtest.Run(t, &harness{m: testenv.StartMariaDB(t)})
}

// harness is MariaDB's pitrtest.Harness.
type harness struct {
	m   *testenv.MariaDB
	dbs atomic.Int64
}

func (h *harness) NewDatabase(t *testing.T) pitrtest.Database {
	t.Helper()
	name := fmt.Sprintf("contract_%d", h.dbs.Add(1))
	h.m.CreateDatabase(t, name)
	return &database{m: h.m, name: name}
}

func (h *harness) Table(name string) (string, *segment.Relation) {
	return "CREATE TABLE " + name + " (id INT NOT NULL PRIMARY KEY, v VARCHAR(100)) DEFAULT CHARSET = utf8mb4", &segment.Relation{
		Schema: "src", Table: name, Columns: []segment.Column{
			{Name: "id", Type: "int", TypeID: uint32(gomysql.MYSQL_TYPE_LONG), Key: true},
			{Name: "v", Type: "varchar(100)", TypeID: uint32(gomysql.MYSQL_TYPE_VARCHAR)},
		}}
}

// Row encodes as capture/mysql does: numbers as text, strings as their
// bytes.
func (h *harness) Row(id int, v string) []segment.Value {
	return []segment.Value{segment.TextValue(strconv.Itoa(id)), {Kind: segment.Binary, Data: []byte(v)}}
}

func (h *harness) TxnID(n uint64) string { return "0-1-" + strconv.FormatUint(n, 10) }

func (h *harness) Restart(t *testing.T) {
	t.Helper()
	h.m.Kill(t)
	h.m.Start(t)
}

// Refusals lists what CheckEmpty looks for but tables, which the suite
// tries itself: views, sequences, routines and events, and a trigger,
// whose table CheckEmpty finds.
func (h *harness) Refusals() []pitrtest.Refusal {
	schema := func(table, name, column string) string {
		return "SELECT " + column + " FROM information_schema." + table + " WHERE " + name + " = DATABASE()"
	}
	return []pitrtest.Refusal{
		{Name: "view", Setup: []string{"CREATE VIEW rxv_view AS SELECT 1 AS one"},
			Found: "rxv_view", Probe: schema("VIEWS", "TABLE_SCHEMA", "VIEW_DEFINITION")},
		{Name: "sequence", Setup: []string{"CREATE SEQUENCE rxv_seq START WITH 7340010"},
			Found: "rxv_seq", Probe: "SELECT next_not_cached_value FROM rxv_seq"},
		{Name: "procedure", Setup: []string{"CREATE PROCEDURE rxv_proc() SELECT 1"},
			Found: "rxv_proc", Probe: schema("ROUTINES", "ROUTINE_SCHEMA", "ROUTINE_NAME")},
		{Name: "function", Setup: []string{"CREATE FUNCTION rxv_func() RETURNS INT DETERMINISTIC RETURN 1"},
			Found: "rxv_func", Probe: "SELECT rxv_func()"},
		{Name: "package", Setup: []string{"SET sql_mode = ORACLE", "CREATE PACKAGE rxv_pkg AS FUNCTION f RETURN INT; END"},
			Found: "rxv_pkg", Probe: schema("ROUTINES", "ROUTINE_SCHEMA", "CONCAT(ROUTINE_NAME, ' ', ROUTINE_TYPE)")},
		{Name: "event", Setup: []string{"CREATE EVENT rxv_event ON SCHEDULE AT '2037-01-01 00:00:00' DO SELECT 1"},
			Found: "rxv_event", Probe: schema("EVENTS", "EVENT_SCHEMA", "EVENT_NAME")},
		{Name: "trigger", Setup: []string{"CREATE TABLE rxv_trig_t (id INT PRIMARY KEY)",
			"CREATE TRIGGER rxv_trig BEFORE INSERT ON rxv_trig_t FOR EACH ROW SET NEW.id = NEW.id"},
			Found: "rxv_trig_t", Probe: schema("TRIGGERS", "TRIGGER_SCHEMA", "TRIGGER_NAME")},
	}
}

// database is one database of the harness's server.
type database struct {
	m    *testenv.MariaDB
	name string
}

func (d *database) Open(t *testing.T) pitr.Target {
	t.Helper()
	tg, err := mysql.Open(t.Context(), mysql.Config{DSN: d.m.DSN(d.name) + "?tls=false", Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return tg
}

// connect connects as root over the socket, in the database; the caller
// closes the connection.
func (d *database) connect(t *testing.T) *client.Conn {
	t.Helper()
	c, err := d.m.RootConn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UseDB(d.name); err != nil {
		c.Close()
		t.Fatal(err)
	}
	return c
}

func (d *database) Exec(t *testing.T, statements ...string) {
	t.Helper()
	c := d.connect(t)
	defer c.Close()
	for _, s := range statements {
		if _, err := c.Execute(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func (d *database) Query(t *testing.T, query string) [][]string {
	t.Helper()
	c := d.connect(t)
	defer c.Close()
	rows, err := mysqlconn.QueryRows(c, query)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}
