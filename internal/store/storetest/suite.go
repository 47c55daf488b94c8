// Package storetest is the conformance suite every store.Store must pass,
// run against real backends (a directory, a real MinIO with Object Lock),
// plus FaultStore, a wrapper that injects failures to test retries.
package storetest

import (
	"testing"
	"time"

	"github.com/rxvault/rxvault/internal/store"
)

// Factory returns a new, empty store for one test, giving new objects the
// lock mode and retention asked for. It registers any cleanup with t.
type Factory func(t *testing.T, mode store.LockMode, retention time.Duration) store.Store

// Retentions used by the suite: long enough never to pass during a test,
// or short enough to wait out.
const (
	longRetention  = 24 * time.Hour
	shortRetention = 3 * time.Second
)

type testCase struct {
	name string
	fn   func(t *testing.T, newStore Factory, mode store.LockMode)
}

// generic cases hold for every lock mode.
var genericCases = []testCase{
	{"RoundTrip", testRoundTrip},
	{"RoundTripLarge", testRoundTripLarge},
	{"Stat", testStat},
	{"Missing", testMissing},
	{"InvalidNames", testInvalidNames},
	{"OverwriteRefused", testOverwriteRefused},
	{"ConcurrentPut", testConcurrentPut},
	{"ShortBody", testShortBody},
	{"LongBody", testLongBody},
	{"CancelledContext", testCancelledContext},
	{"CancelDuringPut", testCancelDuringPut},
	{"ListPaging", testListPaging},
	{"Walk", testWalk},
}

// lockCases need a lock mode other than none.
var lockCases = []testCase{
	{"RetentionReadBack", testRetentionReadBack},
	{"ExtendRetention", testExtendRetention},
	{"ShortenRetentionRefused", testShortenRetentionRefused},
	{"DeleteLockedRefused", testDeleteLockedRefused},
	{"DeleteAfterExpiry", testDeleteAfterExpiry},
	{"LegalHold", testLegalHold},
}

// noneCases need lock mode none.
var noneCases = []testCase{
	{"NoRetention", testNoRetention},
}

// Run runs the whole suite against stores made by newStore, once per lock
// mode (compliance, governance, none). Cases run in parallel.
func Run(t *testing.T, newStore Factory) {
	for _, mode := range []store.LockMode{store.LockCompliance, store.LockGovernance, store.LockNone} {
		t.Run(string(mode), func(t *testing.T) {
			cases := genericCases
			if mode == store.LockNone {
				cases = append(cases[:len(cases):len(cases)], noneCases...)
			} else {
				cases = append(cases[:len(cases):len(cases)], lockCases...)
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					c.fn(t, newStore, mode)
				})
			}
		})
	}
}
