package archive

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/rxvault/rxvault/internal/store"
	"github.com/rxvault/rxvault/segment"
)

// maxDocSize bounds the JSON documents read from a store.
const maxDocSize = 1 << 20

// Segment is one segment or base backup part as the listing shows it.
type Segment struct {
	Name string // object name
	Info segment.NameInfo
	Size int64
}

// Chain is one chain of a source: its marker and its segments in sequence
// order.
type Chain struct {
	ID       segment.ChainID
	Marker   *ChainMarker // nil if the marker is missing or unreadable
	Segments []Segment
}

// Backup is one base backup.
type Backup struct {
	ID       segment.ChainID
	Manifest *Manifest // nil while (or if ever) incomplete
	Parts    []Segment
}

// Index is what a store holds for one source, read from its listing and
// its small documents only (no segment is read).
type Index struct {
	Source   string
	Chains   []*Chain  // by id, that is by creation
	Backups  []*Backup // by id, that is by start
	Problems []string  // objects that do not fit the layout
}

// Sources lists the source directories registered in s.
func Sources(ctx context.Context, s store.Store) ([]*SourceDoc, error) {
	var out []*SourceDoc
	err := store.Walk(ctx, s, sourcesDir, func(o store.ObjectInfo) error {
		data, err := readDoc(ctx, s, o.Name)
		if err != nil {
			return err
		}
		d, err := ParseSourceDoc(data)
		if err != nil {
			return fmt.Errorf("%s: %w", o.Name, err)
		}
		out = append(out, d)
		return nil
	})
	return out, err
}

// Load reads the index of source src from s.
func Load(ctx context.Context, s store.Store, src string) (*Index, error) {
	var objs []store.ObjectInfo
	if err := store.Walk(ctx, s, src+"/", func(o store.ObjectInfo) error {
		objs = append(objs, o)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list %s: %w", src, err)
	}
	docs := make(map[string][]byte)
	for _, o := range objs {
		if strings.HasSuffix(o.Name, jsonExt) {
			data, err := readDoc(ctx, s, o.Name)
			if err != nil {
				return nil, err
			}
			docs[o.Name] = data
		}
	}
	return NewIndex(src, objs, docs), nil
}

func readDoc(ctx context.Context, s store.Store, name string) ([]byte, error) {
	rc, err := s.Get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxDocSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > maxDocSize {
		return nil, fmt.Errorf("read %s: larger than %d bytes", name, maxDocSize)
	}
	return data, nil
}

// NewIndex builds the index of source src from its objects and the
// contents of its JSON documents (by object name). It is a pure function.
func NewIndex(src string, objs []store.ObjectInfo, docs map[string][]byte) *Index {
	idx := &Index{Source: src}
	chains := make(map[segment.ChainID]*Chain)
	backups := make(map[segment.ChainID]*Backup)
	chain := func(id segment.ChainID) *Chain {
		if c := chains[id]; c != nil {
			return c
		}
		c := &Chain{ID: id}
		chains[id] = c
		return c
	}
	backup := func(id segment.ChainID) *Backup {
		if b := backups[id]; b != nil {
			return b
		}
		b := &Backup{ID: id}
		backups[id] = b
		return b
	}
	problem := func(format string, args ...any) { idx.Problems = append(idx.Problems, fmt.Sprintf(format, args...)) }
	prefix := src + "/"
	for _, o := range objs {
		rel, ok := strings.CutPrefix(o.Name, prefix)
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(rel, chainsDir):
			id, err := segment.ParseChainID(strings.TrimSuffix(strings.TrimPrefix(rel, chainsDir), jsonExt))
			if err != nil || !strings.HasSuffix(rel, jsonExt) {
				problem("%s: not a chain marker name", o.Name)
				continue
			}
			m, err := ParseChainMarker(docs[o.Name])
			if err != nil {
				problem("%s: %v", o.Name, err)
				chain(id)
				continue
			}
			if m.Chain != id.String() {
				problem("%s: marker names chain %s", o.Name, m.Chain)
				continue
			}
			chain(id).Marker = m
		case strings.HasPrefix(rel, walDir):
			info, err := segment.ParseObjectName(strings.TrimPrefix(rel, walDir))
			if err != nil {
				problem("%s: %v", o.Name, err)
				continue
			}
			c := chain(info.Chain)
			c.Segments = append(c.Segments, Segment{Name: o.Name, Info: info, Size: o.Size})
		case strings.HasPrefix(rel, baseDir):
			rest := strings.TrimPrefix(rel, baseDir)
			if idStr, ok := strings.CutSuffix(rest, "/"+manifestFile); ok {
				id, err := segment.ParseChainID(idStr)
				if err != nil {
					problem("%s: bad backup id", o.Name)
					continue
				}
				m, err := ParseManifest(docs[o.Name])
				if err != nil {
					problem("%s: %v", o.Name, err)
					backup(id)
					continue
				}
				if m.ID != id.String() {
					problem("%s: manifest names backup %s", o.Name, m.ID)
					continue
				}
				backup(id).Manifest = m
				continue
			}
			info, err := segment.ParseObjectName(rest)
			if err != nil {
				problem("%s: %v", o.Name, err)
				continue
			}
			b := backup(info.Chain)
			b.Parts = append(b.Parts, Segment{Name: o.Name, Info: info, Size: o.Size})
		default:
			problem("%s: not part of the archive layout", o.Name)
		}
	}
	for _, c := range chains {
		slices.SortFunc(c.Segments, func(a, b Segment) int { return cmpSeq(a.Info.Seq, b.Info.Seq) })
		if c.Marker == nil {
			problem("chain %s has no readable marker", c.ID)
		}
		idx.Chains = append(idx.Chains, c)
	}
	for _, b := range backups {
		slices.SortFunc(b.Parts, func(x, y Segment) int { return cmpSeq(x.Info.Seq, y.Info.Seq) })
		idx.Backups = append(idx.Backups, b)
	}
	slices.SortFunc(idx.Chains, func(a, b *Chain) int { return strings.Compare(a.ID.String(), b.ID.String()) })
	slices.SortFunc(idx.Backups, func(a, b *Backup) int { return strings.Compare(a.ID.String(), b.ID.String()) })
	return idx
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
