package segment

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Frame tags.
const (
	tagChunk   = 'C'
	tagLast    = 'L'
	tagTrailer = 'T'
)

const aadLabel = "rxvault-seg-v1"

// maxSealed bounds the sealed length of a chunk of the given plaintext size.
func maxSealed(chunkSize uint32) int {
	return int(chunkSize) + int(chunkSize)/64 + 1024 + 16
}

// chunkCrypto holds what sealing and opening chunks share: the AEAD under
// the data key, the nonce prefix and the additional data prefix.
type chunkCrypto struct {
	aead cipher.AEAD
	salt [4]byte
	aad  []byte // aadLabel || header hash || index (8) || last (1)
}

func newChunkCrypto(dataKey []byte, salt [16]byte, hdrHash [32]byte) (*chunkCrypto, error) {
	block, err := aes.NewCipher(dataKey)
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	c := &chunkCrypto{aead: aead}
	copy(c.salt[:], salt[:4])
	c.aad = make([]byte, 0, len(aadLabel)+32+9)
	c.aad = append(c.aad, aadLabel...)
	c.aad = append(c.aad, hdrHash[:]...)
	c.aad = append(c.aad, make([]byte, 9)...)
	return c, nil
}

// params fills the nonce and additional data for chunk i.
func (c *chunkCrypto) params(i uint64, last bool) (nonce [12]byte, aad []byte) {
	copy(nonce[:4], c.salt[:])
	binary.BigEndian.PutUint64(nonce[4:], i)
	tail := c.aad[len(c.aad)-9:]
	binary.BigEndian.PutUint64(tail, i)
	tail[8] = 0
	if last {
		tail[8] = 1
	}
	return nonce, c.aad
}

// sealer is the payload sink of a Writer: it cuts the payload into chunks
// of exactly size bytes, compresses and seals each, and writes the frames.
// A full chunk is sealed only once more data arrives, so the last frame is
// empty only for an empty payload.
type sealer struct {
	out    io.Writer
	crypto *chunkCrypto
	level  zstd.EncoderLevel
	size   int           // chunk size
	zenc   *zstd.Encoder // nil until the first chunk to compress
	buf    []byte        // plaintext of the chunk being filled
	comp   []byte        // compressed chunk, reused
	frame  []byte        // tag, length and sealed bytes, reused
	index  uint64
	// held is set when comp holds a chunk given to writeCompressed and not
	// sealed yet: whether it is the last is known only at the next one.
	held bool
}

// noCompression, as a sealer's level, seals chunks without compressing
// them (spill files: the CPU matters more than their size).
const noCompression zstd.EncoderLevel = 0

// segmentLevel is the compression level of segments' chunks.
const segmentLevel = zstd.SpeedDefault

// newSealer returns a sealer of chunks of chunkSize bytes compressed at
// level. Its buffers and encoder are made at first use.
func newSealer(out io.Writer, c *chunkCrypto, chunkSize uint32, level zstd.EncoderLevel) *sealer {
	return &sealer{out: out, crypto: c, level: level, size: int(chunkSize)}
}

// encoder returns the zstd encoder, made at first use: a sealer given
// only compressed chunks never needs one.
func (s *sealer) encoder() (*zstd.Encoder, error) {
	if s.zenc == nil {
		zenc, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(s.level),
			zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderCRC(false), // GCM authenticates every chunk
			zstd.WithZeroFrames(true),
			zstd.WithWindowSize(windowFor(uint32(s.size))),
		)
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		s.zenc = zenc
	}
	return s.zenc, nil
}

// windowFor returns the zstd window for a chunk size: a power of two no
// smaller than the chunk, so one chunk is one window.
func windowFor(chunkSize uint32) int {
	w := zstd.MinWindowSize
	for w < int(chunkSize) {
		w <<= 1
	}
	return w
}

// Write appends payload bytes, sealing each chunk as it fills.
func (s *sealer) Write(p []byte) (int, error) {
	n := len(p)
	if s.buf == nil && n > 0 {
		if s.held {
			return 0, errors.New("payload bytes after a compressed chunk")
		}
		s.buf = make([]byte, 0, s.size)
	}
	for len(p) > 0 {
		if len(s.buf) == s.size {
			if err := s.seal(false); err != nil {
				return n - len(p), err
			}
		}
		k := copy(s.buf[len(s.buf):s.size], p)
		s.buf = s.buf[:len(s.buf)+k]
		p = p[k:]
	}
	return n, nil
}

// writeCompressed appends a chunk compressed elsewhere, at this sealer's
// chunk size: every chunk but the last holds exactly chunk size bytes of
// payload. It cannot be mixed with Write. The chunk is sealed at the next
// call, or as the last by finish.
func (s *sealer) writeCompressed(comp []byte) error {
	if len(s.buf) > 0 {
		return errors.New("compressed chunk after payload bytes")
	}
	if s.held {
		if err := s.sealComp(false); err != nil {
			return err
		}
	}
	s.comp = append(s.comp[:0], comp...)
	s.held = true
	return nil
}

// finish seals what remains as the last chunk and returns the chunk count.
func (s *sealer) finish() (uint64, error) {
	var err error
	if s.held {
		err = s.sealComp(true)
	} else {
		err = s.seal(true)
	}
	if err != nil {
		return 0, err
	}
	if s.zenc != nil {
		s.zenc.Close()
	}
	return s.index, nil
}

// seal compresses and seals the buffered payload as the next chunk.
func (s *sealer) seal(last bool) error {
	if s.level == noCompression {
		s.comp = append(s.comp[:0], s.buf...)
	} else {
		zenc, err := s.encoder()
		if err != nil {
			return err
		}
		s.comp = zenc.EncodeAll(s.buf, s.comp[:0])
	}
	s.buf = s.buf[:0]
	return s.sealComp(last)
}

// sealComp seals comp as the next chunk and writes its frame.
func (s *sealer) sealComp(last bool) error {
	nonce, aad := s.crypto.params(s.index, last)
	tag := byte(tagChunk)
	if last {
		tag = tagLast
	}
	s.frame = append(s.frame[:0], tag, 0, 0, 0, 0)
	s.frame = s.crypto.aead.Seal(s.frame, nonce[:], s.comp, aad)
	binary.BigEndian.PutUint32(s.frame[1:5], uint32(len(s.frame)-5))
	if _, err := s.out.Write(s.frame); err != nil {
		return fmt.Errorf("write chunk %d: %w", s.index, err)
	}
	s.index++
	s.held = false
	return nil
}

// opener reverses sealer for one segment.
type opener struct {
	crypto    *chunkCrypto
	chunkSize int
	raw       bool // chunks are not compressed
	*decodeScratch
}

// decodeScratch is the reusable part of an opener: a zstd decoder and the
// buffers of two chunks. Readers share them through scratchPool so a
// restore or verify of many segments does not rebuild them per segment.
type decodeScratch struct {
	zdec  *zstd.Decoder
	comp  [2][]byte // decrypted, still compressed: one being filled, one being decompressed
	plain []byte
}

// scratchPool is process-wide. A test must not read segments (a Reader, or
// a spill read back) inside a testing/synctest bubble: the zstd decoder
// made there holds channels of the bubble, and the next reader outside it
// that gets it from the pool dies ("receive on synctest channel from
// outside bubble"). This is why the shipper and agent tests run on the
// real clock.
var scratchPool sync.Pool // of *decodeScratch

func newOpener(c *chunkCrypto, chunkSize uint32) (*opener, error) {
	s, _ := scratchPool.Get().(*decodeScratch)
	if s == nil {
		// Chunks are authenticated before they are decompressed, so the
		// decoder only ever sees what a writer produced; the limits are
		// defence in depth, at the format's maximum so any segment fits.
		zdec, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(MaxChunkSize),
			zstd.WithDecoderMaxWindow(uint64(windowFor(MaxChunkSize))),
		)
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		s = &decodeScratch{zdec: zdec}
	}
	return &opener{crypto: c, chunkSize: int(chunkSize), decodeScratch: s}, nil
}

// decrypt authenticates and decrypts chunk i into dst (reusing its
// storage). It only reads sealed.
func (o *opener) decrypt(i uint64, last bool, sealed, dst []byte) ([]byte, error) {
	nonce, aad := o.crypto.params(i, last)
	comp, err := o.crypto.aead.Open(dst[:0], nonce[:], sealed, aad)
	if err != nil {
		return dst, fmt.Errorf("%w: chunk %d fails authentication (altered, reordered, truncated or from another segment)", ErrCorrupt, i)
	}
	return comp, nil
}

// decompress decodes chunk i's compressed bytes (or, for an opener of
// uncompressed chunks, takes them as they are) and checks its size. The
// result is valid until the next call.
func (o *opener) decompress(i uint64, last bool, comp []byte) ([]byte, error) {
	if o.raw {
		o.plain = append(o.plain[:0], comp...)
	} else {
		var err error
		if o.plain, err = o.zdec.DecodeAll(comp, o.plain[:0]); err != nil {
			return nil, fmt.Errorf("%w: chunk %d: decompress: %w", ErrCorrupt, i, err)
		}
	}
	if len(o.plain) > o.chunkSize || (!last && len(o.plain) != o.chunkSize) {
		return nil, fmt.Errorf("%w: chunk %d holds %d bytes, chunk size is %d", ErrCorrupt, i, len(o.plain), o.chunkSize)
	}
	return o.plain, nil
}

// close returns the scratch to the pool; the opener is unusable after.
func (o *opener) close() {
	if o.decodeScratch != nil {
		scratchPool.Put(o.decodeScratch)
		o.decodeScratch = nil
	}
}
