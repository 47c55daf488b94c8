package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Postgres is a private PostgreSQL 15 server with wal_level=logical,
// listening on 127.0.0.1:Port and on a unix socket in SocketDir. The
// superuser is postgres, with trust authentication (replication
// connections included).
type Postgres struct {
	Port      int    // TCP port on 127.0.0.1
	SocketDir string // directory holding the unix socket .s.PGSQL.<Port>

	binDir  string
	dataDir string
	owner   owner

	server
}

// StartPostgres starts a fresh PostgreSQL 15 server for the test and stops
// it, and removes its directory, when the test ends. Its data directory is a
// copy of an initdb template made once (see pgTemplate).
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	binDir := Need(t, ServerPostgres)
	pg, err := launchPostgres(binDir, shortTempDir(t, "pg"))
	pg.forTest(t, err)
	return pg
}

// LaunchPostgres starts a private PostgreSQL 15 server in dir (which must
// exist and be empty) outside of any test, for programs such as the demo.
// The caller stops it with Shutdown; if the calling process dies, the
// server dies with it.
func LaunchPostgres(dir string) (*Postgres, error) {
	binDir, err := lookup(ServerPostgres)
	if err != nil {
		return nil, err
	}
	pg, err := launchPostgres(binDir, dir)
	if err := pg.launched(err); err != nil {
		return nil, err
	}
	return pg, nil
}

// launchPostgres starts a server in dir. The server is returned on error
// too: it may hold a log worth showing, and must be stopped.
func launchPostgres(binDir, dir string) (*Postgres, error) {
	pg := &Postgres{
		SocketDir: dir,
		binDir:    binDir,
		dataDir:   filepath.Join(dir, "data"),
	}
	// SIGINT: a fast shutdown.
	pg.name, pg.logPath, pg.stopSig = "postgres", filepath.Join(dir, "postgres.log"), syscall.SIGINT
	pg.command, pg.ready = pg.serverCmd, pg.ping
	o, err := postgresOwner()
	if err != nil {
		return pg, err
	}
	pg.owner = o
	tmpl, err := pgTemplate(binDir, o)
	if err != nil {
		return pg, fmt.Errorf("postgres template: %w", err)
	}
	if err := o.chown(dir); err != nil {
		return pg, err
	}
	if err := copyTree(tmpl, pg.dataDir, o); err != nil {
		return pg, fmt.Errorf("copy postgres template: %w", err)
	}
	err = pg.startOnFreePorts(func() (err error) {
		pg.Port, err = freePort()
		return err
	})
	if err != nil {
		return pg, fmt.Errorf("start postgres: %w", err)
	}
	return pg, nil
}

// CreateDB creates database name and returns its DSN.
func (pg *Postgres) CreateDB(ctx context.Context, name string) (string, error) {
	conn, err := pgconn.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		return "", fmt.Errorf("connect postgres: %w", err)
	}
	defer conn.Close(ctx)
	q := `CREATE DATABASE "` + strings.ReplaceAll(name, `"`, `""`) + `"`
	if _, err := conn.Exec(ctx, q).ReadAll(); err != nil {
		return "", fmt.Errorf("%s: %w", q, err)
	}
	return pg.DSN(name), nil
}

// DSN returns a URL for database db as the superuser postgres over TCP.
func (pg *Postgres) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pg.Port, url.PathEscape(db))
}

// CreateDatabase creates database name and returns its DSN.
func (pg *Postgres) CreateDatabase(t testing.TB, name string) string {
	t.Helper()
	dsn, err := pg.CreateDB(t.Context(), name)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return dsn
}

// Dir returns the server's temporary directory (data, logs, sockets),
// removed when the test ends.
func (pg *Postgres) Dir() string { return pg.SocketDir }

// serverCmd is the server's command line.
func (pg *Postgres) serverCmd() *exec.Cmd {
	cmd := exec.Command(filepath.Join(pg.binDir, "postgres"),
		"-D", pg.dataDir,
		"-p", strconv.Itoa(pg.Port),
		"-k", pg.SocketDir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "wal_level=logical",
		"-c", "max_replication_slots=10",
		"-c", "max_wal_senders=10",
		"-c", "fsync=off",
	)
	cmd.Dir = pg.SocketDir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "HOME=" + pg.SocketDir}
	cmd.SysProcAttr = pg.owner.sysProcAttr()
	return cmd
}

// ping answers once the server accepts connections.
func (pg *Postgres) ping(ctx context.Context) error {
	c, err := pgconn.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		return err
	}
	return c.Close(ctx)
}

// pgTemplateMu serializes template creation within this process.
var pgTemplateMu sync.Mutex

// pgTemplate returns a data directory made by initdb, to be copied for
// each server. initdb is the slow part of a start, so it runs at most once
// per test process, and the result is cached across processes under the
// temp dir (built aside, then renamed into place, so concurrent test
// binaries never see a half-made template).
func pgTemplate(binDir string, o owner) (string, error) {
	pgTemplateMu.Lock()
	defer pgTemplateMu.Unlock()
	out, err := exec.Command(filepath.Join(binDir, "postgres"), "--version").Output()
	if err != nil {
		return "", fmt.Errorf("postgres --version: %w", err)
	}
	// Key the cache on the exact server build.
	sum := sha256.Sum256(out)
	version := hex.EncodeToString(sum[:6])
	base := filepath.Join(os.TempDir(), fmt.Sprintf("rxvault-testenv-%d", os.Geteuid()))
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("mkdir: %w", err)
	}
	if st, err := os.Lstat(base); err != nil || !st.IsDir() || st.Sys().(*syscall.Stat_t).Uid != uint32(os.Geteuid()) {
		return "", fmt.Errorf("%s is not a directory owned by uid %d", base, os.Geteuid())
	}
	removeStaleBuilds(base)
	final := filepath.Join(base, "pg-template-"+version+"-v1")
	if _, err := os.Stat(filepath.Join(final, "complete")); err == nil {
		return filepath.Join(final, "data"), nil
	}
	build, err := os.MkdirTemp(base, "pg-build-")
	if err != nil {
		return "", fmt.Errorf("mkdir: %w", err)
	}
	defer os.RemoveAll(build) // no-op once renamed
	if err := os.Chmod(build, 0o755); err != nil {
		return "", fmt.Errorf("chmod: %w", err)
	}
	if err := o.chown(build); err != nil {
		return "", err
	}
	logPath := filepath.Join(build, "initdb.log")
	cmd := exec.Command(filepath.Join(binDir, "initdb"),
		"-D", filepath.Join(build, "data"), "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	cmd.Dir = build
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "HOME=" + build}
	cmd.SysProcAttr = o.sysProcAttr()
	p, err := startProcess("initdb", cmd, logPath)
	if err != nil {
		return "", err
	}
	<-p.done
	if p.waitErr != nil {
		b, _ := os.ReadFile(logPath)
		return "", fmt.Errorf("initdb: %w\n%s", p.waitErr, b)
	}
	if err := os.WriteFile(filepath.Join(build, "complete"), nil, 0o644); err != nil {
		return "", fmt.Errorf("mark template: %w", err)
	}
	if err := os.Rename(build, final); err != nil {
		// Another test process won the race; use its template.
		if _, serr := os.Stat(filepath.Join(final, "complete")); serr != nil {
			return "", fmt.Errorf("install template: %w", err)
		}
	}
	return filepath.Join(final, "data"), nil
}

// removeStaleBuilds removes template build directories left by test
// processes killed during initdb (older than an hour, so never one that a
// live process is still filling).
func removeStaleBuilds(base string) {
	dirs, _ := filepath.Glob(filepath.Join(base, "pg-build-*"))
	for _, d := range dirs {
		if st, err := os.Stat(d); err == nil && time.Since(st.ModTime()) > time.Hour {
			os.RemoveAll(d)
		}
	}
}
