package segment_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/rxvault/rxvault/internal/keys"
	"github.com/rxvault/rxvault/segment"
)

// layout locates a segment's parts by the spec in doc.go.
type layout struct {
	headerEnd int      // end of preamble + header body
	frames    [][2]int // [start, end) of each frame, tag included
	trailer   int      // start of the trailer
}

func parseLayout(t *testing.T, data []byte) layout {
	t.Helper()
	var l layout
	l.headerEnd = 12 + int(binary.BigEndian.Uint32(data[8:12]))
	off := l.headerEnd
	for data[off] != 'T' {
		n := int(binary.BigEndian.Uint32(data[off+1 : off+5]))
		l.frames = append(l.frames, [2]int{off, off + 5 + n})
		off += 5 + n
	}
	l.trailer = off
	if off+45 != len(data) {
		t.Fatalf("layout: trailer at %d of %d bytes", off, len(data))
	}
	return l
}

// check reads data with and without the key and requires both to fail with
// an error wrapping one of want.
func check(t *testing.T, what string, data []byte, id *keys.Identity, want ...error) {
	t.Helper()
	_, _, errKey := readAll(data, id)
	_, _, errVerify := segment.Verify(bytes.NewReader(data))
	for _, e := range []struct {
		how string
		err error
	}{{"with key", errKey}, {"without key", errVerify}} {
		ok := false
		for _, w := range want {
			ok = ok || errors.Is(e.err, w)
		}
		if !ok {
			t.Errorf("%s, read %s: err %v, want one of %v", what, e.how, e.err, want)
		}
	}
}

func flip(data []byte, i int) []byte {
	out := bytes.Clone(data)
	out[i] ^= 0x01
	return out
}

func TestTamperBitFlips(t *testing.T) {
	id := newIdentity(t)
	data, _, _ := encodeCorpus(t, 10, 400, segment.MinChunkSize, id)
	l := parseLayout(t, data)
	if len(l.frames) < 4 {
		t.Fatalf("want several chunks, got %d", len(l.frames))
	}
	// Every byte of the preamble and header.
	for i := 0; i < l.headerEnd; i++ {
		want := []error{segment.ErrCorrupt}
		switch {
		case i == 6:
			want = []error{segment.ErrUnknownVersion}
		case i >= 8 && i < 12:
			want = []error{segment.ErrCorrupt, segment.ErrTruncated} // header length
		}
		_, _, errKey := readAll(flip(data, i), id)
		if errors.Is(errKey, segment.ErrWrongKey) {
			// A flipped key id makes the envelope unaddressed: the
			// reader cannot tell it from a foreign key, but Verify
			// must still see the change.
			want = append(want, segment.ErrWrongKey)
		}
		check(t, "header byte flip", flip(data, i), id, want...)
	}
	// Bytes across each frame: tag, length and sealed payload.
	for fi, f := range l.frames {
		for _, i := range []int{f[0], f[0] + 2, f[0] + 5, f[0] + 5 + (f[1]-f[0]-5)/2, f[1] - 1} {
			check(t, "frame byte flip", flip(data, i), id, segment.ErrCorrupt, segment.ErrTruncated)
			_ = fi
		}
	}
	// Every byte of the trailer.
	for i := l.trailer; i < len(data); i++ {
		check(t, "trailer byte flip", flip(data, i), id, segment.ErrCorrupt)
	}
}

func TestTamperTruncation(t *testing.T) {
	id := newIdentity(t)
	data, _, _ := encodeCorpus(t, 11, 400, segment.MinChunkSize, id)
	l := parseLayout(t, data)
	cuts := []int{0, 5, 12, l.headerEnd - 1, l.headerEnd}
	for _, f := range l.frames {
		cuts = append(cuts, f[0]+1, f[0]+5, (f[0]+f[1])/2, f[1]) // inside and at every chunk boundary
	}
	for i := l.trailer; i < len(data); i++ {
		cuts = append(cuts, i)
	}
	for _, n := range cuts {
		check(t, "truncation", data[:n], id, segment.ErrTruncated)
	}
	// Appended garbage is corruption.
	check(t, "appended bytes", append(bytes.Clone(data), 0), id, segment.ErrCorrupt)
}

// TestTamperChunkDropAtBoundary removes whole trailing frames and forges a
// matching trailer (count and digest recomputed), which Verify cannot
// catch; authentication must.
func TestTamperChunkDropAtBoundary(t *testing.T) {
	id := newIdentity(t)
	data, _, _ := encodeCorpus(t, 12, 400, segment.MinChunkSize, id)
	l := parseLayout(t, data)
	for keep := 1; keep < len(l.frames); keep++ {
		body := bytes.Clone(data[:l.frames[keep-1][1]])
		body[l.frames[keep-1][0]] = 'L' // pose as the last chunk
		forged := forgeTrailer(body, uint64(keep))
		if _, _, err := segment.Verify(bytes.NewReader(forged)); err != nil {
			t.Fatalf("forged trailer not accepted by Verify (test setup): %v", err)
		}
		if _, _, err := readAll(forged, id); !errors.Is(err, segment.ErrCorrupt) {
			t.Errorf("keeping %d of %d chunks: err %v, want ErrCorrupt", keep, len(l.frames), err)
		}
	}
}

func forgeTrailer(body []byte, chunks uint64) []byte {
	out := append(bytes.Clone(body), 'T')
	out = binary.BigEndian.AppendUint64(out, chunks)
	sum := sha256.Sum256(out)
	out = append(out, sum[:]...)
	return append(out, "RXVE"...)
}

func TestTamperChunkSwap(t *testing.T) {
	id := newIdentity(t)
	data, _, _ := encodeCorpus(t, 13, 400, segment.MinChunkSize, id)
	l := parseLayout(t, data)
	a, b := l.frames[1], l.frames[2]
	var swapped []byte
	swapped = append(swapped, data[:a[0]]...)
	swapped = append(swapped, data[b[0]:b[1]]...)
	swapped = append(swapped, data[a[0]:a[1]]...)
	swapped = append(swapped, data[b[1]:l.trailer]...)
	n := uint64(len(l.frames))
	check(t, "chunk swap, stale trailer", append(swapped, data[l.trailer:]...), id, segment.ErrCorrupt)
	forged := forgeTrailer(swapped, n)
	if _, _, err := readAll(forged, id); !errors.Is(err, segment.ErrCorrupt) {
		t.Errorf("chunk swap with forged trailer: err %v, want ErrCorrupt", err)
	}
	// A repeated chunk.
	var dup []byte
	dup = append(dup, data[:b[0]]...)
	dup = append(dup, data[a[0]:a[1]]...)
	dup = append(dup, data[b[1]:l.trailer]...)
	if _, _, err := readAll(forgeTrailer(dup, n), id); !errors.Is(err, segment.ErrCorrupt) {
		t.Errorf("repeated chunk with forged trailer: err %v, want ErrCorrupt", err)
	}
}

// TestTamperChunkFromOtherSegment moves a chunk from another segment (also
// readable by the same identity) into the same index.
func TestTamperChunkFromOtherSegment(t *testing.T) {
	id := newIdentity(t)
	data, _, _ := encodeCorpus(t, 14, 400, segment.MinChunkSize, id)
	other, _, _ := encodeCorpus(t, 14, 400, segment.MinChunkSize, id) // same content, other key and salt
	l, lo := parseLayout(t, data), parseLayout(t, other)
	f, g := l.frames[1], lo.frames[1]
	var moved []byte
	moved = append(moved, data[:f[0]]...)
	moved = append(moved, other[g[0]:g[1]]...)
	moved = append(moved, data[f[1]:l.trailer]...)
	if _, _, err := readAll(forgeTrailer(moved, uint64(len(l.frames))), id); !errors.Is(err, segment.ErrCorrupt) {
		t.Errorf("chunk from another segment: err %v, want ErrCorrupt", err)
	}
	// A whole header from the other segment with this one's body.
	var spliced []byte
	spliced = append(spliced, other[:lo.headerEnd]...)
	spliced = append(spliced, data[l.headerEnd:l.trailer]...)
	if _, _, err := readAll(forgeTrailer(spliced, uint64(len(l.frames))), id); !errors.Is(err, segment.ErrCorrupt) {
		t.Errorf("header from another segment: err %v, want ErrCorrupt", err)
	}
}

// TestTamperHeaderClaims rewrites a header claim and forges the trailer:
// the chunks' additional data binds the header, so the key reader fails.
func TestTamperHeaderClaims(t *testing.T) {
	id := newIdentity(t)
	data, _, _ := encodeCorpus(t, 15, 50, 0, id)
	l := parseLayout(t, data)
	// End pos follows engine, source id, chain id, sequence, first and
	// last pos; bump its low byte (still a valid header).
	srcLen := int(data[13])
	endPosAt := 12 + 1 + 1 + srcLen + 16 + 8 + 32
	edited := bytes.Clone(data[:l.trailer])
	edited[endPosAt+15]++
	forged := forgeTrailer(edited, uint64(len(l.frames)))
	if _, _, err := segment.Verify(bytes.NewReader(forged)); err != nil {
		t.Fatalf("setup: %v", err)
	}
	if _, _, err := readAll(forged, id); !errors.Is(err, segment.ErrCorrupt) {
		t.Errorf("edited header: err %v, want ErrCorrupt", err)
	}
}

func TestWrongKey(t *testing.T) {
	id, other := newIdentity(t), newIdentity(t)
	data, _, _ := encodeCorpus(t, 16, 10, 0, id)
	if _, _, err := readAll(data, other); !errors.Is(err, segment.ErrWrongKey) {
		t.Errorf("wrong identity: err %v, want ErrWrongKey", err)
	}
	// The key-free check still passes: the segment itself is fine.
	if _, _, err := segment.Verify(bytes.NewReader(data)); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestUnknownVersion(t *testing.T) {
	id := newIdentity(t)
	data, _, _ := encodeCorpus(t, 17, 10, 0, id)
	for _, v := range []byte{0, 2, 255} {
		d := bytes.Clone(data)
		d[6] = v
		check(t, "version", d, id, segment.ErrUnknownVersion)
	}
	d := bytes.Clone(data)
	d[7] = 0x80
	check(t, "unknown flag", d, id, segment.ErrCorrupt)
	check(t, "not a segment", []byte("PGDMP......................"), id, segment.ErrCorrupt)
}
