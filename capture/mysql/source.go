package mysql

import (
	"context"
	"fmt"
	"sync"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/segment"
)

// Source opens binlog streams and dumps of one MySQL or MariaDB database:
// the capture.Source the agent drives.
type Source struct {
	cfg Config

	mu    sync.Mutex
	state *stateFile // of the last opened reader, for Lag
	base  binlogFile

	lagMu   sync.Mutex
	lagConn *client.Conn // kept between Lag calls; nil after an error
}

var (
	_ capture.Source      = (*Source)(nil)
	_ capture.LagReporter = (*Source)(nil)
)

// NewSource returns a Source for cfg; nothing is checked until Open or
// Dump.
func NewSource(cfg Config) *Source { return &Source{cfg: cfg} }

// Open opens a Reader (see Open).
func (s *Source) Open(ctx context.Context) (capture.Reader, error) {
	r, err := Open(ctx, s.cfg)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.state, s.base = r.state, r.base
	s.mu.Unlock()
	return r, nil
}

// Dump starts a base-backup dump (see Dump) and places its position in
// the stream's epoch: that of the last opened reader, or of the saved
// position when none was opened. A dump of a server other than the one
// the stream follows fails: its position would mean nothing in the
// stream.
func (s *Source) Dump(ctx context.Context) (capture.Dump, error) {
	d, err := Dump(ctx, s.cfg)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	st := s.state
	s.mu.Unlock()
	server, epoch := d.server, uint32(0)
	if st != nil {
		_, epoch = st.position()
		server = st.streamedServer()
	} else if s.cfg.StateDir != "" {
		saved := newStateFile(s.cfg.StateDir, d.id, d.server, binlogFile{})
		sp, _, ok, err := saved.load()
		if err != nil {
			d.Close()
			return nil, err
		}
		if ok {
			server, epoch = sp.Server, sp.Epoch
		}
	}
	if server != d.server {
		d.Close()
		return nil, fmt.Errorf("mysql dump: the server dumped (%s) is not the one the stream follows (%s): the source has moved and the stream has not yet; retry once the agent streams from this server", d.server, server)
	}
	d.pos.Hi |= uint64(epoch) << 32
	return d, nil
}

// Lag measures the binlog beyond the acknowledged position (Bytes) and
// the binlog files the server holds from that position's file on
// (Retained): what a purge must not remove while rxvault is behind.
func (s *Source) Lag(ctx context.Context) (capture.Lag, error) {
	s.mu.Lock()
	st := s.state
	s.mu.Unlock()
	if st == nil {
		return capture.Lag{Bytes: -1, Retained: -1}, nil
	}
	acked, epoch := st.position()
	s.lagMu.Lock()
	defer s.lagMu.Unlock()
	if s.lagConn == nil {
		_, d, err := s.cfg.withDefaults()
		if err != nil {
			return capture.Lag{}, err
		}
		if s.lagConn, err = connect(ctx, d, ""); err != nil {
			return capture.Lag{}, err
		}
	}
	_, end, err := masterStatus(s.lagConn)
	var logs map[uint64]int64
	if err == nil {
		logs, err = binaryLogs(s.lagConn)
	}
	if err != nil {
		s.lagConn.Close()
		s.lagConn = nil
		return capture.Lag{}, err
	}
	server := st.streamedServer()
	if uint32(acked.Hi>>32) != epoch {
		// The stream has just moved to this server: nothing of its
		// binlog is acknowledged yet, and where the stream started in it
		// is not known.
		return capture.Lag{Bytes: -1, Retained: -1, Server: server, Epoch: epoch}, nil
	}
	files := make(map[uint64]int64, len(logs))
	for n, size := range logs {
		files[uint64(epoch)<<32|n] = size
	}
	end.Hi |= uint64(epoch) << 32
	lag := binlogLag(acked, end, files)
	lag.Server, lag.Epoch = server, epoch
	return lag, nil
}

// Close releases the connection Lag keeps.
func (s *Source) Close() error {
	s.lagMu.Lock()
	defer s.lagMu.Unlock()
	if s.lagConn == nil {
		return nil
	}
	err := s.lagConn.Close()
	s.lagConn = nil
	return err
}

// binlogLag computes the lag from acked to end over files (number → size).
func binlogLag(acked, end segment.Position, files map[uint64]int64) capture.Lag {
	var lag capture.Lag
	if acked.Compare(end) >= 0 {
		for n, size := range files {
			if n >= end.Hi {
				lag.Retained += size
			}
		}
		return lag
	}
	for n, size := range files {
		if n < acked.Hi {
			continue
		}
		lag.Retained += size
		switch {
		case n == acked.Hi && n == end.Hi:
			lag.Bytes += int64(end.Lo - acked.Lo)
		case n == acked.Hi:
			lag.Bytes += size - int64(acked.Lo)
		case n == end.Hi:
			lag.Bytes += int64(end.Lo)
		case n < end.Hi:
			lag.Bytes += size
		}
	}
	return lag
}
