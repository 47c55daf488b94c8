package store

import (
	"fmt"
	"strings"
	"time"
)

// MaxNameLen is the longest object name, in bytes.
const MaxNameLen = 1024

// ValidName reports whether name follows the naming rules in the package
// documentation, returning an error wrapping ErrInvalidName that says which
// rule it breaks.
func ValidName(name string) error {
	if name == "" {
		return fmt.Errorf("empty name: %w", ErrInvalidName)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("name of %d bytes, longer than %d: %w", len(name), MaxNameLen, ErrInvalidName)
	}
	for _, c := range strings.Split(name, "/") {
		if c == "" {
			return fmt.Errorf("name %q has an empty component: %w", name, ErrInvalidName)
		}
		if c[0] == '.' {
			return fmt.Errorf("name %q has a component starting with '.': %w", name, ErrInvalidName)
		}
		for i := 0; i < len(c); i++ {
			if !nameByte(c[i]) {
				return fmt.Errorf("name %q has byte %q outside [A-Za-z0-9._-/]: %w", name, c[i], ErrInvalidName)
			}
		}
	}
	return nil
}

func nameByte(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '.' || b == '_' || b == '-'
}

// validPrefix checks a listing prefix: empty, or a name, or a name followed
// by "/".
func validPrefix(prefix string) error {
	p := strings.TrimSuffix(prefix, "/")
	if p == "" && prefix == "" {
		return nil
	}
	// A prefix may end in the middle of a component ("seg/0000"), so only
	// its characters and complete components are checked.
	if err := ValidName(p); err != nil {
		return fmt.Errorf("list prefix: %w", err)
	}
	return nil
}

// retainUntil returns now+d rounded up to a whole second, in UTC. S3
// stores retain-until dates with at most millisecond precision and the
// x-amz-object-lock-retain-until-date header has whole seconds, so every
// store rounds the same way, and never down.
func retainUntil(now time.Time, d time.Duration) time.Time {
	return ceilSecond(now.Add(d))
}

func ceilSecond(t time.Time) time.Time {
	t = t.UTC()
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t
}
