package testenv_test

import (
	"runtime"
	"testing"
)

// recorder is a testing.TB that records Fatalf and Skipf and ends the
// calling goroutine like the real ones do. Other methods are not used.
type recorder struct {
	testing.TB
	failed, skipped bool
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(string, ...any) {
	r.failed = true
	runtime.Goexit()
}

func (r *recorder) Skipf(string, ...any) {
	r.skipped = true
	runtime.Goexit()
}
