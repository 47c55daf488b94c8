// Package monitor is the agent's monitoring endpoint: the recovery point
// lag against the RPO, Prometheus metrics on the agent's own registry, a
// health check, a JSON status, and alerts (log and webhook) that fire once
// per incident and announce recovery.
//
// The agent reports a State every second or so (Update); everything the
// endpoint serves is computed from the latest State and the clock. No row
// data and no secret ever enters a State; as error text from drivers may
// still quote a DSN, Update masks URL passwords and password= settings in
// the text fields before anything is served or alerted.
package monitor

import (
	"regexp"
	"time"
)

// State is what the agent knows at one moment.
type State struct {
	// RecoveryPoint is the newest source instant up to which every
	// committed transaction is durably stored in every store (the commit
	// time of the last transaction of the last segment every store holds;
	// heartbeats keep it fresh on an idle database). Zero: none yet.
	RecoveryPoint time.Time `json:"recovery_point"`

	Source SourceState  `json:"source"`
	Spool  SpoolState   `json:"spool"`
	Stores []StoreState `json:"stores"`

	// LastBackup is when the newest complete base backup finished (agent
	// clock); zero if there is none.
	LastBackup time.Time `json:"last_backup"`
	// Chain is the chain being written.
	Chain string `json:"chain"`
	// Gaps counts gaps the agent has met since it started (new chains
	// started because the stream could not continue).
	Gaps int `json:"gaps"`
	// LastGap describes the newest gap.
	LastGap string `json:"last_gap,omitempty"`

	// LastVerify is when the agent last read back every segment it had
	// shipped and found them intact (zero: not yet).
	LastVerify time.Time `json:"last_verify,omitzero"`
	// VerifyProblems counts read-back passes of a store that found a
	// problem, since the agent started.
	VerifyProblems    int    `json:"verify_problems"`
	LastVerifyProblem string `json:"last_verify_problem,omitempty"`
}

// SourceState is the database side.
type SourceState struct {
	Engine   string    `json:"engine"`
	ID       string    `json:"id"`
	Up       bool      `json:"up"`
	Error    string    `json:"error,omitempty"` // why it is down (no secrets)
	Since    time.Time `json:"since"`           // when Up last changed
	LagBytes int64     `json:"lag_bytes"`       // source position minus acknowledged; -1 unknown
	// RetainedBytes is what the source keeps for rxvault (PostgreSQL: WAL
	// held by the slot); -1 unknown.
	RetainedBytes int64 `json:"retained_bytes"`
	// Server is the server streamed now (MySQL and MariaDB: server_uuid,
	// or server_id@host:port), and Epoch how many times the source has
	// moved to another server (see source.id).
	Server string `json:"server,omitempty"`
	Epoch  uint32 `json:"epoch,omitempty"`
}

// SpoolState is the local queue.
type SpoolState struct {
	Segments int   `json:"segments"` // sealed, not yet in every store
	Bytes    int64 `json:"bytes"`
}

// StoreState is one store. Counters only grow while the agent runs.
type StoreState struct {
	Name      string    `json:"name"` // the store's URL without secrets
	Up        bool      `json:"up"`
	DownSince time.Time `json:"down_since,omitzero"` // first failure of the current outage
	LastError string    `json:"last_error,omitempty"`
	Segments  uint64    `json:"segments_shipped"`
	Bytes     uint64    `json:"bytes_shipped"`
	Errors    uint64    `json:"upload_errors"`
	Retries   uint64    `json:"upload_retries"`
	// VerifyProblem is the problem the agent's last read-back of this
	// store found (a segment that fails its digest, link or structure),
	// or "" when its last read-back found none. A store that does not
	// answer is down, not a problem.
	VerifyProblem string `json:"verify_problem,omitempty"`
}

// Lag is now minus the recovery point (or, before the first segment is
// stored, since the agent started).
func (s *State) Lag(now, started time.Time) time.Duration {
	if s.RecoveryPoint.IsZero() {
		return now.Sub(started)
	}
	return now.Sub(s.RecoveryPoint)
}

var (
	// urlPassword matches the user:password@ of a URL. The password runs to
	// the last @ before a space or quote, so a password with unescaped
	// characters is masked whole.
	urlPassword = regexp.MustCompile("([A-Za-z][A-Za-z0-9+.-]*://[^\\s/?#@:\"'`]*):[^\\s\"'`]*@")
	// kwPassword matches password=... in a keyword DSN (libpq, ODBC).
	kwPassword = regexp.MustCompile(`(?i)\b(password|pwd)(\s*=\s*)('[^']*'|[^\s;'"]*)`)
)

// redact masks passwords that text may quote.
func redact(text string) string {
	text = urlPassword.ReplaceAllString(text, "${1}:xxxxx@")
	return kwPassword.ReplaceAllString(text, "${1}${2}xxxxx")
}

// redacted returns s with passwords masked in its free-text fields. It
// does not modify the caller's Stores.
func (s State) redacted() State {
	s.Source.Error = redact(s.Source.Error)
	s.LastGap = redact(s.LastGap)
	s.LastVerifyProblem = redact(s.LastVerifyProblem)
	stores := make([]StoreState, len(s.Stores))
	for i, st := range s.Stores {
		st.Name, st.LastError, st.VerifyProblem = redact(st.Name), redact(st.LastError), redact(st.VerifyProblem)
		stores[i] = st
	}
	s.Stores = stores
	return s
}
