package mysql_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/capture/capturetest"
	"github.com/rxvault/rxvault/capture/mysql"
	"github.com/rxvault/rxvault/internal/testenv"
)

// TestContract runs the capture contract suite against a private MariaDB
// server: one server, and a database with a state directory (its saved
// position) of its own per case.
func TestContract(t *testing.T) {
	capturetest.Run(t, &contractHarness{m: testenv.StartMariaDB(t)})
}

type contractHarness struct {
	m *testenv.MariaDB
	n int
}

func (h *contractHarness) NewSource(t *testing.T) capturetest.Source {
	h.n++
	db := fmt.Sprintf("contract%d", h.n)
	h.m.CreateDatabase(t, db)
	return &contractSource{t: t, m: h.m, db: db, stateDir: t.TempDir()}
}

// contractSource is one database and its saved position.
type contractSource struct {
	t        *testing.T
	m        *testenv.MariaDB
	db       string
	stateDir string
}

func (s *contractSource) Connect(t *testing.T) capturetest.Conn {
	c, err := client.ConnectWithContext(t.Context(), s.m.Addr(), s.m.User, s.m.Password, s.db, 10*time.Second)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return mySession{c}
}

func (s *contractSource) Open(ctx context.Context, opts capturetest.Options) (capture.Reader, error) {
	r, err := mysql.Open(ctx, mysql.Config{
		DSN:            s.m.DSN(s.db) + "?tls=false",
		StateDir:       s.stateDir,
		SpillDir:       opts.SpillDir,
		SpillThreshold: opts.SpillThreshold,
		Heartbeat:      200 * time.Millisecond,
		Logger:         slog.New(slog.NewTextHandler(testLog{s.t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return r, nil
}

// LoseStream purges the binlog past the saved position: two rotations,
// then everything before the newest file.
func (s *contractSource) LoseStream(t *testing.T) {
	s.m.Exec(t, "FLUSH BINARY LOGS")
	s.m.Exec(t, "FLUSH BINARY LOGS")
	last, _ := s.m.Exec(t, "SHOW MASTER STATUS").GetString(0, 0)
	// A dump thread of a reader that just stopped may hold its file a
	// moment longer; the purge skips a file in use.
	deadline := time.Now().Add(time.Minute)
	for {
		s.m.Exec(t, "PURGE BINARY LOGS TO '"+last+"'")
		if first, _ := s.m.Exec(t, "SHOW BINARY LOGS").GetString(0, 0); first == last {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("binlogs before %s not purged", last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type mySession struct{ c *client.Conn }

func (s mySession) Exec(_ context.Context, q string) error {
	_, err := s.c.Execute(q)
	return err
}

// testLog writes a reader's log lines to the test's log.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
