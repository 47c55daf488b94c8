package store

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// errBodySize is wrapped by the error Put returns when body holds fewer or
// more bytes than size. It is permanent: retrying cannot fix it.
var errBodySize = errors.New("body size differs from the given size")

// exactReader yields exactly n bytes of r. It fails if r ends early, and
// if r holds more than n bytes it fails instead of returning the last
// chunk, so that a consumer sending a Content-Length request (or committing
// a file) never completes an object from a body that was too long.
type exactReader struct {
	r    io.Reader
	size int64
	n    int64 // bytes still to deliver
	err  error // sticky error, errBodySize when the size was wrong

	checked bool // r is known to be at EOF
}

func newExactReader(r io.Reader, size int64) *exactReader {
	return &exactReader{r: r, size: size, n: size}
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if e.n == 0 {
		if err := e.atEOF(); err != nil {
			return 0, err
		}
		return 0, io.EOF
	}
	if int64(len(p)) > e.n {
		p = p[:e.n]
	}
	k, err := e.r.Read(p)
	e.n -= int64(k)
	if e.n > 0 {
		if err == io.EOF {
			e.err = fmt.Errorf("body ended after %d of %d bytes: %w", e.size-e.n, e.size, errBodySize)
			return 0, e.err
		}
		if err != nil {
			e.err = err
		}
		return k, err
	}
	// The last byte was read: hold it back until r is known to be at EOF.
	if err := e.atEOF(); err != nil {
		return 0, err
	}
	return k, nil
}

// atEOF checks that r has nothing left, once.
func (e *exactReader) atEOF() error {
	if e.checked {
		return nil
	}
	var one [1]byte
	for range 100 {
		m, err := e.r.Read(one[:])
		if m > 0 {
			e.err = fmt.Errorf("body longer than %d bytes: %w", e.size, errBodySize)
			return e.err
		}
		if err == io.EOF {
			e.checked = true
			return nil
		}
		if err != nil {
			e.err = err
			return err
		}
	}
	e.err = io.ErrNoProgress
	return e.err
}

// sizeError returns the body-size error met so far, if any.
func (e *exactReader) sizeError() error {
	if errors.Is(e.err, errBodySize) {
		return e.err
	}
	return nil
}

// ctxReader fails reads once ctx is done, so long copies honour
// cancellation.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
