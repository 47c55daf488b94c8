package main

import (
	"errors"
	"strings"

	"github.com/rxvault/rxvault/internal/config"
)

// Exit codes. They are part of the interface scripts rely on.
const (
	exitOK      = 0 // success
	exitFailure = 1 // the operation failed, or found an integrity problem or a gap
	exitUsage   = 2 // bad flags, arguments or configuration: nothing was done
)

// usageError marks errors in how rxvault was invoked or configured.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usage(err error) error { return &usageError{err: err} }

// exitError carries a command's own exit status (rxvault status).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitCode maps an error to the process exit status, in one place.
func exitCode(err error) int {
	var ue *usageError
	var ve *config.ValidationError
	var ee *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue), errors.As(err, &ve):
		return exitUsage
	}
	return exitFailure
}

// oneLine folds an error message onto one line for stderr.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
