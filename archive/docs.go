package archive

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/rxvault/rxvault/segment"
)

// Document formats and versions.
const (
	sourceFormat   = "rxvault-source"
	chainFormat    = "rxvault-chain"
	manifestFormat = "rxvault-base-backup"
	docVersion     = 1
)

// Position is a segment.Position in JSON: 32 hex digits, plus the engine's
// native notation for people.
type Position struct {
	Hex    string `json:"hex"`
	Native string `json:"native"`
}

// NewPosition encodes p for engine e.
func NewPosition(e segment.Engine, p segment.Position) Position {
	return Position{Hex: p.String(), Native: p.Format(e)}
}

// Pos decodes the position.
func (p Position) Pos() (segment.Position, error) {
	var out segment.Position
	if len(p.Hex) != 32 {
		return out, fmt.Errorf("bad position %q", p.Hex)
	}
	if _, err := fmt.Sscanf(p.Hex, "%016x%016x", &out.Hi, &out.Lo); err != nil {
		return out, fmt.Errorf("bad position %q", p.Hex)
	}
	return out, nil
}

// SourceDoc registers a source in a store, so sources can be listed
// without listing every object.
type SourceDoc struct {
	Format   string         `json:"format"`
	Version  int            `json:"version"`
	Dir      string         `json:"dir"`
	Engine   segment.Engine `json:"engine"`
	SourceID string         `json:"source_id"`
}

// ChainMarker records where and why a chain starts.
type ChainMarker struct {
	Format   string         `json:"format"`
	Version  int            `json:"version"`
	Chain    string         `json:"chain"`
	Engine   segment.Engine `json:"engine"`
	SourceID string         `json:"source_id"`
	Start    Position       `json:"start"`    // the stream is captured from here on
	Started  time.Time      `json:"started"`  // agent clock
	Slot     string         `json:"slot"`     // PostgreSQL replication slot, if any
	Reason   string         `json:"reason"`   // why a new chain started
	Previous string         `json:"previous"` // the chain this one follows, if any
	Gap      bool           `json:"gap"`      // the stream could not continue from Previous
	// PreviousSeq and PreviousEnd record Previous's last segment as the
	// writer's first store listed it when this chain started (absent from
	// markers written before rxvault recorded them). A store holding
	// fewer of Previous's segments has lost the rest.
	PreviousSeq uint64    `json:"previous_seq,omitempty"`
	PreviousEnd *Position `json:"previous_end,omitempty"`
}

// Manifest describes a complete base backup. It is written after every
// part, so its presence means the backup is whole.
type Manifest struct {
	Format     string         `json:"format"`
	Version    int            `json:"version"`
	ID         string         `json:"id"`
	Engine     segment.Engine `json:"engine"`
	SourceID   string         `json:"source_id"`
	Pos        Position       `json:"pos"`            // transactions at or after it are not in the backup: replay starts here
	Time       time.Time      `json:"time"`           // source clock at Pos
	GTID       string         `json:"gtid,omitempty"` // the source's GTID position at Pos (MariaDB: 0-1-5012), if any
	Chain      string         `json:"chain"`          // the chain the agent was writing (informational)
	Started    time.Time      `json:"started"`        // agent clock
	Finished   time.Time      `json:"finished"`       // agent clock
	Tool       string         `json:"tool"`           // e.g. "pg_dump (PostgreSQL) 15.18"
	DumpFormat string         `json:"dump_format"`    // e.g. "pg_dump-custom"
	Parts      int            `json:"parts"`
	LastDigest string         `json:"last_digest"` // digest of the last part
	Bytes      int64          `json:"bytes"`       // dump bytes (before compression)
	Stored     int64          `json:"stored"`      // bytes stored, all parts
	KeyIDs     []string       `json:"key_ids"`     // recipients the data keys are wrapped to
}

// Marshal encodes a document (SourceDoc, ChainMarker or Manifest) with its
// format and version set.
func Marshal(doc any) ([]byte, error) {
	switch d := doc.(type) {
	case *SourceDoc:
		d.Format, d.Version = sourceFormat, docVersion
	case *ChainMarker:
		d.Format, d.Version = chainFormat, docVersion
	case *Manifest:
		d.Format, d.Version = manifestFormat, docVersion
	default:
		return nil, fmt.Errorf("marshal: unknown document %T", doc)
	}
	return json.MarshalIndent(doc, "", "  ")
}

// unmarshal decodes a document and checks its format and version.
func unmarshal(data []byte, doc any, format string, version *int, got *string) error {
	if err := json.Unmarshal(data, doc); err != nil {
		return fmt.Errorf("bad JSON: %w", err)
	}
	if *got != format {
		return fmt.Errorf("format %q, want %q", *got, format)
	}
	if *version < 1 || *version > docVersion {
		return fmt.Errorf("%s version %d, this build reads 1..%d: upgrade rxvault", format, *version, docVersion)
	}
	return nil
}

// ParseChainMarker decodes a chain marker.
func ParseChainMarker(data []byte) (*ChainMarker, error) {
	var m ChainMarker
	if err := unmarshal(data, &m, chainFormat, &m.Version, &m.Format); err != nil {
		return nil, fmt.Errorf("chain marker: %w", err)
	}
	return &m, nil
}

// ParseManifest decodes a base backup manifest.
func ParseManifest(data []byte) (*Manifest, error) {
	var m Manifest
	if err := unmarshal(data, &m, manifestFormat, &m.Version, &m.Format); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if m.Parts < 1 {
		return nil, fmt.Errorf("manifest: %d parts", m.Parts)
	}
	return &m, nil
}

// ParseSourceDoc decodes a source registration.
func ParseSourceDoc(data []byte) (*SourceDoc, error) {
	var d SourceDoc
	if err := unmarshal(data, &d, sourceFormat, &d.Version, &d.Format); err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	return &d, nil
}
