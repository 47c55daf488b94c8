// Package testenv starts private database and object-store servers for
// tests: PostgreSQL 15 with wal_level=logical, MariaDB 10.11 with a ROW
// binlog and GTIDs, and MinIO with Object Lock.
//
// Each server runs on a free loopback port, with its data in a fresh
// temporary directory, as a child process of the test binary. It is stopped
// by PID in t.Cleanup (never by name) and its directory is removed after.
// Children are started with Setpgid and Pdeathsig=SIGKILL, from one OS thread
// that lives as long as the test process, so a test binary that is killed
// takes its servers down with it (see startProcess).
//
// When a server's binary is missing the test is skipped, or fails when the
// environment says servers are required (CI=true or
// RXVAULT_REQUIRE_SERVERS=1); see Need.
//
// Server logs go to a file in the server's directory and are copied into
// the test log when a start fails.
package testenv
