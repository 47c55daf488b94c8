package postgres

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/segment"
)

// rowPayload is what the large-transaction tests store in row g: 1 KiB.
func rowPayload(g int) string {
	sum := md5.Sum([]byte(strconv.Itoa(g)))
	return strings.Repeat(hex.EncodeToString(sum[:]), 32)
}

const payloadSQL = `repeat(md5(g::text), 32)`

// bigSink checks large transactions as they stream by, keeping only the
// ids it saw: it never holds the transaction.
type bigSink struct {
	mu     sync.Mutex
	txns   []bigTxn
	notify chan struct{}
}

type bigTxn struct {
	info  segment.TxnInfo
	len   int
	ids   map[int]bool
	ddl   []string    // SQL of DDL changes
	ddlAt []int       // their places (1 is the first change)
	msgs  int         // messages (the DDL session before each DDL)
	cols  map[int]int // rows by number of columns
	bad   string      // first problem found, if any
	user  bool
}

func newBigSink() *bigSink { return &bigSink{notify: make(chan struct{})} }

func (s *bigSink) Txn(ctx context.Context, t *capture.Txn) error {
	bt := bigTxn{info: t.Info, len: t.Len, ids: make(map[int]bool), cols: make(map[int]int)}
	n := 0
	for c, err := range t.Changes {
		if err != nil {
			return err
		}
		n++
		if c.Op == segment.OpMessage {
			bt.msgs++
			continue
		}
		bt.user = true
		if c.Op == segment.OpDDL {
			bt.ddl = append(bt.ddl, c.SQL)
			bt.ddlAt = append(bt.ddlAt, n)
			continue
		}
		if c.Op != segment.OpInsert || len(c.New) != len(c.Rel.Columns) || len(c.New) < 2 {
			bt.bad = fmt.Sprintf("change %d: %s with %d values", n, c.Op, len(c.New))
			continue
		}
		id, err := strconv.Atoi(string(c.New[0].Data))
		if err != nil || bt.ids[id] {
			bt.bad = fmt.Sprintf("change %d: bad or repeated id %q", n, c.New[0].Data)
			continue
		}
		bt.ids[id] = true
		bt.cols[len(c.New)]++
		if string(c.New[1].Data) != rowPayload(id) && bt.bad == "" {
			bt.bad = fmt.Sprintf("row %d: wrong payload", id)
		}
	}
	if n != t.Len && bt.bad == "" {
		bt.bad = fmt.Sprintf("%d changes, Len %d", n, t.Len)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.txns = append(s.txns, bt)
	close(s.notify)
	s.notify = make(chan struct{})
	return nil
}

func (s *bigSink) CaughtUp(context.Context) error { return nil }

func (s *bigSink) Progress(context.Context, segment.Position, time.Time) error { return nil }

// waitUser waits for n user transactions and returns them.
func (s *bigSink) waitUser(t *testing.T, run *running, n int) []bigTxn {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		s.mu.Lock()
		var user []bigTxn
		for _, tx := range s.txns {
			if tx.user {
				user = append(user, tx)
			}
		}
		ch := s.notify
		s.mu.Unlock()
		if len(user) >= n {
			return user
		}
		select {
		case <-ch:
		case <-run.ended:
			t.Fatalf("Run ended: %v", run.err)
		case <-deadline:
			t.Fatalf("%d of %d transactions delivered", len(user), n)
		}
	}
}

// heapPeak samples the live heap until stop is called and returns the
// highest value seen.
func heapPeak() (stop func() uint64) {
	var peak uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return func() uint64 { close(done); <-finished; return peak }
}

// checkIDs compares a transaction's ids with [from, to] ranges.
func checkIDs(t *testing.T, tx bigTxn, ranges ...[2]int) {
	t.Helper()
	if tx.bad != "" {
		t.Fatalf("txn %s: %s", tx.info.ID, tx.bad)
	}
	want := 0
	for _, r := range ranges {
		for id := r[0]; id <= r[1]; id++ {
			if !tx.ids[id] {
				t.Fatalf("txn %s: row %d missing", tx.info.ID, id)
			}
			want++
		}
	}
	if got := len(tx.ids); got != want || tx.len != want+len(tx.ddl)+tx.msgs {
		t.Fatalf("txn %s: %d rows (Len %d, %d DDL, %d messages), want %d", tx.info.ID, got, tx.len, len(tx.ddl), tx.msgs, want)
	}
}

// TestStreamedTransaction checks a 60 MB transaction that the server
// streams while it runs (logical_decoding_work_mem=64kB): rows of a rolled
// back subtransaction are dropped, every other row arrives once, a DDL
// statement in it arrives in its place and the rows after it have the new
// column, the reader's heap stays far below the transaction's size, and a
// streamed transaction that aborts delivers nothing. A transaction after
// it uses the table as the streamed one left it. A streamed CREATE TABLE
// AS delivers the empty table's DDL before its rows.
func TestStreamedTransaction(t *testing.T) {
	_, dsn := newDB(t, "streamed")
	conn := connect(t, dsn)
	execAll(t, conn, `CREATE TABLE big (id integer PRIMARY KEY, payload text)`)
	cfg := testConfig(t, dsn+"&logical_decoding_work_mem=64kB")
	cfg.Heartbeat = time.Hour
	r := openReader(t, cfg)
	sink := newBigSink()
	run := start(t, r, sink)
	defer debug.SetGCPercent(debug.SetGCPercent(50))
	runtime.GC()
	peak := heapPeak()

	ctx := context.Background()
	ins := func(from, to int) string {
		return fmt.Sprintf(`INSERT INTO big SELECT g, %s FROM generate_series(%d, %d) g`, payloadSQL, from, to)
	}
	execAll(t, conn,
		`BEGIN`,
		ins(1, 20000),
		`SAVEPOINT a`,
		ins(20001, 30000), // rolled back
		`ROLLBACK TO SAVEPOINT a`,
		`SAVEPOINT b`,
		ins(30001, 50000),
		`SAVEPOINT c`,
		ins(50001, 52000), // rolled back, inside a released subtransaction
		`ROLLBACK TO SAVEPOINT c`,
		`RELEASE SAVEPOINT b`,
		`ALTER TABLE big ADD COLUMN extra integer`,
		ins(60001, 70000),
		`COMMIT`,
		`BEGIN`,
		ins(100001, 110000), // aborted as a whole
		`ROLLBACK`,
		`CREATE TABLE big_copy AS SELECT * FROM big WHERE id <= 20000`,
		`INSERT INTO big VALUES (1000000, '`+rowPayload(1000000)+`', 7)`,
	)
	got := sink.waitUser(t, run, 3)
	heap := peak()
	if got, want := len(got), 3; got != want {
		t.Fatalf("%d transactions, want %d", got, want)
	}
	checkIDs(t, got[0], [2]int{1, 20000}, [2]int{30001, 50000}, [2]int{60001, 70000})
	checkIDs(t, got[1], [2]int{1, 20000})
	if got, want := fmt.Sprint(got[1].ddl, got[1].ddlAt), "[CREATE TABLE public.big_copy (id integer, payload text, extra integer)] [1]"; got != want {
		t.Errorf("CREATE TABLE AS: DDL %s, want %s", got, want)
	}
	got = append(got[:1], got[2:]...)
	checkIDs(t, got[1], [2]int{1000000, 1000000})
	if got, want := strings.Join(got[0].ddl, ";"), "ALTER TABLE big ADD COLUMN extra integer"; got != want {
		t.Errorf("DDL in the streamed transaction: %q, want %q", got, want)
	}
	if got, want := got[0].cols[3], 10000; got != want {
		t.Errorf("%d rows with the new column, want %d", got, want)
	}
	if got, want := got[1].cols[3], 1; got != want {
		t.Errorf("the transaction after the streamed one has %d rows of 3 columns, want %d", got, want)
	}

	var streamed int64
	if err := conn.QueryRow(ctx, `SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = 'rxvault'`).Scan(&streamed); err != nil {
		t.Fatal(err)
	}
	if streamed < 3 {
		t.Fatalf("the server streamed %d transactions, want 3: the test did not exercise streaming", streamed)
	}
	t.Logf("peak heap %d MiB for a 60 MiB transaction", heap>>20)
	if limit := uint64(24 << 20); heap > limit {
		t.Errorf("peak heap %d MiB, want below %d MiB", heap>>20, limit>>20)
	}
}

// TestLargeTransactionSpill checks a 30 MB transaction the server sends
// whole (its decoding memory is large enough): past SpillThreshold the
// reader spills it, delivers it exactly, and its heap stays far below the
// transaction's size.
func TestLargeTransactionSpill(t *testing.T) {
	_, dsn := newDB(t, "spill")
	conn := connect(t, dsn)
	execAll(t, conn, `CREATE TABLE big (id integer PRIMARY KEY, payload text)`)
	cfg := testConfig(t, dsn+"&logical_decoding_work_mem=1GB")
	cfg.Heartbeat = time.Hour
	cfg.SpillThreshold = 1 << 20
	r := openReader(t, cfg)
	sink := newBigSink()
	run := start(t, r, sink)
	defer debug.SetGCPercent(debug.SetGCPercent(50))
	runtime.GC()
	peak := heapPeak()
	execAll(t, conn,
		`INSERT INTO big SELECT g, `+payloadSQL+` FROM generate_series(1, 30000) g`,
		`INSERT INTO big SELECT g, `+payloadSQL+` FROM generate_series(30001, 30010) g`,
	)
	got := sink.waitUser(t, run, 2)
	heap := peak()
	checkIDs(t, got[0], [2]int{1, 30000})
	checkIDs(t, got[1], [2]int{30001, 30010})

	var streamed int64
	if err := conn.QueryRow(context.Background(), `SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = 'rxvault'`).Scan(&streamed); err != nil {
		t.Fatal(err)
	}
	if got, want := streamed, int64(0); got != want {
		t.Fatalf("the server streamed %d transactions, want %d: the test did not exercise the whole-transaction path", got, want)
	}
	t.Logf("peak heap %d MiB for a 30 MiB transaction", heap>>20)
	if limit := uint64(24 << 20); heap > limit {
		t.Errorf("peak heap %d MiB, want below %d MiB", heap>>20, limit>>20)
	}
}
