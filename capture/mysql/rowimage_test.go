package mysql

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/rxvault/rxvault/internal/testenv"
	"github.com/rxvault/rxvault/segment"
)

// rowImageTables have a column of every type decodeImage decodes, in
// every length and precision that changes the layout (MariaDB's UUID and
// INET6 travel as BINARY(16): see colCodec.pad).
var rowImageTables = []string{
	`CREATE TABLE ri.ints (id INT PRIMARY KEY, t TINYINT, tu TINYINT UNSIGNED, s SMALLINT, su SMALLINT UNSIGNED,
		m MEDIUMINT, mu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, b BIGINT, bu BIGINT UNSIGNED, y YEAR)`,
	`CREATE TABLE ri.nums (id INT PRIMARY KEY, f FLOAT, d DOUBLE, d65 DECIMAL(65,30), d10 DECIMAL(10,0), d102 DECIMAL(10,2),
		d55 DECIMAL(5,5), d1 DECIMAL(1,0), d189 DECIMAL(18,9), d1910 DECIMAL(19,10), d94 DECIMAL(9,4), d300 DECIMAL(30,0), d3817 DECIMAL(38,17))`,
	`CREATE TABLE ri.times (id INT PRIMARY KEY, dt0 DATE, tm0 TIME, tm1 TIME(1), tm2 TIME(2), tm3 TIME(3), tm4 TIME(4), tm5 TIME(5), tm6 TIME(6),
		dtm0 DATETIME, dtm1 DATETIME(1), dtm2 DATETIME(2), dtm3 DATETIME(3), dtm4 DATETIME(4), dtm5 DATETIME(5), dtm6 DATETIME(6),
		ts0 TIMESTAMP NULL, ts1 TIMESTAMP(1) NULL, ts3 TIMESTAMP(3) NULL, ts4 TIMESTAMP(4) NULL, ts6 TIMESTAMP(6) NULL)`,
	fmt.Sprintf(`CREATE TABLE ri.misc (id INT PRIMARY KEY, b1 BIT(1), b8 BIT(8), b12 BIT(12), b64 BIT(64),
		e ENUM('a','b','c'), eb ENUM(%s), s SET('x','y','z'), sb SET(%s),
		c10 CHAR(10) CHARACTER SET latin1, c255 CHAR(255) CHARACTER SET utf8mb4, bin BINARY(5), v10 VARCHAR(10) CHARACTER SET utf8mb4,
		v300 VARCHAR(300) CHARACTER SET utf8mb4, vb VARBINARY(20), tb TINYBLOB, bl BLOB, mb MEDIUMBLOB, lb LONGBLOB,
		tt TINYTEXT, tx TEXT, mt MEDIUMTEXT, lt LONGTEXT, j JSON, g GEOMETRY, u UUID, i6 INET6)`, members("e", 300), members("s", 64)),
}

var rowImageRows = []string{
	`INSERT INTO ri.ints VALUES (1, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0, 0),
		(2, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, 18446744073709551615, 2155),
		(3, -1, 128, -1, 32768, -1, 8388608, -1, 2147483648, -1, 9223372036854775808, 1901),
		(4, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2026),
		(5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
	`INSERT INTO ri.nums VALUES (1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
		(2, -0.1, 2.718281828459045, '-12345678901234567890123456789012345.123456789012345678901234567890', 9999999999, -99999999.99,
		 0.00001, -9, '123456789.123456789', '-123456789.0000000001', '-0.0001', '999999999999999999999999999999', '0.00000000000000001'),
		(3, 3.4028235e38, 1.7976931348623157e308, '0.000000000000000000000000000001', -9999999999, 0.05, -0.99999, 9,
		 '-999999999.999999999', '999999999.9999999999', '12345.6789', '-1', '-123456789012345678901.00000000000000001'),
		(4, 1e-45, 5e-324, '1', 1, -0.01, 0.5, 1, '0.000000001', '0.0000000001', '0.5', '1000000000', '100000000000000000000'),
		(5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
	`INSERT INTO ri.times VALUES (1, '0000-00-00', '00:00:00', '00:00:00.0', '00:00:00', '00:00:00.000', '00:00:00', '00:00:00', '00:00:00.000000',
		'0000-00-00 00:00:00', '0000-00-00 00:00:00.0', '0000-00-00 00:00:00', '0000-00-00 00:00:00.000', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00.000000',
		'0000-00-00 00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00'),
		(2, '1000-01-01', '-838:59:59', '-838:59:58.9', '-00:00:00.01', '-12:34:56.789', '-00:00:01.0001', '-00:00:00.00001', '-838:59:58.999999',
		 '1000-01-01 00:00:00', '1000-01-01 00:00:00.1', '1000-01-01 00:00:00.01', '1000-01-01 00:00:00.001', '1000-01-01 00:00:00.0001', '1000-01-01 00:00:00.00001', '1000-01-01 00:00:00.000001',
		 '1970-01-01 00:00:01', '1970-01-01 00:00:01.1', '1970-01-01 00:00:01.001', '1970-01-01 00:00:01.0001', '1970-01-01 00:00:01.000001'),
		(3, '9999-12-31', '838:59:59', '838:59:58.9', '00:00:00.99', '12:34:56.789', '23:59:59.9999', '100:00:00.12345', '838:59:58.999999',
		 '9999-12-31 23:59:59', '9999-12-31 23:59:59.9', '9999-12-31 23:59:59.99', '9999-12-31 23:59:59.999', '9999-12-31 23:59:59.9999', '9999-12-31 23:59:59.99999', '9999-12-31 23:59:59.999999',
		 '2038-01-19 03:14:07', '2038-01-19 03:14:07.9', '2038-01-19 03:14:07.999', '2038-01-19 03:14:07.9999', '2038-01-19 03:14:07.999999'),
		(4, '2026-02-30', '-00:00:01', '-01:00:00.5', '10:00:00.5', '-00:00:00.001', '00:00:00.0001', '00:00:00.00001', '-00:00:00.000001',
		 '2026-02-31 10:00:00', '2026-00-00 00:00:00.5', '2026-04-00 12:00:00', '2026-12-00 00:00:00.123', '2024-02-29 12:00:00.5', '2026-12-03 12:34:56.78901', '2026-12-03 12:34:56.000000',
		 '2026-12-03 12:34:56', '2026-12-03 12:34:56.5', '2026-12-03 12:34:56.123', '2026-12-03 12:34:56.1234', '2026-12-03 12:34:56.654321'),
		(5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
	`INSERT INTO ri.misc VALUES (1, b'0', b'0', b'0', b'0', 'a', 'e1', '', '',
		'', '', X'', '', '', X'', X'', X'', X'', X'', '', '', '', '', '{}', POINT(0, 0), '00000000-0000-0000-0000-000000000000', '::'),
		(2, b'1', b'11111111', b'111111111111', b'1111111111111111111111111111111111111111111111111111111111111111', 'c', 'e300', 'x,y,z', 's1,s64',
		 'abcdefghij', REPEAT('💊', 255), X'0001020304', 'café 💊', REPEAT('é', 300), X'00FF00FF', REPEAT(X'AB', 255), REPEAT(X'CD', 65535),
		 REPEAT(X'EF', 70000), REPEAT(X'01', 300000), REPEAT('t', 255), REPEAT('x', 1000), REPEAT('m', 70000), REPEAT('l', 70000),
		 '{"k": [1, 2.5, "v"], "n": null}', ST_GeomFromText('POLYGON((0 0, 1 0, 1 1, 0 0))'), '123e4567-e89b-12d3-a456-426655440000', '2001:db8::ff00:42:8329'),
		(3, b'1', b'10000000', b'100000000000', b'1000000000000000000000000000000000000000000000000000000000000000', 'b', 'e256', 'y', 's63',
		 'a ', 'b ', X'01', ' v ', 'w', X'20', X'00', X'00', X'00', X'00', ' ', ' ', ' ', ' ', '[]', POINT(-1.5, 2.25), 'ffffffff-ffff-ffff-ffff-ffffffffffff', '::ffff:1.2.3.4'),
		(4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
	// Two images per row, then one.
	`UPDATE ri.ints SET t = t, y = 0 WHERE id > 0`,
	`UPDATE ri.nums SET f = -f, d10 = 0 WHERE id IN (2, 3, 5)`,
	`UPDATE ri.times SET dt0 = '2026-12-03' WHERE id IN (1, 4, 5)`,
	`UPDATE ri.misc SET e = 'a' WHERE id > 1`,
	`DELETE FROM ri.ints`, `DELETE FROM ri.nums`, `DELETE FROM ri.times`, `DELETE FROM ri.misc`,
}

func members(prefix string, n int) string {
	m := make([]string, n)
	for i := range m {
		m[i] = fmt.Sprintf("'%s%d'", prefix, i+1)
	}
	return strings.Join(m, ",")
}

// TestRowImageAgainstGoMySQL decodes every row image a real server wrote
// for the tables above, with values at the ends of every range (the zero
// date, invalid dates, negative times with fractions, the largest
// decimals), both with decodeImage and as before it, with go-mysql and
// value, and checks that the two give the same value, byte for byte, for
// every column of every image.
func TestRowImageAgainstGoMySQL(t *testing.T) {
	m := testenv.StartMariaDB(t)
	m.CreateDatabase(t, "ri")
	c, err := m.RootConn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, q := range append(append([]string{"SET SESSION sql_mode = 'ALLOW_INVALID_DATES'", "SET SESSION time_zone = '+00:00'"}, rowImageTables...), rowImageRows...) {
		if _, err := c.Execute(q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	m.Exec(t, "FLUSH BINARY LOGS")
	files, err := filepath.Glob(filepath.Join(m.Dir(), "*", "mysql-bin.[0-9]*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("binlog files: %v %v", files, err)
	}

	type held struct {
		data []byte
		pos  int
	}
	var rows held
	p := replication.NewBinlogParser()
	p.SetTimestampStringLocation(time.UTC) // as Reader.Run's syncer
	p.SetRowsEventDecodeFunc(func(e *replication.RowsEvent, data []byte) error {
		pos, err := e.DecodeHeader(data)
		rows = held{data: data, pos: pos}
		return err
	})
	codecs := map[uint64]*tableRel{}
	seen := map[byte]int{} // non-NULL values compared, by type
	images, padded := 0, 0
	crc := 0
	heads := 0
	for _, f := range files {
		err := p.ParseFile(f, 0, func(ev *replication.BinlogEvent) error {
			body := ev.RawData[replication.EventHeaderSize : len(ev.RawData)-crc]
			switch e := ev.Event.(type) {
			case *replication.FormatDescriptionEvent:
				crc = 0
				if e.ChecksumAlgorithm == replication.BINLOG_CHECKSUM_ALG_CRC32 {
					crc = replication.BinlogChecksumLength
				}
			case *replication.TableMapEvent:
				// The assembler reads the id and names of every map itself.
				id, schema, table, err := tableMapName(body, 6)
				if err != nil || id != e.TableID || string(schema) != string(e.Schema) || string(table) != string(e.Table) {
					t.Errorf("table map: tableMapName %d %s.%s %v, go-mysql %d %s.%s", id, schema, table, err, e.TableID, e.Schema, e.Table)
				}
				if string(e.Schema) != "ri" {
					return nil
				}
				rel, unsigned, err := relation(e)
				if err != nil {
					return err
				}
				tr := &tableRel{rel: rel, unsigned: unsigned, codec: newRowCodec(e, unsigned)}
				codecs[e.TableID] = tr
				for i, c := range rel.Columns {
					want := map[string]int{"bin": 5, "u": 16, "i6": 16}[c.Name]
					if got := tr.codec.cols[i].pad; got != want {
						t.Errorf("%s.%s (%s): padded to %d bytes, want %d", rel.Table, c.Name, c.Type, got, want)
					}
				}
				e.SignednessBitmap = nil // as assembler.tableMap: go-mysql decodes integers as signed
			case *replication.RowsEvent:
				// ... and the head of every rows event.
				h, err := parseRowsHead(body, ev.Header.EventType, 6)
				if err != nil || h.tableID != e.TableID || h.flags != e.Flags || h.columns != e.ColumnCount ||
					string(h.present) != string(e.ColumnBitmap1) || string(h.present2) != string(e.ColumnBitmap2) ||
					len(h.rows) != len(rows.data)-rows.pos {
					t.Errorf("%s: parseRowsHead %+v %v differs from go-mysql's", ev.Header.EventType, h, err)
				}
				heads++
				for cut := range len(body) - len(h.rows) {
					if _, err := parseRowsHead(body[:cut], ev.Header.EventType, 6); err == nil {
						t.Errorf("%s: a head cut to %d bytes parsed", ev.Header.EventType, cut)
					}
				}
				tr := codecs[e.TableID]
				if tr == nil {
					return nil
				}
				if !tr.codec.fast {
					return fmt.Errorf("table %s: not decoded by decodeImage", tr.rel.Table)
				}
				if err := e.DecodeData(rows.pos, rows.data); err != nil {
					return err
				}
				var ar arena
				data := rows.data[rows.pos:]
				for i, want := range e.Rows {
					got, n, err := tr.codec.decodeImage(&ar, data)
					if err != nil {
						return fmt.Errorf("%s image %d: %w", tr.rel.Table, i, err)
					}
					data = data[n:]
					images++
					for col, w := range want {
						wv, err := value(&ar, w, &tr.rel.Columns[col], tr.unsigned[col])
						if err != nil {
							return err
						}
						cc := &tr.codec.cols[col]
						wv = cc.padded(&ar, wv) // as assembler.tuple
						if cc.pad > 0 && wv.Kind != segment.Null {
							padded++
							if len(got[col].Data) != cc.pad {
								t.Errorf("%s.%s: %d bytes of BINARY(%d)", tr.rel.Table, tr.rel.Columns[col].Name, len(got[col].Data), cc.pad)
							}
						}
						if got[col].Kind != wv.Kind || string(got[col].Data) != string(wv.Data) {
							t.Errorf("%s.%s (%s) image %d: decodeImage %d %q, go-mysql %d %q", tr.rel.Table, tr.rel.Columns[col].Name,
								tr.rel.Columns[col].Type, i, got[col].Kind, abbrev(got[col].Data), wv.Kind, abbrev(wv.Data))
						}
						if wv.Kind != segment.Null {
							seen[tr.codec.cols[col].tp]++
						}
					}
				}
				if len(data) != 0 {
					t.Errorf("%s: %d bytes left after the images", tr.rel.Table, len(data))
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	if images == 0 || padded == 0 || heads == 0 {
		t.Fatalf("%d row images compared, %d BINARY values, %d rows event heads", images, padded, heads)
	}
	for _, tp := range []byte{gomysql.MYSQL_TYPE_TINY, gomysql.MYSQL_TYPE_SHORT, gomysql.MYSQL_TYPE_INT24, gomysql.MYSQL_TYPE_LONG,
		gomysql.MYSQL_TYPE_LONGLONG, gomysql.MYSQL_TYPE_FLOAT, gomysql.MYSQL_TYPE_DOUBLE, gomysql.MYSQL_TYPE_NEWDECIMAL, gomysql.MYSQL_TYPE_YEAR,
		gomysql.MYSQL_TYPE_DATE, gomysql.MYSQL_TYPE_TIME2, gomysql.MYSQL_TYPE_DATETIME2, gomysql.MYSQL_TYPE_TIMESTAMP2, gomysql.MYSQL_TYPE_BIT,
		gomysql.MYSQL_TYPE_ENUM, gomysql.MYSQL_TYPE_SET, gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_STRING, gomysql.MYSQL_TYPE_BLOB,
		gomysql.MYSQL_TYPE_GEOMETRY} {
		if seen[tp] == 0 {
			t.Errorf("no value of binlog type %d was compared", tp)
		}
	}
	t.Logf("%d row images compared", images)
}

func abbrev(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// TestRowImageShort checks that an image cut anywhere is an error, not a
// panic or a value read past its end.
func TestRowImageShort(t *testing.T) {
	rc := newRowCodec(&replication.TableMapEvent{ColumnCount: 5,
		ColumnType: []byte{gomysql.MYSQL_TYPE_LONG, gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_BLOB, gomysql.MYSQL_TYPE_NEWDECIMAL, gomysql.MYSQL_TYPE_DATETIME2},
		ColumnMeta: []uint16{0, 300, 2, 10<<8 | 2, 6}}, []bool{false, false, false, false, false})
	full := []byte{0, 1, 0, 0, 0, 3, 0, 'a', 'b', 'c', 2, 0, 'x', 'y', 0x80, 0, 0, 1, 5, 0x99, 0xb8, 0x8a, 0x70, 0x00, 0, 0, 1}
	var ar arena
	if _, n, err := rc.decodeImage(&ar, full); err != nil || n != len(full) {
		t.Fatalf("whole image: %d of %d bytes, %v", n, len(full), err)
	}
	for cut := range len(full) {
		if _, _, err := rc.decodeImage(&ar, full[:cut]); err == nil {
			t.Errorf("image cut to %d bytes decoded", cut)
		}
	}
}
