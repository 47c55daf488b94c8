package archive

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/rxvault/rxvault/segment"
)

// Directory and file names of the layout.
const (
	sourcesDir   = "sources/"
	chainsDir    = "chains/"
	walDir       = "wal/"
	baseDir      = "base/"
	jsonExt      = ".json"
	manifestFile = "manifest.json"
)

// SourceDir returns the directory of a source: the engine, then the source
// id with every character outside [A-Za-z0-9._-] replaced by '-'. When a
// character had to be replaced, or the id is long, a short hash of the id
// keeps distinct sources apart.
func SourceDir(engine segment.Engine, sourceID string) string {
	var b strings.Builder
	b.WriteString(engine.String())
	b.WriteByte('-')
	clean := true
	for _, r := range sourceID {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
			clean = false
		}
	}
	s := b.String()
	if !clean || len(s) > 100 {
		sum := sha256.Sum256([]byte(sourceID))
		s = s[:min(len(s), 100)] + "-" + hex.EncodeToString(sum[:4])
	}
	return strings.TrimLeft(s, ".")
}

// SourceName is the object name of a source's registration.
func SourceName(src string) string { return sourcesDir + src + jsonExt }

// ChainName is the object name of a chain's marker.
func ChainName(src string, chain segment.ChainID) string {
	return src + "/" + chainsDir + chain.String() + jsonExt
}

// SegmentName is the object name of a WAL segment.
func SegmentName(src string, info segment.NameInfo) string {
	return src + "/" + walDir + info.ObjectName()
}

// PartName is the object name of a base backup part.
func PartName(src string, info segment.NameInfo) string {
	return src + "/" + baseDir + info.ObjectName()
}

// ManifestName is the object name of a base backup's manifest.
func ManifestName(src string, backup segment.ChainID) string {
	return src + "/" + baseDir + backup.String() + "/" + manifestFile
}

// NewID returns a new chain or backup id: creation time then randomness,
// so ids sort by creation.
func NewID(now time.Time) (segment.ChainID, error) {
	var id segment.ChainID
	binary.BigEndian.PutUint64(id[:8], uint64(now.UnixNano()))
	if _, err := rand.Read(id[8:]); err != nil {
		return id, fmt.Errorf("new id: %w", err)
	}
	return id, nil
}

// IDTime returns the creation time encoded in an id made by NewID.
func IDTime(id segment.ChainID) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(id[:8]))).UTC()
}
