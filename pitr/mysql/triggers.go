package mysql

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/rxvault/rxvault/internal/mysqlconn"
)

// A trigger's definition is dumped as it was written (SHOW CREATE
// TRIGGER keeps the original statement), so a trigger created as
// "CREATE TRIGGER pharmacy.t … ON pharmacy.rx …" names the source
// database. Loaded into a target named otherwise, it would be created
// in, or change, that database on the restore server, and be missing
// from the target. As for replayed DDL (checkNames), such a dump is
// refused unless the target has the source's name; triggerGuard refuses
// it before the statement reaches the client program.
//
// mariadb-dump and mysqldump write each trigger (and each routine) as one
// statement starting a line with "/*!50003 CREATE*/" and ending a line
// with "*/;;" (under DELIMITER ;;); the header names the database dumped
// ("-- Host: … Database: pharmacy").
const (
	triggerStart = "/*!50003 CREATE*/"
	triggerEnd   = "*/;;"
	dumpHeader   = "-- Host: "

	// maxTriggerStatement bounds a statement held for the check.
	maxTriggerStatement = 16 << 20
)

// triggerGuard passes a dump through, holding each trigger or routine
// statement until its end and failing the stream, before passing it on,
// if it names the source database while the target is named otherwise.
type triggerGuard struct {
	r       *bufio.Reader
	target  string
	source  string         // from the dump's header; "" until read
	names   *regexp.Regexp // matches a name qualified by source
	midLine bool
	inStmt  bool
	stmt    bytes.Buffer
	out     []byte
	err     error
}

func newTriggerGuard(r io.Reader, target string) *triggerGuard {
	return &triggerGuard{r: bufio.NewReaderSize(r, 64<<10), target: target}
}

// Read returns the dump's bytes, or the refusal.
func (g *triggerGuard) Read(p []byte) (int, error) {
	for len(g.out) == 0 {
		if g.err != nil {
			return 0, g.err
		}
		g.next()
	}
	n := copy(p, g.out)
	g.out = g.out[n:]
	return n, nil
}

func (g *triggerGuard) next() {
	piece, err := g.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		err = nil
	}
	lineStart := !g.midLine
	g.midLine = len(piece) > 0 && piece[len(piece)-1] != '\n'
	if lineStart && !g.inStmt {
		if bytes.HasPrefix(piece, []byte(dumpHeader)) {
			if _, db, ok := bytes.Cut(piece, []byte("Database: ")); ok {
				g.source = strings.TrimSpace(string(db))
				g.names = regexp.MustCompile("(?i)(?:^|[^A-Za-z0-9_$`])(?:`" + regexp.QuoteMeta(strings.ReplaceAll(g.source, "`", "``")) + "`|" + regexp.QuoteMeta(g.source) + `)\s*\.`)
			}
		}
		g.inStmt = bytes.HasPrefix(piece, []byte(triggerStart))
	}
	if !g.inStmt {
		g.out, g.err = piece, err
		return
	}
	if g.stmt.Len()+len(piece) > maxTriggerStatement {
		g.err = fmt.Errorf("a trigger or routine of the base backup is over %d MiB", maxTriggerStatement>>20)
		return
	}
	g.stmt.Write(piece)
	ended := !g.midLine && bytes.HasSuffix(bytes.TrimRight(piece, "\r\n"), []byte(triggerEnd))
	switch {
	case ended:
		if ferr := g.check(g.stmt.Bytes()); ferr != nil {
			g.err = ferr
			return
		}
		g.out = bytes.Clone(g.stmt.Bytes())
		g.stmt.Reset()
		g.inStmt = false
		g.err = err
	case err != nil:
		if errors.Is(err, io.EOF) {
			err = errors.New("a trigger or routine of the base backup does not end: the dump is truncated")
		}
		g.err = err
	}
}

// check refuses stmt if it names the source database explicitly while
// the target is named otherwise.
func (g *triggerGuard) check(stmt []byte) error {
	if g.source == "" || strings.EqualFold(g.source, g.target) {
		return nil
	}
	if !g.names.Match(stmt) {
		return nil
	}
	return fmt.Errorf("a trigger or routine of the base backup names the source database %s explicitly: loaded here it would be created in, or change, that database, not %s; fix: restore into a database named %s",
		mysqlconn.QuoteIdent(g.source), mysqlconn.QuoteIdent(g.target), mysqlconn.QuoteIdent(g.source))
}
