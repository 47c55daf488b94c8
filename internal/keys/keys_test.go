package keys_test

import (
	"bytes"
	"crypto/fips140"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rxvault/rxvault/internal/keys"
)

func gen(t *testing.T) *keys.Identity {
	t.Helper()
	id, err := keys.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestTextForms(t *testing.T) {
	id := gen(t)
	rec := id.Recipient()
	if got, want := rec.ID(), id.ID(); got != want {
		t.Fatalf("recipient id %s, identity id %s", got, want)
	}
	s := rec.String()
	if !strings.HasPrefix(s, keys.RecipientPrefix) || strings.ContainsAny(s, " \n\t#\"'") || strings.Count(s, ":") != 1 {
		t.Errorf("recipient text %q is not one YAML-safe token", s)
	}
	back, err := keys.ParseRecipient("  " + s + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := back.ID(), rec.ID(); got != want {
		t.Errorf("parsed recipient id %s, want %s", got, want)
	}
	idBack, err := keys.ParseIdentity(id.String())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := idBack.ID(), id.ID(); got != want {
		t.Errorf("parsed identity id %s, want %s", got, want)
	}
	for _, bad := range []string{"", "rxvault-pub-v1:", "rxvault-pub-v1:!!!", keys.RecipientPrefix + "AAAA", id.String(), "age1xyz"} {
		if _, err := keys.ParseRecipient(bad); !errors.Is(err, keys.ErrMalformedKey) {
			t.Errorf("ParseRecipient(%.20q): err %v, want ErrMalformedKey", bad, err)
		}
	}
	if _, err := keys.ParseIdentity(s); !errors.Is(err, keys.ErrMalformedKey) {
		t.Errorf("ParseIdentity(recipient): err %v, want ErrMalformedKey", err)
	}
}

func TestWrapUnwrap(t *testing.T) {
	a, b, c := gen(t), gen(t), gen(t)
	dk := bytes.Repeat([]byte{7}, keys.DataKeySize)
	info := []byte("object-1")
	envs, err := keys.Wrap(dk, info, []*keys.Recipient{a.Recipient(), b.Recipient(), a.Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(envs), 2; got != want {
		t.Fatalf("%d envelopes for 2 distinct recipients", got)
	}
	for _, ids := range [][]*keys.Identity{{a}, {b}, {c, b}} {
		got, err := keys.Unwrap(envs, info, ids)
		if err != nil || !bytes.Equal(got, dk) {
			t.Errorf("Unwrap with %d ids: %x, %v", len(ids), got, err)
		}
	}
	if _, err := keys.Unwrap(envs, info, []*keys.Identity{c}); !errors.Is(err, keys.ErrNoIdentity) {
		t.Errorf("foreign identity: err %v, want ErrNoIdentity", err)
	}
	if !strings.Contains(fmtErr(keys.Unwrap(envs, info, []*keys.Identity{c})), a.ID().String()) {
		t.Errorf("ErrNoIdentity message does not name the key ids the object needs")
	}
	// Info binds envelopes to their object.
	if _, err := keys.Unwrap(envs, []byte("object-2"), []*keys.Identity{a}); err == nil || errors.Is(err, keys.ErrNoIdentity) {
		t.Errorf("envelope opened under other info: err %v", err)
	}
	// A tampered envelope does not open and is not mistaken for a missing key.
	bad := append([]keys.Envelope(nil), envs...)
	bad[0].Wrapped = bytes.Clone(bad[0].Wrapped)
	bad[0].Wrapped[len(bad[0].Wrapped)-1] ^= 1
	if _, err := keys.Unwrap(bad[:1], info, []*keys.Identity{a}); err == nil || errors.Is(err, keys.ErrNoIdentity) {
		t.Errorf("tampered envelope: err %v", err)
	}
	if _, err := keys.Wrap(dk[:16], info, []*keys.Recipient{a.Recipient()}); err == nil {
		t.Error("Wrap accepted a 16-byte data key")
	}
	if _, err := keys.Wrap(dk, info, nil); err == nil {
		t.Error("Wrap accepted no recipients")
	}
}

func fmtErr(_ []byte, err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestWriteAndLoadKeyPair(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	id, err := keys.WriteKeyPair(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	idPath := filepath.Join(dir, keys.IdentityFileName)
	st, err := os.Stat(idPath)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Errorf("identity file mode %v, want %v", got, want)
	}
	dst, _ := os.Stat(dir)
	if got, want := dst.Mode().Perm(), os.FileMode(0o700); got != want {
		t.Errorf("key dir mode %v, want %v", got, want)
	}
	ids, err := keys.LoadIdentityFile(idPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || ids[0].ID() != id.ID() {
		t.Fatalf("loaded %d identities", len(ids))
	}
	recText, err := os.ReadFile(filepath.Join(dir, keys.RecipientFileName))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(recText), "\n"); got != 1 {
		t.Errorf("recipient file has %d lines, want 1", got)
	}
	rec, err := keys.ParseRecipient(string(recText))
	if err != nil || rec.ID() != id.ID() {
		t.Errorf("recipient file: %v", err)
	}
	// Never overwrite a key in use.
	if _, err := keys.WriteKeyPair(dir, time.Now()); err == nil {
		t.Error("WriteKeyPair replaced an existing key pair")
	}
	again, _ := keys.LoadIdentityFile(idPath)
	if again[0].ID() != id.ID() {
		t.Error("identity changed by the refused second WriteKeyPair")
	}
	// A world-readable identity is refused with the fix in the message.
	if err := os.Chmod(idPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.LoadIdentityFile(idPath); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable identity: err %v", err)
	}
}

func TestParseIdentitiesFile(t *testing.T) {
	a, b := gen(t), gen(t)
	text := "# old key\n" + a.String() + "\n\n   # new key\n" + b.String() + "\n"
	ids, err := keys.ParseIdentities(strings.NewReader(text))
	if err != nil || len(ids) != 2 {
		t.Fatalf("got %d identities, %v", len(ids), err)
	}
	_, err = keys.ParseIdentities(strings.NewReader("# nothing\n"))
	if !errors.Is(err, keys.ErrMalformedKey) {
		t.Errorf("empty file: err %v", err)
	}
	_, err = keys.ParseIdentities(strings.NewReader("rxvault-sec-v1:c2VjcmV0\n"))
	if err == nil || strings.Contains(err.Error(), "c2VjcmV0") {
		t.Errorf("bad line: err %v must not echo the line", err)
	}
}

// TestFIPSMode proves the FIPS run really runs in FIPS 140-3 mode: make
// test sets RXVAULT_EXPECT_FIPS=1 together with GODEBUG=fips140=on.
func TestFIPSMode(t *testing.T) {
	if os.Getenv("RXVAULT_EXPECT_FIPS") == "1" && !fips140.Enabled() {
		t.Fatal("RXVAULT_EXPECT_FIPS=1 but FIPS 140-3 mode is off: run with GODEBUG=fips140=on")
	}
	t.Logf("FIPS 140-3 mode: %t", fips140.Enabled())
}
