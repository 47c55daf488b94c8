package mysql

import (
	"errors"
	"fmt"

	"github.com/go-mysql-org/go-mysql/replication"
)

// The heads of the events every transaction has, read on the reader's
// goroutine from the raw events the stream queues (see eventQueue): a
// table map's id and names, and what precedes a rows event's images.
// Layouts as in MySQL's and MariaDB's log_event.h; every read is bounds
// checked, so a cut event is an error, never a panic.

// tableMapName reads a table map body's table id and names (within body).
func tableMapName(body []byte, idSize int) (id uint64, schema, table []byte, err error) {
	c := binCursor{b: body}
	id = c.uint(idSize)
	c.skip(2) // flags
	schema = c.bytes(int(c.uint(1)))
	c.skip(1) // NUL
	table = c.bytes(int(c.uint(1)))
	if c.short {
		return 0, nil, nil, errors.New("table map cut short")
	}
	return id, schema, table, nil
}

// rowsHead is what precedes a rows event's row images.
type rowsHead struct {
	tableID  uint64
	flags    uint16
	columns  uint64
	present  []byte // bitmap of the columns in each (before) image
	present2 []byte // update events: of the columns in each after image
	rows     []byte // the row images
}

// parseRowsHead reads the head of a rows event body of type t whose
// table ids have idSize bytes.
func parseRowsHead(body []byte, t replication.EventType, idSize int) (rowsHead, error) {
	c := binCursor{b: body}
	var h rowsHead
	h.tableID = c.uint(idSize)
	h.flags = uint16(c.uint(2))
	switch t {
	case replication.WRITE_ROWS_EVENTv2, replication.UPDATE_ROWS_EVENTv2, replication.DELETE_ROWS_EVENTv2, replication.PARTIAL_UPDATE_ROWS_EVENT:
		n := int(c.uint(2)) // extra data, its length included
		if n < 2 {
			return rowsHead{}, errors.New("rows event: extra data length below 2")
		}
		c.skip(n - 2)
	}
	h.columns = c.lenInt()
	if h.columns > 4096 {
		return rowsHead{}, fmt.Errorf("rows event: %d columns", h.columns)
	}
	size := int(h.columns+7) / 8
	h.present = c.bytes(size)
	switch t {
	case replication.UPDATE_ROWS_EVENTv0, replication.UPDATE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv2,
		replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1, replication.PARTIAL_UPDATE_ROWS_EVENT:
		h.present2 = c.bytes(size)
	}
	if c.short {
		return rowsHead{}, errors.New("rows event cut short")
	}
	h.rows = c.b
	return h, nil
}

// binCursor reads little-endian binlog fields from b; short is set once
// a read runs past its end (later reads then return zero values).
type binCursor struct {
	b     []byte
	short bool
}

func (c *binCursor) bytes(n int) []byte {
	if c.short || n < 0 || n > len(c.b) {
		c.short = true
		return nil
	}
	v := c.b[:n]
	c.b = c.b[n:]
	return v
}

func (c *binCursor) skip(n int) { c.bytes(n) }

// uint reads an n-byte unsigned integer (n at most 8).
func (c *binCursor) uint(n int) uint64 { return leUint(c.bytes(n)) }

// lenInt reads a length-encoded integer.
func (c *binCursor) lenInt() uint64 {
	switch first := c.uint(1); {
	case first < 0xfb:
		return first
	case first == 0xfc:
		return c.uint(2)
	case first == 0xfd:
		return c.uint(3)
	case first == 0xfe:
		return c.uint(8)
	default:
		c.short = true // 0xfb (NULL) and 0xff are not lengths
		return 0
	}
}

// rowsEvent reports the rows event types.
func rowsEvent(t replication.EventType) bool {
	switch t {
	case replication.WRITE_ROWS_EVENTv0, replication.UPDATE_ROWS_EVENTv0, replication.DELETE_ROWS_EVENTv0,
		replication.WRITE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv1, replication.DELETE_ROWS_EVENTv1,
		replication.WRITE_ROWS_EVENTv2, replication.UPDATE_ROWS_EVENTv2, replication.DELETE_ROWS_EVENTv2,
		replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1, replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1,
		replication.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1, replication.PARTIAL_UPDATE_ROWS_EVENT:
		return true
	}
	return false
}
