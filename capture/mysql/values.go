package mysql

import (
	"fmt"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/rxvault/rxvault/internal/mysqlconn"
	"github.com/rxvault/rxvault/segment"
)

// relation builds the segment.Relation of a table map event: column names
// (binlog_row_metadata=FULL), the real type of each column and the
// primary key; and which columns are unsigned integers.
func relation(tm *replication.TableMapEvent) (*segment.Relation, []bool, error) {
	names := tm.ColumnNameString()
	if uint64(len(names)) != tm.ColumnCount {
		return nil, nil, fmt.Errorf("table %s.%s: the row event carries no column names: binlog_row_metadata was not FULL when it was written; fix: SET GLOBAL binlog_row_metadata = 'FULL'",
			mysqlconn.QuoteIdent(string(tm.Schema)), mysqlconn.QuoteIdent(string(tm.Table)))
	}
	um := tm.UnsignedMap()
	unsigned := make([]bool, tm.ColumnCount)
	rel := &segment.Relation{Schema: string(tm.Schema), Table: string(tm.Table), Columns: make([]segment.Column, tm.ColumnCount)}
	for i := range rel.Columns {
		tp, meta := realType(tm.ColumnType[i], tm.ColumnMeta[i])
		unsigned[i] = um[i]
		rel.Columns[i] = segment.Column{Name: names[i], Type: typeName(tp, meta, um[i]), TypeID: uint32(tp)}
	}
	for _, k := range tm.PrimaryKey {
		if k < uint64(len(rel.Columns)) {
			rel.Columns[k].Key = true
		}
	}
	return rel, unsigned, nil
}

// realType unpacks the real type of a MYSQL_TYPE_STRING column (ENUM and
// SET travel as STRING with the real type in the metadata's high byte).
func realType(tp byte, meta uint16) (byte, uint16) {
	if tp == gomysql.MYSQL_TYPE_STRING && meta >= 256 {
		b0 := byte(meta >> 8)
		if b0&0x30 != 0x30 {
			return b0 | 0x30, meta
		}
		return b0, meta
	}
	return tp, meta
}

// typeName is the column's type as DDL would name it, as far as the
// binlog tells (lengths of strings are not in it).
func typeName(tp byte, meta uint16, unsigned bool) string {
	u := ""
	if unsigned {
		u = " unsigned"
	}
	switch tp {
	case gomysql.MYSQL_TYPE_TINY:
		return "tinyint" + u
	case gomysql.MYSQL_TYPE_SHORT:
		return "smallint" + u
	case gomysql.MYSQL_TYPE_INT24:
		return "mediumint" + u
	case gomysql.MYSQL_TYPE_LONG:
		return "int" + u
	case gomysql.MYSQL_TYPE_LONGLONG:
		return "bigint" + u
	case gomysql.MYSQL_TYPE_NEWDECIMAL:
		return fmt.Sprintf("decimal(%d,%d)%s", meta>>8, meta&0xff, u)
	case gomysql.MYSQL_TYPE_FLOAT:
		return "float" + u
	case gomysql.MYSQL_TYPE_DOUBLE:
		return "double" + u
	case gomysql.MYSQL_TYPE_BIT:
		return fmt.Sprintf("bit(%d)", (meta>>8)*8+meta&0xff)
	case gomysql.MYSQL_TYPE_TIMESTAMP, gomysql.MYSQL_TYPE_TIMESTAMP2:
		return withFsp("timestamp", tp == gomysql.MYSQL_TYPE_TIMESTAMP2, meta)
	case gomysql.MYSQL_TYPE_DATETIME, gomysql.MYSQL_TYPE_DATETIME2:
		return withFsp("datetime", tp == gomysql.MYSQL_TYPE_DATETIME2, meta)
	case gomysql.MYSQL_TYPE_TIME, gomysql.MYSQL_TYPE_TIME2:
		return withFsp("time", tp == gomysql.MYSQL_TYPE_TIME2, meta)
	case gomysql.MYSQL_TYPE_DATE, gomysql.MYSQL_TYPE_NEWDATE:
		return "date"
	case gomysql.MYSQL_TYPE_YEAR:
		return "year"
	case gomysql.MYSQL_TYPE_ENUM:
		return "enum"
	case gomysql.MYSQL_TYPE_SET:
		return "set"
	case gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_VAR_STRING:
		return "varchar"
	case gomysql.MYSQL_TYPE_STRING:
		return "char"
	case gomysql.MYSQL_TYPE_BLOB:
		return "blob"
	case gomysql.MYSQL_TYPE_JSON:
		return "json"
	case gomysql.MYSQL_TYPE_GEOMETRY:
		return "geometry"
	}
	return fmt.Sprintf("type(%d)", tp)
}

func withFsp(name string, v2 bool, meta uint16) string {
	if v2 && meta > 0 {
		return fmt.Sprintf("%s(%d)", name, meta)
	}
	return name
}

// value converts one decoded binlog value of column col to its segment
// form. unsigned says the column is an unsigned integer: go-mysql then
// decodes it as signed (see assembler.tableMap) and value reinterprets
// the bits. The forms are the contract with replay (pitr/mysql):
//
//   - integers, YEAR: decimal text (unsigned columns as unsigned);
//   - DECIMAL: its exact decimal text;
//   - FLOAT, DOUBLE: the shortest text that parses back to the same
//     float32 or float64;
//   - DATE, TIME, DATETIME, TIMESTAMP: MySQL's text form, TIMESTAMP in UTC;
//   - ENUM: the member's index, SET: the bitmask, BIT: the bits as an
//     unsigned integer, all as decimal text;
//   - CHAR, VARCHAR, TEXT, BLOB, JSON, GEOMETRY: Binary, the stored bytes
//     (in the column's character set; JSON as MySQL's text form), a
//     BINARY(n) value (MariaDB's UUID, INET6 and INET4 too) with the
//     trailing zero bytes the binlog leaves out (colCodec.padded).
func value(ar *arena, v any, col *segment.Column, unsigned bool) (segment.Value, error) {
	if v == nil {
		return segment.Value{Kind: segment.Null}, nil
	}
	text := func(b []byte) segment.Value { return segment.Value{Kind: segment.Text, Data: b} }
	switch x := v.(type) {
	case int8:
		if unsigned {
			return text(ar.uint(uint64(uint8(x)))), nil
		}
		return text(ar.int(int64(x))), nil
	case int16:
		if unsigned {
			return text(ar.uint(uint64(uint16(x)))), nil
		}
		return text(ar.int(int64(x))), nil
	case int32:
		if unsigned {
			u := uint64(uint32(x))
			if byte(col.TypeID) == gomysql.MYSQL_TYPE_INT24 {
				u &= 1<<24 - 1 // decoded sign-extended from 24 bits
			}
			return text(ar.uint(u)), nil
		}
		return text(ar.int(int64(x))), nil
	case int:
		return text(ar.int(int64(x))), nil
	case int64:
		if unsigned {
			return text(ar.uint(uint64(x))), nil
		}
		switch byte(col.TypeID) {
		case gomysql.MYSQL_TYPE_BIT, gomysql.MYSQL_TYPE_SET:
			return text(ar.uint(uint64(x))), nil
		}
		return text(ar.int(x)), nil
	case uint8:
		return text(ar.uint(uint64(x))), nil
	case uint16:
		return text(ar.uint(uint64(x))), nil
	case uint32:
		return text(ar.uint(uint64(x))), nil
	case uint64:
		return text(ar.uint(x)), nil
	case float32:
		return text(ar.float(float64(x), 32)), nil
	case float64:
		return text(ar.float(x, 64)), nil
	case string:
		switch byte(col.TypeID) {
		case gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_VAR_STRING, gomysql.MYSQL_TYPE_STRING, gomysql.MYSQL_TYPE_JSON:
			return segment.Value{Kind: segment.Binary, Data: ar.str(x)}, nil
		}
		return text(ar.str(x)), nil
	case []byte:
		return segment.Value{Kind: segment.Binary, Data: ar.bytes(x)}, nil
	}
	return segment.Value{}, fmt.Errorf("column %s (%s): unexpected value type %T", col.Name, col.Type, v)
}
