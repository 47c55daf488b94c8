package keys

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rxvault/rxvault/internal/fsutil"
)

// File names written by WriteKeyPair.
const (
	IdentityFileName  = "identity.key"
	RecipientFileName = "recipient.txt"
)

// ParseIdentities reads identity lines from r, skipping blank lines and
// lines starting with #. It fails if no identity is found.
func ParseIdentities(r io.Reader) ([]*Identity, error) {
	var ids []*Identity
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, err := ParseIdentity(line)
		if err != nil {
			// Never echo the line: it may be a secret.
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		ids = append(ids, id)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read identities: %w", err)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: no %q line found", ErrMalformedKey, IdentityPrefix)
	}
	return ids, nil
}

// LoadIdentityFile reads an identity file. It refuses a file that group or
// others can read or write, as ssh does for private keys.
func LoadIdentityFile(path string) ([]*Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("identity file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("identity file: %w", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("identity file %s has mode %04o, readable by others: run chmod 600 %s", path, perm, path)
	}
	ids, err := ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("identity file %s: %w", path, err)
	}
	return ids, nil
}

// LoadIdentityFiles loads and concatenates several identity files, for
// restores that span a key rotation.
func LoadIdentityFiles(paths []string) ([]*Identity, error) {
	var all []*Identity
	for _, p := range paths {
		ids, err := LoadIdentityFile(p)
		if err != nil {
			return nil, err
		}
		all = append(all, ids...)
	}
	return all, nil
}

// WriteKeyPair generates a key pair and writes it into dir (created 0700 if
// missing): IdentityFileName with mode 0600 and RecipientFileName with mode
// 0644. It refuses to replace existing files, so a key in use is never lost.
// It returns the new identity.
func WriteKeyPair(dir string, now time.Time) (*Identity, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create key dir: %w", err)
	}
	idPath := filepath.Join(dir, IdentityFileName)
	recPath := filepath.Join(dir, RecipientFileName)
	for _, p := range []string{idPath, recPath} {
		if _, err := os.Lstat(p); err == nil {
			return nil, fmt.Errorf("%s already exists: move it away or choose another --out directory", p)
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("check %s: %w", p, err)
		}
	}
	id, err := GenerateIdentity()
	if err != nil {
		return nil, err
	}
	rec := id.Recipient()
	idText := fmt.Sprintf(`# rxvault identity: a PRIVATE key. Whoever holds this file can read the archive.
# Keep it off the agent host (offline, in a vault or HSM-backed secret store);
# restores need it. Losing every identity a segment was sealed to makes that
# segment unreadable forever.
# created: %s
# key id: %s
# recipient: %s
%s
`, now.UTC().Format(time.RFC3339), id.ID(), rec, id)
	if err := fsutil.CreateExclusive(idPath, []byte(idText), 0o600); err != nil {
		return nil, fmt.Errorf("write identity: %w", err)
	}
	if err := fsutil.CreateExclusive(recPath, []byte(rec.String()+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("write recipient: %w", err)
	}
	return id, nil
}
