package segment

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
)

// Engine identifies the kind of source database.
type Engine uint8

// Engines. The values are part of the format.
const (
	EnginePostgres  Engine = 1
	EngineMySQL     Engine = 2
	EngineMariaDB   Engine = 3
	EngineSQLServer Engine = 4
)

// String returns the engine's name as used in configuration and listings.
func (e Engine) String() string {
	switch e {
	case EnginePostgres:
		return "postgres"
	case EngineMySQL:
		return "mysql"
	case EngineMariaDB:
		return "mariadb"
	case EngineSQLServer:
		return "sqlserver"
	}
	return fmt.Sprintf("engine(%d)", uint8(e))
}

func (e Engine) valid() bool { return e >= EnginePostgres && e <= EngineSQLServer }

// Position is a point in a source's change stream, totally ordered as the
// pair (Hi, Lo). Each engine maps its native position onto it:
//
//   - PostgreSQL: Hi 0, Lo the LSN;
//   - MySQL and MariaDB: Hi the binlog file's sequence number (the numeric
//     suffix of mysql-bin.000042), Lo the byte offset in that file;
//   - SQL Server: Hi the VLF sequence number, Lo the log block offset << 16
//     | the slot number.
//
// The zero Position is "none".
type Position struct {
	Hi, Lo uint64
}

// Compare returns -1, 0 or +1 as p is before, equal to or after q.
func (p Position) Compare(q Position) int {
	if c := cmp.Compare(p.Hi, q.Hi); c != 0 {
		return c
	}
	return cmp.Compare(p.Lo, q.Lo)
}

// IsZero reports whether p is the zero Position.
func (p Position) IsZero() bool { return p == Position{} }

// Format renders p in the engine's native notation: PostgreSQL "16/B374D848",
// MySQL and MariaDB "000042:1234" (file sequence number and offset), SQL
// Server "0000002a:00000100:0001".
func (p Position) Format(e Engine) string {
	switch e {
	case EnginePostgres:
		return fmt.Sprintf("%X/%X", p.Lo>>32, uint32(p.Lo))
	case EngineMySQL, EngineMariaDB:
		return fmt.Sprintf("%06d:%d", p.Hi, p.Lo)
	case EngineSQLServer:
		return fmt.Sprintf("%08x:%08x:%04x", p.Hi, p.Lo>>16, uint16(p.Lo))
	}
	return p.String()
}

// String renders p as 32 hex digits, the form used in object names: its
// byte order sorts like Compare.
func (p Position) String() string { return fmt.Sprintf("%016x%016x", p.Hi, p.Lo) }

// ParsePosition parses a position written in engine e's native notation
// (as Format writes it) or as the 32 hex digits of String.
func ParsePosition(e Engine, s string) (Position, error) {
	var p Position
	if len(s) == 32 {
		if _, err := fmt.Sscanf(s, "%016x%016x", &p.Hi, &p.Lo); err == nil {
			return p, nil
		}
	}
	switch e {
	case EnginePostgres:
		var hi, lo uint32
		if n, err := fmt.Sscanf(s, "%X/%X", &hi, &lo); err == nil && n == 2 && fmt.Sprintf("%X/%X", hi, lo) == strings.ToUpper(s) {
			return Position{Lo: uint64(hi)<<32 | uint64(lo)}, nil
		}
		return p, fmt.Errorf("position %q: want a PostgreSQL LSN such as 16/B374D848", s)
	case EngineMySQL, EngineMariaDB:
		file, off, ok := strings.Cut(s, ":")
		hi, err1 := strconv.ParseUint(file, 10, 64)
		lo, err2 := strconv.ParseUint(off, 10, 64)
		if ok && err1 == nil && err2 == nil {
			return Position{Hi: hi, Lo: lo}, nil
		}
		return p, fmt.Errorf("position %q: want binlog file number and offset such as 000042:1234", s)
	}
	return p, fmt.Errorf("position %q: want 32 hex digits", s)
}
