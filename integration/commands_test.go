package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rxvault/rxvault/archive"
	"github.com/rxvault/rxvault/pitr"
	"github.com/rxvault/rxvault/segment"
)

// listJSON mirrors the fields of rxvault list --json this file checks.
type listJSON struct {
	Source string `json:"source"`
	Engine string `json:"engine"`
	Chains []struct {
		Chain    string `json:"chain"`
		Segments int    `json:"segments"`
		End      string `json:"archived_up_to"`
		Broken   string `json:"broken"`
		Gap      bool   `json:"gap"` // the chain began after a gap
	} `json:"chains"`
	Backups []struct {
		ID       string    `json:"id"`
		Pos      string    `json:"pos"`
		Time     time.Time `json:"time"`
		Parts    int       `json:"parts"`
		Stored   int64     `json:"stored_bytes"`
		Complete bool      `json:"complete"`
	} `json:"backups"`
	Windows []struct {
		Chain string    `json:"chain"`
		From  time.Time `json:"from"`
		To    time.Time `json:"to"`
	} `json:"restorable"`
	Gaps  []string `json:"gaps"`
	Notes []string `json:"notes"`
}

// planJSON mirrors rxvault restore --dry-run --json.
type planJSON struct {
	Source       string    `json:"source"`
	Point        string    `json:"point"`
	Chain        string    `json:"chain"`
	Backup       string    `json:"backup"`
	BackupPos    string    `json:"backup_pos"`
	BackupTime   time.Time `json:"backup_time"`
	Segments     []string  `json:"segments"`
	SegmentBytes int64     `json:"segment_bytes"`
	WindowStart  time.Time `json:"window_start"`
	WindowEnd    time.Time `json:"window_end"`
}

var lsnRE = regexp.MustCompile(`^[0-9A-F]+/[0-9A-F]+$`)

// parseLSN reads a PostgreSQL LSN (16/B374D848) as a number.
func parseLSN(t *testing.T, s string) uint64 {
	t.Helper()
	hi, lo, ok := strings.Cut(s, "/")
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if !ok || err1 != nil || err2 != nil || !lsnRE.MatchString(s) {
		t.Fatalf("%q is not a PostgreSQL LSN", s)
	}
	return h<<32 | l
}

// insertLSN reads the source's current WAL insert position.
func insertLSN(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	var lsn string
	if err := conn.QueryRow(context.Background(), `SELECT pg_current_wal_insert_lsn()::text`).Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	return lsn
}

// listArchive runs rxvault list --json and parses the one source.
func listArchive(t *testing.T, d *deployment) listJSON {
	t.Helper()
	code, out, errOut := d.cmd("list", "--json")
	if code != 0 {
		t.Fatalf("list --json: exit %d\n%s%s", code, out, errOut)
	}
	var all []listJSON
	if err := json.Unmarshal([]byte(out), &all); err != nil {
		t.Fatalf("list --json is not JSON: %v\n%s", err, out)
	}
	if len(all) != 1 {
		t.Fatalf("list --json shows %d sources, want 1:\n%s", len(all), out)
	}
	return all[0]
}

// userRelations counts the relations outside the system schemas of dsn.
func userRelations(t *testing.T, dsn string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCommands drives the operator commands through the binary against an
// agent with a one-minute backup schedule (the minimum backup.interval):
// backup beside the agent, list, the schedule, restore --dry-run, restore
// --lsn to an exact commit, and verify.
func TestCommands(t *testing.T) {
	src := newSource(t, 11)
	ctx := context.Background()
	if _, err := src.conn.Exec(ctx, `CREATE TABLE marks (label text PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	d := newDeployment(t, src.dsn, []string{"file://" + t.TempDir()}, nil, "backup.interval=1m")
	d.start()
	d.waitLog("base backup stored", 60*time.Second)
	if err := src.w.RunFor(ctx, time.Second); err != nil {
		t.Fatal(err)
	}

	// 1. A second base backup beside the running agent.
	code, out, errOut := d.cmd("backup", "--json")
	if code != 0 {
		t.Fatalf("backup --json: exit %d\n%s%s", code, out, errOut)
	}
	var m archive.Manifest
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("backup --json is not a manifest: %v\n%s", err, out)
	}
	if m.ID == "" || !lsnRE.MatchString(m.Pos.Native) || m.Parts < 1 || m.Time.IsZero() || m.Bytes <= 0 || m.Engine != segment.EnginePostgres {
		t.Fatalf("backup --json manifest incomplete: %+v", m)
	}
	l := listArchive(t, d)
	if got, want := len(l.Backups), 2; got != want {
		t.Fatalf("list shows %d base backups after rxvault backup, want %d: %+v", got, want, l.Backups)
	}
	first, second := l.Backups[0], l.Backups[1]
	if first.Time.After(second.Time) {
		first, second = second, first
	}
	for _, b := range l.Backups {
		if !b.Complete || !lsnRE.MatchString(b.Pos) || b.Parts < 1 || b.Stored <= 0 || b.Time.IsZero() {
			t.Errorf("list: base backup %+v is not complete with a position", b)
		}
	}
	if second.ID != m.ID || second.Pos != m.Pos.Native || !second.Time.Equal(m.Time) {
		t.Errorf("list's newest backup %+v is not the one rxvault backup printed (%s at %s, %s)", second, m.ID, m.Pos.Native, m.Time)
	}
	if parseLSN(t, second.Pos) <= parseLSN(t, first.Pos) {
		t.Errorf("the second backup's position %s is not after the first's %s", second.Pos, first.Pos)
	}
	if len(l.Windows) != 1 || len(l.Chains) != 1 || len(l.Gaps) != 0 {
		t.Fatalf("list: %d windows, %d chains, gaps %v; want one window of one chain, no gap", len(l.Windows), len(l.Chains), l.Gaps)
	}
	if w := l.Windows[0]; w.Chain != l.Chains[0].Chain || !w.From.Equal(first.Time) || w.To.Before(w.From) {
		t.Errorf("restorable window %+v: want chain %s from the first backup's time %s", w, l.Chains[0].Chain, first.Time)
	}

	// A known transaction between two more: its commit position is in
	// (lo, pos], and the one after commits past pos.
	if err := src.w.RunFor(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	lo := insertLSN(t, src.conn)
	tBefore := time.Now()
	if _, err := src.conn.Exec(ctx, `INSERT INTO marks VALUES ('before')`); err != nil {
		t.Fatal(err)
	}
	pos := insertLSN(t, src.conn)
	tAfter := time.Now()
	if _, err := src.conn.Exec(ctx, `INSERT INTO marks VALUES ('after')`); err != nil {
		t.Fatal(err)
	}
	afterEnd := parseLSN(t, insertLSN(t, src.conn))
	deadline := time.Now().Add(30 * time.Second)
	for {
		l = listArchive(t, d)
		if end := l.Chains[0].End; end != "" && parseLSN(t, end) >= afterEnd {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the archive never reached %X/%X: %+v", afterEnd>>32, uint32(afterEnd), l.Chains)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// 3. The plan, as JSON and as text; the target is not touched.
	target := src.pg.CreateDatabase(t, "restored")
	code, out, errOut = d.cmd("restore", "--lsn", pos, "--dry-run", "--json", "--target", target, "--identity", d.identity)
	if code != 0 {
		t.Fatalf("restore --dry-run --json: exit %d\n%s%s", code, out, errOut)
	}
	var p planJSON
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("restore --dry-run --json is not JSON: %v\n%s", err, out)
	}
	if p.Backup != m.ID || p.BackupPos != m.Pos.Native || !p.BackupTime.Equal(m.Time) || p.Chain != l.Chains[0].Chain {
		t.Errorf("plan %+v: want the newest backup before the point, %s at %s, in chain %s", p, m.ID, m.Pos.Native, l.Chains[0].Chain)
	}
	if len(p.Segments) == 0 || p.SegmentBytes <= 0 {
		t.Fatalf("plan has %d segments (%d bytes), want some", len(p.Segments), p.SegmentBytes)
	}
	point := parseLSN(t, pos)
	var prevSeq uint64
	for i, name := range p.Segments {
		info, err := segment.ParseObjectName(path.Base(path.Dir(name)) + "/" + path.Base(name))
		if err != nil {
			t.Fatalf("plan segment %d: %v", i, err)
		}
		end := info.EndPos.Lo
		switch {
		case info.Chain.String() != p.Chain:
			t.Errorf("plan segment %s is not of chain %s", name, p.Chain)
		case i > 0 && info.Seq != prevSeq+1:
			t.Errorf("plan segment %s: seq %d after %d, want consecutive", name, info.Seq, prevSeq)
		case i == 0 && end <= parseLSN(t, p.BackupPos):
			t.Errorf("plan's first segment %s ends at or before the backup position %s", name, p.BackupPos)
		case i < len(p.Segments)-1 && end > point:
			t.Errorf("plan segment %s ends past the point %s but is not the last", name, pos)
		case i == len(p.Segments)-1 && end <= point:
			t.Errorf("plan's last segment %s ends at or before the point %s: the plan stops short", name, pos)
		}
		prevSeq = info.Seq
	}
	if p.WindowStart.IsZero() || p.WindowEnd.Before(tAfter.Add(-time.Second)) {
		t.Errorf("plan window %s .. %s does not reach the point's time %s", p.WindowStart, p.WindowEnd, tAfter)
	}
	code, out, errOut = d.cmd("restore", "--lsn", pos, "--dry-run", "--target", target, "--identity", d.identity)
	if code != 0 {
		t.Fatalf("restore --dry-run: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		fmt.Sprintf("  base backup %s at %s ", p.Backup, p.BackupPos),
		fmt.Sprintf("  then %d segments of chain %s (%d bytes):\n", len(p.Segments), p.Chain, p.SegmentBytes),
		"\n    " + strings.Join(p.Segments, "\n    ") + "\n",
		"  restorable window of this chain: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("restore --dry-run text lacks %q:\n%s", want, out)
		}
	}
	if n := userRelations(t, target); n != 0 {
		t.Fatalf("restore --dry-run touched the target: %d relations", n)
	}

	// 4. Restore exactly to the known commit.
	code, out, errOut = d.cmd("restore", "--lsn", pos, "--target", target, "--identity", d.identity)
	if code != 0 {
		t.Fatalf("restore --lsn %s: exit %d\n%s%s", pos, code, out, errOut)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	last := lines[len(lines)-1]
	t.Logf("restore --lsn %s: %s", pos, last)
	re := regexp.MustCompile(`^restored .+ to .+: last commit (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z) at ([0-9A-F]+/[0-9A-F]+) \((\d+) transactions, (\d+) changes replayed after base backup (\S+) at ([0-9A-F]+/[0-9A-F]+)\)$`)
	f := re.FindStringSubmatch(last)
	if f == nil {
		t.Fatalf("restore's last line %q does not name the last commit time and position", last)
	}
	at, err := time.Parse(time.RFC3339Nano, f[1])
	if err != nil {
		t.Fatal(err)
	}
	if at.Before(tBefore.Add(-time.Second)) || at.After(tAfter.Add(time.Second)) {
		t.Errorf("last commit time %s is not the known transaction's (between %s and %s)", at, tBefore.UTC(), tAfter.UTC())
	}
	if reached := parseLSN(t, f[2]); reached <= parseLSN(t, lo) || reached > point {
		t.Errorf("last commit position %s is outside (%s, %s], the known commit's range", f[2], lo, pos)
	}
	if f[5] != m.ID || f[6] != m.Pos.Native || f[3] == "0" {
		t.Errorf("restore replayed %s transactions after backup %s at %s; want some after %s at %s", f[3], f[5], f[6], m.ID, m.Pos.Native)
	}
	rconn, err := pgx.Connect(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	rows, err := rconn.Query(ctx, `SELECT label FROM marks ORDER BY label`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		labels = append(labels, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rconn.Close(ctx)
	if got, want := strings.Join(labels, ","), "before"; got != want {
		t.Errorf("restored to %s, marks holds %q, want %q", pos, got, want)
	}

	// 2. The schedule: the agent takes its next base backup one
	// backup.interval after its first, with no rxvault backup.
	d.waitScheduled(2, 100*time.Second)
	d.stop()
	l = listArchive(t, d)
	if got, want := len(l.Backups), 3; got != want {
		t.Fatalf("list shows %d base backups after the scheduled one, want %d: %+v", got, want, l.Backups)
	}
	var third = l.Backups[0]
	for _, b := range l.Backups {
		if b.Time.After(third.Time) {
			third = b
		}
	}
	if third.ID == first.ID || third.ID == second.ID || !third.Complete || parseLSN(t, third.Pos) <= parseLSN(t, second.Pos) {
		t.Errorf("scheduled backup %+v: want a new complete backup after %s", third, second.Pos)
	}
	if gap := third.Time.Sub(first.Time); gap < 55*time.Second || gap > 90*time.Second {
		t.Errorf("scheduled backup came %s after the first, want about backup.interval (1m)", gap)
	}

	// 5. verify, with payloads decrypted, finds nothing wrong.
	code, out, errOut = d.cmd("verify", "--json", "--identity", d.identity)
	if code != 0 {
		t.Fatalf("verify --json of a clean archive: exit %d\n%s%s", code, out, errOut)
	}
	var reports []pitr.Report
	if err := json.Unmarshal([]byte(out), &reports); err != nil {
		t.Fatalf("verify --json is not JSON: %v\n%s", err, out)
	}
	if len(reports) != 1 || !reports[0].Decrypted || reports[0].Problems != 0 || len(reports[0].Sources) != 1 {
		t.Fatalf("verify --json: want one decrypted store report with no problems and one source:\n%s", out)
	}
	sr := reports[0].Sources[0]
	if len(sr.Problems) != 0 || len(sr.Notes) != 0 || len(sr.Chains) != 1 || len(sr.Backups) != 3 {
		t.Errorf("verify --json source %s: problems %v, notes %v, %d chains, %d backups; want none, none, 1, 3", sr.Source, sr.Problems, sr.Notes, len(sr.Chains), len(sr.Backups))
	}
	for _, c := range sr.Chains {
		if c.Segments == 0 || c.Verified != c.Segments || c.Txns == 0 || c.Gap {
			t.Errorf("verify --json chain %+v: want every segment verified, transactions decoded, no gap", c)
		}
	}
	for _, b := range sr.Backups {
		if !b.Complete || !b.Verified {
			t.Errorf("verify --json backup %+v: want complete and verified", b)
		}
	}
}

// waitScheduled waits until the agent's log shows n base backups stored.
func (d *deployment) waitScheduled(n int, timeout time.Duration) {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for strings.Count(d.agentLog(), "base backup stored") < n {
		if time.Now().After(deadline) {
			d.t.Fatalf("the agent logged %d base backups within %s, want %d", strings.Count(d.agentLog(), "base backup stored"), timeout, n)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
