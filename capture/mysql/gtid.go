package mysql

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/rxvault/rxvault/segment"
)

// gtid is a MariaDB GTID: replication domain, originating server and
// sequence number.
type gtid struct {
	domain, server uint32
	seq            uint64
}

func (g gtid) String() string {
	return strconv.FormatUint(uint64(g.domain), 10) + "-" + strconv.FormatUint(uint64(g.server), 10) + "-" + strconv.FormatUint(g.seq, 10)
}

// parseGTIDList parses a comma-separated list of MariaDB GTIDs, as
// gtid_binlog_pos, gtid_binlog_state and BINLOG_GTID_POS write them; ""
// is the empty list.
func parseGTIDList(s string) ([]gtid, error) {
	var out []gtid
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		d, srv, n, ok := segment.ParseMariaDBGTID(f)
		if !ok {
			return nil, fmt.Errorf("GTID %q: want domain-server-sequence", f)
		}
		out = append(out, gtid{domain: d, server: srv, seq: n})
	}
	return out, nil
}

// parseGTIDPos parses a GTID position: at most one GTID per domain.
func parseGTIDPos(s string) (map[uint32]gtid, error) {
	list, err := parseGTIDList(s)
	if err != nil {
		return nil, err
	}
	pos := make(map[uint32]gtid, len(list))
	for _, g := range list {
		if _, dup := pos[g.domain]; dup {
			return nil, fmt.Errorf("GTID position %q names domain %d twice", s, g.domain)
		}
		pos[g.domain] = g
	}
	return pos, nil
}

// formatGTIDPos writes a GTID position in gtid_binlog_pos form, by
// domain.
func formatGTIDPos(pos map[uint32]gtid) string {
	var b strings.Builder
	for i, d := range slices.Sorted(maps.Keys(pos)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(pos[d].String())
	}
	return b.String()
}

// missingGTID returns a GTID of pos that a server whose gtid_binlog_state
// is state has not binlogged (its last GTID from that domain and server
// is older, or it has none), or ok false when it has them all. A server
// in gtid_strict_mode binlogs each domain in sequence order, so holding a
// later GTID of the same domain and server means holding this one.
func missingGTID(pos map[uint32]gtid, state []gtid) (gtid, bool) {
	for _, d := range slices.Sorted(maps.Keys(pos)) {
		want := pos[d]
		if !slices.ContainsFunc(state, func(h gtid) bool {
			return h.domain == want.domain && h.server == want.server && h.seq >= want.seq
		}) {
			return want, true
		}
	}
	return gtid{}, false
}

// gtidTrack follows MariaDB's GTID position along the stream: pos is the
// position as of the last saved point; pending holds the GTIDs committed
// since, in commit order, by the end of their commit event.
type gtidTrack struct {
	pos     map[uint32]gtid
	pending []pendingGTID
}

type pendingGTID struct {
	end segment.Position
	g   gtid
}

// reset starts over from the GTID position s (already validated).
func (t *gtidTrack) reset(s string) {
	t.pos, _ = parseGTIDPos(s)
	t.pending = t.pending[:0]
}

func (t *gtidTrack) add(end segment.Position, g gtid) {
	t.pending = append(t.pending, pendingGTID{end: end, g: g})
}

// upTo moves the position past every GTID committed at or before p and
// returns it in gtid_binlog_pos form.
func (t *gtidTrack) upTo(p segment.Position) string {
	n := 0
	for _, e := range t.pending {
		if e.end.Compare(p) > 0 {
			break
		}
		t.pos[e.g.domain] = e.g
		n++
	}
	t.pending = slices.Delete(t.pending, 0, n)
	return formatGTIDPos(t.pos)
}
