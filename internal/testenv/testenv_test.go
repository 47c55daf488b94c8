package testenv_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/rxvault/rxvault/internal/testenv"
)

// pgQuery returns the first column of the first row of query.
func pgQuery(t *testing.T, dsn, query string) string {
	t.Helper()
	ctx := t.Context()
	conn, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	res, err := conn.Exec(ctx, query).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	if len(res) != 1 || len(res[0].Rows) != 1 {
		t.Fatalf("%s: got %d results", query, len(res))
	}
	return string(res[0].Rows[0][0])
}

// pgExec runs statements and ignores their results.
func pgExec(t *testing.T, dsn, sql string) {
	t.Helper()
	ctx := t.Context()
	conn, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql).ReadAll(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// checkGone fails the test if any process of pid's group is still alive.
func checkGone(t *testing.T, what string, pid int) {
	t.Helper()
	if pid == 0 {
		t.Fatalf("%s: no pid", what)
	}
	if testenv.Alive(pid) {
		t.Errorf("%s: process %d still alive", what, pid)
	}
}

func TestPostgres(t *testing.T) {
	var pid int
	var dir string
	t.Run("lifecycle", func(t *testing.T) {
		pg := testenv.StartPostgres(t)
		dir = pg.SocketDir
		dsn := pg.CreateDatabase(t, "rx test")
		if got, want := pgQuery(t, dsn, "select 1"), "1"; got != want {
			t.Errorf("select 1 = %q, want %q", got, want)
		}
		if got, want := pgQuery(t, dsn, "show wal_level"), "logical"; got != want {
			t.Errorf("wal_level = %q, want %q", got, want)
		}
		if got, want := pgQuery(t, dsn, "select current_database()"), "rx test"; got != want {
			t.Errorf("current_database = %q, want %q", got, want)
		}
		pgExec(t, dsn, "create table t (x int); insert into t values (42)")

		first := pg.PID()
		pg.Stop(t)
		checkGone(t, "postgres after Stop", first)
		pg.Start(t)
		if got, want := pgQuery(t, dsn, "select x from t"), "42"; got != want {
			t.Errorf("after restart x = %q, want %q", got, want)
		}

		second := pg.PID()
		// A backend is not in the postmaster's process group (it calls
		// setsid); Kill must take it down too, or the restart would find
		// its shared memory in use.
		ctx := t.Context()
		conn, err := pgconn.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		res, err := conn.Exec(ctx, "select pg_backend_pid()").ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		backend, err := strconv.Atoi(string(res[0].Rows[0][0]))
		if err != nil {
			t.Fatal(err)
		}
		pg.Kill(t)
		conn.Close(ctx)
		checkGone(t, "postgres after Kill", second)
		checkGone(t, "postgres backend after Kill", backend)
		pg.Start(t)
		if got, want := pgQuery(t, dsn, "select x from t"), "42"; got != want {
			t.Errorf("after crash x = %q, want %q", got, want)
		}
		pid = pg.PID()
	})
	checkGone(t, "postgres after cleanup", pid)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("postgres dir %s not removed: %v", dir, err)
	}
}

func TestPostgresTwoInstances(t *testing.T) {
	a := testenv.StartPostgres(t)
	b := testenv.StartPostgres(t)
	if a.Port == b.Port {
		t.Fatalf("both servers on port %d", a.Port)
	}
	pgExec(t, a.DSN("postgres"), "create table only_in_a (x int)")
	if got, want := pgQuery(t, b.DSN("postgres"), "select count(*) from pg_tables where tablename = 'only_in_a'"), "0"; got != want {
		t.Errorf("table visible in second server: count = %q", got)
	}
}

func myQuery(t *testing.T, c *client.Conn, query string) string {
	t.Helper()
	r, err := c.Execute(query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer r.Close()
	s, err := r.GetString(0, 0)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return s
}

func TestMariaDB(t *testing.T) {
	var pid int
	var dir string
	t.Run("lifecycle", func(t *testing.T) {
		m := testenv.StartMariaDB(t)
		dir = m.Socket
		m.CreateDatabase(t, "rx")
		// The TCP account with its password.
		c, err := client.Connect(m.Addr(), m.User, m.Password, "rx")
		if err != nil {
			t.Fatalf("connect as %s over TCP: %v", m.User, err)
		}
		for q, want := range map[string]string{
			"select @@binlog_format":    "ROW",
			"select @@binlog_row_image": "FULL",
			"select @@log_bin":          "1",
			"select @@gtid_strict_mode": "1",
			"select @@server_id":        "1",
		} {
			if got := myQuery(t, c, q); got != want {
				t.Errorf("%s = %q, want %q", q, got, want)
			}
		}
		// SHOW MASTER STATUS needs the replication privileges.
		if got := myQuery(t, c, "show master status"); got == "" {
			t.Errorf("show master status: no binlog file")
		}
		for _, q := range []string{"create table t (x int primary key)", "insert into t values (7)"} {
			if _, err := c.Execute(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		c.Close()

		first := m.PID()
		m.Stop(t)
		checkGone(t, "mariadb after Stop", first)
		m.Start(t)
		second := m.PID()
		m.Kill(t)
		checkGone(t, "mariadb after Kill", second)
		m.Start(t)

		c, err = client.Connect(m.Addr(), m.User, m.Password, "rx")
		if err != nil {
			t.Fatalf("reconnect: %v", err)
		}
		defer c.Close()
		if got, want := myQuery(t, c, "select x from t"), "7"; got != want {
			t.Errorf("after restarts x = %q, want %q", got, want)
		}
		if got := myQuery(t, c, "select @@gtid_binlog_pos"); got == "" {
			t.Errorf("gtid_binlog_pos is empty after writes")
		}
		pid = m.PID()
	})
	checkGone(t, "mariadb after cleanup", pid)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("mariadb socket %s not removed: %v", dir, err)
	}
}

func TestMinIO(t *testing.T) {
	for _, tls := range []bool{false, true} {
		name := "http"
		if tls {
			name = "https"
		}
		t.Run(name, func(t *testing.T) {
			var pid int
			t.Run("lifecycle", func(t *testing.T) {
				m := testenv.StartMinIO(t, testenv.MinIOOptions{TLS: tls})
				if got, want := m.CAFile != "", tls; got != want {
					t.Errorf("CAFile set = %v, want %v", got, want)
				}
				m.MakeBucket(t, "locked", true)
				c, err := m.Client()
				if err != nil {
					t.Fatal(err)
				}
				ctx := t.Context()
				status, _, _, _, err := c.GetObjectLockConfig(ctx, "locked")
				if err != nil {
					t.Fatalf("object lock config: %v", err)
				}
				if got, want := status, "Enabled"; got != want {
					t.Errorf("object lock = %q, want %q", got, want)
				}

				first := m.PID()
				m.Stop(t)
				checkGone(t, "minio after Stop", first)
				m.Start(t)
				ok, err := c.BucketExists(ctx, "locked")
				if err != nil || !ok {
					t.Errorf("bucket after restart: exists=%v err=%v", ok, err)
				}
				pid = m.PID()
			})
			checkGone(t, "minio after cleanup", pid)
		})
	}
}

func TestMinIOTLSRejectsUnknownCA(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{TLS: true})
	// A client that does not trust the test CA must fail.
	c, err := minio.New(m.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""),
		Secure:     true,
		MaxRetries: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListBuckets(t.Context()); err == nil {
		t.Errorf("ListBuckets without the CA succeeded, want a certificate error")
	}
}

func TestNeedUnknownServerSkipsOrFails(t *testing.T) {
	// Need's policy is exercised through a fake testing.TB.
	for _, tc := range []struct {
		name, ci, require string
		required          bool
	}{
		{name: "unset", required: false},
		{name: "RXVAULT_REQUIRE_SERVERS=1", require: "1", required: true},
		{name: "CI=true", ci: "true", required: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			t.Setenv("RXVAULT_REQUIRE_SERVERS", tc.require)
			rec := &recorder{}
			done := make(chan struct{})
			go func() {
				defer close(done)
				testenv.Need(rec, "no-such-server")
			}()
			<-done
			if got, want := rec.failed, tc.required; got != want {
				t.Errorf("failed = %v, want %v", got, want)
			}
			if got, want := rec.skipped, !tc.required; got != want {
				t.Errorf("skipped = %v, want %v", got, want)
			}
		})
	}
}

// TestNeedMariaDBOutsidePath checks that mariadbd is found in /usr/sbin
// when /usr/sbin is not in PATH, as for many non-root users.
func TestNeedMariaDBOutsidePath(t *testing.T) {
	testenv.Need(t, testenv.ServerMariaDB) // skips or fails with what to install
	const sbin = "/usr/sbin/mariadbd"
	if _, err := os.Stat(sbin); err != nil {
		t.Skipf("MariaDB installed elsewhere than %s", sbin)
	}
	// PATH without /usr/sbin, keeping mariadb-install-db's directory.
	install, err := exec.LookPath("mariadb-install-db")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", filepath.Dir(install))
	if _, err := exec.LookPath("mariadbd"); err == nil {
		t.Skipf("mariadbd also in %s", filepath.Dir(install))
	}
	if got, want := testenv.Need(t, testenv.ServerMariaDB), sbin; got != want {
		t.Errorf("Need(mariadb) = %q, want %q", got, want)
	}
}
