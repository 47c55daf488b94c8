package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rxvault/rxvault/capture"
)

// IsTransient reports whether err is worth retrying by opening the reader
// again: a lost or refused connection, a server shutting down or starting,
// too many connections, or the slot still held by a previous connection.
// It is false for capture.ErrStreamLost, configuration and permission
// errors, a refused table, and context cancellation: retrying those
// changes nothing.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, capture.ErrStreamLost) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return transientCode(pe.Code)
	}
	var te *transientError
	if errors.As(err, &te) {
		return true
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || pgconn.SafeToRetry(err)
}

// transientCode reports whether a server error code means "try again later".
func transientCode(code string) bool {
	switch {
	case strings.HasPrefix(code, "08"): // connection exception
		return true
	case code == "57P01", code == "57P02", code == "57P03": // shutdown, crash, cannot connect now
		return true
	case strings.HasPrefix(code, "53"): // insufficient resources: disk full, out of memory, too many connections
		return true
	case code == "55006": // object in use: the slot is still held by an old connection
		return true
	case code == "55P03", code == "57014": // lock not available, query canceled (a timeout)
		return true
	case code == "40001", code == "40P01": // serialization failure, deadlock
		return true
	case code == "58000", code == "58030": // system error, I/O error
		return true
	}
	return false
}

// transientError marks an error as retryable even though its cause does
// not say so (a connection the server closed under us).
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// slotLostError reports whether a server error says the slot can no longer
// stream: it is missing, invalidated, or needs WAL that is gone.
func slotLostError(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "42704": // undefined_object: replication slot "x" does not exist
		return strings.Contains(pe.Message, "replication slot")
	case "55000": // object_not_in_prerequisite_state
		return strings.Contains(pe.Message, "invalidated") || strings.Contains(pe.Detail, "invalidated") ||
			strings.Contains(pe.Message, "can no longer get changes")
	case "58P01": // undefined_file: requested WAL segment has already been removed
		return true
	}
	return false
}

// streamLost wraps detail as capture.ErrStreamLost for slot.
func streamLost(slot string, detail error) error {
	return capture.StreamLost(fmt.Errorf("replication slot %q: %w; fix: start a new chain with a new base backup (rxvault backup)", slot, detail))
}

// markPermanent marks an error of Open or Dump that retrying cannot fix:
// neither transient, nor a lost stream, nor the caller's cancellation.
func markPermanent(ctx context.Context, err error) error {
	if ctx.Err() != nil || IsTransient(err) || errors.Is(err, capture.ErrStreamLost) {
		return err
	}
	return capture.Permanent(err)
}
