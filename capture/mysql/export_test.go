package mysql

import "context"

// SetDumpSnapshotTaken sets cfg's hook that Dump runs on MariaDB between
// taking the rows' snapshot and dumping the schema.
func SetDumpSnapshotTaken(cfg *Config, f func(context.Context) error) { cfg.dumpSnapshotTaken = f }
