// Package capturetest is the contract suite every capture engine runs
// against its real server: what capture.Reader and capture.Sink promise,
// checked the same way for each engine. An engine's test file implements
// Harness (its server, a database per case, how to open a reader and how
// to lose the stream) and calls Run.
//
// The oracle is the SQL the suite itself runs: every row it writes has an
// integer id unique in the case, and the suite checks delivered
// transactions only by those ids, the operation that changed each row and
// the positions the reader reports. It reads nothing else of rxvault's
// decoding. The SQL is portable (a table with an integer primary key and
// a varchar column; INSERT, UPDATE, DELETE, BEGIN and COMMIT), so the
// suite names no engine.
package capturetest

import (
	"context"
	"testing"

	"github.com/rxvault/rxvault/capture"
)

// Harness is what an engine gives the suite.
type Harness interface {
	// NewSource returns a fresh source for one case: an empty database
	// of its own on the engine's server, nothing captured from it yet
	// (no slot, no saved position). It registers any cleanup with t.
	NewSource(t *testing.T) Source
}

// Source is one database to write to and capture from.
type Source interface {
	// Connect opens a session on the database, as a client application
	// would, closed when the case ends. Statements autocommit unless the
	// session runs BEGIN ... COMMIT.
	Connect(t *testing.T) Conn
	// Open opens a reader of the database's change stream with the
	// spill settings asked for. Opens of one Source share the stream's
	// anchor (the replication slot, the saved binlog position): the
	// first creates it, later ones resume from it. The reader should
	// write its heartbeats (if the engine has them) often, as a short
	// test wants; the suite ignores transactions that change no row.
	Open(ctx context.Context, opts Options) (capture.Reader, error)
	// LoseStream makes the source unable to continue the stream from
	// its anchor, as an operator or the server can (PostgreSQL: drop the
	// slot; MariaDB: purge the binlog holding the saved position). A
	// reader may be open, but is not running.
	LoseStream(t *testing.T)
}

// Conn is a session on a source's database.
type Conn interface {
	// Exec runs one statement.
	Exec(ctx context.Context, query string) error
}

// Options are the reader settings a case chooses.
type Options struct {
	// SpillDir is where the reader spills large transactions.
	SpillDir string
	// SpillThreshold is how many bytes of changes a transaction may hold
	// in memory before it spills (0: the engine's default).
	SpillThreshold int64
}

type testCase struct {
	name string
	fn   func(t *testing.T, h Harness)
}

var cases = []testCase{
	{"CommitOrder", testCommitOrder},
	{"AcknowledgeAndResume", testAcknowledgeAndResume},
	{"RedeliverUnacknowledged", testRedeliverUnacknowledged},
	{"CaughtUpAfterBacklog", testCaughtUpAfterBacklog},
	{"CaughtUpNoBacklog", testCaughtUpNoBacklog},
	{"StreamLostBeforeRun", testStreamLostBeforeRun},
	{"StreamLostWhileClosed", testStreamLostWhileClosed},
	{"Spill", testSpill},
}

// Run runs the suite against h, one subtest per case. Cases run one after
// another: engines whose server-wide log a case changes (a purged binlog)
// can then share one server between cases.
func Run(t *testing.T, h Harness) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, h) })
	}
}
