package main

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/rxvault/rxvault/integration/myworkload"
	"github.com/rxvault/rxvault/internal/testenv"
)

// mariadb is the demo on a private MariaDB 10.11 with the go-mysql
// workload.
type mariadb struct {
	m      *testenv.MariaDB
	conn   *client.Conn // root over the socket, database pharmacy
	w      *myworkload.Runner
	want   myworkload.State // the source at the quiet point
	ledger string           // SUM(amount) of the ledger at the quiet point
	tally  float64          // the workload's own sum of committed amounts then
}

func (*mariadb) name() string   { return "MariaDB" }
func (*mariadb) server() string { return "MariaDB 10.11 (ROW binlog, full row metadata)" }

func (e *mariadb) launch(dir string) error {
	var err error
	e.m, err = testenv.LaunchMariaDB(dir)
	return err
}

func (e *mariadb) createSource(ctx context.Context) (string, error) {
	dsn, err := e.createTarget(ctx, "pharmacy")
	if err != nil {
		return "", err
	}
	if e.conn, err = e.connect(ctx, "pharmacy"); err != nil {
		return "", err
	}
	if err := myworkload.Setup(e.conn); err != nil {
		return "", err
	}
	e.w = myworkload.NewRunner(e.conn, uint64(time.Now().UnixNano()))
	return dsn, nil
}

// connect connects as root to database db over the socket.
func (e *mariadb) connect(ctx context.Context, db string) (*client.Conn, error) {
	c, err := client.ConnectWithContext(ctx, e.m.Socket, "root", "", db, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("connect to MariaDB database %s: %w", db, err)
	}
	return c, nil
}

func (e *mariadb) shutdown() error {
	if e.conn != nil {
		e.conn.Close()
	}
	if e.m == nil {
		return nil
	}
	return e.m.Shutdown()
}

func (e *mariadb) runFor(ctx context.Context, d time.Duration) error { return e.w.RunFor(ctx, d) }
func (e *mariadb) addColumn(context.Context) error                   { return e.w.AddColumn() }
func (e *mariadb) createTable(context.Context) error                 { return e.w.CreateTable() }
func (e *mariadb) committed() int                                    { return e.w.Commits }

// quietPoint notes a point in a second of its own, as MariaDB stamps
// commits to the whole second: more than a second after the last commit
// (with heartbeats in between, carrying the AUTO_INCREMENT counters), and
// more than a second before the next.
func (e *mariadb) quietPoint(ctx context.Context) (time.Time, error) {
	if err := sleep(ctx, 1600*time.Millisecond); err != nil {
		return time.Time{}, err
	}
	at := time.Now().UTC()
	var err error
	if e.want, err = myworkload.Snapshot(e.conn); err != nil {
		return at, err
	}
	if e.ledger, err = myworkload.LedgerSum(e.conn); err != nil {
		return at, err
	}
	e.tally = e.w.Ledger
	return at, sleep(ctx, 1600*time.Millisecond)
}

// createTarget creates database name and returns the DSN rxvault uses for
// it (the private server has no TLS).
func (e *mariadb) createTarget(ctx context.Context, name string) (string, error) {
	c, err := e.m.RootConn(ctx)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if _, err := c.Execute("CREATE DATABASE `" + name + "`"); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return e.m.DSN(name) + "?tls=false", nil
}

// compare prints each table (its definition, rows and AUTO_INCREMENT
// counter together), the triggers and the ledger.
func (e *mariadb) compare(ctx context.Context, target string) ([]string, error) {
	db := target[strings.LastIndex(target, "/")+1:]
	db, _, _ = strings.Cut(db, "?")
	tconn, err := e.connect(ctx, db)
	if err != nil {
		return nil, err
	}
	defer tconn.Close()
	got, err := myworkload.Snapshot(tconn)
	if err != nil {
		return nil, err
	}
	gotLedger, err := myworkload.LedgerSum(tconn)
	if err != nil {
		return nil, err
	}
	want := e.want
	tables := map[string]bool{}
	for _, s := range []myworkload.State{want, got} {
		for k := range s {
			if t, ok := strings.CutSuffix(k, " rows"); ok {
				tables[t] = true
			}
		}
	}
	for _, t := range slices.Sorted(maps.Keys(tables)) {
		equal := true
		for _, part := range []string{" definition", " rows", " auto_increment"} {
			equal = equal && want[t+part] == got[t+part]
		}
		rows, _, _ := strings.Cut(want[t+" rows"], " ")
		if rows == "" {
			rows = "no"
		}
		row(t, equal, fmt.Sprintf("%s rows, AUTO_INCREMENT %s", rows, want[t+" auto_increment"]))
	}
	row("triggers", want["triggers"] == got["triggers"], want["triggers"])
	row("ledger SUM(amount)", gotLedger == e.ledger, fmt.Sprintf("%s (the workload's own tally at T: %.2f)", e.ledger, e.tally))
	diff := want.Diff(got)
	if gotLedger != e.ledger {
		diff = append(diff, fmt.Sprintf("ledger SUM(amount): want %s, got %s", e.ledger, gotLedger))
	}
	return diff, nil
}

func (*mariadb) equalWhat() string {
	return "table by table (definition, rows, AUTO_INCREMENT), with its triggers and its ledger"
}

// reached finds the position restore reports as the last commit restored.
var reached = regexp.MustCompile(`last commit \S+ at (\S+) \(`)

func (e *mariadb) nextSteps(out, bin, restored string) string {
	pos := "FILE:OFFSET"
	if m := reached.FindStringSubmatch(restored); m != nil {
		pos = m[1]
	}
	return fmt.Sprintf(`  %[2]s --config %[1]s/rxvault.yaml restore --position %[3]s --dry-run  # the same point by binlog position
  %[2]s --config %[1]s/rxvault.yaml restore --latest --dry-run                 # print a plan
  %[2]s --config %[1]s/rxvault.yaml restore --latest --target 'mysql://USER:PASSWORD@HOST:3306/EMPTY_DB' --identity %[1]s/keys/identity.key
  %[2]s init                                                   # your own config and keys
Then point source.dsn at your MariaDB or MySQL (mysql://USER:PASSWORD@HOST:3306/DB, with
binlog_format=ROW, binlog_row_image=FULL, binlog_row_metadata=FULL, and a user that may read it
with REPLICATION SLAVE and REPLICATION CLIENT) and archive.stores at S3 with Object Lock (see README.md).
`, out, bin, pos)
}
