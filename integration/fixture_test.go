package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rxvault/rxvault/integration/randmy"
	"github.com/rxvault/rxvault/integration/randpg"
	"github.com/rxvault/rxvault/internal/testenv"
)

// The archive format is a promise: testdata/archive-v1 holds, per engine,
// a small file store written by the rxvault of one commit (see its
// README.txt), the test identity it was sealed to, and the content of the
// source database at named points, computed by SQL on the source
// (randpg/randmy fingerprints and row texts), independent of rxvault's
// decoding. TestOldArchiveFixtures checks that today's rxvault still lists,
// verifies and restores them exactly; TestWriteArchiveFixtures (in
// fixture_write_test.go) wrote them and is run only when asked.

// fixtureRoot is where the archive fixtures live, relative to this package.
const fixtureRoot = "testdata/archive-v1"

// Files of one engine's fixture directory.
const (
	fixtureStoreDir = "store" // the file store's content
	fixtureIdentity = "TEST-ONLY-NOT-A-SECRET-identity.key"
	fixtureExpected = "expected.json" // fixtureDoc
	fixtureReadme   = "README.txt"
)

// fixtureDoc is expected.json: the named restore points of one engine's
// fixture and the source's content at each.
type fixtureDoc struct {
	Engine string         `json:"engine"`
	Source string         `json:"source_database"`
	Server string         `json:"source_server"`
	Points []fixturePoint `json:"points"`
}

// fixturePoint is one restore point: the restore flags that reach it (as
// the CLI takes them, without --target and --identity) and the content the
// restored database must have.
type fixturePoint struct {
	Name    string       `json:"name"`
	Restore []string     `json:"restore"`
	Expect  fixtureState `json:"expect"`
}

// fixtureState is a database's content as the engine's SQL oracle prints
// it: the fingerprint (definitions, row digests, sequences or
// AUTO_INCREMENT counters) and every table's rows as text, sorted.
type fixtureState struct {
	Print map[string]string   `json:"fingerprint"`
	Rows  map[string][]string `json:"rows"`
}

// diff lists how got differs from s, one line each, or nothing.
func (s fixtureState) diff(got fixtureState) []string {
	// Print.Diff compares any two fingerprint maps, whatever the engine.
	out := randpg.Print(s.Print).Diff(randpg.Print(got.Print))
	for _, table := range sortedKeys(s.Rows, got.Rows) {
		out = append(out, rowsDiff(table, s.Rows[table], got.Rows[table])...)
	}
	return out
}

// sortedKeys returns the keys of a and b, sorted, each once.
func sortedKeys[V any](a, b map[string]V) []string {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// rowsDiff lists the rows of table missing from got and those not in want
// (multisets).
func rowsDiff(table string, want, got []string) []string {
	in := map[string]int{}
	for _, r := range got {
		in[r]++
	}
	var out []string
	for _, r := range want {
		if in[r] > 0 {
			in[r]--
			continue
		}
		out = append(out, fmt.Sprintf("%s: row missing from the restore: %.400s", table, r))
	}
	for _, r := range got {
		if in[r] > 0 {
			in[r]--
			out = append(out, fmt.Sprintf("%s: restored row not in the source: %.400s", table, r))
		}
	}
	return out
}

// fixtureServer is a test server of one engine, for the fixtures.
type fixtureServer interface {
	// newDatabase creates an empty database and returns its DSN.
	newDatabase(t *testing.T, name string) string
	// read returns the oracle's view of database name (from newDatabase).
	read(t *testing.T, name string) fixtureState
}

// fixtureEngines are the engines with an archive fixture: the directory
// under fixtureRoot and a test server to restore into.
var fixtureEngines = []struct {
	name  string
	start func(t *testing.T) fixtureServer
}{
	{"postgres", func(t *testing.T) fixtureServer { return pgFixtureServer{testenv.StartPostgres(t)} }},
	{"mariadb", func(t *testing.T) fixtureServer { return myFixtureServer{testenv.StartMariaDB(t)} }},
}

type pgFixtureServer struct{ pg *testenv.Postgres }

func (s pgFixtureServer) newDatabase(t *testing.T, name string) string {
	return s.pg.CreateDatabase(t, name)
}

func (s pgFixtureServer) read(t *testing.T, name string) fixtureState {
	return pgFixtureState(t, s.pg.DSN(name))
}

// pgFixtureState reads the database at dsn with randpg's oracle.
func pgFixtureState(t *testing.T, dsn string) fixtureState {
	t.Helper()
	ctx := context.Background()
	conn := connectPG(t, dsn)
	p, err := randpg.Fingerprint(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	s := fixtureState{Print: p, Rows: map[string][]string{}}
	for k := range p {
		rest, ok := strings.CutPrefix(k, "table ")
		table, ok2 := strings.CutSuffix(rest, " rows")
		if !ok || !ok2 {
			continue
		}
		rows, err := randpg.RowTexts(ctx, conn, table, 4000)
		if err != nil {
			t.Fatalf("rows of %s: %v", table, err)
		}
		s.Rows[table] = rows
	}
	return s
}

type myFixtureServer struct{ m *testenv.MariaDB }

func (s myFixtureServer) newDatabase(t *testing.T, name string) string {
	return s.m.CreateDatabase(t, name) + "?tls=false"
}

func (s myFixtureServer) read(t *testing.T, name string) fixtureState {
	s2, _ := myFixtureState(t, s.m, name)
	return s2
}

// myFixtureState reads database db with randmy's oracle, in one snapshot,
// and returns the binlog position of that snapshot (000001:1234).
func myFixtureState(t *testing.T, m *testenv.MariaDB, db string) (fixtureState, string) {
	t.Helper()
	conn := myConn(t, m, db)
	p, pos, err := randmy.Fingerprint(conn)
	if err != nil {
		t.Fatal(err)
	}
	s := fixtureState{Print: p, Rows: map[string][]string{}}
	for k := range p {
		if table, ok := strings.CutSuffix(k, " rows"); ok {
			if s.Rows[table], err = randmy.RowTexts(conn, table); err != nil {
				t.Fatalf("rows of %s: %v", table, err)
			}
		}
	}
	return s, pos
}

// readFixture reads an engine's expected.json.
func readFixture(t *testing.T, dir string) fixtureDoc {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, fixtureExpected))
	if err != nil {
		t.Fatal(err)
	}
	var doc fixtureDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", fixtureExpected, err)
	}
	if len(doc.Points) < 2 {
		t.Fatalf("%s names %d points, want at least 2", fixtureExpected, len(doc.Points))
	}
	return doc
}

// copyFixtureStore copies a fixture's file store into a new temporary
// directory, with the modes the file store gives (objects 0440, retention
// records 0640, directories 0750; a checkout keeps none of them), and
// returns its path.
func copyFixtureStore(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "store")
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if e.IsDir() {
			return os.MkdirAll(to, 0o750)
		}
		if !e.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", p)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		perm := fs.FileMode(0o440)
		if strings.HasPrefix(filepath.ToSlash(rel), ".rxvault/") {
			perm = 0o640
		}
		return os.WriteFile(to, data, perm)
	})
	if err != nil {
		t.Fatalf("copy the fixture store: %v", err)
	}
	return dst
}

// copyIdentity copies the fixture's test identity into a temporary file
// of mode 0600 (rxvault refuses an identity others can read; a checkout
// gives 0644) and returns its path.
func copyIdentity(t *testing.T, src string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "identity.key")
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

// ageRetention rewrites every retention record of the file store at dir
// as if its retain-until date had passed long ago, as it will have when
// the fixture is read years after it was written.
func ageRetention(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(filepath.Join(dir, ".rxvault", "meta"), func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var rec map[string]any
		if err := json.Unmarshal(data, &rec); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if _, ok := rec["retain_until"]; ok {
			rec["retain_until"] = "2001-01-01T00:00:00Z"
		}
		out, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		n++
		return os.WriteFile(p, append(out, '\n'), 0o640)
	})
	if err != nil {
		t.Fatalf("age the retention records: %v", err)
	}
	return n
}

// TestOldArchiveFixtures checks that the archives an older rxvault wrote
// (testdata/archive-v1, one per engine) still list and verify (every
// payload decrypted) with exit 0, and restore to each of their named
// points, into a fresh database on a fresh server, exactly as the source
// then was by the SQL oracle. A copy whose retention dates have all
// passed still lists and verifies: the fixture cannot rot as the dates it
// holds go by.
func TestOldArchiveFixtures(t *testing.T) {
	for _, e := range fixtureEngines {
		t.Run(e.name, func(t *testing.T) {
			dir := filepath.Join(fixtureRoot, e.name)
			doc := readFixture(t, dir)
			srv := e.start(t)
			store := "file://" + copyFixtureStore(t, filepath.Join(dir, fixtureStoreDir))
			// The configuration only names the store; its own key pair
			// and source are not used by list, verify or restore.
			d := newDeployment(t, srv.newDatabase(t, "config_only"), []string{store}, nil)
			d.identity = copyIdentity(t, filepath.Join(dir, fixtureIdentity))

			if code, out, errOut := d.cmd("list", "--store", store); code != 0 {
				t.Errorf("list: exit %d, want 0\n%s%s", code, out, errOut)
			}
			l := listArchiveStore(t, d, store, 0)
			if len(l.Backups) == 0 || len(l.Chains) == 0 || len(l.Gaps) > 0 {
				t.Errorf("list: %d base backups, %d chains, gaps %q; want a backup, a chain and no gap", len(l.Backups), len(l.Chains), l.Gaps)
			}
			if code, out, errOut := d.cmd("verify", "--store", store, "--identity", d.identity); code != 0 || !strings.Contains(out, "OK") {
				t.Errorf("verify --identity: exit %d, want 0 and OK\n%s%s", code, out, errOut)
			}
			for i, p := range doc.Points {
				db := fmt.Sprintf("point_%d", i)
				args := append(append([]string{"restore", "--store", store}, p.Restore...), "--target", srv.newDatabase(t, db), "--identity", d.identity)
				code, out, errOut := d.cmd(args...)
				if code != 0 {
					t.Errorf("point %s (restore %s): exit %d\n%s%s", p.Name, strings.Join(p.Restore, " "), code, out, errOut)
					continue
				}
				t.Logf("point %s (restore %s): %s", p.Name, strings.Join(p.Restore, " "), strings.TrimSpace(out))
				if diff := p.Expect.diff(srv.read(t, db)); len(diff) > 0 {
					t.Errorf("point %s (restore %s) differs from the source then:\n  %s", p.Name, strings.Join(p.Restore, " "), strings.Join(diff, "\n  "))
				}
			}

			aged := copyFixtureStore(t, filepath.Join(dir, fixtureStoreDir))
			if n := ageRetention(t, aged); n == 0 {
				t.Error("the fixture store has no retention records")
			}
			listArchiveStore(t, d, "file://"+aged, 0)
			if code, out, errOut := d.cmd("verify", "--store", "file://"+aged, "--identity", d.identity); code != 0 {
				t.Errorf("verify --identity with every retention date passed: exit %d\n%s%s", code, out, errOut)
			}
		})
	}
}
