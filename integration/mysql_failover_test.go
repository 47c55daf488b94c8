package integration

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rxvault/rxvault/integration/myworkload"
	"github.com/rxvault/rxvault/internal/monitor"
	"github.com/rxvault/rxvault/internal/testenv"
	"github.com/rxvault/rxvault/segment"
)

// TestMariaDBFailover follows a source through a failover. The agent
// (with source.id set) captures primary m1, replicated by m2 and m3. Under
// load, with MinIO down (so the saved position lags what the spool holds),
// the agent is killed, m1 stops, m2 is promoted, and the agent restarts
// against m2: it must resume by GTID in the same chain, and m2's re-sent
// copies of what the spool held must be skipped at restore. Restores to a
// point before the move and to latest equal m1 and m2 then. Finally m3,
// stopped before m2's last transactions, is promoted: it lacks archived
// transactions, so the agent reports a gap and starts a new chain.
func TestMariaDBFailover(t *testing.T) {
	m1 := testenv.StartMariaDB(t)
	m2 := testenv.StartMariaDBReplica(t, m1, 2)
	m3 := testenv.StartMariaDBReplica(t, m1, 3)
	m1.Exec(t, "CREATE DATABASE pharmacy CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci")
	if err := myworkload.Setup(myConn(t, m1, "pharmacy")); err != nil {
		t.Fatal(err)
	}
	mi := testenv.StartMinIO(t, testenv.MinIOOptions{})
	mi.MakeBucket(t, "archive", true)
	s3 := "s3://archive/rx?" + url.Values{"endpoint": {mi.Endpoint}, "tls": {"false"}}.Encode()
	file := "file://" + t.TempDir()
	d := newDeployment(t, m1.DSN("pharmacy")+"?tls=false", []string{file, s3},
		[]string{"AWS_ACCESS_KEY_ID=" + mi.AccessKey, "AWS_SECRET_ACCESS_KEY=" + mi.SecretKey}, "source.id=pharmacy-main")
	d.start()
	d.waitLog("base backup stored", 60*time.Second)
	w1 := myworkload.NewRunner(myConn(t, m1, "pharmacy"), 41)
	if err := w1.RunFor(t.Context(), 3*time.Second); err != nil {
		t.Fatal(err)
	}
	before := myQuietPoint(t, m1, "pharmacy")

	// MinIO down: segments pile up in the spool, the saved position (and
	// its GTID position) stays behind them.
	mi.Stop(t)
	stopLoad := mrLoad(w1, 5*time.Millisecond)
	time.Sleep(4 * time.Second)
	if err := stopLoad(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the last segment sealed
	d.kill()
	resent := resentGTID(t, d)
	m2.CatchUp(t, m1)
	m3.CatchUp(t, m1)
	m1.Stop(t)
	m2.Promote(t)
	m3.Follow(t, m2)

	mi.Start(t)
	d.env = append(d.env, "RXVAULT_SOURCE_DSN="+m2.DSN("pharmacy")+"?tls=false")
	d.start()
	d.waitLog("the source has moved to another server", 30*time.Second)
	d.waitLog("continuing chain", 30*time.Second)
	d.waitStatus(t, "status names m2, epoch 1", 30*time.Second, func(s *monitor.Snapshot) bool {
		return s.Source.Epoch == 1 && strings.HasPrefix(s.Source.Server, "2@")
	})
	w2 := myworkload.NewRunner(myConn(t, m2, "pharmacy"), 42)
	if err := w2.RunFor(t.Context(), 3*time.Second); err != nil {
		t.Fatal(err)
	}
	m3.CatchUp(t, m2)
	m3.Exec(t, "STOP SLAVE") // m3 misses what follows
	if err := w2.RunFor(t.Context(), 2*time.Second); err != nil {
		t.Fatal(err)
	}
	want, wantLedger := mrEnd(t, m2)
	d.stop()
	mrOneChain(t, d, "across the failover")
	if code, out, errOut := d.cmd("verify", "--identity", d.identity); code != 0 {
		t.Errorf("verify --identity of the archive across the failover: exit %d\n%s%s", code, out, errOut)
	}
	for i, st := range []string{file, s3} {
		db := "restored_" + strconv.Itoa(i)
		out := mrRestoreLatestOut(t, d, m2, db, st)
		if n := resentSkipped(out); n == 0 {
			t.Errorf("restore from %s skipped no re-sent transaction: the failover re-sent nothing the spool held, so the test proves nothing about duplicates", strings.SplitN(st, "?", 2)[0])
		}
		mrCompare(t, "restore across the failover from "+strings.SplitN(st, "?", 2)[0], m2, db, want, wantLedger)
	}
	// By GTID, a re-sent transaction is reached at its first copy, m1's.
	m2.CreateDatabase(t, "restored_gtid")
	code, out, errOut := d.cmd("restore", "--gtid", resent, "--target", m2.DSN("restored_gtid")+"?tls=false", "--identity", d.identity)
	if code != 0 || !strings.Contains(out, "last transaction replayed: "+resent+"\n") || strings.Contains(out, " at 1/") {
		t.Errorf("restore --gtid %s (re-sent after the move): exit %d, want the restore to end at m1's copy (epoch 0)\n%s%s", resent, code, out, errOut)
	}
	m2.CreateDatabase(t, "restored_before")
	if code, out, errOut := d.cmd("restore", "--time", before.at.Format(time.RFC3339Nano), "--target", m2.DSN("restored_before")+"?tls=false", "--identity", d.identity); code != 0 {
		t.Fatalf("restore to before the failover: exit %d\n%s%s", code, out, errOut)
	}
	got, err := myworkload.Snapshot(myConn(t, m2, "restored_before"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := before.state.Diff(got); len(diff) > 0 {
		t.Errorf("restore to before the failover differs from m1 then:\n  %s", strings.Join(diff, "\n  "))
	}

	// m3 lacks m2's last transactions, which the archive holds.
	m3.Promote(t)
	d.env = append(d.env, "RXVAULT_SOURCE_DSN="+m3.DSN("pharmacy")+"?tls=false")
	d.start()
	d.waitLog("lacks the archived transaction", 30*time.Second)
	d.waitLog("GAP in the archive", 30*time.Second)
	d.waitLogCount("base backup stored", 2, 60*time.Second)
	want3, wantLedger3 := mrEnd(t, m3)
	d.stop()
	if l, _ := mrListing(t, d, ""); len(l.Chains) != 2 || !l.Chains[1].Gap || !strings.Contains(l.Chains[1].Reason, "lacks the archived transaction") {
		t.Errorf("after a failover to a server missing archived transactions, want a second chain after a gap, saying why: %+v", l.Chains)
	}
	mrRestoreLatest(t, d, m3, "restored_3", "")
	mrCompare(t, "restore of the chain on m3", m3, "restored_3", want3, wantLedger3)
}

// resentGTID returns a GTID the agent will re-send after the move: a few
// past the GTID position saved with the acknowledged point.
func resentGTID(t *testing.T, d *deployment) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(d.dir, "spool", "binlog-position-*.json"))
	if len(files) != 1 {
		t.Fatalf("saved binlog positions: %v", files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var sp struct {
		GTID string `json:"gtid"`
	}
	if err := json.Unmarshal(data, &sp); err != nil {
		t.Fatal(err)
	}
	domain, server, n, ok := segment.ParseMariaDBGTID(sp.GTID)
	if !ok || domain != 0 || server != 1 {
		t.Fatalf("saved GTID position %q: want one GTID of m1 in domain 0", sp.GTID)
	}
	return "0-1-" + strconv.FormatUint(n+3, 10)
}

// resentSkipped reads the count of re-sent transactions a restore
// skipped from its output (0 when it reports none).
func resentSkipped(out string) int {
	m := regexp.MustCompile(`skipped (\d+) transactions the source re-sent`).FindStringSubmatch(out)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
