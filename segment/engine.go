package segment

import (
	"errors"
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

// notation is how one engine's name, positions and transaction ids are
// written, and the few facts about its stream that the engine-neutral
// packages need. The notations table is the one place outside the engine
// packages (and the engine table that wires them) that tells engines
// apart.
type notation struct {
	name string
	// anchor names what holds the stream's position on the source side,
	// for messages.
	anchor string
	// uniqueIDs: transaction ids are unique (GTIDs), so a restore to an
	// id stops at the first transaction with it.
	uniqueIDs bool
	// idFlag is the restore flag that names a transaction by its id
	// ("" when the engine has none to restore to), and idKind what such
	// an id is, for messages.
	idFlag, idKind string
	// formatPos and parsePos write and read a position in the engine's
	// native notation; posHint says what parsePos wants.
	formatPos func(Position) string
	parsePos  func(string) (Position, bool)
	posHint   string
	// parseID reads a transaction id as a user writes it, into the form
	// capture stores (nil: none).
	parseID func(string) (string, error)
}

var notations = map[Engine]notation{
	EnginePostgres: {
		name: "postgres", anchor: "replication slot", idFlag: "xid", idKind: "a PostgreSQL transaction id",
		formatPos: func(p Position) string { return fmt.Sprintf("%X/%X", p.Lo>>32, uint32(p.Lo)) },
		parsePos:  parseLSN,
		posHint:   "a PostgreSQL LSN such as 16/B374D848",
		parseID:   parseXID,
	},
	EngineMySQL: {
		name: "mysql", anchor: "saved binlog position", uniqueIDs: true, idFlag: "gtid", idKind: "a GTID",
		formatPos: formatBinlogPos, parsePos: parseBinlogPos, posHint: binlogPosHint,
		parseID: parseMySQLGTID,
	},
	EngineMariaDB: {
		name: "mariadb", anchor: "saved binlog position", uniqueIDs: true, idFlag: "gtid", idKind: "a GTID",
		formatPos: formatBinlogPos, parsePos: parseBinlogPos, posHint: binlogPosHint,
		parseID: parseMariaDBGTIDText,
	},
	EngineSQLServer: {
		name: "sqlserver", anchor: "log position",
		formatPos: func(p Position) string { return fmt.Sprintf("%08x:%08x:%04x", p.Hi, p.Lo>>16, uint16(p.Lo)) },
	},
}

// String returns the engine's name as used in configuration, listings
// and archive documents.
func (e Engine) String() string {
	if n, ok := notations[e]; ok {
		return n.name
	}
	return fmt.Sprintf("engine(%d)", uint8(e))
}

func (e Engine) valid() bool { _, ok := notations[e]; return ok }

// ErrUnknownEngine is ParseEngine's error for a name no engine has.
var ErrUnknownEngine = errors.New("unknown engine")

// ParseEngine returns the engine named name (as String writes it).
func ParseEngine(name string) (Engine, error) {
	for e, n := range notations {
		if n.name == name {
			return e, nil
		}
	}
	return 0, fmt.Errorf("%w %q (an archive written by a newer rxvault?)", ErrUnknownEngine, name)
}

// MarshalText writes the engine's name.
func (e Engine) MarshalText() ([]byte, error) {
	if !e.valid() {
		return nil, fmt.Errorf("%w %d", ErrUnknownEngine, uint8(e))
	}
	return []byte(e.String()), nil
}

// UnmarshalText reads an engine's name.
func (e *Engine) UnmarshalText(b []byte) error {
	v, err := ParseEngine(string(b))
	if err != nil {
		return err
	}
	*e = v
	return nil
}

// Anchor names what holds the stream's position on the source side (a
// replication slot, a saved binlog position), for messages.
func (e Engine) Anchor() string {
	if n, ok := notations[e]; ok {
		return n.anchor
	}
	return "stream position"
}

// TxnIDFlag returns the restore flag, without dashes, that names one of
// the engine's transactions by its id, and what such an id is ("gtid",
// "a GTID"); "" when the engine has none to restore to.
func (e Engine) TxnIDFlag() (flag, kind string) {
	n := notations[e]
	return n.idFlag, n.idKind
}

// UniqueTxnIDs reports whether the engine's transaction ids are unique
// (GTIDs), so that a restore to an id can stop at the first transaction
// that has it; otherwise an id may recur (a PostgreSQL xid after
// wraparound).
func (e Engine) UniqueTxnIDs() bool { return notations[e].uniqueIDs }

// parseLSN reads a PostgreSQL LSN, 16/B374D848.
func parseLSN(s string) (Position, bool) {
	var hi, lo uint32
	if n, err := fmt.Sscanf(s, "%X/%X", &hi, &lo); err == nil && n == 2 && fmt.Sprintf("%X/%X", hi, lo) == strings.ToUpper(s) {
		return Position{Lo: uint64(hi)<<32 | uint64(lo)}, true
	}
	return Position{}, false
}

const binlogPosHint = "binlog file number and offset such as 000042:1234 (epoch/file:offset such as 1/000042:1234 after a failover)"

// formatBinlogPos writes a MySQL or MariaDB position, 000042:1234, or
// 2/000042:1234 in epoch 2.
func formatBinlogPos(p Position) string {
	if e := p.Hi >> 32; e != 0 {
		return fmt.Sprintf("%d/%06d:%d", e, uint32(p.Hi), p.Lo)
	}
	return fmt.Sprintf("%06d:%d", p.Hi, p.Lo)
}

// parseBinlogPos reads what formatBinlogPos writes.
func parseBinlogPos(s string) (Position, bool) {
	epoch, rest, hasEpoch := strings.Cut(s, "/")
	if !hasEpoch {
		epoch, rest = "0", s
	}
	file, off, ok := strings.Cut(rest, ":")
	ep, err0 := strconv.ParseUint(epoch, 10, 32)
	hi, err1 := strconv.ParseUint(file, 10, 32)
	lo, err2 := strconv.ParseUint(off, 10, 64)
	if ok && err0 == nil && err1 == nil && err2 == nil {
		return Position{Hi: ep<<32 | hi, Lo: lo}, true
	}
	return Position{}, false
}

// parseXID reads a PostgreSQL xid, a decimal number.
func parseXID(s string) (string, error) {
	if x, err := strconv.ParseUint(s, 10, 32); err == nil {
		return strconv.FormatUint(x, 10), nil
	}
	return "", fmt.Errorf("transaction id %q: want a PostgreSQL xid, a decimal number such as 7345", s)
}

// parseMariaDBGTIDText reads a MariaDB GTID, 0-1-5012.
func parseMariaDBGTIDText(s string) (string, error) {
	if d, srv, n, ok := ParseMariaDBGTID(s); ok {
		return strconv.FormatUint(uint64(d), 10) + "-" + strconv.FormatUint(uint64(srv), 10) + "-" + strconv.FormatUint(n, 10), nil
	}
	return "", fmt.Errorf("GTID %q: want a MariaDB GTID domain-server-sequence such as 0-1-5012", s)
}

// parseMySQLGTID reads one MySQL GTID, uuid:n or uuid:tag:n, into lower
// case.
func parseMySQLGTID(s string) (string, error) {
	parts := strings.Split(strings.ToLower(s), ":")
	if (len(parts) == 2 || len(parts) == 3 && isGTIDTag(parts[1])) && isUUID(parts[0]) {
		if n, err := strconv.ParseUint(parts[len(parts)-1], 10, 63); err == nil && n > 0 {
			parts[len(parts)-1] = strconv.FormatUint(n, 10)
			return strings.Join(parts, ":"), nil
		}
	}
	return "", fmt.Errorf("GTID %q: want one MySQL GTID, uuid:number such as 3e11fa47-71ca-11e1-9e33-c80aa9429562:23", s)
}
