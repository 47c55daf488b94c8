package mysql

import (
	"fmt"
	"strings"

	"github.com/rxvault/rxvault/pitr"
	"github.com/rxvault/rxvault/segment"
)

// movedSource recognises, in a MariaDB archive, the transactions a
// source re-sent after it moved to another server (a failover: the
// stream's epoch, Position.Hi's top half, grew; see capture/mysql). The
// new server re-sends what the old one had sent after the last saved
// GTID position, under its own binlog positions, so position order cannot
// tell them apart; their GTIDs can. In gtid_strict_mode, which the
// capture requires of the new server, a domain's sequence numbers only
// grow, so a transaction of a later epoch whose sequence number is at or
// below the highest its domain reached before is one already applied (or
// in the backup), and is skipped. If its GTID differs from the one applied
// at that sequence number, the two servers' histories diverge (the old one
// had transactions the new one never received) and replay stops.
//
// Transactions without a MariaDB GTID, and every transaction of the first
// epoch replayed, are left alone.
type movedSource struct {
	epoch uint64            // the epoch of the last transaction seen
	seen  map[uint32]uint64 // domain → highest sequence number before epoch
	cur   map[uint32]uint64 // domain → highest sequence number in epoch
	// at maps a domain and sequence number applied to its server, for
	// the last recentGTIDs applied (a later epoch re-sends the old
	// server's last few seconds, what its spool held unacknowledged);
	// recent holds them in the order applied, to forget the oldest. What
	// the backup held is known only at its own GTID position.
	at     map[seqKey]uint32
	recent []seqKey
	next   int // the slot of recent to overwrite next, once it is full
}

// recentGTIDs is how many applied GTIDs movedSource remembers.
const recentGTIDs = 1 << 16

type seqKey struct {
	domain uint32
	seq    uint64
}

var _ pitr.ResentSkipper = (*Target)(nil)

// StartReplay implements pitr.ResentSkipper: for a MariaDB archive, replay
// from base (its GTID position gtid) recognises the transactions the
// source re-sent after it moved to another server (see movedSource).
func (t *Target) StartReplay(e segment.Engine, base segment.Position, gtid string) {
	t.moved = newMovedSource(e, base, gtid)
}

// SkipResent implements pitr.ResentSkipper (see movedSource.skip).
func (t *Target) SkipResent(info *segment.TxnInfo) (bool, error) { return t.moved.skip(info) }

// newMovedSource starts at the backup's position pos and GTID position
// gtidPos (gtid_binlog_pos form; "" if not recorded). It returns nil for
// engines other than MariaDB.
func newMovedSource(e segment.Engine, pos segment.Position, gtidPos string) *movedSource {
	if e != segment.EngineMariaDB {
		return nil
	}
	m := &movedSource{epoch: pos.Hi >> 32, seen: map[uint32]uint64{}, cur: map[uint32]uint64{}, at: map[seqKey]uint32{}}
	for f := range strings.SplitSeq(gtidPos, ",") {
		m.record(strings.TrimSpace(f))
	}
	return m
}

// skip reports whether t, about to be replayed, was applied already, or
// fails when it contradicts what was.
func (m *movedSource) skip(t *segment.TxnInfo) (bool, error) {
	if m == nil {
		return false, nil
	}
	if e := t.Pos.Hi >> 32; e > m.epoch {
		for d, n := range m.cur {
			m.seen[d] = max(m.seen[d], n)
		}
		clear(m.cur)
		m.epoch = e
	}
	d, s, n, ok := segment.ParseMariaDBGTID(t.ID)
	if !ok || n > m.seen[d] {
		return false, nil
	}
	if was, known := m.at[seqKey{d, n}]; known && was != s {
		return false, fmt.Errorf("transaction %s at %s: the source moved to another server whose history differs: %d-%d-%d was replayed at that sequence number from the server before; the archive holds both, and replay cannot go past this point: restore to an earlier time, or from a base backup taken after the move",
			t.ID, t.Pos.Format(segment.EngineMariaDB), d, was, n)
	}
	return true, nil
}

// applied records that t was replayed.
func (m *movedSource) applied(t *segment.TxnInfo) {
	if m == nil {
		return
	}
	m.record(t.ID)
}

func (m *movedSource) record(id string) {
	d, s, n, ok := segment.ParseMariaDBGTID(id)
	if !ok {
		return
	}
	m.cur[d] = max(m.cur[d], n)
	k := seqKey{d, n}
	if len(m.recent) < recentGTIDs {
		m.recent = append(m.recent, k)
	} else {
		delete(m.at, m.recent[m.next])
		m.recent[m.next] = k
		m.next = (m.next + 1) % recentGTIDs
	}
	m.at[k] = s
}
