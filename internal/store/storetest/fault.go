package storetest

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/rxvault/rxvault/internal/store"
)

// ErrInjected is the default error FaultStore injects, marked transient.
var ErrInjected = store.Transient(errors.New("injected fault"))

// FaultStore wraps a store and injects failures, for testing retries. The
// zero counts inject nothing. Set the counts before sharing the store;
// after that it is safe for concurrent use.
type FaultStore struct {
	store.Store

	mu sync.Mutex
	// FailFirst makes the next FailFirst calls (of any method) fail with
	// Err without reaching the store.
	FailFirst int
	// LoseAcks makes the next LoseAcks Puts and Deletes reach the store and
	// then report Err, as when a response is lost after the write landed.
	LoseAcks int
	// Err is the injected error; nil means ErrInjected.
	Err error
	// Calls counts calls by method name ("Put", "Get", ...), including
	// failed ones.
	Calls map[string]int
}

// NewFaultStore wraps s, failing its first failFirst calls with err (nil
// means ErrInjected).
func NewFaultStore(s store.Store, failFirst int, err error) *FaultStore {
	return &FaultStore{Store: s, FailFirst: failFirst, Err: err}
}

// Count returns how many times method was called.
func (f *FaultStore) Count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Calls[method]
}

// before records a call and returns the error to inject up front, if any.
func (f *FaultStore) before(method string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Calls == nil {
		f.Calls = map[string]int{}
	}
	f.Calls[method]++
	if f.FailFirst > 0 {
		f.FailFirst--
		return f.err()
	}
	return nil
}

// loseAck turns a successful write into the injected error, if asked.
func (f *FaultStore) loseAck(err error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil && f.LoseAcks > 0 {
		f.LoseAcks--
		return f.err()
	}
	return err
}

func (f *FaultStore) err() error {
	if f.Err != nil {
		return f.Err
	}
	return ErrInjected
}

// Put implements store.Store.
func (f *FaultStore) Put(ctx context.Context, name string, body io.ReadSeeker, size int64) error {
	if err := f.before("Put"); err != nil {
		return err
	}
	return f.loseAck(f.Store.Put(ctx, name, body, size))
}

// Get implements store.Store.
func (f *FaultStore) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := f.before("Get"); err != nil {
		return nil, err
	}
	return f.Store.Get(ctx, name)
}

// Stat implements store.Store.
func (f *FaultStore) Stat(ctx context.Context, name string) (store.ObjectInfo, error) {
	if err := f.before("Stat"); err != nil {
		return store.ObjectInfo{}, err
	}
	return f.Store.Stat(ctx, name)
}

// List implements store.Store.
func (f *FaultStore) List(ctx context.Context, opts store.ListOptions) (store.Page, error) {
	if err := f.before("List"); err != nil {
		return store.Page{}, err
	}
	return f.Store.List(ctx, opts)
}

// Retention implements store.Store.
func (f *FaultStore) Retention(ctx context.Context, name string) (store.Retention, error) {
	if err := f.before("Retention"); err != nil {
		return store.Retention{}, err
	}
	return f.Store.Retention(ctx, name)
}

// SetRetention implements store.Store.
func (f *FaultStore) SetRetention(ctx context.Context, name string, until time.Time) error {
	if err := f.before("SetRetention"); err != nil {
		return err
	}
	return f.Store.SetRetention(ctx, name, until)
}

// SetLegalHold implements store.Store.
func (f *FaultStore) SetLegalHold(ctx context.Context, name string, on bool) error {
	if err := f.before("SetLegalHold"); err != nil {
		return err
	}
	return f.Store.SetLegalHold(ctx, name, on)
}

// Delete implements store.Store.
func (f *FaultStore) Delete(ctx context.Context, name string) error {
	if err := f.before("Delete"); err != nil {
		return err
	}
	return f.loseAck(f.Store.Delete(ctx, name))
}
