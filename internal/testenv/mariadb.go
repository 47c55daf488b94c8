package testenv

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
)

// MariaDB is a private MariaDB 10.11 server with a ROW binlog (full row
// images and full row metadata: column names in every table map, and
// log_slave_updates) and GTID strict mode, TLS (a certificate for
// 127.0.0.1 signed by CAFile), server_id 1 (a replica: see
// StartMariaDBReplica), listening on 127.0.0.1:Port
// and on the unix socket Socket. root has no password over the socket;
// User/Password is a TCP account (from 127.0.0.1) with REPLICATION SLAVE,
// REPLICATION CLIENT and ALL PRIVILEGES on *.*.
type MariaDB struct {
	Port     int    // TCP port on 127.0.0.1
	Socket   string // unix socket path
	User     string // TCP user, "rxvault"
	Password string // random password of User

	ServerID int    // server_id
	Zone     string // the server host's time zone (TZ; "" is UTC): its SYSTEM time zone
	CAFile   string // the CA certificate (PEM) of the server's TLS certificate, for 127.0.0.1

	// Options are server options added after the fixed ones (see
	// StartMariaDBWithOptions); a restart keeps them.
	Options []string

	certFile, keyFile string

	bin     string
	dir     string
	dataDir string

	server
}

// StartMariaDB starts a fresh MariaDB server for the test and stops it, and
// removes its directory, when the test ends.
func StartMariaDB(t testing.TB) *MariaDB {
	t.Helper()
	return startMariaDB(t, 1, "")
}

// StartMariaDBWithOptions is StartMariaDB with extra server options
// after the fixed ones, such as --character-set-server=latin1; a later
// option overrides a fixed one.
func StartMariaDBWithOptions(t testing.TB, options ...string) *MariaDB {
	t.Helper()
	return startMariaDB(t, 1, "", options...)
}

// StartMariaDBInZone is StartMariaDB with the server's host time zone
// (its SYSTEM zone) set to zone, such as America/Chicago.
func StartMariaDBInZone(t testing.TB, zone string) *MariaDB {
	t.Helper()
	return startMariaDB(t, 1, zone)
}

func startMariaDB(t testing.TB, serverID int, zone string, options ...string) *MariaDB {
	t.Helper()
	bin := Need(t, ServerMariaDB)
	m, err := launchMariaDB(bin, shortTempDir(t, "my"), serverID, zone, options)
	m.forTest(t, err)
	return m
}

// LaunchMariaDB starts a private MariaDB server in dir (which must exist
// and be empty) outside of any test, for programs such as the demo. The
// caller stops it with Shutdown; if the calling process dies, the server
// dies with it.
func LaunchMariaDB(dir string) (*MariaDB, error) {
	bin, err := lookup(ServerMariaDB)
	if err != nil {
		return nil, err
	}
	m, err := launchMariaDB(bin, dir, 1, "", nil)
	if err := m.launched(err); err != nil {
		return nil, err
	}
	return m, nil
}

// launchMariaDB starts a server in dir. The server is returned on error
// too: it may hold a log worth showing, and must be stopped.
func launchMariaDB(bin, dir string, serverID int, zone string, options []string) (*MariaDB, error) {
	pw := make([]byte, 16)
	_, _ = rand.Read(pw) // never fails (it crashes instead)
	m := &MariaDB{
		Socket:   filepath.Join(dir, "my.sock"),
		User:     "rxvault",
		Password: hex.EncodeToString(pw),
		ServerID: serverID,
		Zone:     zone,
		Options:  options,
		bin:      bin,
		dir:      dir,
		dataDir:  filepath.Join(dir, "data"),
	}
	m.name, m.logPath, m.stopSig = "mariadb", filepath.Join(dir, "mariadb.log"), syscall.SIGTERM
	m.command, m.ready = m.serverCmd, m.ping
	if err := m.installDB(); err != nil {
		return m, err
	}
	var err error
	if m.CAFile, m.certFile, m.keyFile, err = WriteCerts(dir); err != nil {
		return m, err
	}
	err = m.startOnFreePorts(func() (err error) {
		m.Port, err = freePort()
		return err
	})
	if err != nil {
		return m, fmt.Errorf("start mariadb: %w", err)
	}
	c, err := m.RootConn(context.Background())
	if err != nil {
		return m, err
	}
	defer c.Close()
	for _, q := range []string{
		fmt.Sprintf("CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s'", m.User, m.Password),
		fmt.Sprintf("GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '%s'@'127.0.0.1'", m.User),
		fmt.Sprintf("GRANT ALL PRIVILEGES ON *.* TO '%s'@'127.0.0.1'", m.User),
	} {
		if _, err := c.Execute(q); err != nil {
			return m, fmt.Errorf("%s: %w", q, err)
		}
	}
	return m, nil
}

// Addr returns the server's TCP address, 127.0.0.1:Port.
func (m *MariaDB) Addr() string { return "127.0.0.1:" + strconv.Itoa(m.Port) }

// DSN returns a mysql:// URL for database db (may be "") as User over TCP.
func (m *MariaDB) DSN(db string) string {
	return fmt.Sprintf("mysql://%s:%s@%s/%s", m.User, m.Password, m.Addr(), url.PathEscape(db))
}

// RootConn connects as root over the unix socket. The caller closes it.
func (m *MariaDB) RootConn(ctx context.Context) (*client.Conn, error) {
	c, err := client.ConnectWithContext(ctx, m.Socket, "root", "", "", 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("connect mariadb root: %w", err)
	}
	return c, nil
}

// Exec runs one statement as root over the socket and returns its result.
func (m *MariaDB) Exec(t testing.TB, query string) *mysql.Result {
	t.Helper()
	c, err := m.RootConn(t.Context())
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	defer c.Close()
	r, err := c.Execute(query)
	if err != nil {
		t.Fatalf("testenv: %s: %v", query, err)
	}
	return r
}

// CreateDatabase creates database name and returns its DSN (see DSN).
func (m *MariaDB) CreateDatabase(t testing.TB, name string) string {
	t.Helper()
	m.Exec(t, "CREATE DATABASE `"+name+"`")
	return m.DSN(name)
}

// Dir returns the server's temporary directory (data, logs, sockets),
// removed when the test ends.
func (m *MariaDB) Dir() string { return m.dir }

// tmpDir is the server's own tmpdir: servers of other tests (in other
// PID namespaces) sharing /tmp can name their temporary files alike, and
// delete each other's.
func (m *MariaDB) tmpDir() string { return filepath.Join(m.dir, "tmp") }

func (m *MariaDB) installDB() error {
	args := []string{"--no-defaults"} // must come first, or /etc/mysql/my.cnf is read
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	if err := os.MkdirAll(m.tmpDir(), 0o700); err != nil {
		return err
	}
	args = append(args, "--datadir="+m.dataDir, "--basedir=/usr", "--tmpdir="+m.tmpDir(),
		"--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve")
	cmd := exec.Command("mariadb-install-db", args...)
	cmd.Dir = m.dir
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "HOME=" + m.dir}
	p, err := startProcess("mariadb-install-db", cmd, m.logPath)
	if err != nil {
		return err
	}
	<-p.done
	if p.waitErr != nil {
		return fmt.Errorf("mariadb-install-db: %w", p.waitErr)
	}
	return nil
}

// serverCmd is the server's command line.
func (m *MariaDB) serverCmd() *exec.Cmd {
	args := []string{"--no-defaults"} // must come first
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	args = append(args,
		"--datadir="+m.dataDir,
		"--tmpdir="+m.tmpDir(),
		"--port="+strconv.Itoa(m.Port),
		"--bind-address=127.0.0.1",
		"--socket="+m.Socket,
		"--pid-file="+filepath.Join(m.dir, "mariadb.pid"),
		"--skip-name-resolve",
		"--server-id="+strconv.Itoa(m.ServerID),
		"--log-slave-updates",
		"--log-bin="+filepath.Join(m.dataDir, "mysql-bin"),
		"--binlog-format=ROW",
		"--binlog-row-image=FULL",
		"--binlog-row-metadata=FULL",
		"--gtid-strict-mode=ON",
		"--ssl-ca="+m.CAFile,
		"--ssl-cert="+m.certFile,
		"--ssl-key="+m.keyFile,
	)
	args = append(args, m.Options...)
	cmd := exec.Command(m.bin, args...)
	cmd.Dir = m.dir
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "HOME=" + m.dir, "TZ=" + cmp.Or(m.Zone, "UTC")}
	return cmd
}

// ping answers once the server serves.
func (m *MariaDB) ping(ctx context.Context) error {
	c, err := client.ConnectWithContext(ctx, m.Socket, "root", "", "", 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Ping()
}
