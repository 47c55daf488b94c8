// Package tail keeps the end of a child process's error output, for error
// messages.
package tail

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer keeps the last Max bytes written to it. It is safe for
// concurrent use.
type Buffer struct {
	Max int

	mu sync.Mutex
	b  []byte
}

// Write appends p, dropping what exceeds Max from the front.
func (t *Buffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.Max {
		t.b = t.b[len(t.b)-t.Max:]
	}
	return len(p), nil
}

// String returns what is kept as one line: valid UTF-8, runs of white
// space folded into one space.
func (t *Buffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(strings.Fields(string(bytes.ToValidUTF8(t.b, nil))), " ")
}
