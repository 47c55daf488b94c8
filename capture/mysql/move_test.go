package mysql_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/capture/mysql"
	"github.com/rxvault/rxvault/internal/testenv"
	"github.com/rxvault/rxvault/segment"
)

// TestMoveServer follows a source named by Config.ID from primary m1 to
// its replica m2: the stream resumes after the saved GTID position, in
// epoch 1, re-sending what was delivered but not acknowledged, and goes
// on with m2's own transactions. A server that does not run
// gtid_strict_mode, and one lacking an archived transaction, are refused
// as lost streams.
func TestMoveServer(t *testing.T) {
	m1 := testenv.StartMariaDB(t)
	m2 := testenv.StartMariaDBReplica(t, m1, 2)
	m1.CreateDatabase(t, "pharmacy")
	m1.Exec(t, "CREATE TABLE pharmacy.t (id INT PRIMARY KEY)")
	cfg := configFor(t, m1)
	cfg.ID = "pharmacy-main"

	run := start(t, cfg)
	for _, q := range []string{"INSERT INTO pharmacy.t VALUES (1)", "INSERT INTO pharmacy.t VALUES (2)", "INSERT INTO pharmacy.t VALUES (3)"} {
		m1.Exec(t, q)
	}
	waitFor(t, "3 inserts", func() bool { return len(run.sink.data()) >= 3 })
	first := run.sink.data()
	acked := endOf(run.sink, first[1].ID) // the third insert is delivered, not acknowledged
	run.r.Acknowledge(acked)
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
	m2.CatchUp(t, m1)
	saved := readState(t, cfg.StateDir)
	m1.Stop(t)
	m2.Promote(t)

	cfg2 := cfg
	cfg2.DSN = configFor(t, m2).DSN
	src := mysql.NewSource(cfg2)
	defer src.Close()
	ctx := t.Context()
	r, err := src.Open(ctx)
	if err != nil {
		t.Fatalf("open on the promoted replica: %v", err)
	}
	if r.SlotCreated() || r.StartPos() != acked {
		t.Fatalf("open on the promoted replica: created %v, start %s; want the saved position %s", r.SlotCreated(), r.StartPos().Format(segment.EngineMariaDB), acked.Format(segment.EngineMariaDB))
	}
	if lag, err := src.Lag(ctx); err != nil || lag.Bytes != -1 || lag.Epoch != 1 || !strings.HasPrefix(lag.Server, "2@") {
		t.Errorf("lag before anything of the new server is acknowledged: %+v, %v; want unknown (-1), from server 2 in epoch 1", lag, err)
	}
	rctx, cancel := context.WithCancel(ctx)
	s := &sink{}
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx, s) }()
	m2.Exec(t, "INSERT INTO pharmacy.t VALUES (4)")
	waitFor(t, "the re-sent insert and m2's", func() bool { return len(s.data()) >= 2 })
	got := s.data()
	if got[0].ID != first[2].ID {
		t.Errorf("first transaction from m2: %s, want the unacknowledged %s re-sent", got[0].ID, first[2].ID)
	}
	if !strings.HasPrefix(got[1].ID, "0-2-") {
		t.Errorf("second transaction from m2: %s, want m2's own GTID", got[1].ID)
	}
	for i, tx := range got[:2] {
		if tx.Pos.Hi>>32 != 1 || tx.Pos.Compare(first[2].Pos) <= 0 {
			t.Errorf("transaction %d from m2 at %s: want epoch 1, after every position of m1", i, tx.Pos.Format(segment.EngineMariaDB))
		}
	}
	r.Acknowledge(endOf(s, got[1].ID))
	if lag, err := src.Lag(ctx); err != nil || lag.Bytes < 0 || lag.Retained <= 0 {
		t.Errorf("lag once m2's stream is acknowledged: %+v, %v", lag, err)
	}
	d, err := src.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.Pos().Hi>>32 != 1 {
		t.Errorf("base backup of m2 at %s: want epoch 1", d.Pos().Format(segment.EngineMariaDB))
	}
	d.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r.Close()
	if st := readState(t, cfg.StateDir); st["epoch"] != float64(1) || !strings.Contains(st["gtid"].(string), "0-2-") {
		t.Errorf("saved state after m2's transaction was acknowledged: %v", st)
	}

	// Refusals, each from m1's saved state.
	refused := func(what string, cfg mysql.Config, want string) {
		t.Helper()
		cfg.StateDir = t.TempDir()
		writeState(t, cfg.StateDir, saved)
		_, err := mysql.Open(ctx, cfg)
		if !errors.Is(err, capture.ErrStreamLost) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want a lost stream naming %q", what, err, want)
		}
		if left, _ := filepath.Glob(filepath.Join(cfg.StateDir, "*.json")); len(left) != 0 {
			t.Errorf("%s: the saved position is still there: %v", what, left)
		}
	}
	m2.Exec(t, "SET GLOBAL gtid_strict_mode = OFF")
	refused("no gtid_strict_mode", cfg2, "gtid_strict_mode")
	m2.Exec(t, "SET GLOBAL gtid_strict_mode = ON")
	// A replica of m2 from its current position on: it has none of m1's
	// GTIDs.
	m3 := testenv.StartMariaDBReplica(t, m2, 3)
	m3.CreateDatabase(t, "pharmacy")
	cfg3 := cfg
	cfg3.DSN = configFor(t, m3).DSN
	refused("a server without the archived transactions", cfg3, "lacks the archived transaction")
}

// endOf returns the end of the delivered transaction with GTID id.
func endOf(s *sink, id string) segment.Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, tx := range s.txns {
		if tx.ID == id {
			return s.ends[i]
		}
	}
	return segment.Position{}
}

// readState reads the one saved position in dir as JSON.
func readState(t *testing.T, dir string) map[string]any {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "binlog-position-*.json"))
	if len(files) != 1 {
		t.Fatalf("saved positions in %s: %v", dir, files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	st["_name"] = filepath.Base(files[0])
	st["_data"] = string(data)
	return st
}

// writeState puts a saved position read by readState into dir.
func writeState(t *testing.T, dir string, st map[string]any) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, st["_name"].(string)), []byte(st["_data"].(string)), 0o600); err != nil {
		t.Fatal(err)
	}
}
