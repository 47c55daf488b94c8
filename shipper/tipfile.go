package shipper

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/rxvault/rxvault/archive"
	"github.com/rxvault/rxvault/internal/fsutil"
	"github.com/rxvault/rxvault/segment"
)

// tipFile, in the spool directory, records the chain the shipper writes
// and the last of its segments known to be in every store, so that an
// agent starting while the first store does not answer knows where the
// chain stands. Segments sealed after it wait in ready/.
const tipFile = "tip.json"

// tipDoc is the tip file's content.
type tipDoc struct {
	Chain      string           `json:"chain"`
	Seq        uint64           `json:"seq"`
	Digest     string           `json:"digest"` // of segment Seq; "" when Seq is 0
	EndPos     archive.Position `json:"end_pos"`
	EndTime    time.Time        `json:"end_time,omitzero"`
	LastPos    archive.Position `json:"last_pos"`
	LastCommit time.Time        `json:"last_commit,omitzero"`
}

// saveTip writes t as the spool's tip file, durably.
func saveTip(dir string, e segment.Engine, t Tip) error {
	doc := tipDoc{Chain: t.Chain.String(), Seq: t.Seq, EndPos: archive.NewPosition(e, t.EndPos), EndTime: t.EndTime,
		LastPos: archive.NewPosition(e, t.LastPos), LastCommit: t.LastCommit}
	if t.Seq > 0 {
		doc.Digest = t.Digest.String()
	}
	data, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("spool: tip: %w", err)
	}
	_, tmp := spoolPaths(dir)
	if err := fsutil.WriteFileAtomicIn(tmp, filepath.Join(dir, tipFile), data, 0o600); err != nil {
		return fmt.Errorf("spool: tip: %w", err)
	}
	return nil
}

// loadTip reads the spool's tip file; ok is false when there is none.
func loadTip(dir string) (t Tip, ok bool, err error) {
	path := filepath.Join(dir, tipFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Tip{}, false, nil
	}
	if err != nil {
		return Tip{}, false, fmt.Errorf("spool: %w", err)
	}
	bad := func(err error) (Tip, bool, error) {
		return Tip{}, false, fmt.Errorf("spool: tip file %s is damaged (%w): move it away; the agent then waits for the first store at start", path, err)
	}
	var doc tipDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return bad(err)
	}
	if t.Chain, err = segment.ParseChainID(doc.Chain); err != nil {
		return bad(err)
	}
	t.Seq, t.EndTime, t.LastCommit = doc.Seq, doc.EndTime, doc.LastCommit
	if t.Seq > 0 {
		b, err := hex.DecodeString(doc.Digest)
		if err != nil || len(b) != len(t.Digest) {
			return bad(fmt.Errorf("bad digest %q", doc.Digest))
		}
		copy(t.Digest[:], b)
	}
	if t.EndPos, err = doc.EndPos.Pos(); err != nil {
		return bad(err)
	}
	if t.LastPos, err = doc.LastPos.Pos(); err != nil {
		return bad(err)
	}
	return t, true, nil
}

// spoolTip is where the spool says the chain stands: the tip file's tip,
// and the end position of the last sealed segment of that chain waiting
// in ready/ (the tip's own end when there is none). ok is false when the
// spool has no tip file.
func spoolTip(dir string) (tip Tip, end segment.Position, ok bool, err error) {
	tip, ok, err = loadTip(dir)
	if err != nil || !ok {
		return Tip{}, segment.Position{}, false, err
	}
	ready, err := loadReady(dir)
	if err != nil {
		return Tip{}, segment.Position{}, false, err
	}
	end = tip.EndPos
	for _, f := range ready {
		if f.hdr.Chain == tip.Chain && f.hdr.Seq > tip.Seq {
			end = maxPos(end, f.hdr.EndPos)
		}
	}
	return tip, end, true, nil
}
