// Package integration holds end-to-end tests of rxvault against real
// servers (PostgreSQL, MariaDB, MinIO) started privately by
// internal/testenv, and of the real binary.
package integration
