// Package proc streams the standard output of a child process, such as a
// dump program, and reports how the process ended.
package proc

import (
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"

	"github.com/rxvault/rxvault/internal/tail"
)

// ErrClosedEarly is returned by Close when the output was not read to its
// end.
var ErrClosedEarly = errors.New("closed before the end of its output")

// Output is a started process's standard output. Read it to the end, then
// Close. Read is for one goroutine; Close may come from another.
type Output struct {
	cmd  *exec.Cmd
	out  io.ReadCloser
	errb *tail.Buffer

	mu     sync.Mutex
	closed bool
	eof    bool
}

// Start starts cmd with its standard output piped to the returned Output
// and the end of its error output kept for Close's error.
func Start(cmd *exec.Cmd) (*Output, error) {
	o := &Output{cmd: cmd, errb: &tail.Buffer{Max: 4096}}
	cmd.Stderr = o.errb
	var err error
	if o.out, err = cmd.StdoutPipe(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return o, nil
}

// Read reads the process's output.
func (o *Output) Read(p []byte) (int, error) {
	n, err := o.out.Read(p)
	if errors.Is(err, io.EOF) {
		o.mu.Lock()
		o.eof = true
		o.mu.Unlock()
	}
	return n, err
}

// Stderr returns the end of the process's error output, as one line.
func (o *Output) Stderr() string { return o.errb.String() }

// Close closes the pipe, so that a process still writing fails (EPIPE)
// instead of blocking, and waits for the process. It returns
// ErrClosedEarly if the output was not read to its end, else the
// process's failure with the end of its error output, else nil. Later
// calls return nil.
func (o *Output) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	o.closed = true
	early := !o.eof
	_ = o.out.Close()
	werr := o.cmd.Wait()
	switch {
	case early:
		return ErrClosedEarly
	case werr != nil:
		return fmt.Errorf("%w: %s", werr, o.errb.String())
	}
	return nil
}
