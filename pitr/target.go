// Package pitr restores a database to a point in time: it plans a restore
// from a store listing (a pure function), restores a base backup, replays
// transactions in commit order up to the target, and verifies archives.
// Engine-specific targets live in subpackages (pitr/postgres).
package pitr

import (
	"context"
	"errors"
	"io"
	"iter"

	"github.com/rxvault/rxvault/segment"
)

// ErrTargetNotEmpty: the restore target already holds user objects.
var ErrTargetNotEmpty = errors.New("restore target is not empty")

// Target is a database being restored into. A restore calls CheckEmpty,
// RestoreBase once, Apply for each transaction in commit order, then Finish
// and Close. Methods are called from one goroutine.
type Target interface {
	// CheckEmpty fails with an error wrapping ErrTargetNotEmpty, naming
	// what it found, if the database holds any user object.
	CheckEmpty(ctx context.Context) error

	// RestoreBase loads a base backup: dump is the stream the engine's
	// dump tool wrote (PostgreSQL: pg_dump's custom format).
	RestoreBase(ctx context.Context, dump io.Reader) error

	// Apply applies one transaction atomically: all of its changes or, on
	// error, none. DDL changes run in their place among the row changes.
	//
	// A target may commit several consecutive transactions together, as
	// one group: then a transaction Apply returned nil for is not yet
	// committed, visible or durable; it is at the latest when Finish
	// returns nil. The final state is that of applying the transactions
	// one by one, in order. During Apply a group commits only after the
	// transaction's last change, or before a DDL change that cannot run
	// inside it (the engine commits around it, as the source did): so
	// another session never sees part of a transaction of row changes.
	//
	// An error names the transaction and the change that failed, which
	// may be an earlier transaction of the uncommitted group than this
	// one (failures may be detected late), and rolls the target back to
	// its last committed group: transactions Apply accepted since then
	// are undone too. It quotes no row value (errors are logged). A
	// target need not accept further calls after an error.
	//
	// pitr/pitrtest checks these promises against every target.
	Apply(ctx context.Context, info *segment.TxnInfo, changes iter.Seq2[*segment.Change, error]) error

	// Finish completes the restore after the last transaction: it commits
	// the last group, if any, and makes every transaction applied durable,
	// then sets sequences to their captured values. It may fail as Apply
	// does, naming a transaction of the last group.
	Finish(ctx context.Context) error

	// Close releases the connection. Transactions applied but not yet
	// committed (Finish not called or failed) are rolled back.
	Close(ctx context.Context) error
}

// ResentSkipper is a Target's optional capability for archives that can
// hold one source transaction twice, under different positions (a MariaDB
// source that moved to another server re-sends what the old one sent
// last; see pitr/mysql). Replay then asks it about each transaction
// before applying it.
type ResentSkipper interface {
	// StartReplay is called once, before the first transaction, with the
	// archive's engine and where replay starts: the base backup's
	// position and its GTID position (gtid_binlog_pos form; "" if not
	// recorded).
	StartReplay(e segment.Engine, base segment.Position, gtid string)
	// SkipResent reports whether info, about to be applied, is a copy of
	// a transaction already applied (or in the base backup): replay skips
	// it. It fails when info contradicts what was applied, so replay
	// cannot go on.
	SkipResent(info *segment.TxnInfo) (bool, error)
}
