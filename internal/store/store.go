// Package store defines rxvault's object storage contract and its
// implementations: a local file store (the embedded default) and S3 with
// Object Lock.
//
// Every store is write-once: an object, once written, is never overwritten
// or rewritten in place, and it cannot be deleted while it is retained or
// under legal hold. Retention can be extended but never shortened.
//
// Object names are slash-separated relative paths made of the characters
// [A-Za-z0-9._-] and "/"; no component may be empty, "." or "..", or start
// with "."; names are at most 1024 bytes. ValidName checks this.
//
// A name should not also be a directory of other names ("a" and "a/b"):
// S3 allows it, but the file store mirrors names as paths and refuses the
// second Put with ErrInvalidName. rxvault's own layout never does this.
package store

import (
	"context"
	"errors"
	"io"
	"time"
)

// Errors that callers branch on. Implementations wrap them with context;
// test with errors.Is.
var (
	// ErrExists: Put refused because an object of that name already exists.
	ErrExists = errors.New("object already exists")
	// ErrNotExist: the object does not exist.
	ErrNotExist = errors.New("object does not exist")
	// ErrLocked: a delete was refused because the object is retained or
	// under legal hold.
	ErrLocked = errors.New("object is locked by retention or legal hold")
	// ErrRetentionShortened: SetRetention was refused because the new date
	// is earlier than the current one.
	ErrRetentionShortened = errors.New("retention can only be extended")
	// ErrInvalidName: the object name breaks the naming rules.
	ErrInvalidName = errors.New("invalid object name")
)

// LockMode is the immutability mode applied to objects.
type LockMode string

// Lock modes. They have S3 Object Lock's meaning; the file store enforces
// both the same way (it has no bypass), and neither protects against root.
const (
	LockNone       LockMode = "none"
	LockGovernance LockMode = "governance"
	LockCompliance LockMode = "compliance"
)

// Retention is the lock state of one object.
type Retention struct {
	Mode        LockMode  // LockNone when the object has no retention
	RetainUntil time.Time // zero when Mode is LockNone
	LegalHold   bool
}

// Locked reports whether the object may not be deleted at instant now.
func (r Retention) Locked(now time.Time) bool {
	return r.LegalHold || (r.Mode != LockNone && now.Before(r.RetainUntil))
}

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Name    string
	Size    int64
	ModTime time.Time // informational only: never a source of commit times
}

// ListOptions selects one page of a listing.
type ListOptions struct {
	Prefix     string // only names with this prefix
	StartAfter string // only names sorting strictly after this one ("" = from the start)
	Limit      int    // at most this many; <= 0 means the implementation's default page (1000)
}

// Page is one page of a listing, in ascending byte order of Name.
type Page struct {
	Objects []ObjectInfo
	// Next is the StartAfter of the following page, or "" when this page
	// is the last.
	Next string
}

// Store is one archive location. All methods are safe for concurrent use.
type Store interface {
	// Put writes the object name with exactly size bytes read from body,
	// with the store's lock mode and a retain-until date of now plus the
	// store's retention. It is atomic: readers see the whole object or
	// nothing. If the name exists it returns an error wrapping ErrExists
	// and changes nothing. body may be read more than once (it is rewound
	// with Seek for retries).
	Put(ctx context.Context, name string, body io.ReadSeeker, size int64) error

	// Get opens the object for streaming. The caller closes the reader.
	// A missing object is an error wrapping ErrNotExist.
	Get(ctx context.Context, name string) (io.ReadCloser, error)

	// Stat returns the object's info, or an error wrapping ErrNotExist.
	Stat(ctx context.Context, name string) (ObjectInfo, error)

	// List returns one page of objects whose names start with opts.Prefix,
	// sorted by name. Use Walk to visit every page.
	List(ctx context.Context, opts ListOptions) (Page, error)

	// Retention reads the object's lock state.
	Retention(ctx context.Context, name string) (Retention, error)

	// SetRetention moves the object's retain-until date to until, keeping
	// its mode (an object without retention gets the store's mode). A date
	// earlier than the current one is refused with ErrRetentionShortened.
	SetRetention(ctx context.Context, name string, until time.Time) error

	// SetLegalHold turns the object's legal hold on or off.
	SetLegalHold(ctx context.Context, name string, on bool) error

	// Delete removes the object. It is refused with an error wrapping
	// ErrLocked while the object is retained or under legal hold.
	Delete(ctx context.Context, name string) error

	// String returns the store's location for messages, without secrets.
	String() string
}
