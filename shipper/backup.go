package shipper

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/rxvault/rxvault/archive"
	"github.com/rxvault/rxvault/internal/fsutil"
	"github.com/rxvault/rxvault/internal/logs"
	"github.com/rxvault/rxvault/internal/store"
	"github.com/rxvault/rxvault/segment"
)

// DefaultPartSize is the dump bytes per base backup part: small enough to
// upload as one request to any S3 (the limit is 5 GiB) and to retry whole.
const DefaultPartSize = 256 << 20

// Dump is a base backup's source: the dump stream of a consistent snapshot
// and the stream position it joins.
type Dump interface {
	io.Reader
	// Pos is the stream position of the snapshot: transactions committing
	// at or after it are not in the dump and come from the stream.
	Pos() segment.Position
	// Time is the source's clock at Pos.
	Time() time.Time
}

// BackupOptions describes a base backup beyond what Config holds.
type BackupOptions struct {
	Tool       string          // the dump tool and version, for the manifest
	GTID       string          // the source's GTID position at the dump's, for the manifest
	DumpFormat string          // e.g. "pg_dump-custom"
	Chain      segment.ChainID // the chain being written, for the manifest (informational)
	PartSize   int64           // 0 means DefaultPartSize
}

// Backup streams dump into encrypted parts, uploads each to every store
// (with the stores' retention), and writes the manifest last, so that a
// backup without a manifest is known to be incomplete. Memory stays bounded:
// each part goes through one file in the spool, removed once uploaded.
func Backup(ctx context.Context, cfg Config, dump Dump, opts BackupOptions) (*archive.Manifest, error) {
	if opts.PartSize <= 0 {
		opts.PartSize = DefaultPartSize
	}
	partsDir, err := initParts(cfg.SpoolDir, cfg.now())
	if err != nil {
		return nil, err
	}
	now := cfg.now
	id, err := archive.NewID(now())
	if err != nil {
		return nil, err
	}
	src := archive.SourceDir(cfg.Engine, cfg.SourceID)
	m := &archive.Manifest{
		ID: id.String(), Engine: cfg.Engine, SourceID: cfg.SourceID,
		Pos: archive.NewPosition(cfg.Engine, dump.Pos()), Time: dump.Time().UTC().Truncate(time.Microsecond),
		Chain: chainString(opts.Chain), Started: now().UTC(),
		Tool: opts.Tool, DumpFormat: opts.DumpFormat, GTID: opts.GTID,
	}
	for _, r := range cfg.Recipients {
		m.KeyIDs = append(m.KeyIDs, r.ID().String())
	}
	in := bufio.NewReaderSize(dump, 1<<20)
	prev := segment.Digest{}
	for seq := uint64(1); ; seq++ {
		hdr := segment.Header{
			Engine: cfg.Engine, SourceID: cfg.SourceID, Chain: id, Seq: seq, PrevHash: prev,
			Payload: segment.PayloadBytes, EndPos: dump.Pos(), EndTime: m.Time,
		}
		f, n, err := writePart(ctx, cfg, partsDir, hdr, in, opts.PartSize)
		if err != nil {
			return nil, fmt.Errorf("base backup %s part %d: %w", id, seq, err)
		}
		f.name = archive.PartName(src, f.hdr.Info())
		if err := uploadAll(ctx, cfg, f); err != nil {
			os.Remove(f.path)
			return nil, fmt.Errorf("base backup %s part %d: %w", id, seq, err)
		}
		os.Remove(f.path)
		m.Parts, m.LastDigest = int(seq), f.sum.Digest.String()
		m.Bytes += n
		m.Stored += f.sum.Size
		prev = f.sum.Digest
		if _, err := in.Peek(1); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("base backup %s: read dump: %w", id, err)
		}
	}
	m.Finished = now().UTC()
	// Like the parts, the manifest waits out a store that does not answer.
	log := logs.For(cfg.Logger, "shipper")
	for backoff := time.Second; ; backoff = min(2*backoff, 30*time.Second) {
		err := putDoc(ctx, cfg.Stores, archive.ManifestName(src, id), m)
		if err == nil {
			return m, nil
		}
		if !store.IsTransient(err) || ctx.Err() != nil {
			return nil, fmt.Errorf("base backup %s: %w", id, err)
		}
		log.Warn("base backup manifest upload failed; retrying", "backup", id.String(), "retry_in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("base backup %s: %w", id, ctx.Err())
		case <-time.After(backoff):
		}
	}
}

// writePart writes up to size bytes of in as one sealed part in the spool.
func writePart(ctx context.Context, cfg Config, dir string, hdr segment.Header, in io.Reader, size int64) (*spoolFile, int64, error) {
	tmp, err := os.CreateTemp(dir, "part-*")
	if err != nil {
		return nil, 0, err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	w, err := segment.NewWriter(tmp, hdr, cfg.Recipients)
	if err != nil {
		return nil, 0, err
	}
	n, err := io.CopyN(w, ctxReader{ctx, in}, size)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, n, fmt.Errorf("read dump: %w", err)
	}
	sum, err := w.Close()
	if err != nil {
		return nil, n, err
	}
	if err := tmp.Sync(); err != nil {
		return nil, n, err
	}
	if err := tmp.Close(); err != nil {
		return nil, n, err
	}
	ok = true
	return &spoolFile{path: tmp.Name(), hdr: w.Header(), sum: sum}, n, nil
}

// initParts makes the directory base backup parts pass through, apart from
// the shipper's (a backup and the agent's shipper may run at once, even in
// two processes), and removes parts a dead backup left there long ago.
func initParts(spool string, now time.Time) (string, error) {
	dir := filepath.Join(spool, "parts")
	if err := fsutil.MkdirAllSync(dir, 0o700); err != nil {
		return "", fmt.Errorf("spool: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("spool: %w", err)
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && now.Sub(info.ModTime()) > 24*time.Hour {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return dir, nil
}

// uploadAll puts a part into every store, retrying through outages until
// ctx ends.
func uploadAll(ctx context.Context, cfg Config, f *spoolFile) error {
	cfg.ensureStats()
	s := &Shipper{cfg: cfg, log: logs.For(cfg.Logger, "shipper")}
	backoff := time.Second
	for {
		err := s.upload(ctx, f)
		if err == nil || errors.Is(err, ErrConflict) || ctx.Err() != nil {
			return err
		}
		s.log.Warn("base backup upload failed; retrying", "part", f.name, "retry_in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func chainString(c segment.ChainID) string {
	if c == (segment.ChainID{}) {
		return ""
	}
	return c.String()
}

// ctxReader makes a long copy stop when ctx ends.
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
