package segment

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/rxvault/rxvault/internal/keys"
)

// Reader decodes a segment's transactions in one streaming pass, in memory
// bounded by the chunk size and the largest record.
//
// Every chunk is authenticated before any of its bytes are decoded. The
// trailer's digest is checked when the payload ends, so only the io.EOF
// from Next proves the whole segment intact; a consumer that applies
// transactions as they arrive must treat a later error as fatal for the
// segment (a truncated segment yields ErrTruncated there, never a silent
// short read).
type Reader struct {
	fr        *frameReader
	op        *opener
	nextChunk func() ([]byte, error) // plaintext of the next chunk; io.EOF at the end
	cur       []byte                 // unread plaintext of the current chunk
	idx       uint64                 // index of the next chunk to decrypt
	ahead     *decrypted             // the next chunk to decompress, if decrypted already
	sawLast   bool                   // the last chunk has been decompressed

	scratch []byte // records that span chunks
	rels    map[uint64]*Relation
	oldBuf  []Value // storage reused by r.ch
	newBuf  []Value
	relBuf  []*Relation

	inTxn   bool
	changes uint64
	info    TxnInfo
	ch      Change
	got     Tally // of committed transactions

	err error // sticky; io.EOF once the segment has been read and verified
}

// NewReader reads the header from r and unwraps the data key with the first
// identity that matches an envelope. No matching identity is ErrWrongKey.
func NewReader(r io.Reader, ids []*keys.Identity) (*Reader, error) {
	fr, err := newFrameReader(r)
	if err != nil {
		return nil, err
	}
	h := &fr.hdr
	dataKey, err := keys.Unwrap(h.Envelopes, dataKeyInfo(h.Salt), ids)
	if errors.Is(err, keys.ErrNoIdentity) {
		return nil, fmt.Errorf("%w: %w", ErrWrongKey, err)
	} else if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	cc, err := newChunkCrypto(dataKey, h.Salt, headerHash(fr.hdrRaw))
	if err != nil {
		return nil, err
	}
	op, err := newOpener(cc, h.ChunkSize)
	if err != nil {
		return nil, err
	}
	sr := &Reader{fr: fr, op: op, rels: make(map[uint64]*Relation)}
	sr.nextChunk = sr.openNext
	return sr, nil
}

// Header returns the segment's header.
func (r *Reader) Header() Header { return r.fr.hdr }

// Summary returns the digest, size and chunk count; valid once Next has
// returned io.EOF.
func (r *Reader) Summary() Summary { return r.fr.sum }

// Close releases the decoder and buffers; values returned earlier become
// invalid. It does not close the source.
func (r *Reader) Close() error {
	r.op.close()
	if r.err == nil {
		r.err = errors.New("segment reader is closed")
	}
	return nil
}

// Read reads the payload of a byte-stream segment (Payload PayloadBytes).
// It returns io.EOF only once the trailer has verified, so a truncated or
// altered segment always ends in an error, never in a short clean read.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.fr.hdr.Payload != PayloadBytes {
		return 0, r.fail(errors.New("raw read of a transaction segment: use Next"))
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := r.fill(); err != nil {
		if errors.Is(err, io.EOF) {
			r.err = io.EOF
			return 0, io.EOF
		}
		return 0, r.fail(err)
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// Next advances to the next transaction, skipping any unread changes of the
// current one, and returns its begin information (valid until the next call
// to Next). After the last transaction it checks the trailer and the
// header's claims and returns io.EOF.
func (r *Reader) Next() (*TxnInfo, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.fr.hdr.Payload != PayloadV1 {
		return nil, r.fail(errors.New("a byte-stream segment holds no transactions: use Read"))
	}
	for r.inTxn {
		if _, err := r.Change(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
	}
	for {
		kind, body, err := r.record()
		if errors.Is(err, io.EOF) {
			if err := r.checkClaims(); err != nil {
				return nil, r.fail(err)
			}
			r.err = io.EOF
			return nil, io.EOF
		} else if err != nil {
			return nil, r.fail(err)
		}
		switch kind {
		case recRelation:
			if err := r.relation(body); err != nil {
				return nil, r.fail(err)
			}
		case recBegin:
			if err := r.begin(body); err != nil {
				return nil, r.fail(err)
			}
			return &r.info, nil
		default:
			return nil, r.fail(corrupt("record kind %d outside a transaction", kind))
		}
	}
}

// Change returns the next change of the current transaction, valid until
// the next call to Change or Next. At the transaction's commit it returns
// io.EOF; it also returns io.EOF when no transaction is open.
func (r *Reader) Change() (*Change, error) {
	if r.err != nil {
		return nil, r.err
	}
	if !r.inTxn {
		return nil, io.EOF
	}
	for {
		kind, body, err := r.record()
		if errors.Is(err, io.EOF) {
			return nil, r.fail(corrupt("payload ends inside a transaction"))
		} else if err != nil {
			return nil, r.fail(err)
		}
		switch kind {
		case recRelation:
			if err := r.relation(body); err != nil {
				return nil, r.fail(err)
			}
		case recChange:
			if err := r.change(body); err != nil {
				return nil, r.fail(err)
			}
			r.changes++
			return &r.ch, nil
		case recCommit:
			c := cursor{b: body}
			n := c.uvarint()
			if c.err != nil || len(c.b) != 0 {
				return nil, r.fail(corrupt("bad commit record"))
			}
			if n != r.changes {
				return nil, r.fail(corrupt("commit counts %d changes, transaction has %d", n, r.changes))
			}
			if err := r.got.Add(r.info, r.changes); err != nil {
				return nil, r.fail(corrupt("%v", err))
			}
			r.inTxn = false
			return nil, io.EOF
		default:
			return nil, r.fail(corrupt("record kind %d inside a transaction", kind))
		}
	}
}

// ReadTxn reads the next whole transaction into memory, with its own copies
// of every value. It returns io.EOF at the end of the segment.
func (r *Reader) ReadTxn() (*Txn, error) {
	info, err := r.Next()
	if err != nil {
		return nil, err
	}
	t := &Txn{TxnInfo: *info}
	for {
		c, err := r.Change()
		if errors.Is(err, io.EOF) {
			return t, nil
		} else if err != nil {
			return nil, err
		}
		t.Changes = append(t.Changes, cloneChange(c))
	}
}

func cloneChange(c *Change) Change {
	out := *c
	out.Old = cloneValues(c.Old)
	out.New = cloneValues(c.New)
	out.Truncated = append([]*Relation(nil), c.Truncated...)
	if c.Content != nil {
		out.Content = append([]byte{}, c.Content...)
	}
	return out
}

func cloneValues(vs []Value) []Value {
	if vs == nil {
		return nil
	}
	out := make([]Value, len(vs))
	for i, v := range vs {
		out[i].Kind = v.Kind
		if v.Data != nil {
			out[i].Data = append([]byte{}, v.Data...)
		}
	}
	return out
}

func (r *Reader) fail(err error) error {
	r.err = err
	return err
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

func (r *Reader) checkClaims() error {
	if err := r.got.check(&r.fr.hdr); err != nil {
		return corrupt("segment holds %v", err)
	}
	return nil
}

// decrypted is a chunk read, hashed and decrypted, awaiting decompression.
type decrypted struct {
	idx  uint64
	last bool
	buf  int // which of the scratch comp buffers holds it
	err  error
}

// decryptNext reads, hashes (for the trailer's digest), authenticates and
// decrypts the next chunk into comp buffer buf.
func (r *Reader) decryptNext(buf int) decrypted {
	d := decrypted{idx: r.idx, buf: buf}
	sealed, last, err := r.fr.next()
	if err != nil {
		d.err = err
		return d
	}
	d.last = last
	r.op.comp[buf], d.err = r.op.decrypt(d.idx, last, sealed, r.op.comp[buf])
	r.idx++
	return d
}

// openNext returns the plaintext of the next chunk; after the last chunk it
// verifies the trailer and returns io.EOF.
//
// It overlaps work: while this goroutine decompresses chunk i, a second one
// reads, hashes and decrypts chunk i+1 into the other buffer. openNext waits
// for it before returning, so no goroutine outlives a call, and the two
// never touch the same state (the helper owns the frame reader and r.idx
// until Wait).
func (r *Reader) openNext() ([]byte, error) {
	if r.ahead == nil {
		if r.sawLast {
			_, _, err := r.fr.next() // the trailer: io.EOF once verified
			if err == nil {
				err = corrupt("frame after the last chunk")
			}
			return nil, err
		}
		d := r.decryptNext(0)
		r.ahead = &d
	}
	cur := *r.ahead
	if cur.err != nil {
		return nil, cur.err
	}
	var next decrypted
	var wg sync.WaitGroup
	if !cur.last {
		wg.Go(func() { next = r.decryptNext(1 - cur.buf) })
	}
	plain, err := r.op.decompress(cur.idx, cur.last, r.op.comp[cur.buf])
	wg.Wait()
	if cur.last {
		r.ahead, r.sawLast = nil, true
	} else {
		r.ahead = &next
	}
	return plain, err
}

// fill makes r.cur non-empty, or returns io.EOF at the end of the payload.
func (r *Reader) fill() error {
	for len(r.cur) == 0 {
		plain, err := r.nextChunk()
		if err != nil {
			return err
		}
		r.cur = plain
	}
	return nil
}

func (r *Reader) readByte() (byte, error) {
	if err := r.fill(); err != nil {
		return 0, err
	}
	b := r.cur[0]
	r.cur = r.cur[1:]
	return b, nil
}

// readN returns the next n payload bytes: a slice of the current chunk when
// they lie within it, else a copy assembled in r.scratch.
func (r *Reader) readN(n int) ([]byte, error) {
	if n <= len(r.cur) {
		b := r.cur[:n:n]
		r.cur = r.cur[n:]
		return b, nil
	}
	r.scratch = r.scratch[:0]
	for len(r.scratch) < n {
		if err := r.fill(); err != nil {
			return nil, err
		}
		k := min(n-len(r.scratch), len(r.cur))
		r.scratch = append(r.scratch, r.cur[:k]...)
		r.cur = r.cur[k:]
	}
	return r.scratch, nil
}

// record reads the next record. io.EOF means the payload ended cleanly
// between records (and the trailer verified).
func (r *Reader) record() (byte, []byte, error) {
	kind, err := r.readByte()
	if err != nil {
		return 0, nil, err
	}
	var size uint64
	for shift := uint(0); ; shift += 7 {
		b, err := r.readByte()
		if errors.Is(err, io.EOF) {
			return 0, nil, corrupt("payload ends inside a record")
		} else if err != nil {
			return 0, nil, err
		}
		if shift == 63 && b > 1 || shift > 63 || (b == 0 && shift > 0) {
			return 0, nil, corrupt("bad record length")
		}
		size |= uint64(b&0x7f) << shift
		if b < 0x80 {
			break
		}
	}
	if size > MaxRecordSize {
		return 0, nil, corrupt("record of %d bytes exceeds %d", size, MaxRecordSize)
	}
	body, err := r.readN(int(size))
	if errors.Is(err, io.EOF) {
		return 0, nil, corrupt("payload ends inside a record")
	}
	return kind, body, err
}
