package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lock takes the store's exclusive lock (flock on <root>/.rxvault/lock),
// polling so that ctx can cancel the wait. The returned func releases it.
// Each call opens the lock file anew, so the lock also serializes
// goroutines of one process.
func (s *FileStore) lock(ctx context.Context) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(s.lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	wait := time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the flock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", s.lockPath, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("wait for lock %s: %w", s.lockPath, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// createTemp makes a temporary file for a Put in <root>/.rxvault/tmp and
// flocks it for as long as the file is open. It does so under the store
// lock, which removeDeadTemps also holds, so a temp file is never seen
// unlocked while its writer lives.
func (s *FileStore) createTemp(ctx context.Context) (*os.File, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	f, err := os.CreateTemp(s.tmp, "put-*")
	if err != nil {
		return nil, fmt.Errorf("create temp: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		os.Remove(f.Name())
		f.Close()
		return nil, fmt.Errorf("lock temp %s: %w", f.Name(), err)
	}
	return f, nil
}

// removeDeadTemps removes the temporary files whose writer has died (their
// flock is free), under the store lock.
func (s *FileStore) removeDeadTemps(ctx context.Context) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return fmt.Errorf("file store %s: %w", s.root, err)
	}
	defer unlock()
	entries, err := os.ReadDir(s.tmp)
	if err != nil {
		return fmt.Errorf("file store %s: %w", s.root, err)
	}
	for _, e := range entries {
		path := filepath.Join(s.tmp, e.Name())
		f, err := os.Open(path)
		if err != nil {
			continue // removed meanwhile
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			if err := os.Remove(path); err != nil {
				f.Close()
				return fmt.Errorf("file store %s: remove leftover temp file: %w", s.root, err)
			}
			s.log.Info("file store: removed leftover temporary file", "store", s.String(), "file", path)
		}
		f.Close()
	}
	return nil
}
