package capture_test

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/rxvault/rxvault/capture"
)

// TestStreamLost: a reader's lost stream is ErrStreamLost to errors.Is,
// keeps its cause, and gives the agent its reason however it was wrapped.
func TestStreamLost(t *testing.T) {
	cause := fmt.Errorf("replication slot %q: %w", "rxvault", fs.ErrNotExist)
	err := fmt.Errorf("open source: %w", capture.StreamLost(cause))
	if !errors.Is(err, capture.ErrStreamLost) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%v: not ErrStreamLost with its cause", err)
	}
	var sl *capture.StreamLostError
	if !errors.As(err, &sl) {
		t.Fatalf("%v: no *StreamLostError", err)
	}
	if got, want := sl.Error(), `change stream lost: replication slot "rxvault": file does not exist`; got != want {
		t.Errorf("reason %q, want %q", got, want)
	}
	if errors.Is(fmt.Errorf("other: %w", fs.ErrNotExist), capture.ErrStreamLost) {
		t.Error("an unrelated error is ErrStreamLost")
	}
}
