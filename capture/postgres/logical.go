package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/segment"
)

// logical handles one pgoutput message.
func (s *stream) logical(ctx context.Context, data []byte) error {
	if len(data) == 0 {
		return errors.New("empty pgoutput message")
	}
	msg, err := parseV2(data, s.chunk != nil)
	if err != nil {
		return fmt.Errorf("parse pgoutput message %q: %w", data[0], err)
	}
	switch m := msg.(type) {
	case *pglogrepl.BeginMessage:
		return s.begin(m)
	case *pglogrepl.CommitMessage:
		return s.commit(ctx, m)
	case *pglogrepl.RelationMessageV2:
		return s.relationMsg(ctx, &m.RelationMessage)
	case *pglogrepl.TypeMessageV2:
		s.types.fallback[m.DataType] = m.Namespace + "." + m.Name
	case *pglogrepl.OriginMessage:
		// Changes replicated from elsewhere are captured like any other.
	case *pglogrepl.InsertMessageV2:
		rel, err := s.relation(m.RelationID)
		if err != nil {
			return err
		}
		vals, err := tuple(rel, m.Tuple)
		if err != nil {
			return err
		}
		return s.add(m.Xid, m.RelationID, segment.Change{Op: segment.OpInsert, Rel: rel, New: vals})
	case *pglogrepl.UpdateMessageV2:
		return s.update(m)
	case *pglogrepl.DeleteMessageV2:
		return s.delete(m)
	case *pglogrepl.TruncateMessageV2:
		return s.truncate(m)
	case *pglogrepl.LogicalDecodingMessageV2:
		return s.message(m)
	case *pglogrepl.StreamStartMessageV2:
		return s.streamStart(m)
	case *pglogrepl.StreamStopMessageV2:
		if s.chunk == nil {
			return errors.New("stream stop outside a stream")
		}
		s.chunk = nil
	case *pglogrepl.StreamCommitMessageV2:
		return s.streamCommit(ctx, m)
	case *pglogrepl.StreamAbortMessageV2:
		return s.streamAbort(m)
	default:
		return fmt.Errorf("unexpected pgoutput message %q", data[0])
	}
	return nil
}

// parseV2 is pglogrepl.ParseV2, except for the insert of a row of a table
// without columns, which pglogrepl refuses as too short: 'I', the xid (in
// a stream), the relation id, 'N' and a column count of 0, 7 bytes after
// the xid.
func parseV2(data []byte, inStream bool) (pglogrepl.Message, error) {
	body := data[1:]
	var xid uint32
	if inStream && len(body) >= 4 {
		xid, body = binary.BigEndian.Uint32(body), body[4:]
	}
	if data[0] != 'I' || len(body) != 7 || body[4] != 'N' || body[5] != 0 || body[6] != 0 {
		return pglogrepl.ParseV2(data, inStream)
	}
	m := &pglogrepl.InsertMessageV2{}
	m.RelationID = binary.BigEndian.Uint32(body)
	m.Tuple = &pglogrepl.TupleData{}
	m.Xid = xid
	return m, nil
}

func txnInfo(xid uint32, commitLSN pglogrepl.LSN, commit time.Time) segment.TxnInfo {
	return segment.TxnInfo{
		ID:     strconv.FormatUint(uint64(xid), 10),
		Pos:    segment.Position{Lo: uint64(commitLSN)},
		Commit: commit.UTC().Truncate(time.Microsecond),
	}
}

func (s *stream) begin(m *pglogrepl.BeginMessage) error {
	if s.cur != nil || s.chunk != nil {
		return errors.New("begin inside a transaction")
	}
	s.cur = &openTxn{info: txnInfo(m.Xid, m.FinalLSN, m.CommitTime), buf: capture.NewBuffer(s.r.cfg.SpillDir, s.r.cfg.SpillThreshold)}
	return nil
}

func (s *stream) commit(ctx context.Context, m *pglogrepl.CommitMessage) error {
	t := s.cur
	if t == nil {
		return errors.New("commit outside a transaction")
	}
	s.cur = nil
	if uint64(m.CommitLSN) != t.info.Pos.Lo {
		t.buf.Close()
		return fmt.Errorf("commit at %s for a transaction that began with final LSN %s", m.CommitLSN, pglogrepl.LSN(t.info.Pos.Lo))
	}
	if t.buf.Spilled() {
		s.r.log.Debug("large transaction read back from spill", "xid", t.info.ID, "changes", t.buf.Len())
	}
	return s.deliver(ctx, t.buf, t.info, m.TransactionEndLSN)
}

// deliver hands a committed transaction to the sink and releases its
// buffer.
func (s *stream) deliver(ctx context.Context, buf *capture.Buffer, info segment.TxnInfo, end pglogrepl.LSN) error {
	defer buf.Close()
	t := buf.Txn(info, segment.Position{Lo: uint64(end)})
	if err := s.callSink(func() error { return s.sink.Txn(ctx, t) }); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	s.received = max(s.received, end)
	return s.passed(ctx, end)
}

// relationMsg records a table's description: for the streamed transaction
// being received if inside a stream chunk, else as current.
func (s *stream) relationMsg(ctx context.Context, m *pglogrepl.RelationMessage) error {
	if err := s.types.resolve(ctx, m); err != nil {
		return err
	}
	rel := s.types.relation(m)
	if s.chunk != nil {
		s.chunk.rels[m.RelationID] = rel
	} else {
		s.rels[m.RelationID] = rel
	}
	return nil
}

// relation returns the description of relation id in the current context.
func (s *stream) relation(id uint32) (*segment.Relation, error) {
	if s.chunk != nil {
		if rel, ok := s.chunk.rels[id]; ok {
			return rel, nil
		}
	}
	if rel, ok := s.rels[id]; ok {
		return rel, nil
	}
	return nil, fmt.Errorf("change for relation %d before its Relation message", id)
}

// add appends a change to the open transaction; xid is the
// (sub)transaction id a streamed change came with, relid the table of a
// row change.
func (s *stream) add(xid, relid uint32, c segment.Change) error {
	switch {
	case s.chunk != nil:
		return s.chunk.buf.Add(uint64(xid), relid, c)
	case s.cur != nil:
		return s.cur.buf.Add(0, relid, c)
	}
	return fmt.Errorf("%s outside a transaction", c.Op)
}

// addBefore appends a DDL change that created table relid, to go before
// that table's first change in the open transaction.
func (s *stream) addBefore(xid, relid uint32, c segment.Change) error {
	switch {
	case s.chunk != nil:
		return s.chunk.buf.AddBefore(uint64(xid), relid, c)
	case s.cur != nil:
		return s.cur.buf.AddBefore(0, relid, c)
	}
	return fmt.Errorf("%s outside a transaction", c.Op)
}

func (s *stream) update(m *pglogrepl.UpdateMessageV2) error {
	rel, err := s.relation(m.RelationID)
	if err != nil {
		return err
	}
	c := segment.Change{Op: segment.OpUpdate, Rel: rel}
	if c.OldKind, err = oldKind(m.OldTupleType); err != nil {
		return err
	}
	if c.OldKind != segment.OldNone {
		if c.Old, err = tuple(rel, m.OldTuple); err != nil {
			return err
		}
	}
	if c.New, err = tuple(rel, m.NewTuple); err != nil {
		return err
	}
	return s.add(m.Xid, m.RelationID, c)
}

func (s *stream) delete(m *pglogrepl.DeleteMessageV2) error {
	rel, err := s.relation(m.RelationID)
	if err != nil {
		return err
	}
	c := segment.Change{Op: segment.OpDelete, Rel: rel}
	if c.OldKind, err = oldKind(m.OldTupleType); err != nil {
		return err
	}
	if c.OldKind == segment.OldNone {
		return fmt.Errorf("delete from %s.%s without old key: the table has no replica identity", rel.Schema, rel.Table)
	}
	if c.Old, err = tuple(rel, m.OldTuple); err != nil {
		return err
	}
	return s.add(m.Xid, m.RelationID, c)
}

func (s *stream) truncate(m *pglogrepl.TruncateMessageV2) error {
	c := segment.Change{Op: segment.OpTruncate, Truncated: make([]*segment.Relation, len(m.RelationIDs))}
	for i, id := range m.RelationIDs {
		rel, err := s.relation(id)
		if err != nil {
			return err
		}
		c.Truncated[i] = rel
	}
	if m.Option&pglogrepl.TruncateOptionCascade != 0 {
		c.TruncateFlags |= segment.TruncateCascade
	}
	if m.Option&pglogrepl.TruncateOptionRestartIdentity != 0 {
		c.TruncateFlags |= segment.TruncateRestartIdentity
	}
	return s.add(m.Xid, 0, c)
}

// message handles a logical decoding message. Transactional messages are
// part of their transaction: rxvault.ddl ones become OpDDL changes, all
// others (rxvault.sequences, rxvault.heartbeat, an application's) pass
// through as OpMessage. Non-transactional messages belong to no
// transaction and change no table, so they are not captured.
func (s *stream) message(m *pglogrepl.LogicalDecodingMessageV2) error {
	if !m.Transactional {
		s.r.log.Debug("non-transactional logical message skipped", "prefix", m.Prefix)
		return nil
	}
	// Content points into the connection's buffer.
	content := bytes.Clone(m.Content)
	if m.Prefix != ddlPrefix {
		return s.add(m.Xid, 0, segment.Change{Op: segment.OpMessage, Prefix: m.Prefix, Content: content, Transactional: true})
	}
	d, err := parseDDL(content)
	if err != nil {
		return err
	}
	if d.created != 0 {
		// The CREATE TABLE rxvault wrote reads no setting.
		return s.addBefore(m.Xid, d.created, d.change)
	}
	if d.session != nil {
		if err := s.add(m.Xid, 0, *d.session); err != nil {
			return err
		}
	}
	if d.stmts > 1 {
		// Never log the SQL: it may hold values.
		s.r.log.Warn("DDL query string holds several statements; replay runs the whole string once, so any DML in it would be applied twice",
			"tag", d.tag, "statements", d.stmts, "lsn", m.LSN.String())
	}
	return s.add(m.Xid, 0, d.change)
}

func (s *stream) streamStart(m *pglogrepl.StreamStartMessageV2) error {
	if s.cur != nil || s.chunk != nil {
		return errors.New("stream start inside a transaction")
	}
	st := s.streams[m.Xid]
	switch {
	case m.FirstSegment == 1:
		if st != nil {
			st.buf.Close()
		}
		st = &streamTxn{xid: m.Xid, buf: capture.NewBuffer(s.r.cfg.SpillDir, 0), rels: make(map[uint32]*segment.Relation)}
		s.streams[m.Xid] = st
	case st == nil:
		return fmt.Errorf("stream chunk for transaction %d whose first chunk never came", m.Xid)
	}
	s.chunk = st
	return nil
}

func (s *stream) streamCommit(ctx context.Context, m *pglogrepl.StreamCommitMessageV2) error {
	if s.cur != nil || s.chunk != nil {
		return errors.New("stream commit inside a transaction")
	}
	st := s.streams[m.Xid]
	if st == nil {
		return fmt.Errorf("stream commit of transaction %d that never streamed", m.Xid)
	}
	delete(s.streams, m.Xid)
	maps.Copy(s.rels, st.rels)
	s.r.log.Debug("streamed transaction committed", "xid", m.Xid, "changes", st.buf.Len())
	return s.deliver(ctx, st.buf, txnInfo(m.Xid, m.CommitLSN, m.CommitTime), m.TransactionEndLSN)
}

// streamAbort drops a streamed transaction, or one subtransaction's
// changes in it.
func (s *stream) streamAbort(m *pglogrepl.StreamAbortMessageV2) error {
	if s.cur != nil || s.chunk != nil {
		return errors.New("stream abort inside a transaction")
	}
	st := s.streams[m.Xid]
	if st == nil {
		return nil // nothing of it reached us
	}
	if m.SubXid == m.Xid {
		delete(s.streams, m.Xid)
		st.buf.Close()
		return nil
	}
	st.buf.AbortTag(uint64(m.SubXid))
	return nil
}
