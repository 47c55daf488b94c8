package randmy

import (
	"crypto/sha256"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/rxvault/rxvault/internal/testenv"
)

func connect(t *testing.T, m *testenv.MariaDB, db string) *client.Conn {
	t.Helper()
	c, err := client.Connect(m.Socket, "root", "", db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// run runs seed's setup and steps in a new database and returns a hash
// of the statements it ran.
func run(t *testing.T, m *testenv.MariaDB, seed uint64, db string, steps int) (string, *Gen) {
	t.Helper()
	m.Exec(t, "CREATE DATABASE "+db+" "+DatabaseOptions(seed))
	g := New(connect(t, m, db), seed)
	h := sha256.New()
	g.Log = func(q string) {
		fmt.Fprintf(h, "%s\x00", q)
		if testing.Verbose() && strings.Contains(q, os.Getenv("RANDMY_TRACE")) && os.Getenv("RANDMY_TRACE") != "" {
			t.Logf("%s", clip(q))
		}
	}
	if err := g.Setup(); err != nil {
		t.Fatalf("seed %d: setup: %v", seed, err)
	}
	if err := g.Run(steps, true); err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	return fmt.Sprintf("%x", h.Sum(nil)), g
}

// TestGenerator runs many seeds' workloads (without the agent): every
// statement the generator writes must succeed, a seed must replay the same
// statements on a fresh database, and the fingerprint must see what the
// workload did.
func TestGenerator(t *testing.T) {
	m := testenv.StartMariaDB(t)
	for seed := uint64(1); seed <= 8; seed++ {
		h1, g := run(t, m, seed, fmt.Sprintf("a%d", seed), 80)
		h2, _ := run(t, m, seed, fmt.Sprintf("b%d", seed), 80)
		if h1 != h2 {
			t.Errorf("seed %d ran other statements the second time", seed)
		}
		t.Logf("seed %d: %d statements, %s", seed, g.Stmts, g.Describe())
	}
}

// TestFingerprintSees changes one value of a row by the least amount and
// checks that the fingerprint changes.
func TestFingerprintSees(t *testing.T) {
	m := testenv.StartMariaDB(t)
	m.Exec(t, "CREATE DATABASE fp")
	c := connect(t, m, "fp")
	for _, q := range []string{
		`CREATE TABLE t (id INT PRIMARY KEY, d DOUBLE, f FLOAT, b VARBINARY(10), c CHAR(5) CHARACTER SET latin1,
			dt DATETIME(6), ts TIMESTAMP(6) NULL, e ENUM('a','b'), j JSON, u UUID, x DECIMAL(65,30), bits BIT(64))`,
		`INSERT INTO t VALUES (1, 0.1, 1.5, 'a', 'é', '2020-01-01 00:00:00.000001', '2020-01-01 00:00:00.000001', 'a', '{"a": 1}',
			'00000000-0000-0000-0000-000000000001', '0.000000000000000000000000000001', 1)`,
	} {
		if _, err := c.Execute(q); err != nil {
			t.Fatal(err)
		}
	}
	for _, change := range []string{
		"UPDATE t SET d = 0.10000000000000002",
		"UPDATE t SET f = 1.5000001",
		"UPDATE t SET b = X'6100'",
		"UPDATE t SET c = _latin1 X'C9'",
		"UPDATE t SET dt = '2020-01-01 00:00:00.000002'",
		"UPDATE t SET ts = '2020-01-01 00:00:00.000002'",
		"UPDATE t SET e = 'b'",
		`UPDATE t SET j = '{"a":1}'`,
		"UPDATE t SET u = '00000000-0000-0000-0000-000000000002'",
		"UPDATE t SET x = '0.000000000000000000000000000002'",
		"UPDATE t SET bits = 18446744073709551615",
		"ALTER TABLE t MODIFY c CHAR(6) CHARACTER SET latin1",
		"DELETE FROM t",
	} {
		before, _, err := Fingerprint(connect(t, m, "fp"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Execute(change); err != nil {
			t.Fatal(err)
		}
		after, _, err := Fingerprint(connect(t, m, "fp"))
		if err != nil {
			t.Fatal(err)
		}
		if len(before.Diff(after)) == 0 {
			t.Errorf("%s: the fingerprint did not change", change)
		}
	}
}
