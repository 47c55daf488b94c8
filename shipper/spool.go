// Package shipper turns captured transactions into segments and ships
// them: it fills a segment, seals it into a durable local spool, uploads it
// to every store with its retention, and only then reports the stream
// position as durable so the source may release it. It also writes base
// backups and chain markers.
package shipper

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rxvault/rxvault/internal/fsutil"
	"github.com/rxvault/rxvault/segment"
)

// spoolFile is a sealed segment waiting in the spool for its upload.
type spoolFile struct {
	path string // local file
	name string // object name in the stores
	hdr  segment.Header
	sum  segment.Summary
	done map[int]bool // stores (by index) that hold it

	// foreign: a segment of an earlier chain left in the spool. It is
	// uploaded but its positions are never acknowledged.
	foreign bool
}

// The spool directory holds, per source, ready/ (sealed segments, fsynced,
// named by their object name with "/" as "~") and tmp/ (files being
// written; their content is never trusted after a crash).
const (
	readyDir = "ready"
	tmpDir   = "tmp"
)

func spoolPaths(dir string) (ready, tmp string) {
	return filepath.Join(dir, readyDir), filepath.Join(dir, tmpDir)
}

// initSpool creates the spool directories (0700: segments are encrypted,
// but their headers and names tell about the source) and removes files a
// crash left in tmp/.
func initSpool(dir string) error {
	ready, tmp := spoolPaths(dir)
	for _, d := range []string{dir, ready, tmp} {
		if err := fsutil.MkdirAllSync(d, 0o700); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(tmp, e.Name())); err != nil {
			return fmt.Errorf("spool: clean tmp: %w", err)
		}
	}
	return nil
}

func fileName(object string) string { return strings.ReplaceAll(object, "/", "~") }

// loadReady reads the sealed segments left in the spool, verifying each
// (structure and digest, no key needed), in sequence order.
func loadReady(dir string) ([]*spoolFile, error) {
	ready, _ := spoolPaths(dir)
	entries, err := os.ReadDir(ready)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var out []*spoolFile
	for _, e := range entries {
		path := filepath.Join(ready, e.Name())
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
		hdr, sum, err := segment.Verify(f)
		f.Close()
		if err != nil {
			// A sealed file is fsynced before it is renamed into ready/, so
			// this is damage, not a crash: keep it for a human, say so.
			return nil, fmt.Errorf("spool file %s is damaged (%w): move it away to continue; its transactions are re-sent by the source only if they were never acknowledged", path, err)
		}
		out = append(out, &spoolFile{path: path, name: strings.ReplaceAll(e.Name(), "~", "/"), hdr: hdr, sum: sum})
	}
	slices.SortFunc(out, func(a, b *spoolFile) int {
		if c := strings.Compare(a.hdr.Chain.String(), b.hdr.Chain.String()); c != 0 {
			return c
		}
		return cmp.Compare(a.hdr.Seq, b.hdr.Seq)
	})
	return out, nil
}

// sealFile moves a finished, fsynced temporary file into ready/ under the
// segment's object name.
func sealFile(dir, tmpPath, object string) (string, error) {
	ready, _ := spoolPaths(dir)
	dst := filepath.Join(ready, fileName(object))
	if _, err := os.Lstat(dst); err == nil {
		return "", fmt.Errorf("spool: %s already exists", dst)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("spool: %w", err)
	}
	if err := os.Rename(tmpPath, dst); err != nil {
		return "", fmt.Errorf("spool: %w", err)
	}
	if err := fsutil.SyncDir(ready); err != nil {
		return "", fmt.Errorf("spool: %w", err)
	}
	return dst, nil
}
