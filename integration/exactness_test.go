package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// exactPoint is a quiet point of the exactness scenario: when the source
// stood still, its state then, and a marker transaction committed after
// it (restoring to just before the marker must give the state).
type exactPoint struct {
	at    time.Time
	state dbState
	mark  string // the marker's transaction id
	last  string // the last transaction id at the point, for engines that report it (lastTxnReader)
}

// exactQuietPoint records a quiet point: the source settles (heartbeats
// carry sequences and AUTO_INCREMENT counters), the time is taken and the
// oracle reads the state, and the source stays still a while longer, past
// the resolution of its commit stamps, so the point lies in an instant of
// its own.
func exactQuietPoint(t *testing.T, h engineHarness) exactPoint {
	t.Helper()
	time.Sleep(h.settle())
	p := exactPoint{at: time.Now().UTC(), state: h.state(t, "pharmacy")}
	if r, ok := h.(lastTxnReader); ok {
		p.last = r.lastTxnID(t)
	}
	time.Sleep(h.commitResolution() + 600*time.Millisecond)
	return p
}

// TestExactness runs the workload under the agent, rows before the first
// base backup included, with each of the engine's schema changes mid-run
// (ALTER TABLE ADD COLUMN, CREATE TABLE, and for PostgreSQL TRUNCATE), and
// records a quiet point before the first change and after each. Each
// point is restored into a fresh database by time, and by transaction id
// just before a marker transaction committed after it (--xid or --gtid
// with --exclusive); where the engine reports the last transaction at a
// point (a MariaDB GTID), the last point also by that id. Every restore
// must equal the source then, every table (rows; sequences; definitions,
// AUTO_INCREMENT counters, triggers, events) and the ledger. A final
// restore to latest must equal the source's end state.
func TestExactness(t *testing.T) {
	forEachEngine(t, 42, func(t *testing.T, h engineHarness) {
		h.exec(t, "CREATE TABLE txn_mark (n INT PRIMARY KEY)")
		runWorkload(t, h, time.Second) // rows before the first base backup
		d := newDeployment(t, h.dsn(), []string{"file://" + t.TempDir()}, nil)
		d.start()
		d.waitLog("base backup stored", 60*time.Second)

		var points []exactPoint
		quiet := func() {
			p := exactQuietPoint(t, h)
			p.mark = h.mark(t, len(points))
			points = append(points, p)
		}
		runWorkload(t, h, 2*time.Second)
		quiet()
		for _, c := range h.schemaChanges() {
			if err := c.run(t.Context()); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			runWorkload(t, h, 2*time.Second)
			quiet()
		}
		final := quietEnd(t, h, d)
		d.stop()
		t.Logf("workload committed %d transactions; %d quiet points", h.committed(), len(points))

		restoreTo := func(name string, want dbState, to ...string) {
			t.Helper()
			args := append(append([]string{"restore"}, to...), "--target", h.createDatabase(t, name), "--identity", d.identity)
			code, out, errOut := d.cmd(args...)
			if code != 0 {
				t.Fatalf("restore %s: exit %d\n%s%s", to, code, out, errOut)
			}
			t.Logf("%s: %s", to, strings.TrimSpace(out))
			if diff := want.diff(h.state(t, name)); len(diff) > 0 {
				t.Errorf("restore %s differs from the source then:\n  %s", to, strings.Join(diff, "\n  "))
			}
		}
		flag, _ := h.engine().TxnIDFlag()
		for i, p := range points {
			restoreTo(fmt.Sprintf("restored_%d", i), p.state, "--time", p.at.Format(time.RFC3339Nano))
			restoreTo(fmt.Sprintf("restored_%d_%s", i, flag), p.state, "--"+flag, p.mark, "--exclusive")
		}
		if _, ok := h.(lastTxnReader); ok {
			last := points[len(points)-1]
			restoreTo("restored_last_"+flag, last.state, "--"+flag, last.last)
		}
		restoreTo("restored_latest", final, "--latest")
	})
}
