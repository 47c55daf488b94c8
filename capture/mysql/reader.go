package mysql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/internal/mysqlconn"
	"github.com/rxvault/rxvault/segment"
)

// Reader is an open binlog stream of one database. Create with Open;
// Run delivers its transactions; Close releases it.
type Reader struct {
	cfg     Config
	d       *mysqlconn.DSN
	srv     *server
	id      capture.Identity
	base    binlogFile
	state   *stateFile
	start   segment.Position
	backlog segment.Position // the binlog's end when opened
	created bool
	log     *slog.Logger

	ackErrOnce sync.Once
}

var _ capture.Reader = (*Reader)(nil)

// Open checks the server (see inspect), creates the heartbeat table if
// missing, and finds where the stream resumes: the saved position of the
// last acknowledged transaction, or, when there is none, the end of the
// server's binlog (SlotCreated then reports true, and that position is
// saved at once). A saved position whose binlog file the server no
// longer has fails with capture.ErrStreamLost, after forgetting it, so
// the next Open starts a new chain.
func Open(ctx context.Context, cfg Config) (*Reader, error) {
	cfg, d, c, srv, err := openChecked(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := setupHeartbeat(c); err != nil {
		return nil, err
	}
	base, end, err := masterStatus(c)
	if err != nil {
		return nil, err
	}
	r := &Reader{cfg: cfg, d: d, srv: srv, id: srv.identity(d.DB), base: base, backlog: end, log: cfg.Logger.With("component", "capture")}
	r.state = newStateFile(cfg.StateDir, r.id, base)
	pos, ok, err := r.state.load()
	if err != nil {
		return nil, capture.Permanent(err)
	}
	if !ok {
		if err := r.state.save(end); err != nil {
			return nil, err
		}
		r.start, r.created = end, true
		return r, nil
	}
	logs, err := binaryLogs(c)
	if err != nil {
		return nil, err
	}
	if _, has := logs[pos.Hi]; !has || pos.Compare(end) > 0 {
		if err := r.state.remove(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: the saved position %s (binlog %s) is no longer on the server (purged, or the binlog was reset)",
			capture.ErrStreamLost, pos.Format(srv.engine()), base.name(pos.Hi))
	}
	r.start = pos
	return r, nil
}

// Identity names the source.
func (r *Reader) Identity() capture.Identity { return r.id }

// SlotCreated reports that no saved position existed: the stream starts
// at the end of the binlog and nothing older can be read.
func (r *Reader) SlotCreated() bool { return r.created }

// StartPos is where the stream resumes.
func (r *Reader) StartPos() segment.Position { return r.start }

// Acknowledge saves pos as the resume point: everything before it is
// durably archived. A failed save is logged; the older saved position
// only makes the source re-send what is already archived.
func (r *Reader) Acknowledge(pos segment.Position) {
	if err := r.state.save(pos); err != nil {
		r.ackErrOnce.Do(func() {
			r.log.Error("saving the acknowledged binlog position failed; a restart re-reads from the older one", "err", err)
		})
	}
}

// Close releases the reader; Run's connections close when Run returns.
func (r *Reader) Close() error { return nil }

// Run streams the binlog from StartPos and delivers every transaction that
// changed the captured database (and the heartbeat transactions) to sink,
// in commit order, until ctx ends or the stream fails. It also writes the
// heartbeat row every Config.Heartbeat. When StartPos was behind the
// binlog's end at Open, sink.CaughtUp is called once the stream reaches
// that end.
func (r *Reader) Run(ctx context.Context, sink capture.Sink) error {
	// sctx ends the stream: when Run returns, or when stallWatch finds it
	// dead. It is cancelled before syncer.Close, which waits for the
	// stream goroutine, possibly blocked handing a batch over.
	sctx, stall := context.WithCancelCause(ctx)
	rows := newLazyRows()
	batches := newBatcher(sctx)
	sc := r.syncerConfig()
	sc.TimestampStringLocation = time.UTC
	sc.RenderJSONAsMySQLText = true
	sc.HeartbeatPeriod = r.cfg.Heartbeat
	// No ReadTimeout: it sets a deadline on every packet read, the largest
	// single cost of draining a backlog; stallWatch detects a dead
	// connection instead.
	sc.RowsEventDecodeFunc = rows.hold
	sc.SynchronousEventHandler = batches
	syncer := replication.NewBinlogSyncer(sc)
	defer syncer.Close()
	defer stall(nil)
	streamer, err := syncer.StartSync(gomysql.Position{Name: r.base.name(r.start.Hi), Pos: uint32(r.start.Lo)})
	if err != nil {
		return r.streamErr(err)
	}
	hctx, stop := context.WithCancel(ctx)
	watch := newStallWatch(r.cfg.Heartbeat*10 + 20*time.Second)
	failed := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() { r.heartbeats(hctx) })
	wg.Go(func() { watch.run(hctx, stall) })
	wg.Go(func() {
		// With a synchronous handler the streamer carries only the
		// stream's end: its error.
		_, err := streamer.GetEvent(hctx)
		failed <- err
	})
	defer wg.Wait()
	defer stop()

	a := &assembler{r: r, sink: sink, lazy: rows, cur: r.start.Hi, rels: make(map[uint64]*tableRel), caughtUp: r.start.Compare(r.backlog) >= 0,
		buf: newTxnBuf(r.cfg.SpillDir, r.cfg.SpillThreshold)}
	defer a.reset()
	for {
		var batch []*replication.BinlogEvent
		watch.waiting()
		select {
		case batch = <-batches.out:
		case err = <-failed:
		case <-sctx.Done():
		}
		watch.done()
		if batch == nil {
			if ctx.Err() != nil {
				return nil
			}
			if sctx.Err() != nil {
				return context.Cause(sctx)
			}
			// Events handed over before the stream ended come first.
			for {
				select {
				case batch = <-batches.out:
					if err := a.events(ctx, batch); err != nil {
						return err
					}
					continue
				default:
				}
				break
			}
			return r.streamErr(err)
		}
		if err := a.events(ctx, batch); err != nil {
			return err
		}
	}
}

// syncerConfig is what every binlog stream of r shares: the server and
// credentials, no retries (the agent reconnects), GTID events read by the
// assembler rather than collected, and go-mysql's log discarded.
func (r *Reader) syncerConfig() replication.BinlogSyncerConfig {
	return replication.BinlogSyncerConfig{
		ServerID:         r.cfg.ServerID,
		Flavor:           r.srv.flavor(),
		Host:             r.d.Host,
		Port:             r.d.Port,
		User:             r.d.User,
		Password:         r.d.Password,
		Charset:          "utf8mb4",
		TLSConfig:        r.d.TLS,
		DisableRetrySync: true,
		DiscardGTIDSet:   true,
		Logger:           slog.New(slog.DiscardHandler),
	}
}

// streamErr turns a binlog stream error into the reader's: a binlog the
// server no longer has is a lost stream (the saved position is forgotten).
func (r *Reader) streamErr(err error) error {
	var me *gomysql.MyError
	if errors.As(err, &me) && me.Code == gomysql.ER_MASTER_FATAL_ERROR_READING_BINLOG {
		if rerr := r.state.remove(); rerr != nil {
			return rerr
		}
		return fmt.Errorf("%w: the server cannot send the binlog from the saved position: %s", capture.ErrStreamLost, me.Message)
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("binlog stream: connection closed by the server")
	}
	return classify(fmt.Errorf("binlog stream: %w", err))
}

// setupHeartbeat creates rxvault's heartbeat table if it is missing. It
// runs without a default database, so the statements are not taken for
// DDL of the captured database.
func setupHeartbeat(c *client.Conn) error {
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS " + HeartbeatSchema,
		"CREATE TABLE IF NOT EXISTS " + HeartbeatSchema + ".heartbeat (db VARCHAR(64) NOT NULL PRIMARY KEY, at DATETIME(6) NOT NULL, auto_increment LONGTEXT NOT NULL) ENGINE=InnoDB",
	} {
		if _, err := c.Execute(q); err != nil {
			return classify(fmt.Errorf("mysql capture: create the heartbeat table: %w; fix: GRANT CREATE, INSERT, UPDATE ON %s.* TO the rxvault user", err, HeartbeatSchema))
		}
	}
	return nil
}
