package mysql_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/capture/mysql"
	"github.com/rxvault/rxvault/internal/testenv"
	"github.com/rxvault/rxvault/segment"
)

// sink collects what a reader delivers.
type sink struct {
	mu   sync.Mutex
	txns []segment.Txn
	ends []segment.Position
	prog []segment.Position
	// caughtUp has, for each CaughtUp call, how many transactions had
	// been delivered before it.
	caughtUp []int
}

func (s *sink) Txn(_ context.Context, t *capture.Txn) error {
	st := segment.Txn{TxnInfo: t.Info}
	for c, err := range t.Changes {
		if err != nil {
			return err
		}
		cc := *c
		cc.Old = cloneVals(c.Old)
		cc.New = cloneVals(c.New)
		st.Changes = append(st.Changes, cc)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.txns = append(s.txns, st)
	s.ends = append(s.ends, t.End)
	return nil
}

func cloneVals(v []segment.Value) []segment.Value {
	out := make([]segment.Value, len(v))
	for i := range v {
		out[i] = segment.Value{Kind: v[i].Kind, Data: append([]byte(nil), v[i].Data...)}
	}
	return out
}

func (s *sink) CaughtUp(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.caughtUp = append(s.caughtUp, len(s.txns))
	return nil
}

func (s *sink) Progress(_ context.Context, pos segment.Position, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prog = append(s.prog, pos)
	return nil
}

// data returns the delivered transactions that are not heartbeats.
func (s *sink) data() []segment.Txn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []segment.Txn
	for _, t := range s.txns {
		if len(t.Changes) > 0 && t.Changes[0].Prefix == segment.MsgHeartbeat {
			continue
		}
		out = append(out, t)
	}
	return out
}

func (s *sink) heartbeats() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, t := range s.txns {
		if len(t.Changes) > 0 && t.Changes[0].Prefix == segment.MsgHeartbeat {
			n++
		}
	}
	return n
}

// running is a reader running in the background.
type running struct {
	r    *mysql.Reader
	sink *sink
	stop func() error
	// exited is closed when Run has returned by itself or been stopped;
	// stop then returns its error at once.
	exited <-chan struct{}
}

func start(t *testing.T, cfg mysql.Config) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r, err := mysql.Open(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("open: %v", err)
	}
	s := &sink{}
	exited := make(chan struct{})
	var runErr error
	go func() {
		runErr = r.Run(ctx, s)
		close(exited)
	}()
	var once sync.Once
	stop := func() error {
		once.Do(func() {
			cancel()
			<-exited
			r.Close()
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return &running{r: r, sink: s, stop: stop, exited: exited}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func newServer(t *testing.T) (*testenv.MariaDB, mysql.Config) {
	m := testenv.StartMariaDB(t)
	m.CreateDatabase(t, "pharmacy")
	return m, configFor(t, m)
}

// configFor is a capture configuration for database pharmacy of m.
func configFor(t *testing.T, m *testenv.MariaDB) mysql.Config {
	return mysql.Config{DSN: m.DSN("pharmacy") + "?tls=false", StateDir: t.TempDir(), SpillDir: t.TempDir(), Heartbeat: 200 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)}
}

const typesTable = `CREATE TABLE pharmacy.types (
	id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
	dec65 DECIMAL(65,30), dt DATETIME(6), ts TIMESTAMP(6) NULL, b BIT(12), e ENUM('a','b','c'), s SET('x','y','z'),
	j JSON, bl BLOB, lb LONGBLOB, txt VARCHAR(100) CHARACTER SET utf8mb4, big BIGINT UNSIGNED, f FLOAT, d DOUBLE,
	n INT, tm TIME(3), dd DATE, y YEAR,
	gen INT AS (n * 2) VIRTUAL)`

// TestCaptureTypes inserts, updates and deletes rows of every type and
// checks each captured value against the server's own rendering of it.
func TestCaptureTypes(t *testing.T) {
	m, cfg := newServer(t)
	m.Exec(t, typesTable)
	run := start(t, cfg)
	if !run.r.SlotCreated() {
		t.Fatal("first open: SlotCreated false")
	}
	m.Exec(t, `INSERT INTO pharmacy.types (dec65, dt, ts, b, e, s, j, bl, lb, txt, big, f, d, n, tm, dd, y) VALUES
		('-12345678901234567890123456789012345.123456789012345678901234567890', '2026-12-02 10:02:17.123456', '2026-12-02 10:02:17.654321',
		 b'101010101010', 'b', 'x,z', '{"k": [1, 2.5, "v"], "n": null}', X'00FF10', REPEAT(X'AB', 70000), 'café 💊', 18446744073709551615,
		 0.1, 2.718281828459045, -7, '-838:59:58.125', '2026-02-28', 2026)`)
	m.Exec(t, `INSERT INTO pharmacy.types (n) VALUES (NULL)`)
	m.Exec(t, `UPDATE pharmacy.types SET n = 5, txt = 'x' WHERE id = 2`)
	m.Exec(t, `DELETE FROM pharmacy.types WHERE id = 2`)
	waitFor(t, "4 transactions", func() bool { return len(run.sink.data()) >= 4 })
	txns := run.sink.data()

	rel := txns[0].Changes[0].Rel
	cols := make([]string, len(rel.Columns))
	for i, c := range rel.Columns {
		cols[i] = c.Name
	}
	if got := strings.Join(cols, ","); got != "id,dec65,dt,ts,b,e,s,j,bl,lb,txt,big,f,d,n,tm,dd,y,gen" {
		t.Fatalf("columns %s", got)
	}
	if !rel.Columns[0].Key || rel.Columns[1].Key {
		t.Errorf("key flags: id %v, dec65 %v", rel.Columns[0].Key, rel.Columns[1].Key)
	}
	if rel.Columns[0].Type != "bigint unsigned" || rel.Columns[1].Type != "decimal(65,30)" || rel.Columns[2].Type != "datetime(6)" {
		t.Errorf("types %q %q %q", rel.Columns[0].Type, rel.Columns[1].Type, rel.Columns[2].Type)
	}
	// The server's own text of each value, with binary ones in hex.
	want := m.Exec(t, `SELECT id, CAST(dec65 AS CHAR), CAST(dt AS CHAR), CAST(ts AS CHAR), CAST(b + 0 AS CHAR), CAST(e + 0 AS CHAR), CAST(s + 0 AS CHAR),
		HEX(j), HEX(bl), HEX(lb), HEX(txt), CAST(big AS CHAR), n, CAST(tm AS CHAR), CAST(dd AS CHAR), CAST(y AS CHAR), gen
		FROM pharmacy.types WHERE id = 1`)
	ins := txns[0].Changes[0]
	if ins.Op != segment.OpInsert {
		t.Fatalf("first change %s", ins.Op)
	}
	check := func(col int, wantCol int, binary bool) {
		t.Helper()
		w, _ := want.GetString(0, wantCol)
		v := ins.New[col]
		got := string(v.Data)
		if binary {
			if v.Kind != segment.Binary {
				t.Errorf("%s: kind %d, want binary", rel.Columns[col].Name, v.Kind)
			}
			got = strings.ToUpper(hex.EncodeToString(v.Data))
		}
		if got != w {
			if len(got) > 80 {
				got, w = got[:80]+"…", w[:min(80, len(w))]+"…"
			}
			t.Errorf("%s: captured %q, server says %q", rel.Columns[col].Name, got, w)
		}
	}
	for col, wc := range map[int]int{0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 11: 11, 14: 12, 15: 13, 16: 14, 17: 15, 18: 16} {
		check(col, wc, false)
	}
	for col, wc := range map[int]int{7: 7, 8: 8, 9: 9, 10: 10} {
		check(col, wc, true)
	}
	if f, d := string(ins.New[12].Data), string(ins.New[13].Data); f != "0.1" || d != "2.718281828459045" {
		t.Errorf("float %q double %q", f, d)
	}

	upd := txns[2].Changes[0]
	if upd.Op != segment.OpUpdate || upd.OldKind != segment.OldFull || upd.Old[14].Kind != segment.Null || string(upd.New[14].Data) != "5" {
		t.Errorf("update: %s old kind %d old n %v new n %q", upd.Op, upd.OldKind, upd.Old[14], upd.New[14].Data)
	}
	del := txns[3].Changes[0]
	if del.Op != segment.OpDelete || del.OldKind != segment.OldFull || string(del.Old[0].Data) != "2" {
		t.Errorf("delete: %s %d %q", del.Op, del.OldKind, del.Old[0].Data)
	}
	// GTIDs, increasing positions, ends past positions.
	for i, tx := range txns {
		if !strings.HasPrefix(tx.ID, "0-1-") {
			t.Errorf("txn %d: id %q, want a MariaDB GTID", i, tx.ID)
		}
		if i > 0 && tx.Pos.Compare(txns[i-1].Pos) <= 0 {
			t.Errorf("txn %d: position %v not after %v", i, tx.Pos, txns[i-1].Pos)
		}
		if tx.Commit.IsZero() || time.Since(tx.Commit) > time.Minute {
			t.Errorf("txn %d: commit time %v", i, tx.Commit)
		}
	}
	if err := run.stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
}

// TestCaptureIntegerWidths captures every integer width, signed and
// unsigned, at both ends of its range and in the middle, and checks each
// value against the server's own text of it: unsigned values travel as
// signed bits (see assembler.tableMap), so the top half of each unsigned
// range and the negative half of each signed one are where a wrong
// reinterpretation would show.
func TestCaptureIntegerWidths(t *testing.T) {
	m, cfg := newServer(t)
	m.Exec(t, `CREATE TABLE pharmacy.ints (id INT NOT NULL PRIMARY KEY,
		t TINYINT, tu TINYINT UNSIGNED, s SMALLINT, su SMALLINT UNSIGNED, m MEDIUMINT, mu MEDIUMINT UNSIGNED,
		i INT, iu INT UNSIGNED, b BIGINT, bu BIGINT UNSIGNED)`)
	run := start(t, cfg)
	m.Exec(t, `INSERT INTO pharmacy.ints VALUES
		(1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615),
		(2, 127, 128, 32767, 32768, 8388607, 8388608, 2147483647, 2147483648, 9223372036854775807, 9223372036854775808),
		(3, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0),
		(4, 5, 200, -300, 40000, -70000, 9000000, -5, 3000000000, -7, 10000000000000000000)`)
	waitFor(t, "the insert", func() bool { return len(run.sink.data()) >= 1 })
	ins := run.sink.data()[0].Changes
	if len(ins) != 4 {
		t.Fatalf("%d changes, want 4", len(ins))
	}
	want := m.Exec(t, `SELECT CAST(id AS CHAR), CAST(t AS CHAR), CAST(tu AS CHAR), CAST(s AS CHAR), CAST(su AS CHAR), CAST(m AS CHAR),
		CAST(mu AS CHAR), CAST(i AS CHAR), CAST(iu AS CHAR), CAST(b AS CHAR), CAST(bu AS CHAR) FROM pharmacy.ints ORDER BY id`)
	for r, c := range ins {
		for col, v := range c.New {
			w, _ := want.GetString(r, col)
			if v.Kind != segment.Text || string(v.Data) != w {
				t.Errorf("row %d, %s (%s): captured %q (kind %d), server says %q", r+1, c.Rel.Columns[col].Name, c.Rel.Columns[col].Type, v.Data, v.Kind, w)
			}
		}
	}
	if err := run.stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
}

// TestCaptureDDLSession checks that each DDL change comes after a message
// with its session's sql_mode and time zone, that the server reads the
// captured sql_mode back as the mode the session had, and that a statement
// changing another database's table is flagged.
func TestCaptureDDLSession(t *testing.T) {
	m, cfg := newServer(t)
	run := start(t, cfg)
	c, err := m.RootConn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const mode = "ANSI_QUOTES,STRICT_ALL_TABLES,NO_ZERO_DATE,PAD_CHAR_TO_FULL_LENGTH"
	for _, q := range []string{
		"USE pharmacy",
		"CREATE TABLE a (id INT PRIMARY KEY)", // the server's defaults
		"SET SESSION sql_mode = '" + mode + "', time_zone = '+05:30'",
		"CREATE TABLE b (id INT PRIMARY KEY, at TIMESTAMP NOT NULL DEFAULT '2026-06-01 12:00:00')",
		"CREATE DATABASE other",
		"CREATE TABLE other.x (id INT PRIMARY KEY)",
		"CREATE VIEW v AS SELECT * FROM other.x", // reads another database: fine
		"DROP TABLE b, other.x",                  // changes another database: flagged
	} {
		if _, err := c.Execute(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	waitFor(t, "four DDL transactions", func() bool { return len(run.sink.data()) >= 4 })
	var sessions []map[string]any
	for _, tx := range run.sink.data()[:4] {
		if len(tx.Changes) != 2 || tx.Changes[0].Prefix != segment.MsgDDLSession || tx.Changes[1].Op != segment.OpDDL {
			t.Fatalf("DDL transaction %s: %d changes, want the session message then the DDL", tx.ID, len(tx.Changes))
		}
		var s map[string]any
		if err := json.Unmarshal(tx.Changes[0].Content, &s); err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, s)
	}
	def := m.Exec(t, "SELECT @@GLOBAL.sql_mode")
	for i, want := range []struct{ mode, tz string }{{"", ""}, {mode, "+05:30"}} {
		if want.mode == "" {
			want.mode, _ = def.GetString(0, 0)
		}
		if _, err := c.Execute(fmt.Sprint("SET SESSION sql_mode = ", sessions[i]["sql_mode"])); err != nil {
			t.Fatalf("DDL %d: captured sql_mode %q: %v", i, sessions[i]["sql_mode"], err)
		}
		r, err := c.Execute("SELECT @@SESSION.sql_mode")
		if err != nil {
			t.Fatal(err)
		}
		tz, _ := sessions[i]["time_zone"].(string)
		if got, _ := r.GetString(0, 0); got != want.mode || tz != want.tz {
			t.Errorf("DDL %d: captured sql_mode %v (%q), time zone %q; want %q, %q", i, sessions[i]["sql_mode"], got, tz, want.mode, want.tz)
		}
	}
	for i, want := range []any{nil, nil, nil, true} {
		if got := sessions[i]["other_databases"]; got != want {
			t.Errorf("DDL %d (%s): other_databases %v, want %v", i, run.sink.data()[i].Changes[1].SQL, got, want)
		}
	}
	if err := run.stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
}

// TestCaptureDDLAndHeartbeat checks DDL in commit order between row
// changes, other databases ignored, and heartbeats carrying counters.
func TestCaptureDDLAndHeartbeat(t *testing.T) {
	m, cfg := newServer(t)
	m.Exec(t, "CREATE DATABASE other")
	run := start(t, cfg)
	c, err := m.RootConn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, q := range []string{
		"USE pharmacy",
		"CREATE TABLE fills (id INT AUTO_INCREMENT PRIMARY KEY, qty INT)",
		"INSERT INTO fills (qty) VALUES (1), (2)",
		"ALTER TABLE fills ADD COLUMN note VARCHAR(20) DEFAULT 'n'",
		"INSERT INTO fills (qty, note) VALUES (3, 'x')",
		"CREATE TABLE other.t (a INT PRIMARY KEY)",
		"INSERT INTO other.t VALUES (1)",
		"USE other",
		"ALTER TABLE pharmacy.fills ADD COLUMN extra INT",
		"GRANT SELECT ON pharmacy.* TO 'rxvault'@'127.0.0.1'",
		"TRUNCATE TABLE pharmacy.fills",
	} {
		if _, err := c.Execute(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	waitFor(t, "the truncate", func() bool {
		d := run.sink.data()
		return len(d) > 0 && strings.HasPrefix(d[len(d)-1].Changes[len(d[len(d)-1].Changes)-1].SQL, "TRUNCATE")
	})
	var got []string
	for _, tx := range run.sink.data() {
		for _, ch := range tx.Changes {
			switch ch.Op {
			case segment.OpDDL:
				got = append(got, "ddl:"+strings.Fields(ch.SQL)[0]+" "+strings.Fields(ch.SQL)[1])
			case segment.OpMessage:
				got = append(got, "message:"+ch.Prefix)
			default:
				got = append(got, fmt.Sprintf("%s:%s:%d", ch.Op, ch.Rel.Table, len(ch.Rel.Columns)))
			}
		}
	}
	const sess = "message:" + segment.MsgDDLSession + ","
	want := sess + "ddl:CREATE TABLE,insert:fills:2,insert:fills:2," + sess + "ddl:ALTER TABLE,insert:fills:3," + sess + "ddl:ALTER TABLE," + sess + "ddl:TRUNCATE TABLE"
	if strings.Join(got, ",") != want {
		t.Errorf("captured\n %s\nwant\n %s", strings.Join(got, ","), want)
	}
	waitFor(t, "heartbeats", func() bool { return run.sink.heartbeats() >= 3 })
	run.sink.mu.Lock()
	var ai string
	for _, tx := range run.sink.txns {
		for _, ch := range tx.Changes {
			if ch.Prefix == segment.MsgAutoIncrement {
				ai = string(ch.Content)
			}
		}
	}
	run.sink.mu.Unlock()
	if !strings.Contains(ai, `"fills":"`) {
		t.Errorf("auto_increment message %q lacks fills", ai)
	}
	if err := run.stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
}

// TestHeartbeatNonASCIINames checks that a heartbeat names tables whose
// names latin1 cannot spell, or spells in other bytes than UTF-8, on a
// server whose default character set is latin1, with the heartbeat table
// left in latin1 by an older version: the counters of every table reach
// the archive under its name.
func TestHeartbeatNonASCIINames(t *testing.T) {
	m, cfg := newServer(t)
	c, err := m.RootConn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, q := range []string{
		"SET NAMES utf8mb4",
		// The heartbeat table as older versions created it: in the
		// server's default character set, latin1.
		"CREATE DATABASE rxvault",
		"CREATE TABLE rxvault.heartbeat (db VARCHAR(64) NOT NULL PRIMARY KEY, at DATETIME(6) NOT NULL, auto_increment LONGTEXT NOT NULL) ENGINE=InnoDB",
		"CREATE TABLE pharmacy.`Überweisung` (id INT AUTO_INCREMENT PRIMARY KEY)",
		"CREATE TABLE pharmacy.`处方` (id INT AUTO_INCREMENT PRIMARY KEY)",
		"INSERT INTO pharmacy.`Überweisung` VALUES (NULL)",
		"INSERT INTO pharmacy.`处方` VALUES (NULL)",
	} {
		if _, err := c.Execute(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	run := start(t, cfg)
	want := map[string]string{"Überweisung": "2", "处方": "2"}
	var got map[string]string
	deadline := time.Now().Add(20 * time.Second)
	for fmt.Sprint(got) != fmt.Sprint(want) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		run.sink.mu.Lock()
		for _, tx := range run.sink.txns {
			for _, ch := range tx.Changes {
				if ch.Prefix == segment.MsgAutoIncrement {
					got = nil
					if err := json.Unmarshal(ch.Content, &got); err != nil {
						t.Errorf("auto_increment message %q: %v", ch.Content, err)
					}
				}
			}
		}
		run.sink.mu.Unlock()
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("last auto_increment message %q, want %q", got, want)
	}
	if err := run.stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
}

// TestResumeAndPurge acknowledges, restarts from the saved position with
// nothing lost or doubled, then purges the binlog under a stopped reader:
// the next open reports the stream lost and the one after starts anew.
func TestResumeAndPurge(t *testing.T) {
	m, cfg := newServer(t)
	m.Exec(t, "CREATE TABLE pharmacy.l (id INT PRIMARY KEY)")
	run := start(t, cfg)
	for i := 1; i <= 5; i++ {
		m.Exec(t, fmt.Sprintf("INSERT INTO pharmacy.l VALUES (%d)", i))
	}
	waitFor(t, "5 inserts", func() bool { return len(run.sink.data()) >= 5 })
	// Acknowledge through the third insert only.
	run.sink.mu.Lock()
	var third segment.Position
	n := 0
	for i, tx := range run.sink.txns {
		if tx.Changes[0].Op == segment.OpInsert {
			n++
			if n == 3 {
				third = run.sink.ends[i]
			}
		}
	}
	caught := len(run.sink.caughtUp)
	run.sink.mu.Unlock()
	if caught != 0 {
		t.Errorf("a new stream (no backlog) called CaughtUp %d times", caught)
	}
	run.r.Acknowledge(third)
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
	m.Exec(t, "INSERT INTO pharmacy.l VALUES (6)")

	run2 := start(t, cfg)
	if run2.r.SlotCreated() || run2.r.StartPos() != third {
		t.Fatalf("reopen: created %v start %v, want %v", run2.r.SlotCreated(), run2.r.StartPos(), third)
	}
	waitFor(t, "inserts 4..6", func() bool { return len(run2.sink.data()) >= 3 })
	time.Sleep(500 * time.Millisecond)
	var ids []string
	for _, tx := range run2.sink.data() {
		ids = append(ids, string(tx.Changes[0].New[0].Data))
	}
	if strings.Join(ids, ",") != "4,5,6" {
		t.Errorf("after resume: %v, want 4,5,6", ids)
	}
	// The backlog (4..6, written before the reopen) was drained: CaughtUp
	// came once, after insert 6.
	run2.sink.mu.Lock()
	caughtUp, txns := run2.sink.caughtUp, run2.sink.txns
	run2.sink.mu.Unlock()
	sawSix := func(n int) bool {
		for _, tx := range txns[:n] {
			if tx.Changes[0].Op == segment.OpInsert && string(tx.Changes[0].New[0].Data) == "6" {
				return true
			}
		}
		return false
	}
	if len(caughtUp) != 1 || !sawSix(caughtUp[0]) {
		t.Errorf("resume with a backlog: CaughtUp after %v transactions, want once, after insert 6", caughtUp)
	}
	if err := run2.stop(); err != nil {
		t.Fatal(err)
	}

	m.Exec(t, "FLUSH BINARY LOGS")
	m.Exec(t, "FLUSH BINARY LOGS")
	rows := m.Exec(t, "SHOW MASTER STATUS")
	last, _ := rows.GetString(0, 0)
	waitFor(t, "the purge", func() bool {
		m.Exec(t, "PURGE BINARY LOGS TO '"+last+"'")
		first, _ := m.Exec(t, "SHOW BINARY LOGS").GetString(0, 0)
		return first == last
	})
	_, err := mysql.Open(context.Background(), cfg)
	if !errors.Is(err, capture.ErrStreamLost) {
		t.Fatalf("open after purge: %v, want ErrStreamLost", err)
	}
	run3 := start(t, cfg)
	if !run3.r.SlotCreated() {
		t.Fatal("open after the loss: SlotCreated false")
	}
}

// TestRefusals checks the start checks name the fix.
func TestRefusals(t *testing.T) {
	m, cfg := newServer(t)
	for _, tc := range []struct{ set, reset, want string }{
		{"SET GLOBAL binlog_row_metadata = 'MINIMAL'", "SET GLOBAL binlog_row_metadata = 'FULL'", "SET GLOBAL binlog_row_metadata = 'FULL'"},
		{"SET GLOBAL binlog_format = 'MIXED'", "SET GLOBAL binlog_format = 'ROW'", "SET GLOBAL binlog_format = 'ROW'"},
		{"SET GLOBAL binlog_row_image = 'MINIMAL'", "SET GLOBAL binlog_row_image = 'FULL'", "SET GLOBAL binlog_row_image = 'FULL'"},
	} {
		m.Exec(t, tc.set)
		_, err := mysql.Open(context.Background(), cfg)
		m.Exec(t, tc.reset)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !capture.IsPermanent(err) {
			t.Errorf("%s: open error %v, want a permanent error naming %q", tc.set, err, tc.want)
		}
	}
	bad := cfg
	bad.ServerID = 1
	if _, err := mysql.Open(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "server_id") {
		t.Errorf("same server id: %v", err)
	}
	m.Exec(t, "CREATE USER 'weak'@'127.0.0.1' IDENTIFIED BY 'pw'")
	m.Exec(t, "GRANT SELECT ON pharmacy.* TO 'weak'@'127.0.0.1'")
	weak := cfg
	weak.DSN = fmt.Sprintf("mysql://weak:pw@%s/pharmacy?tls=false", m.Addr())
	if _, err := mysql.Open(context.Background(), weak); err == nil || !strings.Contains(err.Error(), "GRANT REPLICATION SLAVE, REPLICATION CLIENT") || strings.Contains(err.Error(), "pw@") {
		t.Errorf("weak user: %v", err)
	}
}

// TestDurabilityWarning: a server that can lose committed transactions
// from its binlog in a host crash is warned about at Open, naming the
// settings to change, and one that cannot is not.
func TestDurabilityWarning(t *testing.T) {
	m, cfg := newServer(t)
	var logs bytes.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	for _, tc := range []struct {
		syncBinlog, flush string
		warned            bool
	}{{"0", "1", true}, {"1", "2", true}, {"1", "1", false}} {
		m.Exec(t, "SET GLOBAL sync_binlog = "+tc.syncBinlog)
		m.Exec(t, "SET GLOBAL innodb_flush_log_at_trx_commit = "+tc.flush)
		logs.Reset()
		r, err := mysql.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		warned := strings.Contains(logs.String(), "fix: SET GLOBAL sync_binlog = 1 and SET GLOBAL innodb_flush_log_at_trx_commit = 1")
		if warned != tc.warned {
			t.Errorf("sync_binlog %s, innodb_flush_log_at_trx_commit %s: warned %v, want %v:\n%s", tc.syncBinlog, tc.flush, warned, tc.warned, logs.String())
		}
	}
}

// TestResetMaster resumes after RESET MASTER has replaced the saved
// position's binlog file with a new one of the same name, grown past the
// saved offset: the stream is lost, not silently resumed mid-file.
func TestResetMaster(t *testing.T) {
	m, cfg := newServer(t)
	m.Exec(t, "CREATE TABLE pharmacy.l (id INT PRIMARY KEY, pad VARCHAR(200))")
	run := start(t, cfg)
	m.Exec(t, "INSERT INTO pharmacy.l VALUES (1, 'a')")
	waitFor(t, "the insert", func() bool { return len(run.sink.data()) >= 1 })
	run.sink.mu.Lock()
	end := run.sink.ends[len(run.sink.ends)-1]
	run.sink.mu.Unlock()
	run.r.Acknowledge(end)
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // the new file's stamp is a later second
	m.Exec(t, "RESET MASTER")
	for i := 2; ; i++ {
		m.Exec(t, fmt.Sprintf("INSERT INTO pharmacy.l VALUES (%d, REPEAT('x', 200))", i))
		st := m.Exec(t, "SHOW MASTER STATUS")
		file, _ := st.GetString(0, 0)
		pos, _ := st.GetUint(0, 1)
		if strings.HasSuffix(file, fmt.Sprintf(".%06d", end.Hi)) && pos > end.Lo+1000 {
			break
		}
	}
	// The dangerous case: the saved offset falls on a transaction boundary
	// of the new file (the server itself refuses one in mid-event). Move it
	// onto the end of the new file's last Xid, as chance could have.
	events := m.Exec(t, fmt.Sprintf("SHOW BINLOG EVENTS IN 'mysql-bin.%06d'", end.Hi))
	var boundary uint64
	for i := 0; i < events.RowNumber(); i++ {
		if typ, _ := events.GetString(i, 2); typ == "Xid" {
			boundary, _ = events.GetUint(i, 4)
		}
	}
	files, _ := filepath.Glob(filepath.Join(cfg.StateDir, "binlog-position-*.json"))
	if len(files) != 1 || boundary == 0 {
		t.Fatalf("state files %v, boundary %d", files, boundary)
	}
	var saved map[string]any
	data, _ := os.ReadFile(files[0])
	if err := json.Unmarshal(data, &saved); err != nil || saved["created"] == nil {
		t.Fatalf("saved position %s: %v (no created stamp)", data, err)
	}
	saved["pos"] = boundary
	data, _ = json.Marshal(saved)
	if err := os.WriteFile(files[0], data, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := mysql.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open: %v (the new file is past the saved offset, so Open itself cannot tell)", err)
	}
	defer r.Close()
	s := &sink{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = r.Run(ctx, s)
	if !errors.Is(err, capture.ErrStreamLost) || !strings.Contains(err.Error(), "written anew") {
		t.Fatalf("run after RESET MASTER: %v, want the lost stream naming the replaced file", err)
	}
	if n := len(s.data()); n != 0 {
		t.Errorf("%d transactions delivered from the replaced file", n)
	}
	run2 := start(t, cfg)
	if !run2.r.SlotCreated() {
		t.Error("the saved position was not forgotten")
	}
}

// TestRewind checks each proof Rewind asks of the server before a reader
// without a saved position resumes at the archive's end: the real end of
// an archived transaction is accepted and streams on from there; a wrong
// commit time, a position inside an event, and the same position in a
// binlog written anew after RESET MASTER are refused, leaving the reader
// at the binlog's end.
func TestRewind(t *testing.T) {
	m, cfg := newServer(t)
	m.Exec(t, "CREATE TABLE pharmacy.l (id INT PRIMARY KEY)")
	run := start(t, cfg)
	for i := 1; i <= 3; i++ {
		m.Exec(t, fmt.Sprintf("INSERT INTO pharmacy.l VALUES (%d)", i))
	}
	waitFor(t, "three inserts", func() bool { return len(run.sink.data()) >= 3 })
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
	var tip capture.ArchiveTip // the end of insert 2, as the archive would hold it
	run.sink.mu.Lock()
	for i, tx := range run.sink.txns {
		if len(tx.Changes) > 0 && tx.Changes[0].Op == segment.OpInsert && string(tx.Changes[0].New[0].Data) == "2" {
			tip = capture.ArchiveTip{EndPos: run.sink.ends[i], LastPos: tx.Pos, LastCommit: tx.Commit}
		}
	}
	run.sink.mu.Unlock()

	var why strings.Builder // what the refusals logged
	rewind := func(tip capture.ArchiveTip) (*mysql.Reader, bool) {
		t.Helper()
		why.Reset()
		c := cfg
		c.StateDir = t.TempDir() // the spool was lost
		c.Logger = slog.New(slog.NewTextHandler(&why, nil))
		r, err := mysql.Open(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		if !r.SlotCreated() {
			t.Fatal("a reader without a saved position is not SlotCreated")
		}
		end := r.StartPos()
		ok, err := r.Rewind(context.Background(), tip)
		if err != nil {
			t.Fatal(err)
		}
		if !ok && (r.StartPos() != end || !r.SlotCreated()) {
			t.Fatalf("a refused rewind moved the reader to %v", r.StartPos())
		}
		return r, ok
	}
	wrongTime := tip
	wrongTime.LastCommit = tip.LastCommit.Add(time.Second)
	inside := tip
	inside.LastPos.Lo++
	for _, tc := range []struct {
		name, why string
		tip       capture.ArchiveTip
	}{
		{"a wrong commit time", "has another time", wrongTime},
		{"a position inside an event", "read the event at the last archived commit", inside}, // the server refuses to start there
	} {
		if _, ok := rewind(tc.tip); ok || !strings.Contains(why.String(), tc.why) {
			t.Errorf("rewind to %s: ok %v, log %q; want a refusal saying %q", tc.name, ok, why.String(), tc.why)
		}
	}
	r, ok := rewind(tip)
	if !ok || r.SlotCreated() || r.StartPos() != tip.EndPos {
		t.Fatalf("rewind to the archive's end: ok %v, created %v, start %v; want %v", ok, r.SlotCreated(), r.StartPos(), tip.EndPos)
	}
	s := &sink{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, s) }()
	waitFor(t, "insert 3 after the rewind", func() bool { return len(s.data()) >= 1 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run after the rewind: %v", err)
	}
	if d := s.data(); string(d[0].Changes[0].New[0].Data) != "3" {
		t.Errorf("after the rewind the stream starts with %q, want insert 3", d[0].Changes[0].New[0].Data)
	}

	// The same positions in a binlog written anew.
	time.Sleep(1100 * time.Millisecond) // its creation second is after every commit above
	m.Exec(t, "RESET MASTER")
	for i := 10; i < 40; i++ {
		m.Exec(t, fmt.Sprintf("INSERT INTO pharmacy.l VALUES (%d)", i))
	}
	if _, ok := rewind(tip); ok || !strings.Contains(why.String(), "created after the last archived commit") {
		t.Errorf("rewind into a binlog written anew after RESET MASTER: ok %v, log %q", ok, why.String())
	}
}

// TestCaptureSystemTimeZone runs DDL that uses the time zone in a session
// on the server's SYSTEM zone (its host's, America/Chicago here): the
// session message must carry, beside SYSTEM, that zone's offset at the
// statement's time, for a restore host whose own zone differs.
func TestCaptureSystemTimeZone(t *testing.T) {
	m := testenv.StartMariaDBInZone(t, "America/Chicago")
	m.CreateDatabase(t, "pharmacy")
	run := start(t, configFor(t, m))
	if got := m.QueryString(t, "SELECT @@global.time_zone"); got != "SYSTEM" {
		t.Fatalf("global time_zone %q, want SYSTEM", got)
	}
	m.Exec(t, "CREATE TABLE pharmacy.c (id INT PRIMARY KEY, ts TIMESTAMP NULL DEFAULT '2026-07-01 12:00:00')")
	waitFor(t, "the DDL", func() bool { return len(run.sink.data()) >= 1 })
	tx := run.sink.data()[0]
	var s map[string]any
	if err := json.Unmarshal(tx.Changes[0].Content, &s); err != nil {
		t.Fatal(err)
	}
	chicago, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	_, off := tx.Commit.In(chicago).Zone()
	want := fmt.Sprintf("-%02d:%02d", -off/3600, -off%3600/60)
	if s["time_zone"] != "SYSTEM" || s["system_offset"] != want {
		t.Errorf("session of DDL committed %s: time_zone %v, system offset %v; want SYSTEM, %s", tx.Commit, s["time_zone"], s["system_offset"], want)
	}
	if err := run.stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
}

// TestUncapturableChanges checks that a change the binlog does not hold
// as whole rows (logged as a statement, or as a partial row image) loses
// the stream loudly, instead of being dropped or captured with NULLs for
// the columns left out; that a late acknowledgement does not save the
// lost stream's position again, so the next Open starts a new stream;
// and that another database's statements are no loss.
func TestUncapturableChanges(t *testing.T) {
	m, cfg := newServer(t)
	m.CreateDatabase(t, "other")
	m.Exec(t, "CREATE TABLE pharmacy.t (id INT PRIMARY KEY, a INT, b BLOB)")
	m.Exec(t, "CREATE TABLE other.t (id INT PRIMARY KEY, a INT)")
	m.Exec(t, "INSERT INTO pharmacy.t VALUES (1, 1, 'x'), (2, 2, 'y')")
	m.Exec(t, "INSERT INTO other.t VALUES (1, 1)")
	c, err := m.RootConn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	session := func(qs ...string) {
		t.Helper()
		for _, q := range qs {
			if _, err := c.Execute(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	saved := func() []string {
		files, _ := filepath.Glob(filepath.Join(cfg.StateDir, "binlog-position-*.json"))
		return files
	}
	for i, tc := range []struct {
		name  string
		stmts []string
		want  string
	}{
		{"minimal image", []string{"SET SESSION binlog_row_image = 'MINIMAL'", "UPDATE pharmacy.t SET a = a + 10 WHERE id = 1"}, "binlog_row_image was not FULL"},
		{"noblob image", []string{"SET SESSION binlog_row_image = 'NOBLOB'", "UPDATE pharmacy.t SET a = a + 10 WHERE id = 2"}, "binlog_row_image was not FULL"},
		{"statement format", []string{"SET SESSION binlog_format = 'STATEMENT'", "UPDATE t SET a = a + 1 WHERE id = 1"}, "logged as a statement"},
		{"mixed format", []string{"SET SESSION binlog_format = 'MIXED'", "DELETE FROM pharmacy.t WHERE id = 2"}, "logged as a statement"},
	} {
		run := start(t, cfg)
		if !run.r.SlotCreated() {
			t.Fatalf("%s: the stream resumed a saved position %v, want a new stream after the loss", tc.name, run.r.StartPos())
		}
		session("USE pharmacy", "SET SESSION binlog_format = 'STATEMENT'", "UPDATE other.t SET a = a + 1", "SET SESSION binlog_format = 'ROW'")
		m.Exec(t, fmt.Sprintf("INSERT INTO pharmacy.t (id, a) VALUES (%d, 0)", 100+i))
		waitFor(t, tc.name+": the row change", func() bool { return len(run.sink.data()) >= 1 })
		if got := string(run.sink.data()[0].Changes[0].New[0].Data); got != strconv.Itoa(100+i) {
			t.Fatalf("%s: captured id %s first, want %d", tc.name, got, 100+i)
		}
		session(append([]string{"USE pharmacy"}, tc.stmts...)...)
		session("SET SESSION binlog_format = 'ROW'", "SET SESSION binlog_row_image = 'FULL'")
		select {
		case <-run.exited:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: the stream went on", tc.name)
		}
		err := run.stop()
		if !errors.Is(err, capture.ErrStreamLost) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: Run returned %v, want ErrStreamLost saying %q", tc.name, err, tc.want)
		}
		if files := saved(); len(files) != 0 {
			t.Fatalf("%s: saved position %v kept after the loss", tc.name, files)
		}
		run.sink.mu.Lock()
		end := run.sink.ends[len(run.sink.ends)-1]
		run.sink.mu.Unlock()
		run.r.Acknowledge(end)
		if files := saved(); len(files) != 0 {
			t.Fatalf("%s: an acknowledgement after the loss saved %v", tc.name, files)
		}
	}
}

// TestCaptureOverTLS streams over TLS, verified against the server's CA,
// from a server that refuses connections without it, and checks that
// every transaction arrives whole: small ones, and one whose row spans
// many TLS records and network reads.
func TestCaptureOverTLS(t *testing.T) {
	m := testenv.StartMariaDB(t)
	m.CreateDatabase(t, "pharmacy")
	m.Exec(t, "SET GLOBAL require_secure_transport = ON")
	m.Exec(t, "CREATE TABLE pharmacy.t (id INT PRIMARY KEY, b LONGBLOB)")
	cfg := configFor(t, m)
	plain := cfg
	if _, err := mysql.Open(context.Background(), plain); err == nil {
		t.Fatal("the server took a connection without TLS: the test proves nothing")
	}
	cfg.DSN = m.DSN("pharmacy") + "?tls=true&ca_file=" + url.QueryEscape(m.CAFile)
	run := start(t, cfg)
	for i := 1; i <= 20; i++ {
		m.Exec(t, fmt.Sprintf("INSERT INTO pharmacy.t VALUES (%d, REPEAT('x', %d))", i, i))
	}
	m.Exec(t, "INSERT INTO pharmacy.t VALUES (21, REPEAT(X'5A', 3000000))")
	waitFor(t, "21 inserts", func() bool { return len(run.sink.data()) >= 21 })
	for i, tx := range run.sink.data() {
		want := strings.Repeat("x", i+1)
		if i == 20 {
			want = strings.Repeat("Z", 3000000)
		}
		if c := tx.Changes[0]; string(c.New[0].Data) != strconv.Itoa(i+1) || string(c.New[1].Data) != want {
			t.Fatalf("insert %d: id %q, %d bytes of blob", i+1, c.New[0].Data, len(c.New[1].Data))
		}
	}
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestTableIDReusedAfterRestart: table ids start again when the server
// restarts, so a backlog that spans a restart can map the id one of the
// captured tables had before it to another database's table after it.
// That table's rows must not be captured as the captured table's.
func TestTableIDReusedAfterRestart(t *testing.T) {
	m, cfg := newServer(t)
	m.CreateDatabase(t, "other")
	m.Exec(t, "CREATE TABLE pharmacy.p (id INT PRIMARY KEY, v VARCHAR(20))")
	saveAfter(t, m, cfg, "INSERT INTO pharmacy.p VALUES (1, 'ours')")

	// The backlog: a row of pharmacy.p, a restart, then rows of other
	// tables of the same shape until one has the id pharmacy.p had.
	// A share opened anew takes the next table id: push pharmacy.p's past
	// the ids the restarted server hands its own tables first, so that a
	// table created after the restart can get it.
	for range 30 {
		m.Exec(t, "FLUSH TABLES pharmacy.p")
		m.Exec(t, "SELECT id FROM pharmacy.p LIMIT 1")
	}
	m.Exec(t, "INSERT INTO pharmacy.p VALUES (2, 'ours')")
	id := tableID(t, m, "pharmacy", "p")
	m.Stop(t)
	m.Start(t)
	reused := false
	for i := range 300 {
		m.Exec(t, fmt.Sprintf("CREATE TABLE other.o%d (id INT PRIMARY KEY, v VARCHAR(20))", i))
		m.Exec(t, fmt.Sprintf("INSERT INTO other.o%d VALUES (%d, 'theirs')", i, 1000+i))
		got := tableID(t, m, "other", fmt.Sprintf("o%d", i))
		if got == id {
			reused = true
			break
		}
		if got > id {
			break
		}
	}
	if !reused {
		t.Fatalf("no table of database other got table id %d after the restart; the test cannot reproduce the reuse", id)
	}
	m.Exec(t, "INSERT INTO pharmacy.p VALUES (3, 'ours')")

	run := start(t, cfg)
	waitCaughtUp(t, run)
	var got []string
	for _, tx := range run.sink.data() {
		for _, c := range tx.Changes {
			if c.Rel == nil || len(c.New) < 2 {
				got = append(got, fmt.Sprintf("op %d", c.Op))
				continue
			}
			got = append(got, c.Rel.Table+":"+string(c.New[0].Data)+":"+string(c.New[1].Data))
		}
	}
	if want := "p:2:ours,p:3:ours"; strings.Join(got, ",") != want {
		t.Errorf("captured %s, want %s", strings.Join(got, ","), want)
	}
}

// saveAfter runs a reader until it has delivered the transaction of
// statement q, acknowledges it and stops: the next reader resumes there.
func saveAfter(t *testing.T, m *testenv.MariaDB, cfg mysql.Config, q string) {
	t.Helper()
	run := start(t, cfg)
	m.Exec(t, q)
	waitFor(t, q, func() bool { return len(run.sink.data()) >= 1 })
	run.sink.mu.Lock()
	run.r.Acknowledge(run.sink.ends[len(run.sink.ends)-1])
	run.sink.mu.Unlock()
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
}

// waitCaughtUp waits until run has called CaughtUp, failing if the
// reader ends first.
func waitCaughtUp(t *testing.T, run *running) {
	t.Helper()
	waitFor(t, "the backlog", func() bool {
		select {
		case <-run.exited:
			t.Fatalf("the reader ended: %v", run.stop())
		default:
		}
		run.sink.mu.Lock()
		defer run.sink.mu.Unlock()
		return len(run.sink.caughtUp) > 0
	})
}

// binlogEvent is a row of SHOW BINLOG EVENTS.
type binlogEvent struct{ typ, info string }

// currentBinlogEvents lists the events of the server's current binlog file.
func currentBinlogEvents(t *testing.T, m *testenv.MariaDB) []binlogEvent {
	t.Helper()
	file, _ := m.Exec(t, "SHOW MASTER STATUS").GetString(0, 0)
	r := m.Exec(t, "SHOW BINLOG EVENTS IN '"+file+"'")
	out := make([]binlogEvent, r.RowNumber())
	for i := range out {
		out[i].typ, _ = r.GetStringByName(i, "Event_type")
		out[i].info, _ = r.GetStringByName(i, "Info")
	}
	return out
}

// tableID returns the table id of the last table map of db.table in the
// server's current binlog file.
func tableID(t *testing.T, m *testenv.MariaDB, db, table string) int {
	t.Helper()
	id := -1
	for _, ev := range currentBinlogEvents(t, m) {
		var n int
		var name string
		if ev.typ == "Table_map" {
			if _, err := fmt.Sscanf(ev.info, "table_id: %d (%s", &n, &name); err == nil && name == db+"."+table+")" {
				id = n
			}
		}
	}
	if id < 0 {
		t.Fatalf("no table map of %s.%s in the current binlog file", db, table)
	}
	return id
}

// TestCaptureCompressedRows captures MariaDB's compressed rows events
// (log_bin_compress), which go-mysql inflates, of a table the fast
// decoder covers otherwise.
func TestCaptureCompressedRows(t *testing.T) {
	m, cfg := newServer(t)
	m.Exec(t, "CREATE TABLE pharmacy.c (id INT PRIMARY KEY, v TEXT)")
	m.Exec(t, "SET GLOBAL log_bin_compress = ON")
	run := start(t, cfg)
	big := strings.Repeat("rx", 600) // above log_bin_compress_min_len
	m.Exec(t, "INSERT INTO pharmacy.c VALUES (1, '"+big+"')")
	m.Exec(t, "UPDATE pharmacy.c SET v = CONCAT(v, '!') WHERE id = 1")
	m.Exec(t, "DELETE FROM pharmacy.c WHERE id = 1")
	waitFor(t, "three transactions", func() bool { return len(run.sink.data()) >= 3 })
	compressed := map[string]bool{}
	for _, ev := range currentBinlogEvents(t, m) {
		if strings.Contains(ev.typ, "compressed") {
			compressed[ev.typ] = true
		}
	}
	if len(compressed) != 3 {
		t.Fatalf("the binlog holds compressed rows events %v, want writes, updates and deletes", compressed)
	}
	var got []string
	for _, tx := range run.sink.data() {
		c := tx.Changes[0]
		got = append(got, fmt.Sprintf("%d", c.Op))
		for _, row := range [][]segment.Value{c.Old, c.New} {
			if len(row) > 0 {
				got = append(got, string(row[0].Data)+"="+strconv.Itoa(len(row[1].Data)))
			}
		}
	}
	want := fmt.Sprintf("%d 1=1200 %d 1=1200 1=1201 %d 1=1201", segment.OpInsert, segment.OpUpdate, segment.OpDelete)
	if strings.Join(got, " ") != want {
		t.Errorf("captured %s, want %s", strings.Join(got, " "), want)
	}
}

// TestServerCrashUnderLoad kills the server (SIGKILL) while clients
// commit large transactions, with the reader stopped, then kills it again
// idle and leaves its last binlog file ending in a torn event, as a crash
// in the middle of a write does. The reader then drains the backlog across
// both crashes: every row the recovered table holds is captured once, and
// nothing else, and the stream goes on past the torn file's end to the
// next file, with no gap.
func TestServerCrashUnderLoad(t *testing.T) {
	m, cfg := newServer(t)
	m.Exec(t, "CREATE TABLE pharmacy.k (id INT AUTO_INCREMENT PRIMARY KEY, c INT NOT NULL, v MEDIUMTEXT)")
	saveAfter(t, m, cfg, "INSERT INTO pharmacy.k (c, v) VALUES (0, 'before')")

	// Transactions of three 64 kB rows each, so the kill may fall while
	// one is being written to the binlog.
	big := strings.Repeat("y", 64<<10)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			c, err := m.RootConn(context.Background())
			if err != nil {
				return
			}
			defer c.Close()
			for i := 0; ; i++ {
				for j, q := range []string{"BEGIN", "INSERT", "INSERT", "INSERT", "COMMIT"} {
					if q == "INSERT" {
						q = fmt.Sprintf("INSERT INTO pharmacy.k (c, v) VALUES (%d, '%s')", w<<24|i<<2|j, big)
					}
					if _, err := c.Execute(q); err != nil {
						return // the server is gone
					}
				}
			}
		})
	}
	time.Sleep(time.Second)
	m.Kill(t)
	wg.Wait()
	m.Start(t)
	m.Exec(t, "INSERT INTO pharmacy.k (c, v) VALUES (100000000, 'after the first crash')")

	// The second crash, idle, with a torn event at the end of the file:
	// the head of a 4 kB query event, and 30 of its bytes.
	m.Kill(t)
	logs, err := filepath.Glob(filepath.Join(m.Dir(), "*", "mysql-bin.[0-9]*"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("binlog files: %v %v", logs, err)
	}
	slices.Sort(logs)
	torn := logs[len(logs)-1]
	f, err := os.OpenFile(torn, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	head := make([]byte, 19+30)
	binary.LittleEndian.PutUint32(head[0:], uint32(time.Now().Unix()))
	head[4] = 2 // QUERY_EVENT
	binary.LittleEndian.PutUint32(head[5:], uint32(m.ServerID))
	binary.LittleEndian.PutUint32(head[9:], 4096)
	binary.LittleEndian.PutUint32(head[13:], uint32(fi.Size())+4096)
	if _, err := f.Write(head); err != nil {
		t.Fatal(err)
	}
	f.Close()
	m.Start(t)
	m.Exec(t, "INSERT INTO pharmacy.k (c, v) VALUES (100000001, 'after the second crash')")

	r := m.Exec(t, "SELECT c FROM pharmacy.k WHERE id > 1 ORDER BY c")
	var want []string
	for i := range r.RowNumber() {
		v, _ := r.GetString(i, 0)
		want = append(want, v)
	}
	if len(want) < 12 {
		t.Fatalf("the clients committed %d rows; the test needs more", len(want))
	}

	run := start(t, cfg)
	if run.r.SlotCreated() {
		t.Fatal("the reader started a new stream: the crashes lost the saved position")
	}
	waitCaughtUp(t, run)
	var got []string
	for _, tx := range run.sink.data() {
		for _, c := range tx.Changes {
			if c.Op != segment.OpInsert {
				t.Fatalf("captured op %d, want only inserts", c.Op)
			}
			got = append(got, string(c.New[1].Data))
		}
	}
	slices.SortFunc(got, func(a, b string) int { return cmp.Compare(atoi(t, a), atoi(t, b)) })
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("captured %d rows, the recovered table holds %d, or other ones", len(got), len(want))
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
