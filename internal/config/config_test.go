package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rxvault/rxvault/internal/config"
	"github.com/rxvault/rxvault/internal/keys"
)

func recipient(t *testing.T) string {
	t.Helper()
	id, err := keys.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return id.Recipient().String()
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rxvault.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsAreValid(t *testing.T) {
	cfg, err := config.Load(config.Sources{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Segment.Interval, 5*time.Second; got != want {
		t.Errorf("segment.interval %s, want %s", got, want)
	}
	if got, want := cfg.Monitor.Listen, "127.0.0.1:9187"; got != want {
		t.Errorf("monitor.listen %s, want loopback %s", got, want)
	}
}

// TestTemplateRoundTrip: the file 'rxvault init' writes loads, and holds
// every key rxvault knows.
func TestTemplateRoundTrip(t *testing.T) {
	rec := recipient(t)
	text, err := config.Template(config.TemplateData{Recipient: rec, Store: "file:///srv/archive", SpoolDir: "/srv/spool"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.Sources{Path: writeFile(t, text), Explicit: true})
	if err != nil {
		t.Fatalf("template does not load: %v", err)
	}
	if got, want := cfg.Keys.Recipients, []string{rec}; len(got) != 1 || got[0] != want[0] {
		t.Errorf("recipients %v", got)
	}
	if got, want := cfg.Archive.Stores[0], "file:///srv/archive"; got != want {
		t.Errorf("store %s, want %s", got, want)
	}
	def := config.Default()
	if cfg.Archive.Retention != def.Archive.Retention || cfg.Segment.MaxBytes != def.Segment.MaxBytes || cfg.Backup.Interval != def.Backup.Interval {
		t.Errorf("template values differ from defaults: %+v", cfg)
	}
	for _, k := range config.KeyNames() {
		_, key, _ := strings.Cut(k, ".")
		if !strings.Contains(text, "\n  "+key+":") {
			t.Errorf("template lacks key %s", k)
		}
	}
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "segment:\n  interval: 3s\n  max_bytes: 2MiB\nlog:\n  level: debug\n")
	env := []string{"RXVAULT_SEGMENT_INTERVAL=4s", "RXVAULT_ARCHIVE_STORES=file:///a, file:///b", "RXVAULT_UNRELATED=1", "PATH=/bin"}
	cfg, err := config.Load(config.Sources{Path: file, Env: env, Set: []string{"log.level=warn"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Segment.Interval, 4*time.Second; got != want {
		t.Errorf("segment.interval %s: environment must beat the file (%s)", got, want)
	}
	if got, want := cfg.Segment.MaxBytes, config.ByteSize(2<<20); got != want {
		t.Errorf("segment.max_bytes %d, want %d from the file", got, want)
	}
	if got, want := cfg.Log.Level, "warn"; got != want {
		t.Errorf("log.level %s: --set must beat the file", got)
	}
	if got := cfg.Archive.Stores; len(got) != 2 || got[0] != "file:///a" || got[1] != "file:///b" {
		t.Errorf("stores from env %q", got)
	}
	cfg, err = config.Load(config.Sources{Path: file, Env: env, Set: []string{"segment.interval=2s"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Segment.Interval, 2*time.Second; got != want {
		t.Errorf("segment.interval %s: --set must beat the environment", got)
	}
}

func TestMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	if _, err := config.Load(config.Sources{Path: missing}); err != nil {
		t.Errorf("default path missing must mean defaults: %v", err)
	}
	_, err := config.Load(config.Sources{Path: missing, Explicit: true})
	if err == nil || !strings.Contains(err.Error(), "rxvault init") {
		t.Errorf("explicit missing file: err %v", err)
	}
}

// TestBadInput checks each bad value is refused with a one-line error that
// names the key, shows the value and gives a fix.
func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		env, set   []string
		key        string // the key the error must name
	}{
		{name: "misspelt key", file: "segement:\n  interval: 5s\n", key: "segement.interval"},
		{name: "bad yaml", file: "segment: [\n", key: "YAML"},
		{name: "bad duration", set: []string{"segment.interval=5 seconds"}, key: "segment.interval"},
		{name: "interval too short", set: []string{"segment.interval=500ms"}, key: "segment.interval"},
		{name: "bad size", env: []string{"RXVAULT_SEGMENT_MAX_BYTES=lots"}, key: "segment.max_bytes"},
		{name: "size too small", set: []string{"segment.max_bytes=1KB"}, key: "segment.max_bytes"},
		{name: "lock mode", set: []string{"archive.lock_mode=compliant"}, key: "archive.lock_mode"},
		{name: "relative file store", set: []string{"archive.stores=file://archive"}, key: "archive.stores"},
		{name: "unknown store scheme", set: []string{"archive.stores=ftp://x/y"}, key: "archive.stores"},
		{name: "s3 credentials in url", set: []string{"archive.stores=s3://AKIA:secret@bucket/p"}, key: "archive.stores"},
		{name: "no stores", set: []string{"archive.stores="}, key: "archive.stores"},
		{name: "bad recipient", set: []string{"keys.recipients=rxvault-pub-v1:AAAA"}, key: "keys.recipients"},
		{name: "dsn not a URL", set: []string{"source.dsn=db.example/pharmacy"}, key: "source.dsn"},
		{name: "rpo below interval", set: []string{"monitor.rpo=3s"}, key: "monitor.rpo"},
		{name: "listen", set: []string{"monitor.listen=9187"}, key: "monitor.listen"},
		{name: "log level", set: []string{"log.level=loud"}, key: "log.level"},
		{name: "unknown --set key", set: []string{"segment.intervall=5s"}, key: "segment.intervall"},
		{name: "--set without =", set: []string{"segment.interval"}, key: "segment.interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := config.Sources{Env: tc.env, Set: tc.set}
			if tc.file != "" {
				src.Path, src.Explicit = writeFile(t, tc.file), true
			}
			_, err := config.Load(src)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			if !strings.Contains(msg, tc.key) {
				t.Errorf("error %q does not name %s", msg, tc.key)
			}
			var ve *config.ValidationError
			if errors.As(err, &ve) && (ve.Fix == "" || !strings.Contains(msg, "fix:")) {
				t.Errorf("error %q gives no fix", msg)
			}
			if strings.Contains(msg, ":secret@") {
				t.Errorf("error %q leaks a secret", msg)
			}
		})
	}
}

func TestSecretsRedacted(t *testing.T) {
	_, err := config.Load(config.Sources{Set: []string{"source.dsn=//admin:hunter2@db/x"}})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err %v must not show the password", err)
	}
	if got := config.RedactURL("postgres://u:pw@h/db?sslpassword=x&sslmode=require"); strings.Contains(got, ":pw@") || !strings.Contains(got, "sslpassword=xxxxx") {
		t.Errorf("RedactURL left a secret: %s", got)
	}
}

func TestRequire(t *testing.T) {
	cfg := config.Default()
	if err := cfg.RequireSource(); err == nil || !strings.Contains(err.Error(), "source.dsn") {
		t.Errorf("RequireSource: %v", err)
	}
	if _, err := cfg.Recipients(); err == nil || !strings.Contains(err.Error(), "keys generate") {
		t.Errorf("Recipients: %v", err)
	}
	cfg.Keys.Recipients = []string{recipient(t), recipient(t)}
	rs, err := cfg.Recipients()
	if err != nil || len(rs) != 2 {
		t.Errorf("Recipients: %d, %v", len(rs), err)
	}
}

func TestMonitorSettings(t *testing.T) {
	for _, tc := range []struct {
		set  []string
		want string // "" = accepted
	}{
		{[]string{"monitor.listen=0.0.0.0:9187"}, "monitor.listen"},
		{[]string{"monitor.listen=0.0.0.0:9187", "monitor.tls_cert=/c.pem", "monitor.tls_key=/k.pem"}, ""},
		{[]string{"monitor.tls_cert=/c.pem"}, "monitor.tls_cert"},
		{[]string{"monitor.webhook_url=http://alerts.example/hook"}, "monitor.webhook_url"},
		{[]string{"monitor.webhook_url=http://127.0.0.1:9000/hook"}, ""},
		{[]string{"monitor.webhook_url=https://alerts.example/hook", "monitor.webhook_header=X-Secret"}, "monitor.webhook_header"},
		{[]string{"monitor.store_down_after=0s"}, "monitor.store_down_after"},
	} {
		_, err := config.Load(config.Sources{Set: tc.set})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v refused: %v", tc.set, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: err %v, want one naming %s", tc.set, err, tc.want)
		}
	}
	cfg, err := config.Load(config.Sources{Env: []string{"RXVAULT_MONITOR_TOKEN=tok3n"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range config.Effective(&cfg) {
		if strings.Contains(kv[1], "tok3n") {
			t.Errorf("config check would show the token: %s = %s", kv[0], kv[1])
		}
	}
}
