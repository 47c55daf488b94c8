package fsutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// MkdirAllSync creates dir and any missing parents with mode perm, like
// os.MkdirAll, and fsyncs the parent of every directory it creates, so the
// new path survives a crash. It is a no-op when dir exists; it fails when a
// component exists and is not a directory.
func MkdirAllSync(dir string, perm os.FileMode) error {
	dir = filepath.Clean(dir)
	st, err := os.Stat(dir)
	if err == nil {
		if !st.IsDir() {
			return fmt.Errorf("mkdir %s: %w", dir, errNotDir)
		}
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("mkdir: %w", err)
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := MkdirAllSync(parent, perm); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, perm); err != nil {
		if errors.Is(err, os.ErrExist) {
			// Made meanwhile by someone else; check it is a directory.
			return MkdirAllSync(dir, perm)
		}
		return fmt.Errorf("mkdir: %w", err)
	}
	return SyncDir(parent)
}

// errNotDir reports a path component that is not a directory.
var errNotDir = errors.New("not a directory")

// IsNotDir reports whether err says that a path component which must be
// a directory is something else (including ENOTDIR from the OS).
func IsNotDir(err error) bool {
	return errors.Is(err, errNotDir) || errors.Is(err, syscall.ENOTDIR)
}

// WriteFileAtomicIn is WriteFileAtomic with the temporary file made in
// tmpDir (on the same file system as path) instead of next to path, so that
// leftovers after a crash gather in one place. It fsyncs path's directory
// after the rename.
func WriteFileAtomicIn(tmpDir, path string, data []byte, perm os.FileMode) error {
	return renameInto(tmpDir, "atomic-*", path, data, perm)
}
