package testenv_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rxvault/rxvault/internal/testenv"
)

// TestHelperOrphan is not a test: run by TestKilledTestBinaryTakesServersDown
// in a child test binary, it starts servers, prints their pids and dirs, and
// waits to be killed.
func TestHelperOrphan(t *testing.T) {
	if os.Getenv("RXVAULT_TESTENV_ORPHAN") != "1" {
		t.Skip("helper process for TestKilledTestBinaryTakesServersDown")
	}
	pg := testenv.StartPostgres(t)
	my := testenv.StartMariaDB(t)
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	fmt.Printf("server %d %s\n", pg.PID(), pg.Dir())
	fmt.Printf("server %d %s\n", my.PID(), my.Dir())
	fmt.Printf("server %d %s\n", m.PID(), m.Dir())
	fmt.Println("ready")
	select {} // killed by the parent
}

func TestKilledTestBinaryTakesServersDown(t *testing.T) {
	testenv.Need(t, testenv.ServerPostgres)
	testenv.Need(t, testenv.ServerMariaDB)
	testenv.Need(t, testenv.ServerMinIO)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperOrphan$", "-test.v")
	cmd.Env = append(os.Environ(), "RXVAULT_TESTENV_ORPHAN=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pids []int
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if line == "ready" {
			break
		}
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "server" {
			pid, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("bad helper line %q", line)
			}
			pids = append(pids, pid)
			if len(f) == 3 {
				dir := f[2]
				t.Cleanup(func() { os.RemoveAll(dir) })
			}
		}
	}
	if got, want := len(pids), 3; got != want {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper reported %d servers, want %d", got, want)
	}
	for _, pid := range pids {
		if !testenv.Alive(pid) {
			t.Fatalf("server %d not running before the kill", pid)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // killed: the error is expected
	// The kernel delivers SIGKILL to the servers at once; give the
	// orphans time to be reaped. The bound is a hang guard only.
	for _, pid := range pids {
		deadline := time.Now().Add(time.Minute)
		for testenv.Alive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if testenv.Alive(pid) {
			t.Errorf("server %d (or its group) survived the killed test binary", pid)
		}
	}
}
