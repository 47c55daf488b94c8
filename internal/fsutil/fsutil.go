// Package fsutil holds the few durable-file helpers rxvault needs: writing a
// file so that it is either wholly present or absent after a crash, and
// syncing directories so renames and links survive power loss.
package fsutil

import (
	"fmt"
	"os"
	"path/filepath"
)

// SyncDir fsyncs the directory dir, making entries created, renamed or
// removed in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir: %w", err)
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return d.Close()
}

// WriteFileAtomic writes data to path through a temporary file in the same
// directory: write, fsync, chmod to perm, rename over path, fsync the
// directory. After a crash path holds either its old content or data, never
// a mix. It replaces an existing file; callers that must never overwrite
// check first under their own lock or use CreateExclusive.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return renameInto(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*", path, data, perm)
}

// renameInto writes data to a durable temporary file in tmpDir and renames
// it over path, then fsyncs path's directory.
func renameInto(tmpDir, pattern, path string, data []byte, perm os.FileMode) error {
	tmp, err := writeTemp(tmpDir, pattern, data, perm)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rename: %w", err)
	}
	return SyncDir(filepath.Dir(path))
}

// writeTemp writes data to a new temporary file in dir, with mode perm,
// fsynced and closed, and returns its path. On error nothing is left.
func writeTemp(dir, pattern string, data []byte, perm os.FileMode) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", fmt.Errorf("create temp: %w", err)
	}
	tmp := f.Name()
	err = func() error {
		if _, err := f.Write(data); err != nil {
			return fmt.Errorf("write %s: %w", tmp, err)
		}
		if err := f.Chmod(perm); err != nil {
			return fmt.Errorf("chmod %s: %w", tmp, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", tmp, err)
		}
		return nil
	}()
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", tmp, cerr)
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

// CreateExclusive writes data to path only if path does not exist yet,
// durably (temp file, fsync, hard link, fsync the directory). It returns an
// error satisfying errors.Is(err, os.ErrExist) when path exists, and then
// changes nothing.
func CreateExclusive(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := writeTemp(dir, ".tmp-"+filepath.Base(path)+"-*", data, perm)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		return fmt.Errorf("link %s: %w", path, err)
	}
	return SyncDir(dir)
}
