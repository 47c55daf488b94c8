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
	Source string `json:"source"` // engine and source id, to refuse another source's file
	File   string `json:"file"`   // binlog file name
	Pos    uint64 `json:"pos"`    // offset in it: a transaction boundary
	// Created is the timestamp of the file's format description event:
	// a file of the same name written after RESET MASTER has another.
	Created uint32 `json:"created,omitempty"`
	// Server is the identity of the server File belongs to (see
	// server.id); empty in files written before it was recorded, which
	// then belong to the server the source names.
	Server string `json:"server,omitempty"`
	// Epoch counts the servers the source has moved to: Position.Hi's
	// top half.
	Epoch uint32 `json:"epoch,omitempty"`
	// GTID is MariaDB's GTID position of the acknowledged point (the last
	// GTID of each replication domain, in gtid_binlog_pos form), or an
	// earlier one: what a stream from another server resumes after.
	GTID string `json:"gtid,omitempty"`
}

// stateFile is the saved position of one source, and the GTIDs that
// saving it needs.
type stateFile struct {
	path   string
	source string
	base   binlogFile

	mu     sync.Mutex
	server string // the server streamed now
	epoch  uint32 // its epoch
	last   segment.Position
	// created maps a binlog file (Position.Hi) to its format
	// description's timestamp, where known: the loaded record's file's,
	// and each file's the stream has read. A file is checked against its
	// own timestamp only: the saved position moves on into later files
	// (see fileSeen).
	created map[uint64]uint32
	// rec is the record on disk, as loaded or last saved (zero: none).
	rec savedPos
	// held is the furthest acknowledged position not saved yet because
	// its file's timestamp is not known yet (see ack); zero when none.
	held segment.Position
	// gone is set by remove: the stream is lost, and no later
	// acknowledgement saves a position of it again.
	gone bool
	// gtids is MariaDB's GTID position as of last, and the GTIDs
	// committed since, by commit end.
	gtids gtidTrack
}

func newStateFile(dir string, id capture.Identity, server string, base binlogFile) *stateFile {
	key := id.Engine.String() + " " + id.SourceID
	sum := sha256.Sum256([]byte(key))
	return &stateFile{
		path:    filepath.Join(dir, "binlog-position-"+hex.EncodeToString(sum[:6])+".json"),
		source:  key,
		server:  server,
		base:    base,
		created: map[uint64]uint32{},
	}
}

// load returns the saved record, or ok false when there is none. Its
// position is not yet the state's: Open adopts it with resume (same
// server) or moveTo (another server).
func (s *stateFile) load() (sp savedPos, pos segment.Position, ok bool, err error) {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return sp, pos, false, nil
	}
	if err != nil {
		return sp, pos, false, fmt.Errorf("saved binlog position: %w", err)
	}
	if err := json.Unmarshal(data, &sp); err != nil {
		return sp, pos, false, fmt.Errorf("saved binlog position %s is damaged: %w; fix: remove it to start a new chain with a new base backup", s.path, err)
	}
	if sp.Source != s.source {
		return sp, pos, false, fmt.Errorf("saved binlog position %s belongs to %q, not %q; fix: give each source its own spool.dir", s.path, sp.Source, s.source)
	}
	_, n, err := parseBinlogName(sp.File)
	if err == nil && n >= 1<<32 {
		err = fmt.Errorf("binlog file number %d is out of range", n)
	}
	if err != nil {
		return sp, pos, false, fmt.Errorf("saved binlog position %s: %w", s.path, err)
	}
	if _, err := parseGTIDPos(sp.GTID); err != nil {
		return sp, pos, false, fmt.Errorf("saved binlog position %s: %w; fix: remove it to start a new chain with a new base backup", s.path, err)
	}
	if sp.Server == "" {
		sp.Server = s.server
	}
	return sp, segment.Position{Hi: uint64(sp.Epoch)<<32 | n, Lo: sp.Pos}, true, nil
}

// resume makes the loaded record the state: the stream continues on its
// server.
func (s *stateFile) resume(sp savedPos, pos segment.Position) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epoch, s.last, s.rec = sp.Epoch, pos, sp
	if sp.Created != 0 {
		s.created[pos.Hi] = sp.Created
	}
	s.gtids.reset(sp.GTID)
}

// moveTo starts the next epoch on the server streamed now, from the
// loaded record's GTID position. The record stays as it is on disk until
// a position of the new epoch is saved.
func (s *stateFile) moveTo(sp savedPos, pos segment.Position) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epoch, s.last, s.rec = sp.Epoch+1, pos, sp
	s.gtids.reset(sp.GTID)
}

// begin sets the state of a stream with no saved position, at pos.
func (s *stateFile) begin(pos segment.Position) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epoch, s.last = uint32(pos.Hi>>32), segment.Position{}
	s.gtids.reset("")
}

// at returns the position of offset off in binlog file n of the current
// epoch.
func (s *stateFile) at(n, off uint64) segment.Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return segment.Position{Hi: uint64(s.epoch)<<32 | n, Lo: off}
}

// committed records that the transaction with MariaDB GTID g committed,
// its commit event ending at end.
func (s *stateFile) committed(end segment.Position, g gtid) {
	s.mu.Lock()
	s.gtids.add(end, g)
	s.mu.Unlock()
}

// save records pos durably if it is a position of the current epoch past
// the last saved one, with the GTID position of the transactions
// committed up to it (as far as this stream has seen them: a position
// the stream has not reached yet, left in the spool by an earlier run,
// is saved with an earlier GTID position, which only makes a move to
// another server re-send more). Once remove has run, it saves nothing.
func (s *stateFile) save(pos segment.Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saveLocked(pos)
}

// ack saves pos, an acknowledged position, as save does, unless pos is in
// a later file than the saved position and that file's timestamp is not
// known yet: at a restart, shipping the segments an earlier run left in
// the spool acknowledges positions in files the resumed stream has not
// reread. Such a position is held until the stream reads its file's start
// (fileSeen), so that every position saved in a file after the one
// resumed from records that file's timestamp. Holding it back only makes
// a restart meanwhile re-send more.
func (s *stateFile) ack(pos segment.Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pos.Hi > s.last.Hi && s.created[pos.Hi] == 0 {
		if pos.Compare(s.held) > 0 {
			s.held = pos
		}
		return nil
	}
	return s.saveLocked(pos)
}

// saveLocked is save with s.mu held.
func (s *stateFile) saveLocked(pos segment.Position) error {
	if s.gone || pos.Compare(s.last) <= 0 || uint32(pos.Hi>>32) != s.epoch {
		return nil
	}
	g := s.gtids.upTo(pos)
	if err := s.write(savedPos{
		Source: s.source, File: s.base.name(pos.Hi), Pos: pos.Lo, Created: s.created[pos.Hi],
		Server: s.server, Epoch: s.epoch, GTID: g,
	}); err != nil {
		return err
	}
	s.last = pos
	return nil
}

// write puts sp on disk as the saved record. s.mu is held.
func (s *stateFile) write(sp savedPos) error {
	data, err := json.Marshal(sp)
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(s.path, data, 0o600); err != nil {
		return fmt.Errorf("save binlog position: %w", err)
	}
	s.rec = sp
	return nil
}

// rewind records pos durably as the resume point even though it is before
// the last one saved (see Reader.Rewind); pos's epoch becomes the
// current one.
func (s *stateFile) rewind(pos segment.Position) error {
	s.mu.Lock()
	s.epoch, s.last = uint32(pos.Hi>>32), segment.Position{}
	s.gtids.reset("")
	s.mu.Unlock()
	return s.save(pos)
}

// fileSeen records the format description timestamp of binlog file n
// (Position.Hi). It reports false when another timestamp is known for n
// (the loaded record's, or one the stream read before): the file was
// replaced (RESET MASTER) and the saved offset means nothing in it. A
// file is compared with its own timestamp only, never with the loaded
// record's file's: at a restart, shipping the segments an earlier run left
// in the spool acknowledges positions in later files before the stream has
// read them (see ack).
//
// Once n's timestamp is known, fileSeen saves the position ack held in n,
// if any, or, when the saved record is in n without a timestamp (saved
// where the stream began), the record again with it. The error is that
// save's; the result stands regardless.
func (s *stateFile) fileSeen(n uint64, created uint32) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.created[n]; old != 0 && created != old {
		return false, nil
	}
	s.created[n] = created
	switch {
	case created == 0:
	case s.held.Hi == n:
		pos := s.held
		s.held = segment.Position{}
		return true, s.saveLocked(pos)
	case !s.gone && n == s.last.Hi && s.rec.Created == 0:
		sp := s.rec
		sp.Created = created
		return true, s.write(sp)
	}
	return true, nil
}

// position returns the last saved position and the current epoch.
func (s *stateFile) position() (segment.Position, uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, s.epoch
}

// streamedServer returns the identity of the server streamed now.
func (s *stateFile) streamedServer() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.server
}

// remove forgets the saved position: the stream from it is lost, and
// acknowledgements of it no longer save anything (the next Open starts
// a new stream).
func (s *stateFile) remove() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last, s.gone = segment.Position{}, true
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove saved binlog position: %w", err)
	}
	return fsutil.SyncDir(filepath.Dir(s.path))
}
