package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rxvault/rxvault/integration/myworkload"
	"github.com/rxvault/rxvault/internal/testenv"
	"github.com/rxvault/rxvault/segment"
)

// What only MariaDB has to withstand: a lost spool, which holds the saved
// binlog position (TestMariaDBLostSpool); and the helpers of the
// MariaDB-only tests (failover, binlog rotation, character sets). The
// scenarios every engine runs (crash under load, store outage, lost
// stream, refusals, monitoring) are written once in robust_test.go and
// monitor_test.go, against the harnesses of engines_test.go.

// mrLoad runs w in the background, a transaction every pause or so, until
// the returned stop is called; stop returns the workload's error. w's connection is the workload's
// alone meanwhile: read the database on connections of your own.
func mrLoad(w *myworkload.Runner, pause time.Duration) (stop func() error) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var err error
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if err = w.Step(); err != nil {
				return
			}
			time.Sleep(pause)
		}
	})
	return func() error {
		close(done)
		wg.Wait()
		return err
	}
}

// mrState reads the workload state and the ledger (row count and sum) of
// database db.
func mrState(t *testing.T, m *testenv.MariaDB, db string) (myworkload.State, string) {
	t.Helper()
	c := myConn(t, m, db)
	s, err := myworkload.Snapshot(c)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Execute("SELECT CONCAT(COUNT(*), ' rows, sum ', IFNULL(SUM(amount), 0)) FROM ledger")
	if err != nil {
		t.Fatal(err)
	}
	ledger, _ := r.GetString(0, 0)
	ledger = strings.Clone(ledger)
	r.Close()
	return s, ledger
}

// mrEnd stops at a point the archive can restore exactly: more than a
// heartbeat after the last commit, so the AUTO_INCREMENT counters (which
// rolled-back inserts move without a binlog event) are archived too. It
// returns the source's state and ledger.
func mrEnd(t *testing.T, m *testenv.MariaDB) (myworkload.State, string) {
	t.Helper()
	time.Sleep(1600 * time.Millisecond)
	s, ledger := mrState(t, m, "pharmacy")
	time.Sleep(2 * time.Second) // let the last heartbeats reach the stores
	return s, ledger
}

// mrRestoreLatest restores the archive (from store, or the first
// configured one when empty) into a new database name.
func mrRestoreLatest(t *testing.T, d *deployment, m *testenv.MariaDB, name, store string) {
	t.Helper()
	mrRestoreLatestOut(t, d, m, name, store)
}

// mrRestoreLatestOut is mrRestoreLatest, returning the restore's output.
func mrRestoreLatestOut(t *testing.T, d *deployment, m *testenv.MariaDB, name, store string) string {
	t.Helper()
	m.CreateDatabase(t, name)
	args := []string{"restore", "--latest", "--target", m.DSN(name) + "?tls=false", "--identity", d.identity}
	if store != "" {
		args = append(args, "--store", store)
	}
	code, out, errOut := d.cmd(args...)
	if code != 0 {
		t.Fatalf("restore --latest into %s: exit %d\n%s%s", name, code, out, errOut)
	}
	t.Logf("%s", strings.TrimSpace(out))
	return out
}

// mrOneChain checks that the agent logged no gap and the archive holds
// one chain.
func mrOneChain(t *testing.T, d *deployment, what string) {
	t.Helper()
	if strings.Contains(d.agentLog(), "GAP") {
		t.Errorf("%s: the agent logged a gap", what)
	}
	if l, code := mrListing(t, d, ""); code != 0 || len(l.Chains) != 1 {
		t.Errorf("list %s: exit %d, want 0 and one chain: %+v", what, code, l.Chains)
	}
}

// mrCompare compares database db with the source's state and ledger.
func mrCompare(t *testing.T, what string, m *testenv.MariaDB, db string, want myworkload.State, wantLedger string) {
	t.Helper()
	got, gotLedger := mrState(t, m, db)
	if diff := want.Diff(got); len(diff) > 0 {
		t.Errorf("%s differs from the source:\n  %s", what, strings.Join(diff, "\n  "))
	}
	if gotLedger != wantLedger {
		t.Errorf("%s: ledger %s, source %s", what, gotLedger, wantLedger)
	}
}

// mrSavedPos reads the agent's saved binlog position (the acknowledged end
// of the archive) from the spool; ok is false when there is none.
func mrSavedPos(t *testing.T, d *deployment) (pos segment.Position, ok bool) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(d.dir, "spool", "binlog-position-*.json"))
	if len(files) > 1 {
		t.Fatalf("%d saved binlog positions in one spool: %v", len(files), files)
	}
	if len(files) == 0 {
		return pos, false
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var sp struct {
		File string `json:"file"`
		Pos  uint64 `json:"pos"`
	}
	if err := json.Unmarshal(data, &sp); err != nil {
		t.Fatalf("saved binlog position %s: %v: %s", files[0], err, data)
	}
	i := strings.LastIndexByte(sp.File, '.')
	n, err := strconv.ParseUint(sp.File[i+1:], 10, 64)
	if i < 0 || err != nil {
		t.Fatalf("saved binlog position %s: bad file %q", files[0], sp.File)
	}
	return segment.Position{Hi: n, Lo: sp.Pos}, true
}

// mrList is what the tests read of one source in rxvault list --json.
type mrList struct {
	Chains []struct {
		Chain  string `json:"chain"`
		Gap    bool   `json:"gap"`
		Reason string `json:"reason"`
		End    string `json:"archived_up_to"`
	} `json:"chains"`
	Gaps []string `json:"gaps"`
}

// mrListing runs rxvault list --json on store ("" for the first) and
// returns its one source's listing and list's exit status.
func mrListing(t *testing.T, d *deployment, store string) (mrList, int) {
	t.Helper()
	args := []string{"list", "--json"}
	if store != "" {
		args = append(args, "--store", store)
	}
	code, out, errOut := d.cmd(args...)
	var all []mrList
	if err := json.Unmarshal([]byte(out), &all); err != nil || len(all) != 1 {
		t.Fatalf("list --json: exit %d, %v: %s%s", code, err, out, errOut)
	}
	return all[0], code
}

// mrPurge rotates the binlog twice and purges every file before the
// newest, retrying while the server still holds older ones (MariaDB keeps
// a binlog until InnoDB has checkpointed past it). It returns the newest
// file's name.
func mrPurge(t *testing.T, m *testenv.MariaDB) string {
	t.Helper()
	m.Exec(t, "FLUSH BINARY LOGS")
	m.Exec(t, "FLUSH BINARY LOGS")
	r := m.Exec(t, "SHOW MASTER STATUS")
	newest, _ := r.GetString(0, 0)
	newest = strings.Clone(newest)
	deadline := time.Now().Add(30 * time.Second)
	for {
		m.Exec(t, "PURGE BINARY LOGS TO '"+newest+"'")
		r := m.Exec(t, "SHOW BINARY LOGS")
		first, _ := r.GetString(0, 0)
		if first == newest {
			return newest
		}
		if time.Now().After(deadline) {
			t.Fatalf("PURGE BINARY LOGS TO %s leaves %s on the server", newest, first)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestMariaDBLostSpool kills the agent under load and deletes its spool,
// saved binlog position included, as a lost volume would; the workload
// goes on. Restarted, the agent resumes from the archive's end, which the
// server still holds: one chain, no gap, and the latest restore equals the
// source, ledger included. Then the spool is lost again and the binlog is
// written anew (RESET MASTER): the archive's end is no longer the
// server's stream, so the agent starts a new chain, a gap.
func TestMariaDBLostSpool(t *testing.T) {
	m, conn, dsn := newMariaDBSource(t)
	w := myworkload.NewRunner(conn, 35)
	d := newDeployment(t, dsn, []string{"file://" + t.TempDir()}, nil)
	d.start()
	d.waitLog("base backup stored", 60*time.Second)
	stopLoad := mrLoad(w, 2*time.Millisecond)
	time.Sleep(3 * time.Second)
	d.kill()
	if err := os.RemoveAll(filepath.Join(d.dir, "spool")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // committed while no agent runs and no position is saved
	d.start()
	d.waitLog("resuming from the archive's end", 30*time.Second)
	d.waitLog("continuing chain", 30*time.Second)
	time.Sleep(2 * time.Second)
	if err := stopLoad(); err != nil {
		t.Fatal(err)
	}
	want, wantLedger := mrEnd(t, m)
	d.stop()
	mrOneChain(t, d, "after a lost spool")
	mrRestoreLatest(t, d, m, "restored", "")
	mrCompare(t, "restore after a lost spool", m, "restored", want, wantLedger)

	if err := os.RemoveAll(filepath.Join(d.dir, "spool")); err != nil {
		t.Fatal(err)
	}
	m.Exec(t, "RESET MASTER")
	if err := w.RunFor(t.Context(), time.Second); err != nil {
		t.Fatal(err)
	}
	d.start()
	d.waitLog("cannot resume from the archive's end", 30*time.Second)
	d.waitLog("GAP in the archive", 30*time.Second)
	d.waitLogCount("base backup stored", 2, 60*time.Second)
	want, wantLedger = mrEnd(t, m)
	d.stop()
	for line := range strings.Lines(d.agentLog()) {
		if strings.Contains(line, "archive's end") {
			t.Log(strings.TrimSpace(line))
		}
	}
	if l, _ := mrListing(t, d, ""); len(l.Chains) != 2 || !l.Chains[1].Gap {
		t.Errorf("after RESET MASTER and a lost spool, want a second chain after a gap: %+v", l.Chains)
	}
	mrRestoreLatest(t, d, m, "restored_2", "")
	mrCompare(t, "restore from the chain after RESET MASTER", m, "restored_2", want, wantLedger)
}
