// Package keys holds rxvault's asymmetric keys and the wrapping of data keys.
//
// An Identity is a private key: it opens the archive and must be kept away
// from the agent host. A Recipient is the matching public key: it goes in
// the agent's configuration and can only seal. Every segment and base backup
// is encrypted under a fresh 256-bit data key, and that data key is wrapped
// to each configured recipient with HPKE (RFC 9180, Go's crypto/hpke) using
// the suite KEM ML-KEM-768+P-256 (hybrid, post-quantum), KDF HKDF-SHA256 and
// AEAD AES-256-GCM. Each wrapped copy, an Envelope, carries the recipient's
// KeyID so that a restore finds the matching identity without trial
// decryption. Rotation is adding a new recipient to the configuration: new
// objects are wrapped to it, old ones still open with the old identity.
//
// Text forms (one line each, fit in YAML):
//
//	recipient: rxvault-pub-v1:<base64 (no padding) of kem id (2 bytes, big endian) || public key>
//	identity:  rxvault-sec-v1:<base64 (no padding) of kem id (2 bytes, big endian) || private key>
//
// An identity file holds one or more identity lines; lines starting with #
// and blank lines are ignored.
package keys

import (
	"crypto/hpke"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Text prefixes of the key encodings.
const (
	RecipientPrefix = "rxvault-pub-v1:"
	IdentityPrefix  = "rxvault-sec-v1:"
)

// DataKeySize is the size of a data key in bytes (AES-256).
const DataKeySize = 32

// Errors callers branch on.
var (
	// ErrNoIdentity: none of the given identities matches any envelope.
	ErrNoIdentity = errors.New("no matching identity")
	// ErrMalformedKey: a key's text form cannot be parsed.
	ErrMalformedKey = errors.New("malformed key")
)

var b64 = base64.RawStdEncoding

// kem returns the KEM for id, accepting only the suites rxvault supports.
func kem(id uint16) (hpke.KEM, error) {
	if id != hpke.MLKEM768P256().ID() {
		return nil, fmt.Errorf("%w: unsupported KEM 0x%04x", ErrMalformedKey, id)
	}
	return hpke.MLKEM768P256(), nil
}

func kdf() hpke.KDF   { return hpke.HKDFSHA256() }
func aead() hpke.AEAD { return hpke.AES256GCM() }

// KeyID names a key pair. It is the first 8 bytes of
// SHA-256("rxvault key id v1" || kem id || public key).
type KeyID [8]byte

// String returns the key id in hex.
func (id KeyID) String() string { return hex.EncodeToString(id[:]) }

func keyIDOf(pub hpke.PublicKey) KeyID {
	h := sha256.New()
	h.Write([]byte("rxvault key id v1"))
	var kid [2]byte
	binary.BigEndian.PutUint16(kid[:], pub.KEM().ID())
	h.Write(kid[:])
	h.Write(pub.Bytes())
	var id KeyID
	copy(id[:], h.Sum(nil))
	return id
}

// Recipient is a public key that data keys are wrapped to.
type Recipient struct {
	pub hpke.PublicKey
	id  KeyID
}

// ID returns the recipient's key id.
func (r *Recipient) ID() KeyID { return r.id }

// String returns the recipient's one-line text form.
func (r *Recipient) String() string {
	return RecipientPrefix + encodeKey(r.pub.KEM().ID(), r.pub.Bytes())
}

// ParseRecipient parses a recipient's text form. Surrounding whitespace is
// ignored.
func ParseRecipient(s string) (*Recipient, error) {
	id, raw, err := decodeKey(strings.TrimSpace(s), RecipientPrefix)
	if err != nil {
		return nil, fmt.Errorf("parse recipient: %w", err)
	}
	k, err := kem(id)
	if err != nil {
		return nil, fmt.Errorf("parse recipient: %w", err)
	}
	pub, err := k.NewPublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("parse recipient: %w: %w", ErrMalformedKey, err)
	}
	return &Recipient{pub: pub, id: keyIDOf(pub)}, nil
}

// Identity is a private key that unwraps data keys.
type Identity struct {
	priv hpke.PrivateKey
	id   KeyID
}

// GenerateIdentity makes a new key pair with the default suite.
func GenerateIdentity() (*Identity, error) {
	priv, err := hpke.MLKEM768P256().GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return &Identity{priv: priv, id: keyIDOf(priv.PublicKey())}, nil
}

// ID returns the identity's key id (the same as its recipient's).
func (i *Identity) ID() KeyID { return i.id }

// Recipient returns the public half of the identity.
func (i *Identity) Recipient() *Recipient {
	return &Recipient{pub: i.priv.PublicKey(), id: i.id}
}

// String returns the identity's one-line text form. It is secret.
func (i *Identity) String() string {
	raw, err := i.priv.Bytes()
	if err != nil {
		// Bytes fails only for keys built from opaque crypto.Decapsulator
		// values, which this package never makes.
		return "<unserializable identity>"
	}
	return IdentityPrefix + encodeKey(i.priv.KEM().ID(), raw)
}

// ParseIdentity parses one identity line.
func ParseIdentity(s string) (*Identity, error) {
	id, raw, err := decodeKey(strings.TrimSpace(s), IdentityPrefix)
	if err != nil {
		return nil, fmt.Errorf("parse identity: %w", err)
	}
	k, err := kem(id)
	if err != nil {
		return nil, fmt.Errorf("parse identity: %w", err)
	}
	priv, err := k.NewPrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("parse identity: %w: %w", ErrMalformedKey, err)
	}
	return &Identity{priv: priv, id: keyIDOf(priv.PublicKey())}, nil
}

func encodeKey(kemID uint16, raw []byte) string {
	buf := make([]byte, 2+len(raw))
	binary.BigEndian.PutUint16(buf, kemID)
	copy(buf[2:], raw)
	return b64.EncodeToString(buf)
}

func decodeKey(s, prefix string) (uint16, []byte, error) {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return 0, nil, fmt.Errorf("%w: does not start with %q", ErrMalformedKey, prefix)
	}
	buf, err := b64.DecodeString(rest)
	if err != nil || len(buf) < 3 {
		return 0, nil, fmt.Errorf("%w: bad base64 after %q", ErrMalformedKey, prefix)
	}
	return binary.BigEndian.Uint16(buf), buf[2:], nil
}
