package segment

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/rxvault/rxvault/internal/keys"
)

// Format constants.
const (
	// Version is the format version this package writes.
	Version = 1
	// MinVersion and MaxVersion bound the versions this package reads.
	MinVersion = 1
	MaxVersion = 1

	magic         = "RXVSEG"
	endMagic      = "RXVE"
	preambleSize  = 12
	maxHeaderSize = 1 << 16
	trailerSize   = 1 + 8 + 32 + 4

	// DefaultChunkSize is the plaintext chunk size writers use unless told
	// otherwise.
	DefaultChunkSize = 1 << 20
	// MinChunkSize and MaxChunkSize bound Header.ChunkSize.
	MinChunkSize = 4 << 10
	MaxChunkSize = 16 << 20

	maxSourceID = 255
)

// Compression identifies the chunk compression.
type Compression uint8

// Compressions. The values are part of the format.
const (
	CompressZstd Compression = 1
)

// Payload encodings.
const (
	// PayloadV1 is transaction records, version 1.
	PayloadV1 = 1
	// PayloadBytes is an opaque byte stream (a part of a base backup).
	PayloadBytes = 2
)

// Digest is a SHA-256 digest of a segment's stored bytes.
type Digest [32]byte

// String returns the digest in hex.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// IsZero reports whether d is all zero (no predecessor).
func (d Digest) IsZero() bool { return d == Digest{} }

// ChainID identifies one unbroken run of a source's stream.
type ChainID [16]byte

// String returns the chain id in hex.
func (c ChainID) String() string { return hex.EncodeToString(c[:]) }

// ParseChainID parses the hex form of a chain id.
func ParseChainID(s string) (ChainID, error) {
	var c ChainID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(c) {
		return c, fmt.Errorf("bad chain id %q", s)
	}
	copy(c[:], b)
	return c, nil
}

// Header is a segment's header: everything a listing needs, readable
// without a key.
type Header struct {
	Version  uint8 // set by readers; writers always write Version
	Engine   Engine
	SourceID string
	Chain    ChainID
	Seq      uint64

	FirstPos, LastPos, EndPos        Position
	FirstCommit, LastCommit, EndTime time.Time

	Txns    uint64 // transactions
	Records uint64 // changes

	PrevHash Digest

	Compression Compression
	Payload     uint8
	ChunkSize   uint32
	Salt        [16]byte
	Envelopes   []keys.Envelope
}

// Validate checks every invariant of a header; readers and writers call it.
func (h *Header) Validate() error {
	switch {
	case !h.Engine.valid():
		return fmt.Errorf("unknown engine %d", h.Engine)
	case h.SourceID == "" || len(h.SourceID) > maxSourceID || !utf8.ValidString(h.SourceID):
		return fmt.Errorf("source id must be 1..%d bytes of UTF-8", maxSourceID)
	case h.Chain == ChainID{}:
		return errors.New("chain id is zero")
	case h.Seq == 0:
		return errors.New("sequence is zero")
	case (h.Seq == 1) != h.PrevHash.IsZero():
		return errors.New("prev hash must be zero exactly for sequence 1")
	case h.Compression != CompressZstd:
		return fmt.Errorf("unknown compression %d", h.Compression)
	case h.Payload != PayloadV1 && h.Payload != PayloadBytes:
		return fmt.Errorf("unknown payload encoding %d", h.Payload)
	case h.Payload == PayloadBytes && h.Txns != 0:
		return errors.New("a byte-stream segment claims transactions")
	case h.ChunkSize < MinChunkSize || h.ChunkSize > MaxChunkSize:
		return fmt.Errorf("chunk size %d outside %d..%d", h.ChunkSize, MinChunkSize, MaxChunkSize)
	case len(h.Envelopes) == 0 || len(h.Envelopes) > keys.MaxEnvelopes:
		return fmt.Errorf("%d key envelopes, want 1..%d", len(h.Envelopes), keys.MaxEnvelopes)
	case h.Records > 0 && h.Txns == 0:
		return errors.New("records without transactions")
	}
	for _, t := range []time.Time{h.FirstCommit, h.LastCommit, h.EndTime} {
		if !t.IsZero() && t.UnixMicro() <= 0 {
			return fmt.Errorf("time %s before 1970", t)
		}
	}
	for _, e := range h.Envelopes {
		if len(e.Wrapped) == 0 || len(e.Wrapped) > keys.MaxWrappedSize {
			return fmt.Errorf("envelope for key %s: %d bytes, want 1..%d", e.KeyID, len(e.Wrapped), keys.MaxWrappedSize)
		}
	}
	if h.Txns == 0 {
		if !h.FirstPos.IsZero() || !h.LastPos.IsZero() || !h.FirstCommit.IsZero() || !h.LastCommit.IsZero() {
			return errors.New("segment without transactions has first/last position or commit")
		}
		return nil
	}
	switch {
	case h.FirstPos.IsZero() || h.FirstCommit.IsZero() || h.LastCommit.IsZero():
		return errors.New("segment with transactions lacks first position or commit times")
	case h.Txns == 1 && h.FirstPos != h.LastPos:
		return errors.New("one transaction but first and last positions differ")
	case h.Txns > 1 && h.FirstPos.Compare(h.LastPos) >= 0:
		return errors.New("first position not before last position")
	case h.FirstCommit.After(h.LastCommit):
		return errors.New("first commit after last commit")
	case h.EndPos.Compare(h.LastPos) < 0:
		return errors.New("end position before last position")
	case h.EndTime.Before(h.LastCommit):
		return errors.New("end time before last commit")
	}
	return nil
}

// MarshalBinary encodes the preamble and header body. It validates first.
func (h *Header) MarshalBinary() ([]byte, error) {
	if err := h.Validate(); err != nil {
		return nil, fmt.Errorf("invalid header: %w", err)
	}
	b := make([]byte, preambleSize, 512+len(h.Envelopes)*1300)
	copy(b, magic)
	b[6] = Version
	b[7] = 0
	b = append(b, byte(h.Engine), byte(len(h.SourceID)))
	b = append(b, h.SourceID...)
	b = append(b, h.Chain[:]...)
	b = binary.BigEndian.AppendUint64(b, h.Seq)
	for _, p := range []Position{h.FirstPos, h.LastPos, h.EndPos} {
		b = binary.BigEndian.AppendUint64(b, p.Hi)
		b = binary.BigEndian.AppendUint64(b, p.Lo)
	}
	for _, t := range []time.Time{h.FirstCommit, h.LastCommit, h.EndTime} {
		b = binary.BigEndian.AppendUint64(b, uint64(micros(t)))
	}
	b = binary.BigEndian.AppendUint64(b, h.Txns)
	b = binary.BigEndian.AppendUint64(b, h.Records)
	b = append(b, h.PrevHash[:]...)
	b = append(b, byte(h.Compression), h.Payload)
	b = binary.BigEndian.AppendUint32(b, h.ChunkSize)
	b = append(b, h.Salt[:]...)
	b = append(b, byte(len(h.Envelopes)))
	for _, e := range h.Envelopes {
		b = append(b, e.KeyID[:]...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(e.Wrapped)))
		b = append(b, e.Wrapped...)
	}
	body := len(b) - preambleSize
	if body > maxHeaderSize {
		return nil, fmt.Errorf("header of %d bytes exceeds %d", body, maxHeaderSize)
	}
	binary.BigEndian.PutUint32(b[8:], uint32(body))
	return b, nil
}

// readHeader reads and parses the preamble and header body from r. It
// returns the raw bytes read so the caller can hash them.
func readHeader(r io.Reader) (Header, []byte, error) {
	var h Header
	pre := make([]byte, preambleSize)
	if _, err := io.ReadFull(r, pre); err != nil {
		return h, nil, truncated(err, "preamble")
	}
	if string(pre[:6]) != magic {
		return h, nil, fmt.Errorf("%w: not a segment (bad magic)", ErrCorrupt)
	}
	h.Version = pre[6]
	if h.Version < MinVersion || h.Version > MaxVersion {
		return h, nil, fmt.Errorf("%w: version %d, this build reads %d..%d: upgrade rxvault", ErrUnknownVersion, h.Version, MinVersion, MaxVersion)
	}
	if pre[7] != 0 {
		return h, nil, fmt.Errorf("%w: unknown header flags %#x", ErrCorrupt, pre[7])
	}
	n := binary.BigEndian.Uint32(pre[8:])
	if n > maxHeaderSize {
		return h, nil, fmt.Errorf("%w: header length %d exceeds %d", ErrCorrupt, n, maxHeaderSize)
	}
	raw := make([]byte, preambleSize+int(n))
	copy(raw, pre)
	if _, err := io.ReadFull(r, raw[preambleSize:]); err != nil {
		return h, nil, truncated(err, "header")
	}
	if err := h.parseBody(raw[preambleSize:]); err != nil {
		return h, nil, fmt.Errorf("%w: header: %w", ErrCorrupt, err)
	}
	if err := h.Validate(); err != nil {
		return h, nil, fmt.Errorf("%w: header: %w", ErrCorrupt, err)
	}
	return h, raw, nil
}

func (h *Header) parseBody(b []byte) error {
	c := cursor{b: b}
	h.Engine = Engine(c.u8())
	h.SourceID = string(c.take(int(c.u8())))
	copy(h.Chain[:], c.take(16))
	h.Seq = c.u64()
	for _, p := range []*Position{&h.FirstPos, &h.LastPos, &h.EndPos} {
		p.Hi, p.Lo = c.u64(), c.u64()
	}
	for _, t := range []*time.Time{&h.FirstCommit, &h.LastCommit, &h.EndTime} {
		*t = fromMicros(int64(c.u64()))
	}
	h.Txns = c.u64()
	h.Records = c.u64()
	copy(h.PrevHash[:], c.take(32))
	h.Compression = Compression(c.u8())
	h.Payload = c.u8()
	h.ChunkSize = c.u32()
	copy(h.Salt[:], c.take(16))
	ne := int(c.u8())
	if ne > keys.MaxEnvelopes {
		return fmt.Errorf("%d envelopes exceed %d", ne, keys.MaxEnvelopes)
	}
	h.Envelopes = make([]keys.Envelope, 0, ne)
	for range ne {
		var e keys.Envelope
		copy(e.KeyID[:], c.take(8))
		e.Wrapped = bytes.Clone(c.take(int(c.u16())))
		h.Envelopes = append(h.Envelopes, e)
	}
	if c.err != nil {
		return c.err
	}
	if len(c.b) != 0 {
		return fmt.Errorf("%d stray bytes after envelopes", len(c.b))
	}
	return nil
}

// hash returns the SHA-256 of the raw preamble and header body, the value
// every chunk's additional data binds.
func headerHash(raw []byte) [32]byte { return sha256.Sum256(raw) }

// micros encodes t as µs since the epoch; the zero time is 0.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromMicros decodes micros: 0 is the zero time; others are UTC.
func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// dataKeyInfo is the HPKE info binding a segment's envelopes to its salt.
func dataKeyInfo(salt [16]byte) []byte {
	return append([]byte("rxvault-seg-v1 data key"), salt[:]...)
}
