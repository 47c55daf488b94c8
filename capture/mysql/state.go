package mysql

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/internal/fsutil"
	"github.com/rxvault/rxvault/segment"
)

// savedPos is the acknowledged end of the archive on disk: what a
// PostgreSQL replication slot's confirmed flush LSN is for the other
// engine. MySQL keeps no state for a replica, so rxvault keeps it.
type savedPos struct {
	Source string `json:"source"` // engine and source id, to refuse another server's file
	File   string `json:"file"`   // binlog file name
	Pos    uint64 `json:"pos"`    // offset in it: a transaction boundary
	// Created is the timestamp of the file's format description event:
	// a file of the same name written after RESET MASTER has another.
	Created uint32 `json:"created,omitempty"`
}

// stateFile is the saved position of one source.
type stateFile struct {
	path   string
	source string
	base   binlogFile

	mu      sync.Mutex
	last    segment.Position
	created map[uint64]uint32 // binlog file number → its format description's timestamp
	// savedCreated is the loaded position's Created (0: not recorded).
	savedCreated uint32
}

func newStateFile(dir string, id capture.Identity, base binlogFile) *stateFile {
	key := id.Engine.String() + " " + id.SourceID
	sum := sha256.Sum256([]byte(key))
	return &stateFile{
		path:    filepath.Join(dir, "binlog-position-"+hex.EncodeToString(sum[:6])+".json"),
		source:  key,
		base:    base,
		created: map[uint64]uint32{},
	}
}

// load returns the saved position, or ok false when there is none.
func (s *stateFile) load() (pos segment.Position, ok bool, err error) {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return pos, false, nil
	}
	if err != nil {
		return pos, false, fmt.Errorf("saved binlog position: %w", err)
	}
	var sp savedPos
	if err := json.Unmarshal(data, &sp); err != nil {
		return pos, false, fmt.Errorf("saved binlog position %s is damaged: %w; fix: remove it to start a new chain with a new base backup", s.path, err)
	}
	if sp.Source != s.source {
		return pos, false, fmt.Errorf("saved binlog position %s belongs to %q, not %q; fix: give each source its own spool.dir", s.path, sp.Source, s.source)
	}
	_, n, err := parseBinlogName(sp.File)
	if err != nil {
		return pos, false, fmt.Errorf("saved binlog position %s: %w", s.path, err)
	}
	pos = segment.Position{Hi: n, Lo: sp.Pos}
	s.mu.Lock()
	s.last, s.savedCreated = pos, sp.Created
	s.created[pos.Hi] = sp.Created
	s.mu.Unlock()
	return pos, true, nil
}

// save records pos durably if it is past the last saved position.
func (s *stateFile) save(pos segment.Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pos.Compare(s.last) <= 0 {
		return nil
	}
	data, err := json.Marshal(savedPos{Source: s.source, File: s.base.name(pos.Hi), Pos: pos.Lo, Created: s.created[pos.Hi]})
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(s.path, data, 0o600); err != nil {
		return fmt.Errorf("save binlog position: %w", err)
	}
	s.last = pos
	return nil
}

// rewind records pos durably as the resume point even though it is before
// the last one saved (see Reader.Rewind).
func (s *stateFile) rewind(pos segment.Position) error {
	s.mu.Lock()
	s.last, s.savedCreated = segment.Position{}, s.created[pos.Hi]
	s.mu.Unlock()
	return s.save(pos)
}

// fileSeen records the format description timestamp of binlog file n. It
// reports false when n is the saved position's file and its recorded
// timestamp differs: the file was replaced (RESET MASTER) and the saved
// offset means nothing in it.
func (s *stateFile) fileSeen(n uint64, created uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n == s.last.Hi && s.savedCreated != 0 && created != s.savedCreated {
		return false
	}
	if old, ok := s.created[n]; !ok || old == 0 {
		s.created[n] = created
	}
	return true
}

// remove forgets the saved position: the stream from it is lost.
func (s *stateFile) remove() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = segment.Position{}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove saved binlog position: %w", err)
	}
	return fsutil.SyncDir(filepath.Dir(s.path))
}
