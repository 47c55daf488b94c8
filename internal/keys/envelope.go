package keys

import (
	"crypto/hpke"
	"fmt"
	"strings"
)

// MaxEnvelopes bounds the recipients one object may be wrapped to.
const MaxEnvelopes = 16

// MaxWrappedSize bounds the size of one wrapped data key in bytes.
const MaxWrappedSize = 4096

// Envelope is a data key wrapped to one recipient.
type Envelope struct {
	KeyID KeyID
	// Wrapped is the HPKE single-shot output: the encapsulated key followed
	// by the AES-256-GCM ciphertext of the data key.
	Wrapped []byte
}

// Wrap wraps dataKey to every recipient. info binds the envelopes to their
// object (callers pass bytes unique to it, such as a random salt stored in
// the object's header); the same info must be given to Unwrap.
func Wrap(dataKey, info []byte, recipients []*Recipient) ([]Envelope, error) {
	if len(dataKey) != DataKeySize {
		return nil, fmt.Errorf("wrap: data key is %d bytes, want %d", len(dataKey), DataKeySize)
	}
	if len(recipients) == 0 || len(recipients) > MaxEnvelopes {
		return nil, fmt.Errorf("wrap: %d recipients, want 1 to %d", len(recipients), MaxEnvelopes)
	}
	envs := make([]Envelope, 0, len(recipients))
	seen := make(map[KeyID]bool, len(recipients))
	for _, r := range recipients {
		if seen[r.id] {
			continue
		}
		seen[r.id] = true
		ct, err := hpke.Seal(r.pub, kdf(), aead(), info, dataKey)
		if err != nil {
			return nil, fmt.Errorf("wrap to %s: %w", r.id, err)
		}
		envs = append(envs, Envelope{KeyID: r.id, Wrapped: ct})
	}
	return envs, nil
}

// Unwrap finds an envelope addressed to one of ids and returns the data
// key. It returns an error wrapping ErrNoIdentity, naming the key ids the
// object was wrapped to, when no identity matches. An envelope that matches
// an identity but does not open is an error too (it is corrupt or was
// tampered with); Unwrap then tries the remaining matches first.
func Unwrap(envs []Envelope, info []byte, ids []*Identity) ([]byte, error) {
	var openErr error
	for _, e := range envs {
		for _, id := range ids {
			if id.id != e.KeyID {
				continue
			}
			key, err := hpke.Open(id.priv, kdf(), aead(), info, e.Wrapped)
			if err != nil {
				openErr = fmt.Errorf("envelope for key %s does not open: %w", e.KeyID, err)
				continue
			}
			if len(key) != DataKeySize {
				openErr = fmt.Errorf("envelope for key %s holds %d bytes, want %d", e.KeyID, len(key), DataKeySize)
				continue
			}
			return key, nil
		}
	}
	if openErr != nil {
		return nil, openErr
	}
	want := make([]string, len(envs))
	for i, e := range envs {
		want[i] = e.KeyID.String()
	}
	have := make([]string, len(ids))
	for i, id := range ids {
		have[i] = id.id.String()
	}
	return nil, fmt.Errorf("%w: object is wrapped to key id(s) %s, given identities have %s",
		ErrNoIdentity, strings.Join(want, ", "), orNone(strings.Join(have, ", ")))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
