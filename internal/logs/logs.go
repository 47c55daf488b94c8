// Package logs is the one rule rxvault's library packages follow for the
// logger they are given.
//
// Only cmd decides where logs go. A library package takes a *slog.Logger
// in its configuration, where nil discards everything, and every line it
// logs carries the attribute component=<the package's path within the
// module>: "agent", "shipper", "capture/postgres", "pitr/mysql",
// "internal/store", and so on. For applies both halves of the rule.
package logs

import "log/slog"

// Key is the attribute that names the component a line comes from.
const Key = "component"

// For returns l scoped to component (the package's path within the
// module), or a logger that discards everything if l is nil.
func For(l *slog.Logger, component string) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l.With(Key, component)
}
