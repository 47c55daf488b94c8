package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rxvault/rxvault/archive"
	"github.com/rxvault/rxvault/internal/keys"
	"github.com/rxvault/rxvault/internal/store"
	"github.com/rxvault/rxvault/internal/testenv"
	"github.com/rxvault/rxvault/pitr"
	pgtarget "github.com/rxvault/rxvault/pitr/postgres"
	"github.com/rxvault/rxvault/segment"
)

// Sizes of the PostgreSQL benchmarks, chosen so that the whole report takes
// about 15 minutes on a 2-core machine.
const (
	benchScale         = "10"  // pgbench -i -s
	benchCaptureRounds = 4     // interleaved capture rounds
	benchBacklogTxns   = 30000 // pgbench -M prepared -t per client (4 clients) per capture round
	benchRPOLoad       = 60    // seconds of pgbench -c 4 for the RPO
	benchTPSRun        = 20    // seconds per TPS run
	benchPoll          = 50 * time.Millisecond
	benchBigRows       = 1_100_000 // rows of about 1 kB in the large transaction
)

// benchSlotRecv is pg_recvlogical's slot in the capture benchmark.
const benchSlotRecv = "bench_recvlogical"

// benchRow is one line of the report's table.
type benchRow struct {
	name, ours, base, ratio, goal string
	met                           string // "yes", "**no**" or "—"
}

func metStr(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// TestBenchReportPostgres appends the PostgreSQL section of BENCHMARKS.md
// to the file named by RXVAULT_BENCH_OUT ('make bench' sets it): capture
// throughput against pg_recvlogical, the achieved RPO, pgbench TPS with
// and without the agent, replay rate against psql, and peak memory with a
// 1 GB transaction. Everything runs on one private PostgreSQL 15 with the
// real rxvault binary built without -race, and a file store.
//
// RXVAULT_BENCH_PG_PARTS (a comma-separated subset of capture, rpo,
// replay, tps, memory) runs only some of them, for development; replay
// needs rpo.
func TestBenchReportPostgres(t *testing.T) {
	out := os.Getenv("RXVAULT_BENCH_OUT")
	if out == "" {
		t.Skip("set RXVAULT_BENCH_OUT=FILE to write the benchmark report")
	}
	parts := benchParts(t, "RXVAULT_BENCH_PG_PARTS", "capture", "rpo", "replay", "tps", "memory")
	began, load0 := time.Now(), loadAvg()
	bin := benchBinary(t)
	pg := testenv.StartPostgres(t)
	t.Logf("PostgreSQL on port %d; rxvault built without -race", pg.Port)

	var rows []benchRow
	var notes []string
	if parts["capture"] || parts["rpo"] || parts["replay"] || parts["tps"] {
		initPgbench(t, pg)
	}
	if parts["capture"] {
		row, note := benchCapture(t, pg, bin)
		rows, notes = append(rows, row), append(notes, note)
	}
	var load *loadRun
	if parts["rpo"] {
		load = newLoadRun(t, pg, bin)
		row, note := load.rpo(t)
		rows, notes = append(rows, row), append(notes, note)
	}
	if parts["replay"] {
		row, note := load.replay(t)
		rows, notes = append(rows, row), append(notes, note)
	}
	if parts["tps"] {
		if load == nil {
			load = newLoadRun(t, pg, bin)
		}
		agentRow, recvRow, note := load.tps(t)
		rows, notes = append(rows, agentRow, recvRow), append(notes, note)
	}
	if parts["memory"] {
		agentRow, restoreRow, note := benchMemory(t, pg, bin)
		rows, notes = append(rows, agentRow, restoreRow), append(notes, note)
	}

	var b strings.Builder
	b.WriteString("## PostgreSQL capture, shipping and restore\n\n")
	fmt.Fprintf(&b, "A private PostgreSQL 15 (wal_level=logical, fsync=off as the test servers run; other settings default) "+
		"on the same machine, the real `rxvault` binary built without -race, and a local file store (`file://`, which fsyncs "+
		"every object and its directory). pgbench at scale %s, `pgbench_history` set to REPLICA IDENTITY FULL. "+
		"The whole section took %s to measure; the 1-minute load average was %s at its start and %s at its end "+
		"(anything above 0 is other work sharing the cores).\n\n", benchScale, time.Since(began).Round(time.Second), load0, loadAvg())
	appendBenchSection(t, out, b.String(), rows, notes)
}

// initPgbench creates database capture with pgbench's tables and a copy of
// it, load, before any agent touches either.
func initPgbench(t *testing.T, pg *testenv.Postgres) {
	t.Helper()
	pg.CreateDatabase(t, "capture")
	db := openBenchDB(t, pg, "capture")
	start := time.Now()
	db.pgbench(t, "-i", "-q", "-s", benchScale)
	db.exec(t, `ALTER TABLE pgbench_history REPLICA IDENTITY FULL`)
	db.exec(t, `VACUUM ANALYZE`)
	db.conn.Close(context.Background())
	admin := openBenchDB(t, pg, "postgres")
	admin.exec(t, `CREATE DATABASE load TEMPLATE capture`)
	t.Logf("pgbench -i -s %s done in %s (databases capture and load)", benchScale, time.Since(start).Round(time.Millisecond))
}

// benchCapture measures (1): the agent against pg_recvlogical draining the
// same backlog of pgbench transactions from slots at the same position.
func benchCapture(t *testing.T, pg *testenv.Postgres, bin string) (benchRow, string) {
	t.Helper()
	db := openBenchDB(t, pg, "capture")
	storeDir := t.TempDir()
	d := newBenchDeployment(t, bin, db.dsn, storeDir, "segment.interval=1s")
	d.start()
	d.waitLog("base backup stored", 5*time.Minute)
	db.waitConfirmed(t, "rxvault", db.lsn(t), 2*time.Minute)
	d.stop()
	db.exec(t, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, benchSlotRecv)

	// The agent's fixed cost: start to acknowledgement of a backlog of
	// one message.
	db.exec(t, `SELECT pg_logical_emit_message(true, 'bench', 'x')`)
	t0 := time.Now()
	d.start()
	fixed := db.waitConfirmed(t, "rxvault", db.lsn(t), time.Minute).Sub(t0)
	d.stop()
	t.Logf("capture: agent start to acknowledgement of a one-message backlog: %s", fixed.Round(time.Millisecond))

	var ours, base, ratio, walMB []float64
	var agentCPU, recvCPU, agentServer, recvServer []float64
	pgPID := pg.PID()
	txns := 4 * benchBacklogTxns
	for round := range benchCaptureRounds {
		fromA, fromR := db.confirmed(t, "rxvault"), db.confirmed(t, benchSlotRecv)
		start := time.Now()
		db.pgbench(t, "-n", "-M", "prepared", "-c", "4", "-j", "2", "-t", strconv.Itoa(benchBacklogTxns))
		end := db.lsn(t)
		t.Logf("capture round %d: backlog of %d txns, %.1f MB of WAL, made in %s", round, txns, float64(end-fromA)/1e6, time.Since(start).Round(time.Millisecond))

		agent := func() {
			server0, _ := treeCPU(pgPID)
			t0 := time.Now()
			d.start()
			pid := d.pid()
			t1 := db.waitConfirmed(t, "rxvault", end, 10*time.Minute)
			server1, _ := treeCPU(pgPID)
			cpu, err := procCPU(pid)
			if err != nil {
				t.Fatal(err)
			}
			d.stop()
			s := t1.Sub(t0).Seconds()
			ours = append(ours, float64(end-fromA)/s/1e6)
			agentCPU = append(agentCPU, cpu.Seconds())
			agentServer = append(agentServer, (server1 - server0).Seconds())
			t.Logf("  agent: %.2fs (%.1f MB/s, %.0f txn/s), agent CPU %.2fs, server CPU %.2fs", s, float64(end-fromA)/s/1e6, float64(txns)/s, cpu.Seconds(), (server1 - server0).Seconds())
		}
		recv := func() {
			server0, _ := treeCPU(pgPID)
			t0 := time.Now()
			cmd := exec.Command(filepath.Join(db.bin, "pg_recvlogical"), "-d", db.dsn, "--slot", benchSlotRecv, "--start", "--no-loop",
				"-o", "proto_version=2", "-o", "publication_names=rxvault", "-o", "messages=true", "-o", "streaming=on",
				"-f", "/dev/null", "--endpos", fmtLSN(end))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("pg_recvlogical: %v\n%s", err, out)
			}
			s := time.Since(t0).Seconds()
			server1, _ := treeCPU(pgPID)
			base = append(base, float64(end-fromR)/s/1e6)
			cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			recvCPU = append(recvCPU, cpu.Seconds())
			recvServer = append(recvServer, (server1 - server0).Seconds())
			t.Logf("  pg_recvlogical: %.2fs (%.1f MB/s, %.0f txn/s), its CPU %.2fs, server CPU %.2fs", s, float64(end-fromR)/s/1e6, float64(txns)/s, cpu.Seconds(), (server1 - server0).Seconds())
		}
		if round%2 == 0 {
			recv()
			agent()
		} else {
			agent()
			recv()
		}
		ratio = append(ratio, ours[round]/base[round])
		walMB = append(walMB, float64(end-fromA)/1e6)
	}
	db.exec(t, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = 'capture'`)
	t.Logf("capture ratios %.2f", ratio)
	r := median(ratio)
	row := benchRow{
		name: fmt.Sprintf("capture: drain a slot backlog (%d pgbench txns, %.0f MB of WAL), WAL MB/s", txns, median(walMB)),
		ours: fmt.Sprintf("%.1f", median(ours)), base: fmt.Sprintf("pg_recvlogical %.1f", median(base)),
		ratio: fmt.Sprintf("%.2f", r), goal: "≥ 1.0", met: metStr(r >= 1.0),
	}
	note := fmt.Sprintf("**Capture.** The agent ran once to create its publication and slot and take its first base backup, then stopped; "+
		"a second pgoutput slot was created for pg_recvlogical at that point. Each of %d rounds made a fresh backlog with the agent stopped "+
		"(`pgbench -n -M prepared -c 4 -j 2 -t %d`), noted the end LSN, then drained it with both, in alternating order: "+
		"`pg_recvlogical --start -o proto_version=2 -o publication_names=rxvault -o messages=true -o streaming=on -f /dev/null --endpos=<lsn>` "+
		"(the agent's own plugin options), timed to its exit, and the agent, timed from process start until its slot's confirmed_flush_lsn "+
		"reached the end LSN (polled every 10 ms). The agent's time includes what pg_recvlogical does not do: encoding, compressing, "+
		"encrypting and sealing segments, fsyncing them into the spool and storing them, acknowledging only then; it ran with "+
		"segment.interval 1s and its default garbage collector settings (GOGC=400, a 192 MiB soft limit); while it drains a backlog segments close at 8 MiB, and once the stream passes the WAL end it saw at start (CaughtUp), the open segment is sealed at once. Its fixed cost, start to acknowledgement of a backlog of "+
		"one message, was %.2f s. Medians; ratio = agent throughput / pg_recvlogical throughput (ratios %s). CPU seconds per round, "+
		"median: agent %.1f s and PostgreSQL %.1f s; pg_recvlogical %.1f s and PostgreSQL %.1f s.",
		benchCaptureRounds, benchBacklogTxns, fixed.Seconds(), fmtFloats(ratio), median(agentCPU), median(agentServer), median(recvCPU), median(recvServer))
	return row, note
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func fmtFloats(xs []float64) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprintf("%.2f", x))
	}
	return strings.Join(s, ", ")
}

// loadRun is the load database with its agent (rxvault's defaults:
// segment.interval 5s, heartbeat 1s) and file store, shared by the RPO,
// replay and TPS measurements.
type loadRun struct {
	db       *benchDB
	d        *deployment
	storeDir string
	poll     *storePoller

	loadStart, loadEnd time.Time
	want               map[string]string // the source's tables after the RPO run
}

func newLoadRun(t *testing.T, pg *testenv.Postgres, bin string) *loadRun {
	t.Helper()
	l := &loadRun{db: openBenchDB(t, pg, "load"), storeDir: t.TempDir()}
	l.d = newBenchDeployment(t, bin, l.db.dsn, l.storeDir)
	l.poll = startPoller(t, l.storeDir, benchPoll)
	l.d.start()
	l.d.waitLog("base backup stored", 5*time.Minute)
	l.db.waitConfirmed(t, "rxvault", l.db.lsn(t), 2*time.Minute)
	t.Logf("load: agent running, base backup stored")
	return l
}

// rpo measures (2): pgbench for benchRPOLoad seconds with the agent
// running, then the latency of every transaction committed meanwhile,
// from the archive and the poller's record.
func (l *loadRun) rpo(t *testing.T) (benchRow, string) {
	t.Helper()
	l.loadStart = time.Now()
	out := l.db.pgbench(t, "-n", "-c", "4", "-j", "2", "-T", strconv.Itoa(benchRPOLoad))
	l.loadEnd = time.Now()
	end := l.db.lsn(t)
	t.Logf("rpo: pgbench -c 4 -T %d: %.0f tps with the agent running", benchRPOLoad, pgbenchTPS(t, out))
	caught := l.db.waitConfirmed(t, "rxvault", end, 5*time.Minute)
	t.Logf("rpo: archive caught up %s after the load ended", caught.Sub(l.loadEnd).Round(time.Millisecond))
	l.want = snapshot(t, l.db.dsn).Tables
	l.d.stop()
	time.Sleep(3 * benchPoll)
	l.poll.stop()

	lat, err := l.latencies(t)
	if err != nil {
		t.Fatal(err)
	}
	_, maxScan, _ := l.poll.results()
	slices.Sort(lat)
	p50, p99, mx := percentile(lat, 50), percentile(lat, 99), lat[len(lat)-1]
	goal := 5*time.Second + 2*time.Second
	row := benchRow{
		name: fmt.Sprintf("achieved RPO, commit to durably stored, under `pgbench -c 4` for %d s (%d txns): p50 / p99 / max", benchRPOLoad, len(lat)),
		ours: fmt.Sprintf("%.2f / %.2f / %.2f s", p50.Seconds(), p99.Seconds(), mx.Seconds()),
		base: "—", ratio: "—", goal: "p99 ≤ 7 s (interval 5 s + 2 s)", met: metStr(p99 <= goal),
	}
	note := fmt.Sprintf("**RPO.** The agent ran with rxvault's defaults (segment.interval 5s, heartbeat 1s) while `pgbench -n -c 4 -j 2 -T %d` ran. "+
		"The file store's directory was listed every %s, recording when each segment object first appeared (an object is linked into "+
		"place only after its data is fsynced, so appearing is being durably stored; the longest listing took %s). Afterwards every "+
		"segment was decoded with the identity and each transaction committed during the run (pgbench's and rxvault's heartbeats) "+
		"got appearance time − commit time (PostgreSQL's commit timestamp, same host clock). Values are upper bounds, at most "+
		"one poll interval (%s) plus one listing late.",
		benchRPOLoad, benchPoll, maxScan.Round(time.Microsecond), benchPoll)
	return row, note
}

// latencies decodes the load run's archive and returns, for each
// transaction committed during the RPO load, the time from its commit to
// its segment's appearance in the store.
func (l *loadRun) latencies(t *testing.T) ([]time.Duration, error) {
	t.Helper()
	seen, _, err := l.poll.results()
	if err != nil {
		return nil, err
	}
	plan, ids, err := l.plan(context.Background())
	if err != nil {
		return nil, err
	}
	var out []time.Duration
	for _, s := range plan.Segments {
		at, ok := seen[s.Name]
		err := l.readSegment(s, ids, func(info *segment.TxnInfo, _ func() (*segment.Change, error)) error {
			if info.Commit.Before(l.loadStart) || info.Commit.After(l.loadEnd) {
				return nil
			}
			if !ok {
				return errors.New("committed during the load, in a segment the poller never saw")
			}
			out = append(out, at.Sub(info.Commit))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no transaction committed during the load was archived")
	}
	return out, nil
}

// plan opens the load run's store and plans a restore of everything.
func (l *loadRun) plan(ctx context.Context) (*pitr.Plan, []*keys.Identity, error) {
	st, err := l.store(ctx)
	if err != nil {
		return nil, nil, err
	}
	srcs, err := archive.Sources(ctx, st)
	if err != nil {
		return nil, nil, err
	}
	if len(srcs) != 1 {
		return nil, nil, fmt.Errorf("%d sources in the store", len(srcs))
	}
	idx, err := archive.Load(ctx, st, srcs[0].Dir)
	if err != nil {
		return nil, nil, err
	}
	plan, err := pitr.MakePlan(idx, pitr.Point{Latest: true})
	if err != nil {
		return nil, nil, err
	}
	ids, err := keys.LoadIdentityFiles([]string{l.d.identity})
	return plan, ids, err
}

func (l *loadRun) store(ctx context.Context) (store.Store, error) {
	return store.Open(ctx, "file://"+l.storeDir, store.Options{Mode: store.LockNone})
}

// readSegment decodes one segment of the store, calling fn for each
// transaction with a function returning its changes (io.EOF at the end).
func (l *loadRun) readSegment(s archive.Segment, ids []*keys.Identity, fn func(*segment.TxnInfo, func() (*segment.Change, error)) error) error {
	f, err := os.Open(filepath.Join(l.storeDir, filepath.FromSlash(s.Name)))
	if err != nil {
		return fmt.Errorf("open segment: %w", err)
	}
	defer f.Close()
	r, err := segment.NewReader(bufio.NewReaderSize(f, 1<<20), ids)
	if err != nil {
		return fmt.Errorf("%s: %w", s.Name, err)
	}
	defer r.Close()
	for {
		info, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
		if err := fn(info, r.Change); err != nil {
			return fmt.Errorf("%s: transaction %s: %w", s.Name, info.ID, err)
		}
	}
}

// timedTarget notes when a restore's phases end, and the CPU time used
// by this process and by the PostgreSQL server (postmaster pgPID and its
// descendants) then.
type timedTarget struct {
	pitr.Target
	pgPID                            int
	baseDone, replayDone, finishDone time.Time
	baseCPU, replayCPU               [2]time.Duration // this process, the server
}

func (t *timedTarget) RestoreBase(ctx context.Context, dump io.Reader) error {
	err := t.Target.RestoreBase(ctx, dump)
	t.baseDone = time.Now()
	t.baseCPU = cpuMark(t.pgPID)
	return err
}

func (t *timedTarget) Finish(ctx context.Context) error {
	t.replayDone = time.Now()
	t.replayCPU = cpuMark(t.pgPID)
	err := t.Target.Finish(ctx)
	t.finishDone = time.Now()
	return err
}

// cpuMark returns the CPU time used so far by this process and by the
// server whose postmaster is pgPID (0 when it cannot be read).
func cpuMark(pgPID int) [2]time.Duration {
	server, _ := treeCPU(pgPID)
	return [2]time.Duration{selfCPU(), server}
}

// replayTiming is one timed replay: wall time, the replaying client's CPU
// and the server's CPU.
type replayTiming struct {
	wall, client, server time.Duration
}

// replay measures (4): the RPO run's archive restored by rxvault (base
// backup, then replay, timed) and by psql running the same transactions
// as SQL on a second restore of the same base backup: rxvault before and
// after psql's single run (which takes minutes), so that a drift weighs on
// both alike.
func (l *loadRun) replay(t *testing.T) (benchRow, string) {
	t.Helper()
	ctx := context.Background()
	plan, ids, err := l.plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := l.store(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sqlPath := filepath.Join(t.TempDir(), "replay.sql")
	script, err := l.writeScript(plan, ids, sqlPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("replay: %d segments, %d transactions, %d statements; SQL script %.1f MB", len(plan.Segments), script.txns, script.stmts, float64(script.bytes)/1e6)

	discard := slog.New(slog.DiscardHandler)
	pgPID := l.db.pg.PID()
	restore := func(name string, p *pitr.Plan) *timedTarget {
		dsn := l.db.pg.CreateDatabase(t, name)
		tgt, err := pgtarget.Open(ctx, pgtarget.Config{DSN: dsn, Logger: discard})
		if err != nil {
			t.Fatal(err)
		}
		defer tgt.Close(ctx)
		tt := &timedTarget{Target: tgt, pgPID: pgPID}
		res, err := (&pitr.Restorer{Store: st, Identities: ids, Logger: discard}).Restore(ctx, p, tt)
		if err != nil {
			t.Fatalf("restore %s: %v", name, err)
		}
		if len(p.Segments) > 0 && res.Txns != int64(script.txns) {
			t.Fatalf("rxvault replayed %d transactions, the script holds %d", res.Txns, script.txns)
		}
		return tt
	}
	var rx, ps []replayTiming
	var finish []time.Duration
	var dbs []string
	for i, useRx := range []bool{true, false, true} {
		name := fmt.Sprintf("replay_%d", i)
		dbs = append(dbs, name)
		if useRx {
			tt := restore(name, plan)
			r := replayTiming{wall: tt.replayDone.Sub(tt.baseDone), client: tt.replayCPU[0] - tt.baseCPU[0], server: tt.replayCPU[1] - tt.baseCPU[1]}
			rx = append(rx, r)
			finish = append(finish, tt.finishDone.Sub(tt.replayDone))
			t.Logf("replay %d: rxvault %s (its CPU %s, server CPU %s)", i, r.wall.Round(time.Millisecond), r.client.Round(time.Millisecond), r.server.Round(time.Millisecond))
			continue
		}
		baseOnly := *plan
		baseOnly.Segments = nil
		restore(name, &baseOnly)
		server0, _ := treeCPU(pgPID)
		start := time.Now()
		psql := exec.Command(filepath.Join(l.db.bin, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", l.db.pg.DSN(name), "-f", sqlPath)
		if out, err := psql.CombinedOutput(); err != nil {
			t.Fatalf("psql: %v\n%s", err, out)
		}
		r := replayTiming{wall: time.Since(start), client: psql.ProcessState.UserTime() + psql.ProcessState.SystemTime()}
		server1, _ := treeCPU(pgPID)
		r.server = server1 - server0
		ps = append(ps, r)
		t.Logf("replay %d: psql %s (its CPU %s, server CPU %s)", i, r.wall.Round(time.Millisecond), r.client.Round(time.Millisecond), r.server.Round(time.Millisecond))
	}
	for _, name := range dbs {
		got := snapshot(t, l.db.pg.DSN(name)).Tables
		for tbl, sum := range l.want {
			if got[tbl] != sum {
				t.Fatalf("%s: table %s is %s, the source's is %s", name, tbl, got[tbl], sum)
			}
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
	r, p := avg(rx), avg(ps)
	ratio := p.wall.Seconds() / r.wall.Seconds()
	n := float64(script.txns)
	row := benchRow{
		name:  fmt.Sprintf("restore replay of the RPO run's archive (%d txns, %d row changes), txn/s", script.txns, script.stmts),
		ours:  fmt.Sprintf("%.0f (%.1f s)", n/r.wall.Seconds(), r.wall.Seconds()),
		base:  fmt.Sprintf("psql %.0f (%.1f s)", n/p.wall.Seconds(), p.wall.Seconds()),
		ratio: fmt.Sprintf("%.2f", ratio), goal: "≥ 3", met: metStr(ratio >= 3),
	}
	note := fmt.Sprintf("**Replay.** The RPO run's archive (its base backup, then %d segments) was restored in-process by pitr.Restorer into the "+
		"PostgreSQL target; the time is the replay phase alone, from the end of the base restore to the last transaction applied, so it "+
		"includes reading, verifying, decrypting and decoding the segments (Finish, which sets sequences and commits synchronously, took a "+
		"further %s). The baseline restored the same base backup into another empty database, then ran "+
		"`psql -X -q -v ON_ERROR_STOP=1 -f` on a script of the same transactions, written beforehand from the decoded segments: "+
		"BEGIN; one INSERT, UPDATE or DELETE per row change with quoted literals cast to the column types (`'…'::integer`), "+
		"UPDATE SET of every column sent, rows found by key; COMMIT (transactions holding only rxvault's heartbeat messages are an empty "+
		"BEGIN; COMMIT;). The script starts with the session settings rxvault's target uses (session_replication_role replica, "+
		"synchronous_commit off, TimeZone UTC, DateStyle ISO). rxvault ran before and after psql's one run, each into its own database; "+
		"rxvault's mean shown (rxvault %s s, psql %s s). All three databases then equal the source table for table (workload.Snapshot). "+
		"Ratio = psql time / rxvault replay time. CPU used during replay, means: rxvault %.1f s in the restoring process and %.1f s in "+
		"PostgreSQL; psql %.1f s in psql and %.1f s in PostgreSQL.",
		len(plan.Segments), finish[0].Round(time.Millisecond), fmtWalls(rx), fmtWalls(ps),
		r.client.Seconds(), r.server.Seconds(), p.client.Seconds(), p.server.Seconds())
	return row, note
}

func fmtWalls(rs []replayTiming) string {
	var s []string
	for _, r := range rs {
		s = append(s, fmt.Sprintf("%.1f", r.wall.Seconds()))
	}
	return strings.Join(s, ", ")
}

// scriptStats counts what writeScript wrote.
type scriptStats struct {
	txns, stmts int
	bytes       int64
}

// writeScript writes the transactions the restore of plan replays (the
// same selection rule as pitr.Restorer: from the backup's position on,
// each once) as a psql script.
func (l *loadRun) writeScript(plan *pitr.Plan, ids []*keys.Identity, path string) (scriptStats, error) {
	var st scriptStats
	f, err := os.Create(path)
	if err != nil {
		return st, fmt.Errorf("create script: %w", err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	_, _ = w.WriteString(`SET session_replication_role = replica;
SET synchronous_commit = off;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, MDY';
SET IntervalStyle = 'postgres';
SET extra_float_digits = 3;
SET bytea_output = 'hex';
SET standard_conforming_strings = on;
`)
	var last segment.Position
	var buf []byte
	for _, s := range plan.Segments {
		err := l.readSegment(s, ids, func(info *segment.TxnInfo, next func() (*segment.Change, error)) error {
			if info.Pos.Compare(plan.BackupPos) < 0 || (st.txns > 0 && info.Pos.Compare(last) <= 0) {
				return nil
			}
			last = info.Pos
			st.txns++
			buf = append(buf[:0], "BEGIN;\n"...)
			for {
				c, err := next()
				if errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					return err
				}
				n := len(buf)
				if buf, err = appendChangeSQL(buf, c); err != nil {
					return err
				}
				if len(buf) > n {
					st.stmts++
				}
			}
			buf = append(buf, "COMMIT;\n"...)
			_, err := w.Write(buf)
			return err
		})
		if err != nil {
			return st, err
		}
	}
	if err := w.Flush(); err != nil {
		return st, fmt.Errorf("write script: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		return st, fmt.Errorf("stat script: %w", err)
	}
	st.bytes = info.Size()
	return st, f.Close()
}

// appendChangeSQL appends c as one SQL statement, or nothing for a
// logical message.
func appendChangeSQL(b []byte, c *segment.Change) ([]byte, error) {
	switch c.Op {
	case segment.OpMessage:
		return b, nil
	case segment.OpInsert:
		b = append(b, "INSERT INTO "...)
		b = appendRel(b, c.Rel)
		b = append(b, " ("...)
		sep := ""
		for _, col := range c.Rel.Columns {
			if !col.Generated {
				b = append(append(b, sep...), quoteIdent(col.Name)...)
				sep = ", "
			}
		}
		b = append(b, ") VALUES ("...)
		sep = ""
		for i, col := range c.Rel.Columns {
			if col.Generated {
				continue
			}
			var err error
			b = append(b, sep...)
			if b, err = appendValue(b, col, c.New[i]); err != nil {
				return b, err
			}
			sep = ", "
		}
		return append(b, ");\n"...), nil
	case segment.OpUpdate:
		b = append(b, "UPDATE "...)
		b = appendRel(b, c.Rel)
		b = append(b, " SET "...)
		sep := ""
		for i, col := range c.Rel.Columns {
			if col.Generated || c.New[i].Kind == segment.Unchanged {
				continue
			}
			var err error
			b = append(append(append(b, sep...), quoteIdent(col.Name)...), " = "...)
			if b, err = appendValue(b, col, c.New[i]); err != nil {
				return b, err
			}
			sep = ", "
		}
		old := c.Old
		if c.OldKind == segment.OldNone {
			old = c.New
		}
		return appendWhere(b, c.Rel, old)
	case segment.OpDelete:
		b = append(b, "DELETE FROM "...)
		b = appendRel(b, c.Rel)
		return appendWhere(b, c.Rel, c.Old)
	}
	return b, fmt.Errorf("psql script: %s changes are not supported", c.Op)
}

// appendWhere finds the row by its key columns or, when there are none
// (or all columns are key: REPLICA IDENTITY FULL), by its whole old value.
func appendWhere(b []byte, rel *segment.Relation, row []segment.Value) ([]byte, error) {
	nkey := 0
	for _, col := range rel.Columns {
		if col.Key {
			nkey++
		}
	}
	full := nkey == 0 || nkey == len(rel.Columns)
	if full {
		b = append(b, " WHERE ctid = (SELECT ctid FROM "...)
		b = appendRel(b, rel)
	}
	b = append(b, " WHERE "...)
	sep := ""
	for i, col := range rel.Columns {
		if !full && !col.Key {
			continue
		}
		b = append(b, sep...)
		sep = " AND "
		switch {
		case row[i].Kind == segment.Null:
			b = append(append(b, quoteIdent(col.Name)...), " IS NULL"...)
		case full:
			b = append(append(b, quoteIdent(col.Name)...), "::text = "...)
			b = appendLiteral(b, row[i].Data)
		default:
			var err error
			b = append(append(b, quoteIdent(col.Name)...), " = "...)
			if b, err = appendValue(b, col, row[i]); err != nil {
				return b, err
			}
		}
	}
	if full {
		b = append(b, " LIMIT 1)"...)
	}
	return append(b, ";\n"...), nil
}

func appendRel(b []byte, rel *segment.Relation) []byte {
	return append(append(append(b, quoteIdent(rel.Schema)...), '.'), quoteIdent(rel.Table)...)
}

func appendValue(b []byte, col segment.Column, v segment.Value) ([]byte, error) {
	switch v.Kind {
	case segment.Null:
		return append(b, "NULL"...), nil
	case segment.Text:
		b = appendLiteral(b, v.Data)
		return append(append(b, "::"...), col.Type...), nil
	}
	return b, fmt.Errorf("psql script: column %s: value kind %d not supported", col.Name, v.Kind)
}

// appendLiteral quotes s as a string literal (standard_conforming_strings
// on: only quotes are doubled).
func appendLiteral(b, s []byte) []byte {
	b = append(b, '\'')
	for _, c := range s {
		if c == '\'' {
			b = append(b, '\'')
		}
		b = append(b, c)
	}
	return append(b, '\'')
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// tps measures (3): pgbench TPS without a consumer of the change stream,
// with the agent, and with pg_recvlogical (the cost of logical decoding
// alone, for reference), interleaved A B C C B A so that a drift (table
// growth, other work on the machine) weighs on all alike. Before a run
// with a consumer, the consumer is started and catches up with what the
// runs without it wrote, untimed.
func (l *loadRun) tps(t *testing.T) (benchRow, benchRow, string) {
	t.Helper()
	l.d.stop() // still running when the RPO part did not run
	l.db.exec(t, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, benchSlotRecv)
	type arm struct{ tps, server, consumer, perTxn []float64 }
	arms := map[string]*arm{"none": {}, "agent": {}, "recv": {}}
	var recv *exec.Cmd
	var recvOut bytes.Buffer
	stopRecv := func() {
		if recv == nil {
			return
		}
		if err := recv.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		if err := recv.Wait(); err != nil {
			t.Fatalf("pg_recvlogical: %v\n%s", err, recvOut.String())
		}
		recv = nil
	}
	t.Cleanup(func() {
		if recv != nil {
			_ = recv.Process.Kill()
			_ = recv.Wait()
		}
	})
	agentOn := false
	pgPID := l.db.pg.PID()
	for i, which := range []string{"none", "agent", "recv", "recv", "agent", "none"} {
		if which != "agent" && agentOn {
			l.d.stop()
			agentOn = false
		}
		if which != "recv" {
			stopRecv()
		}
		consumer := 0
		switch which {
		case "agent":
			if !agentOn {
				l.d.start()
				agentOn = true
				l.catchUp(t, "rxvault")
			}
			consumer = l.d.pid()
		case "recv":
			if recv == nil {
				recv = exec.Command(filepath.Join(l.db.bin, "pg_recvlogical"), "-d", l.db.dsn, "--slot", benchSlotRecv, "--start", "--no-loop",
					"-o", "proto_version=2", "-o", "publication_names=rxvault", "-o", "messages=true", "-o", "streaming=on",
					"-s", "1", "-F", "1", "-f", "/dev/null")
				recvOut.Reset()
				recv.Stdout, recv.Stderr = &recvOut, &recvOut
				if err := recv.Start(); err != nil {
					t.Fatal(err)
				}
				l.catchUp(t, benchSlotRecv)
			}
			consumer = recv.Process.Pid
		}
		var c0, c1 time.Duration
		if consumer != 0 {
			c0, _ = procCPU(consumer)
		}
		s0, _ := treeCPU(pgPID)
		v := pgbenchTPS(t, l.db.pgbench(t, "-n", "-c", "4", "-j", "2", "-T", strconv.Itoa(benchTPSRun)))
		s1, _ := treeCPU(pgPID)
		if consumer != 0 {
			c1, _ = procCPU(consumer)
		}
		a := arms[which]
		a.tps, a.server, a.consumer = append(a.tps, v), append(a.server, (s1-s0).Seconds()), append(a.consumer, (c1-c0).Seconds())
		a.perTxn = append(a.perTxn, (c1-c0).Seconds()/(v*benchTPSRun)*1e6) // µs of consumer CPU per transaction
		t.Logf("tps run %d (%s): %.0f tps; server CPU %.1fs, consumer CPU %.1fs", i, which, v, (s1 - s0).Seconds(), (c1 - c0).Seconds())
	}
	if agentOn {
		l.d.stop()
	}
	stopRecv()
	l.db.exec(t, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = 'load'`)
	none, agent, rl := arms["none"], arms["agent"], arms["recv"]
	r, rr := mean(agent.tps)/mean(none.tps), mean(rl.tps)/mean(none.tps)
	agentRow := benchRow{
		name: fmt.Sprintf("source overhead: pgbench TPS (`-c 4 -j 2 -T %d`) with the agent running / without", benchTPSRun),
		ours: fmt.Sprintf("%.0f", mean(agent.tps)), base: fmt.Sprintf("without %.0f", mean(none.tps)), ratio: fmt.Sprintf("%.2f", r),
		goal: "≥ 0.9", met: metStr(r >= 0.9),
	}
	recvRow := benchRow{
		name: "for reference: pgbench TPS with pg_recvlogical consuming the same publication / without",
		ours: "—", base: fmt.Sprintf("pg_recvlogical %.0f", mean(rl.tps)), ratio: fmt.Sprintf("%.2f", rr), goal: "—", met: "—",
	}
	note := fmt.Sprintf("**Source overhead.** Six %d s runs of `pgbench -n -c 4 -j 2` on the same database, in the order without a consumer of "+
		"the change stream, with the agent (defaults: segment.interval 5s, heartbeat 1s), with pg_recvlogical (same plugin options, "+
		"to /dev/null), again with pg_recvlogical, with the agent, without; each pair averaged (TPS without: %s; with the agent: %s; "+
		"with pg_recvlogical: %s). Before a run with a consumer it was started and caught up, untimed, with what the runs before it wrote. "+
		"CPU seconds per run, means: PostgreSQL (backends, walsender and all) %.1f without, %.1f with the agent, %.1f with pg_recvlogical; "+
		"the agent itself %.1f (%.0f µs per pgbench transaction), pg_recvlogical itself %.1f (%.0f µs). pgbench, its four backends, the walsender and the consumer share the same two "+
		"cores, so whatever CPU decoding and archiving take comes out of the database's throughput.",
		benchTPSRun, fmtFloats0(none.tps), fmtFloats0(agent.tps), fmtFloats0(rl.tps),
		mean(none.server), mean(agent.server), mean(rl.server), mean(agent.consumer), mean(agent.perTxn), mean(rl.consumer), mean(rl.perTxn))
	return agentRow, recvRow, note
}

// catchUp waits until slot's consumer has confirmed everything written
// so far: a transactional logical message is written, and its consumer
// must confirm past it.
func (l *loadRun) catchUp(t *testing.T, slot string) {
	t.Helper()
	lsn := l.db.lsnQuery(t, `SELECT pg_logical_emit_message(true, 'rxvault-bench', 'catch up')::text`)
	l.db.waitConfirmed(t, slot, lsn, 10*time.Minute)
}

func fmtFloats0(xs []float64) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprintf("%.0f", x))
	}
	return strings.Join(s, ", ")
}

// benchMemory measures (5): the agent's peak RSS while it captures a
// transaction of about 1 GB, and the restore's while it replays it.
func benchMemory(t *testing.T, pg *testenv.Postgres, bin string) (benchRow, benchRow, string) {
	t.Helper()
	ctx := context.Background()
	pg.CreateDatabase(t, "big")
	db := openBenchDB(t, pg, "big")
	db.exec(t, `CREATE TABLE big (id integer PRIMARY KEY, v text NOT NULL)`)
	var workMem string
	if err := db.conn.QueryRow(ctx, `SHOW logical_decoding_work_mem`).Scan(&workMem); err != nil {
		t.Fatal(err)
	}
	storeDir := t.TempDir()
	d := newBenchDeployment(t, bin, db.dsn, storeDir)
	d.start()
	d.waitLog("base backup stored", 5*time.Minute)
	db.waitConfirmed(t, "rxvault", db.lsn(t), 2*time.Minute)
	pid := d.pid()
	before, err := procStatusKB(pid, "VmHWM")
	if err != nil {
		t.Fatal(err)
	}

	lsn0 := db.lsn(t)
	start := time.Now()
	db.exec(t, `INSERT INTO big SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, $1) g`, benchBigRows)
	committed := time.Now()
	lsn1 := db.lsn(t)
	var tableBytes int64
	if err := db.conn.QueryRow(ctx, `SELECT pg_table_size('big')`).Scan(&tableBytes); err != nil {
		t.Fatal(err)
	}
	t.Logf("memory: INSERT of %d rows took %s: %.2f GB of WAL, table %.2f GB", benchBigRows, committed.Sub(start).Round(time.Millisecond),
		float64(lsn1-lsn0)/1e9, float64(tableBytes)/1e9)
	done := db.waitConfirmed(t, "rxvault", lsn1, 20*time.Minute)
	var streamTxns, streamBytes int64
	err = db.conn.QueryRow(ctx, `SELECT stream_txns, stream_bytes FROM pg_stat_replication_slots WHERE slot_name = 'rxvault'`).Scan(&streamTxns, &streamBytes)
	if err != nil {
		t.Fatal(err)
	}
	if streamTxns == 0 {
		t.Errorf("the server did not stream the large transaction (pg_stat_replication_slots.stream_txns = 0)")
	}
	hwm, err := procStatusKB(pid, "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	cpu, err := procCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	d.stop()
	t.Logf("memory: stored %s after the commit; agent VmHWM %d kB (%d kB before the transaction), CPU %s, store %.1f MB",
		done.Sub(committed).Round(time.Millisecond), hwm, before, cpu, float64(dirSize(storeDir))/1e6)
	want := bigChecksum(t, db)

	target := pg.CreateDatabase(t, "big_restored")
	cmd := exec.Command(bin, "--config", d.config, "restore", "--latest", "--target", target, "--identity", d.identity)
	cmd.Env = append(os.Environ(), d.env...)
	rstart := time.Now()
	out, rss, err := runPeak(cmd)
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	rdur := time.Since(rstart)
	got := bigChecksum(t, openBenchDB(t, pg, "big_restored"))
	if got != want {
		t.Fatalf("restored table big: %s, source %s", got, want)
	}
	t.Logf("memory: restore took %s, peak RSS %d KiB; table equal (%s)", rdur.Round(time.Millisecond), rss, want)

	const limit = 256 << 20
	agentRow := benchRow{
		name: fmt.Sprintf("peak RSS of the agent capturing one %.2f GB transaction (%d rows, %.2f GB of WAL)", float64(tableBytes)/1e9, benchBigRows, float64(lsn1-lsn0)/1e9),
		ours: fmt.Sprintf("%.0f MiB", float64(hwm)/1024), base: "—", ratio: "—", goal: "< 256 MB", met: metStr(hwm*1024 < limit),
	}
	restoreRow := benchRow{
		name: "peak RSS of `rxvault restore --latest` replaying it",
		ours: fmt.Sprintf("%.0f MiB (%.0f s)", float64(rss)/1024, rdur.Seconds()), base: "—", ratio: "—", goal: "—", met: "—",
	}
	note := fmt.Sprintf("**Memory.** One `INSERT INTO big SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, %d) g` (a table with a primary "+
		"key) while the agent ran with rxvault's defaults and PostgreSQL's logical_decoding_work_mem at its default (%s), so the server "+
		"streamed the transaction before its commit (pg_stat_replication_slots: stream_txns %d, stream_bytes %.2f GB). The agent's peak RSS is VmHWM from /proc, read after its slot's confirmed_flush_lsn "+
		"passed the commit (%.0f s after it) and before stopping it (%.0f MiB before the transaction). The restore ran as a subprocess; its peak "+
		"RSS is its VmHWM, polled every 20 ms (earlier reports gave wait4's ru_maxrss, which for a child started by a large test process counts that process's memory). The restored table's row count and checksum equal the source's (%s).",
		benchBigRows, workMem, streamTxns, float64(streamBytes)/1e9, done.Sub(committed).Seconds(), float64(before)/1024, want)
	return agentRow, restoreRow, note
}

// bigChecksum returns the row count and a checksum of table big.
func bigChecksum(t *testing.T, db *benchDB) string {
	t.Helper()
	var s string
	err := db.conn.QueryRow(context.Background(),
		`SELECT count(*) || ' rows, md5 ' || md5(string_agg(md5(id || ':' || v), '' ORDER BY id)) FROM big`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
