package mysql_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rxvault/rxvault/capture/mysql"
	"github.com/rxvault/rxvault/segment"
)

// TestResumeAcrossRotation restarts a reader whose saved position is in
// one binlog file while what an earlier run delivered, and the agent
// spooled, reaches into the next (FLUSH BINARY LOGS between): shipping the
// spool acknowledges a position in the next file before the resumed stream
// has reread that file's start. The stream must go on through the
// rotation (the next file is no file "written anew"). The position is
// saved once the stream has read the next file's start, with that file's
// own timestamp, so a later restart there resumes too.
func TestResumeAcrossRotation(t *testing.T) {
	m, cfg := newServer(t)
	m.Exec(t, "CREATE TABLE pharmacy.l (id INT PRIMARY KEY)")
	insert := func(i int) { m.Exec(t, fmt.Sprintf("INSERT INTO pharmacy.l VALUES (%d)", i)) }
	lastEnd := func(s *sink) segment.Position {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.ends[len(s.ends)-1]
	}

	run := start(t, cfg)
	insert(1)
	waitFor(t, "insert 1", func() bool { return len(run.sink.data()) >= 1 })
	end1 := endOf(run.sink, run.sink.data()[0].ID)
	run.r.Acknowledge(end1)
	stamp1 := readState(t, cfg.StateDir)["created"]
	time.Sleep(1100 * time.Millisecond) // the next file's stamp is a later second
	m.Exec(t, "FLUSH BINARY LOGS")
	insert(2)
	waitFor(t, "insert 2", func() bool { return len(run.sink.data()) >= 2 })
	end2 := endOf(run.sink, run.sink.data()[1].ID)
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
	if end2.Hi != end1.Hi+1 {
		t.Fatalf("insert 2 ends at %s, insert 1 at %s: want the next binlog file", end2.Format(segment.EngineMariaDB), end1.Format(segment.EngineMariaDB))
	}
	insert(3)

	// The restart: the spooled segment holding insert 2 ships first.
	r, err := mysql.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.StartPos() != end1 {
		t.Fatalf("reopen at %s, want the saved %s", r.StartPos().Format(segment.EngineMariaDB), end1.Format(segment.EngineMariaDB))
	}
	r.Acknowledge(end2)
	if st := readState(t, cfg.StateDir); st["file"] != fmt.Sprintf("mysql-bin.%06d", end1.Hi) || st["created"] != stamp1 {
		t.Errorf("saved before the stream reread the next file: %s; want the position in file %d, stamped %v", st["_data"], end1.Hi, stamp1)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	s := &sink{}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, s) }()
	waitFor(t, "inserts 2 and 3 after the restart", func() bool {
		select {
		case err := <-done:
			t.Fatalf("the resumed stream ended: %v", err)
		default:
		}
		return len(s.data()) >= 2
	})
	if got := s.data(); string(got[0].Changes[0].New[0].Data) != "2" || string(got[1].Changes[0].New[0].Data) != "3" {
		t.Errorf("after the restart the stream delivers %q, %q; want inserts 2 and 3", got[0].Changes[0].New[0].Data, got[1].Changes[0].New[0].Data)
	}
	st := readState(t, cfg.StateDir)
	if st["file"] != fmt.Sprintf("mysql-bin.%06d", end2.Hi) || st["created"] == nil || st["created"] == stamp1 {
		t.Errorf("saved once the stream read the next file: %s; want that file with its own stamp (file %d's was %v)", st["_data"], end1.Hi, stamp1)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// A restart in the next file, checked against its saved stamp.
	run = start(t, cfg)
	insert(4)
	waitFor(t, "inserts 3 and 4 after the second restart", func() bool {
		select {
		case <-run.exited:
			t.Fatalf("the resumed stream ended: %v", run.stop())
		default:
		}
		return len(run.sink.data()) >= 2
	})
	run.r.Acknowledge(lastEnd(run.sink))
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
}
