package mysql

import (
	"context"
	"fmt"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/segment"
)

var _ capture.Rewinder = (*Reader)(nil)

// Rewind resumes a reader that found no saved position (its spool was
// lost) at the archive's end, tip.EndPos, instead of the binlog's end, so
// the archive's chain continues without a gap. It does so only on MariaDB,
// where a commit event's timestamp is the archived commit time, and only
// when the server proves it still holds the archived stream:
//
//   - the binlog files of tip.LastPos and tip.EndPos are on the server, and
//     tip.EndPos is not past the binlog's end;
//   - the file of tip.LastPos was created (its format description event)
//     no later than the last archived commit: a file written anew after
//     RESET MASTER is newer;
//   - the event at tip.LastPos is a commit (XID or a query) whose timestamp
//     is that commit time.
//
// Otherwise it returns false and the reader starts at the binlog's end as
// Open left it (a new chain, a gap). The saved position becomes tip.EndPos.
func (r *Reader) Rewind(ctx context.Context, tip capture.ArchiveTip) (bool, error) {
	why := r.rewindCheck(ctx, tip)
	if why != "" {
		r.log.Warn("cannot resume from the archive's end", "archive_end", tip.EndPos.Format(r.srv.engine()), "why", why)
		return false, nil
	}
	if err := r.state.rewind(tip.EndPos); err != nil {
		return false, err
	}
	r.start, r.created, r.backlog = tip.EndPos, false, r.inEpochOf(r.backlog, tip.EndPos)
	r.log.Info("no saved binlog position: resuming from the archive's end", "archive_end", tip.EndPos.Format(r.srv.engine()))
	return true, nil
}

// inEpochOf returns p, a position of this server's binlog, in the epoch
// of q.
func (r *Reader) inEpochOf(p, q segment.Position) segment.Position {
	return segment.Position{Hi: q.Hi&^(1<<32-1) | uint64(uint32(p.Hi)), Lo: p.Lo}
}

// rewindCheck returns why the server cannot be shown to hold the archived
// stream at tip, or "".
func (r *Reader) rewindCheck(ctx context.Context, tip capture.ArchiveTip) string {
	switch {
	case !r.created:
		return "the reader has a saved position"
	case !r.srv.mariadb:
		return "only MariaDB binlogs carry the commit times to check against"
	case tip.LastPos.IsZero() || tip.LastPos.Compare(tip.EndPos) >= 0 || tip.LastPos.Hi>>32 != tip.EndPos.Hi>>32 ||
		tip.EndPos.Compare(r.inEpochOf(r.backlog, tip.EndPos)) > 0:
		return "the archive's end is not a point of this binlog"
	case tip.LastCommit.Nanosecond() != 0:
		return "the last archived commit time is not whole seconds"
	}
	c, err := connect(ctx, r.d, "")
	if err != nil {
		return "connect: " + err.Error()
	}
	logs, err := binaryLogs(c)
	c.Close()
	if err != nil {
		return "list binary logs: " + err.Error()
	}
	if _, ok := logs[uint64(uint32(tip.LastPos.Hi))]; !ok {
		return "binlog " + r.base.name(tip.LastPos.Hi) + " is no longer on the server"
	}
	if _, ok := logs[uint64(uint32(tip.EndPos.Hi))]; !ok {
		return "binlog " + r.base.name(tip.EndPos.Hi) + " is no longer on the server"
	}
	created, _, err := r.eventAt(ctx, segment.Position{Hi: tip.LastPos.Hi, Lo: 4}) // the file's start: its format description
	if err != nil {
		return "read binlog " + r.base.name(tip.LastPos.Hi) + "'s format description: " + err.Error()
	}
	_, ev, err := r.eventAt(ctx, tip.LastPos)
	switch {
	case created > tip.LastCommit.Unix():
		return fmt.Sprintf("binlog %s was created after the last archived commit (written anew, as after RESET MASTER)", r.base.name(tip.LastPos.Hi))
	case err != nil:
		return "read the event at the last archived commit: " + err.Error()
	case created == 0:
		return "the server sent no format description event"
	case ev == nil:
		return "no event at the last archived commit's position"
	case int64(ev.Header.Timestamp) != tip.LastCommit.Unix():
		return "the event at the last archived commit's position has another time"
	}
	switch ev.Event.(type) {
	case *replication.XIDEvent, *replication.QueryEvent:
	default:
		return fmt.Sprintf("the event at the last archived commit's position is a %s, not a commit", ev.Header.EventType)
	}
	r.fileSeen(tip.LastPos.Hi, uint32(created))
	return ""
}

// eventAt reads, from a binlog stream started at pos, the creation time
// of pos's file (from its format description event, which the server
// sends first) and the event that starts at pos (nil if none does; at
// offset 4, the start of the file, the format description itself).
func (r *Reader) eventAt(ctx context.Context, pos segment.Position) (created int64, ev *replication.BinlogEvent, err error) {
	syncer := replication.NewBinlogSyncer(r.syncerConfig())
	defer syncer.Close()
	streamer, err := syncer.StartSync(gomysql.Position{Name: r.base.name(pos.Hi), Pos: uint32(pos.Lo)})
	if err != nil {
		return 0, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		e, err := streamer.GetEvent(ctx)
		if err != nil {
			return created, nil, err
		}
		switch fe := e.Event.(type) {
		case *replication.RotateEvent:
			continue
		case *replication.FormatDescriptionEvent:
			created = int64(e.Header.Timestamp)
			if created == 0 {
				created = int64(fe.CreateTimestamp)
			}
			if pos.Lo == 4 {
				return created, e, nil
			}
			continue
		}
		if e.Header.LogPos == 0 || uint64(e.Header.LogPos) < uint64(e.Header.EventSize) {
			continue // an artificial event (MariaDB's Gtid_list, Binlog_checkpoint on connect)
		}
		if uint64(e.Header.LogPos)-uint64(e.Header.EventSize) != pos.Lo {
			return created, nil, nil
		}
		return created, e, nil
	}
}
