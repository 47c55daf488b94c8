package mysql

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/internal/mysqlconn"
	"github.com/rxvault/rxvault/segment"
)

// assembler turns binlog events into whole transactions.
//
// A transaction runs from its GTID event (or BEGIN) to its XID event or
// COMMIT query. A DDL statement is a transaction of its own: MariaDB
// flags it standalone in its GTID event, and it commits at once; MySQL
// does not, so a DDL transaction commits when the next event shows that
// no rows follow (CREATE TABLE ... SELECT continues with rows and an XID).
//
// Positions: Hi is the epoch and the binlog file's number (see
// segment.Position), Lo an offset in it. A
// transaction's Pos is the start of its commit event (XID, COMMIT, or the
// DDL query itself), its End the end of that event: the next
// transaction's first event. Both select it exactly in --lsn targets.
type assembler struct {
	r    *Reader
	sink capture.Sink
	cur  uint64 // current binlog file: Position.Hi, its number 0 until the server names it

	rels  map[uint64]*tableRel // table id → relation, for this database and the heartbeat table
	sysTZ map[int64]string     // quarter hour since the epoch → the server's SYSTEM offset then (see systemOffset)
	crc   int                  // bytes of checksum at the end of each event (from the format description)
	fde   []byte               // the format description event, to parse table maps with (see tableMap)
	// format is the format description event: its post-header lengths
	// give the size of table ids.
	format *replication.FormatDescriptionEvent
	// parser parses the events the stream leaves raw, but for table maps,
	// rows events and XID events: see event.
	parser *replication.BinlogParser

	caughtUp bool // the stream has passed the binlog's end at Open

	open      bool
	begun     bool // BEGIN seen
	id        string
	gtid      gtid      // MariaDB: the open transaction's GTID
	hasGTID   bool      // gtid is set
	commitTS  time.Time // MySQL's immediate commit timestamp, if any
	buf       *txnBuf
	ddlCommit *commitPoint // MySQL: a DDL query that commits unless rows follow
	fkOff     bool         // the last rows event was written with foreign_key_checks=0
}

// tableRel is a table's relation and the table map it was built from.
type tableRel struct {
	raw      []byte // the whole event
	body     []byte // its body, within raw
	rel      *segment.Relation
	unsigned []bool   // by column: an unsigned integer
	codec    rowCodec // decodes its row images, if fast
}

// commitPoint is where a transaction commits.
type commitPoint struct {
	start, end uint64
	ts         time.Time
}

// events handles a batch of events, in order.
func (a *assembler) events(ctx context.Context, batch []*replication.BinlogEvent) error {
	for _, ev := range batch {
		if err := a.event(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

// event handles ev. The stream parsed only its header, unless it is a
// rotate or format description event: table maps, rows events and XID
// events, the events of every transaction, are read here, and the others
// parsed by a.parser.
func (a *assembler) event(ctx context.Context, ev *replication.BinlogEvent) error {
	h := ev.Header
	here := commitPoint{end: uint64(h.LogPos), ts: time.Unix(int64(h.Timestamp), 0).UTC()}
	if uint64(h.LogPos) >= uint64(h.EventSize) {
		here.start = uint64(h.LogPos) - uint64(h.EventSize)
	}
	if a.ddlCommit != nil {
		switch t := h.EventType; {
		case t == replication.TABLE_MAP_EVENT || rowsEvent(t) || t == replication.XID_EVENT || t == replication.MARIADB_ANNOTATE_ROWS_EVENT:
			a.ddlCommit = nil // rows follow: the transaction goes on
		default:
			p := *a.ddlCommit
			if err := a.commit(ctx, p); err != nil {
				return err
			}
		}
	}
	switch t := h.EventType; {
	case t == replication.TABLE_MAP_EVENT:
		return a.tableMap(ev.RawData, here.start)
	case rowsEvent(t):
		return a.rows(ev.RawData, t, here.start)
	case t == replication.XID_EVENT:
		return a.commit(ctx, here)
	}
	e := ev.Event
	if _, raw := e.(*replication.GenericEvent); raw && a.format != nil {
		parsed, err := a.parser.Parse(ev.RawData)
		if err != nil {
			return fmt.Errorf("binlog event %s at %s: %w", h.EventType, a.at(here.start), err)
		}
		e = parsed.Event
	}
	switch e := e.(type) {
	case *replication.RotateEvent:
		_, n, err := parseBinlogName(string(e.NextLogName))
		if err != nil {
			return err
		}
		if a.open {
			return fmt.Errorf("binlog rotates to %s inside a transaction", e.NextLogName)
		}
		if n == 0 || n >= 1<<32 {
			return fmt.Errorf("binlog rotates to %s: its number is out of range", e.NextLogName)
		}
		a.cur = a.cur&^(1<<32-1) | n
	case *replication.FormatDescriptionEvent:
		a.fde = bytes.Clone(ev.RawData)
		if _, err := a.parser.Parse(a.fde); err != nil {
			return fmt.Errorf("binlog format description: %w", err)
		}
		a.format = e
		a.crc = 0
		if e.ChecksumAlgorithm == replication.BINLOG_CHECKSUM_ALG_CRC32 {
			a.crc = replication.BinlogChecksumLength
		}
		stamp := h.Timestamp
		if stamp == 0 {
			stamp = e.CreateTimestamp
		}
		if !a.placed() {
			return fmt.Errorf("binlog stream: a format description before the server named the binlog file")
		}
		if !a.r.fileSeen(a.cur, stamp) {
			return a.lost("binlog %s is not the file the saved position was taken in (it was written anew, as after RESET MASTER)", a.r.base.name(a.cur))
		}
	case *replication.GTIDEvent:
		id := "" // gtid_mode OFF: anonymous GTID events
		if a.r.srv.gtid {
			set, err := e.GTIDNext()
			if err != nil {
				return fmt.Errorf("GTID event: %w", err)
			}
			id = set.String()
		}
		a.begin(id)
		if e.ImmediateCommitTimestamp != 0 {
			a.commitTS = e.ImmediateCommitTime().UTC()
		}
	case *replication.MariadbGTIDEvent:
		a.begin(mariadbGTID(e.GTID))
		a.begun = !e.IsStandalone()
		a.gtid, a.hasGTID = gtid{domain: e.GTID.DomainID, server: e.GTID.ServerID, seq: e.GTID.SequenceNumber}, true
	case *replication.QueryEvent:
		return a.query(ctx, e, here)
	case *replication.HeartbeatEvent:
		if !a.open && h.LogPos > 0 && a.placed() {
			pos := segment.Position{Hi: a.cur, Lo: uint64(h.LogPos)}
			if err := a.sink.Progress(ctx, pos, time.Time{}); err != nil {
				return err
			}
			return a.passed(ctx, pos)
		}
	case *replication.GenericEvent:
		if h.EventType == replication.INCIDENT_EVENT {
			return a.lost("the server logged an incident at %s: changes may be missing from the binlog", a.at(here.start))
		}
	case *replication.ExecuteLoadQueryEvent:
		// LOAD DATA logged as a statement, its database unknown here.
		return a.lost("a LOAD DATA statement was logged as a statement at %s (binlog_format was not ROW in its session): "+
			"the archive holds row changes only; fix: %s", a.at(here.start), fixRowFormat)
	case *replication.TransactionPayloadEvent:
		// Open refuses the server setting; this session set its own.
		return a.lost("a compressed transaction at %s (binlog_transaction_compression was ON in its session); fix: SET GLOBAL binlog_transaction_compression = OFF, "+
			"and no SET SESSION binlog_transaction_compression", a.at(here.start))
	}
	return nil
}

// lost forgets the saved position and returns capture.ErrStreamLost
// with the reason: the stream cannot go on exactly from here, so the
// agent starts a new chain, with a new base backup, at the binlog's end.
func (a *assembler) lost(why string, args ...any) error {
	if err := a.r.state.remove(); err != nil {
		return err
	}
	return capture.StreamLost(fmt.Errorf(why, args...))
}

// at formats offset off of the current binlog file.
func (a *assembler) at(off uint64) string {
	return segment.Position{Hi: a.cur, Lo: off}.Format(a.r.srv.engine())
}

// fixRowFormat is how to keep every change in row form.
const fixRowFormat = "keep binlog_format = ROW in every session (SET GLOBAL binlog_format = 'ROW', and revoke SUPER and BINLOG ADMIN " +
	"from accounts that SET SESSION binlog_format)"

func (a *assembler) begin(id string) {
	a.reset()
	a.open, a.id = true, id
}

// reset drops the open transaction, if any.
func (a *assembler) reset() {
	a.buf.reset()
	a.open, a.begun, a.id, a.commitTS, a.ddlCommit, a.fkOff = false, false, "", time.Time{}, nil, false
	a.hasGTID = false
}

// placed reports that the server has named the binlog file the stream is
// in (a stream started by GTID learns it from the first rotate event).
func (a *assembler) placed() bool { return uint32(a.cur) != 0 }

func (a *assembler) query(ctx context.Context, e *replication.QueryEvent, here commitPoint) error {
	q := strings.TrimSpace(string(e.Query))
	verb := strings.ToUpper(firstWord(q))
	switch {
	case strings.EqualFold(q, "BEGIN"):
		if !a.open {
			a.begin("")
		}
		a.begun = true
		return nil
	case strings.EqualFold(q, "COMMIT"):
		return a.commit(ctx, here)
	case strings.EqualFold(q, "ROLLBACK"):
		// Only changes to non-transactional tables are logged before a
		// ROLLBACK; they stay, so the transaction commits as logged.
		a.r.log.Warn("binlog transaction ends with ROLLBACK: its non-transactional changes are kept", "gtid", a.id)
		return a.commit(ctx, here)
	case verb == "SAVEPOINT" || verb == "RELEASE" || (verb == "ROLLBACK" && a.open):
		return nil
	case verb == "XA":
		return capture.Permanent(fmt.Errorf("mysql capture: XA transactions are not supported; fix: avoid XA on the captured server"))
	}
	if !a.open {
		a.begin("")
	}
	if isDML(q) {
		// A data change logged as a statement (binlog_format STATEMENT
		// or MIXED in its session): its rows are not in the binlog.
		sess, _ := parseStatusVars(e.StatusVars)
		if ours, _ := a.concerns(string(e.Schema), q, sess.ansiQuotes()); ours {
			return a.lost("a change to the captured database was logged as a statement at %s (binlog_format was not ROW in its session): "+
				"the archive holds row changes only; fix: %s", a.at(here.start), fixRowFormat)
		}
	}
	if isDDL(q) {
		if err := a.ddl(ctx, e, q, here.ts); err != nil {
			return err
		}
	}
	if a.begun {
		return nil // inside BEGIN ... COMMIT (MariaDB CREATE TABLE ... SELECT)
	}
	if a.r.srv.mariadb {
		return a.commit(ctx, here)
	}
	a.ddlCommit = &here
	return nil
}

// ddl adds DDL statement q of query event e, written at (the event's
// whole-second timestamp), to the transaction, after a message with its
// session's settings, if it concerns the captured database.
func (a *assembler) ddl(ctx context.Context, e *replication.QueryEvent, q string, at time.Time) error {
	sess, hasSess := parseStatusVars(e.StatusVars)
	ours, othersChanged := a.concerns(string(e.Schema), q, sess.ansiQuotes())
	if !ours {
		return nil
	}
	if hasSess {
		sess.OtherDatabases = othersChanged
		sess.explicitDefaultsForTimestamp(a.r.srv.mariadb, a.r.srv.version)
		if strings.EqualFold(sess.TimeZone, "SYSTEM") {
			// The server host's zone, which the restore host need not
			// share: replay gets its offset then too.
			tz, err := a.systemOffset(ctx, at)
			if err != nil {
				return err
			}
			sess.SystemOffset = tz
		}
		if sess.micros < 1_000_000 {
			sess.Timestamp = fmt.Sprintf("%d.%06d", at.Unix(), sess.micros)
		}
		content, err := json.Marshal(sess)
		if err != nil {
			return err
		}
		if err := a.buf.add(segment.Change{Op: segment.OpMessage, Prefix: segment.MsgDDLSession, Content: content, Transactional: true}); err != nil {
			return err
		}
	}
	if err := a.buf.add(segment.Change{Op: segment.OpDDL, Schema: string(e.Schema), SQL: q}); err != nil {
		return err
	}
	clear(a.rels) // tables may change: forget cached relations
	return nil
}

// systemOffset returns the source server's SYSTEM time zone's offset
// from UTC at instant at, as +HH:MM, asking the server once per quarter
// hour of at (zones change offsets only at quarter hours).
func (a *assembler) systemOffset(ctx context.Context, at time.Time) (string, error) {
	quarter := at.Unix() / 900
	if tz, ok := a.sysTZ[quarter]; ok {
		return tz, nil
	}
	c, err := connect(ctx, a.r.d, "")
	if err != nil {
		return "", fmt.Errorf("read the server's SYSTEM time zone offset: %w", err)
	}
	defer c.Close()
	if _, err := c.Execute("SET time_zone = '+00:00'"); err != nil {
		return "", fmt.Errorf("read the server's SYSTEM time zone offset: %w", err)
	}
	tz, err := mysqlconn.SystemOffset(c, at.Unix())
	if err != nil {
		return "", err
	}
	a.sysTZ[quarter] = tz
	return tz, nil
}

// concerns reports whether a statement run with default database schema
// concerns the captured database. A statement that names both it and
// another database (RENAME TABLE pharmacy.t TO other.t) is captured;
// one that changes objects of both is flagged and logged, and a restore
// stops before it (see pitr/mysql).
func (a *assembler) concerns(schema, q string, ansiQuotes bool) (ours, othersChanged bool) {
	sc := scopeOf(q, schema, a.r.d.DB, ansiQuotes)
	if sc.ours && sc.othersChanged {
		a.r.log.Warn("DDL changes objects of the captured database and of another one; a restore stops before it", "schema", schema)
	}
	return sc.ours, sc.ours && sc.othersChanged
}

// ddlVerbs are the statements replay runs; other statements in the binlog
// (GRANT, FLUSH, ANALYZE, ...) concern accounts or maintenance, not data.
var ddlVerbs = map[string]bool{"CREATE": true, "ALTER": true, "DROP": true, "RENAME": true, "TRUNCATE": true}

func isDDL(q string) bool {
	return ddlVerbs[strings.ToUpper(firstWord(q))] && !isAccountDDL(q) || isImplicitEmptying(q)
}

// dmlVerbs begin the statements that change data when logged as
// statements; in row format their rows are logged instead. (A stored
// function that changes data is logged as SELECT f(); a CTE before an
// UPDATE or DELETE as WITH.)
var dmlVerbs = map[string]bool{"INSERT": true, "UPDATE": true, "DELETE": true, "REPLACE": true, "LOAD": true,
	"SELECT": true, "WITH": true, "CALL": true, "DO": true}

// isDML reports a data change logged as a statement, other than the
// server's own emptying of a MEMORY table after a restart (replayed as
// it was logged: see isImplicitEmptying).
func isDML(q string) bool { return dmlVerbs[strings.ToUpper(firstWord(q))] && !isImplicitEmptying(q) }

// isImplicitEmptying reports the statement a server logs, in any binlog
// format, when it first opens a MEMORY table after a restart: MariaDB
// logs TRUNCATE TABLE (a DDL verb), MySQL a DELETE marked by a comment
// ("/* generated by server, ... */").
func isImplicitEmptying(q string) bool {
	return strings.EqualFold(firstWord(q), "DELETE") && strings.Contains(q, "/* generated by server")
}

// isAccountDDL reports CREATE/ALTER/DROP/RENAME USER or ROLE and the like.
func isAccountDDL(q string) bool {
	f := strings.Fields(strings.ToUpper(stripComments(q)))
	for _, w := range f[1:min(len(f), 4)] {
		switch w {
		case "USER", "ROLE", "SERVER", "TABLESPACE", "LOGFILE", "RESOURCE":
			return true
		}
	}
	return false
}

// firstWord returns the first word of a statement, past leading comments.
func firstWord(q string) string {
	f := strings.Fields(stripComments(q))
	if len(f) == 0 {
		return ""
	}
	w := f[0]
	if i := strings.IndexAny(w, "(;`"); i > 0 {
		w = w[:i]
	}
	return w
}

// stripComments drops leading /* */ and -- comments.
func stripComments(q string) string {
	for {
		q = strings.TrimSpace(q)
		switch {
		case strings.HasPrefix(q, "/*") && !strings.HasPrefix(q, "/*!"):
			i := strings.Index(q, "*/")
			if i < 0 {
				return ""
			}
			q = q[i+2:]
		case strings.HasPrefix(q, "--") || strings.HasPrefix(q, "#"):
			i := strings.IndexByte(q, '\n')
			if i < 0 {
				return ""
			}
			q = q[i+1:]
		default:
			return q
		}
	}
}

// tableMap keeps the relation of a table of this database (or the
// heartbeat table). Every statement maps its table again; while the map's
// body (table id, names, types and metadata) is byte for byte the one
// seen before, the same Relation is kept, so it is built once and a
// segment describes it once.
//
// Only the table id and names of an unchanged map are read; a changed
// one is parsed in full. Rows that go-mysql decodes (goMySQLRows) are
// decoded with the map parsed by a.parser, which skips its optional
// metadata (names, signedness, keys: Reader.eventParser): go-mysql then
// decodes every integer as signed, and value reinterprets those of the
// unsigned columns the relation names.
func (a *assembler) tableMap(raw []byte, start uint64) error {
	body, err := a.body(raw)
	if err != nil {
		return fmt.Errorf("mysql capture: table map at %s: %w", a.at(start), err)
	}
	id, sch, tab, err := tableMapName(body, a.tableIDSize(replication.TABLE_MAP_EVENT))
	if err != nil {
		return fmt.Errorf("mysql capture: table map at %s: %w", a.at(start), err)
	}
	if string(sch) != a.r.d.DB && (string(sch) != HeartbeatSchema || string(tab) != "heartbeat") {
		// The id may have named a captured table before: ids start again
		// when the server restarts, and a backlog can span a restart.
		delete(a.rels, id)
		return nil
	}
	old := a.rels[id]
	if old != nil && bytes.Equal(old.body, body) {
		return nil
	}
	schema, table := string(sch), string(tab)
	full, err := a.parseTableMap(raw)
	if err != nil {
		return fmt.Errorf("mysql capture: table map of %s.%s: %w", mysqlconn.QuoteIdent(schema), mysqlconn.QuoteIdent(table), err)
	}
	rel, unsigned, err := relation(full)
	if err != nil {
		return capture.Permanent(fmt.Errorf("mysql capture: %w", err))
	}
	if old != nil && sameRelation(old.rel, rel) {
		rel = old.rel
	}
	tr := &tableRel{raw: bytes.Clone(raw), rel: rel, unsigned: unsigned, codec: newRowCodec(full, unsigned)}
	tr.body = tr.raw[replication.EventHeaderSize : len(tr.raw)-a.crc]
	if schema == HeartbeatSchema {
		tr.codec.fast = false // heartbeatRows reads go-mysql's rows
	}
	a.rels[id] = tr
	return nil
}

// body returns the body of event raw: what follows its header, without
// its checksum.
func (a *assembler) body(raw []byte) ([]byte, error) {
	if len(raw) < replication.EventHeaderSize+a.crc {
		return nil, errors.New("event shorter than its header")
	}
	return raw[replication.EventHeaderSize : len(raw)-a.crc], nil
}

// tableIDSize returns the size of the table id in events of type t: 4
// bytes if their post-header is 6 bytes long (servers before 5.1.4), else 6.
func (a *assembler) tableIDSize(t replication.EventType) int {
	if a.format != nil && int(t) <= len(a.format.EventTypeHeaderLengths) && a.format.EventTypeHeaderLengths[t-1] == 6 {
		return 4
	}
	return 6
}

// goMySQLRows parses rows event raw, of the table of tr, with go-mysql,
// which decodes its rows.
func (a *assembler) goMySQLRows(tr *tableRel, raw []byte) (*replication.RowsEvent, error) {
	// go-mysql forgets its table maps at each statement's end: give it
	// this one again.
	if _, err := a.parser.Parse(tr.raw); err != nil {
		return nil, err
	}
	return parseAs[*replication.RowsEvent](a.parser, raw)
}

// parseAs parses event raw with p, as an event of type T.
func parseAs[T replication.Event](p *replication.BinlogParser, raw []byte) (T, error) {
	ev, err := p.Parse(raw)
	if err != nil {
		var zero T
		return zero, err
	}
	e, ok := ev.Event.(T)
	if !ok {
		return e, fmt.Errorf("parsed as %T", ev.Event)
	}
	return e, nil
}

// parseTableMap parses table map event raw in full, with a parser of its
// own (one that lives on would keep every table map it parsed).
func (a *assembler) parseTableMap(raw []byte) (*replication.TableMapEvent, error) {
	if a.fde == nil {
		return nil, errors.New("no format description event came before it")
	}
	p := replication.NewBinlogParser()
	p.SetFlavor(a.r.srv.flavor())
	if _, err := p.Parse(a.fde); err != nil {
		return nil, err
	}
	return parseAs[*replication.TableMapEvent](p, raw)
}

// rows adds the changes of rows event raw, of type t, that starts at
// offset start of the binlog file.
func (a *assembler) rows(raw []byte, t replication.EventType, start uint64) error {
	body, err := a.body(raw)
	if err != nil {
		return fmt.Errorf("mysql capture: rows event at %s: %w", a.at(start), err)
	}
	h, err := parseRowsHead(body, t, a.tableIDSize(t))
	if err != nil {
		return fmt.Errorf("mysql capture: at %s: %w", a.at(start), err)
	}
	tr := a.rels[h.tableID]
	if tr == nil {
		return nil // another database's table
	}
	if !allSet(h.present, h.columns) || h.present2 != nil && !allSet(h.present2, h.columns) {
		// binlog_row_image MINIMAL or NOBLOB in the writing session: the
		// columns left out would be captured as NULL.
		return a.lost("rows of %s.%s were logged without all their columns at %s (binlog_row_image was not FULL in the writing session): "+
			"the archive cannot hold them exactly; fix: keep binlog_row_image = FULL in every session (SET GLOBAL binlog_row_image = 'FULL', "+
			"and no SET SESSION binlog_row_image)", mysqlconn.QuoteIdent(tr.rel.Schema), mysqlconn.QuoteIdent(tr.rel.Table), a.at(start))
	}
	rel := tr.rel
	if h.columns != uint64(len(rel.Columns)) {
		return fmt.Errorf("mysql capture: the rows event at %s has %d columns, its table map %d", a.at(start), h.columns, len(rel.Columns))
	}
	var op segment.Op
	switch t {
	case replication.WRITE_ROWS_EVENTv0, replication.WRITE_ROWS_EVENTv1, replication.WRITE_ROWS_EVENTv2, replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1:
		op = segment.OpInsert
	case replication.UPDATE_ROWS_EVENTv0, replication.UPDATE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv2, replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1:
		op = segment.OpUpdate
	case replication.DELETE_ROWS_EVENTv0, replication.DELETE_ROWS_EVENTv1, replication.DELETE_ROWS_EVENTv2, replication.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1:
		op = segment.OpDelete
	default:
		// PARTIAL_UPDATE_ROWS_EVENT: binlog_row_value_options (a session
		// variable) let a JSON update log only its change.
		return a.lost("a %s of %s.%s at %s is not a whole row image; fix: SET GLOBAL binlog_row_value_options = '', and no SET SESSION binlog_row_value_options",
			t, mysqlconn.QuoteIdent(rel.Schema), mysqlconn.QuoteIdent(rel.Table), a.at(start))
	}
	fast := tr.codec.fast && !compressedRows(t)
	var e *replication.RowsEvent // go-mysql's, with its rows decoded, if not fast
	if !fast {
		if e, err = a.goMySQLRows(tr, raw); err != nil {
			return fmt.Errorf("mysql capture: decode rows of %s.%s: %w", mysqlconn.QuoteIdent(rel.Schema), mysqlconn.QuoteIdent(rel.Table), err)
		}
	}
	if !a.open {
		a.begin("")
	}
	if rel.Schema == HeartbeatSchema {
		return a.heartbeatRows(e, t)
	}
	// Rows written with foreign_key_checks=0 neither checked nor cascaded
	// on the source; replay must run them so too.
	if off := h.flags&replication.NO_FOREIGN_KEY_CHECKS_F != 0; off != a.fkOff {
		v := "1"
		if off {
			v = "0"
		}
		if err := a.buf.add(segment.Change{Op: segment.OpMessage, Prefix: segment.MsgForeignKeyChecks, Content: []byte(v), Transactional: true}); err != nil {
			return err
		}
		a.fkOff = off
	}
	// next returns the event's next row image, or false after the last.
	var next func() ([]segment.Value, bool, error)
	if fast {
		data := h.rows
		next = func() ([]segment.Value, bool, error) {
			if len(data) == 0 {
				return nil, false, nil
			}
			v, n, err := tr.codec.decodeImage(&a.buf.arena, data)
			if err != nil {
				return nil, false, fmt.Errorf("mysql capture: decode rows of %s.%s: %w", mysqlconn.QuoteIdent(rel.Schema), mysqlconn.QuoteIdent(rel.Table), err)
			}
			data = data[n:]
			return v, true, nil
		}
	} else {
		i := 0
		next = func() ([]segment.Value, bool, error) {
			if i == len(e.Rows) {
				return nil, false, nil
			}
			v, err := a.tuple(tr, e.Rows[i])
			i++
			return v, err == nil, err
		}
	}
	for {
		first, ok, err := next()
		if !ok {
			return err
		}
		c := segment.Change{Op: op, Rel: rel}
		switch op {
		case segment.OpInsert:
			c.New = first
		case segment.OpDelete:
			c.OldKind, c.Old = segment.OldFull, first
		case segment.OpUpdate:
			c.OldKind, c.Old = segment.OldFull, first
			if c.New, ok, err = next(); !ok {
				return cmp.Or(err, fmt.Errorf("mysql capture: an update of %s.%s at %s without its after image",
					mysqlconn.QuoteIdent(rel.Schema), mysqlconn.QuoteIdent(rel.Table), a.at(start)))
			}
		}
		if err := a.buf.add(c); err != nil {
			return err
		}
	}
}

// compressedRows reports MariaDB's compressed rows events
// (log_bin_compress), which go-mysql inflates.
func compressedRows(t replication.EventType) bool {
	switch t {
	case replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1, replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1, replication.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1:
		return true
	}
	return false
}

// allSet reports that bitmap has its first n bits set.
func allSet(bitmap []byte, n uint64) bool {
	if uint64(len(bitmap))*8 < n {
		return false
	}
	for i := uint64(0); i < n; i++ {
		if bitmap[i/8]&(1<<(i%8)) == 0 {
			return false
		}
	}
	return true
}

func (a *assembler) tuple(tr *tableRel, row []any) ([]segment.Value, error) {
	rel := tr.rel
	if len(row) != len(rel.Columns) {
		return nil, fmt.Errorf("mysql capture: %s.%s: a row of %d values for %d columns (binlog_row_image must be FULL)",
			mysqlconn.QuoteIdent(rel.Schema), mysqlconn.QuoteIdent(rel.Table), len(row), len(rel.Columns))
	}
	out := a.buf.arena.values(len(row))
	for i, v := range row {
		val, err := value(&a.buf.arena, v, &rel.Columns[i], tr.unsigned[i])
		if err != nil {
			return nil, fmt.Errorf("mysql capture: %s.%s: %w", mysqlconn.QuoteIdent(rel.Schema), mysqlconn.QuoteIdent(rel.Table), err)
		}
		out[i] = tr.codec.cols[i].padded(&a.buf.arena, val)
	}
	return out, nil
}

// heartbeatRows turns this database's heartbeat row into messages: the
// heartbeat and the AUTO_INCREMENT values it carries.
func (a *assembler) heartbeatRows(e *replication.RowsEvent, t replication.EventType) error {
	if t == replication.DELETE_ROWS_EVENTv1 || t == replication.DELETE_ROWS_EVENTv2 {
		return nil
	}
	step := 1
	if t == replication.UPDATE_ROWS_EVENTv1 || t == replication.UPDATE_ROWS_EVENTv2 {
		step = 2
	}
	for i := step - 1; i < len(e.Rows); i += step {
		row := e.Rows[i]
		if len(row) < 3 || fmt.Sprint(row[0]) != a.r.d.DB {
			continue
		}
		at, _ := row[1].(string)
		ai := fmt.Sprint(row[2])
		if b, ok := row[2].([]byte); ok {
			ai = string(b)
		}
		for _, m := range []segment.Change{
			{Op: segment.OpMessage, Prefix: segment.MsgHeartbeat, Content: []byte(at), Transactional: true},
			{Op: segment.OpMessage, Prefix: segment.MsgAutoIncrement, Content: []byte(ai), Transactional: true},
		} {
			if err := a.buf.add(m); err != nil {
				return err
			}
		}
	}
	return nil
}

// commit delivers the open transaction, committed at p: to the sink if it
// holds changes, else as progress.
func (a *assembler) commit(ctx context.Context, p commitPoint) error {
	if !a.open {
		return nil
	}
	defer a.reset()
	if !a.placed() {
		return fmt.Errorf("binlog stream: a transaction before the server named the binlog file")
	}
	ts := p.ts
	if !a.commitTS.IsZero() {
		ts = a.commitTS
	}
	end := segment.Position{Hi: a.cur, Lo: p.end}
	if a.hasGTID {
		a.r.state.committed(end, a.gtid)
	}
	var err error
	if a.buf.len() == 0 {
		err = a.sink.Progress(ctx, end, ts)
	} else {
		info := segment.TxnInfo{ID: a.id, Pos: segment.Position{Hi: a.cur, Lo: p.start}, Commit: ts}
		err = a.sink.Txn(ctx, a.buf.txn(info, end))
	}
	if err != nil {
		return err
	}
	return a.passed(ctx, end)
}

// passed notes that everything before pos has been delivered, and tells
// the sink once the backlog the server held at Open is.
func (a *assembler) passed(ctx context.Context, pos segment.Position) error {
	if a.caughtUp || pos.Compare(a.r.backlog) < 0 {
		return nil
	}
	a.caughtUp = true
	return a.sink.CaughtUp(ctx)
}

// mariadbGTID formats a MariaDB GTID as domain-server-sequence (what
// MariadbGTID.String does, without fmt: it runs once per transaction).
func mariadbGTID(g gomysql.MariadbGTID) string {
	b := make([]byte, 0, 32)
	b = strconv.AppendUint(b, uint64(g.DomainID), 10)
	b = append(b, '-')
	b = strconv.AppendUint(b, uint64(g.ServerID), 10)
	b = append(b, '-')
	b = strconv.AppendUint(b, g.SequenceNumber, 10)
	return string(b)
}

// sameRelation reports whether a and b describe the same table alike.
func sameRelation(a, b *segment.Relation) bool {
	return a.Schema == b.Schema && a.Table == b.Table && slices.Equal(a.Columns, b.Columns)
}
