package segment

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// NameExt is the extension of segment objects.
const NameExt = ".rxseg"

// NameInfo is what a segment's object name says about it. A listing of
// names is an index of the archive; readers check it against the header.
type NameInfo struct {
	Chain       ChainID
	Seq         uint64
	FirstPos    Position  // zero for a segment without transactions
	EndPos      Position  // the stream is complete up to here
	FirstCommit time.Time // earliest commit time; zero without transactions
	EndTime     time.Time // the stream is complete up to this time
}

// Info returns the NameInfo of h.
func (h *Header) Info() NameInfo {
	return NameInfo{Chain: h.Chain, Seq: h.Seq, FirstPos: h.FirstPos, EndPos: h.EndPos,
		FirstCommit: h.FirstCommit, EndTime: h.EndTime}
}

// ObjectName returns the segment's object name relative to the archive's
// segment prefix:
//
//	<chain:32 hex>/<seq:16 hex>-<first pos:32 hex>-<end pos:32 hex>-<first commit µs:16 hex>-<end time µs:16 hex>.rxseg
//
// Names of one chain sort by sequence.
func (n NameInfo) ObjectName() string {
	return fmt.Sprintf("%s/%016x-%s-%s-%016x-%016x%s", n.Chain, n.Seq, n.FirstPos, n.EndPos,
		uint64(micros(n.FirstCommit)), uint64(micros(n.EndTime)), NameExt)
}

// ParseObjectName parses a name made by ObjectName.
func ParseObjectName(name string) (NameInfo, error) {
	var n NameInfo
	bad := func(why string) (NameInfo, error) {
		return NameInfo{}, fmt.Errorf("not a segment name %q: %s", name, why)
	}
	chain, rest, ok := strings.Cut(name, "/")
	if !ok || !strings.HasSuffix(rest, NameExt) {
		return bad("want <chain>/<fields>" + NameExt)
	}
	var err error
	if n.Chain, err = ParseChainID(chain); err != nil {
		return bad(err.Error())
	}
	f := strings.Split(strings.TrimSuffix(rest, NameExt), "-")
	if len(f) != 5 || len(f[0]) != 16 || len(f[1]) != 32 || len(f[2]) != 32 || len(f[3]) != 16 || len(f[4]) != 16 {
		return bad("wrong field count or widths")
	}
	var v [7]uint64
	for i, s := range []string{f[0], f[1][:16], f[1][16:], f[2][:16], f[2][16:], f[3], f[4]} {
		if v[i], err = strconv.ParseUint(s, 16, 64); err != nil {
			return bad("field is not hex")
		}
	}
	n.Seq = v[0]
	n.FirstPos = Position{v[1], v[2]}
	n.EndPos = Position{v[3], v[4]}
	n.FirstCommit = fromMicros(int64(v[5]))
	n.EndTime = fromMicros(int64(v[6]))
	if n.ObjectName() != name {
		return bad("not in canonical form")
	}
	return n, nil
}
