package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// defaultPage is the page size when ListOptions.Limit is not positive.
const defaultPage = 1000

// List implements Store. It walks the directory tree in name order,
// skipping subtrees that cannot hold names in the page; files that are not
// objects (names starting with ".", other characters, non-regular files)
// are never listed.
func (s *FileStore) List(ctx context.Context, opts ListOptions) (Page, error) {
	if err := validPrefix(opts.Prefix); err != nil {
		return Page{}, err
	}
	limit := opts.Limit
	if limit <= 0 {
		limit = defaultPage
	}
	var out []ObjectInfo
	if err := s.listDir(ctx, "", opts, limit+1, &out); err != nil {
		return Page{}, fmt.Errorf("list %s: %w", opts.Prefix, err)
	}
	if len(out) > limit {
		return Page{Objects: out[:limit], Next: out[limit-1].Name}, nil
	}
	return Page{Objects: out}, nil
}

// listEntry is a directory entry keyed by the name it stands for: a file's
// object name, or a directory's name followed by "/". Sorting by this key
// gives the byte order of the object names ("a.b" < "a/x" < "a0").
type listEntry struct {
	key string
	dir bool
	e   fs.DirEntry
}

// listDir appends to out, in name order, the objects under directory rel
// ("" or ending in "/") that match opts, until out holds max.
func (s *FileStore) listDir(ctx context.Context, rel string, opts ListOptions, max int, out *[]ObjectInfo) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := os.ReadDir(filepath.Join(s.root, filepath.FromSlash(rel)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // removed meanwhile
	}
	if err != nil {
		return err
	}
	list := make([]listEntry, 0, len(entries))
	for _, e := range entries {
		n := e.Name()
		if n == "" || n[0] == '.' || ValidName(n) != nil {
			continue
		}
		switch {
		case e.IsDir():
			list = append(list, listEntry{key: rel + n + "/", dir: true, e: e})
		case e.Type().IsRegular():
			list = append(list, listEntry{key: rel + n, e: e})
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].key < list[j].key })
	p, after := opts.Prefix, opts.StartAfter
	for _, le := range list {
		k := le.key
		if p != "" && k > p && !strings.HasPrefix(k, p) {
			break // sorted past every name with the prefix
		}
		if le.dir {
			if !strings.HasPrefix(k, p) && !strings.HasPrefix(p, k) {
				continue
			}
			if k < after && !strings.HasPrefix(after, k) {
				continue // every name under k sorts before after
			}
			if err := s.listDir(ctx, k, opts, max, out); err != nil {
				return err
			}
		} else {
			if !strings.HasPrefix(k, p) || k <= after {
				continue
			}
			info, err := le.e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted meanwhile
			}
			if err != nil {
				return err
			}
			*out = append(*out, ObjectInfo{Name: k, Size: info.Size(), ModTime: info.ModTime()})
		}
		if len(*out) >= max {
			return nil
		}
	}
	return nil
}
