package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/rxvault/rxvault/internal/fsutil"
)

// fileMetaVersion is the version of the retention record format.
const fileMetaVersion = 1

// fileMeta is the retention record of one object of a FileStore, stored as
// JSON in <root>/.rxvault/meta/<name>.
type fileMeta struct {
	Version     int       `json:"v"`
	Mode        LockMode  `json:"mode"`
	RetainUntil time.Time `json:"retain_until,omitzero"`
	LegalHold   bool      `json:"legal_hold"`
}

func (m fileMeta) retention() Retention {
	return Retention{Mode: m.Mode, RetainUntil: m.RetainUntil, LegalHold: m.LegalHold}
}

func (s *FileStore) writeMeta(name string, m fileMeta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode retention record: %w", err)
	}
	if err := fsutil.WriteFileAtomicIn(s.tmp, s.metaPath(name), append(b, '\n'), 0o640); err != nil {
		return fmt.Errorf("write retention record: %w", err)
	}
	return nil
}

// objectMeta checks that name is an object and returns its retention
// record. An object without a valid record is an error: it is never
// treated as unretained.
func (s *FileStore) objectMeta(op, name string) (fileMeta, error) {
	f, _, err := s.openData(op, name)
	if err != nil {
		return fileMeta{}, err
	}
	f.Close()
	b, err := os.ReadFile(s.metaPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Lstat(s.dataPath(name)); errors.Is(serr, fs.ErrNotExist) {
			return fileMeta{}, fmt.Errorf("%s %s: %w", op, name, ErrNotExist) // deleted meanwhile
		}
		return fileMeta{}, fmt.Errorf("%s %s: retention record %s is missing; treat the object as locked and check the store", op, name, s.metaPath(name))
	}
	if err != nil {
		return fileMeta{}, fmt.Errorf("%s %s: %w", op, name, err)
	}
	var m fileMeta
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return fileMeta{}, fmt.Errorf("%s %s: retention record %s: %w", op, name, s.metaPath(name), err)
	}
	if m.Version != fileMetaVersion {
		return fileMeta{}, fmt.Errorf("%s %s: retention record %s has version %d, want %d", op, name, s.metaPath(name), m.Version, fileMetaVersion)
	}
	switch m.Mode {
	case LockNone:
	case LockGovernance, LockCompliance:
		if m.RetainUntil.IsZero() {
			return fileMeta{}, fmt.Errorf("%s %s: retention record %s has mode %s and no date", op, name, s.metaPath(name), m.Mode)
		}
	default:
		return fileMeta{}, fmt.Errorf("%s %s: retention record %s has unknown mode %q", op, name, s.metaPath(name), m.Mode)
	}
	return m, nil
}

// Retention implements Store.
func (s *FileStore) Retention(ctx context.Context, name string) (Retention, error) {
	if err := ctx.Err(); err != nil {
		return Retention{}, fmt.Errorf("retention %s: %w", name, err)
	}
	m, err := s.objectMeta("retention", name)
	if err != nil {
		return Retention{}, err
	}
	return m.retention(), nil
}

// SetRetention implements Store. until is rounded up to a whole second.
func (s *FileStore) SetRetention(ctx context.Context, name string, until time.Time) error {
	if err := ValidName(name); err != nil {
		return fmt.Errorf("set retention: %w", err)
	}
	until = ceilSecond(until)
	unlock, err := s.lock(ctx)
	if err != nil {
		return fmt.Errorf("set retention %s: %w", name, err)
	}
	defer unlock()
	m, err := s.objectMeta("set retention", name)
	if err != nil {
		return err
	}
	if m.Mode != LockNone && until.Before(m.RetainUntil) {
		return fmt.Errorf("set retention %s to %s, before %s: %w", name,
			until.Format(time.RFC3339), m.RetainUntil.Format(time.RFC3339), ErrRetentionShortened)
	}
	if m.Mode == LockNone {
		if s.mode == LockNone {
			return fmt.Errorf("set retention %s: the store's lock mode is none; configure governance or compliance", name)
		}
		m.Mode = s.mode
	}
	m.RetainUntil = until
	if err := s.writeMeta(name, m); err != nil {
		return fmt.Errorf("set retention %s: %w", name, err)
	}
	return nil
}

// SetLegalHold implements Store.
func (s *FileStore) SetLegalHold(ctx context.Context, name string, on bool) error {
	if err := ValidName(name); err != nil {
		return fmt.Errorf("set legal hold: %w", err)
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return fmt.Errorf("set legal hold %s: %w", name, err)
	}
	defer unlock()
	m, err := s.objectMeta("set legal hold", name)
	if err != nil {
		return err
	}
	m.LegalHold = on
	if err := s.writeMeta(name, m); err != nil {
		return fmt.Errorf("set legal hold %s: %w", name, err)
	}
	return nil
}
