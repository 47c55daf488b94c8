package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"testing"
)

// Server names accepted by Need.
const (
	ServerPostgres = "postgres"
	ServerMariaDB  = "mariadb"
	ServerMinIO    = "minio"
)

// pgBinDir is where Debian's postgresql-15 package puts its binaries.
const pgBinDir = "/usr/lib/postgresql/15/bin"

// minioModule is the pinned MinIO server that `make deps` installs.
const minioModule = "github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"

// Required reports whether the environment demands real servers: CI=true or
// RXVAULT_REQUIRE_SERVERS=1. Then a missing server fails the test instead of
// skipping it.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("RXVAULT_REQUIRE_SERVERS") == "1"
}

// Need returns the path of the main binary of server what (one of
// ServerPostgres, ServerMariaDB, ServerMinIO). For PostgreSQL it is the
// directory holding initdb and postgres. When the server cannot be run here
// it skips the test, or fails it with the package to install when Required.
func Need(t testing.TB, what string) string {
	t.Helper()
	path, err := lookup(what)
	if err == nil {
		return path
	}
	if Required() {
		t.Fatalf("testenv: %v (servers are required because CI=true or RXVAULT_REQUIRE_SERVERS=1)", err)
	}
	t.Skipf("testenv: %v", err)
	return ""
}

// lookup finds the binary of server what, or says what to install.
func lookup(what string) (string, error) {
	switch what {
	case ServerPostgres:
		for _, b := range []string{"initdb", "postgres"} {
			if _, err := os.Stat(filepath.Join(pgBinDir, b)); err != nil {
				return "", fmt.Errorf("PostgreSQL 15 not found (%s missing): apt-get install postgresql-15, or run make deps", filepath.Join(pgBinDir, b))
			}
		}
		if os.Geteuid() == 0 {
			if _, err := user.Lookup("postgres"); err != nil {
				return "", fmt.Errorf("OS user postgres not found (postgres will not run as root): apt-get install postgresql-15, or run make deps")
			}
		}
		return pgBinDir, nil
	case ServerMariaDB:
		if _, err := exec.LookPath("mariadb-install-db"); err != nil {
			return "", fmt.Errorf("MariaDB not found (mariadb-install-db missing): apt-get install mariadb-server, or run make deps")
		}
		return mariadbdBinary()
	case ServerMinIO:
		return minioBinary()
	default:
		return "", fmt.Errorf("unknown server %q", what)
	}
}

// mariadbSbin is where Debian's mariadb-server package puts mariadbd. It is
// often not in a non-root user's PATH.
const mariadbSbin = "/usr/sbin/mariadbd"

// mariadbdBinary looks for the MariaDB server in PATH, then at mariadbSbin,
// as the Makefile's deps target does.
func mariadbdBinary() (string, error) {
	if p, err := exec.LookPath("mariadbd"); err == nil {
		return p, nil
	}
	if _, err := os.Stat(mariadbSbin); err == nil {
		return mariadbSbin, nil
	}
	return "", fmt.Errorf("MariaDB not found (mariadbd missing from PATH and %s): apt-get install mariadb-server, or run make deps", mariadbSbin)
}

// minioBinary looks for the MinIO server in $RXVAULT_MINIO_BIN, then in
// <repo root>/.tools/bin/minio, then in PATH.
func minioBinary() (string, error) {
	if p := os.Getenv("RXVAULT_MINIO_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("RXVAULT_MINIO_BIN=%s: %w", p, err)
		}
		return p, nil
	}
	if root, err := repoRoot(); err == nil {
		p := filepath.Join(root, ".tools", "bin", "minio")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("MinIO server not found: run make deps (GOBIN=<repo>/.tools/bin go install %s), or set RXVAULT_MINIO_BIN", minioModule)
}

// repoRoot walks up from the working directory to the directory holding
// go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("getwd: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}
