package integration

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rxvault/rxvault/integration/myworkload"
	"github.com/rxvault/rxvault/internal/testenv"
	"github.com/rxvault/rxvault/segment"
)

// TestMariaDBRestartAcrossRotation restarts the agent while its spool holds
// segments that cross a binlog rotation: the store (MinIO, the only one)
// is down while the workload writes, FLUSH BINARY LOGS rotates, the
// workload writes on, and the agent is killed with the saved position
// still in the first file. Another database's bulk writes after the
// archived transactions in that file make the restarted stream take a
// while to reach the next file, so shipping the spool acknowledges a
// position in the next file first, as a larger backlog would. The restart
// must continue the chain: no GAP logged, one chain, and the latest
// restore equal to the source.
func TestMariaDBRestartAcrossRotation(t *testing.T) {
	m, conn, dsn := newMariaDBSource(t)
	w := myworkload.NewRunner(conn, 37)
	mi := testenv.StartMinIO(t, testenv.MinIOOptions{})
	mi.MakeBucket(t, "archive", true)
	q := url.Values{"endpoint": {mi.Endpoint}, "tls": {"false"}}
	d := newDeployment(t, dsn, []string{"s3://archive/rx?" + q.Encode()}, []string{"AWS_ACCESS_KEY_ID=" + mi.AccessKey, "AWS_SECRET_ACCESS_KEY=" + mi.SecretKey})
	d.start()
	d.waitLog("base backup stored", 60*time.Second)
	if err := w.RunFor(t.Context(), time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // archived and acknowledged
	saved, ok := mrSavedPos(t, d)
	if !ok {
		t.Fatal("no saved binlog position while the agent runs")
	}

	mi.Stop(t)
	if err := w.RunFor(t.Context(), time.Second); err != nil { // spooled, in the saved position's file
		t.Fatal(err)
	}
	m.Exec(t, "CREATE DATABASE bulk")
	m.Exec(t, "CREATE TABLE bulk.b (id INT AUTO_INCREMENT PRIMARY KEY, pad LONGBLOB)")
	for range 64 {
		m.Exec(t, "INSERT INTO bulk.b (pad) VALUES (REPEAT('x', 1048576))")
	}
	time.Sleep(1100 * time.Millisecond) // the next file's stamp is a later second than every earlier file's
	m.Exec(t, "FLUSH BINARY LOGS")
	if err := w.RunFor(t.Context(), time.Second); err != nil { // spooled, in the next file
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // sealed into the spool
	d.kill()
	held, _ := mrSavedPos(t, d)
	spooled, _ := filepath.Glob(filepath.Join(d.dir, "spool", "*", "ready", "*"))
	if held.Hi != saved.Hi || len(spooled) == 0 {
		t.Fatalf("before the restart: saved position %s (was %s), %d spooled segments; want it unmoved and segments in the spool",
			held.Format(segment.EngineMariaDB), saved.Format(segment.EngineMariaDB), len(spooled))
	}

	mi.Start(t)
	d.start()
	d.waitLog("continuing chain", 30*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if p, _ := mrSavedPos(t, d); p.Hi > held.Hi {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the saved position never moved into the next binlog file")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := w.RunFor(t.Context(), time.Second); err != nil {
		t.Fatal(err)
	}
	want, wantLedger := mrEnd(t, m)
	d.stop()
	for line := range strings.Lines(d.agentLog()) {
		if strings.Contains(line, "GAP") {
			t.Log(strings.TrimSpace(line))
		}
	}
	mrOneChain(t, d, "after a restart across a rotation")
	mrRestoreLatest(t, d, m, "restored", "")
	mrCompare(t, "restore after a restart across a rotation", m, "restored", want, wantLedger)
}
