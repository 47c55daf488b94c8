package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/jackc/pgx/v5"

	"github.com/rxvault/rxvault/internal/testenv"
)

// fixtureStep is one step of a fixture's workload: a transaction (a DDL
// statement alone), or, when point is set, a named restore point.
type fixtureStep struct {
	what     string   // for the README
	sql      []string // one transaction
	rollback bool     // roll the transaction back instead of committing it
	point    string   // a point's name instead of a transaction
	byPos    bool     // the point is also reached by position (--lsn, --position)
}

// The PostgreSQL fixture's workload. Every value is a literal, so the
// expected content does not depend on when the fixture is written.
var pgFixtureSetup = []string{
	`CREATE SEQUENCE rx_number_seq START 1000 INCREMENT 7`,
	`CREATE TABLE patients (
		id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		mrn text NOT NULL UNIQUE,
		name text NOT NULL,
		dob date,
		weight_kg numeric(6,2),
		allergies jsonb,
		phones text[],
		photo bytea,
		admitted timestamptz,
		active boolean NOT NULL DEFAULT true,
		ratio double precision,
		ref uuid)`,
	`CREATE TABLE dispense_log (rx_number bigint, patient_mrn text, note text, logged_at timestamp)`,
	`ALTER TABLE dispense_log REPLICA IDENTITY FULL`,
	`INSERT INTO patients (mrn, name, dob, weight_kg, allergies, phones, photo, admitted, ratio, ref) VALUES
		('MRN0001', 'Zoë Ångström', '1948-02-29', 61.50, '{"allergies": ["penicillin"], "severity": 3}', '{"+1-555-0100","ext. \"7\""}', '\x00ff10', '2024-03-01 08:15:00.123456+01', 0.1, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
		('MRN0002', 'José Müller', '1990-12-31', 80.25, NULL, '{}', NULL, '2024-03-02 23:59:59.999999+00', -1.5e-7, NULL),
		('MRN0003', '山田 太郎 💊', NULL, NULL, '[]', NULL, '', NULL, 'NaN', NULL)`,
	`INSERT INTO dispense_log VALUES (1, 'MRN0001', 'duplicate row', '2024-03-01 09:00:00'), (1, 'MRN0001', 'duplicate row', '2024-03-01 09:00:00'),
		(nextval('rx_number_seq'), 'MRN0002', NULL, '2024-03-02 10:30:00.5')`,
}

var pgFixtureSteps = []fixtureStep{
	{what: "a transaction of several statements: two patients, two dispenses numbered by the sequence, an UPDATE of a jsonb and a numeric", sql: []string{
		`INSERT INTO patients (mrn, name, dob, weight_kg, phones, admitted, ratio) VALUES
			('MRN0004', 'Ægir Þórsson', '2001-07-04', 95.00, '{"+354 555 0199"}', '2024-04-01 12:00:00+00', 1e300),
			('MRN0005', 'Chloé O''Neil', '1975-05-05', 55.55, NULL, '2024-04-02 00:00:00-07', 0)`,
		`INSERT INTO dispense_log VALUES (nextval('rx_number_seq'), 'MRN0004', 'naïve café – first fill', '2024-04-01 12:05:00'),
			(nextval('rx_number_seq'), 'MRN0005', 'refill', '2024-04-02 08:00:00')`,
		`UPDATE patients SET weight_kg = weight_kg + 1.25, allergies = jsonb_set(allergies, '{severity}', '4') WHERE mrn = 'MRN0001'`,
	}},
	{what: "a DELETE of a patient", sql: []string{`DELETE FROM patients WHERE mrn = 'MRN0002'`}},
	{what: "an UPDATE of both duplicate rows of the table without a primary key", sql: []string{`UPDATE dispense_log SET note = 'relabelled – ünïcode' WHERE rx_number = 1`}},
	{point: "after-changes"},
	{what: "DDL: ALTER TABLE patients ADD COLUMN pharmacist with a constant default", sql: []string{`ALTER TABLE patients ADD COLUMN pharmacist text DEFAULT 'unassigned'`}},
	{what: "an UPDATE of the new column and an INSERT that sets it", sql: []string{
		`UPDATE patients SET pharmacist = 'Ørjan Dvořák' WHERE mrn IN ('MRN0001', 'MRN0004')`,
		`INSERT INTO patients (mrn, name, pharmacist, photo) VALUES ('MRN0006', 'Ελένη Παπαδοπούλου', NULL, '\xdeadbeef')`,
	}},
	{what: "TRUNCATE of the table without a primary key", sql: []string{`TRUNCATE dispense_log`}},
	{what: "an INSERT after the TRUNCATE, and nextval calls that advance the sequence outside any row", sql: []string{
		`INSERT INTO dispense_log VALUES (nextval('rx_number_seq'), 'MRN0006', 'after truncate', '2024-05-01 00:00:00')`,
		`SELECT nextval('rx_number_seq'), nextval('rx_number_seq')`,
	}},
	{point: "after-ddl-and-truncate", byPos: true},
	{what: "a transaction with an INSERT, an UPDATE of a key column and a DELETE", sql: []string{
		`INSERT INTO patients (mrn, name, dob, active) VALUES ('MRN0007', 'Saoirse Ní Bhriain', '2010-01-01', false)`,
		`UPDATE patients SET mrn = 'MRN0003-B', name = name || ' (merged)' WHERE mrn = 'MRN0003'`,
		`DELETE FROM patients WHERE mrn = 'MRN0005'`,
	}},
	{point: "latest"},
}

// The MariaDB fixture's workload.
var myFixtureSetup = []string{
	"SET NAMES utf8mb4",
	"SET SESSION time_zone = '+00:00'",
	`CREATE TABLE patients (
		id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
		mrn VARCHAR(20) NOT NULL UNIQUE,
		name VARCHAR(100) NOT NULL,
		dob DATE,
		weight_kg DECIMAL(6,2),
		allergies JSON,
		photo VARBINARY(64),
		admitted DATETIME(6),
		updated TIMESTAMP(6) NULL,
		status ENUM('active','inactive','deceased') NOT NULL DEFAULT 'active',
		flags SET('vip','allergy','minor'),
		ratio DOUBLE,
		bits BIT(8),
		big BIGINT UNSIGNED)`,
	`CREATE TABLE dispense_log (rx_number BIGINT, patient_mrn VARCHAR(20), note TEXT, logged_at DATETIME)`,
	`INSERT INTO patients (mrn, name, dob, weight_kg, allergies, photo, admitted, updated, status, flags, ratio, bits, big) VALUES
		('MRN0001', 'Zoë Ångström', '1948-02-29', 61.50, '{"allergies": ["penicillin"], "severity": 3}', X'00FF10', '2024-03-01 08:15:00.123456', '2024-03-01 07:15:00.5', 'active', 'vip,allergy', 0.1, b'10100101', 18446744073709551615),
		('MRN0002', 'José Müller', '1990-12-31', 80.25, NULL, NULL, '2024-03-02 23:59:59.999999', NULL, 'inactive', '', -1.5e-7, b'0', 0),
		('MRN0003', '山田 太郎 💊', NULL, NULL, '[]', X'', NULL, NULL, 'active', NULL, NULL, NULL, NULL)`,
	`INSERT INTO dispense_log VALUES (1, 'MRN0001', 'duplicate row', '2024-03-01 09:00:00'), (1, 'MRN0001', 'duplicate row', '2024-03-01 09:00:00'),
		(1000, 'MRN0002', NULL, '2024-03-02 10:30:00')`,
}

var myFixtureSteps = []fixtureStep{
	{what: "a transaction of several statements: two patients (AUTO_INCREMENT ids), two dispenses, an UPDATE of a JSON and a DECIMAL", sql: []string{
		`INSERT INTO patients (mrn, name, dob, weight_kg, admitted, ratio, flags) VALUES
			('MRN0004', 'Ægir Þórsson', '2001-07-04', 95.00, '2024-04-01 12:00:00', 1e300, 'minor'),
			('MRN0005', 'Chloé O''Neil', '1975-05-05', 55.55, '2024-04-02 07:00:00', 0, NULL)`,
		`INSERT INTO dispense_log VALUES (1007, 'MRN0004', 'naïve café – first fill', '2024-04-01 12:05:00'), (1014, 'MRN0005', 'refill', '2024-04-02 08:00:00')`,
		`UPDATE patients SET weight_kg = weight_kg + 1.25, allergies = JSON_SET(allergies, '$.severity', 4) WHERE mrn = 'MRN0001'`,
	}},
	{what: "a DELETE of a patient", sql: []string{`DELETE FROM patients WHERE mrn = 'MRN0002'`}},
	{what: "an UPDATE of both duplicate rows of the table without a primary key", sql: []string{`UPDATE dispense_log SET note = 'relabelled – ünïcode' WHERE rx_number = 1`}},
	{point: "after-changes"},
	{what: "DDL: ALTER TABLE patients ADD COLUMN pharmacist with a constant default", sql: []string{`ALTER TABLE patients ADD COLUMN pharmacist VARCHAR(50) DEFAULT 'unassigned'`}},
	{what: "an UPDATE of the new column and an INSERT that sets it", sql: []string{
		`UPDATE patients SET pharmacist = 'Ørjan Dvořák' WHERE mrn IN ('MRN0001', 'MRN0004')`,
		`INSERT INTO patients (mrn, name, pharmacist, photo, updated) VALUES ('MRN0006', 'Ελένη Παπαδοπούλου', NULL, X'DEADBEEF', '2024-05-01 00:00:00')`,
	}},
	{what: "TRUNCATE of the table without a primary key", sql: []string{`TRUNCATE dispense_log`}},
	{what: "an INSERT after the TRUNCATE", sql: []string{`INSERT INTO dispense_log VALUES (1021, 'MRN0006', 'after truncate', '2024-05-01 00:00:00')`}},
	{what: "an INSERT of a patient, rolled back: it burns an AUTO_INCREMENT id, which only the agent's heartbeat carries", rollback: true, sql: []string{
		`INSERT INTO patients (mrn, name) VALUES ('MRN9999', 'rolled back')`,
	}},
	{point: "after-ddl-and-truncate", byPos: true},
	{what: "a transaction with an INSERT, an UPDATE of a key column and a DELETE", sql: []string{
		`INSERT INTO patients (mrn, name, dob, status) VALUES ('MRN0007', 'Saoirse Ní Bhriain', '2010-01-01', 'deceased')`,
		`UPDATE patients SET mrn = 'MRN0003-B', name = CONCAT(name, ' (merged)') WHERE mrn = 'MRN0003'`,
		`DELETE FROM patients WHERE mrn = 'MRN0005'`,
	}},
	{point: "latest"},
}

// fixtureSettings configure the agent that writes a fixture (over the
// harness's defaults: compliance lock mode, segments every second,
// heartbeats every 500ms). Retention is the longest rxvault accepts, so
// the retention records say "locked" for as long as the fixture is used;
// TestOldArchiveFixtures also reads a copy with every date passed.
var fixtureSettings = []string{"archive.retention=876000h"}

// TestWriteArchiveFixtures writes testdata/archive-v1/<engine> with
// today's rxvault: a source database with a fixed schema and workload
// (fixture steps above), archived by the real agent into a file store,
// with the source's content at each named point, read by the SQL oracle.
// It runs only when asked, and never replaces an existing fixture: those
// stand for archives users hold. A format change writes a new
// archive-vN beside the old one (change fixtureRoot's version here, keep
// the old directory and its check).
func TestWriteArchiveFixtures(t *testing.T) {
	if os.Getenv("RXVAULT_WRITE_FIXTURES") != "1" {
		t.Skip("writes new archive fixtures into " + fixtureRoot + "; only on purpose: RXVAULT_WRITE_FIXTURES=1 go test -count=1 -run TestWriteArchiveFixtures ./integration/")
	}
	commit := fixtureCommit(t)
	t.Run("postgres", func(t *testing.T) { writePGFixture(t, commit) })
	t.Run("mariadb", func(t *testing.T) { writeMyFixture(t, commit) })
}

// fixtureCommit names the rxvault commit that writes the fixtures, marked
// when the work tree differs from it (outside the fixtures).
func fixtureCommit(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD: %v", err)
	}
	commit := strings.TrimSpace(string(out))
	st, err := exec.Command("git", "status", "--porcelain", "--", "..", ":(exclude)"+fixtureRoot).Output()
	if err != nil {
		t.Fatalf("git status: %v", err)
	}
	if len(strings.TrimSpace(string(st))) > 0 {
		commit += " with uncommitted changes"
	}
	return commit
}

// fixtureOut returns the engine's fixture directory, refusing one that
// exists.
func fixtureOut(t *testing.T, engine string) string {
	t.Helper()
	dir := filepath.Join(fixtureRoot, engine)
	if _, err := os.Lstat(dir); err == nil {
		t.Fatalf("%s exists: an archive fixture is never replaced (it stands for archives users hold); write a new version beside it", dir)
	}
	return dir
}

func writePGFixture(t *testing.T, commit string) {
	out := fixtureOut(t, "postgres")
	pg := testenv.StartPostgres(t)
	dsn := pg.CreateDatabase(t, "pharmacy")
	ctx := context.Background()
	conn := connectPG(t, dsn)
	for _, q := range pgFixtureSetup {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var version string
	if err := conn.QueryRow(ctx, "SELECT 'PostgreSQL ' || current_setting('server_version')").Scan(&version); err != nil {
		t.Fatal(err)
	}
	storeDir := t.TempDir()
	d := newDeployment(t, dsn, []string{"file://" + storeDir}, nil, fixtureSettings...)
	d.start()
	d.waitLog("base backup stored", 60*time.Second)
	doc := fixtureDoc{Engine: "postgres", Source: "pharmacy", Server: version}
	for _, s := range pgFixtureSteps {
		if s.point != "" {
			q := quietLSN(t, conn, dsn)
			p := fixturePoint{Name: s.point, Restore: []string{"--time", q.at.Format(time.RFC3339Nano)}, Expect: pgFixtureState(t, dsn)}
			if s.point == "latest" {
				p.Restore = []string{"--latest"}
			}
			doc.Points = append(doc.Points, p)
			if s.byPos {
				doc.Points = append(doc.Points, fixturePoint{Name: s.point, Restore: []string{"--lsn", q.lsn}, Expect: p.Expect})
			}
			continue
		}
		if err := pgTxn(ctx, conn, s); err != nil {
			t.Fatalf("step %q: %v", s.what, err)
		}
	}
	time.Sleep(2 * time.Second) // the last heartbeats reach the store
	d.stop()
	saveFixture(t, out, d, storeDir, doc, commit, pgFixtureSetup, pgFixtureSteps)
}

func writeMyFixture(t *testing.T, commit string) {
	out := fixtureOut(t, "mariadb")
	m := testenv.StartMariaDB(t)
	// Not the server's default character set: the restore must give the
	// database the source's.
	m.Exec(t, "CREATE DATABASE pharmacy CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci")
	conn := myConn(t, m, "pharmacy")
	for _, q := range myFixtureSetup {
		if _, err := conn.Execute(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	version := "MariaDB " + myQueryString(t, conn, "SELECT VERSION()")
	storeDir := t.TempDir()
	d := newDeployment(t, m.DSN("pharmacy")+"?tls=false", []string{"file://" + storeDir}, nil, fixtureSettings...)
	d.start()
	d.waitLog("base backup stored", 60*time.Second)
	doc := fixtureDoc{Engine: "mariadb", Source: "pharmacy", Server: version}
	for _, s := range myFixtureSteps {
		if s.point != "" {
			// Commits are stamped to the second: the point lies in a
			// second of its own, after a heartbeat that carries the
			// AUTO_INCREMENT counters.
			q := myQuietPoint(t, m, "pharmacy")
			st, pos := myFixtureState(t, m, "pharmacy")
			p := fixturePoint{Name: s.point, Restore: []string{"--time", q.at.Format(time.RFC3339Nano)}, Expect: st}
			if s.point == "latest" {
				p.Restore = []string{"--latest"}
			}
			doc.Points = append(doc.Points, p)
			if s.byPos {
				doc.Points = append(doc.Points, fixturePoint{Name: s.point, Restore: []string{"--position", pos}, Expect: st})
			}
			continue
		}
		if err := myTxn(conn, s); err != nil {
			t.Fatalf("step %q: %v", s.what, err)
		}
	}
	time.Sleep(2 * time.Second) // the last heartbeats reach the store
	d.stop()
	saveFixture(t, out, d, storeDir, doc, commit, myFixtureSetup, myFixtureSteps)
}

// pgTxn runs a step's statements in one transaction.
func pgTxn(ctx context.Context, conn *pgx.Conn, s fixtureStep) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	for _, q := range s.sql {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	if s.rollback {
		return tx.Rollback(ctx)
	}
	return tx.Commit(ctx)
}

// myTxn runs a step's statements in one transaction.
func myTxn(conn *client.Conn, s fixtureStep) error {
	if err := conn.Begin(); err != nil {
		return err
	}
	for _, q := range s.sql {
		if _, err := conn.Execute(q); err != nil {
			_ = conn.Rollback()
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	if s.rollback {
		return conn.Rollback()
	}
	return conn.Commit()
}

// saveFixture checks the archive the agent wrote into storeDir (list and
// verify with the identity) and writes the fixture into out: the store
// (without its lock file; git keeps no empty directory and no mode), the
// identity marked as a test key, expected.json and README.txt. It fails if
// any file names a path of this machine's temporary directories or
// checkout.
func saveFixture(t *testing.T, out string, d *deployment, storeDir string, doc fixtureDoc, commit string, setup []string, steps []fixtureStep) {
	t.Helper()
	store := "file://" + storeDir
	listArchiveStore(t, d, store, 0)
	if code, o, errOut := d.cmd("verify", "--store", store, "--identity", d.identity); code != 0 {
		t.Fatalf("verify: exit %d\n%s%s", code, o, errOut)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(storeDir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(storeDir, p)
		if err != nil {
			return err
		}
		switch to := filepath.Join(out, fixtureStoreDir, rel); {
		case filepath.ToSlash(rel) == ".rxvault/lock", filepath.ToSlash(rel) == ".rxvault/tmp":
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		case e.IsDir():
			return os.MkdirAll(to, 0o755)
		case e.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(to, data, 0o644)
		default:
			return fmt.Errorf("%s is not a regular file", p)
		}
	})
	if err != nil {
		t.Fatalf("copy the store: %v", err)
	}
	id, err := os.ReadFile(d.identity)
	if err != nil {
		t.Fatal(err)
	}
	id = append([]byte("# TEST KEY of an rxvault archive fixture: published in the repository, it protects\n# nothing. Never seal real data to it.\n"), id...)
	if err := os.WriteFile(filepath.Join(out, fixtureIdentity), id, 0o600); err != nil {
		t.Fatal(err)
	}
	js, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, fixtureExpected), append(js, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	readme := fixtureReadmeText(doc, commit, setup, steps)
	if err := os.WriteFile(filepath.Join(out, fixtureReadme), []byte(readme), 0o644); err != nil {
		t.Fatal(err)
	}

	// Nothing of this machine's paths, and small.
	cwd, _ := os.Getwd()
	var total int64
	err = filepath.WalkDir(out, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		total += int64(len(data))
		for _, bad := range []string{storeDir, d.dir, os.TempDir() + "/", cwd, filepath.Dir(filepath.Dir(cwd))} {
			if strings.Contains(string(data), bad) {
				return fmt.Errorf("%s names the local path %s", p, bad)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d bytes in files", out, total)
}

// fixtureReadmeText says what wrote a fixture and what its workload did.
func fixtureReadmeText(doc fixtureDoc, commit string, setup []string, steps []fixtureStep) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("rxvault archive fixture, format v1: %s", doc.Server)
	p("")
	p("Written by TestWriteArchiveFixtures (integration/fixture_write_test.go) at rxvault commit")
	p("%s on %s, from database %q on a private %s", commit, time.Now().UTC().Format("2006-01-02"), doc.Source, doc.Server)
	p("started by internal/testenv. TestOldArchiveFixtures (integration/fixture_test.go) checks that")
	p("rxvault still lists it, verifies it (every payload decrypted) and restores it to each point of")
	p("expected.json exactly. Never rewrite it: it stands for archives users hold. A format change")
	p("writes a new archive-vN beside it.")
	p("")
	p("%-38s the file store as the agent left it, without its lock file and empty tmp/", fixtureStoreDir+"/")
	p("%-38s directory (recreated on open). Git keeps no file modes: the test copies it", "")
	p("%-38s with the modes the store gives (objects 0440, records 0640).", "")
	p("%-38s the identity the archive is sealed to: a TEST key, published here,", fixtureIdentity)
	p("%-38s protecting nothing. rxvault wants it mode 0600: the test copies it so.", "")
	p("%-38s the named points: the restore flags that reach each, and the source's", fixtureExpected)
	p("%-38s content then, read by SQL on the source (integration/randpg or randmy", "")
	p("%-38s fingerprint, and every row as text), not by rxvault's decoding.", "")
	p("")
	p("Agent settings: the integration harness's (compliance lock mode, segment.interval 1s,")
	p("source.heartbeat 500ms) and %s: every retention record says locked until a", strings.Join(fixtureSettings, ", "))
	p("century after writing, so no date in the fixture changes its state while it is used; the test")
	p("also checks a copy with every retention date passed. Times in expected.json are commit times")
	p("in the archive, not relative to now.")
	p("")
	p("Before the agent started (in the base backup):")
	for _, q := range setup {
		p("  %s;", strings.Join(strings.Fields(q), " "))
	}
	p("")
	p("After the base backup, each step its own transaction:")
	n, k := 0, 0
	for _, s := range steps {
		if s.point != "" {
			for ; k < len(doc.Points) && doc.Points[k].Name == s.point; k++ {
				p("  point %s: restore %s", s.point, strings.Join(doc.Points[k].Restore, " "))
			}
			continue
		}
		n++
		p("  %d. %s:", n, s.what)
		for _, q := range s.sql {
			p("       %s;", strings.Join(strings.Fields(q), " "))
		}
		if s.rollback {
			p("       ROLLBACK;")
		}
	}
	p("The agent then ran two more seconds (heartbeats) and stopped with SIGTERM.")
	return b.String()
}
