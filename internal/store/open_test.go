package store_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rxvault/rxvault/internal/store"
)

func TestOpenBadURLs(t *testing.T) {
	creds := store.Options{Credentials: store.Credentials{AccessKeyID: "id", SecretAccessKey: "secret"}}
	for _, tc := range []struct{ url, want string }{
		{"ftp://host/x", `unknown scheme "ftp"`},
		{"/var/lib/rxvault", `unknown scheme ""`},
		{"file://relative/path", "absolute path"},
		{"file:relative", "absolute path"},
		{"file:///tmp/x?lock=bogus", `unknown lock mode "bogus"`},
		{"file:///tmp/x?lock=compliance", "needs a positive retention"},
		{"file:///tmp/x?retention=soon", "retention=soon"},
		{"file:///tmp/x?colour=red", `unknown parameter "colour"`},
		{"file:///tmp/x?lock=none&lock=none", `given 2 times`},
		{"s3:///prefix?endpoint=127.0.0.1:9", "no bucket"},
		{"s3://user:pw@bucket?endpoint=127.0.0.1:9", "credentials in the URL"},
		{"s3://bucket?endpoint=127.0.0.1:9&tls=maybe&lock=none", "tls=maybe"},
		{"s3://bucket?endpoint=127.0.0.1:9&tls=false&ca_file=/x&lock=none", "ca_file"},
		{"s3://bucket?endpoint=127.0.0.1:9&lock=compliance", "needs a positive retention"},
		{"s3://b?endpoint=127.0.0.1:9&lock=none", `bucket "b"`},
		{"s3://bucket/.hidden?endpoint=127.0.0.1:9&lock=none", "prefix"},
		{"s3://bucket?endpoint=192.0.2.1:9000&tls=false&lock=none", "loopback"},
		{"://", "store URL"},
	} {
		// CheckURL finds the same problems without touching a store.
		if err := store.CheckURL(tc.url, store.Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckURL(%q) = %v, want it to mention %q", tc.url, err, tc.want)
		}
		_, err := store.Open(t.Context(), tc.url, creds)
		if err == nil {
			t.Errorf("Open(%q) succeeded, want an error", tc.url)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) = %q, want it to mention %q", tc.url, err, tc.want)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("Open(%q) error is not one line: %q", tc.url, err)
		}
		if strings.Contains(err.Error(), "pw") && strings.Contains(tc.url, "pw") {
			t.Errorf("Open(%q) error shows the password: %q", tc.url, err)
		}
	}
}

func TestCheckURLAcceptsGoodURLs(t *testing.T) {
	opts := store.Options{Mode: store.LockCompliance, Retention: time.Hour}
	for _, u := range []string{
		"file:///var/lib/rxvault/archive",
		"file:///x?lock=none",
		"s3://bucket/prefix/a?endpoint=s3.example.com&region=eu-west-1&retention=90d",
		"s3://bucket?endpoint=127.0.0.1:9000&tls=false&lock=governance",
	} {
		if err := store.CheckURL(u, opts); err != nil {
			t.Errorf("CheckURL(%q): %v", u, err)
		}
	}
}

func TestOpenS3NeedsCredentials(t *testing.T) {
	_, err := store.Open(t.Context(), "s3://bucket?endpoint=127.0.0.1:9&tls=false&lock=none", store.Options{})
	if err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Errorf("Open without credentials = %v, want a hint about AWS_ACCESS_KEY_ID", err)
	}
}

func TestOpenFile(t *testing.T) {
	dir := t.TempDir()
	s, err := store.Open(t.Context(), "file://"+dir+"?retention=90d", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.String(), "file://"+dir; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	putBytes(t, s, "x", []byte("1"))
	r, err := s.Retention(t.Context(), "x")
	if err != nil {
		t.Fatal(err)
	}
	// The default mode is compliance.
	if got, want := r.Mode, store.LockCompliance; got != want {
		t.Errorf("Mode = %q, want %q", got, want)
	}
}

func TestCredentialsHideSecrets(t *testing.T) {
	c := store.CredentialsFromEnv(func(k string) string {
		return map[string]string{
			"AWS_ACCESS_KEY_ID":     "AKIDEXAMPLE",
			"AWS_SECRET_ACCESS_KEY": "s3cr3t-key",
			"AWS_SESSION_TOKEN":     "t0ken",
		}[k]
	})
	if got, want := c.SecretAccessKey, "s3cr3t-key"; got != want {
		t.Errorf("SecretAccessKey = %q, want %q", got, want)
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("creds", "c", c)
	out := fmt.Sprintf("%v %+v %#v %s", c, c, c, c) + buf.String() + fmt.Sprint(store.Options{Credentials: c})
	for _, secret := range []string{"s3cr3t-key", "t0ken"} {
		if strings.Contains(out, secret) {
			t.Errorf("secret %q printed: %s", secret, out)
		}
	}
	if !strings.Contains(out, "AKIDEXAMPLE") {
		t.Errorf("access key id not shown: %s", out)
	}
}
