package mysql

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/rxvault/rxvault/segment"
)

// This file decodes row images straight into segment values, for the
// tables whose every column has a type it knows (rowCodec.fast): the
// common types of a pharmacy schema. Each value comes out exactly as
// value makes it from go-mysql's decoding (the contract with replay,
// see value), which TestRowImageAgainstGoMySQL checks type by type
// against binlogs a real server wrote; tables with other types (MySQL's
// binary JSON, pre-5.6 temporal types, compressed columns) are decoded by
// go-mysql. Doing it here saves a value boxed in an interface, and a
// fmt.Sprintf for every temporal value, per column of every row.
//
// The format (MySQL's sql/log_event.cc, log_event_print_value): a row
// image is a bitmap of its NULL columns, one bit per column the image
// holds, then each non-NULL value in column order, little-endian unless
// said otherwise below.

// colCodec is how one column's values are laid out in a row image.
type colCodec struct {
	tp       byte   // the real type (ENUM and SET unpacked from STRING)
	meta     uint16 // the table map's metadata of the column
	unsigned bool   // an unsigned integer
	strLen   int    // CHAR: its maximum length in bytes
	// pad is n for a BINARY(n) column (MariaDB's UUID, INET6 and INET4
	// are binlogged as BINARY too): its values are n bytes, of which the
	// binlog leaves out the trailing zeros. padded puts them back, so the
	// archive holds the stored value, which a UUID column must get back
	// whole (it refuses a shorter one).
	pad int
}

// rowCodec decodes the row images of one table map.
type rowCodec struct {
	cols []colCodec
	fast bool // every column has a type decodeImage knows
}

// newRowCodec builds the codec of the columns of table map tm (parsed
// with its optional metadata: the binary columns are those of collation
// 63, binary), whose unsigned integer columns are marked in unsigned.
func newRowCodec(tm *replication.TableMapEvent, unsigned []bool) rowCodec {
	types, metas := tm.ColumnType, tm.ColumnMeta
	collations := tm.CollationMap()
	rc := rowCodec{cols: make([]colCodec, len(types)), fast: true}
	for i := range types {
		tp, meta := realType(types[i], metas[i])
		c := colCodec{tp: tp, meta: meta, unsigned: unsigned[i]}
		if types[i] == gomysql.MYSQL_TYPE_STRING {
			c.strLen = int(meta)
			if meta >= 256 {
				b0, b1 := byte(meta>>8), byte(meta)
				if b0&0x30 != 0x30 {
					c.strLen = int(uint16(b1) | uint16((b0&0x30)^0x30)<<4)
				} else {
					c.strLen = int(b1)
				}
			}
		}
		if tp == gomysql.MYSQL_TYPE_STRING && collations[i] == binaryCollation {
			c.pad = c.strLen
		}
		rc.cols[i] = c
		rc.fast = rc.fast && fastType(tp)
	}
	return rc
}

// binaryCollation is the id of the binary character set's collation.
const binaryCollation = 63

// padded returns v, a value of column c, with the zero bytes the binlog
// left out of a BINARY(n) value put back.
func (c *colCodec) padded(ar *arena, v segment.Value) segment.Value {
	if c.pad == 0 || v.Kind == segment.Null || len(v.Data) >= c.pad {
		return v
	}
	b := append(ar.open(c.pad), v.Data...)
	b = append(b, make([]byte, c.pad-len(v.Data))...)
	return segment.Value{Kind: v.Kind, Data: ar.close(b)}
}

// fastType reports a type decodeImage decodes.
func fastType(tp byte) bool {
	switch tp {
	case gomysql.MYSQL_TYPE_TINY, gomysql.MYSQL_TYPE_SHORT, gomysql.MYSQL_TYPE_INT24, gomysql.MYSQL_TYPE_LONG, gomysql.MYSQL_TYPE_LONGLONG,
		gomysql.MYSQL_TYPE_FLOAT, gomysql.MYSQL_TYPE_DOUBLE, gomysql.MYSQL_TYPE_NEWDECIMAL, gomysql.MYSQL_TYPE_YEAR,
		gomysql.MYSQL_TYPE_DATE, gomysql.MYSQL_TYPE_TIME2, gomysql.MYSQL_TYPE_DATETIME2, gomysql.MYSQL_TYPE_TIMESTAMP2,
		gomysql.MYSQL_TYPE_BIT, gomysql.MYSQL_TYPE_ENUM, gomysql.MYSQL_TYPE_SET,
		gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_VAR_STRING, gomysql.MYSQL_TYPE_STRING,
		gomysql.MYSQL_TYPE_BLOB, gomysql.MYSQL_TYPE_GEOMETRY:
		return true
	}
	return false
}

var errShortImage = errors.New("row image ends inside a value")

// decodeImage decodes one full row image (every column present) at the
// start of data into values from ar, and returns them and the image's
// length.
func (rc *rowCodec) decodeImage(ar *arena, data []byte) ([]segment.Value, int, error) {
	nullBytes := (len(rc.cols) + 7) / 8
	if len(data) < nullBytes {
		return nil, 0, errShortImage
	}
	nulls, pos := data[:nullBytes], nullBytes
	out := ar.values(len(rc.cols))
	for i := range rc.cols {
		if nulls[i/8]&(1<<(i%8)) != 0 {
			out[i] = segment.Value{Kind: segment.Null}
			continue
		}
		v, n, err := rc.cols[i].decode(ar, data[pos:])
		if err != nil {
			return nil, 0, fmt.Errorf("column %d: %w", i+1, err)
		}
		out[i], pos = v, pos+n
	}
	return out, pos, nil
}

// decode decodes the value at the start of data, and returns its length.
func (c *colCodec) decode(ar *arena, data []byte) (segment.Value, int, error) {
	text := func(b []byte, n int) (segment.Value, int, error) {
		return segment.Value{Kind: segment.Text, Data: b}, n, nil
	}
	fixed := func(n int) bool { return len(data) >= n }
	switch c.tp {
	case gomysql.MYSQL_TYPE_TINY, gomysql.MYSQL_TYPE_SHORT, gomysql.MYSQL_TYPE_INT24, gomysql.MYSQL_TYPE_LONG, gomysql.MYSQL_TYPE_LONGLONG:
		n := intWidth(c.tp)
		if !fixed(n) {
			return segment.Value{}, 0, errShortImage
		}
		u := leUint(data[:n])
		if c.unsigned {
			return text(ar.uint(u), n)
		}
		shift := 64 - 8*uint(n)
		return text(ar.int(int64(u<<shift)>>shift), n) // sign-extended
	case gomysql.MYSQL_TYPE_FLOAT:
		if !fixed(4) {
			return segment.Value{}, 0, errShortImage
		}
		return text(ar.float(float64(math.Float32frombits(binary.LittleEndian.Uint32(data))), 32), 4)
	case gomysql.MYSQL_TYPE_DOUBLE:
		if !fixed(8) {
			return segment.Value{}, 0, errShortImage
		}
		return text(ar.float(math.Float64frombits(binary.LittleEndian.Uint64(data)), 64), 8)
	case gomysql.MYSQL_TYPE_NEWDECIMAL:
		return c.decimal(ar, data)
	case gomysql.MYSQL_TYPE_YEAR:
		if !fixed(1) {
			return segment.Value{}, 0, errShortImage
		}
		y := int64(data[0])
		if y != 0 {
			y += 1900
		}
		return text(ar.int(y), 1)
	case gomysql.MYSQL_TYPE_DATE:
		if !fixed(3) {
			return segment.Value{}, 0, errShortImage
		}
		v := leUint(data[:3])
		b := ar.open(10)
		b = appendDate(b, int(v>>9), int((v>>5)&15), int(v&31))
		return text(ar.close(b), 3)
	case gomysql.MYSQL_TYPE_TIME2:
		return c.time2(ar, data)
	case gomysql.MYSQL_TYPE_DATETIME2:
		return c.datetime2(ar, data)
	case gomysql.MYSQL_TYPE_TIMESTAMP2:
		return c.timestamp2(ar, data)
	case gomysql.MYSQL_TYPE_BIT:
		nbits := int(c.meta>>8)*8 + int(c.meta&0xff)
		n := (nbits + 7) / 8
		if n < 1 || n > 8 || !fixed(n) {
			return segment.Value{}, 0, fmt.Errorf("bit value of %d bytes", n)
		}
		return text(ar.uint(beUint(data[:n])), n)
	case gomysql.MYSQL_TYPE_ENUM:
		n := int(c.meta & 0xff)
		if n != 1 && n != 2 || !fixed(n) {
			return segment.Value{}, 0, fmt.Errorf("enum value of %d bytes", n)
		}
		return text(ar.uint(leUint(data[:n])), n)
	case gomysql.MYSQL_TYPE_SET:
		n := int(c.meta & 0xff)
		if n < 1 || n > 8 || !fixed(n) {
			return segment.Value{}, 0, fmt.Errorf("set value of %d bytes", n)
		}
		return text(ar.uint(leUint(data[:n])), n)
	case gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_VAR_STRING:
		return stringValue(ar, data, int(c.meta))
	case gomysql.MYSQL_TYPE_STRING:
		v, n, err := stringValue(ar, data, c.strLen)
		return c.padded(ar, v), n, err
	case gomysql.MYSQL_TYPE_BLOB, gomysql.MYSQL_TYPE_GEOMETRY:
		n := int(c.meta)
		if n < 1 || n > 4 || !fixed(n) {
			return segment.Value{}, 0, fmt.Errorf("blob length of %d bytes", n)
		}
		l := leUint(data[:n])
		if uint64(len(data)-n) < l {
			return segment.Value{}, 0, errShortImage
		}
		return segment.Value{Kind: segment.Binary, Data: ar.bytes(data[n : n+int(l)])}, n + int(l), nil
	}
	return segment.Value{}, 0, fmt.Errorf("type %d has no decoder here", c.tp)
}

// stringValue decodes a CHAR or VARCHAR of at most maxLen bytes: a length
// of one byte (two from 256 on), then the bytes.
func stringValue(ar *arena, data []byte, maxLen int) (segment.Value, int, error) {
	p := 1
	if maxLen >= 256 {
		p = 2
	}
	if len(data) < p {
		return segment.Value{}, 0, errShortImage
	}
	l := int(leUint(data[:p]))
	if len(data)-p < l {
		return segment.Value{}, 0, errShortImage
	}
	return segment.Value{Kind: segment.Binary, Data: ar.bytes(data[p : p+l])}, p + l, nil
}

func intWidth(tp byte) int {
	switch tp {
	case gomysql.MYSQL_TYPE_TINY:
		return 1
	case gomysql.MYSQL_TYPE_SHORT:
		return 2
	case gomysql.MYSQL_TYPE_INT24:
		return 3
	case gomysql.MYSQL_TYPE_LONG:
		return 4
	}
	return 8
}

// leUint and beUint read an unsigned integer of len(b) ≤ 8 bytes.
func leUint(b []byte) uint64 {
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

func beUint(b []byte) uint64 {
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v
}

// temporal checks a temporal column's fractional digits (fsp, at most
// 6), and that data holds a value of intBytes bytes and its fraction; it
// returns fsp and the value's length.
func (c *colCodec) temporal(data []byte, what string, intBytes int) (uint16, int, error) {
	fsp := c.meta
	if fsp > 6 {
		return 0, 0, fmt.Errorf("%s with %d fractional digits", what, fsp)
	}
	n := intBytes + int(fsp+1)/2
	if len(data) < n {
		return 0, 0, errShortImage
	}
	return fsp, n, nil
}

// frac reads the fractional seconds of a temporal value of fsp digits
// as microseconds.
func frac(b []byte, fsp uint16) int64 {
	switch fsp {
	case 1, 2:
		return int64(b[0]) * 10000
	case 3, 4:
		return int64(binary.BigEndian.Uint16(b)) * 100
	case 5, 6:
		return int64(beUint(b[:3]))
	}
	return 0
}

// datetime2 decodes a DATETIME(fsp): 5 bytes big-endian, offset by
// 0x8000000000, of year*13+month (17 bits), day (5), hour (5), minute (6),
// second (6), then the fraction. The zero date and invalid dates
// (ALLOW_INVALID_DATES) come out as they are stored.
func (c *colCodec) datetime2(ar *arena, data []byte) (segment.Value, int, error) {
	fsp, n, err := c.temporal(data, "datetime", 5)
	if err != nil {
		return segment.Value{}, 0, err
	}
	ip := int64(beUint(data[:5])) - 0x8000000000
	us := frac(data[5:], fsp)
	b := ar.open(26)
	if ip == 0 {
		b = append(b, "0000-00-00 00:00:00"...)
	} else {
		v := ip<<24 + us
		if v < 0 {
			v = -v
		}
		ymdhms := v >> 24
		ymd, hms := ymdhms>>17, ymdhms%(1<<17)
		ym := ymd >> 5
		b = appendDateTime(b, int(ym/13), int(ym%13), int(ymd%(1<<5)), int(hms>>12), int((hms>>6)%(1<<6)), int(hms%(1<<6)))
	}
	return segment.Value{Kind: segment.Text, Data: ar.close(appendFrac(b, us, fsp))}, n, nil
}

// timestamp2 decodes a TIMESTAMP(fsp): seconds since the epoch, 4 bytes
// big-endian, then the fraction; written in UTC, 0 as the zero date.
func (c *colCodec) timestamp2(ar *arena, data []byte) (segment.Value, int, error) {
	fsp, n, err := c.temporal(data, "timestamp", 4)
	if err != nil {
		return segment.Value{}, 0, err
	}
	sec := int64(binary.BigEndian.Uint32(data))
	us := frac(data[4:], fsp)
	b := ar.open(26)
	if sec == 0 {
		b = append(b, "0000-00-00 00:00:00"...)
	} else {
		t := time.Unix(sec, 0).UTC()
		y, mo, d := t.Date()
		h, mi, s := t.Clock()
		b = appendDateTime(b, y, int(mo), d, h, mi, s)
	}
	return segment.Value{Kind: segment.Text, Data: ar.close(appendFrac(b, us, fsp))}, n, nil
}

// time2 decodes a TIME(fsp): 3 bytes big-endian, offset by 0x800000, of
// sign, hour (10 bits), minute (6), second (6), then the fraction; a
// negative value's fraction is stored complemented (for fsp 1 to 4), and
// with fsp 5 or 6 all 6 bytes are one offset number. Like go-mysql, a
// zero fraction is not written.
func (c *colCodec) time2(ar *arena, data []byte) (segment.Value, int, error) {
	fsp, n, err := c.temporal(data, "time", 3)
	if err != nil {
		return segment.Value{}, 0, err
	}
	var v int64 // sign and hms << 24 | microseconds
	switch fsp {
	case 1, 2:
		ip, f := int64(beUint(data[:3]))-0x800000, int64(data[3])
		if ip < 0 && f != 0 {
			ip, f = ip+1, f-0x100
		}
		v = ip<<24 + f*10000
	case 3, 4:
		ip, f := int64(beUint(data[:3]))-0x800000, int64(binary.BigEndian.Uint16(data[3:]))
		if ip < 0 && f != 0 {
			ip, f = ip+1, f-0x10000
		}
		v = ip<<24 + f*100
	case 5, 6:
		v = int64(beUint(data[:6])) - 0x800000000000
	default:
		v = (int64(beUint(data[:3])) - 0x800000) << 24
	}
	b := ar.open(18)
	if v < 0 {
		b, v = append(b, '-'), -v
	}
	hms, us := v>>24, v%(1<<24)
	b = appendClock(b, int((hms>>12)%(1<<10)), int((hms>>6)%(1<<6)), int(hms%(1<<6)))
	if us != 0 {
		b = appendFrac(b, us, fsp)
	}
	return segment.Value{Kind: segment.Text, Data: ar.close(b)}, n, nil
}

// appendDate appends YYYY-MM-DD, appendClock HH:MM:SS (hours of more
// than two digits in full), appendDateTime both with a space between, and
// appendFrac the first fsp of the six digits of us after a point (nothing
// for fsp 0).
func appendDate(b []byte, y, m, d int) []byte { return appendFields(b, y, 4, '-', m, d) }

func appendClock(b []byte, h, m, s int) []byte { return appendFields(b, h, 2, ':', m, s) }

func appendDateTime(b []byte, y, mo, d, h, mi, s int) []byte {
	return appendClock(append(appendDate(b, y, mo, d), ' '), h, mi, s)
}

// appendFields appends x (zero-padded to width digits), sep, y, sep, z
// (each of two digits).
func appendFields(b []byte, x, width int, sep byte, y, z int) []byte {
	b = append(appendDigits(b, x, width), sep)
	return appendDigits(append(appendDigits(b, y, 2), sep), z, 2)
}

func appendFrac(b []byte, us int64, fsp uint16) []byte {
	if fsp == 0 {
		return b
	}
	var d [6]byte
	for i := 5; i >= 0; i-- {
		d[i] = byte('0' + us%10)
		us /= 10
	}
	b = append(b, '.')
	return append(b, d[:fsp]...)
}

// appendDigits appends v in decimal, zero-padded to at least width
// digits.
func appendDigits(b []byte, v, width int) []byte {
	var d [20]byte
	i := len(d)
	for v >= 10 || width > 1 {
		i--
		d[i] = byte('0' + v%10)
		v /= 10
		width--
	}
	i--
	d[i] = byte('0' + v)
	return append(b, d[i:]...)
}

// decimal decodes a DECIMAL(precision, scale), meta's high and low byte:
// the integer digits, then the fraction's, each in groups of nine to a
// 4-byte big-endian word, with a shorter word for a leftover group
// (digitBytes); the first bit is the sign, inverted, and a negative
// value has every bit inverted. It is written without leading zeros in
// its integer part and with scale fraction digits.
func (c *colCodec) decimal(ar *arena, data []byte) (segment.Value, int, error) {
	prec, scale := int(c.meta>>8), int(c.meta&0xff)
	if prec < 1 || prec > 65 || scale > 30 || scale > prec {
		return segment.Value{}, 0, fmt.Errorf("decimal(%d,%d)", prec, scale)
	}
	intg := prec - scale
	n := intg/9*4 + digitBytes[intg%9] + scale/9*4 + digitBytes[scale%9]
	if len(data) < n {
		return segment.Value{}, 0, errShortImage
	}
	var buf [32]byte
	d := append(buf[:0], data[:n]...)
	neg := d[0]&0x80 == 0
	d[0] ^= 0x80
	if neg {
		for i := range d {
			d[i] ^= 0xff
		}
	}
	b := ar.open(prec + 3)
	if neg {
		b = append(b, '-')
	}
	lead := true // no digit written yet
	word := func(size, digits int) {
		v := int(beUint(d[:size]))
		d = d[size:]
		if lead && v == 0 {
			return
		}
		if lead {
			b, lead = appendDigits(b, v, 1), false
		} else {
			b = appendDigits(b, v, digits)
		}
	}
	if r := intg % 9; r > 0 {
		word(digitBytes[r], r)
	}
	for range intg / 9 {
		word(4, 9)
	}
	if lead {
		b = append(b, '0')
	}
	if scale > 0 {
		b = append(b, '.')
		for range scale / 9 {
			b = appendDigits(b, int(beUint(d[:4])), 9)
			d = d[4:]
		}
		if r := scale % 9; r > 0 {
			b = appendDigits(b, int(beUint(d[:digitBytes[r]])), r)
		}
	}
	return segment.Value{Kind: segment.Text, Data: ar.close(b)}, n, nil
}

// digitBytes is the length of a word of 0 to 8 decimal digits.
var digitBytes = [9]int{0, 1, 1, 2, 2, 3, 3, 4, 4}
