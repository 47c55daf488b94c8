package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/jackc/pgx/v5"

	"github.com/rxvault/rxvault/archive"
	"github.com/rxvault/rxvault/integration/myworkload"
	"github.com/rxvault/rxvault/integration/workload"
	"github.com/rxvault/rxvault/internal/monitor"
	"github.com/rxvault/rxvault/internal/testenv"
	"github.com/rxvault/rxvault/segment"
)

// One test body per scenario: a scenario is written once against
// engineHarness and run once per row of engines, as a subtest named after
// the engine (TestCrashUnderLoad/postgres, TestCrashUnderLoad/mariadb).
// What the engines do differently lives in the harnesses below, never in
// a scenario's body.

// engineHarness is one engine's source as the scenarios see it: a private
// server with the pharmacy workload's schema in database pharmacy, the
// workload on a connection of its own, and an oracle that reads databases
// on that server in plain SQL (workload.Snapshot, myworkload.Snapshot),
// sharing nothing with rxvault's decoding.
type engineHarness interface {
	// engine is the engine whose notation positions are written in.
	engine() segment.Engine
	// dsn is the source database's DSN, for the agent's configuration
	// (and a non-empty restore target).
	dsn() string

	// step runs one workload transaction on the workload's connection.
	// Only one goroutine runs the workload at a time.
	step(ctx context.Context) error
	// committed is how many workload transactions have committed.
	committed() int
	// pause is the pause between the transactions of a background load
	// of level l.
	pause(l loadLevel) time.Duration

	// settle is how long, after the last workload transaction, the source
	// needs to stand still before its state is what the archive will
	// restore: heartbeats committed meanwhile carry what no row change
	// does (PostgreSQL's sequences, MariaDB's AUTO_INCREMENT counters).
	settle() time.Duration
	// commitResolution is the resolution of the commit times the source
	// stamps (PostgreSQL: a microsecond; MariaDB: a whole second).
	commitResolution() time.Duration

	// schemaChanges are the workload's schema changes, to run mid-run
	// on the workload's connection.
	schemaChanges() []schemaChange
	// exec runs one statement in the source database.
	exec(t *testing.T, query string)
	// mark commits a transaction that inserts n into table txn_mark and
	// returns its transaction id, as --xid or --gtid names it.
	mark(t *testing.T, n int) string

	// now reads the source server's clock.
	now(t *testing.T) time.Time
	// probeCommit commits a transaction and returns an instant such that
	// a recovery point at or after it holds the transaction.
	probeCommit(t *testing.T) time.Time

	// state is the oracle's reading of database db on the source's server.
	state(t *testing.T, db string) dbState
	// createDatabase creates the empty database name on the source's
	// server and returns its DSN, for restore --target.
	createDatabase(t *testing.T, name string) string

	// rotateLog makes the server start a new log file under the running
	// agent (MariaDB: FLUSH BINARY LOGS; PostgreSQL: pg_switch_wal()).
	rotateLog(t *testing.T)
	// savedPosition reads the source's resume anchor, the position the
	// agent of d acknowledged as durably stored (PostgreSQL: the
	// replication slot's confirmed flush; MariaDB: the binlog position
	// saved in the spool); ok is false when there is none.
	savedPosition(t *testing.T, d *deployment) (pos segment.Position, ok bool)
	// loseStream, with the agent stopped, makes the change stream after
	// the saved position unreadable (PostgreSQL: the slot dropped;
	// MariaDB: the binlog purged), so the agent must start a new chain.
	loseStream(t *testing.T)

	// refusals are the restore refusals that belong to the engine (its
	// transaction ids and position notation), each wanting exit 2 and one
	// line; empty is an empty target's DSN, identity the deployment's
	// identity file.
	refusals(empty, identity string) []refusal
}

// backupGTIDChecker is an engine whose base backups record a GTID
// position the server reports itself (MariaDB).
type backupGTIDChecker interface {
	// checkBackupGTID takes a base backup with d's agent stopped and
	// nothing writing: it must record the server's GTID position, before
	// and after the backup, and list must show it.
	checkBackupGTID(t *testing.T, d *deployment)
}

// logRetainer is an engine whose server retains its log for the agent
// (a PostgreSQL replication slot), so what it retains on an idle database
// must stay bounded.
type logRetainer interface {
	// idleRetainLimit is the most the server may retain for the agent
	// after two idle minutes.
	idleRetainLimit() int64
}

// lastTxnReader is an engine whose server reports the id of the last
// transaction it committed (MariaDB's @@gtid_binlog_pos, one domain).
type lastTxnReader interface {
	// lastTxnID is the id of the source's last committed transaction.
	lastTxnID(t *testing.T) string
}

// schemaChange is one of the workload's schema changes.
type schemaChange struct {
	name string
	run  func(ctx context.Context) error
}

// loadLevel is how hard a background load drives the source.
type loadLevel int

const (
	// heavyLoad: a transaction every 2 ms or so.
	heavyLoad loadLevel = iota
	// steadyLoad: steady, so the restores after a long run stay short.
	steadyLoad
	// lightLoad: a light load, for measuring lag.
	lightLoad
)

// refusal is one command rxvault must refuse.
type refusal struct {
	name string
	args []string
	want string // on the one line of stderr
}

// engines are the engines every scenario runs against, one subtest each.
var engines = []struct {
	name  string
	start func(t *testing.T, seed uint64) engineHarness
}{
	{"postgres", startPostgresHarness},
	{"mariadb", startMariaDBHarness},
}

// forEachEngine runs body once per engine, as the subtest named after the
// engine, on a fresh source whose workload is seeded with seed.
func forEachEngine(t *testing.T, seed uint64, body func(t *testing.T, h engineHarness)) {
	t.Helper()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) { body(t, e.start(t, seed)) })
	}
}

// dbState is the oracle's reading of one database: a fingerprint per item
// (a table's rows, a sequence, a table's definition and AUTO_INCREMENT
// counter, as far as the engine's snapshot goes) and the ledger's row
// count and sum ("" with no ledger table).
type dbState struct {
	items  map[string]string
	ledger string
}

// diff lists how got differs from s (wanted), or nothing when equal.
func (s dbState) diff(got dbState) []string {
	m := maps.Clone(s.items)
	maps.Copy(m, got.items)
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if a, b := s.items[k], got.items[k]; a != b {
			out = append(out, fmt.Sprintf("%s: want %s, got %s", k, orMissingItem(a), orMissingItem(b)))
		}
	}
	if s.ledger != got.ledger {
		out = append(out, fmt.Sprintf("ledger: want %s, got %s", orMissingItem(s.ledger), orMissingItem(got.ledger)))
	}
	return out
}

func orMissingItem(s string) string {
	if s == "" {
		return "(missing)"
	}
	return s
}

// compareStates reports, as what, how got differs from want.
func compareStates(t *testing.T, what string, want, got dbState) {
	t.Helper()
	if diff := want.diff(got); len(diff) > 0 {
		t.Errorf("%s differs from the source:\n  %s", what, strings.Join(diff, "\n  "))
	}
}

// startLoad runs h's workload in the background, a transaction every
// h.pause(l) or so, until the returned stop is called; stop returns the
// workload's error. The workload's connection is the load's alone
// meanwhile.
func startLoad(h engineHarness, l loadLevel) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	pause := h.pause(l)
	var wg sync.WaitGroup
	var err error
	wg.Go(func() {
		for ctx.Err() == nil {
			if err = h.step(ctx); err != nil {
				if ctx.Err() != nil {
					err = nil
				}
				return
			}
			time.Sleep(pause)
		}
	})
	return func() error {
		cancel()
		wg.Wait()
		return err
	}
}

// runWorkload runs h's workload in the foreground for d.
func runWorkload(t *testing.T, h engineHarness, d time.Duration) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if err := h.step(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

// waitArchived waits until every store of d holds a commit made after
// instant at (the agent's recovery point, which heartbeats keep moving,
// is past it), so everything committed up to at is archived.
func waitArchived(t *testing.T, d *deployment, h engineHarness, at time.Time) {
	t.Helper()
	res := h.commitResolution()
	after := at.Truncate(res).Add(res)
	d.waitStatus(t, "the archive holding "+at.Format(time.RFC3339Nano), 2*time.Minute, func(s *monitor.Snapshot) bool {
		return s.RecoveryPoint.After(after)
	})
}

// quietEnd ends a run at a point the archive restores exactly: it lets
// the source settle, reads its state, and waits until every store holds
// that state. The agent must be running.
func quietEnd(t *testing.T, h engineHarness, d *deployment) dbState {
	t.Helper()
	time.Sleep(h.settle())
	at := time.Now()
	s := h.state(t, "pharmacy")
	waitArchived(t, d, h, at)
	return s
}

// restoreLatestState restores the archive (from store, or the first
// configured one when empty) into the new database name and returns the
// oracle's reading of it.
func restoreLatestState(t *testing.T, h engineHarness, d *deployment, name, store string) dbState {
	t.Helper()
	args := []string{"restore", "--latest", "--target", h.createDatabase(t, name), "--identity", d.identity}
	if store != "" {
		args = append(args, "--store", store)
	}
	code, out, errOut := d.cmd(args...)
	if code != 0 {
		t.Fatalf("restore --latest into %s: exit %d\n%s%s", name, code, out, errOut)
	}
	t.Logf("%s", strings.TrimSpace(out))
	return h.state(t, name)
}

// archivedTo is the end of the newest chain in a listing of engine e's
// archive.
func archivedTo(t *testing.T, e segment.Engine, l listJSON) segment.Position {
	t.Helper()
	if len(l.Chains) == 0 || l.Chains[len(l.Chains)-1].End == "" {
		t.Fatalf("no segment archived: %+v", l)
	}
	p, err := segment.ParsePosition(e, l.Chains[len(l.Chains)-1].End)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// storeName is a store URL without its query (which may name endpoints).
func storeName(store string) string { return strings.SplitN(store, "?", 2)[0] }

// pgHarness is a PostgreSQL 15 source.
type pgHarness struct {
	pg     *testenv.Postgres
	source string
	w      *workload.Runner
}

func startPostgresHarness(t *testing.T, seed uint64) engineHarness {
	t.Helper()
	pg := testenv.StartPostgres(t)
	dsn := pg.CreateDatabase(t, "pharmacy")
	conn := connectPG(t, dsn)
	if err := workload.Setup(t.Context(), conn); err != nil {
		t.Fatal(err)
	}
	return &pgHarness{pg: pg, source: dsn, w: workload.NewRunner(conn, seed)}
}

func (h *pgHarness) engine() segment.Engine { return segment.EnginePostgres }
func (h *pgHarness) dsn() string            { return h.source }

func (h *pgHarness) step(ctx context.Context) error { return h.w.Step(ctx) }
func (h *pgHarness) committed() int                 { return h.w.Committed }

// pause: the PostgreSQL tests have always run every load at 2 ms pauses.
func (h *pgHarness) pause(loadLevel) time.Duration { return 2 * time.Millisecond }

// settle: three heartbeats of 500 ms; the last one, carrying the
// sequences, commits after the last workload transaction.
func (h *pgHarness) settle() time.Duration           { return 1500 * time.Millisecond }
func (h *pgHarness) commitResolution() time.Duration { return time.Microsecond }

// queryString runs a query that returns one value, on a connection of
// its own to database db.
func (h *pgHarness) queryString(t *testing.T, db, query string) string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), h.pg.DSN(db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var s string
	if err := conn.QueryRow(t.Context(), query).Scan(&s); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return s
}

func (h *pgHarness) schemaChanges() []schemaChange {
	return []schemaChange{
		{"ALTER TABLE ADD COLUMN", h.w.AddColumn},
		{"CREATE TABLE", h.w.CreateTable},
		{"TRUNCATE", h.w.Truncate},
	}
}

func (h *pgHarness) exec(t *testing.T, query string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), h.source)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func (h *pgHarness) mark(t *testing.T, n int) string {
	t.Helper()
	return h.queryString(t, "pharmacy", fmt.Sprintf("INSERT INTO txn_mark VALUES (%d) RETURNING (txid_current() %% 4294967296)::text", n))
}

func (h *pgHarness) now(t *testing.T) time.Time {
	t.Helper()
	return dbNow(t, h.source)
}

func (h *pgHarness) probeCommit(t *testing.T) time.Time {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), h.source)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var committed time.Time
	if err := conn.QueryRow(t.Context(), `INSERT INTO ledger (account, amount) VALUES (99, 0) RETURNING clock_timestamp()`).Scan(&committed); err != nil {
		t.Fatal(err)
	}
	return committed
}

// idleRetainLimit: 16 MiB, a WAL segment's worth.
func (h *pgHarness) idleRetainLimit() int64 { return 16 << 20 }

func (h *pgHarness) state(t *testing.T, db string) dbState {
	t.Helper()
	ws := snapshot(t, h.pg.DSN(db))
	s := dbState{items: map[string]string{}}
	for k, v := range ws.Tables {
		s.items["table "+k] = v
	}
	for k, v := range ws.Sequences {
		s.items["sequence "+k] = v
	}
	if h.queryString(t, db, `SELECT (to_regclass('public.ledger') IS NOT NULL)::text`) == "true" {
		s.ledger = h.queryString(t, db, `SELECT count(*) || ' rows, sum ' || coalesce(sum(amount), 0) FROM public.ledger`)
	}
	return s
}

func (h *pgHarness) createDatabase(t *testing.T, name string) string {
	t.Helper()
	return h.pg.CreateDatabase(t, name)
}

func (h *pgHarness) rotateLog(t *testing.T) {
	t.Helper()
	h.queryString(t, "pharmacy", `SELECT pg_switch_wal()::text`)
}

func (h *pgHarness) savedPosition(t *testing.T, _ *deployment) (segment.Position, bool) {
	t.Helper()
	lsn := h.queryString(t, "pharmacy", `SELECT coalesce(max(confirmed_flush_lsn::text), '') FROM pg_replication_slots WHERE slot_name = 'rxvault'`)
	if lsn == "" {
		return segment.Position{}, false
	}
	p, err := segment.ParsePosition(segment.EnginePostgres, lsn)
	if err != nil {
		t.Fatalf("the slot's confirmed flush: %v", err)
	}
	return p, true
}

func (h *pgHarness) loseStream(t *testing.T) {
	t.Helper()
	h.queryString(t, "pharmacy", `SELECT pg_drop_replication_slot('rxvault')::text`)
	t.Log("replication slot rxvault dropped")
}

func (h *pgHarness) refusals(empty, identity string) []refusal {
	return []refusal{
		{"malformed xid", []string{"restore", "--xid", "0-1-5", "--target", empty, "--identity", identity}, "want a PostgreSQL xid"},
		{"xid not archived", []string{"restore", "--xid", "3999999999", "--target", empty, "--identity", identity}, "not in the archive"},
		{"GTID for a PostgreSQL source", []string{"restore", "--gtid", "0-1-5", "--target", empty, "--identity", identity}, "--gtid does not name a transaction of this source, which is postgres: name a PostgreSQL transaction id with --xid"},
		{"malformed LSN", []string{"restore", "--lsn", "000042:1234", "--target", empty, "--identity", identity}, "want a PostgreSQL LSN"},
	}
}

// mariadbHarness is a MariaDB 10.11 source; its database pharmacy has a
// character set and collation other than the server's defaults.
type mariadbHarness struct {
	m      *testenv.MariaDB
	source string
	w      *myworkload.Runner
}

func startMariaDBHarness(t *testing.T, seed uint64) engineHarness {
	t.Helper()
	m, conn, dsn := newMariaDBSource(t)
	return &mariadbHarness{m: m, source: dsn, w: myworkload.NewRunner(conn, seed)}
}

func (h *mariadbHarness) engine() segment.Engine { return segment.EngineMariaDB }
func (h *mariadbHarness) dsn() string            { return h.source }

func (h *mariadbHarness) step(context.Context) error { return h.w.Step() }
func (h *mariadbHarness) committed() int             { return h.w.Commits }

func (h *mariadbHarness) pause(l loadLevel) time.Duration {
	switch l {
	case steadyLoad:
		return 15 * time.Millisecond
	case lightLoad:
		return 20 * time.Millisecond
	default:
		return 2 * time.Millisecond
	}
}

// settle: more than a heartbeat after the last commit, in a later second
// (commit stamps are whole seconds), so the AUTO_INCREMENT counters, which
// rolled-back inserts move without a binlog event, are archived too.
func (h *mariadbHarness) settle() time.Duration           { return 1600 * time.Millisecond }
func (h *mariadbHarness) commitResolution() time.Duration { return time.Second }

// conn connects as root to database db over the socket; the caller
// closes it.
func (h *mariadbHarness) conn(t *testing.T, db string) *client.Conn {
	t.Helper()
	c, err := client.Connect(h.m.Socket, "root", "", db)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (h *mariadbHarness) schemaChanges() []schemaChange {
	return []schemaChange{
		{"ALTER TABLE ADD COLUMN", func(context.Context) error { return h.w.AddColumn() }},
		{"CREATE TABLE", func(context.Context) error { return h.w.CreateTable() }},
	}
}

func (h *mariadbHarness) exec(t *testing.T, query string) {
	t.Helper()
	c := h.conn(t, "pharmacy")
	defer c.Close()
	if _, err := c.Execute(query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func (h *mariadbHarness) mark(t *testing.T, n int) string {
	t.Helper()
	c := h.conn(t, "pharmacy")
	defer c.Close()
	if _, err := c.Execute(fmt.Sprintf("INSERT INTO txn_mark VALUES (%d)", n)); err != nil {
		t.Fatal(err)
	}
	return myQueryString(t, c, "SELECT @@last_gtid")
}

func (h *mariadbHarness) lastTxnID(t *testing.T) string {
	t.Helper()
	c := h.conn(t, "pharmacy")
	defer c.Close()
	return myQueryString(t, c, "SELECT @@gtid_binlog_pos")
}

func (h *mariadbHarness) now(t *testing.T) time.Time {
	t.Helper()
	c := h.conn(t, "")
	defer c.Close()
	s := myQueryString(t, c, "SELECT DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%d %H:%i:%s.%f')")
	now, err := time.Parse("2006-01-02 15:04:05.999999", s)
	if err != nil {
		t.Fatal(err)
	}
	return now
}

// probeCommit returns the whole second the probe's statement started in,
// which is how the binlog stamps its commit.
func (h *mariadbHarness) probeCommit(t *testing.T) time.Time {
	t.Helper()
	c := h.conn(t, "pharmacy")
	defer c.Close()
	at := h.now(t).Truncate(time.Second)
	if _, err := c.Execute("INSERT INTO ledger (account, amount) VALUES ('acct-99', 0)"); err != nil {
		t.Fatal(err)
	}
	return at
}

func (h *mariadbHarness) state(t *testing.T, db string) dbState {
	t.Helper()
	c := h.conn(t, db)
	defer c.Close()
	ms, err := myworkload.Snapshot(c)
	if err != nil {
		t.Fatal(err)
	}
	s := dbState{items: maps.Clone(map[string]string(ms))}
	if myQueryString(t, c, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'ledger'") != "0" {
		s.ledger = myQueryString(t, c, "SELECT CONCAT(COUNT(*), ' rows, sum ', IFNULL(SUM(amount), 0)) FROM ledger")
	}
	return s
}

func (h *mariadbHarness) createDatabase(t *testing.T, name string) string {
	t.Helper()
	h.m.CreateDatabase(t, name)
	return h.m.DSN(name) + "?tls=false"
}

func (h *mariadbHarness) rotateLog(t *testing.T) {
	t.Helper()
	h.m.Exec(t, "FLUSH BINARY LOGS")
}

func (h *mariadbHarness) savedPosition(t *testing.T, d *deployment) (segment.Position, bool) {
	t.Helper()
	return mrSavedPos(t, d)
}

func (h *mariadbHarness) loseStream(t *testing.T) {
	t.Helper()
	t.Logf("binlog purged up to %s", mrPurge(t, h.m))
}

func (h *mariadbHarness) refusals(empty, identity string) []refusal {
	return []refusal{
		{"malformed GTID", []string{"restore", "--gtid", "0-1", "--target", empty, "--identity", identity}, "want a MariaDB GTID"},
		{"GTID not archived", []string{"restore", "--gtid", "0-1-999999999", "--target", empty, "--identity", identity}, "not in the archive"},
		{"xid for a MariaDB source", []string{"restore", "--xid", "7345", "--target", empty, "--identity", identity}, "--xid does not name a transaction of this source, which is mariadb: name a GTID with --gtid"},
		{"malformed binlog position", []string{"restore", "--lsn", "16/B374D848", "--target", empty, "--identity", identity}, "want binlog file number and offset"},
	}
}

func (h *mariadbHarness) checkBackupGTID(t *testing.T, d *deployment) {
	t.Helper()
	c := h.conn(t, "pharmacy")
	defer c.Close()
	gtidBefore := myQueryString(t, c, "SELECT @@gtid_binlog_pos")
	code, out, errOut := d.cmd("backup", "--json")
	if code != 0 {
		t.Fatalf("backup --json: exit %d\n%s%s", code, out, errOut)
	}
	var bm archive.Manifest
	if err := json.Unmarshal([]byte(out), &bm); err != nil {
		t.Fatalf("backup --json is not a manifest: %v\n%s", err, out)
	}
	if gtidAfter := myQueryString(t, c, "SELECT @@gtid_binlog_pos"); bm.GTID == "" || bm.GTID != gtidBefore || gtidAfter != gtidBefore {
		t.Errorf("backup's GTID %q; the server's was %q before and %q after", bm.GTID, gtidBefore, gtidAfter)
	}
	if code, out, _ := d.cmd("list"); code != 0 || !strings.Contains(out, "(GTID "+bm.GTID+")") {
		t.Errorf("list does not show the backup's GTID %s: exit %d\n%s", bm.GTID, code, out)
	}
}
