package segment

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
)

// frameReader reads a segment's structure: header, frames and trailer. It
// hashes every byte it reads and checks the trailer's count and digest, so
// it alone verifies a segment without a key.
type frameReader struct {
	r      *bufio.Reader
	h      hash.Hash
	hdr    Header
	hdrRaw []byte
	off    int64 // bytes consumed
	chunks uint64
	last   bool // the last frame was read
	done   bool // trailer read and verified
	sum    Summary
	buf    []byte
}

func newFrameReader(r io.Reader) (*frameReader, error) {
	fr := &frameReader{r: bufio.NewReaderSize(r, 64<<10), h: sha256.New()}
	hdr, raw, err := readHeader(fr.r)
	if err != nil {
		return nil, err
	}
	fr.h.Write(raw)
	fr.off = int64(len(raw))
	fr.hdr, fr.hdrRaw = hdr, raw
	return fr, nil
}

// next returns the sealed bytes of the next frame (valid until the next
// call) and whether it is the last. After the last frame it reads and
// verifies the trailer and returns io.EOF.
func (fr *frameReader) next() ([]byte, bool, error) {
	if fr.done {
		return nil, false, io.EOF
	}
	var head [5]byte
	if _, err := io.ReadFull(fr.r, head[:1]); err != nil {
		return nil, false, fr.truncated(err, "frames")
	}
	switch head[0] {
	case tagChunk, tagLast:
	case tagTrailer:
		if !fr.last {
			return nil, false, fmt.Errorf("%w: trailer at offset %d before the last chunk", ErrCorrupt, fr.off)
		}
		return nil, false, fr.trailer()
	default:
		return nil, false, fmt.Errorf("%w: bad frame tag %#x at offset %d", ErrCorrupt, head[0], fr.off)
	}
	if fr.last {
		return nil, false, fmt.Errorf("%w: frame after the last chunk at offset %d", ErrCorrupt, fr.off)
	}
	if _, err := io.ReadFull(fr.r, head[1:]); err != nil {
		return nil, false, fr.truncated(err, "frame length")
	}
	n := binary.BigEndian.Uint32(head[1:])
	if n < 16 || int64(n) > int64(maxSealed(fr.hdr.ChunkSize)) {
		return nil, false, fmt.Errorf("%w: frame length %d at offset %d out of bounds", ErrCorrupt, n, fr.off)
	}
	var err error
	fr.buf, err = readGrow(fr.r, fr.buf, int(n))
	if err != nil {
		return nil, false, fr.truncated(err, fmt.Sprintf("chunk %d", fr.chunks))
	}
	fr.h.Write(head[:])
	fr.h.Write(fr.buf)
	fr.off += 5 + int64(n)
	fr.chunks++
	fr.last = head[0] == tagLast
	return fr.buf, fr.last, nil
}

func (fr *frameReader) trailer() error {
	var tr [trailerSize - 1]byte
	if _, err := io.ReadFull(fr.r, tr[:]); err != nil {
		return fr.truncated(err, "trailer")
	}
	fr.h.Write([]byte{tagTrailer})
	fr.h.Write(tr[:8])
	if got := binary.BigEndian.Uint64(tr[:8]); got != fr.chunks {
		return fmt.Errorf("%w: trailer counts %d chunks, segment has %d", ErrCorrupt, got, fr.chunks)
	}
	var d Digest
	fr.h.Sum(d[:0])
	if Digest(tr[8:40]) != d {
		return fmt.Errorf("%w: digest mismatch (stored %x, computed %x)", ErrCorrupt, tr[8:40], d)
	}
	if string(tr[40:]) != endMagic {
		return fmt.Errorf("%w: bad end magic", ErrCorrupt)
	}
	if _, err := fr.r.ReadByte(); err == nil {
		return fmt.Errorf("%w: bytes after the trailer", ErrCorrupt)
	} else if !errors.Is(err, io.EOF) {
		return fmt.Errorf("read after trailer: %w", err)
	}
	fr.off += trailerSize
	fr.done = true
	fr.sum = Summary{Digest: d, Size: fr.off, Chunks: fr.chunks}
	return io.EOF
}

func (fr *frameReader) truncated(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: input ends in the %s after %d bytes", ErrTruncated, what, fr.off)
	}
	return fmt.Errorf("read %s: %w", what, err)
}

// readGrow reads exactly n bytes into buf (reusing its storage), growing it
// no faster than data arrives, so a forged length cannot force a large
// allocation up front.
func readGrow(r io.Reader, buf []byte, n int) ([]byte, error) {
	const step = 64 << 10
	buf = buf[:0]
	for len(buf) < n {
		want := min(n-len(buf), max(step, len(buf)))
		if cap(buf)-len(buf) < want {
			nb := make([]byte, len(buf), len(buf)+want)
			copy(nb, buf)
			buf = nb
		}
		k, err := io.ReadFull(r, buf[len(buf):len(buf)+want])
		buf = buf[:len(buf)+k]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// Verify reads a whole segment without a key and checks its structure,
// frame bounds, chunk count and digest. It does not authenticate chunks
// (that needs an identity: use a Reader).
func Verify(r io.Reader) (Header, Summary, error) {
	fr, err := newFrameReader(r)
	if err != nil {
		return Header{}, Summary{}, err
	}
	for {
		if _, _, err := fr.next(); errors.Is(err, io.EOF) {
			return fr.hdr, fr.sum, nil
		} else if err != nil {
			return fr.hdr, Summary{}, err
		}
	}
}
