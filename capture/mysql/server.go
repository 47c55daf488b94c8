package mysql

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/rxvault/rxvault/capture"
	"github.com/rxvault/rxvault/internal/mysqlconn"
	"github.com/rxvault/rxvault/segment"
)

// server is what the start checks learn about the source.
type server struct {
	mariadb  bool
	version  string
	serverID uint32
	// id is the stable source identity: MySQL server_uuid, or for
	// MariaDB (which has none) server_id@hostname:port.
	id   string
	gtid bool // GTIDs are on (MariaDB always; MySQL gtid_mode=ON)
}

func (s *server) engine() segment.Engine {
	if s.mariadb {
		return segment.EngineMariaDB
	}
	return segment.EngineMySQL
}

func (s *server) flavor() string {
	if s.mariadb {
		return "mariadb"
	}
	return "mysql"
}

// identity names the captured database: on this server, or, when name
// (Config.ID) is set, under that name whatever server holds it.
func (s *server) identity(name, db string) capture.Identity {
	if name == "" {
		name = s.id
	}
	return capture.Identity{Engine: s.engine(), SourceID: name + "/" + db}
}

// inspect reads the server's settings and refuses any that would make
// capture inexact, naming the statement or option that fixes it.
func inspect(c *client.Conn, cfg *Config, db string) (*server, error) {
	row, err := mysqlconn.QueryRow(c, "SELECT @@version, @@server_id, @@hostname, @@port, @@log_bin, @@binlog_format, @@binlog_row_image")
	if err != nil {
		return nil, err
	}
	s := &server{version: row[0], mariadb: strings.Contains(strings.ToLower(row[0]), "mariadb")}
	id, _ := strconv.ParseUint(row[1], 10, 32)
	s.serverID = uint32(id)
	refuse := func(format string, a ...any) error {
		return capture.Permanent(fmt.Errorf("mysql capture: "+format, a...))
	}
	switch {
	case row[4] != "1":
		return nil, refuse("the binary log is off; fix: start the server with log_bin (e.g. --log-bin=mysql-bin) and binlog_format=ROW")
	case !strings.EqualFold(row[5], "ROW"):
		return nil, refuse("binlog_format is %s; fix: SET GLOBAL binlog_format = 'ROW' (and binlog_format=ROW in the server's configuration)", row[5])
	case !strings.EqualFold(row[6], "FULL"):
		return nil, refuse("binlog_row_image is %s; fix: SET GLOBAL binlog_row_image = 'FULL' (and in the server's configuration)", row[6])
	case s.serverID == cfg.ServerID:
		return nil, refuse("the source's server_id is %d, the same as rxvault's; fix: set source.server_id to a number no server or replica uses", s.serverID)
	}
	meta, err := mysqlconn.QueryRow(c, "SELECT @@binlog_row_metadata")
	if err != nil {
		return nil, refuse("this server has no binlog_row_metadata (MySQL 8.0.1+ and MariaDB 10.5+ have it): rows would arrive without column names; fix: upgrade the server")
	}
	if !strings.EqualFold(meta[0], "FULL") {
		return nil, refuse("binlog_row_metadata is %s; fix: SET GLOBAL binlog_row_metadata = 'FULL' (and in the server's configuration), so every row event names its columns", meta[0])
	}
	if s.mariadb {
		s.gtid = true
		s.id = fmt.Sprintf("%d@%s:%s", s.serverID, row[2], row[3])
	} else {
		r, err := mysqlconn.QueryRow(c, "SELECT @@server_uuid, @@gtid_mode, @@binlog_row_value_options, @@binlog_transaction_compression")
		if err != nil {
			return nil, err
		}
		s.id, s.gtid = r[0], strings.EqualFold(r[1], "ON")
		if r[2] != "" {
			return nil, refuse("binlog_row_value_options is %s: JSON columns would arrive as partial diffs; fix: SET GLOBAL binlog_row_value_options = ''", r[2])
		}
	}
	if err := checkGrants(c); err != nil {
		return nil, err
	}
	if _, err := mysqlconn.QueryRow(c, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", db); err != nil {
		return nil, refuse("database %s does not exist or is not visible to this user; fix: correct the DSN's database or GRANT SELECT ON %s.* to the user", db, mysqlconn.QuoteIdent(db))
	}
	return s, nil
}

// checkGrants refuses a user that lacks REPLICATION SLAVE or REPLICATION
// CLIENT (BINLOG MONITOR on MariaDB), naming the GRANT to run.
func checkGrants(c *client.Conn) error {
	rows, err := mysqlconn.QueryRows(c, "SHOW GRANTS")
	if err != nil {
		return err
	}
	var all strings.Builder
	for _, r := range rows {
		if len(r) > 0 {
			all.WriteString(strings.ToUpper(r[0]))
			all.WriteByte('\n')
		}
	}
	g := all.String()
	global := strings.Contains(g, "ALL PRIVILEGES ON *.*")
	slave := global || strings.Contains(g, "REPLICATION SLAVE") || strings.Contains(g, "REPLICATION REPLICA")
	client := global || strings.Contains(g, "REPLICATION CLIENT") || strings.Contains(g, "BINLOG MONITOR") || strings.Contains(g, "SUPER")
	if !slave || !client {
		return capture.Permanent(fmt.Errorf("mysql capture: the user lacks REPLICATION SLAVE or REPLICATION CLIENT; fix: GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO the rxvault user"))
	}
	return nil
}

// binlogFile names binlog files by sequence number: the server's basename
// and the numeric suffix Position.Hi holds.
type binlogFile struct {
	base   string // "mysql-bin"
	digits int    // width of the suffix, at least 6
}

// parseBinlogName splits "mysql-bin.000042" into its basename and number.
func parseBinlogName(name string) (binlogFile, uint64, error) {
	i := strings.LastIndexByte(name, '.')
	if i <= 0 || i == len(name)-1 {
		return binlogFile{}, 0, fmt.Errorf("binlog file name %q has no numeric suffix", name)
	}
	n, err := strconv.ParseUint(name[i+1:], 10, 64)
	if err != nil {
		return binlogFile{}, 0, fmt.Errorf("binlog file name %q has no numeric suffix", name)
	}
	return binlogFile{base: name[:i], digits: len(name) - i - 1}, n, nil
}

// name returns the file name of binlog number n (Position.Hi: its epoch
// half is ignored).
func (b binlogFile) name(n uint64) string {
	return fmt.Sprintf("%s.%0*d", b.base, b.digits, uint32(n))
}

// masterStatus returns the end of the server's binlog.
func masterStatus(c *client.Conn) (binlogFile, segment.Position, error) {
	rows, err := mysqlconn.QueryRows(c, "SHOW MASTER STATUS")
	if err != nil {
		return binlogFile{}, segment.Position{}, err
	}
	if len(rows) == 0 || len(rows[0]) < 2 {
		return binlogFile{}, segment.Position{}, capture.Permanent(fmt.Errorf("mysql capture: SHOW MASTER STATUS is empty: the binary log is off; fix: start the server with log_bin"))
	}
	f, n, err := parseBinlogName(rows[0][0])
	if err != nil {
		return binlogFile{}, segment.Position{}, err
	}
	off, err := strconv.ParseUint(rows[0][1], 10, 64)
	if err != nil {
		return binlogFile{}, segment.Position{}, fmt.Errorf("SHOW MASTER STATUS: bad position %q", rows[0][1])
	}
	return f, segment.Position{Hi: n, Lo: off}, nil
}

// binaryLogs returns the server's binlog files: number → size.
func binaryLogs(c *client.Conn) (map[uint64]int64, error) {
	rows, err := mysqlconn.QueryRows(c, "SHOW BINARY LOGS")
	if err != nil {
		return nil, err
	}
	out := make(map[uint64]int64, len(rows))
	for _, r := range rows {
		if len(r) < 2 {
			continue
		}
		_, n, err := parseBinlogName(r[0])
		if err != nil {
			return nil, err
		}
		size, _ := strconv.ParseInt(r[1], 10, 64)
		out[n] = size
	}
	return out, nil
}
