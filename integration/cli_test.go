package integration

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildBinary builds cmd/rxvault once per test into a temp dir, with a
// version stamped in as make build does.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rxvault")
	cmd := exec.Command("go", "build", "-ldflags", "-X main.version=v0.0.0-itest", "-o", bin, "../cmd/rxvault")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// rxvault runs the binary in dir with env added and returns exit status,
// stdout and stderr.
func rxvault(t *testing.T, bin, dir string, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errOut.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errOut.String()
	}
	t.Fatalf("run %v: %v", args, err)
	return -1, "", ""
}

// TestBinary exercises the real binary: exit codes, one-line errors and
// the files init and keys generate write.
func TestBinary(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()

	code, out, _ := rxvault(t, bin, dir, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "rxvault v0.0.0-itest ") {
		t.Errorf("version: exit %d, %q", code, out)
	}

	archive := filepath.Join(dir, "archive")
	if code, _, errOut := rxvault(t, bin, dir, nil, "init", "--store", "file://"+archive, "--spool", filepath.Join(dir, "spool")); code != 0 {
		t.Fatalf("init: exit %d: %s", code, errOut)
	}
	if code, out, errOut := rxvault(t, bin, dir, nil, "config", "check"); code != 0 || !strings.Contains(out, "archive.stores = [file://"+archive+"]") {
		t.Fatalf("config check of the init file: exit %d\n%s%s", code, out, errOut)
	}

	for _, tc := range []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"env override refused", []string{"RXVAULT_SEGMENT_INTERVAL=100ms"}, []string{"config", "check"}, 2, "segment.interval"},
		{"--set refused", nil, []string{"config", "check", "--set", "archive.lock_mode=maybe"}, 2, "archive.lock_mode"},
		{"missing explicit config", nil, []string{"config", "check", "--config", "absent.yaml"}, 2, "absent.yaml"},
		{"second init", nil, []string{"init"}, 2, "already exists"},
		{"keys without --out", nil, []string{"keys", "generate"}, 2, "--out"},
		{"keys over existing pair", nil, []string{"keys", "generate", "--out", "rxvault-keys"}, 1, "already exists"},
		{"unknown command", nil, []string{"restore-everything"}, 2, "unknown command"},
		{"unknown subcommand", nil, []string{"keys", "rotate-all"}, 2, "unknown command"},
	} {
		code, _, errOut := rxvault(t, bin, dir, tc.env, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "rxvault: ") {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and one line naming %q", tc.name, code, errOut, tc.code, tc.want)
		}
	}

	st, err := os.Stat(filepath.Join(dir, "rxvault-keys", "identity.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("identity.key: %v, mode %v", err, st.Mode().Perm())
	}
}
