package testenv

import (
	"context"
	"errors"
	"os/exec"
	"sync"
	"syscall"
	"testing"
)

// server is what every test server shares: at most one process at a
// time, started from command and ready once ready answers, stopped with
// stopSig. The server types embed it and set its fields before the
// first start.
type server struct {
	name    string                          // "postgres", "mariadb", "minio": for logs and errors
	logPath string                          // the process's output
	stopSig syscall.Signal                  // a clean shutdown
	command func() *exec.Cmd                // a new command line, environment and directory
	ready   func(ctx context.Context) error // nil once the server serves

	mu   sync.Mutex
	proc *process // nil while stopped
}

// Start restarts a stopped server on the same data directory and ports.
// It must be called from the test's goroutine.
func (s *server) Start(t testing.TB) {
	t.Helper()
	if err := restart(s.start); err != nil {
		dumpLog(t, s.name, s.logPath)
		t.Fatalf("testenv: restart %s: %v", s.name, err)
	}
}

// Stop shuts the server down cleanly and waits for it. It must be called
// from the test's goroutine.
func (s *server) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("testenv: stop %s: %v", s.name, err)
	}
}

// Shutdown stops a server started outside of a test (see LaunchPostgres,
// LaunchMariaDB).
func (s *server) Shutdown() error { return s.stop() }

// Kill kills the server (its whole process group) with SIGKILL, like a
// crash, and waits for it. Start recovers the same data directory.
func (s *server) Kill(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		s.proc.kill()
		s.proc = nil
	}
}

// PID returns the server's process id, or 0 while stopped.
func (s *server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.pid
}

// start starts the process and waits until it is ready.
func (s *server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return errors.New("already running")
	}
	p, err := startProcess(s.name, s.command(), s.logPath)
	if err != nil {
		return err
	}
	if err := waitReady(p, s.ready); err != nil {
		p.kill()
		return err
	}
	s.proc = p
	return nil
}

// startOnFreePorts starts the server on ports pick chooses (free ones,
// set in the server's fields), choosing again while another process takes
// them first.
func (s *server) startOnFreePorts(pick func() error) error {
	for attempt := 0; ; attempt++ {
		if err := pick(); err != nil {
			return err
		}
		err := s.start()
		if err == nil || !errors.Is(err, errPortInUse) || attempt == 4 {
			return err
		}
	}
}

// stop stops the process with stopSig and waits for it.
func (s *server) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return nil
	}
	err := s.proc.stop(s.stopSig)
	s.proc = nil
	return err
}

// forTest finishes a start for test t: s (nil if the launch got nowhere)
// is stopped when the test ends, and a launch error fails the test with
// s's log. A test that failed gets the tail of s's log too, so a server
// that died under it says why.
func (s *server) forTest(t testing.TB, err error) {
	t.Helper()
	if s != nil {
		t.Cleanup(func() {
			if t.Failed() {
				dumpLog(t, s.name, s.logPath)
			}
			if err := s.stop(); err != nil {
				t.Errorf("testenv: stop %s: %v", s.name, err)
			}
		})
	}
	if err != nil {
		if s != nil {
			dumpLog(t, s.name, s.logPath)
		}
		t.Fatalf("testenv: %v", err)
	}
}

// launched finishes a start outside of a test: on err, s (nil if the
// launch got nowhere) is stopped.
func (s *server) launched(err error) error {
	if err != nil && s != nil {
		if serr := s.stop(); serr != nil {
			err = errors.Join(err, serr)
		}
	}
	return err
}
