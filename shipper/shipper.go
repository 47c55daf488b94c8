package shipper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/rxvault/rxvault/archive"
	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/internal/keys"
	"github.com/rxvault/rxvault/internal/logs"
	"github.com/rxvault/rxvault/internal/store"
	"github.com/rxvault/rxvault/segment"
)

// DefaultCatchUpBytes is the default Config.CatchUpBytes.
const DefaultCatchUpBytes = 8 << 20

// Config configures a Shipper.
type Config struct {
	Engine     segment.Engine
	SourceID   string
	Stores     []store.Store // every object goes to all of them; all are required
	Recipients []*keys.Recipient
	SpoolDir   string        // this source's spool directory
	Interval   time.Duration // close the open segment this often ...
	MaxBytes   int64         // ... or once it holds this much payload
	// CatchUpBytes replaces MaxBytes while the reader works through a
	// backlog, until it calls CaughtUp: smaller segments are sealed while
	// reading goes on and acknowledged in steps, and the last one, sealed
	// after the backlog's end, is small. 0 means DefaultCatchUpBytes, or
	// MaxBytes if that is smaller.
	CatchUpBytes int64
	// OnDurable is called, from the shipper's upload goroutine, with a
	// position once every transaction committing before it is in every
	// store. Positions passed to it only increase.
	OnDurable func(segment.Position)
	// Stats, if set, has one entry per store and counts its uploads.
	Stats []*StoreStats
	// Logger receives the shipper's logs, tagged component=shipper; nil
	// discards them.
	Logger *slog.Logger
	Now    func() time.Time
}

// now reads the configured clock.
func (c *Config) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

// filled is a closed segment's spill, waiting to be sealed.
type filled struct {
	spill *segment.Spill
	end   segment.Position
}

// Tip is where a chain stands: its last sealed segment.
type Tip struct {
	Chain   segment.ChainID
	Seq     uint64         // 0 before the first segment
	Digest  segment.Digest // of segment Seq
	EndPos  segment.Position
	EndTime time.Time // the segment's newest commit time
	// LastPos and LastCommit are the commit position and time of the
	// segment's last transaction (zero before the first segment).
	LastPos    segment.Position
	LastCommit time.Time
}

// Shipper is a capture.Sink that archives what it receives. Txn and
// Progress are called from the reader's goroutine; Run owns the goroutines
// that seal and upload.
//
// Nothing is acknowledged before it is durable in every store: a segment is
// sealed into the spool (fsynced), uploaded to each store, and only then is
// its end position passed to OnDurable. What is still in the open segment
// when the process dies is lost from the spool, and the source sends it
// again because it was never acknowledged.
type Shipper struct {
	cfg Config
	src string
	log *slog.Logger

	cutMu sync.Mutex // serializes cut: segments are sealed one at a time, in order

	// writeMu is held while a transaction is written into open, and to
	// replace open (with mu too): Txn writes without mu, so uploads,
	// acknowledgements and Stats go on while a large transaction is
	// compressed into the spill. Lock order: cutMu, writeMu, mu.
	writeMu sync.Mutex
	open    *segment.Spill // transactions of the segment being filled

	mu       sync.Mutex
	openTxns uint64           // open.Tally().Txns, kept here so readers of mu need not wait for writeMu
	openEnd  segment.Position // the stream is complete up to here for open
	full     []filled         // closed segments waiting to be sealed, in order
	pending  []*spoolFile     // sealed, not yet in every store
	tip      Tip
	saved    uint64 // the seq in the spool's tip file (uploadLoop's, after New)
	acked    segment.Position
	// durableTime is the newest commit time in every store.
	durableTime time.Time
	failed      error // a permanent upload failure: the shipper stops
	caughtUp    bool  // the reader has called CaughtUp: segments grow to MaxBytes
	cutNow      chan struct{}
	uploaded    chan struct{} // signalled when the pending queue shrinks
	wake        chan struct{} // signalled when pending grows
}

// New prepares a shipper for the chain at tip, taking over any segments a
// previous run left sealed in the spool (they must continue tip's chain).
// tip must be durable in every store (or a new chain's start); it is
// saved in the spool, and so is each later segment once every store
// holds it (see Resume).
func New(cfg Config, tip Tip) (*Shipper, error) {
	if len(cfg.Stores) == 0 || len(cfg.Recipients) == 0 {
		return nil, errors.New("shipper: need stores and recipients")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OnDurable == nil {
		cfg.OnDurable = func(segment.Position) {}
	}
	if cfg.CatchUpBytes <= 0 {
		cfg.CatchUpBytes = DefaultCatchUpBytes
	}
	cfg.CatchUpBytes = min(cfg.CatchUpBytes, cfg.MaxBytes)
	cfg.ensureStats()
	if err := initSpool(cfg.SpoolDir); err != nil {
		return nil, err
	}
	if err := saveTip(cfg.SpoolDir, cfg.Engine, tip); err != nil {
		return nil, err
	}
	s := &Shipper{
		cfg:         cfg,
		src:         archive.SourceDir(cfg.Engine, cfg.SourceID),
		log:         logs.For(cfg.Logger, "shipper"),
		tip:         tip,
		saved:       tip.Seq,
		durableTime: tip.EndTime, // tip comes from the stores: durable
		cutNow:      make(chan struct{}, 1),
		uploaded:    make(chan struct{}, 1),
		wake:        make(chan struct{}, 1),
	}
	ready, err := loadReady(cfg.SpoolDir)
	if err != nil {
		return nil, err
	}
	for _, f := range ready {
		if f.hdr.Chain != tip.Chain {
			// Left by a run on a chain that has since ended: upload it,
			// but never acknowledge its positions to the new stream.
			f.foreign = true
			s.pending = append(s.pending, f)
			continue
		}
		if f.hdr.Seq <= tip.Seq {
			// Sealed, and the stores already have it (tip came from them).
			s.pending = append(s.pending, f)
			continue
		}
		if f.hdr.Seq != s.tip.Seq+1 || (s.tip.Seq > 0 && f.hdr.PrevHash != s.tip.Digest) {
			return nil, fmt.Errorf("spool segment %s does not follow the chain tip (seq %d): move %s away", f.name, s.tip.Seq, f.path)
		}
		s.pending = append(s.pending, f)
		s.tip = Tip{Chain: tip.Chain, Seq: f.hdr.Seq, Digest: f.sum.Digest, EndPos: f.hdr.EndPos}
	}
	if s.open, err = segment.NewSpill(cfg.SpoolDir, segment.SpillSegment); err != nil {
		return nil, err
	}
	return s, nil
}

// Tip returns where the chain stands (the last sealed segment).
func (s *Shipper) Tip() Tip {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tip
}

// Txn implements capture.Sink: it appends the transaction to the open
// segment, spilling to disk as it goes.
func (s *Shipper) Txn(ctx context.Context, t *capture.Txn) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	failed := s.failed
	s.mu.Unlock()
	if failed != nil {
		return failed
	}
	if err := s.open.Begin(t.Info); err != nil {
		return fmt.Errorf("shipper: %w", err)
	}
	for c, err := range t.Changes {
		if err != nil {
			return fmt.Errorf("shipper: read transaction %s: %w", t.Info.ID, err)
		}
		if err := s.open.Change(0, c); err != nil {
			return fmt.Errorf("shipper: %w", err)
		}
	}
	if err := s.open.Commit(); err != nil {
		return fmt.Errorf("shipper: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.openTxns++
	s.openEnd = maxPos(s.openEnd, t.End)
	limit := s.cfg.MaxBytes
	if !s.caughtUp {
		limit = s.cfg.CatchUpBytes
	}
	if s.open.Size() >= limit {
		// Close the segment here, so none outgrows max_bytes however
		// fast transactions come; the cutter seals it.
		if err := s.rotateLocked(); err != nil {
			return err
		}
		signal(s.cutNow)
	}
	return nil
}

// rotateLocked closes the open segment, if it holds a transaction, and
// queues it for sealing. s.writeMu and s.mu are held.
func (s *Shipper) rotateLocked() error {
	if s.openTxns == 0 {
		return nil
	}
	next, err := segment.NewSpill(s.cfg.SpoolDir, segment.SpillSegment)
	if err != nil {
		return err
	}
	s.full = append(s.full, filled{spill: s.open, end: s.openEnd})
	s.open, s.openTxns, s.openEnd = next, 0, segment.Position{}
	return nil
}

// Progress implements capture.Sink: every transaction before pos has been
// delivered. While the open segment holds a transaction, its end moves to
// pos, and the source may release what lies before pos once the segment
// is stored. Progress while the open segment is empty is not recorded: no
// segment would carry it, and acknowledging it would move the source's
// anchor past the archive's end (a restart would see a gap). The next
// transaction (a heartbeat at the latest) carries the stream on.
func (s *Shipper) Progress(ctx context.Context, pos segment.Position, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	if s.openTxns > 0 {
		s.openEnd = maxPos(s.openEnd, pos)
	}
	return nil
}

// CaughtUp implements capture.Sink: the reader has drained the source's
// backlog. The open segment is closed and sealed now rather than at the
// next interval, so what piled up while the agent was away (a restart, an
// outage) is durable and acknowledged as soon as it has been read. From
// now on segments grow to MaxBytes rather than CatchUpBytes.
func (s *Shipper) CaughtUp(ctx context.Context) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	s.caughtUp = true
	if err := s.rotateLocked(); err != nil {
		return err
	}
	signal(s.cutNow)
	return nil
}

// Run seals a segment every Interval (or when one fills) and uploads
// sealed segments until ctx ends. It returns ctx's error, or the first
// permanent failure (an object that exists with other content).
func (s *Shipper) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.cutLoop(ctx); err != nil {
			cancel(err)
		}
	})
	wg.Go(func() {
		if err := s.uploadLoop(ctx); err != nil {
			cancel(err)
		}
	})
	wg.Wait()
	s.writeMu.Lock()
	s.mu.Lock()
	s.open.Close()
	for _, q := range s.full {
		q.spill.Close()
	}
	s.full = nil
	s.mu.Unlock()
	s.writeMu.Unlock()
	return context.Cause(ctx)
}

// Flush seals the open segment now and waits until every sealed segment is
// in every store (or ctx ends). Run must be running.
func (s *Shipper) Flush(ctx context.Context) error {
	if err := s.cut(true); err != nil {
		return err
	}
	for {
		s.mu.Lock()
		n, failed := len(s.pending), s.failed
		s.mu.Unlock()
		switch {
		case failed != nil:
			return failed
		case n == 0:
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.uploaded:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *Shipper) cutLoop(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		rotate := false
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			rotate = true
		case <-s.cutNow:
			// Whoever signalled closed the open segment.
		}
		if err := s.cut(rotate); err != nil {
			return err
		}
	}
}

// cut seals every closed segment into the spool, in order, after closing
// the open one if rotate is set.
func (s *Shipper) cut(rotate bool) error {
	s.cutMu.Lock()
	defer s.cutMu.Unlock()
	if rotate {
		s.writeMu.Lock() // waits for a transaction being written
	}
	s.mu.Lock()
	var err error
	if rotate {
		err = s.rotateLocked()
	}
	queue := s.full
	s.full = nil
	tip := s.tip
	s.mu.Unlock()
	if rotate {
		s.writeMu.Unlock()
	}
	if err != nil {
		return err
	}
	for i, q := range queue {
		f, err := s.seal(q.spill, tip, q.end)
		q.spill.Close()
		if err != nil {
			for _, rest := range queue[i+1:] {
				rest.spill.Close()
			}
			return err
		}
		tip = Tip{Chain: tip.Chain, Seq: f.hdr.Seq, Digest: f.sum.Digest, EndPos: f.hdr.EndPos, EndTime: f.hdr.EndTime}
		s.mu.Lock()
		s.tip = tip
		s.pending = append(s.pending, f)
		s.mu.Unlock()
		signal(s.wake)
	}
	return nil
}

// seal writes the spilled transactions as segment tip.Seq+1, fsyncs it and
// moves it into ready/.
func (s *Shipper) seal(spill *segment.Spill, tip Tip, end segment.Position) (*spoolFile, error) {
	tally := spill.Tally()
	hdr := segment.Header{
		Engine:   s.cfg.Engine,
		SourceID: s.cfg.SourceID,
		Chain:    tip.Chain,
		Seq:      tip.Seq + 1,
		PrevHash: tip.Digest,
	}
	tally.Apply(&hdr)
	hdr.EndPos = maxPos(end, hdr.LastPos)
	hdr.EndTime = hdr.LastCommit
	_, tmpDir := spoolPaths(s.cfg.SpoolDir)
	tmp, err := os.CreateTemp(tmpDir, "seg-*")
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this is a no-op
	sum, hdr, err := writeSegment(tmp, hdr, s.cfg.Recipients, spill)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("seal segment %d: %w", hdr.Seq, err)
	}
	name := archive.SegmentName(s.src, hdr.Info())
	path, err := sealFile(s.cfg.SpoolDir, tmp.Name(), name)
	if err != nil {
		return nil, err
	}
	s.log.Debug("segment sealed", "seq", hdr.Seq, "txns", hdr.Txns, "bytes", sum.Size)
	return &spoolFile{path: path, name: name, hdr: hdr, sum: sum}, nil
}

// writeSegment encodes the spill's transactions as a segment on f.
func writeSegment(f *os.File, hdr segment.Header, recips []*keys.Recipient, spill *segment.Spill) (segment.Summary, segment.Header, error) {
	w, err := segment.NewWriter(f, hdr, recips)
	if err != nil {
		return segment.Summary{}, hdr, err
	}
	if err := w.WriteSpill(spill); err != nil {
		return segment.Summary{}, hdr, err
	}
	sum, err := w.Close()
	return sum, w.Header(), err
}

func maxPos(a, b segment.Position) segment.Position {
	if b.Compare(a) > 0 {
		return b
	}
	return a
}

// signal wakes a goroutine waiting on c without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
