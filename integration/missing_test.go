package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rxvault/rxvault/integration/workload"
	"github.com/rxvault/rxvault/segment"
)

// quiet is a point in the run where the source stood still: its time and
// the database's state then.
type quiet struct {
	at    time.Time
	state workload.State
}

// point is a quiet point with the source's WAL insert position then: every
// transaction before it committed at or before lsn and at.
type point struct {
	quiet
	lsn string
}

// quietLSN records a quiet point with the insert position read at the
// quiet time: it waits for the source to settle (a heartbeat, which
// carries the sequences' values, must commit after the last workload
// transaction and before the recorded time), records the time, then
// snapshots the state.
func quietLSN(t *testing.T, conn *pgx.Conn, dsn string) point {
	t.Helper()
	time.Sleep(1500 * time.Millisecond) // three heartbeats of 500ms
	lsn := insertLSN(t, conn)
	at := time.Now().UTC()
	s := snapshot(t, dsn)
	time.Sleep(200 * time.Millisecond)
	return point{quiet: quiet{at: at, state: s}, lsn: lsn}
}

// storedSegments lists the segments of chain in the file store at dir, by
// sequence, with their file paths.
func storedSegments(t *testing.T, dir, chain string) ([]segment.NameInfo, []string) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*", "wal", chain, "*.rxseg"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(paths)
	var infos []segment.NameInfo
	for _, p := range paths {
		info, err := segment.ParseObjectName(chain + "/" + filepath.Base(p))
		if err != nil {
			t.Fatal(err)
		}
		infos = append(infos, info)
	}
	return infos, paths
}

// TestMissingObjects builds an archive of two chains (the second after a
// lost slot) with three base backups and quiet points between, then, for
// each kind of missing object (a segment, a base backup part, a manifest, a
// chain document), removes it from a copy of the file store and restores
// the copy to every point: a point that needs the missing object is
// refused with a non-zero exit naming it, before the target is touched
// (--dry-run too); every other point restores exactly.
func TestMissingObjects(t *testing.T) {
	src := newSource(t, 17)
	ctx := context.Background()
	storeDir := t.TempDir()
	d := newDeployment(t, src.dsn, []string{"file://" + storeDir}, nil)
	d.start()
	d.waitLog("base backup stored", 60*time.Second) // backup 1, chain A
	run := func(dur time.Duration) {
		t.Helper()
		if err := src.w.RunFor(ctx, dur); err != nil {
			t.Fatal(err)
		}
	}
	run(2 * time.Second)
	q1 := quietLSN(t, src.conn, src.dsn)
	run(time.Second)
	if code, out, errOut := d.cmd("backup"); code != 0 { // backup 2, chain A
		t.Fatalf("backup: exit %d\n%s%s", code, out, errOut)
	}
	run(2 * time.Second)
	q2 := quietLSN(t, src.conn, src.dsn)
	run(3 * time.Second)
	q3 := quietLSN(t, src.conn, src.dsn)
	time.Sleep(2 * time.Second)
	d.stop()

	// A lost slot: a gap, then chain B with backup 3.
	if _, err := src.conn.Exec(ctx, `SELECT pg_drop_replication_slot('rxvault')`); err != nil {
		t.Fatal(err)
	}
	run(time.Second)
	d.start()
	d.waitLog("GAP", 60*time.Second)
	d.waitLogCount("base backup stored", 2, 60*time.Second)
	run(2 * time.Second)
	q4 := quietLSN(t, src.conn, src.dsn)
	run(3 * time.Second)
	q5 := quietLSN(t, src.conn, src.dsn)
	time.Sleep(3 * time.Second)
	d.stop()
	t.Logf("workload committed %d transactions", src.w.Committed)

	l := listArchiveStore(t, d, "file://"+storeDir, 1) // the gap
	if len(l.Chains) != 2 || len(l.Backups) != 3 {
		t.Fatalf("archive: %d chains, %d backups; want 2 and 3", len(l.Chains), len(l.Backups))
	}
	chainA, chainB := l.Chains[0].Chain, l.Chains[1].Chain
	b1, b2, b3 := l.Backups[0], l.Backups[1], l.Backups[2]
	if !b2.Time.After(q1.at) || !b2.Time.Before(q2.at) || !b3.Time.After(q3.at) || !b3.Time.Before(q4.at) {
		t.Fatalf("backups at %s, %s, %s do not fall between the quiet points %s, %s, %s, %s", b1.Time, b2.Time, b3.Time, q1.at, q2.at, q3.at, q4.at)
	}
	srcDir := l.Source

	// holeAfter returns the sequence of the segment of chain that follows
	// the first one ending past p: a segment p does not need, that a later
	// point does.
	holeAfter := func(chain string, p, next point) uint64 {
		t.Helper()
		infos, _ := storedSegments(t, storeDir, chain)
		for i, s := range infos {
			if s.EndTime.After(p.at) && s.EndPos.Lo > parseLSN(t, p.lsn) {
				if i+2 >= len(infos) || !s.EndTime.Before(next.at) {
					t.Fatalf("chain %s: no segment between %s and %s to remove", chain, p.at, next.at)
				}
				return infos[i+1].Seq
			}
		}
		t.Fatalf("chain %s: no segment ends after %s", chain, p.at)
		return 0
	}
	holeA := holeAfter(chainA, q2, q3)
	holeB := holeAfter(chainB, q4, q5)
	segPath := func(chain string, seq uint64) string {
		infos, paths := storedSegments(t, storeDir, chain)
		for i, s := range infos {
			if s.Seq == seq {
				return paths[i]
			}
		}
		t.Fatalf("chain %s has no segment %d", chain, seq)
		return ""
	}
	part := func(backup string) string {
		ps, _ := filepath.Glob(filepath.Join(storeDir, srcDir, "base", backup, "*.rxseg"))
		if len(ps) == 0 {
			t.Fatalf("backup %s has no parts", backup)
		}
		return ps[0]
	}
	manifest := func(backup string) string { return filepath.Join(storeDir, srcDir, "base", backup, "manifest.json") }
	chainDoc := func(chain string) string { return filepath.Join(storeDir, srcDir, "chains", chain+".json") }

	type target struct {
		name string
		args []string
		want *point // nil: refused
		used string // the base backup an exact restore must use, if set
	}
	byTime := func(name string, p point) target {
		return target{name: "--time " + name, args: []string{"--time", p.at.Format(time.RFC3339Nano)}, want: &p}
	}
	byLSN := func(name string, p point) target {
		return target{name: "--lsn " + name, args: []string{"--lsn", p.lsn}, want: &p}
	}
	latest := target{name: "--latest", args: []string{"--latest"}, want: &q5}
	refused := func(tg target) target { tg.want = nil; return tg }
	using := func(tg target, backup string) target { tg.used = backup; return tg }

	for k, tc := range []struct {
		name    string
		remove  []string
		naming  []string // the refusal names these
		targets []target
	}{
		{
			name:   "segment of the older chain",
			remove: []string{segPath(chainA, holeA)},
			naming: []string{chainA, fmt.Sprintf("segment %d ", holeA)},
			targets: []target{
				byTime("q1", q1), byTime("q2", q2), byLSN("q2", q2),
				refused(byTime("q3", q3)), refused(byLSN("q3", q3)),
				byTime("q4", q4), latest,
			},
		},
		{
			name:   "segment after the newest base backup",
			remove: []string{segPath(chainB, holeB)},
			naming: []string{chainB, fmt.Sprintf("segment %d ", holeB)},
			targets: []target{
				byTime("q3", q3), byTime("q4", q4), byLSN("q4", q4),
				refused(byTime("q5", q5)), refused(byLSN("q5", q5)), refused(latest),
			},
		},
		{
			name:   "base backup parts",
			remove: []string{part(b2.ID), part(b3.ID)},
			naming: []string{b3.ID, "part 1"},
			targets: []target{
				using(byTime("q2", q2), b1.ID), byTime("q3", q3),
				refused(byTime("q4", q4)), refused(byLSN("q5", q5)), refused(latest),
			},
		},
		{
			name:   "manifests",
			remove: []string{manifest(b2.ID), manifest(b3.ID)},
			naming: []string{b3.ID, "manifest"},
			targets: []target{
				using(byTime("q2", q2), b1.ID), using(byLSN("q3", q3), b1.ID),
				refused(byTime("q4", q4)), refused(byLSN("q5", q5)), refused(latest),
			},
		},
		{
			name:   "chain document",
			remove: []string{chainDoc(chainB)},
			naming: []string{chainB, "chain document"},
			targets: []target{
				byTime("q3", q3), refused(byTime("q4", q4)), refused(byLSN("q5", q5)), refused(latest),
			},
		},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			if out, err := exec.Command("cp", "-a", storeDir, dir).CombinedOutput(); err != nil {
				t.Fatalf("copy the store: %v\n%s", err, out)
			}
			for _, p := range tc.remove {
				rel, err := filepath.Rel(storeDir, p)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Remove(filepath.Join(dir, rel)); err != nil {
					t.Fatal(err)
				}
			}
			st := "file://" + dir
			if code, out, _ := d.cmd("list", "--store", st); code != 1 || !containsAll(out, tc.naming) {
				t.Errorf("list: exit %d, want 1 and a line naming %q:\n%s", code, tc.naming, out)
			}
			for i, tg := range tc.targets {
				db := src.pg.CreateDatabase(t, fmt.Sprintf("m%d_%d", k, i))
				args := append([]string{"restore", "--store", st, "--target", db, "--identity", d.identity}, tg.args...)
				if tg.want == nil {
					code, out, errOut := d.cmd(append(args, "--dry-run")...)
					if code != 1 || !containsAll(errOut, tc.naming) || strings.Count(errOut, "\n") != 1 {
						t.Errorf("%s --dry-run: exit %d, stderr %q; want exit 1 and one line naming %q\n%s", tg.name, code, errOut, tc.naming, out)
					}
					code, out, errOut = d.cmd(args...)
					if code != 1 || !containsAll(errOut, tc.naming) || strings.Count(errOut, "\n") != 1 {
						t.Errorf("%s: exit %d, stderr %q; want exit 1 and one line naming %q\n%s", tg.name, code, errOut, tc.naming, out)
					}
					if n := userRelations(t, db); n != 0 {
						t.Errorf("%s: the refused restore left %d relations in the target", tg.name, n)
					}
					continue
				}
				code, out, errOut := d.cmd(args...)
				if code != 0 {
					t.Errorf("%s: exit %d, want an exact restore\n%s%s", tg.name, code, out, errOut)
					continue
				}
				t.Logf("%s: %s", tg.name, strings.TrimSpace(out))
				if tg.used != "" && !strings.Contains(out, "base backup "+tg.used) {
					t.Errorf("%s: the restore does not say it used base backup %s:\n%s", tg.name, tg.used, out)
				}
				compare(t, tc.name+", "+tg.name, tg.want.state, db)
			}
		})
	}
}

// listArchiveStore runs rxvault list --json on store and parses the one
// source; code is the exit status expected.
func listArchiveStore(t *testing.T, d *deployment, store string, code int) listJSON {
	t.Helper()
	c, out, errOut := d.cmd("list", "--json", "--store", store)
	if c != code {
		t.Fatalf("list --json: exit %d, want %d\n%s%s", c, code, out, errOut)
	}
	var all []listJSON
	if err := json.Unmarshal([]byte(out), &all); err != nil || len(all) != 1 {
		t.Fatalf("list --json: %v, %d sources\n%s", err, len(all), out)
	}
	return all[0]
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
