package store

import (
	"bytes"
	"context"
	"fmt"
	"io"
)

// SameContent reports whether the stored object name holds exactly the
// next size bytes of body. A writer that gets ErrExists for an object it
// may have written before (a retried upload, a restart after a crash) uses
// it to tell its own earlier write, which is success, from a different
// object, which is not. Errors reading the store are returned as they are
// (transient ones may be retried); a body that ends early is an error.
func SameContent(ctx context.Context, s Store, name string, body io.Reader, size int64) (bool, error) {
	info, err := s.Stat(ctx, name)
	if err != nil {
		return false, fmt.Errorf("compare %s: %w", name, err)
	}
	if info.Size != size {
		return false, nil
	}
	rc, err := s.Get(ctx, name)
	if err != nil {
		return false, fmt.Errorf("compare %s: %w", name, err)
	}
	defer rc.Close()
	const chunk = 64 << 10
	a, b := make([]byte, chunk), make([]byte, chunk)
	for left := size; left > 0; {
		n := min(int64(chunk), left)
		if _, err := io.ReadFull(rc, a[:n]); err != nil {
			return false, Transient(fmt.Errorf("compare %s: read stored object: %w", name, err))
		}
		if _, err := io.ReadFull(body, b[:n]); err != nil {
			return false, Permanent(fmt.Errorf("compare %s: read body: %w", name, err))
		}
		if !bytes.Equal(a[:n], b[:n]) {
			return false, nil
		}
		left -= n
	}
	return true, nil
}
