package segment

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/rxvault/rxvault/internal/keys"
)

// benchCorpus is the shared input of the segment benchmarks: realistic
// pharmacy row changes (segtest cannot be imported here without a cycle,
// so the internal benchmarks get it through benchTxns, set by an external
// test file).
var benchTxns func() []Txn

type benchData struct {
	txns    []Txn
	header  Header
	payload []byte   // the record stream, as the writer encodes it
	chunks  [][]byte // payload compressed chunk by chunk, zstd only
	segment []byte   // the whole segment
	id      *keys.Identity
}

var benchOnce = sync.OnceValues(func() (*benchData, error) {
	d := &benchData{txns: benchTxns()}
	var t Tally
	for i := range d.txns {
		if err := t.Add(d.txns[i].TxnInfo, uint64(len(d.txns[i].Changes))); err != nil {
			return nil, err
		}
	}
	d.header = Header{Engine: EnginePostgres, SourceID: "bench", Chain: ChainID{1}, Seq: 1}
	t.Apply(&d.header)
	d.header.EndPos, d.header.EndTime = d.header.LastPos, d.header.LastCommit
	var sink bytesSink
	enc := newRecordEncoder(&sink)
	for i := range d.txns {
		if err := enc.begin(&d.txns[i].TxnInfo); err != nil {
			return nil, err
		}
		for j := range d.txns[i].Changes {
			if err := enc.change(&d.txns[i].Changes[j]); err != nil {
				return nil, err
			}
		}
		if err := enc.commit(uint64(len(d.txns[i].Changes))); err != nil {
			return nil, err
		}
	}
	d.payload = sink.b
	zenc, err := benchZstdEncoder()
	if err != nil {
		return nil, err
	}
	for p := d.payload; len(p) > 0; {
		n := min(len(p), DefaultChunkSize)
		d.chunks = append(d.chunks, zenc.EncodeAll(p[:n], nil))
		p = p[n:]
	}
	if d.id, err = keys.GenerateIdentity(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := writeSegment(&buf, d); err != nil {
		return nil, err
	}
	d.segment = buf.Bytes()
	return d, nil
})

// benchZstdEncoder is configured as the segment writer's encoder is.
func benchZstdEncoder() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false), zstd.WithZeroFrames(true), zstd.WithWindowSize(windowFor(DefaultChunkSize)))
}

func writeSegment(w io.Writer, d *benchData) error {
	sw, err := NewWriter(w, d.header, []*keys.Recipient{d.id.Recipient()})
	if err != nil {
		return err
	}
	for i := range d.txns {
		if err := sw.WriteTxn(&d.txns[i]); err != nil {
			return err
		}
	}
	_, err = sw.Close()
	return err
}

func benchSetup(b *testing.B) *benchData {
	if benchTxns == nil {
		b.Skip("no corpus")
	}
	d, err := benchOnce()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(d.payload)))
	b.ReportAllocs()
	return d
}

// BenchmarkEncodeSegment: transactions to a finished segment (record
// encoding, zstd, AES-256-GCM, framing, SHA-256).
func BenchmarkEncodeSegment(b *testing.B) {
	d := benchSetup(b)
	for b.Loop() {
		if err := writeSegment(io.Discard, d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeContainer: the payload bytes to a finished segment
// (zstd, AES-256-GCM, framing, SHA-256), without record encoding.
func BenchmarkEncodeContainer(b *testing.B) {
	d := benchSetup(b)
	for b.Loop() {
		if _, err := writeContainer(io.Discard, d); err != nil {
			b.Fatal(err)
		}
	}
}

// writeContainer seals d.payload as the payload of a segment whose header
// claims no transactions (the claims are not what is measured).
func writeContainer(w io.Writer, d *benchData) (Summary, error) {
	h := Header{Engine: EnginePostgres, SourceID: "bench", Chain: ChainID{1}, Seq: 1}
	sw, err := NewWriter(w, h, []*keys.Recipient{d.id.Recipient()})
	if err != nil {
		return Summary{}, err
	}
	if _, err := sw.seal.Write(d.payload); err != nil {
		return Summary{}, err
	}
	return sw.Close()
}

// BenchmarkEncodeZstd: zstd alone on the same payload bytes, chunk by chunk.
func BenchmarkEncodeZstd(b *testing.B) {
	d := benchSetup(b)
	zenc, err := benchZstdEncoder()
	if err != nil {
		b.Fatal(err)
	}
	var dst []byte
	for b.Loop() {
		for p := d.payload; len(p) > 0; {
			n := min(len(p), DefaultChunkSize)
			dst = zenc.EncodeAll(p[:n], dst[:0])
			p = p[n:]
		}
	}
}

// BenchmarkDecodeSegment: a segment back to transactions, every change
// visited.
func BenchmarkDecodeSegment(b *testing.B) {
	d := benchSetup(b)
	ids := []*keys.Identity{d.id}
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(d.segment), ids)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.Next(); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				b.Fatal(err)
			}
			for {
				if _, err := r.Change(); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					b.Fatal(err)
				}
			}
		}
		r.Close()
	}
}

// BenchmarkDecodeContainer: a segment back to its payload bytes (framing,
// SHA-256, AES-256-GCM, zstd), without record decoding.
func BenchmarkDecodeContainer(b *testing.B) {
	d := benchSetup(b)
	var buf bytes.Buffer
	if _, err := writeContainer(&buf, d); err != nil {
		b.Fatal(err)
	}
	ids := []*keys.Identity{d.id}
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(buf.Bytes()), ids)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			p, err := r.nextChunk()
			if errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				b.Fatal(err)
			}
			n += len(p)
		}
		if n != len(d.payload) {
			b.Fatalf("decoded %d payload bytes, want %d", n, len(d.payload))
		}
		r.Close()
	}
}

// BenchmarkDecodeZstd: zstd alone decompressing the same payload.
func BenchmarkDecodeZstd(b *testing.B) {
	d := benchSetup(b)
	zdec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		b.Fatal(err)
	}
	var dst []byte
	for b.Loop() {
		for _, c := range d.chunks {
			if dst, err = zdec.DecodeAll(c, dst[:0]); err != nil {
				b.Fatal(err)
			}
		}
	}
}
