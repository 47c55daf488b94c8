package proc

import (
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

func TestOutput(t *testing.T) {
	o, err := Start(exec.Command("sh", "-c", "echo hello; echo warning >&2"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(o)
	if err != nil || string(b) != "hello\n" {
		t.Fatalf("read %q, %v", b, err)
	}
	if err := o.Close(); err != nil {
		t.Errorf("a clean exit read to the end: %v", err)
	}
	if err := o.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	o, _ = Start(exec.Command("sh", "-c", "echo partial; echo 'no such table' >&2; exit 3"))
	_, _ = io.ReadAll(o)
	err = o.Close()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 || !strings.Contains(err.Error(), "no such table") {
		t.Errorf("a failed process: %v; want its exit status and the end of its error output", err)
	}

	o, _ = Start(exec.Command("sh", "-c", "yes"))
	buf := make([]byte, 10)
	if _, err := o.Read(buf); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); !errors.Is(err, ErrClosedEarly) {
		t.Errorf("closed while the process still writes: %v, want ErrClosedEarly", err)
	}
}
