package shipper

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/rxvault/rxvault/internal/store"
	"github.com/rxvault/rxvault/segment"
)

// ErrConflict marks an upload that can never succeed: the store holds an
// object of that name with other content (another agent writes the same
// chain, or the archive was tampered with).
var ErrConflict = errors.New("store holds other content under this name")

// uploadLoop uploads pending segments in order, retrying through store
// outages, and reports durable positions.
func (s *Shipper) uploadLoop(ctx context.Context) error {
	const maxBackoff = 30 * time.Second
	backoff := time.Second
	for {
		s.mu.Lock()
		var head *spoolFile
		if len(s.pending) > 0 {
			head = s.pending[0]
		}
		s.mu.Unlock()

		// Progress reported while nothing was open is never acknowledged
		// by itself: only a stored segment's end is. The source's anchor
		// then never stands past the archive's end, where a restart would
		// find a gap; the heartbeat's transactions keep it moving.
		if head == nil {
			select {
			case <-ctx.Done():
				return nil
			case <-s.wake:
			}
			continue
		}
		err := s.upload(ctx, head)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrConflict):
			s.mu.Lock()
			s.failed = err
			s.mu.Unlock()
			return err
		case err != nil:
			s.log.Warn("upload failed; segment stays in the spool and is retried", "segment", head.name, "retry_in", backoff, "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = time.Second
		// The spool's tip file moves to head before head leaves the
		// spool, so the spool always knows where the chain stands.
		keep := false
		if !head.foreign && head.hdr.Seq > s.saved {
			h := head.hdr
			tip := Tip{Chain: h.Chain, Seq: h.Seq, Digest: head.sum.Digest, EndPos: h.EndPos, EndTime: h.EndTime, LastPos: h.LastPos, LastCommit: h.LastCommit}
			if err := saveTip(s.cfg.SpoolDir, s.cfg.Engine, tip); err != nil {
				s.log.Warn("spool: uploaded segment kept: the tip file could not be saved", "segment", head.name, "err", err)
				keep = true
			} else {
				s.saved = h.Seq
			}
		}
		if !keep {
			if err := os.Remove(head.path); err != nil {
				s.log.Warn("spool: remove uploaded segment", "path", head.path, "err", err)
			}
		}
		s.mu.Lock()
		s.pending = s.pending[1:]
		if !head.foreign && head.hdr.EndTime.After(s.durableTime) {
			s.durableTime = head.hdr.EndTime
		}
		s.mu.Unlock()
		signal(s.uploaded)
		if !head.foreign {
			s.ack(head.hdr.EndPos)
		}
	}
}

// ack reports pos durable if it moves forward.
func (s *Shipper) ack(pos segment.Position) {
	s.mu.Lock()
	if pos.Compare(s.acked) <= 0 {
		s.mu.Unlock()
		return
	}
	s.acked = pos
	s.mu.Unlock()
	s.cfg.OnDurable(pos)
}

// upload puts f into every store that does not hold it yet, concurrently.
func (s *Shipper) upload(ctx context.Context, f *spoolFile) error {
	if f.done == nil {
		f.done = make(map[int]bool)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(s.cfg.Stores))
	for i, st := range s.cfg.Stores {
		if f.done[i] {
			continue
		}
		wg.Go(func() { errs[i] = putFile(ctx, st, f.name, f.path, f.sum.Size) })
	}
	wg.Wait()
	for i, err := range errs {
		switch {
		case f.done[i]:
		case err == nil:
			f.done[i] = true
			s.cfg.Stats[i].stored(f.sum.Size)
		case ctx.Err() == nil:
			s.cfg.Stats[i].failed(err, s.cfg.now())
		}
	}
	return errors.Join(errs...)
}

// putFile writes the local file at path to st as name. An object already
// there with the same bytes (an earlier attempt that landed) is success.
func putFile(ctx context.Context, st store.Store, name, path string, size int64) error {
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("upload %s: %w", name, err)
	}
	defer fh.Close()
	err = st.Put(ctx, name, fh, size)
	if !errors.Is(err, store.ErrExists) {
		if err != nil {
			return fmt.Errorf("upload %s to %s: %w", name, st, err)
		}
		return nil
	}
	if _, err := fh.Seek(0, 0); err != nil {
		return fmt.Errorf("upload %s: %w", name, err)
	}
	same, err := store.SameContent(ctx, st, name, fh, size)
	if err != nil {
		return fmt.Errorf("upload %s to %s: compare existing object: %w", name, st, err)
	}
	if !same {
		return fmt.Errorf("upload %s to %s: %w (is another agent writing this chain?)", name, st, ErrConflict)
	}
	return nil
}
