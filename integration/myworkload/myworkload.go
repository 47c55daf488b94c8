// Package myworkload is a pharmacy dispensing workload for MySQL and
// MariaDB, for the demo and the end-to-end tests: patients,
// prescriptions, fills and claims, with every type a restore must keep
// exact (DECIMAL(65,30), DATETIME(6), TIMESTAMP(6), BIT, ENUM, SET, JSON,
// BLOB and LONGBLOB, utf8mb4 text with 4-byte characters, unsigned
// BIGINT, NULLs, a generated column), AUTO_INCREMENT in use (with ids
// burnt by rolled-back inserts), a foreign key that cascades, a trigger,
// and a ledger whose sums prove that no transaction was lost or applied
// twice.
package myworkload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
)

// Schema creates the workload's tables, one statement per entry.
var Schema = []string{
	`CREATE TABLE patients (
		id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
		mrn        VARCHAR(20) NOT NULL UNIQUE,
		name       VARCHAR(200) CHARACTER SET utf8mb4 NOT NULL,
		dob        DATE,
		allergies  JSON,
		flags      BIT(10),
		sex        ENUM('f','m','x','u'),
		programs   SET('medicare','medicaid','340b','copay_card'),
		photo      LONGBLOB,
		weight_kg  DECIMAL(6,2),
		external   BIGINT UNSIGNED,
		uid        UUID,
		ip         INET6,
		code       BINARY(8),
		updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
	) ENGINE=InnoDB`,
	`CREATE TABLE prescriptions (
		id         INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
		patient_id BIGINT UNSIGNED NOT NULL,
		ndc        CHAR(11) NOT NULL,
		sig        TEXT CHARACTER SET utf8mb4 NOT NULL,
		quantity   DECIMAL(10,3) NOT NULL,
		refills    TINYINT UNSIGNED NOT NULL,
		written_at DATETIME(6) NOT NULL,
		FOREIGN KEY (patient_id) REFERENCES patients(id) ON DELETE CASCADE
	) ENGINE=InnoDB`,
	`CREATE TABLE fills (
		id              BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
		prescription_id INT NOT NULL,
		filled_at       DATETIME(6) NOT NULL,
		quantity        DECIMAL(10,3) NOT NULL,
		unit_price      DECIMAL(65,30) NOT NULL,
		price           DECIMAL(12,2) AS (ROUND(quantity * unit_price, 2)) VIRTUAL,
		label           BLOB,
		ratio           DOUBLE,
		FOREIGN KEY (prescription_id) REFERENCES prescriptions(id) ON DELETE CASCADE
	) ENGINE=InnoDB`,
	`CREATE TABLE fill_audit (
		id      INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
		fill_id BIGINT NOT NULL,
		at      DATETIME(6) NOT NULL
	) ENGINE=InnoDB`,
	`CREATE TRIGGER fills_audit AFTER INSERT ON fills FOR EACH ROW
		INSERT INTO fill_audit (fill_id, at) VALUES (NEW.id, NEW.filled_at)`,
	// A scheduled event (the test servers' event scheduler is off, so it
	// never runs on the source); a restore must hold it back while it
	// replays, then create it as it was.
	`CREATE EVENT purge_audit ON SCHEDULE EVERY 1 DAY STARTS '2026-01-01 03:00:00' COMMENT 'nightly'
		DO DELETE FROM fill_audit WHERE at < NOW() - INTERVAL 10 YEAR`,
	`CREATE TABLE ledger (
		id      BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
		account VARCHAR(20) NOT NULL,
		amount  DECIMAL(14,2) NOT NULL
	) ENGINE=InnoDB`,
}

// Setup creates the workload's tables in conn's database.
func Setup(conn *client.Conn) error {
	for _, q := range Schema {
		if _, err := conn.Execute(q); err != nil {
			return fmt.Errorf("setup: %w", err)
		}
	}
	return nil
}

// Runner runs the workload on one connection.
type Runner struct {
	conn *client.Conn
	rnd  *rand.Rand
	// Ledger is the sum of every committed ledger amount, to compare
	// with a restored database.
	Ledger  float64
	Commits int
}

// NewRunner returns a runner with a fixed seed.
func NewRunner(conn *client.Conn, seed uint64) *Runner {
	return &Runner{conn: conn, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// RunFor runs steps until d has passed or ctx ends.
func (w *Runner) RunFor(ctx context.Context, d time.Duration) error {
	end := time.Now().Add(d)
	for time.Now().Before(end) && ctx.Err() == nil {
		if err := w.Step(); err != nil {
			return err
		}
	}
	return nil
}

// Step runs one transaction: a random mix of inserts, updates, deletes,
// with a ledger entry; now and then a rolled-back insert burns ids.
func (w *Runner) Step() error {
	if _, err := w.conn.Execute("BEGIN"); err != nil {
		return err
	}
	var err error
	switch k := w.rnd.IntN(10); {
	case k < 3:
		err = w.newPatient()
	case k < 5:
		err = w.newPrescription()
	case k < 8:
		err = w.fill()
	case k < 9:
		err = w.touchPatient()
	default:
		err = w.deletePatient()
	}
	if err != nil {
		_, _ = w.conn.Execute("ROLLBACK")
		return err
	}
	amount := float64(w.rnd.IntN(20000)-5000) / 100
	if _, err := w.conn.Execute(fmt.Sprintf("INSERT INTO ledger (account, amount) VALUES ('acct-%d', %.2f)", w.rnd.IntN(10), amount)); err != nil {
		_, _ = w.conn.Execute("ROLLBACK")
		return err
	}
	if w.rnd.IntN(15) == 0 {
		// A rolled-back insert: the counter moves, no row remains.
		if _, err := w.conn.Execute("ROLLBACK"); err != nil {
			return err
		}
		return w.burn()
	}
	if _, err := w.conn.Execute("COMMIT"); err != nil {
		return err
	}
	w.Ledger += amount
	w.Commits++
	return nil
}

func (w *Runner) burn() error {
	for _, q := range []string{"BEGIN", "INSERT INTO patients (mrn, name) VALUES ('burn-" + w.hex(6) + "', 'x')", "ROLLBACK"} {
		if _, err := w.conn.Execute(q); err != nil {
			return err
		}
	}
	return nil
}

func (w *Runner) hex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(w.rnd.IntN(256))
	}
	return hex.EncodeToString(b)
}

var names = []string{"Zoë Ångström", "José Núñez", "李小龙", "Amara Okafor 💊", "O'Brien", `Back\slash "Q"`}

func (w *Runner) newPatient() error {
	photo := "NULL"
	if w.rnd.IntN(3) == 0 {
		photo = "X'" + w.hex(w.rnd.IntN(40000)+1) + "'"
	}
	allergies := "NULL"
	if w.rnd.IntN(2) == 0 {
		allergies = fmt.Sprintf(`'{"drug": "penicillin", "severity": %d, "notes": ["rash", null, 1.5e3]}'`, w.rnd.IntN(5))
	}
	// MariaDB binlogs UUID, INET6 and BINARY(n) values without their
	// trailing zero bytes: these end in some.
	uid := w.maybe(fmt.Sprintf("'%s-%s-0000-0000-%s'", w.hex(4), w.hex(2), []string{"000000000000", w.hex(6)}[w.rnd.IntN(2)]))
	ip := w.maybe([]string{"'2001:db8::'", "'::ffff:10.0.0.0'", "'fe80::1'"}[w.rnd.IntN(3)])
	code := w.maybe("X'" + w.hex(w.rnd.IntN(7)+1) + []string{"", "00"}[w.rnd.IntN(2)] + "'")
	q := fmt.Sprintf(`INSERT INTO patients (mrn, name, dob, allergies, flags, sex, programs, photo, weight_kg, external, uid, ip, code)
		VALUES ('MRN%s', %s, %s, %s, b'%010b', %s, '%s', %s, %s, %s, %s, %s, %s)`,
		w.hex(6), quote(names[w.rnd.IntN(len(names))]), w.maybe("'1950-01-31'"), allergies, w.rnd.IntN(1024),
		w.maybe("'f'"), []string{"", "medicare", "medicaid,340b", "copay_card,medicare"}[w.rnd.IntN(4)],
		photo, w.maybe(fmt.Sprintf("%d.%02d", w.rnd.IntN(200), w.rnd.IntN(100))), w.maybe("18446744073709551615"), uid, ip, code)
	_, err := w.conn.Execute(q)
	return err
}

func (w *Runner) maybe(v string) string {
	if w.rnd.IntN(4) == 0 {
		return "NULL"
	}
	return v
}

func (w *Runner) pick(table string) (string, bool, error) {
	r, err := w.conn.Execute("SELECT id FROM " + table + " ORDER BY RAND() LIMIT 1")
	if err != nil {
		return "", false, err
	}
	defer r.Close()
	if r.RowNumber() == 0 {
		return "", false, nil
	}
	s, err := r.GetString(0, 0)
	return strings.Clone(s), err == nil, err
}

func (w *Runner) newPrescription() error {
	pid, ok, err := w.pick("patients")
	if err != nil || !ok {
		return err
	}
	_, err = w.conn.Execute(fmt.Sprintf(`INSERT INTO prescriptions (patient_id, ndc, sig, quantity, refills, written_at)
		VALUES (%s, '%011d', 'Take 1 tablet by mouth — twice daily 🙂', %d.%03d, %d, UTC_TIMESTAMP(6))`,
		pid, w.rnd.IntN(1e9), w.rnd.IntN(500), w.rnd.IntN(1000), w.rnd.IntN(12)))
	return err
}

func (w *Runner) fill() error {
	rx, ok, err := w.pick("prescriptions")
	if err != nil || !ok {
		return err
	}
	_, err = w.conn.Execute(fmt.Sprintf(`INSERT INTO fills (prescription_id, filled_at, quantity, unit_price, label, ratio)
		VALUES (%s, UTC_TIMESTAMP(6), %d.%03d, '%d.%030d', X'%s', %v)`,
		rx, w.rnd.IntN(100), w.rnd.IntN(1000), w.rnd.IntN(100), w.rnd.Uint64(), w.hex(w.rnd.IntN(200)+1), w.rnd.Float64()))
	return err
}

func (w *Runner) touchPatient() error {
	pid, ok, err := w.pick("patients")
	if err != nil || !ok {
		return err
	}
	_, err = w.conn.Execute(fmt.Sprintf("UPDATE patients SET weight_kg = %d.%02d, flags = b'%010b', updated_at = UTC_TIMESTAMP(6) WHERE id = %s",
		w.rnd.IntN(200), w.rnd.IntN(100), w.rnd.IntN(1024), pid))
	return err
}

func (w *Runner) deletePatient() error {
	pid, ok, err := w.pick("patients")
	if err != nil || !ok {
		return err
	}
	_, err = w.conn.Execute("DELETE FROM patients WHERE id = " + pid) // cascades to prescriptions and fills
	return err
}

// AddColumn adds two columns mid-run; the second gives every existing row
// the ALTER's own clock, which a restore must reproduce to the
// microsecond.
func (w *Runner) AddColumn() error {
	for _, q := range []string{
		"ALTER TABLE prescriptions ADD COLUMN prior_auth VARCHAR(40) CHARACTER SET utf8mb4 DEFAULT 'none'",
		"ALTER TABLE prescriptions ADD COLUMN reviewed_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)",
	} {
		if _, err := w.conn.Execute(q); err != nil {
			return err
		}
	}
	return nil
}

// CreateTable changes the database's collation, then creates a table
// (which inherits it) mid-run and fills it.
func (w *Runner) CreateTable() error {
	db, err := column(w.conn, "SELECT DATABASE()")
	if err != nil {
		return err
	}
	for _, q := range []string{
		// Names the database: replay must apply it to the restore target,
		// never to the database named.
		"ALTER DATABASE " + strings.Join(db, "") + " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
		"CREATE TABLE recalls (id INT AUTO_INCREMENT PRIMARY KEY, ndc CHAR(11) NOT NULL, issued DATETIME(6) NOT NULL, reason TEXT)",
		"INSERT INTO recalls (ndc, issued, reason) VALUES ('00000000001', UTC_TIMESTAMP(6), 'contamination ⚠')",
		// The binlog records the zone of a session whose statement uses
		// it, and replay sets it (SYSTEM becomes the source's offset).
		"SET time_zone = '+00:00'",
		"CREATE EVENT purge_recalls ON SCHEDULE EVERY 1 HOUR DO DELETE FROM recalls WHERE issued < '2000-01-01'",
		"SET time_zone = DEFAULT",
		// A latin1 client: the server reads the literal's byte E9 as é.
		"SET @cs = @@character_set_client, @coll = @@collation_connection, @res = @@character_set_results",
		"SET NAMES latin1",
		"ALTER TABLE recalls ADD COLUMN note VARCHAR(20) CHARACTER SET utf8mb4 DEFAULT 'caf\xe9'",
		"SET character_set_client = @cs, collation_connection = @coll, character_set_results = @res",
		// A migration that creates a table before the one it references.
		"SET foreign_key_checks = 0",
		"CREATE TABLE recall_notes (id INT PRIMARY KEY, batch_id INT, FOREIGN KEY (batch_id) REFERENCES recall_batches (id))",
		"CREATE TABLE recall_batches (id INT PRIMARY KEY)",
		// With the checks off the delete does not cascade: its fills stay.
		"DELETE FROM prescriptions WHERE id IN (SELECT prescription_id FROM fills) ORDER BY id LIMIT 1",
		"SET foreign_key_checks = 1",
		// A legacy session: its bare TIMESTAMP column is NOT NULL DEFAULT
		// CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, not replay's
		// NULL DEFAULT NULL, and existing rows get the ALTER's clock.
		"SET explicit_defaults_for_timestamp = 0",
		"ALTER TABLE recalls ADD COLUMN acknowledged TIMESTAMP",
		"SET explicit_defaults_for_timestamp = DEFAULT",
	} {
		if _, err := w.conn.Execute(q); err != nil {
			return err
		}
	}
	return nil
}

func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// State summarizes a database: per table, a digest of its definition
// (SHOW CREATE TABLE without the AUTO_INCREMENT counter), its rows and its
// AUTO_INCREMENT counter; the triggers, the scheduled events and the
// database's default character set and collation.
type State map[string]string

// Snapshot reads conn's current database. Values are read as the bytes
// stored (character_set_results = binary), so the server's default
// character set, which the connection may have, changes nothing.
func Snapshot(conn *client.Conn) (State, error) {
	if _, err := conn.Execute("SET time_zone = '+00:00', NAMES utf8mb4, character_set_results = binary"); err != nil {
		return nil, err
	}
	tables, err := column(conn, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1")
	if err != nil {
		return nil, err
	}
	s := State{}
	for _, t := range tables {
		def, err := conn.Execute("SHOW CREATE TABLE `" + t + "`")
		if err != nil {
			return nil, err
		}
		ddl, _ := def.GetString(0, 1)
		ddl = strings.Clone(ddl)
		def.Close()
		s[t+" definition"] = digest(autoIncRE(ddl))
		r, err := conn.Execute("SELECT * FROM `" + t + "` ORDER BY 1")
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		for i := 0; i < r.RowNumber(); i++ {
			for j := 0; j < r.ColumnNumber(); j++ {
				v, _ := r.GetValue(i, j)
				if v == nil {
					h.Write([]byte{0})
					continue
				}
				fmt.Fprintf(h, "%d:%v|", len(fmt.Sprint(v)), v)
			}
			h.Write([]byte{'\n'})
		}
		s[t+" rows"] = fmt.Sprintf("%d rows %x", r.RowNumber(), h.Sum(nil)[:8])
		r.Close()
		ai, err := column(conn, "SELECT IFNULL(AUTO_INCREMENT, 'none') FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", t)
		if err != nil {
			return nil, err
		}
		s[t+" auto_increment"] = strings.Join(ai, "")
	}
	trig, err := column(conn, "SELECT CONCAT(TRIGGER_NAME, ' ', ACTION_TIMING, ' ', EVENT_MANIPULATION, ' ', EVENT_OBJECT_TABLE) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY 1")
	if err != nil {
		return nil, err
	}
	s["triggers"] = strings.Join(trig, "; ")
	ev, err := column(conn, `SELECT CONCAT_WS(' ', EVENT_NAME, STATUS, TIME_ZONE, SQL_MODE, EVENT_COMMENT, EXECUTE_AT, INTERVAL_VALUE, INTERVAL_FIELD,
		STARTS, ENDS, ON_COMPLETION, EVENT_DEFINITION) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE() ORDER BY EVENT_NAME`)
	if err != nil {
		return nil, err
	}
	s["events"] = strings.Join(ev, "; ")
	dbDefaults, err := column(conn, "SELECT CONCAT(DEFAULT_CHARACTER_SET_NAME, ' ', DEFAULT_COLLATION_NAME) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()")
	if err != nil {
		return nil, err
	}
	s["database defaults"] = strings.Join(dbDefaults, "")
	return s, nil
}

func autoIncRE(ddl string) string {
	f := strings.Fields(ddl)
	out := f[:0]
	for _, w := range f {
		if !strings.HasPrefix(w, "AUTO_INCREMENT=") {
			out = append(out, w)
		}
	}
	return strings.Join(out, " ")
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

func column(conn *client.Conn, q string, args ...any) ([]string, error) {
	r, err := conn.Execute(q, args...)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []string
	for i := 0; i < r.RowNumber(); i++ {
		v, err := r.GetString(i, 0)
		if err != nil {
			return nil, err
		}
		out = append(out, strings.Clone(v)) // GetString aliases the pooled result's buffer
	}
	return out, nil
}

// Diff lists the differences between s (wanted) and got.
func (s State) Diff(got State) []string {
	keys := map[string]bool{}
	for k := range s {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	var ks []string
	for k := range keys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var out []string
	for _, k := range ks {
		if s[k] != got[k] {
			out = append(out, fmt.Sprintf("%s: want %q, got %q", k, s[k], got[k]))
		}
	}
	return out
}

// LedgerSum returns the sum of the ledger's amounts.
func LedgerSum(conn *client.Conn) (string, error) {
	v, err := column(conn, "SELECT IFNULL(SUM(amount), 0) FROM ledger")
	if err != nil || len(v) == 0 {
		return "", err
	}
	return v[0], nil
}
