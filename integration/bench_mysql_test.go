package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/rxvault/rxvault/integration/myworkload"
	"github.com/rxvault/rxvault/internal/testenv"
	"github.com/rxvault/rxvault/pitr"
	mytarget "github.com/rxvault/rxvault/pitr/mysql"
	"github.com/rxvault/rxvault/segment"
)

// Sizes of the MySQL and MariaDB benchmarks, chosen so that the whole
// section takes about 5 minutes on a 2-core machine.
const (
	mbRounds    = 3      // interleaved capture rounds
	mbClients   = 4      // concurrent clients, for the backlog and the RPO load
	mbBacklog   = 20_000 // transactions per client per capture round
	mbAccounts  = 10_000 // rows of the capture database's accounts table
	mbRPOLoad   = 50 * time.Second
	mbPoll      = 50 * time.Millisecond
	mbStatePoll = 10 * time.Millisecond
)

// TestBenchReportMySQL appends the MySQL and MariaDB section of
// BENCHMARKS.md to the file named by RXVAULT_BENCH_OUT ('make bench' sets
// it): capture throughput against mariadb-binlog --raw, the achieved RPO,
// and replay rate against mariadb-binlog piped into the mariadb client.
// Everything runs on one private MariaDB with the real rxvault binary
// built without -race, and a file store.
//
// RXVAULT_BENCH_MY_PARTS (a comma-separated subset of capture, rpo,
// replay) runs only some of them, for development; replay needs rpo.
func TestBenchReportMySQL(t *testing.T) {
	out := os.Getenv("RXVAULT_BENCH_OUT")
	if out == "" {
		t.Skip("set RXVAULT_BENCH_OUT=FILE to write the benchmark report")
	}
	parts := benchParts(t, "RXVAULT_BENCH_MY_PARTS", "capture", "rpo", "replay")
	began, load0 := time.Now(), loadAvg()
	bin := benchBinary(t)
	m := testenv.StartMariaDB(t)
	admin := myConn(t, m, "")
	version := mbQueryRow(t, admin, "SELECT VERSION()")[0]
	flush := mbQueryRow(t, admin, "SELECT @@innodb_flush_log_at_trx_commit, @@sync_binlog")
	t.Logf("MariaDB %s on port %d; rxvault built without -race", version, m.Port)

	var rows []benchRow
	var notes []string
	if parts["capture"] {
		row, note := mbCapture(t, m, bin)
		rows, notes = append(rows, row), append(notes, note)
	}
	if parts["rpo"] {
		l := newMBLoadRun(t, m, bin)
		row, note := l.rpo(t)
		rows, notes = append(rows, row), append(notes, note)
		if parts["replay"] {
			row, note := l.replay(t)
			rows, notes = append(rows, row), append(notes, note)
		}
	}

	var b strings.Builder
	b.WriteString("## MySQL and MariaDB capture, shipping and restore\n\n")
	fmt.Fprintf(&b, "A private MariaDB %s (ROW binlog with full row images and metadata, GTID strict mode; "+
		"innodb_flush_log_at_trx_commit=%s and sync_binlog=%s, the defaults) on the same machine, the real `rxvault` binary "+
		"built without -race, and a local file store (`file://`, which fsyncs every object and its directory). "+
		"The whole section took %s to measure; the 1-minute load average was %s at its start and %s at its end "+
		"(anything above 0 is other work sharing the cores).\n\n", version, flush[0], flush[1], time.Since(began).Round(time.Second), load0, loadAvg())
	appendBenchSection(t, out, b.String(), rows, notes)
}

// mbCapture measures (1): the agent against mariadb-binlog --raw
// draining the same backlog of small transactions from the same binlog
// position.
func mbCapture(t *testing.T, m *testenv.MariaDB, bin string) (benchRow, string) {
	t.Helper()
	m.CreateDatabase(t, "capture")
	conn := myConn(t, m, "capture")
	for _, q := range []string{
		`CREATE TABLE accounts (aid INT NOT NULL PRIMARY KEY, balance BIGINT NOT NULL, filler CHAR(84) NOT NULL DEFAULT '') ENGINE=InnoDB`,
		`CREATE TABLE history (hid BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, aid INT NOT NULL, delta INT NOT NULL, at DATETIME(6) NOT NULL) ENGINE=InnoDB`,
		fmt.Sprintf(`INSERT INTO accounts (aid, balance) SELECT seq, 0 FROM seq_1_to_%d`, mbAccounts),
		// One small transaction per iteration, on accounts of the caller's
		// own slice (no lock waits between the callers).
		fmt.Sprintf(`CREATE PROCEDURE backlog(IN n INT, IN part INT)
BEGIN
  DECLARE i INT DEFAULT 0;
  DECLARE a INT;
  DECLARE d INT;
  WHILE i < n DO
    SET a = part * %[1]d + 1 + (i * 7919) MOD %[1]d;
    SET d = (i * 31) MOD 10001 - 5000;
    START TRANSACTION;
    UPDATE accounts SET balance = balance + d WHERE aid = a;
    INSERT INTO history (aid, delta, at) VALUES (a, d, NOW(6));
    COMMIT;
    SET i = i + 1;
  END WHILE;
END`, mbAccounts/mbClients),
	} {
		mbExec(t, conn, q)
	}
	storeDir := t.TempDir()
	d := newBenchDeployment(t, bin, m.DSN("capture")+"?tls=false", storeDir, "segment.interval=1s")
	spool := filepath.Join(d.dir, "spool")
	d.start()
	d.waitLog("base backup stored", 5*time.Minute)
	mbWaitSaved(t, spool, mbBinlogEnd(t, conn), 2*time.Minute)
	d.stop()

	// The agent's fixed cost: start to acknowledgement of a backlog of one
	// transaction.
	mbExec(t, conn, "CALL backlog(1, 0)")
	t0 := time.Now()
	d.start()
	fixed := mbWaitSaved(t, spool, mbBinlogEnd(t, conn), time.Minute).Sub(t0)
	d.stop()
	t.Logf("capture: agent start to acknowledgement of a one-transaction backlog: %s", fixed.Round(time.Millisecond))

	var ours, base, ratio, mb, made []float64
	var agentCPU, baseCPU, agentServer, baseServer []float64
	myPID := m.PID()
	txns := mbClients * mbBacklog
	for round := range mbRounds {
		from, ok := mbSavedPos(t, spool)
		if !ok {
			t.Fatal("capture: the agent saved no binlog position")
		}
		start := time.Now()
		mbMakeBacklog(t, m, myConn(t, m, ""), mbBacklog)
		end := mbBinlogEnd(t, conn)
		size := mbBinlogBytes(t, conn, from, end)
		made = append(made, float64(txns)/time.Since(start).Seconds())
		t.Logf("capture round %d: backlog of %d txns, %.1f MB of binlog from %s, made in %s", round, txns, float64(size)/1e6,
			from.Format(segment.EngineMariaDB), time.Since(start).Round(time.Millisecond))

		agent := func() {
			server0, _ := treeCPU(myPID)
			t0 := time.Now()
			d.start()
			pid := d.pid()
			t1 := mbWaitSaved(t, spool, end, 10*time.Minute)
			server1, _ := treeCPU(myPID)
			cpu, err := procCPU(pid)
			if err != nil {
				t.Fatal(err)
			}
			d.stop()
			s := t1.Sub(t0).Seconds()
			ours = append(ours, float64(size)/s/1e6)
			agentCPU = append(agentCPU, cpu.Seconds())
			agentServer = append(agentServer, (server1 - server0).Seconds())
			t.Logf("  agent: %.2fs (%.1f MB/s, %.0f txn/s), agent CPU %.2fs, server CPU %.2fs", s, float64(size)/s/1e6, float64(txns)/s, cpu.Seconds(), (server1 - server0).Seconds())
		}
		raw := func() {
			dir := t.TempDir()
			server0, _ := treeCPU(myPID)
			t0 := time.Now()
			cmd := mbClientCmd(m, "mariadb-binlog", "--read-from-remote-server", "--raw", "--to-last-log",
				"--start-position="+strconv.FormatUint(from.Lo, 10), "--result-file="+dir+"/", mbBinlogName(from.Hi))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("mariadb-binlog: %v\n%s", err, out)
			}
			s := time.Since(t0).Seconds()
			server1, _ := treeCPU(myPID)
			got := dirSize(dir)
			if got < size {
				t.Fatalf("mariadb-binlog --raw wrote %d bytes, the backlog holds %d", got, size)
			}
			base = append(base, float64(size)/s/1e6)
			cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			baseCPU = append(baseCPU, cpu.Seconds())
			baseServer = append(baseServer, (server1 - server0).Seconds())
			t.Logf("  mariadb-binlog --raw: %.2fs (%.1f MB/s, %.0f txn/s), its CPU %.2fs, server CPU %.2fs", s, float64(size)/s/1e6, float64(txns)/s, cpu.Seconds(), (server1 - server0).Seconds())
		}
		if round%2 == 0 {
			raw()
			agent()
		} else {
			agent()
			raw()
		}
		ratio = append(ratio, ours[round]/base[round])
		mb = append(mb, float64(size)/1e6)
	}
	t.Logf("capture ratios %.2f", ratio)
	r := median(ratio)
	row := benchRow{
		name: fmt.Sprintf("capture: drain a binlog backlog (%d small txns, %.0f MB of binlog), binlog MB/s", txns, median(mb)),
		ours: fmt.Sprintf("%.1f", median(ours)), base: fmt.Sprintf("mariadb-binlog --raw %.1f", median(base)),
		ratio: fmt.Sprintf("%.2f", r), goal: "≥ 1.0", met: metStr(r >= 1.0),
	}
	note := fmt.Sprintf("**Capture.** The agent ran once to save its binlog position and take its first base backup, then stopped. "+
		"Each of %d rounds made a fresh backlog with the agent stopped: %d transactions (`UPDATE accounts … WHERE aid = ?; "+
		"INSERT INTO history …; COMMIT`, from a stored procedure called by %d connections at once, %.0f txn/s; "+
		"innodb_flush_log_at_trx_commit was 2 while the backlog was made, and back to its default after), noted the binlog end, "+
		"then drained it with both, in alternating order, from the agent's saved position: "+
		"`mariadb-binlog --read-from-remote-server --raw --to-last-log --start-position=<saved>` to local files, timed to its exit, "+
		"and the agent, timed from process start until its saved position (`binlog-position-*.json` in the spool, polled every %s) "+
		"reached the backlog's end. mariadb-binlog copies the events' bytes; the agent decodes every row, then encodes, compresses, "+
		"encrypts and seals segments, fsyncs them into the spool and stores them, and saves its position only then (the open segment's "+
		"1 MiB chunks are compressed as they fill, so a seal is mostly encryption and an fsync); it ran with "+
		"segment.interval 1s and its default garbage collector settings (GOGC=400, a 192 MiB soft limit); while it drains a backlog segments close at 8 MiB, and once the stream passes the binlog end it saw at start (CaughtUp), the open segment is sealed at once. Its fixed cost, start to acknowledgement of a backlog "+
		"of one transaction, was %.2f s. Medians; ratio = agent throughput / mariadb-binlog throughput (ratios %s). "+
		"CPU seconds per round, median: agent %.1f s and MariaDB %.1f s; mariadb-binlog %.2f s and MariaDB %.2f s.",
		mbRounds, txns, mbClients, median(made), mbStatePoll, fixed.Seconds(), fmtFloats(ratio),
		median(agentCPU), median(agentServer), median(baseCPU), median(baseServer))
	return row, note
}

// mbMakeBacklog runs the backlog procedure on mbClients connections at
// once, n transactions each, with innodb_flush_log_at_trx_commit 2 (the
// binlog is what is measured, not how fast the server makes it).
func mbMakeBacklog(t *testing.T, m *testenv.MariaDB, adm *client.Conn, n int) {
	t.Helper()
	mbExec(t, adm, "SET GLOBAL innodb_flush_log_at_trx_commit = 2")
	defer mbExec(t, adm, "SET GLOBAL innodb_flush_log_at_trx_commit = 1")
	var wg sync.WaitGroup
	errs := make([]error, mbClients)
	for i := range mbClients {
		c := myConn(t, m, "capture")
		wg.Go(func() {
			_, errs[i] = c.Execute(fmt.Sprintf("CALL backlog(%d, %d)", n, i))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// mbLoadRun is the load database with its agent (rxvault's defaults:
// segment.interval 5s, heartbeat 1s) and file store, shared by the RPO and
// replay measurements.
type mbLoadRun struct {
	m        *testenv.MariaDB
	d        *deployment
	storeDir string
	poll     *storePoller
	conn     *client.Conn

	loadStart, loadEnd time.Time
	commits            map[string]time.Time // GTID → when the client's COMMIT returned
	want               myworkload.State     // the source after the RPO run
}

func newMBLoadRun(t *testing.T, m *testenv.MariaDB, bin string) *mbLoadRun {
	t.Helper()
	m.CreateDatabase(t, "load")
	l := &mbLoadRun{m: m, storeDir: t.TempDir(), conn: myConn(t, m, "load")}
	if err := myworkload.Setup(l.conn); err != nil {
		t.Fatal(err)
	}
	if err := myworkload.NewRunner(l.conn, 1).RunFor(context.Background(), 3*time.Second); err != nil {
		t.Fatal(err) // rows for the clients to pick from, in the base backup
	}
	l.d = newBenchDeployment(t, bin, m.DSN("load")+"?tls=false", l.storeDir)
	l.poll = startPoller(t, l.storeDir, mbPoll)
	l.d.start()
	l.d.waitLog("base backup stored", 5*time.Minute)
	mbWaitSaved(t, l.spool(), mbBinlogEnd(t, l.conn), 2*time.Minute)
	t.Logf("load: agent running, base backup stored")
	return l
}

func (l *mbLoadRun) spool() string { return filepath.Join(l.d.dir, "spool") }

// archive is the load run's store, through the PostgreSQL report's
// helpers (plan, readSegment), which know nothing of the engine.
func (l *mbLoadRun) archive() *loadRun { return &loadRun{d: l.d, storeDir: l.storeDir} }

// rpo measures (2): myworkload on mbClients connections for
// mbRPOLoad with the agent running, then the latency of every
// transaction they committed, from the archive and the poller's record.
func (l *mbLoadRun) rpo(t *testing.T) (benchRow, string) {
	t.Helper()
	type loadClient struct {
		commits map[string]time.Time
		txns    int
		retried int
		err     error
	}
	clients := make([]*loadClient, mbClients)
	var wg sync.WaitGroup
	l.loadStart = time.Now()
	deadline := l.loadStart.Add(mbRPOLoad)
	for i := range clients {
		c := &loadClient{commits: map[string]time.Time{}}
		clients[i] = c
		conn := myConn(t, l.m, "load")
		w := myworkload.NewRunner(conn, uint64(100+i))
		wg.Go(func() {
			for time.Now().Before(deadline) {
				n := w.Commits
				if err := w.Step(); err != nil {
					if mbRetryable(err) {
						c.retried++
						continue
					}
					c.err = err
					return
				}
				if w.Commits == n {
					continue // rolled back on purpose
				}
				at := time.Now()
				r, err := mbQueryRowErr(conn, "SELECT @@last_gtid")
				if err != nil {
					c.err = err
					return
				}
				c.commits[r[0]] = at
				c.txns++
			}
		})
	}
	wg.Wait()
	l.loadEnd = time.Now()
	l.commits = map[string]time.Time{}
	txns, retried := 0, 0
	for _, c := range clients {
		if c.err != nil {
			t.Fatalf("rpo: workload client: %v", c.err)
		}
		txns, retried = txns+c.txns, retried+c.retried
		for g, at := range c.commits {
			l.commits[g] = at
		}
	}
	secs := l.loadEnd.Sub(l.loadStart).Seconds()
	t.Logf("rpo: %d clients for %s: %d txns (%.0f txn/s), %d retried after a deadlock or a row deleted meanwhile", mbClients, mbRPOLoad, txns, float64(txns)/secs, retried)
	end := mbBinlogEnd(t, l.conn)
	caught := mbWaitSaved(t, l.spool(), end, 5*time.Minute)
	t.Logf("rpo: archive caught up %s after the load ended", caught.Sub(l.loadEnd).Round(time.Millisecond))
	want, err := myworkload.Snapshot(l.conn)
	if err != nil {
		t.Fatal(err)
	}
	l.want = want
	l.d.stop()
	time.Sleep(3 * mbPoll)
	l.poll.stop()

	stamped, returned, err := l.latencies(t)
	if err != nil {
		t.Fatal(err)
	}
	if len(stamped) != txns {
		t.Fatalf("rpo: %d of the %d transactions the clients committed are in the archive", len(stamped), txns)
	}
	_, maxScan, _ := l.poll.results()
	slices.Sort(stamped)
	slices.Sort(returned)
	p50, p99, mx := percentile(stamped, 50), percentile(stamped, 99), stamped[len(stamped)-1]
	goal := 5*time.Second + 2*time.Second
	row := benchRow{
		name: fmt.Sprintf("achieved RPO, commit to durably stored, under myworkload on %d connections for %.0f s (%d txns): p50 / p99 / max",
			mbClients, mbRPOLoad.Seconds(), len(stamped)),
		ours: fmt.Sprintf("%.2f / %.2f / %.2f s", p50.Seconds(), p99.Seconds(), mx.Seconds()),
		base: "—", ratio: "—", goal: "p99 ≤ 7 s (interval 5 s + 2 s)", met: metStr(p99 <= goal),
	}
	note := fmt.Sprintf("**RPO.** The agent ran with rxvault's defaults (segment.interval 5s, heartbeat 1s) while %d connections ran "+
		"myworkload (the pharmacy workload of the exactness tests: inserts with BLOBs up to 40 kB, updates, cascading deletes, a trigger; "+
		"%.0f txn/s; transactions that hit a deadlock or a row deleted meanwhile, %d, were rolled back and not counted). "+
		"The file store's directory was listed every %s, recording when each segment object first appeared (an object is linked into "+
		"place only after its data is fsynced, so appearing is being durably stored; the longest listing took %s). Afterwards every "+
		"segment was decoded with the identity and each transaction the clients committed (found by its GTID, read with "+
		"`SELECT @@last_gtid` after each commit; all %d are in the archive) got appearance time − commit time. The commit time is the "+
		"binlog's, which MariaDB stamps to the whole second only, so these values are upper bounds, up to 1 s plus one poll interval "+
		"and one listing late. Measured from when each client's COMMIT returned instead (a lower bound, by the COMMIT's round trip): "+
		"p50 %.2f s, p99 %.2f s, max %.2f s.",
		mbClients, float64(txns)/secs, retried, mbPoll, maxScan.Round(time.Microsecond), len(stamped),
		percentile(returned, 50).Seconds(), percentile(returned, 99).Seconds(), returned[len(returned)-1].Seconds())
	return row, note
}

// latencies decodes the load run's archive and returns, for each
// transaction the clients committed, the time from its commit to its
// segment's appearance in the store: from the binlog's commit stamp, and
// from the client's record.
func (l *mbLoadRun) latencies(t *testing.T) (stamped, returned []time.Duration, err error) {
	t.Helper()
	seen, _, err := l.poll.results()
	if err != nil {
		return nil, nil, err
	}
	a := l.archive()
	plan, ids, err := a.plan(context.Background())
	if err != nil {
		return nil, nil, err
	}
	for _, s := range plan.Segments {
		at, ok := seen[s.Name]
		err := a.readSegment(s, ids, func(info *segment.TxnInfo, _ func() (*segment.Change, error)) error {
			done, mine := l.commits[info.ID]
			if !mine {
				return nil
			}
			if !ok {
				return errors.New("committed during the load, in a segment the poller never saw")
			}
			stamped = append(stamped, at.Sub(info.Commit))
			returned = append(returned, at.Sub(done))
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
	}
	if len(stamped) == 0 {
		return nil, nil, errors.New("no transaction committed during the load was archived")
	}
	return stamped, returned, nil
}

// replay measures (3): the RPO run's archive restored by rxvault (base
// backup, then replay, timed) and by mariadb-binlog piped into mariadb
// replaying the same binlog range on a second restore of the same base
// backup: rxvault before and after the baseline's one run, so that a
// drift weighs on both alike.
func (l *mbLoadRun) replay(t *testing.T) (benchRow, string) {
	t.Helper()
	ctx := context.Background()
	a := l.archive()
	plan, ids, err := a.plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := a.store(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Segments) == 0 {
		t.Fatal("replay: no segments to replay")
	}
	from, to := plan.BackupPos, plan.Segments[len(plan.Segments)-1].Info.EndPos
	if from.Hi != to.Hi {
		t.Fatalf("replay: the archive spans binlog files %d to %d", from.Hi, to.Hi)
	}
	binlogBytes := int64(to.Lo - from.Lo)

	discard := slog.New(slog.DiscardHandler)
	myPID := l.m.PID()
	var txns, changes int64
	restore := func(name string, p *pitr.Plan) *timedTarget {
		l.m.CreateDatabase(t, name)
		tgt, err := mytarget.Open(ctx, mytarget.Config{DSN: l.m.DSN(name) + "?tls=false", Logger: discard})
		if err != nil {
			t.Fatal(err)
		}
		defer tgt.Close(ctx)
		tt := &timedTarget{Target: tgt, pgPID: myPID}
		res, err := (&pitr.Restorer{Store: st, Identities: ids, Logger: discard}).Restore(ctx, p, tt)
		if err != nil {
			t.Fatalf("restore %s: %v", name, err)
		}
		if len(p.Segments) > 0 {
			txns, changes = res.Txns, res.Changes
		}
		return tt
	}
	var rx, mb []replayTiming
	var finish []time.Duration
	var rxDBs []string
	var baseDB string
	for i, useRx := range []bool{true, false, true} {
		name := fmt.Sprintf("replay_%d", i)
		if useRx {
			rxDBs = append(rxDBs, name)
			tt := restore(name, plan)
			r := replayTiming{wall: tt.replayDone.Sub(tt.baseDone), client: tt.replayCPU[0] - tt.baseCPU[0], server: tt.replayCPU[1] - tt.baseCPU[1]}
			rx = append(rx, r)
			finish = append(finish, tt.finishDone.Sub(tt.replayDone))
			t.Logf("replay %d: rxvault %s (its CPU %s, server CPU %s), %d txns", i, r.wall.Round(time.Millisecond), r.client.Round(time.Millisecond), r.server.Round(time.Millisecond), txns)
			continue
		}
		baseDB = name
		baseOnly := *plan
		baseOnly.Segments = nil
		restore(name, &baseOnly)
		r := l.pipe(t, from, to, name)
		mb = append(mb, r)
		t.Logf("replay %d: mariadb-binlog | mariadb %s (their CPU %s, server CPU %s)", i, r.wall.Round(time.Millisecond), r.client.Round(time.Millisecond), r.server.Round(time.Millisecond))
	}
	for _, name := range rxDBs {
		got, err := myworkload.Snapshot(myConn(t, l.m, name))
		if err != nil {
			t.Fatal(err)
		}
		if diff := l.want.Diff(got); len(diff) > 0 {
			t.Fatalf("rxvault's restore %s differs from the source:\n  %s", name, strings.Join(diff, "\n  "))
		}
	}
	got, err := myworkload.Snapshot(myConn(t, l.m, baseDB))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range l.want.Diff(got) {
		if !strings.Contains(d, " auto_increment:") {
			t.Fatalf("the baseline's restore %s differs from the source: %s", baseDB, d)
		}
	}
	avg := func(rs []replayTiming) replayTiming {
		var a replayTiming
		for _, r := range rs {
			a.wall += r.wall / time.Duration(len(rs))
			a.client += r.client / time.Duration(len(rs))
			a.server += r.server / time.Duration(len(rs))
		}
		return a
	}
	r, p := avg(rx), avg(mb)
	ratio := p.wall.Seconds() / r.wall.Seconds()
	n := float64(txns)
	row := benchRow{
		name:  fmt.Sprintf("restore replay of the RPO run's archive (%d txns, %d row changes, %.0f MB of binlog), txn/s", txns, changes, float64(binlogBytes)/1e6),
		ours:  fmt.Sprintf("%.0f (%.1f s)", n/r.wall.Seconds(), r.wall.Seconds()),
		base:  fmt.Sprintf("mariadb-binlog \\| mariadb %.0f (%.1f s)", n/p.wall.Seconds(), p.wall.Seconds()),
		ratio: fmt.Sprintf("%.2f", ratio), goal: "≥ 1.0", met: metStr(ratio >= 1.0),
	}
	note := fmt.Sprintf("**Replay.** The RPO run's archive (its base backup, then %d segments) was restored in-process by pitr.Restorer into the "+
		"MariaDB target (pitr/mysql: 500 source transactions per target transaction, row statements sent in batches of about 1 MiB per "+
		"round trip, consecutive inserts of a transaction into a table as one multi-row INSERT); the time is the replay phase "+
		"alone, from the end of the base restore to the last transaction applied, so it includes reading, verifying, decrypting and "+
		"decoding the segments (Finish, which commits the last group, sets AUTO_INCREMENT counters and recreates the trigger, took a "+
		"further %s). The baseline restored the same base backup into another empty database, then piped the same binlog range, "+
		"from the backup's position to the archive's end (%s to %s), through `mariadb-binlog --read-from-remote-server "+
		"--database=load --rewrite-db='load->%s' --start-position … --stop-position …` into `mariadb --binary-mode`, which "+
		"applies each transaction's row events as BINLOG statements and commits it on its own (gtid_strict_mode was off meanwhile, since "+
		"the stream carries the source's old GTIDs). rxvault ran before and after the baseline's one run, each into its own database; "+
		"rxvault's mean shown (rxvault %s s, baseline %s s). rxvault's databases then equal the source in every table's definition, "+
		"rows and AUTO_INCREMENT and in its triggers (myworkload.Snapshot); the baseline's in all but AUTO_INCREMENT, which the "+
		"binlog does not carry. Ratio = baseline time / rxvault replay time. CPU used during replay, means: rxvault %.1f s in the "+
		"restoring process and %.1f s in MariaDB; the baseline %.1f s in mariadb-binlog and mariadb and %.1f s in MariaDB.",
		len(plan.Segments), finish[0].Round(time.Millisecond), from.Format(segment.EngineMariaDB), to.Format(segment.EngineMariaDB),
		baseDB, fmtWalls(rx), fmtWalls(mb), r.client.Seconds(), r.server.Seconds(), p.client.Seconds(), p.server.Seconds())
	return row, note
}

// pipe replays binlog range [from, to) of database load into database db
// with mariadb-binlog piped into mariadb, and times it.
func (l *mbLoadRun) pipe(t *testing.T, from, to segment.Position, db string) replayTiming {
	t.Helper()
	adm := myConn(t, l.m, "")
	strict := mbQueryRow(t, adm, "SELECT @@gtid_strict_mode")[0]
	mbExec(t, adm, "SET GLOBAL gtid_strict_mode = 0")
	defer mbExec(t, adm, "SET GLOBAL gtid_strict_mode = "+strict)

	dump := mbClientCmd(l.m, "mariadb-binlog", "--read-from-remote-server", "--database=load", "--rewrite-db=load->"+db,
		"--start-position="+strconv.FormatUint(from.Lo, 10), "--stop-position="+strconv.FormatUint(to.Lo, 10), mbBinlogName(from.Hi))
	apply := mbClientCmd(l.m, "mariadb", "--binary-mode", "--batch", "--database="+db)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var dumpErr, applyErr strings.Builder
	dump.Stdout, dump.Stderr = pw, &dumpErr
	apply.Stdin, apply.Stdout, apply.Stderr = pr, &applyErr, &applyErr
	server0, _ := treeCPU(l.m.PID())
	start := time.Now()
	if err := apply.Start(); err != nil {
		t.Fatal(err)
	}
	if err := dump.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	pw.Close()
	derr, aerr := dump.Wait(), apply.Wait()
	r := replayTiming{wall: time.Since(start)}
	server1, _ := treeCPU(l.m.PID())
	if derr != nil || aerr != nil {
		t.Fatalf("mariadb-binlog: %v %s\nmariadb: %v %s", derr, dumpErr.String(), aerr, applyErr.String())
	}
	r.client = dump.ProcessState.UserTime() + dump.ProcessState.SystemTime() + apply.ProcessState.UserTime() + apply.ProcessState.SystemTime()
	r.server = server1 - server0
	return r
}

// mbClientCmd is one of MariaDB's client programs talking to m over TCP
// as its rxvault user, the password in MYSQL_PWD.
func mbClientCmd(m *testenv.MariaDB, name string, args ...string) *exec.Cmd {
	args = append([]string{"--no-defaults", "--host=127.0.0.1", "--port=" + strconv.Itoa(m.Port), "--user=" + m.User, "--protocol=TCP"}, args...)
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MYSQL_PWD="+m.Password)
	return cmd
}

// mbRetryable reports the workload errors of concurrent clients: a
// deadlock, a lock wait timeout, a row another client deleted meanwhile.
func mbRetryable(err error) bool {
	var me *gomysql.MyError
	if !errors.As(err, &me) {
		return false
	}
	switch me.Code {
	case gomysql.ER_LOCK_DEADLOCK, gomysql.ER_LOCK_WAIT_TIMEOUT, gomysql.ER_NO_REFERENCED_ROW_2, gomysql.ER_ROW_IS_REFERENCED_2:
		return true
	}
	return false
}

func mbExec(t *testing.T, c *client.Conn, q string) {
	t.Helper()
	if _, err := c.Execute(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func mbQueryRow(t *testing.T, c *client.Conn, q string) []string {
	t.Helper()
	r, err := mbQueryRowErr(c, q)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// mbQueryRowErr returns the first row of q's result as strings.
func mbQueryRowErr(c *client.Conn, q string) ([]string, error) {
	r, err := c.Execute(q)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	defer r.Close()
	if r.Resultset == nil || r.RowNumber() == 0 {
		return nil, fmt.Errorf("%s: no row", q)
	}
	out := make([]string, r.ColumnNumber())
	for i := range out {
		v, err := r.GetString(0, i)
		if err != nil {
			return nil, err
		}
		out[i] = strings.Clone(v)
	}
	return out, nil
}

// mbBinlogEnd returns the end of the server's binlog (SHOW MASTER STATUS).
func mbBinlogEnd(t *testing.T, c *client.Conn) segment.Position {
	t.Helper()
	r := mbQueryRow(t, c, "SHOW MASTER STATUS")
	pos, err := strconv.ParseUint(r[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return segment.Position{Hi: mbBinlogNumber(t, r[0]), Lo: pos}
}

// mbBinlogBytes counts the binlog bytes from one position to another.
func mbBinlogBytes(t *testing.T, c *client.Conn, from, to segment.Position) int64 {
	t.Helper()
	if from.Hi == to.Hi {
		return int64(to.Lo - from.Lo)
	}
	r, err := c.Execute("SHOW BINARY LOGS")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var n int64
	for i := range r.RowNumber() {
		name, _ := r.GetString(i, 0)
		size, _ := r.GetInt(i, 1)
		switch f := mbBinlogNumber(t, name); {
		case f == from.Hi:
			n += size - int64(from.Lo)
		case f == to.Hi:
			n += int64(to.Lo)
		case f > from.Hi && f < to.Hi:
			n += size
		}
	}
	return n
}

func mbBinlogNumber(t *testing.T, name string) uint64 {
	t.Helper()
	i := strings.LastIndexByte(name, '.')
	n, err := strconv.ParseUint(name[i+1:], 10, 64)
	if i < 0 || err != nil {
		t.Fatalf("binlog file name %q has no number", name)
	}
	return n
}

// mbBinlogName is the test server's binlog file of number n.
func mbBinlogName(n uint64) string { return fmt.Sprintf("mysql-bin.%06d", n) }

// mbSavedPos reads the agent's saved binlog position from its spool.
func mbSavedPos(t *testing.T, spool string) (segment.Position, bool) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(spool, "binlog-position-*.json"))
	if err != nil || len(files) > 1 {
		t.Fatalf("saved binlog positions in %s: %v %v", spool, files, err)
	}
	if len(files) == 0 {
		return segment.Position{}, false
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		return segment.Position{}, false // being replaced: read again
	}
	var sp struct {
		File string `json:"file"`
		Pos  uint64 `json:"pos"`
	}
	if err := json.Unmarshal(data, &sp); err != nil {
		t.Fatalf("%s: %v", files[0], err)
	}
	return segment.Position{Hi: mbBinlogNumber(t, sp.File), Lo: sp.Pos}, true
}

// mbWaitSaved waits until the agent's saved position reaches end, polling
// every mbStatePoll, and returns when it saw it there.
func mbWaitSaved(t *testing.T, spool string, end segment.Position, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if p, ok := mbSavedPos(t, spool); ok && p.Compare(end) >= 0 {
			return time.Now()
		}
		if time.Now().After(deadline) {
			p, _ := mbSavedPos(t, spool)
			t.Fatalf("the saved binlog position did not reach %s within %s (at %s)", end.Format(segment.EngineMariaDB), timeout, p.Format(segment.EngineMariaDB))
		}
		time.Sleep(mbStatePoll)
	}
}
