package mysql

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"
)

// Scheduled events must not run while replay runs: their changes are
// already in the binlog as rows, and an event firing on the target would
// change the database under the replay (a later update would find its row
// gone, or a value would differ). The dump's events and every replayed
// CREATE, ALTER or DROP EVENT are therefore held back and run by Finish,
// once replay is over.
//
// mariadb-dump and mysqldump write a database's events as one section:
//
//	--
//	-- Dumping events for database 'pharmacy'
//	--
//	/*!50106 SET @save_time_zone= @@TIME_ZONE */ ;
//	... DROP EVENT IF EXISTS, then for each event its session settings
//	(character sets, sql_mode, time_zone) and CREATE EVENT, in DELIMITER ;;
//	/*!50106 SET TIME_ZONE= @save_time_zone */ ;
//
// (with no events, the comment header alone). eventsFilter passes the dump
// through without that section and keeps the section, which is complete
// in itself, to be run through the client program at Finish.
const (
	eventsHeader = "-- Dumping events for database "
	eventsStart  = "/*!50106 SET @save_time_zone"
	eventsEnd    = "/*!50106 SET TIME_ZONE= @save_time_zone"

	// maxEventsSection bounds the section kept in memory.
	maxEventsSection = 16 << 20
)

// eventsFilter is a dump stream without its events section (see above),
// with every line through unnameDatabase.
type eventsFilter struct {
	r       *bufio.Reader
	state   int
	midLine bool   // the last piece read did not end a line
	out     []byte // the piece being returned
	held    bytes.Buffer
	err     error
}

const (
	evNormal    = iota
	evHeader    // after the section's header line
	evMaybeBody // after the header's closing "--"
	evBody      // inside the section
)

// dumpSQLMode is the sql_mode line of mariadb-dump's (and mysqldump's)
// header, under which the dump's rows load. Without ALLOW_INVALID_DATES a
// date the source stored under it (2023-02-30) loads, with a warning, as
// a zero date: the filter adds it. It allows nothing else.
var (
	dumpSQLMode             = []byte("/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;\n")
	dumpSQLModeInvalidDates = []byte("/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO,ALLOW_INVALID_DATES' */;\n")
)

func newEventsFilter(r io.Reader) *eventsFilter {
	return &eventsFilter{r: bufio.NewReaderSize(r, 64<<10)}
}

// Read returns the dump's bytes but the events section's.
func (f *eventsFilter) Read(p []byte) (int, error) {
	for len(f.out) == 0 {
		if f.err != nil {
			return 0, f.err
		}
		f.next()
	}
	n := copy(p, f.out)
	f.out = f.out[n:]
	return n, nil
}

// next reads the next line, or piece of a long line, and routes it.
func (f *eventsFilter) next() {
	piece, err := f.r.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		err = nil
	case errors.Is(err, io.EOF):
		if f.state == evBody {
			err = errors.New("the base backup's events section does not end: the dump is truncated")
		}
	}
	f.err = err
	lineStart := !f.midLine
	f.midLine = len(piece) > 0 && piece[len(piece)-1] != '\n'
	if lineStart && !f.midLine {
		piece = unnameDatabase(piece)
		if bytes.Equal(piece, dumpSQLMode) {
			piece = dumpSQLModeInvalidDates
		}
	}
	if lineStart {
		f.route(piece)
	}
	if f.state != evBody {
		f.out = piece
		return
	}
	if f.held.Len()+len(piece) > maxEventsSection {
		f.err = fmt.Errorf("the base backup's events section is over %d MiB", maxEventsSection>>20)
		return
	}
	f.held.Write(piece)
	if lineStart && bytes.HasPrefix(piece, []byte(eventsEnd)) {
		f.state = evNormal
	}
}

// route moves the state on at the start of a line.
func (f *eventsFilter) route(line []byte) {
	switch f.state {
	case evNormal:
		if bytes.HasPrefix(line, []byte(eventsHeader)) {
			f.state = evHeader
		}
	case evHeader:
		f.state = evMaybeBody
		if !bytes.HasPrefix(line, []byte("--")) {
			f.route(line)
		}
	case evMaybeBody:
		f.state = evNormal
		if bytes.HasPrefix(line, []byte(eventsStart)) {
			f.state = evBody
		} else {
			f.route(line)
		}
	}
}

// dumpAlterDatabaseRE matches the line mariadb-dump and mysqldump write
// before a trigger, routine or event created under another default
// collation of its database than the database has now, and after it
// (to set the default back): ALTER DATABASE naming the source database.
var dumpAlterDatabaseRE = regexp.MustCompile("^ALTER DATABASE `(?:[^`]|``)+` (CHARACTER SET [A-Za-z0-9_]+ COLLATE [A-Za-z0-9_]+ ;;?\n)$")

// unnameDatabase turns such a line to the database the dump is loaded
// into (the client's current database), so that the object is created
// under its own collation there: as written it would change the source
// database on a restore server that holds it, and fail on one that does
// not. Any other line is returned as it is.
func unnameDatabase(line []byte) []byte {
	m := dumpAlterDatabaseRE.FindSubmatchIndex(line)
	if m == nil {
		return line
	}
	return append([]byte("ALTER DATABASE "), line[m[2]:m[3]]...)
}

// section returns the events section held back, or nil.
func (f *eventsFilter) section() []byte {
	if f.held.Len() == 0 {
		return nil
	}
	return f.held.Bytes()
}

// heldDDL is a replayed event statement held back until Finish, with its
// commit time, session settings and the target database's default
// collation then: Finish runs it with the session's clock set to that
// time, so an event's default STARTS (and CURRENT_TIMESTAMP in its
// schedule) is the source's, and under that collation, the event's
// database collation on the source.
type heldDDL struct {
	sql       string
	at        time.Time
	sess      *ddlSession
	collation string
}

// eventDDLRE matches CREATE [OR REPLACE], ALTER and DROP EVENT statements
// (with an optional DEFINER clause).
var eventDDLRE = regexp.MustCompile(`(?is)^\s*(?:CREATE\s+(?:OR\s+REPLACE\s+)?|ALTER\s+|DROP\s+)(?:DEFINER\s*=\s*\S+\s+)?EVENT\s`)

// isEventDDL reports whether q creates, alters or drops a scheduled event.
func isEventDDL(q string) bool { return eventDDLRE.MatchString(q) }
