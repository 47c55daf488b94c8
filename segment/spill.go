package segment

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"

	"github.com/klauspost/compress/zstd"
)

// recTag is a spill-only record: the tag of the change record after it.
const recTag = 5

// spillChunkSize is the plaintext chunk size of spill files, but for
// SpillSegment's.
const spillChunkSize = 256 << 10

// SpillMode says how a spill stores its chunks.
type SpillMode uint8

// Spill modes.
const (
	// SpillSealed seals chunks without compressing them: the least CPU.
	SpillSealed SpillMode = iota
	// SpillCompressed compresses chunks at zstd's fastest level: for
	// spills that may grow large, such as a transaction streamed before
	// its commit.
	SpillCompressed
	// SpillSegment cuts and compresses the payload exactly as a segment
	// of DefaultChunkSize does, so that WriteSpill seals its chunks as
	// they stand without compressing them again: for the transactions of
	// a segment being filled, whose compression then happens as they
	// arrive rather than when the segment is sealed.
	SpillSegment
)

// Spill is an append-only scratch file of transaction records, for data
// that must not be held in memory but is not yet part of a segment: a
// transaction the source streams before it commits, or the transactions
// of a segment still being filled.
//
// Records are encoded as in a segment's payload, compressed and sealed with
// AES-256-GCM under a key that exists only in this process; the file is
// unlinked as soon as it is created. A crash therefore leaves nothing
// readable behind, which suits the agent: what was only spilled was never
// acknowledged to the source, which sends it again.
//
// Write with Begin, Change and Commit; changes may also stand alone,
// outside any Begin/Commit (a streamed transaction's changes before its
// commit is known), each with a caller's tag (PostgreSQL: the
// subtransaction id). Reader ends writing and reads the records back. A
// Spill is not safe for concurrent use.
type Spill struct {
	f     *os.File
	bw    *bufio.Writer
	seal  *sealer
	enc   *recordEncoder
	key   []byte
	salt  [16]byte
	hhash [32]byte
	size  int64 // payload bytes written

	mode  SpillMode
	chunk uint32 // plaintext chunk size
	// loose records a tagged change or one outside a transaction: the
	// records are then not a segment payload as they stand.
	loose   bool
	inTxn   bool
	info    TxnInfo
	changes uint64
	tally   Tally
	err     error
	done    bool
}

// NewSpill creates an empty spill file in dir that stores its chunks as
// mode says.
func NewSpill(dir string, mode SpillMode) (*Spill, error) {
	level, chunk := noCompression, uint32(spillChunkSize)
	switch mode {
	case SpillSealed:
	case SpillCompressed:
		level = zstd.SpeedFastest
	case SpillSegment:
		level, chunk = segmentLevel, DefaultChunkSize
	default:
		return nil, fmt.Errorf("spill: unknown mode %d", mode)
	}
	f, err := os.CreateTemp(dir, "spill-*.rxspill")
	if err != nil {
		return nil, fmt.Errorf("spill: %w", err)
	}
	// Unlinked at once: the data lives only as long as this process holds
	// the file open.
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("spill: %w", err)
	}
	s := &Spill{f: f, bw: bufio.NewWriterSize(f, 256<<10), key: make([]byte, 32)}
	if _, err := rand.Read(s.key); err != nil {
		f.Close()
		return nil, fmt.Errorf("spill key: %w", err)
	}
	if _, err := rand.Read(s.salt[:]); err != nil {
		f.Close()
		return nil, fmt.Errorf("spill salt: %w", err)
	}
	s.hhash = sha256.Sum256(append([]byte("rxvault spill v1"), s.salt[:]...))
	cc, err := newChunkCrypto(s.key, s.salt, s.hhash)
	if err != nil {
		f.Close()
		return nil, err
	}
	s.mode, s.chunk = mode, chunk
	s.seal = newSealer(s.bw, cc, chunk, level)
	s.enc = newRecordEncoder(countingWriter{w: s.seal, n: &s.size})
	return s, nil
}

// Size returns the payload bytes written so far (before compression).
func (s *Spill) Size() int64 { return s.size }

// Tally returns the claims of the committed transactions written so far,
// ready for a segment header.
func (s *Spill) Tally() Tally { return s.tally }

// Begin starts a transaction; positions must strictly increase.
func (s *Spill) Begin(info TxnInfo) error {
	if err := s.usable(); err != nil {
		return err
	}
	info.Commit = normTime(info.Commit)
	if s.inTxn {
		return s.fail(errors.New("begin inside a transaction"))
	}
	if err := s.tally.admit(info); err != nil {
		return s.fail(err)
	}
	if err := s.enc.begin(&info); err != nil {
		return s.fail(err)
	}
	s.inTxn, s.info, s.changes = true, info, 0
	return nil
}

// Change appends a change with a tag (0 for none), inside or outside a
// transaction.
func (s *Spill) Change(tag uint64, c *Change) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return s.fail(err)
	}
	if tag != 0 || !s.inTxn {
		s.loose = true
	}
	if tag != 0 {
		s.enc.uvarint(tag)
		if err := s.enc.emit(recTag); err != nil {
			return s.fail(err)
		}
	}
	if err := s.enc.change(c); err != nil {
		return s.fail(err)
	}
	if s.inTxn {
		s.changes++
	}
	return nil
}

// Commit ends the transaction started by Begin.
func (s *Spill) Commit() error {
	if err := s.usable(); err != nil {
		return err
	}
	if !s.inTxn {
		return s.fail(errors.New("commit outside a transaction"))
	}
	if err := s.enc.commit(s.changes); err != nil {
		return s.fail(err)
	}
	if err := s.tally.Add(s.info, s.changes); err != nil {
		return s.fail(err)
	}
	s.inTxn = false
	return nil
}

func (s *Spill) usable() error {
	switch {
	case s.err != nil:
		return s.err
	case s.done:
		return errors.New("spill: written already read back")
	}
	return nil
}

func (s *Spill) fail(err error) error {
	s.err = fmt.Errorf("spill: %w", err)
	return s.err
}

// Reader ends writing and returns a reader over every record, from the
// first. It may be called once.
func (s *Spill) Reader() (*SpillReader, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	s.done = true
	if _, err := s.seal.finish(); err != nil {
		return nil, s.fail(err)
	}
	if err := s.bw.Flush(); err != nil {
		return nil, s.fail(err)
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, s.fail(err)
	}
	cc, err := newChunkCrypto(s.key, s.salt, s.hhash)
	if err != nil {
		return nil, err
	}
	op, err := newOpener(cc, s.chunk)
	if err != nil {
		return nil, err
	}
	op.raw = s.mode == SpillSealed
	sr := &SpillReader{br: bufio.NewReaderSize(s.f, 256<<10), op: op, chunk: s.chunk}
	sr.r = &Reader{op: op, rels: make(map[uint64]*Relation), nextChunk: sr.nextChunk}
	return sr, nil
}

// Close releases the file; its data is gone.
func (s *Spill) Close() error {
	s.done = true
	return s.f.Close()
}

// SpillKind says what a SpillRecord holds.
type SpillKind uint8

// Spill record kinds.
const (
	SpillBegin SpillKind = iota + 1
	SpillChange
	SpillCommit
)

// SpillRecord is one record read back from a spill.
type SpillRecord struct {
	Kind   SpillKind
	Info   *TxnInfo // SpillBegin
	Change *Change  // SpillChange; valid until the next call to Next
	Tag    uint64   // SpillChange
}

// SpillReader reads a spill's records in the order they were written.
type SpillReader struct {
	br    *bufio.Reader
	op    *opener
	r     *Reader
	idx   uint64
	last  bool
	buf   []byte
	tag   uint64
	chunk uint32 // the spill's plaintext chunk size
}

// Next returns the next record, or io.EOF after the last.
func (sr *SpillReader) Next() (SpillRecord, error) {
	r := sr.r
	for {
		kind, body, err := r.record()
		if err != nil {
			return SpillRecord{}, err
		}
		switch kind {
		case recRelation:
			if err := r.relation(body); err != nil {
				return SpillRecord{}, err
			}
		case recTag:
			c := cursor{b: body}
			sr.tag = c.uvarint()
			if c.err != nil || len(c.b) != 0 {
				return SpillRecord{}, corrupt("bad spill tag")
			}
		case recBegin:
			if err := r.begin(body); err != nil {
				return SpillRecord{}, err
			}
			return SpillRecord{Kind: SpillBegin, Info: &r.info}, nil
		case recChange:
			if err := r.change(body); err != nil {
				return SpillRecord{}, err
			}
			tag := sr.tag
			sr.tag = 0
			return SpillRecord{Kind: SpillChange, Change: &r.ch, Tag: tag}, nil
		case recCommit:
			r.inTxn = false
			return SpillRecord{Kind: SpillCommit}, nil
		default:
			return SpillRecord{}, corrupt("spill record kind %d", kind)
		}
	}
}

// Changes returns an iterator over the change records Next returns, with
// their tags, skipping begin and commit records. A read error is yielded,
// with a zero record, and ends it.
func (sr *SpillReader) Changes() iter.Seq2[SpillRecord, error] {
	return func(yield func(SpillRecord, error) bool) {
		for {
			rec, err := sr.Next()
			switch {
			case errors.Is(err, io.EOF):
				return
			case err != nil:
				yield(SpillRecord{}, err)
				return
			case rec.Kind == SpillChange && !yield(rec, nil):
				return
			}
		}
	}
}

// Close releases the decoder.
func (sr *SpillReader) Close() error { return sr.r.Close() }

// nextChunk reads, opens and decompresses the next frame of the file.
func (sr *SpillReader) nextChunk() ([]byte, error) {
	comp, err := sr.nextStored()
	if err != nil {
		return nil, err
	}
	return sr.op.decompress(sr.idx-1, sr.last, comp)
}

// nextStored reads and opens the next frame of the file, returning its
// chunk as stored (compressed, but for SpillSealed) and whether it is the
// last. The bytes are valid until the next call.
func (sr *SpillReader) nextStored() ([]byte, error) {
	if sr.last {
		return nil, io.EOF
	}
	var head [5]byte
	if _, err := io.ReadFull(sr.br, head[:]); err != nil {
		return nil, fmt.Errorf("spill: %w", truncated(err, "frame"))
	}
	n := binary.BigEndian.Uint32(head[1:])
	if n > uint32(maxSealed(sr.chunk)) || (head[0] != tagChunk && head[0] != tagLast) {
		return nil, corrupt("spill frame")
	}
	var err error
	if sr.buf, err = readGrow(sr.br, sr.buf, int(n)); err != nil {
		return nil, fmt.Errorf("spill: %w", truncated(err, "frame"))
	}
	sr.last = head[0] == tagLast
	i := sr.idx
	sr.idx++
	comp, err := sr.op.decrypt(i, sr.last, sr.buf, sr.op.comp[0])
	if err != nil {
		return nil, err
	}
	sr.op.comp[0] = comp
	return comp, nil
}

// countingWriter counts bytes passed to w.
type countingWriter struct {
	w io.Writer
	n *int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	*c.n += int64(n)
	return n, err
}
