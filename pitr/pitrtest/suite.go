// Package pitrtest is the contract suite every restore target
// (pitr.Target) must pass, run by each engine against its real server:
// Apply is atomic, a failed group rolls back to the last committed one
// and names the failed transaction, Finish leaves exactly the applied
// rows durable, and CheckEmpty refuses every kind of object the engine's
// target documents.
//
// The suite builds its transactions itself from segment's engine-neutral
// types, on a table of two columns (an integer primary key id and a text
// column v); what differs between engines (the DDL dialect, how capture
// encodes values and transaction ids, what CheckEmpty looks for) comes
// from the Harness. It checks results with plain SQL on new connections,
// never through rxvault's own decoding. Cases load their starting state
// with SQL, where a restore would load a base backup: the dump formats
// are the engine's.
package pitrtest

import (
	"testing"

	"github.com/rxvault/rxvault/pitr"
	"github.com/rxvault/rxvault/segment"
)

// Harness is what an engine gives the suite: its server, one new
// database per case, and the few things the suite cannot write in an
// engine-neutral way. Its methods may be called from parallel cases.
type Harness interface {
	// NewDatabase creates a new, empty database on the engine's server,
	// for one case.
	NewDatabase(t *testing.T) Database
	// Table returns the statement creating table name with two
	// columns, id (an integer primary key) and v (text, at least 100
	// characters), and the relation the engine's capture describes that
	// table with: id first, then v, id the only key column.
	Table(name string) (create string, rel *segment.Relation)
	// Row returns the values of the row (id, v) of such a table as the
	// engine's capture encodes them, in the relation's column order.
	Row(id int, v string) []segment.Value
	// TxnID returns the id the engine's capture would give its n-th
	// transaction (n > 0; a PostgreSQL xid, a MariaDB GTID).
	TxnID(n uint64) string
	// Refusals lists what a database may hold, besides a table (which
	// the suite tries itself), that the engine's CheckEmpty documents as
	// making it not empty: one Refusal per kind.
	Refusals() []Refusal
	// Restart stops the server as a crash would (SIGKILL) and starts it
	// again on the same data and address. No target is open meanwhile,
	// and no other case runs.
	Restart(t *testing.T)
}

// Database is one database of the engine's server, made for one case.
// Each call uses a new connection of its own, never the target's.
type Database interface {
	// Open opens a restore target on the database. The suite closes it.
	Open(t *testing.T) pitr.Target
	// Exec runs the statements in order, each in a transaction of its
	// own (autocommit), failing the test on an error.
	Exec(t *testing.T, statements ...string)
	// Query runs a query and returns its rows, each value in its text
	// form (NULL as ""), failing the test on an error.
	Query(t *testing.T, query string) [][]string
}

// Refusal is one kind of object that makes a database not empty.
type Refusal struct {
	// Name names the kind, for the subtest's name ("view").
	Name string
	// Setup are the statements (for Database.Exec) that create one
	// object of the kind in a new database, and nothing else CheckEmpty
	// would refuse unless the kind needs it (a trigger needs a table).
	Setup []string
	// Found is what CheckEmpty's error must contain, naming the object
	// (its name, as the error quotes it).
	Found string
	// Probe is a query whose rows show the object (at least one row):
	// it must answer the same after CheckEmpty, which changes nothing.
	Probe string
}

type testCase struct {
	name string
	fn   func(t *testing.T, f *fixture)
	// alone: the case must not run alongside others (it restarts the
	// server).
	alone bool
}

var cases = []testCase{
	{name: "AtomicApply", fn: testAtomicApply},
	{name: "GroupRollbackNamesTransaction", fn: testGroupRollback},
	{name: "FinishDurable", fn: testFinishDurable, alone: true},
	{name: "CheckEmpty", fn: testCheckEmpty},
}

// Run runs the suite against the engine h describes. Cases that restart
// the server run first, on their own; the others then run in parallel,
// each in its own database.
func Run(t *testing.T, h Harness) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !c.alone {
				t.Parallel()
			}
			c.fn(t, &fixture{h: h})
		})
	}
}
