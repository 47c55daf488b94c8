package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// seqValue is a sequence's state as captured: setval(seq, last, called).
type seqValue struct {
	last   int64
	called bool
}

// parseSequences decodes an rxvault.sequences message: JSON
// {"schema.name": {"last_value": "42", "is_called": true}, ...}, each name
// quoted as SQL needs it (format('%I.%I'): public."Order_seq"). A bare
// number is accepted for last_value too.
func parseSequences(content []byte) (map[string]seqValue, error) {
	var raw map[string]struct {
		LastValue json.RawMessage `json:"last_value"`
		IsCalled  *bool           `json:"is_called"`
	}
	if err := json.Unmarshal(content, &raw); err != nil {
		return nil, fmt.Errorf("bad sequences message: %w", err)
	}
	out := make(map[string]seqValue, len(raw))
	for name, v := range raw {
		s := string(v.LastValue)
		if uq, err := strconv.Unquote(s); err == nil {
			s = uq
		}
		last, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v.IsCalled == nil {
			return nil, fmt.Errorf("bad sequences message: sequence %q: want last_value (an integer) and is_called", name)
		}
		out[name] = seqValue{last: last, called: *v.IsCalled}
	}
	return out, nil
}

// targetSeq is a sequence of the target, with the integer column owning
// it if any (SERIAL, IDENTITY, OWNED BY).
type targetSeq struct {
	oid       uint32
	key       string // format('%I.%I', schema, name), as in rxvault.sequences
	ident     string // quoted
	increment int64
	ownerRel  string // quoted table, "" if not owned by an integer column
	ownerCol  string // quoted column
}

const sequencesSQL = `
SELECT c.oid, pg_catalog.format('%I.%I', n.nspname, c.relname),
       pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),
       s.seqincrement,
       coalesce(pg_catalog.quote_ident(tn.nspname) || '.' || pg_catalog.quote_ident(tc.relname), ''),
       coalesce(pg_catalog.quote_ident(a.attname), '')
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_sequence s ON s.seqrelid = c.oid
  LEFT JOIN pg_catalog.pg_depend d
         ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
        AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
  LEFT JOIN pg_catalog.pg_attribute a
         ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
        AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)
  LEFT JOIN pg_catalog.pg_class tc ON tc.oid = a.attrelid
  LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace
 WHERE c.relkind = 'S' AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
 ORDER BY 2`

// Finish completes the restore after the last transaction, in one
// transaction:
//
//   - Every sequence named in the rxvault.sequences messages applied is
//     set to its latest captured value: setval(seq, last_value,
//     is_called). Captured names that no longer exist (dropped by a later
//     DDL statement) are skipped, with a log line.
//   - Safety net: a sequence owned by an integer column (SERIAL,
//     IDENTITY, OWNED BY) is never left where its next value would be at
//     or below the column's maximum (at or above its minimum, for a
//     descending sequence); it is raised to that maximum. Sequence values
//     are captured periodically, not per nextval, so rows inserted after
//     the last capture may hold values the captured state had not
//     reached yet: without this, the first insert after the restore
//     would collide. This applies to every owned sequence, captured or
//     not (a sequence created after the base backup may never have been
//     captured).
//   - The event triggers RestoreBase left out are created, with their
//     ENABLE state and comments. One whose function no longer exists
//     (dropped, with the trigger, by a replayed DROP FUNCTION … CASCADE)
//     is skipped with a warning.
//
// Before that, Finish commits the open commit group, synchronously. If
// that fails (a change of the group's transactions fails: their results
// are read only now), the error names the transaction and change as
// Apply's would, the group is rolled back and the target is unusable.
//
// Durability: replay commits with synchronous_commit=off, so the last
// groups may not be on disk yet. The last group and Finish's own
// transaction commit with synchronous_commit=on; PostgreSQL flushes WAL in
// order, so once such a commit returns, every transaction applied before
// it (and the base backup, restored the same way) is durable. When Finish
// returns nil the restore is complete.
func (t *Target) Finish(ctx context.Context) error {
	if err := t.usable(); err != nil {
		return err
	}
	if err := t.commit(ctx, true); err != nil {
		return fmt.Errorf("restore target %s: finish: %w", t.name, t.fail(err))
	}
	if err := t.finish(ctx); err != nil {
		t.connLost(err)
		return fmt.Errorf("restore target %s: finish: %w", t.name, err)
	}
	t.finished = true
	return nil
}

func (t *Target) finish(ctx context.Context) error {
	start := time.Now()
	tx, err := t.conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // a no-op after Commit
	if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = on"); err != nil {
		return err
	}
	set, raised, err := t.setSequences(ctx, tx)
	if err != nil {
		return err
	}
	created, err := t.createEventTriggers(ctx, tx)
	if err != nil {
		return err
	}
	// A transaction id makes COMMIT write (and, synchronously, flush) a
	// commit record even if nothing above wrote anything.
	if _, err := tx.Exec(ctx, "SELECT pg_catalog.pg_current_xact_id()"); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	t.log.Info("restore finished", "sequences_set", set, "sequences_raised_to_column_max", raised,
		"event_triggers_created", created, "duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// setSequences sets captured sequence values and applies the owned-column
// safety net. It returns how many sequences it set and how many of those
// the safety net raised.
func (t *Target) setSequences(ctx context.Context, tx pgx.Tx) (set, raised int, err error) {
	rows, err := tx.Query(ctx, sequencesSQL)
	if err != nil {
		return 0, 0, fmt.Errorf("list sequences: %w", err)
	}
	seqs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (targetSeq, error) {
		var s targetSeq
		err := r.Scan(&s.oid, &s.key, &s.ident, &s.increment, &s.ownerRel, &s.ownerCol)
		return s, err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("list sequences: %w", err)
	}
	byKey := map[string]int{}
	for i, s := range seqs {
		if j, dup := byKey[s.key]; dup {
			if _, captured := t.seqs[s.key]; captured {
				return 0, 0, fmt.Errorf("captured sequence %q matches both %s and %s", s.key, seqs[j].ident, s.ident)
			}
		}
		byKey[s.key] = i
	}
	for key := range t.seqs {
		if _, ok := byKey[key]; !ok {
			t.log.Info("captured sequence no longer exists; skipped", "sequence", key)
		}
	}
	for _, s := range seqs {
		want, captured := t.seqs[s.key]
		if s.ownerRel != "" {
			if !captured {
				if err := tx.QueryRow(ctx, "SELECT last_value, is_called FROM "+s.ident).Scan(&want.last, &want.called); err != nil {
					return 0, 0, fmt.Errorf("read sequence %s: %w", s.ident, err)
				}
			}
			up, err := t.ownedFloor(ctx, tx, s, &want)
			if err != nil {
				return 0, 0, err
			}
			if up {
				raised++
				t.log.Warn("sequence raised past its column's values: rows hold values beyond its captured state",
					"sequence", s.key, "column", s.ownerRel+"."+s.ownerCol)
			}
			captured = captured || up
		}
		if !captured {
			continue
		}
		if _, err := tx.Exec(ctx, "SELECT pg_catalog.setval($1::oid::regclass, $2, $3)", s.oid, want.last, want.called); err != nil {
			return 0, 0, fmt.Errorf("set sequence %s: %w", s.ident, err)
		}
		set++
	}
	return set, raised, nil
}

// ownedFloor raises want, the state of sequence s owned by an integer
// column, so that its next value lies beyond every value in the column.
// It reports whether it did.
func (t *Target) ownedFloor(ctx context.Context, tx pgx.Tx, s targetSeq, want *seqValue) (bool, error) {
	agg := "max"
	if s.increment < 0 {
		agg = "min"
	}
	var extreme *int64
	q := "SELECT " + agg + "(" + s.ownerCol + ")::int8 FROM " + s.ownerRel
	if err := tx.QueryRow(ctx, q).Scan(&extreme); err != nil {
		return false, fmt.Errorf("read the %s of %s.%s: %w", agg, s.ownerRel, s.ownerCol, err)
	}
	if extreme == nil {
		return false, nil
	}
	next := big.NewInt(want.last)
	if want.called {
		next.Add(next, big.NewInt(s.increment))
	}
	cmp := next.Cmp(big.NewInt(*extreme))
	if (s.increment > 0 && cmp > 0) || (s.increment < 0 && cmp < 0) {
		return false, nil
	}
	*want = seqValue{last: *extreme, called: true}
	return true, nil
}

// createEventTriggers creates the event triggers RestoreBase left out,
// each under a savepoint. It returns how many it created.
func (t *Target) createEventTriggers(ctx context.Context, tx pgx.Tx) (int, error) {
	created := 0
	for _, et := range t.eventTriggers {
		if _, err := tx.Exec(ctx, "SAVEPOINT rxvault_event_trigger"); err != nil {
			return created, err
		}
		_, err := tx.Conn().PgConn().Exec(ctx, et.sql).ReadAll()
		if pe := pgErrorOf(err); pe != nil && pe.Code == "42883" {
			if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT rxvault_event_trigger"); err != nil {
				return created, err
			}
			t.log.Warn("event trigger not created: its function no longer exists (dropped during replay)", "event_trigger", et.name)
			continue
		}
		if err != nil {
			var se error = newServerError(pgErrorOf(err))
			if pgErrorOf(err) == nil {
				se = err
			}
			return created, fmt.Errorf("create event trigger %s: %w", et.name, se)
		}
		if _, err := tx.Exec(ctx, "RELEASE SAVEPOINT rxvault_event_trigger"); err != nil {
			return created, err
		}
		created++
	}
	// The scripts set search_path (to ''); put the session's back.
	if len(t.eventTriggers) > 0 {
		if _, err := tx.Exec(ctx, "SELECT pg_catalog.set_config('search_path', $1, false)", t.session["search_path"]); err != nil {
			return created, err
		}
	}
	return created, nil
}
