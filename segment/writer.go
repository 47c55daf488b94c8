package segment

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/rxvault/rxvault/internal/keys"
)

// Summary describes a finished segment.
type Summary struct {
	Digest Digest // SHA-256 of the segment before the digest; the chain link
	Size   int64  // bytes written
	Chunks uint64
}

// Writer encodes one segment in a single streaming pass, in memory bounded
// by the chunk size (plus, transiently, the largest value written).
//
// The caller supplies the complete header up front, including the counts,
// positions and times of the transactions it will write, because the header
// comes first and every chunk is bound to it. The Writer checks those claims
// against what is written and Close fails on any mismatch; the output is
// then unusable and must be discarded. After any error the Writer is
// failed and every later call returns that error.
//
// Usage: NewWriter, then for each transaction Begin, Change..., Commit (or
// WriteTxn), then Close.
type Writer struct {
	hdr  Header
	out  *hashWriter
	seal *sealer
	enc  *recordEncoder
	err  error

	inTxn   bool
	copied  bool    // WriteSpill copied a payload: nothing more may be written
	info    TxnInfo // of the open transaction
	changes uint64  // in the open transaction
	got     Tally   // of committed transactions
}

// NewWriter starts a segment on w. hdr must describe the transactions that
// will be written; its Version, Salt and Envelopes are filled in (a fresh
// data key is wrapped to every recipient), Compression and Payload default
// to the current ones and ChunkSize to DefaultChunkSize. Times are stored
// in UTC to the microsecond. The header is written at once.
func NewWriter(w io.Writer, hdr Header, recipients []*keys.Recipient) (*Writer, error) {
	hdr.Version = Version
	if hdr.Compression == 0 {
		hdr.Compression = CompressZstd
	}
	if hdr.Payload == 0 {
		hdr.Payload = PayloadV1
	}
	if hdr.ChunkSize == 0 {
		hdr.ChunkSize = DefaultChunkSize
	}
	hdr.FirstCommit = normTime(hdr.FirstCommit)
	hdr.LastCommit = normTime(hdr.LastCommit)
	hdr.EndTime = normTime(hdr.EndTime)
	if _, err := rand.Read(hdr.Salt[:]); err != nil {
		return nil, fmt.Errorf("salt: %w", err)
	}
	dataKey := make([]byte, keys.DataKeySize)
	if _, err := rand.Read(dataKey); err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	envs, err := keys.Wrap(dataKey, dataKeyInfo(hdr.Salt), recipients)
	if err != nil {
		return nil, fmt.Errorf("new segment: %w", err)
	}
	hdr.Envelopes = envs
	raw, err := hdr.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("new segment: %w", err)
	}
	cc, err := newChunkCrypto(dataKey, hdr.Salt, headerHash(raw))
	if err != nil {
		return nil, fmt.Errorf("new segment: %w", err)
	}
	out := &hashWriter{w: w, h: sha256.New()}
	if _, err := out.Write(raw); err != nil {
		return nil, fmt.Errorf("write header: %w", err)
	}
	seal := newSealer(out, cc, hdr.ChunkSize, segmentLevel)
	return &Writer{hdr: hdr, out: out, seal: seal, enc: newRecordEncoder(seal)}, nil
}

// Header returns the header as written, with salt and envelopes.
func (w *Writer) Header() Header { return w.hdr }

// Write appends payload bytes to a byte-stream segment (Payload
// PayloadBytes); it is an error for a transaction segment.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.hdr.Payload != PayloadBytes {
		return 0, w.fail(errors.New("raw write to a transaction segment"))
	}
	n, err := w.seal.Write(p)
	if err != nil {
		return n, w.fail(err)
	}
	return n, nil
}

// Begin starts a transaction. Positions must strictly increase.
func (w *Writer) Begin(info TxnInfo) error {
	if w.err != nil {
		return w.err
	}
	if w.hdr.Payload != PayloadV1 {
		return w.fail(errors.New("transaction in a byte-stream segment"))
	}
	info.Commit = normTime(info.Commit)
	switch {
	case w.copied:
		return w.fail(errors.New("begin after WriteSpill"))
	case w.inTxn:
		return w.fail(errors.New("begin inside a transaction"))
	case w.got.Txns == w.hdr.Txns:
		return w.fail(fmt.Errorf("begin: header declares %d transactions", w.hdr.Txns))
	}
	// Check ordering now, so a bad transaction is refused
	// before any of it is written.
	if err := w.got.admit(info); err != nil {
		return w.fail(fmt.Errorf("begin: %w", err))
	}
	if err := w.enc.begin(&info); err != nil {
		return w.fail(fmt.Errorf("begin: %w", err))
	}
	w.info = info
	w.inTxn = true
	w.changes = 0
	return nil
}

// Change writes one change of the open transaction.
func (w *Writer) Change(c *Change) error {
	if w.err != nil {
		return w.err
	}
	if !w.inTxn {
		return w.fail(errors.New("change outside a transaction"))
	}
	if err := c.validate(); err != nil {
		return w.fail(fmt.Errorf("change %d: %w", w.changes, err))
	}
	if err := w.enc.change(c); err != nil {
		return w.fail(fmt.Errorf("change %d: %w", w.changes, err))
	}
	w.changes++
	return nil
}

// Commit ends the open transaction.
func (w *Writer) Commit() error {
	if w.err != nil {
		return w.err
	}
	if !w.inTxn {
		return w.fail(errors.New("commit outside a transaction"))
	}
	if err := w.enc.commit(w.changes); err != nil {
		return w.fail(fmt.Errorf("commit: %w", err))
	}
	if err := w.got.Add(w.info, w.changes); err != nil {
		return w.fail(fmt.Errorf("commit: %w", err))
	}
	w.inTxn = false
	return nil
}

// WriteSpill writes every transaction of s, which ends s's writing (s can
// then only be closed). A spill holding only whole transactions (Begin,
// untagged Change, Commit) encodes its records exactly as a segment
// payload does, so when nothing has been written to w yet its payload is
// copied as it stands, without decoding it: a SpillSegment spill's chunks,
// when the header's chunk size is the spill's, are sealed as they were
// compressed, and any other spill's payload is compressed now. Otherwise
// its records are decoded and written one by one. Either way the
// transactions count towards the header's claims as if written with
// Begin, Change and Commit.
func (w *Writer) WriteSpill(s *Spill) error {
	if w.err != nil {
		return w.err
	}
	switch {
	case s.inTxn:
		return w.fail(errors.New("spill ends inside a transaction"))
	case w.hdr.Payload != PayloadV1:
		return w.fail(errors.New("transaction in a byte-stream segment"))
	}
	sr, err := s.Reader()
	if err != nil {
		return w.fail(err)
	}
	defer sr.Close()
	if s.loose || w.got.Txns > 0 || w.inTxn || w.copied {
		return w.writeRecords(sr)
	}
	w.got, w.copied = s.tally, true
	if s.mode == SpillSegment && w.hdr.ChunkSize == s.chunk {
		return w.copyCompressed(sr, s)
	}
	n := int64(0)
	for {
		chunk, err := sr.nextChunk()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return w.fail(err)
		}
		if _, err := w.seal.Write(chunk); err != nil {
			return w.fail(err)
		}
		n += int64(len(chunk))
	}
	if n != s.size {
		return w.fail(fmt.Errorf("spill: %d payload bytes read back, %d written", n, s.size))
	}
	return nil
}

// copyCompressed seals a SpillSegment spill's chunks as they are stored,
// already cut and compressed as this segment's are.
func (w *Writer) copyCompressed(sr *SpillReader, s *Spill) error {
	n := uint64(0)
	for {
		comp, err := sr.nextStored()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return w.fail(err)
		}
		if err := w.seal.writeCompressed(comp); err != nil {
			return w.fail(err)
		}
		n++
	}
	// The sealer cuts a full chunk only when more payload follows.
	want := max(1, (uint64(s.size)+uint64(s.chunk)-1)/uint64(s.chunk))
	if n != want {
		return w.fail(fmt.Errorf("spill: %d chunks read back, %d payload bytes make %d", n, s.size, want))
	}
	return nil
}

// writeRecords writes a spill's records one by one.
func (w *Writer) writeRecords(sr *SpillReader) error {
	for {
		rec, err := sr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return w.fail(err)
		}
		switch {
		case rec.Kind == SpillBegin:
			err = w.Begin(*rec.Info)
		case rec.Kind == SpillChange && rec.Tag != 0:
			err = w.fail(errors.New("spill holds a tagged change"))
		case rec.Kind == SpillChange:
			err = w.Change(rec.Change)
		case rec.Kind == SpillCommit:
			err = w.Commit()
		}
		if err != nil {
			return err
		}
	}
}

// WriteTxn writes a whole transaction.
func (w *Writer) WriteTxn(t *Txn) error {
	if err := w.Begin(t.TxnInfo); err != nil {
		return err
	}
	for i := range t.Changes {
		if err := w.Change(&t.Changes[i]); err != nil {
			return err
		}
	}
	return w.Commit()
}

// Close checks the header's claims, seals the last chunk and writes the
// trailer. It does not close the underlying writer.
func (w *Writer) Close() (Summary, error) {
	if w.err != nil {
		return Summary{}, w.err
	}
	if err := w.checkClaims(); err != nil {
		return Summary{}, w.fail(err)
	}
	chunks, err := w.seal.finish()
	if err != nil {
		return Summary{}, w.fail(err)
	}
	var tr [trailerSize]byte
	tr[0] = tagTrailer
	binary.BigEndian.PutUint64(tr[1:9], chunks)
	if _, err := w.out.Write(tr[:9]); err != nil {
		return Summary{}, w.fail(fmt.Errorf("write trailer: %w", err))
	}
	var d Digest
	w.out.h.Sum(d[:0])
	copy(tr[9:41], d[:])
	copy(tr[41:], endMagic)
	if _, err := w.out.Write(tr[9:]); err != nil {
		return Summary{}, w.fail(fmt.Errorf("write trailer: %w", err))
	}
	w.err = errors.New("segment writer is closed")
	return Summary{Digest: d, Size: w.out.n, Chunks: chunks}, nil
}

func (w *Writer) checkClaims() error {
	if w.inTxn {
		return errors.New("close inside a transaction")
	}
	if err := w.got.check(&w.hdr); err != nil {
		return fmt.Errorf("wrote %w", err)
	}
	return nil
}

func (w *Writer) fail(err error) error {
	w.err = fmt.Errorf("segment writer: %w", err)
	return w.err
}

// hashWriter hashes and counts what it passes on.
type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}

// normTime returns t in UTC truncated to the microsecond (the zero time
// stays zero).
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
