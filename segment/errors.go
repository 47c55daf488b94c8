package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Errors readers return, wrapped with detail; test with errors.Is.
var (
	// ErrTruncated: the segment's bytes end before its trailer.
	ErrTruncated = errors.New("segment truncated")
	// ErrCorrupt: the bytes are not a valid segment, or were altered.
	ErrCorrupt = errors.New("segment corrupt")
	// ErrWrongKey: no given identity matches the segment's envelopes.
	ErrWrongKey = errors.New("no identity for segment")
	// ErrUnknownVersion: the segment's version is not one this build reads.
	ErrUnknownVersion = errors.New("unknown segment version")
	// ErrBrokenChain: the segment does not follow its predecessor.
	ErrBrokenChain = errors.New("broken segment chain")
)

// truncated maps an early end of input to ErrTruncated and passes other
// read errors through.
func truncated(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: input ends in the %s", ErrTruncated, what)
	}
	return fmt.Errorf("read %s: %w", what, err)
}

// cursor decodes fields from a byte slice. The first failure sticks in err
// and every later read returns zero values, so parsers check once at the end.
type cursor struct {
	b   []byte
	err error
}

func (c *cursor) fail(what string) {
	if c.err == nil {
		c.err = fmt.Errorf("%s runs past the end", what)
	}
	c.b = nil
}

func (c *cursor) take(n int) []byte {
	if n < 0 || n > len(c.b) {
		c.fail("field")
		return nil
	}
	v := c.b[:n:n]
	c.b = c.b[n:]
	return v
}

func (c *cursor) u8() uint8 {
	if len(c.b) < 1 {
		c.fail("byte")
		return 0
	}
	v := c.b[0]
	c.b = c.b[1:]
	return v
}

func (c *cursor) u16() uint16 {
	if b := c.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (c *cursor) u32() uint32 {
	if b := c.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (c *cursor) u64() uint64 {
	if b := c.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (c *cursor) uvarint() uint64 {
	v, n := uvarint(c.b)
	if n <= 0 {
		c.fail("varint")
		return 0
	}
	c.b = c.b[n:]
	return v
}

func (c *cursor) varint() int64 {
	u := c.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

// bytes reads a uvarint length then that many bytes (a subslice of the input).
func (c *cursor) bytes() []byte {
	n := c.uvarint()
	if n > uint64(len(c.b)) {
		c.fail("byte field")
		return nil
	}
	return c.take(int(n))
}

func (c *cursor) str() string { return string(c.bytes()) }

// uvarint is binary.Uvarint, rejecting non-minimal encodings so that every
// value has exactly one encoding.
func uvarint(b []byte) (uint64, int) {
	var x uint64
	var s uint
	for i, c := range b {
		if i == 10 {
			return 0, -1
		}
		if c < 0x80 {
			if i == 9 && c > 1 {
				return 0, -1
			}
			if c == 0 && i > 0 {
				return 0, -1 // non-minimal
			}
			return x | uint64(c)<<s, i + 1
		}
		x |= uint64(c&0x7f) << s
		s += 7
	}
	return 0, 0
}
