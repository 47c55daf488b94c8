package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/rxvault/rxvault/internal/fsutil"
)

// FileConfig configures a FileStore.
type FileConfig struct {
	Root      string           // absolute path of the store's directory
	Mode      LockMode         // lock mode given to new objects
	Retention time.Duration    // retain-until of new objects is now plus this
	Now       func() time.Time // clock; nil means time.Now
	Logger    *slog.Logger     // tagged component=internal/store; nil discards
}

// FileStore is a store in a local directory, rxvault's embedded default.
//
// Object name a/b is the file <root>/a/b, mode 0440 once written. A Put
// writes and fsyncs a temporary file under <root>/.rxvault/tmp, then makes
// it visible with a hard link, which fails rather than replace an existing
// file, and fsyncs the directory. Temporary files left by a crash are
// never listed and are removed by the next NewFileStore on the directory.
//
// Retention and legal hold are recorded by rxvault in
// <root>/.rxvault/meta/<name> (JSON) and enforced by it: Delete is refused
// while the object is retained or held, and retention cannot be shortened.
// Governance and compliance are enforced alike (there is no bypass).
// Mutations are serialized across processes by flock on
// <root>/.rxvault/lock. Object names may not start with ".", so nothing in
// .rxvault is ever an object.
//
// This store is NOT tamper-proof: anyone with write access to the
// directory, and root in any case, can change or delete objects and their
// retention records. Only S3 Object Lock gives immutability against the
// host's administrator; use an S3 store for that.
//
// A name cannot be both an object and a directory of other objects ("a"
// and "a/b"): such a Put fails with ErrInvalidName.
type FileStore struct {
	root, tmp, meta, lockPath string

	mode      LockMode
	retention time.Duration
	now       func() time.Time
	log       *slog.Logger
}

// Layout of the reserved area.
const (
	fileSysDir     = ".rxvault"
	fileFormatName = "format"
	fileFormat     = "rxvault file store 1\n"
	fileDataPerm   = 0o440
	fileDirPerm    = 0o750
)

// NewFileStore opens the file store at cfg.Root, creating it if needed,
// checks its format marker, and removes temporary files left by writers
// that died.
func NewFileStore(ctx context.Context, cfg FileConfig) (*FileStore, error) {
	if !filepath.IsAbs(cfg.Root) {
		return nil, fmt.Errorf("file store: root %q is not an absolute path", cfg.Root)
	}
	if err := checkLock(cfg.Mode, cfg.Retention); err != nil {
		return nil, fmt.Errorf("file store: %w", err)
	}
	root := filepath.Clean(cfg.Root)
	sys := filepath.Join(root, fileSysDir)
	s := &FileStore{
		root:      root,
		tmp:       filepath.Join(sys, "tmp"),
		meta:      filepath.Join(sys, "meta"),
		lockPath:  filepath.Join(sys, "lock"),
		mode:      cfg.Mode,
		retention: cfg.Retention,
		now:       cfg.Now,
		log:       scoped(cfg.Logger),
	}
	if s.now == nil {
		s.now = time.Now
	}
	for _, d := range []string{root, sys, s.tmp, s.meta} {
		if err := fsutil.MkdirAllSync(d, fileDirPerm); err != nil {
			return nil, fmt.Errorf("file store %s: %w", root, err)
		}
	}
	if err := s.checkFormat(filepath.Join(sys, fileFormatName)); err != nil {
		return nil, err
	}
	if err := s.removeDeadTemps(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *FileStore) checkFormat(path string) error {
	err := fsutil.CreateExclusive(path, []byte(fileFormat), 0o440)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("file store %s: write format marker: %w", s.root, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("file store %s: read format marker: %w", s.root, err)
	}
	if string(b) != fileFormat {
		return fmt.Errorf("file store %s: unknown format %q in %s: this rxvault cannot use it", s.root, b, path)
	}
	return nil
}

// String returns the store's URL.
func (s *FileStore) String() string { return "file://" + s.root }

func (s *FileStore) dataPath(name string) string {
	return filepath.Join(s.root, filepath.FromSlash(name))
}

func (s *FileStore) metaPath(name string) string {
	return filepath.Join(s.meta, filepath.FromSlash(name))
}

// Put implements Store.
func (s *FileStore) Put(ctx context.Context, name string, body io.ReadSeeker, size int64) error {
	if err := ValidName(name); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	if size < 0 {
		return fmt.Errorf("put %s: negative size %d: %w", name, size, errBodySize)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	path := s.dataPath(name)
	if err := s.checkFree(name, path); err != nil {
		return err
	}
	f, err := s.createTemp(ctx)
	if err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	defer func() {
		// Unlink before close: the temp file stays flocked while its name
		// exists, so removeDeadTemps never takes it for a dead writer's.
		os.Remove(f.Name())
		f.Close()
	}()
	if _, err := io.Copy(f, newExactReader(ctxReader{ctx: ctx, r: body}, size)); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	if err := f.Chmod(fileDataPerm); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	return s.commit(ctx, name, f.Name(), path)
}

// checkFree returns ErrExists if name is an object, and ErrInvalidName if
// it is a directory of other objects.
func (s *FileStore) checkFree(name, path string) error {
	st, err := os.Lstat(path)
	switch {
	case err == nil && st.Mode().IsRegular():
		return fmt.Errorf("put %s: %w", name, ErrExists)
	case err == nil:
		return fmt.Errorf("put %s: a directory of other objects has this name in the file store: %w", name, ErrInvalidName)
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case fsutil.IsNotDir(err):
		return fmt.Errorf("put %s: a parent of this name is an object in the file store: %w", name, ErrInvalidName)
	default:
		return fmt.Errorf("put %s: %w", name, err)
	}
}

// commit makes the written temp file visible as name, with its retention
// record, under the store lock. The record is written first, so an object
// never exists without one; a crash in between leaves a stray record that
// the next Put of the name replaces.
func (s *FileStore) commit(ctx context.Context, name, tmp, path string) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	defer unlock()
	if err := s.checkFree(name, path); err != nil {
		return err
	}
	for _, d := range []string{filepath.Dir(path), filepath.Dir(s.metaPath(name))} {
		if err := fsutil.MkdirAllSync(d, fileDirPerm); err != nil {
			if fsutil.IsNotDir(err) {
				return fmt.Errorf("put %s: a parent of this name is an object in the file store: %w", name, ErrInvalidName)
			}
			return fmt.Errorf("put %s: %w", name, err)
		}
	}
	m := fileMeta{Version: fileMetaVersion, Mode: LockNone}
	if s.mode != LockNone {
		m.Mode = s.mode
		m.RetainUntil = retainUntil(s.now(), s.retention)
	}
	if err := s.writeMeta(name, m); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	if err := os.Link(tmp, path); err != nil {
		os.Remove(s.metaPath(name))
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("put %s: %w", name, ErrExists)
		}
		return fmt.Errorf("put %s: %w", name, err)
	}
	if err := fsutil.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	return nil
}

// openData opens name's file, mapping absence to ErrNotExist.
func (s *FileStore) openData(op, name string) (*os.File, fs.FileInfo, error) {
	if err := ValidName(name); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	f, err := os.Open(s.dataPath(name))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || fsutil.IsNotDir(err) {
			return nil, nil, fmt.Errorf("%s %s: %w", op, name, ErrNotExist)
		}
		return nil, nil, fmt.Errorf("%s %s: %w", op, name, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s %s: %w", op, name, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s %s: %w", op, name, ErrNotExist)
	}
	return f, st, nil
}

// Get implements Store.
func (s *FileStore) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get %s: %w", name, err)
	}
	f, _, err := s.openData("get", name)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Stat implements Store.
func (s *FileStore) Stat(ctx context.Context, name string) (ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, fmt.Errorf("stat %s: %w", name, err)
	}
	f, st, err := s.openData("stat", name)
	if err != nil {
		return ObjectInfo{}, err
	}
	f.Close()
	return ObjectInfo{Name: name, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Delete implements Store.
func (s *FileStore) Delete(ctx context.Context, name string) error {
	if err := ValidName(name); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	defer unlock()
	m, err := s.objectMeta("delete", name)
	if err != nil {
		return err
	}
	if r := m.retention(); r.Locked(s.now()) {
		return fmt.Errorf("delete %s (%s until %s, legal hold %v): %w", name, r.Mode,
			r.RetainUntil.Format(time.RFC3339), r.LegalHold, ErrLocked)
	}
	path := s.dataPath(name)
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	if err := fsutil.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	if err := os.Remove(s.metaPath(name)); err != nil {
		return fmt.Errorf("delete %s: retention record: %w", name, err)
	}
	return fsutil.SyncDir(filepath.Dir(s.metaPath(name)))
}
