package store

import (
	"context"
	"errors"
	"net"
)

// transientError marks an error that a retry may cure.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// Transient marks err as transient: a network failure, a timeout, a 5xx,
// 429 or 408 answer. Backends mark the errors they know to be transient;
// WithRetry retries only those (and bare network errors). Transient(nil)
// is nil.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &transientError{err: err}
}

// permanentError marks an error that no retry can cure, even if it wraps a
// network error (a TLS certificate failure, say).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as permanent, overriding Transient and the network
// error rule in IsTransient. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsTransient reports whether err is worth retrying. The contract errors
// (ErrExists, ErrNotExist, ErrLocked, ErrRetentionShortened,
// ErrInvalidName), a body of the wrong size and errors marked with
// Permanent are permanent even when marked transient; so are context
// cancellations and deadlines. Errors
// marked with Transient are transient, and so are network errors
// (net.Error) that reach here unmarked. Everything else is permanent.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	for _, p := range []error{ErrExists, ErrNotExist, ErrLocked, ErrRetentionShortened, ErrInvalidName,
		errBodySize, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, p) {
			return false
		}
	}
	var pe *permanentError
	if errors.As(err, &pe) {
		return false
	}
	var te *transientError
	if errors.As(err, &te) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}
