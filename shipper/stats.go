package shipper

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/rxvault/rxvault/segment"
)

// StoreStats counts one store's uploads, for monitoring. Safe for
// concurrent use; the zero value is ready.
type StoreStats struct {
	segments, bytes, errors, retries atomic.Uint64

	mu        sync.Mutex
	down      bool
	downSince time.Time
	lastErr   string
}

// Retried counts an attempt the store's retry layer repeats; pass it as
// store.RetryPolicy.OnRetry.
func (s *StoreStats) Retried(string) { s.retries.Add(1) }

func (s *StoreStats) stored(bytes int64) {
	s.segments.Add(1)
	s.bytes.Add(uint64(bytes))
	s.mu.Lock()
	s.down, s.downSince, s.lastErr = false, time.Time{}, ""
	s.mu.Unlock()
}

func (s *StoreStats) failed(err error, now time.Time) {
	s.errors.Add(1)
	s.mu.Lock()
	if !s.down {
		s.down, s.downSince = true, now
	}
	s.lastErr = err.Error()
	s.mu.Unlock()
}

// Unreachable records that the store did not answer a call other than an
// upload (at start, or reading the archive): it is down from now, as
// after a failed upload, but no upload error is counted.
func (s *StoreStats) Unreachable(err error, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.down {
		s.down, s.downSince = true, now
	}
	s.lastErr = err.Error()
}

// StoreSnapshot is a StoreStats at one moment.
type StoreSnapshot struct {
	Up        bool
	DownSince time.Time
	LastError string
	Segments  uint64
	Bytes     uint64
	Errors    uint64
	Retries   uint64
}

// Snapshot reads the counters.
func (s *StoreStats) Snapshot() StoreSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return StoreSnapshot{
		Up: !s.down, DownSince: s.downSince, LastError: s.lastErr,
		Segments: s.segments.Load(), Bytes: s.bytes.Load(), Errors: s.errors.Load(), Retries: s.retries.Load(),
	}
}

// ensureStats gives every store a StoreStats if the caller gave none.
func (c *Config) ensureStats() {
	if len(c.Stats) == len(c.Stores) {
		return
	}
	c.Stats = make([]*StoreStats, len(c.Stores))
	for i := range c.Stats {
		c.Stats[i] = &StoreStats{}
	}
}

// Stats is the shipper's state at one moment.
type Stats struct {
	// Durable is the position up to which everything is in every store.
	Durable segment.Position
	// DurableTime is the newest commit time stored in every store: every
	// transaction committed up to it is durable.
	DurableTime time.Time
	// Spool counts sealed segments waiting for a store, and their bytes.
	SpoolSegments int
	SpoolBytes    int64
}

// Stats reports the shipper's state.
func (s *Shipper) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Durable: s.acked, DurableTime: s.durableTime, SpoolSegments: len(s.pending)}
	for _, f := range s.pending {
		st.SpoolBytes += f.sum.Size
	}
	return st
}
