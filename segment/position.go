package segment

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
)

// Position is a point in a source's change stream, totally ordered as the
// pair (Hi, Lo). Each engine maps its native position onto it:
//
//   - PostgreSQL: Hi 0, Lo the LSN;
//   - MySQL and MariaDB: Hi the source's epoch << 32 | the binlog file's
//     sequence number (the numeric suffix of mysql-bin.000042), Lo the
//     byte offset in that file. The epoch counts the servers the source
//     has moved to (a failover to a replica: see capture/mysql); it is 0
//     until the first move, and keeps positions ordered across servers;
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
// MySQL and MariaDB "000042:1234" (file sequence number and offset;
// "2/000042:1234" in epoch 2), SQL Server "0000002a:00000100:0001".
func (p Position) Format(e Engine) string {
	if n, ok := notations[e]; ok && n.formatPos != nil {
		return n.formatPos(p)
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
	n, ok := notations[e]
	if ok && n.parsePos != nil {
		if p, ok := n.parsePos(s); ok {
			return p, nil
		}
		return p, fmt.Errorf("position %q: want %s", s, n.posHint)
	}
	return p, fmt.Errorf("position %q: want 32 hex digits", s)
}

// ParseTxnID parses a transaction id as a user writes it for engine e and
// returns it in the form capture stores in TxnInfo.ID: a PostgreSQL xid in
// decimal; a MariaDB GTID domain-server-sequence (0-1-5012); a MySQL GTID
// uuid:n or uuid:tag:n, lower case (3E11FA47-71CA-11E1-9E33-C80AA9429562:23
// becomes 3e11fa47-71ca-11e1-9e33-c80aa9429562:23).
func ParseTxnID(e Engine, s string) (string, error) {
	if n, ok := notations[e]; ok && n.parseID != nil {
		return n.parseID(s)
	}
	return "", fmt.Errorf("transaction id %q: %s sources have no transaction ids to restore to", s, e)
}

// ParseMariaDBGTID splits a MariaDB GTID, domain-server-sequence
// (0-1-5012), into its parts; ok is false if s is not one.
func ParseMariaDBGTID(s string) (domain, server uint32, seq uint64, ok bool) {
	a, rest, ok1 := strings.Cut(s, "-")
	b, c, ok2 := strings.Cut(rest, "-")
	d, err1 := strconv.ParseUint(a, 10, 32)
	srv, err2 := strconv.ParseUint(b, 10, 32)
	n, err3 := strconv.ParseUint(c, 10, 64)
	if !ok1 || !ok2 || err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, 0, false
	}
	return uint32(d), uint32(srv), n, true
}

// isUUID reports whether s is a UUID in lower-case 8-4-4-4-12 form.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			hex := '0' <= c && c <= '9' || 'a' <= c && c <= 'f'
			if !hex {
				return false
			}
		}
	}
	return true
}

// isGTIDTag reports whether s is a lower-case MySQL 8.4 GTID tag: a letter
// or underscore, then up to 31 letters, digits or underscores.
func isGTIDTag(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i, c := range s {
		ok := 'a' <= c && c <= 'z' || c == '_' || i > 0 && '0' <= c && c <= '9'
		if !ok {
			return false
		}
	}
	return true
}
