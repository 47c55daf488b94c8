package mysql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/internal/logs"
	"github.com/rxvault/rxvault/internal/mysqlconn"
	"github.com/rxvault/rxvault/segment"
)

// Reader is an open binlog stream of one database. Create with Open;
// Run delivers its transactions; Close releases it.
type Reader struct {
	cfg   Config
	d     *mysqlconn.DSN
	srv   *server
	id    capture.Identity
	base  binlogFile
	state *stateFile
	start segment.Position
	// gtidStart, if set, is the GTID position the stream starts after:
	// on a server other than start's (see moveServer).
	gtidStart string
	backlog   segment.Position // the binlog's end when opened
	created   bool
	log       *slog.Logger

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
//
// A saved position taken on another server (Config.ID names the source,
// and the database has moved: a failover to a replica) is followed by
// GTID, on MariaDB: the stream resumes after the saved GTID position, in
// the next epoch (see segment.Position), once this server is shown to
// hold every archived transaction (see moveServer). Otherwise the stream
// is lost.
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
	r := &Reader{cfg: cfg, d: d, srv: srv, id: srv.identity(cfg.ID, d.DB), base: base, log: logs.For(cfg.Logger, "capture/mysql")}
	r.warnDurability(c)
	r.state = newStateFile(cfg.StateDir, r.id, srv.id, base)
	sp, pos, ok, err := r.state.load()
	if err != nil {
		return nil, capture.Permanent(err)
	}
	if !ok {
		r.state.begin(end)
		if err := r.state.save(end); err != nil {
			return nil, err
		}
		r.start, r.backlog, r.created = end, end, true
		return r, nil
	}
	if sp.Server != srv.id {
		if err := r.moveServer(c, sp, pos, end); err != nil {
			return nil, err
		}
		return r, nil
	}
	r.state.resume(sp, pos)
	r.backlog = r.state.at(end.Hi, end.Lo)
	logs, err := binaryLogs(c)
	if err != nil {
		return nil, err
	}
	if _, has := logs[uint64(uint32(pos.Hi))]; !has || pos.Compare(r.backlog) > 0 {
		if err := r.state.remove(); err != nil {
			return nil, err
		}
		return nil, capture.StreamLost(fmt.Errorf("the saved position %s (binlog %s) is no longer on the server (purged, or the binlog was reset)",
			pos.Format(srv.engine()), base.name(pos.Hi)))
	}
	r.start = pos
	return r, nil
}

// warnDurability logs a warning when the server can lose committed
// transactions in a crash of its host: without sync_binlog = 1 the binlog's
// tail may not be on disk when the engine's commit is, and the host's
// crash then loses from the binlog, and so from the archive, transactions
// the recovered database holds; without innodb_flush_log_at_trx_commit =
// 1, commits the clients were told of may be lost from both.
func (r *Reader) warnDurability(c *client.Conn) {
	row, err := mysqlconn.QueryRow(c, "SELECT @@sync_binlog, @@innodb_flush_log_at_trx_commit")
	if err != nil || len(row) < 2 || row[0] == "1" && row[1] == "1" {
		return
	}
	r.log.Warn("the server can lose committed transactions from the binlog, and so from the archive, if its host crashes; "+
		"fix: SET GLOBAL sync_binlog = 1 and SET GLOBAL innodb_flush_log_at_trx_commit = 1 (and both in the server's configuration)",
		"sync_binlog", row[0], "innodb_flush_log_at_trx_commit", row[1])
}

// moveServer resumes, on a server other than the one the saved record sp
// (at pos) was taken on, after sp's GTID position: the source's database
// has moved to this server. It does so only on MariaDB, and only when
// this server runs gtid_strict_mode and has binlogged every GTID of that
// position (a replica promoted without log_slave_updates, or one that
// had not received everything the archive holds, has not). Otherwise the
// stream is lost: the saved record is removed, and a new chain starts.
// end is this server's binlog end.
func (r *Reader) moveServer(c *client.Conn, sp savedPos, pos, end segment.Position) error {
	lost := func(why string, a ...any) error {
		if err := r.state.remove(); err != nil {
			return err
		}
		return capture.StreamLost(fmt.Errorf("the source's saved position was taken on server %s, not this server (%s), and "+why,
			append([]any{sp.Server, r.srv.id}, a...)...))
	}
	if !r.srv.mariadb {
		return lost("rxvault follows a source to another server only on MariaDB, by GTID")
	}
	if sp.GTID == "" {
		return lost("no GTID position was saved with it")
	}
	row, err := mysqlconn.QueryRow(c, "SELECT @@gtid_strict_mode, @@gtid_binlog_state")
	if err != nil {
		return err
	}
	if row[0] != "1" {
		return lost("this server does not run gtid_strict_mode, so its binlog cannot be shown to hold the archived transactions in order; fix: SET GLOBAL gtid_strict_mode = ON on every server of the source (and in their configuration)")
	}
	state, err := parseGTIDList(row[1])
	if err != nil {
		return fmt.Errorf("gtid_binlog_state: %w", err)
	}
	saved, _ := parseGTIDPos(sp.GTID) // validated by load
	if g, missing := missingGTID(saved, state); missing {
		return lost("this server's binlog lacks the archived transaction %s (it never reached this server, or log_slave_updates is off on it): the archive holds transactions this server does not", g)
	}
	r.state.moveTo(sp, pos)
	r.start, r.gtidStart, r.backlog = pos, sp.GTID, r.state.at(end.Hi, end.Lo)
	r.log.Warn("the source has moved to another server: resuming after the saved GTID position",
		"from_server", sp.Server, "to_server", r.srv.id, "gtid", sp.GTID, "epoch", sp.Epoch+1)
	return nil
}

// Identity names the source.
func (r *Reader) Identity() capture.Identity { return r.id }

// SlotCreated reports that no saved position existed: the stream starts
// at the end of the binlog and nothing older can be read.
func (r *Reader) SlotCreated() bool { return r.created }

// StartPos is where the stream resumes.
func (r *Reader) StartPos() segment.Position { return r.start }

// Acknowledge saves pos as the resume point: everything before it is
// durably archived. A position in a later binlog file than the saved one
// that the stream has not read yet (at a restart, from segments left in
// the spool) is saved once the stream reaches that file (see
// stateFile.ack). A failed save is logged; the older saved position only
// makes the source re-send what is already archived.
func (r *Reader) Acknowledge(pos segment.Position) {
	if err := r.state.ack(pos); err != nil {
		r.ackErrOnce.Do(func() {
			r.log.Error("saving the acknowledged binlog position failed; a restart re-reads from the older one", "err", err)
		})
	}
}

// fileSeen checks and records the format description timestamp of
// binlog file n (see stateFile.fileSeen), logging a failed save as
// Acknowledge does.
func (r *Reader) fileSeen(n uint64, created uint32) bool {
	ok, err := r.state.fileSeen(n, created)
	if err != nil {
		r.ackErrOnce.Do(func() {
			r.log.Error("saving the binlog position's file timestamp failed; a restart checks its file against nothing", "err", err)
		})
	}
	return ok
}

// Close releases the reader; Run's connections close when Run returns.
func (r *Reader) Close() error { return nil }

// Run streams the binlog from StartPos and delivers every transaction that
// changed the captured database (and the heartbeat transactions) to sink,
// in commit order, until ctx ends or the stream fails. It also writes the
// heartbeat row every Config.Heartbeat. When StartPos was behind the
// binlog's end at Open, sink.CaughtUp is called once the stream reaches
// that end. A binlog file that ends in a torn event, as a server crash
// leaves it, is read to its last whole event, and the stream goes on at
// the start of the next file (see tornEnd).
func (r *Reader) Run(ctx context.Context, sink capture.Sink) error {
	hctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.heartbeats(hctx) })
	defer wg.Wait()
	defer stop()

	a := &assembler{r: r, sink: sink, cur: r.start.Hi, rels: make(map[uint64]*tableRel), sysTZ: map[int64]string{}, caughtUp: r.start.Compare(r.backlog) >= 0,
		buf: newTxnBuf(r.cfg.SpillDir, r.cfg.SpillThreshold), parser: r.eventParser()}
	if r.gtidStart != "" {
		a.cur = r.state.at(0, 0).Hi // no file until the server's first rotate event names one
	}
	defer a.reset()
	start := r.startSync
	for {
		next, err := r.stream(ctx, a, start)
		if next == 0 {
			return err
		}
		r.log.Warn("binlog file ends in the middle of an event: the server stopped while writing it (a crash), and what it was writing never committed; going on with the next file",
			"file", r.base.name(a.cur), "next", r.base.name(next))
		a.reset() // the transaction the torn event belonged to, if any
		start = func(s *replication.BinlogSyncer) (*replication.BinlogStreamer, error) {
			return s.StartSync(gomysql.Position{Name: r.base.name(next), Pos: 4})
		}
	}
}

// stream runs one binlog stream, begun by start, through a until ctx
// ends or the stream does. It returns the number of the binlog file to go
// on with if the stream ended at a torn event (see tornEnd), else 0 and
// what Run returns.
func (r *Reader) stream(ctx context.Context, a *assembler, start func(*replication.BinlogSyncer) (*replication.BinlogStreamer, error)) (uint64, error) {
	// sctx ends the stream: when it returns, or when stallWatch finds it
	// dead. It is cancelled before syncer.Close, which waits for the
	// stream goroutine, possibly waiting for room in the queue.
	sctx, stall := context.WithCancelCause(ctx)
	queue := newEventQueue(sctx)
	sc := r.syncerConfig()
	sc.HeartbeatPeriod = r.cfg.Heartbeat
	// No ReadTimeout: it sets a deadline on every packet read, the largest
	// single cost of draining a backlog; stallWatch detects a dead
	// connection instead.
	sc.RawModeEnabled = true // the reader parses the events: see eventQueue
	sc.SynchronousEventHandler = queue
	sc.Dialer = queue.dialer
	syncer := replication.NewBinlogSyncer(sc)
	defer syncer.Close()
	defer stall(nil)
	streamer, err := start(syncer)
	if err != nil {
		return 0, r.streamErr(err)
	}
	wctx, stop := context.WithCancel(ctx)
	watch := newStallWatch(r.cfg.Heartbeat*10 + 20*time.Second)
	failed := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() { watch.run(wctx, stall) })
	wg.Go(func() {
		// With a synchronous handler the streamer carries only the
		// stream's end: its error.
		_, err := streamer.GetEvent(wctx)
		failed <- err
	})
	defer wg.Wait()
	defer stop()

	var batch []*replication.BinlogEvent
	for {
		if batch = queue.take(batch); len(batch) > 0 {
			if err := a.events(ctx, batch); err != nil {
				return 0, err
			}
			continue
		}
		watch.waiting()
		select {
		case <-queue.ready:
			watch.done()
			continue
		case err = <-failed:
		case <-sctx.Done():
		}
		watch.done()
		if ctx.Err() != nil {
			return 0, nil
		}
		if sctx.Err() != nil {
			return 0, context.Cause(sctx)
		}
		// Events queued before the stream ended come first: the stream
		// goroutine queues none after.
		if err := a.events(ctx, queue.take(batch)); err != nil {
			return 0, err
		}
		if next := r.tornEnd(ctx, a, err); next != 0 {
			return next, nil
		}
		return 0, r.streamErr(err)
	}
}

// tornEnd returns the number of the binlog file after a.cur if err says
// that file ends in the middle of an event and the server has that next
// file; else 0. A server that crashed while writing a file leaves it so,
// and goes on in a new file after its restart, never in the old one. The
// torn event cannot hold a commit: a transaction is written to the binlog
// before the storage engine commits it, and crash recovery rolls back
// what the binlog does not hold whole. So nothing committed is lost by
// going on at the next file's start.
func (r *Reader) tornEnd(ctx context.Context, a *assembler, err error) uint64 {
	var me *gomysql.MyError
	if !errors.As(err, &me) || me.Code != gomysql.ER_MASTER_FATAL_ERROR_READING_BINLOG ||
		!strings.Contains(me.Message, "binlog truncated in the middle of event") || !a.placed() || uint32(a.cur) == 1<<32-1 {
		return 0
	}
	c, err := connect(ctx, r.d, "")
	if err != nil {
		r.log.Warn("binlog stream: list the binary logs", "err", err)
		return 0
	}
	defer c.Close()
	rows, err := mysqlconn.QueryRows(c, "SHOW BINARY LOGS")
	if err != nil {
		r.log.Warn("binlog stream: list the binary logs", "err", err)
		return 0
	}
	next := a.cur + 1 // the same epoch: the file number is the low half
	for _, row := range rows {
		if len(row) > 0 && row[0] == r.base.name(next) {
			return next
		}
	}
	return 0
}

// startSync starts the binlog stream at r.start, or after r.gtidStart.
func (r *Reader) startSync(syncer *replication.BinlogSyncer) (*replication.BinlogStreamer, error) {
	if r.gtidStart == "" {
		return syncer.StartSync(gomysql.Position{Name: r.base.name(r.start.Hi), Pos: uint32(r.start.Lo)})
	}
	set, err := gomysql.ParseMariadbGTIDSet(r.gtidStart)
	if err != nil {
		return nil, fmt.Errorf("saved GTID position %q: %w", r.gtidStart, err)
	}
	return syncer.StartSyncGTID(set)
}

// eventParser returns the parser of the events the reader's goroutine
// gets raw from the stream (see assembler.event). It skips the table
// map's optional metadata: see assembler.tableMap.
func (r *Reader) eventParser() *replication.BinlogParser {
	p := replication.NewBinlogParser()
	p.SetFlavor(r.srv.flavor())
	p.SetTimestampStringLocation(time.UTC)
	p.SetRenderJSONAsMySQLText(true)
	p.SetTableMapOptionalMetaDecodeFunc(func([]byte) error { return nil })
	return p
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
		return capture.StreamLost(fmt.Errorf("the server cannot send the binlog from the saved position: %s", me.Message))
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("binlog stream: connection closed by the server")
	}
	return classify(fmt.Errorf("binlog stream: %w", err))
}

// setupHeartbeat creates rxvault's heartbeat table if it is missing. It
// runs without a default database, so the statements are not taken for
// DDL of the captured database. The table is utf8mb4 whatever the
// server's default character set: it holds table names as JSON, read
// back from the binlog as UTF-8 bytes. A table an older version created
// in another character set (such as latin1, which cannot hold 处方 and
// stores Ü in other bytes) is converted.
func setupHeartbeat(c *client.Conn) error {
	fail := func(err error) error {
		return classify(fmt.Errorf("mysql capture: create the heartbeat table: %w; fix: GRANT CREATE, ALTER, INSERT, UPDATE ON %s.* TO the rxvault user", err, HeartbeatSchema))
	}
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS " + HeartbeatSchema + " CHARACTER SET utf8mb4",
		"CREATE TABLE IF NOT EXISTS " + HeartbeatSchema + ".heartbeat (db VARCHAR(64) NOT NULL PRIMARY KEY, at DATETIME(6) NOT NULL, auto_increment LONGTEXT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
	} {
		if _, err := c.Execute(q); err != nil {
			return fail(err)
		}
	}
	rows, err := mysqlconn.QueryRows(c, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '"+HeartbeatSchema+"' AND TABLE_NAME = 'heartbeat' AND CHARACTER_SET_NAME <> 'utf8mb4'")
	if err != nil {
		return fail(err)
	}
	if len(rows) == 1 && rows[0][0] != "0" {
		if _, err := c.Execute("ALTER TABLE " + HeartbeatSchema + ".heartbeat CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
			return fail(err)
		}
	}
	return nil
}
