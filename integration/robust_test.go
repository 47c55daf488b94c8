package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rxvault/rxvault/integration/workload"
	"github.com/rxvault/rxvault/internal/testenv"
)

// source is a workload database on a private PostgreSQL.
type source struct {
	pg   *testenv.Postgres
	dsn  string
	conn *pgx.Conn
	w    *workload.Runner
}

func newSource(t *testing.T, seed uint64) *source {
	t.Helper()
	pg := testenv.StartPostgres(t)
	dsn := pg.CreateDatabase(t, "pharmacy")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if err := workload.Setup(ctx, conn); err != nil {
		t.Fatal(err)
	}
	return &source{pg: pg, dsn: dsn, conn: conn, w: workload.NewRunner(conn, seed)}
}

// load runs the workload in the background until the returned stop is
// called; stop returns the workload's error.
func (s *source) load(t *testing.T) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var err error
	wg.Go(func() {
		for ctx.Err() == nil {
			if err = s.w.Step(ctx); err != nil {
				if ctx.Err() != nil {
					err = nil
				}
				return
			}
			time.Sleep(2 * time.Millisecond) // a steady, not saturating, load
		}
	})
	return func() error {
		cancel()
		wg.Wait()
		return err
	}
}

// confirmedFlush reads the rxvault slot's confirmed_flush_lsn, on a
// connection of its own (the workload may be using s.conn).
func (s *source) confirmedFlush(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var lsn string
	err = conn.QueryRow(ctx, `SELECT coalesce(confirmed_flush_lsn::text, '') FROM pg_replication_slots WHERE slot_name = 'rxvault'`).Scan(&lsn)
	if err != nil {
		t.Fatal(err)
	}
	return lsn
}

// restoreLatest restores the archive (from store, or the first configured
// one when empty) into a new database and returns its DSN.
func restoreLatest(t *testing.T, d *deployment, pg *testenv.Postgres, name, store string) string {
	t.Helper()
	target := pg.CreateDatabase(t, name)
	args := []string{"restore", "--latest", "--target", target, "--identity", d.identity}
	if store != "" {
		args = append(args, "--store", store)
	}
	code, out, errOut := d.cmd(args...)
	if code != 0 {
		t.Fatalf("restore --latest: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("%s", strings.TrimSpace(out))
	return target
}

func compare(t *testing.T, what string, want workload.State, dsn string) {
	t.Helper()
	if diff := want.Diff(snapshot(t, dsn)); len(diff) > 0 {
		t.Errorf("%s differs from the source:\n  %s", what, strings.Join(diff, "\n  "))
	}
}

// TestCrashUnderLoad kills the agent with SIGKILL at random moments
// under load, four times, and restarts it; before every other crash the
// server starts a new log file under the running agent (a binlog
// rotation, a WAL switch), so later resume points lie in a newer file.
// Each restart must continue the chain, and the next crash hit the
// running stream rather than a start-up. The final restore must equal the
// source row for row, the ledger included: no transaction lost, none
// applied twice; verify passes and list shows no gap.
func TestCrashUnderLoad(t *testing.T) {
	forEachEngine(t, 7, func(t *testing.T, h engineHarness) {
		d := newDeployment(t, h.dsn(), []string{"file://" + t.TempDir()}, nil)
		d.start()
		d.waitLog("base backup stored", 60*time.Second)
		stopLoad := startLoad(h, heavyLoad)
		seed := uint64(time.Now().UnixNano())
		t.Logf("crash moments drawn from seed %d", seed)
		rnd := rand.New(rand.NewPCG(seed, 31))
		const crashes = 4
		for i := range crashes {
			time.Sleep(time.Duration(1000+rnd.IntN(2500)) * time.Millisecond)
			if i%2 == 1 {
				h.rotateLog(t)
				time.Sleep(time.Duration(rnd.IntN(1000)) * time.Millisecond)
			}
			d.kill()
			time.Sleep(time.Duration(100+rnd.IntN(500)) * time.Millisecond)
			d.start()
			d.waitLogCount("continuing chain", i+1, 30*time.Second)
		}
		time.Sleep(2 * time.Second)
		if err := stopLoad(); err != nil {
			t.Fatal(err)
		}
		want := quietEnd(t, h, d)
		d.stop()
		t.Logf("workload committed %d transactions across %d crashes", h.committed(), crashes)

		compareStates(t, "restore after crashes", want, restoreLatestState(t, h, d, "restored", ""))
		if code, out, errOut := d.cmd("verify", "--identity", d.identity); code != 0 {
			t.Errorf("verify after crashes: exit %d\n%s%s", code, out, errOut)
		}
		if code, out, _ := d.cmd("list"); code != 0 || strings.Contains(out, "GAP") {
			t.Errorf("list after crashes: exit %d (a crash is not a gap)\n%s", code, out)
		}
	})
}

// TestStoreOutage stops MinIO, one of two stores, for 30 seconds under
// load. The spool holds what is captured meanwhile; the saved position
// (the slot, the saved binlog position) does not move while the store is
// down, and never lies past what the store still up holds. Once MinIO is
// back everything ships: the saved position moves on, no further than
// either store's end, and both stores restore to the source, ledger
// included.
func TestStoreOutage(t *testing.T) {
	forEachEngine(t, 8, func(t *testing.T, h engineHarness) {
		m := testenv.StartMinIO(t, testenv.MinIOOptions{})
		m.MakeBucket(t, "archive", true)
		q := url.Values{"endpoint": {m.Endpoint}, "tls": {"false"}}
		s3 := "s3://archive/rx?" + q.Encode()
		file := "file://" + t.TempDir()
		d := newDeployment(t, h.dsn(), []string{file, s3}, []string{"AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey})
		d.start()
		d.waitLog("base backup stored", 60*time.Second)
		stopLoad := startLoad(h, steadyLoad)
		time.Sleep(3 * time.Second)
		if _, ok := h.savedPosition(t, d); !ok {
			t.Fatal("no saved position while the agent runs")
		}
		format := h.engine()

		m.Stop(t)
		time.Sleep(5 * time.Second)
		held, _ := h.savedPosition(t, d)
		time.Sleep(25 * time.Second)
		if got, _ := h.savedPosition(t, d); got != held {
			t.Errorf("the saved position moved from %s to %s while a store was down: acknowledged before durable",
				held.Format(format), got.Format(format))
		}
		// The file store, still up, must hold everything acknowledged.
		if end := archivedTo(t, format, listArchiveStore(t, d, file, 0)); held.Compare(end) > 0 {
			t.Errorf("saved position %s is past the file store's end %s", held.Format(format), end.Format(format))
		}
		spooled, _ := filepath.Glob(filepath.Join(d.dir, "spool", "*", "ready", "*"))
		if len(spooled) == 0 {
			t.Error("nothing held in the spool during the outage")
		}
		m.Start(t)
		time.Sleep(5 * time.Second)
		if err := stopLoad(); err != nil {
			t.Fatal(err)
		}
		want := quietEnd(t, h, d)
		d.stop()
		after, _ := h.savedPosition(t, d)
		if after.Compare(held) <= 0 {
			t.Errorf("the saved position never moved after the store came back (still %s)", held.Format(format))
		}
		for _, st := range []string{file, s3} {
			if end := archivedTo(t, format, listArchiveStore(t, d, st, 0)); after.Compare(end) > 0 {
				t.Errorf("saved position %s is past %s's end %s", after.Format(format), storeName(st), end.Format(format))
			}
		}
		t.Logf("workload committed %d transactions; %d segments were spooled during the outage; position held at %s",
			h.committed(), len(spooled), held.Format(format))
		for i, st := range []string{file, s3} {
			got := restoreLatestState(t, h, d, fmt.Sprintf("restored_%d", i), st)
			compareStates(t, "restore from "+storeName(st), want, got)
		}
	})
}

// TestRefusals: restore refuses a non-empty target (the source itself),
// a time before the first base backup, a wrong identity, no point, a
// --time made --exclusive, the engine's own malformed or foreign
// transaction ids and positions, and a tampered segment, each with a
// one-line message and a non-zero exit, and changes nothing: neither the
// source nor the empty target. verify finds the tampered segment.
func TestRefusals(t *testing.T) {
	forEachEngine(t, 9, func(t *testing.T, h engineHarness) {
		before := time.Now().UTC()
		time.Sleep(h.commitResolution() + 100*time.Millisecond)
		storeDir := t.TempDir()
		d := newDeployment(t, h.dsn(), []string{"file://" + storeDir}, nil)
		d.start()
		d.waitLog("base backup stored", 60*time.Second)
		runWorkload(t, h, 2*time.Second)
		waitArchived(t, d, h, time.Now())
		d.stop()

		other := filepath.Join(t.TempDir(), "other")
		if code, _, errOut := d.cmd("keys", "generate", "--out", other); code != 0 {
			t.Fatal(errOut)
		}
		empty := h.createDatabase(t, "empty")
		emptyState := h.state(t, "empty")
		source := h.state(t, "pharmacy")
		refusals := []refusal{
			{"non-empty target", []string{"restore", "--latest", "--target", h.dsn(), "--identity", d.identity}, "not empty"},
			{"time before the first base backup", []string{"restore", "--time", before.Format(time.RFC3339Nano), "--target", empty, "--identity", d.identity}, "before the restorable window"},
			{"wrong identity", []string{"restore", "--latest", "--target", empty, "--identity", filepath.Join(other, "identity.key")}, "identities given"},
			{"no point", []string{"restore", "--target", empty, "--identity", d.identity}, "exactly one of"},
			{"exclusive time", []string{"restore", "--time", before.Format(time.RFC3339Nano), "--exclusive", "--target", empty, "--identity", d.identity}, "--exclusive goes with"},
		}
		for _, tc := range append(refusals, h.refusals(empty, d.identity)...) {
			code, _, errOut := d.cmd(tc.args...)
			if code != 2 || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
				t.Errorf("%s: exit %d, stderr %q; want exit 2 and one line naming %q", tc.name, code, errOut, tc.want)
			}
		}
		compareStates(t, "the source after a refused restore into it", source, h.state(t, "pharmacy"))
		if diff := emptyState.diff(h.state(t, "empty")); len(diff) > 0 {
			t.Errorf("a refused restore changed the empty target:\n  %s", strings.Join(diff, "\n  "))
		}

		tamperSegment(t, storeDir)
		code, _, errOut := d.cmd("restore", "--latest", "--target", empty, "--identity", d.identity)
		if code != 1 || !strings.Contains(errOut, "corrupt") || strings.Count(errOut, "\n") != 1 {
			t.Errorf("tampered segment: exit %d, stderr %q; want exit 1 and one line naming the corruption", code, errOut)
		}
		if diff := emptyState.diff(h.state(t, "empty")); len(diff) > 0 {
			t.Errorf("the restore of a tampered archive touched the target:\n  %s", strings.Join(diff, "\n  "))
		}
		if code, out, _ := d.cmd("verify"); code != 1 || !strings.Contains(out, "PROBLEM") {
			t.Errorf("verify of a tampered archive: exit %d\n%s", code, out)
		}

		if b, ok := h.(backupGTIDChecker); ok {
			t.Run("backup records the GTID", func(t *testing.T) { b.checkBackupGTID(t, d) })
		}
	})
}

// TestStreamLost makes the change stream after the saved position
// unreadable while the agent is stopped (the slot dropped, the binlog
// purged) after more writes: the archive has a gap, which the agent logs
// and list and verify report loudly; the agent starts a new chain with a
// new base backup, from which the latest state restores.
func TestStreamLost(t *testing.T) {
	forEachEngine(t, 10, func(t *testing.T, h engineHarness) {
		store := "file://" + t.TempDir()
		d := newDeployment(t, h.dsn(), []string{store}, nil)
		d.start()
		d.waitLog("base backup stored", 60*time.Second)
		runWorkload(t, h, 2*time.Second)
		waitArchived(t, d, h, time.Now())
		d.stop()
		saved, ok := h.savedPosition(t, d)
		if !ok {
			t.Fatal("no saved position after a clean stop")
		}
		runWorkload(t, h, time.Second) // never archived: the gap
		h.loseStream(t)
		t.Logf("saved position %s lost", saved.Format(h.engine()))

		d.start()
		d.waitLog("GAP", 60*time.Second)
		d.waitLogCount("base backup stored", 2, 60*time.Second)
		runWorkload(t, h, 2*time.Second)
		want := quietEnd(t, h, d)
		d.stop()
		if !strings.Contains(d.agentLog(), "GAP in the archive") {
			t.Error("the agent did not log the new chain as a gap")
		}

		code, out, _ := d.cmd("list")
		if code != 1 || !strings.Contains(out, "GAP") {
			t.Errorf("list after a lost stream: exit %d, want 1 and the GAP\n%s", code, out)
		}
		if l := listArchiveStore(t, d, store, 1); len(l.Chains) != 2 || !l.Chains[1].Gap || l.Chains[0].Gap {
			t.Errorf("want two chains, the second after a gap: %+v", l.Chains)
		}
		code, out, _ = d.cmd("verify")
		if code != 1 || !strings.Contains(out, "gap") {
			t.Errorf("verify after a lost stream: exit %d, want 1 naming the gap\n%s", code, out)
		}
		compareStates(t, "restore from the new chain", want, restoreLatestState(t, h, d, "restored", ""))
	})
}

// workloadOn returns a workload runner on conn (a new connection after a
// server restart).
func workloadOn(conn *pgx.Conn, seed uint64) *workload.Runner { return workload.NewRunner(conn, seed) }

// tamperSegment flips one bit in the middle of a segment of the file store
// at storeDir, as someone with file access could.
func tamperSegment(t *testing.T, storeDir string) {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(storeDir, "*", "wal", "*", "*.rxseg"))
	if len(segs) < 2 {
		t.Fatalf("%d segments stored", len(segs))
	}
	victim := segs[len(segs)/2]
	if err := os.Chmod(victim, 0o640); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if err := os.WriteFile(victim, data, 0o440); err != nil {
		t.Fatal(err)
	}
}
