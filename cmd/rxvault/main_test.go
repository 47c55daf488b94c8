package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rxvault/rxvault/internal/config"
	"github.com/rxvault/rxvault/internal/keys"
)

// run executes rxvault in-process with args in dir and returns its exit
// code, stdout and stderr as main would produce them.
func run(t *testing.T, dir string, env []string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	g := &globals{stdout: &out, stderr: &errOut, env: env, now: func() time.Time { return time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC) }}
	root := newRootCommand(g)
	root.SetArgs(args)
	t.Chdir(dir)
	err := root.ExecuteContext(t.Context())
	if err != nil {
		errOut.WriteString("rxvault: " + oneLine(err.Error()) + "\n")
	}
	return exitCode(err), out.String(), errOut.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, t.TempDir(), nil, "version")
	if code != exitOK || !strings.HasPrefix(out, "rxvault dev (go1.") || !strings.Contains(out, "segment format v1") {
		t.Errorf("version: exit %d, %q", code, out)
	}
	if code, _, errOut := run(t, t.TempDir(), nil, "version", "extra"); code != exitUsage || !strings.Contains(errOut, "no arguments") {
		t.Errorf("version extra: exit %d, %q", code, errOut)
	}
}

func TestInit(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := run(t, dir, nil, "init", "--store", "file://"+filepath.Join(dir, "archive"), "--spool", filepath.Join(dir, "spool"))
	if code != exitOK {
		t.Fatalf("init: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "off this host") {
		t.Errorf("init output does not warn to move the identity: %q", out)
	}
	cfgPath := filepath.Join(dir, config.DefaultPath)
	st, err := os.Stat(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Errorf("config mode %v, want %v", got, want)
	}
	cfg, err := config.Load(config.Sources{Path: cfgPath, Explicit: true})
	if err != nil {
		t.Fatalf("written config does not load: %v", err)
	}
	ids, err := keys.LoadIdentityFile(filepath.Join(dir, "rxvault-keys", keys.IdentityFileName))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := cfg.Recipients()
	if err != nil || len(recs) != 1 || recs[0].ID() != ids[0].ID() {
		t.Errorf("config recipient does not match the new identity: %v", err)
	}
	before, _ := os.ReadFile(cfgPath)
	if code, _, errOut := run(t, dir, nil, "init"); code != exitUsage || !strings.Contains(errOut, "already exists") {
		t.Errorf("second init: exit %d, %q", code, errOut)
	}
	if after, _ := os.ReadFile(cfgPath); !bytes.Equal(before, after) {
		t.Error("second init changed the config")
	}
}

func TestInitRefusesBadStoreBeforeWriting(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := run(t, dir, nil, "init", "--store", "file://relative")
	if code != exitUsage || !strings.Contains(errOut, "archive.stores") {
		t.Errorf("exit %d, %q", code, errOut)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("refused init left %d entries behind", len(entries))
	}
}

func TestKeysGenerate(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "k")
	code, stdout, errOut := run(t, dir, nil, "keys", "generate", "--out", out)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	rec, err := os.ReadFile(filepath.Join(out, keys.RecipientFileName))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, strings.TrimSpace(string(rec))) {
		t.Error("output does not show the recipient line to paste")
	}
	if code, _, errOut := run(t, dir, nil, "keys", "generate", "--out", out); code == exitOK || !strings.Contains(errOut, "already exists") {
		t.Errorf("regenerate into the same dir: exit %d, %q", code, errOut)
	}
	if code, _, errOut := run(t, dir, nil, "keys", "generate"); code != exitUsage || !strings.Contains(errOut, "--out") {
		t.Errorf("no --out: exit %d, %q", code, errOut)
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	env := []string{"RXVAULT_SOURCE_DSN=postgres://rx:hunter2@db:5432/pharmacy"}
	code, out, errOut := run(t, dir, env, "config", "check", "--set", "segment.interval=2s")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "hunter2") || !strings.Contains(out, "source.dsn = postgres://rx:xxxxx@db:5432/pharmacy") {
		t.Errorf("dsn not shown masked: %q", out)
	}
	if !strings.Contains(out, "segment.interval = 2s") {
		t.Errorf("--set not applied: %q", out)
	}
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"config", "check", "--set", "archive.lock_mode=strict"}, nil, "archive.lock_mode"},
		{[]string{"config", "check"}, []string{"RXVAULT_MONITOR_RPO=forever"}, "monitor.rpo"},
		{[]string{"config", "check", "--config", "missing.yaml"}, nil, "missing.yaml"},
		{[]string{"config", "check", "--nope"}, nil, "unknown flag"},
		// What belongs to the DSN's engine (the engine table's checks).
		{[]string{"config", "check"}, []string{"RXVAULT_SOURCE_DSN=sqlserver://sa@db:1433/pharmacy"}, "source.dsn"},
		{[]string{"config", "check", "--set", "source.id=main"}, []string{"RXVAULT_SOURCE_DSN=postgres://rx@db:5432/pharmacy"}, "source.id"},
		{[]string{"config", "check", "--set", "source.tables=public.rx"}, []string{"RXVAULT_SOURCE_DSN=mysql://rx@db:3306/pharmacy"}, "source.tables"},
		{[]string{"config", "check"}, []string{"RXVAULT_SOURCE_DSN=mysql:///pharmacy"}, "source.dsn"},
	} {
		code, _, errOut := run(t, dir, tc.env, tc.args...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line naming %s", tc.args, code, errOut, tc.want)
		}
	}
}
