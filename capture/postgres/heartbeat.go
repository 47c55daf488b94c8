package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// heartbeatSQL writes, in one transaction, the values of every captured
// sequence and the server's clock. Both are transactional logical
// messages, so they reach the stream as an ordinary transaction: the
// sequences message lets a restore set sequences as of any point, the
// heartbeat gives an idle database a recent commit time and lets the slot
// advance.
const heartbeatSQL = `SELECT
	pg_logical_emit_message(true, 'rxvault.sequences', rxvault.sequences($1::text[])),
	pg_logical_emit_message(true, 'rxvault.heartbeat', clock_timestamp()::text)`

// heartbeat runs heartbeatSQL every interval on its own connection, from
// one goroutine that stop ends and waits for.
type heartbeat struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startHeartbeat connects and starts the goroutine. The first heartbeat is
// written at once. A failing heartbeat calls fail with the error and stops:
// capture without sequence values would not restore exactly.
func (r *Reader) startHeartbeat(ctx context.Context, fail context.CancelCauseFunc) (*heartbeat, error) {
	cc, err := r.cfg.regularConfig()
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("postgres capture: heartbeat connection: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	hb := &heartbeat{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(hb.done)
		defer conn.Close(context.WithoutCancel(ctx))
		t := time.NewTicker(r.cfg.Heartbeat)
		defer t.Stop()
		for {
			if _, err := conn.Exec(ctx, heartbeatSQL, r.seqSchemas); err != nil {
				if ctx.Err() == nil {
					fail(fmt.Errorf("postgres capture: heartbeat: %w", err))
				}
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return hb, nil
}

// stop ends the goroutine and waits for it.
func (hb *heartbeat) stop() {
	hb.cancel()
	<-hb.done
}
