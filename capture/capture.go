// Package capture defines what every engine's change reader delivers: whole
// transactions in commit order, each with its commit position and time,
// and the points up to which the stream is known to be complete. The
// readers live in subpackages (capture/postgres, capture/mysql).
package capture

import (
	"context"
	"errors"
	"io"
	"iter"
	"time"

	"github.com/rxvault/rxvault/segment"
)

// Txn is one committed transaction as a reader delivers it.
type Txn struct {
	// Info is the begin information: source transaction id, commit
	// position (PostgreSQL: the LSN of the commit record) and commit time.
	Info segment.TxnInfo
	// End is the position just past the transaction's commit (PostgreSQL:
	// its end LSN). Acknowledging End tells the source it need not send
	// this transaction again.
	End segment.Position
	// Changes yields the transaction's changes in order. It may be
	// iterated once, before the sink returns; each *Change (and the
	// values it holds) is valid only until the next iteration. A non-nil
	// error ends the iteration: the transaction could not be read back
	// (a spill file failed) and the sink must not store it.
	Changes iter.Seq2[*segment.Change, error]
	// Len is the number of changes Changes yields.
	Len int
}

// Sink consumes a reader's output. Calls come from the reader's goroutine,
// in commit order. An error from the sink stops the reader, which returns it.
type Sink interface {
	// Txn stores one committed transaction.
	Txn(ctx context.Context, t *Txn) error
	// Progress reports that every transaction committing before pos has
	// been delivered, and that the source's clock read at at that point
	// (zero if unknown). Readers call it on keepalives. A sink may let
	// pos extend the transactions it is holding, but must not acknowledge
	// a position that nothing it stores records: the source's anchor would
	// then stand past the archive's end.
	Progress(ctx context.Context, pos segment.Position, at time.Time) error
	// CaughtUp reports that the reader has delivered the backlog: every
	// transaction the source had logged when the stream was opened. The
	// sink should not hold that backlog back (the shipper seals it at
	// once instead of at the next segment interval). Readers call it at
	// most once per Run, and not at all when there was no backlog.
	CaughtUp(ctx context.Context) error
}

// Identity names a source: what goes into every segment header.
type Identity struct {
	Engine segment.Engine
	// SourceID is stable for the life of the source (PostgreSQL: system
	// identifier and database name, "7441234567890123456/pharmacy").
	SourceID string
}

// ErrStreamLost means the source can no longer continue the stream from
// where the archive stands (PostgreSQL: the replication slot is missing or
// invalidated; MySQL: the binlog was purged). The archive has a gap: the
// agent must start a new chain with a new base backup.
var ErrStreamLost = errors.New("change stream lost")

// StreamLostError is how readers report ErrStreamLost (errors.Is matches
// it): Why says what the source lost, and the agent records it as the new
// chain's reason.
type StreamLostError struct {
	Why error
}

// StreamLost returns a *StreamLostError for why.
func StreamLost(why error) error { return &StreamLostError{Why: why} }

func (e *StreamLostError) Error() string { return ErrStreamLost.Error() + ": " + e.Why.Error() }

// Is reports target == ErrStreamLost.
func (e *StreamLostError) Is(target error) bool { return target == ErrStreamLost }

// Unwrap returns Why.
func (e *StreamLostError) Unwrap() error { return e.Why }

// Permanent marks err as one that retrying cannot fix (a refused setup,
// bad credentials, a missing database): the agent stops instead of
// reconnecting.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Reader is an open change stream of one source.
type Reader interface {
	// Identity names the source.
	Identity() Identity
	// SlotCreated reports that opening created the stream's anchor (the
	// PostgreSQL slot): nothing older can be read from it, so the archive
	// starts a new chain.
	SlotCreated() bool
	// StartPos is where the stream resumes: every transaction committing
	// at or after it will be delivered.
	StartPos() segment.Position
	// Run delivers transactions and progress to sink until ctx ends or
	// the stream fails. ErrStreamLost means the stream cannot continue.
	Run(ctx context.Context, sink Sink) error
	// Acknowledge tells the source that everything before pos is durably
	// archived. Safe from any goroutine; only moves forward.
	Acknowledge(pos segment.Position)
	// Close releases the connections.
	Close() error
}

// ArchiveTip is where the archive's newest chain ends, from its last
// segment's header: what a Rewinder checks against the source.
type ArchiveTip struct {
	EndPos     segment.Position // every transaction committing before it is archived
	LastPos    segment.Position // the commit position of the last archived transaction
	LastCommit time.Time        // and its commit time
}

// Rewinder is a Reader that can resume from the archive's end when it had
// no anchor of its own (SlotCreated: a MySQL agent whose saved position was
// lost with its spool). Rewind checks that the source still holds the
// stream at tip, exactly the stream that was archived, and if so makes the
// reader resume at tip.EndPos (SlotCreated then reports false) and
// returns true. It returns false, changing nothing, when it cannot be sure.
// Rewind is called before Run.
type Rewinder interface {
	Rewind(ctx context.Context, tip ArchiveTip) (bool, error)
}

// Dump is a consistent snapshot of the source as a stream, joined exactly
// to the change stream.
type Dump interface {
	io.ReadCloser
	// Identity names the source dumped.
	Identity() Identity
	// Pos is the stream position of the snapshot: transactions committing
	// at or after it are not in the dump.
	Pos() segment.Position
	// Time is the source's clock at Pos.
	Time() time.Time
	// GTID is the source's GTID position at Pos in its native notation,
	// or "" where it has none; for the manifest (informational: replay
	// joins the dump at Pos).
	GTID() string
	// Tool names the dump tool and its version, for the manifest.
	Tool() string
	// Format names the dump's format, for the restore side.
	Format() string
}

// Source opens change streams and dumps of one database.
type Source interface {
	Open(ctx context.Context) (Reader, error)
	Dump(ctx context.Context) (Dump, error)
}

// Lag is how far a source's change stream runs ahead of the archive.
type Lag struct {
	// Bytes is the stream beyond what was acknowledged (PostgreSQL:
	// current WAL LSN minus the slot's confirmed flush LSN).
	Bytes int64
	// Retained is what the source keeps for rxvault (PostgreSQL: WAL from
	// the slot's restart LSN on).
	Retained int64
	// Server names the server streamed now, where the source has more
	// than one (MySQL and MariaDB, see capture/mysql), and Epoch counts
	// the source's moves between servers; empty and 0 otherwise.
	Server string
	Epoch  uint32
}

// LagReporter is a Source that can measure its Lag. Lag may be called
// from any goroutine, while a Reader runs.
type LagReporter interface {
	Lag(ctx context.Context) (Lag, error)
}
