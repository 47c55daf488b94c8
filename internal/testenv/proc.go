package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to become ready. It is a
// safety net against hangs, not an assertion about speed.
const startTimeout = 2 * time.Minute

// stopTimeout is how long a graceful stop may take before the process group
// is killed.
const stopTimeout = time.Minute

// starter runs every server start on one locked OS thread.
//
// Pdeathsig is delivered when the thread that forked the child exits, not
// when the process does. Go may end an OS thread when a goroutine that
// locked it returns, so a child forked from an arbitrary goroutine could be
// killed in the middle of a test. The starter goroutine locks its thread and
// never returns, so that thread lives exactly as long as the test process,
// and the servers die with the test binary. It is the one goroutine here
// without a stopping owner; by design it ends only with the process.
var starter struct {
	once sync.Once
	reqs chan startReq
}

type startReq struct {
	cmd  *exec.Cmd
	done chan error
}

// startOnLockedThread starts cmd from the starter goroutine's thread.
func startOnLockedThread(cmd *exec.Cmd) error {
	starter.once.Do(func() {
		starter.reqs = make(chan startReq)
		go func() {
			runtime.LockOSThread() // never unlocked: see starter
			for r := range starter.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	starter.reqs <- startReq{cmd: cmd, done: done}
	return <-done
}

// process is one running server process.
type process struct {
	name    string
	pid     int
	logPath string
	done    chan struct{} // closed once the process has been reaped
	waitErr error         // valid after done is closed
}

// startProcess starts cmd in its own process group with Pdeathsig=SIGKILL,
// its output appended to logPath. The caller may preset SysProcAttr (for
// Credential); Setpgid and Pdeathsig are always set.
func startProcess(name string, cmd *exec.Cmd, logPath string) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", name, err)
	}
	defer logf.Close() // the child has its own copy once started
	cmd.Stdout = logf
	cmd.Stderr = logf
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := startOnLockedThread(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, pid: cmd.Process.Pid, logPath: logPath, done: make(chan struct{})}
	// Owned by p: it ends when the child exits, which stop and kill wait for.
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig to the process and waits for it to exit; after stopTimeout
// it kills the whole process group.
func (p *process) stop(sig syscall.Signal) error {
	if p.exited() {
		return nil
	}
	if err := syscall.Kill(p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %s (pid %d): %w", p.name, p.pid, err)
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
		p.kill()
		return fmt.Errorf("%s (pid %d) did not stop within %s; killed", p.name, p.pid, stopTimeout)
	}
}

// kill kills the process, its process group and its direct children with
// SIGKILL, and waits until they are all gone.
//
// PostgreSQL's backends call setsid(), so they are not in the postmaster's
// group; and if they outlived it for a moment, a restarted server would
// find their shared memory "still in use". So the leader is first stopped
// with SIGSTOP: it can then neither fork nor reap, which keeps its
// children's pids from being reused while they are killed. The group id is
// the leader's pid, which cannot be reused before the leader is reaped, so
// only our own processes are hit.
func (p *process) kill() {
	if p.exited() {
		return
	}
	_ = syscall.Kill(p.pid, syscall.SIGSTOP)
	kids := children(p.pid)
	for _, k := range kids {
		_ = syscall.Kill(k, syscall.SIGKILL)
	}
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	<-p.done
	deadline := time.Now().Add(stopTimeout) // a hang guard only
	for time.Now().Before(deadline) {
		alive := Alive(p.pid)
		for _, k := range kids {
			alive = alive || running(k)
		}
		if !alive {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// procStat returns the state and the parent and group ids of process pid
// from /proc, or ok=false if it does not exist.
func procStat(pid int) (state string, ppid, pgrp int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, 0, false
	}
	// pid (comm) state ppid pgrp ...; comm may hold spaces and parens.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 3 {
		return "", 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	pgrp, _ = strconv.Atoi(f[2])
	return f[0], ppid, pgrp, true
}

// running reports whether pid exists and is not a zombie.
func running(pid int) bool {
	state, _, _, ok := procStat(pid)
	return ok && state != "Z" && state != "X"
}

// pids lists the process ids in /proc.
func pids() []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		if id, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, id)
		}
	}
	return out
}

// children lists the processes whose parent is pid.
func children(pid int) []int {
	var out []int
	for _, id := range pids() {
		if _, ppid, _, ok := procStat(id); ok && ppid == pid {
			out = append(out, id)
		}
	}
	return out
}

// Alive reports whether the process pid, or any other process in the
// process group pid, still runs (zombies, which the init process has yet to
// reap, count as gone). Tests use it to check that a stopped server left
// nothing behind.
func Alive(pid int) bool {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		// No /proc: fall back to signal 0, which also sees zombies.
		return syscall.Kill(pid, 0) == nil || syscall.Kill(-pid, 0) == nil
	}
	for _, id := range pids() {
		state, _, pgrp, ok := procStat(id)
		if ok && state != "Z" && state != "X" && (id == pid || pgrp == pid) {
			return true
		}
	}
	return false
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// errPortInUse marks a start that failed because another process took the
// port first; the caller retries with a new port.
var errPortInUse = errors.New("port in use")

// waitReady polls ready until it succeeds, the process exits, or
// startTimeout passes. When the process died and its log says the address
// was in use, the error wraps errPortInUse.
func waitReady(p *process, ready func(ctx context.Context) error) error {
	deadline := time.Now().Add(startTimeout)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		last = ready(ctx)
		cancel()
		if last == nil {
			return nil
		}
		if p.exited() {
			if logMentionsPortInUse(p.logPath) {
				return fmt.Errorf("%s exited: %w", p.name, errPortInUse)
			}
			return fmt.Errorf("%s exited during start (%w): %w", p.name, p.waitErr, last)
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s: %w", p.name, startTimeout, last)
}

// restart runs start, retrying for a while when another process holds the
// server's port (a restart keeps its port, so clients keep their DSNs).
func restart(start func() error) error {
	for attempt := 0; ; attempt++ {
		err := start()
		if err == nil || !errors.Is(err, errPortInUse) || attempt == 10 {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func logMentionsPortInUse(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	s := strings.ToLower(string(b))
	return strings.Contains(s, "address already in use") || strings.Contains(s, "port is already in use") ||
		strings.Contains(s, "address in use")
}

// dumpLog copies the tail of a server log into the test log.
func dumpLog(t testing.TB, name, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Logf("%s log %s: %v", name, path, err)
		return
	}
	defer f.Close()
	const max = 16 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		_, _ = f.Seek(st.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	t.Logf("%s log (%s):\n%s", name, path, b)
}

// shortTempDir makes a temporary directory with a short path (unix socket
// paths are limited to 107 bytes, and t.TempDir embeds the test name) and
// removes it in t.Cleanup. Register it before the server's stop cleanup so
// the server stops first.
func shortTempDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rxv-"+prefix+"-")
	if err != nil {
		t.Fatalf("testenv: temp dir: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("testenv: remove %s: %v", dir, err)
		}
	})
	return dir
}
