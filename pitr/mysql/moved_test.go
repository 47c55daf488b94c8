package mysql

import (
	"strings"
	"testing"

	"github.com/rxvault/rxvault/segment"
)

// TestMovedSource replays a MariaDB stream that moved from server 1 to
// server 2 (epoch 0 to 1): the new server re-sends the old one's last
// transactions under its own positions, then continues.
func TestMovedSource(t *testing.T) {
	at := func(epoch, file, off uint64) segment.Position { return segment.Position{Hi: epoch<<32 | file, Lo: off} }
	type step struct {
		id   string
		pos  segment.Position
		skip bool
	}
	run := func(t *testing.T, backupPos segment.Position, backupGTID string, steps []step) error {
		t.Helper()
		m := newMovedSource(segment.EngineMariaDB, backupPos, backupGTID)
		for i, s := range steps {
			info := &segment.TxnInfo{ID: s.id, Pos: s.pos}
			dup, err := m.skip(info)
			if err != nil {
				return err
			}
			if dup != s.skip {
				t.Errorf("step %d (%s at %s): skip %v, want %v", i, s.id, s.pos.Format(segment.EngineMariaDB), dup, s.skip)
			}
			if !dup {
				m.applied(info)
			}
		}
		return nil
	}
	steps := []step{
		{"0-1-10", at(0, 3, 100), false},
		{"1-1-4", at(0, 3, 200), false}, // another domain
		{"0-1-11", at(0, 3, 300), false},
		{"0-1-12", at(0, 4, 100), false},
		// Server 2 re-sends from 0-1-10 on.
		{"0-1-10", at(1, 7, 500), true},
		{"1-1-4", at(1, 7, 600), true},
		{"0-1-11", at(1, 7, 700), true},
		{"0-1-12", at(1, 7, 800), true},
		{"0-2-13", at(1, 7, 900), false},
		{"1-2-5", at(1, 7, 950), false},
		{"0-2-14", at(1, 8, 100), false},
	}
	if err := run(t, at(0, 3, 50), "0-1-9", steps); err != nil {
		t.Fatal(err)
	}
	// The backup held 0-1-11 and 0-1-12: their re-sent copies are skipped
	// with nothing replayed from the first epoch.
	if err := run(t, at(0, 4, 200), "0-1-12,1-1-4", []step{
		{"0-1-11", at(1, 7, 700), true},
		{"0-1-12", at(1, 7, 800), true},
		{"0-2-13", at(1, 7, 900), false},
	}); err != nil {
		t.Fatal(err)
	}
	// A first epoch other than 0 (a backup taken after a move) is left
	// alone, and so are transactions without GTIDs.
	if err := run(t, at(2, 1, 4), "", []step{{"0-3-5", at(2, 1, 100), false}, {"", at(2, 1, 200), false}, {"0-3-6", at(2, 1, 300), false}}); err != nil {
		t.Fatal(err)
	}
	// Server 2 never received 0-1-12 and wrote its own 0-2-12: the
	// histories diverge, and replay stops there.
	err := run(t, at(0, 3, 50), "", []step{
		{"0-1-11", at(0, 3, 300), false},
		{"0-1-12", at(0, 4, 100), false},
		{"0-1-11", at(1, 7, 700), true},
		{"0-2-12", at(1, 7, 800), false},
	})
	if err == nil || !strings.Contains(err.Error(), "0-1-12") || !strings.Contains(err.Error(), "histor") {
		t.Fatalf("diverged histories: %v", err)
	}
	if newMovedSource(segment.EnginePostgres, segment.Position{}, "") != nil {
		t.Error("movedSource for PostgreSQL")
	}
}
