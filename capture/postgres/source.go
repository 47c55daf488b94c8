package postgres

import (
	"context"

	"github.com/rxvault/rxvault/capture"
)

// Source opens change streams and dumps of one PostgreSQL database: the
// capture.Source the agent drives.
type Source struct {
	cfg Config
	lag lagConn
}

var _ capture.Source = (*Source)(nil)

// NewSource returns a Source for cfg; nothing is checked until Open or
// Dump.
func NewSource(cfg Config) *Source { return &Source{cfg: cfg} }

// Open opens a Reader (see Open).
func (s *Source) Open(ctx context.Context) (capture.Reader, error) {
	r, err := Open(ctx, s.cfg)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Dump starts a base-backup dump (see Dump).
func (s *Source) Dump(ctx context.Context) (capture.Dump, error) {
	d, err := Dump(ctx, s.cfg)
	if err != nil {
		return nil, err
	}
	return d, nil
}
