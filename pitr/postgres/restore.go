package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/rxvault/rxvault/internal/proc"
)

// maxTOCHead bounds what RestoreBase keeps in memory while pg_restore reads
// the archive's table of contents: the TOC itself (it describes the
// schema, not the data) plus what was in flight when pg_restore stopped
// reading.
const maxTOCHead = 512 << 20

// copyChunk is the size of the reads from the dump.
const copyChunk = 256 << 10

// RestoreBase restores a base backup: dump is a pg_dump custom-format
// archive (pg_dump -Fc, made with --no-publications --no-subscriptions),
// read once, as a stream, never held in memory as a whole.
//
// It runs pg_restore twice on the one stream. A custom archive written to
// a pipe starts with its table of contents (TOC), so the first run,
// pg_restore -l, reads only the head of the stream; RestoreBase keeps those
// bytes. The second run restores into the target, reading the kept head
// and then the rest of the stream, with:
//
//   - -L: the TOC minus the event triggers (and their comments). An event
//     trigger created during the restore could fire on what the restore
//     does after it (REFRESH MATERIALIZED VIEW comes last) and on every
//     replayed DDL statement, repeating effects the source already had
//     and that the change stream already carries (rxvault's own trigger
//     would also emit its logical messages into the target's WAL).
//     RestoreBase keeps their definitions, taken from the head, and Finish
//     creates them, with their ENABLE state, once replay is over.
//   - --no-owner --no-privileges: roles are cluster objects, not part of a
//     database dump, and may not exist on the target's cluster; objects
//     belong to the restoring role and carry no GRANTs. Recreate roles and
//     grants separately if needed.
//   - --no-tablespaces: tablespaces are cluster objects too; everything
//     goes to the target database's default tablespace.
//   - --no-subscriptions --no-publications: never start replication from
//     a restored database (the archive has none anyway).
//   - --exit-on-error, and synchronous_commit=off added to PGOPTIONS
//     (Finish makes everything durable).
//
// The connection string given to pg_restore is the DSN without its
// password, which goes through PGPASSWORD so that it never shows in a
// process listing. On failure the target holds part of the dump: drop it
// and restore again into a new empty database. Errors quote pg_restore's
// first error line, but never a server message about COPY data (it can
// hold row values).
func (t *Target) RestoreBase(ctx context.Context, dump io.Reader) error {
	if err := t.usableBeforeApply("RestoreBase"); err != nil {
		return err
	}
	start := time.Now()
	toc, head, err := t.readTOC(ctx, dump)
	if err != nil {
		return err
	}
	keep, triggers := splitTOC(toc)
	dir, err := os.MkdirTemp("", "rxvault-restore-")
	if err != nil {
		return fmt.Errorf("restore base backup: %w", err)
	}
	defer os.RemoveAll(dir)
	t.eventTriggers, err = t.eventTriggerSQL(ctx, dir, head, triggers)
	if err != nil {
		return err
	}
	list := filepath.Join(dir, "toc.list")
	if err := os.WriteFile(list, keep, 0o600); err != nil {
		return fmt.Errorf("restore base backup: %w", err)
	}
	conn, env, err := pgRestoreConn(t.dsn)
	if err != nil {
		return err
	}
	in := io.MultiReader(bytes.NewReader(head), dump)
	_, err = t.runPGRestore(ctx, in, &t.bytes, env,
		"--dbname", conn, "--use-list", list,
		"--no-owner", "--no-privileges", "--no-tablespaces",
		"--no-subscriptions", "--no-publications", "--exit-on-error")
	if err != nil {
		return fmt.Errorf("restore base backup into %s: %w (the target now holds part of the backup: drop it and restore into a new empty database)", t.name, err)
	}
	t.log.Info("base backup restored", "bytes", t.bytes.Load(), "duration", time.Since(start).Round(time.Millisecond),
		"event_triggers_deferred", len(t.eventTriggers))
	return nil
}

// readTOC runs pg_restore -l on the head of dump and returns the listing
// and every byte it took from dump.
func (t *Target) readTOC(ctx context.Context, dump io.Reader) (toc, head []byte, err error) {
	var buf headBuffer
	out, err := t.runPGRestore(ctx, io.TeeReader(dump, &buf), nil, nil, "--list")
	if buf.tooBig {
		return nil, nil, fmt.Errorf("restore base backup: the archive's table of contents is not within its first %d MiB: is it a custom-format (pg_dump -Fc) archive?", maxTOCHead>>20)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("restore base backup: read the archive's table of contents: %w", err)
	}
	return out, buf.b, nil
}

// headBuffer keeps what pg_restore -l read, up to maxTOCHead.
type headBuffer struct {
	b      []byte
	tooBig bool
}

func (h *headBuffer) Write(p []byte) (int, error) {
	if len(h.b)+len(p) > maxTOCHead {
		h.tooBig = true
		return 0, errors.New("table of contents too large")
	}
	h.b = append(h.b, p...)
	return len(p), nil
}

// tocEntry matches a TOC line: "<id>; <catalog oid> <oid> <desc> <schema>
// <name> <owner>".
var tocEntry = regexp.MustCompile(`^\d+; \d+ \d+ (.*)$`)

// tocTrigger is an event trigger's TOC entries: the trigger, then its
// comment and security labels if any.
type tocTrigger struct {
	name  string
	lines []string
}

// splitTOC returns the TOC listing without event triggers and their
// comments and security labels, and the entries it left out, grouped by
// event trigger in TOC order.
func splitTOC(toc []byte) (keep []byte, triggers []tocTrigger) {
	index := map[string]int{}
	for _, line := range strings.SplitAfter(string(toc), "\n") {
		m := tocEntry.FindStringSubmatch(strings.TrimRight(line, "\n"))
		name, ok := "", false
		if m != nil {
			if rest, found := strings.CutPrefix(m[1], "EVENT TRIGGER - "); found {
				name, ok = rest, true
			} else if rest, found := strings.CutPrefix(m[1], "COMMENT - EVENT TRIGGER "); found {
				name, ok = rest, true
			} else if rest, found := strings.CutPrefix(m[1], "SECURITY LABEL - EVENT TRIGGER "); found {
				name, ok = rest, true
			}
		}
		if !ok {
			keep = append(keep, line...)
			continue
		}
		// The owner follows the name; event trigger names may hold spaces,
		// but the owner (one role name) is the last word.
		if i := strings.LastIndexByte(name, ' '); i > 0 {
			name = name[:i]
		}
		i, seen := index[name]
		if !seen {
			i = len(triggers)
			index[name] = i
			triggers = append(triggers, tocTrigger{name: name})
		}
		triggers[i].lines = append(triggers[i].lines, strings.TrimRight(line, "\n"))
	}
	return keep, triggers
}

// eventTrigger is an event trigger left out of the restore, with the SQL
// that creates it (CREATE, ALTER … ENABLE, COMMENT).
type eventTrigger struct {
	name string
	sql  string
}

// eventTriggerSQL asks pg_restore for the SQL of the left-out event
// triggers. Their definitions are in the TOC, so the head suffices.
func (t *Target) eventTriggerSQL(ctx context.Context, dir string, head []byte, triggers []tocTrigger) ([]eventTrigger, error) {
	var out []eventTrigger
	for i, trg := range triggers {
		list := filepath.Join(dir, fmt.Sprintf("event-trigger-%d.list", i))
		if err := os.WriteFile(list, []byte(strings.Join(trg.lines, "\n")+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("restore base backup: %w", err)
		}
		script, err := t.runPGRestore(ctx, bytes.NewReader(head), nil, nil,
			"--file", "-", "--use-list", list, "--no-owner", "--no-privileges")
		if err != nil {
			return nil, fmt.Errorf("restore base backup: read event trigger definitions: %w", err)
		}
		out = append(out, eventTrigger{name: trg.name, sql: stripPsqlMeta(string(script))})
	}
	return out, nil
}

// stripPsqlMeta removes the psql meta-commands pg_restore wraps a script
// in (\restrict KEY ... \unrestrict KEY, since PostgreSQL 15.14): the
// script goes to the server, not to psql.
func stripPsqlMeta(script string) string {
	lines := strings.Split(script, "\n")
	var key string
	out := lines[:0]
	for _, l := range lines {
		if k, ok := strings.CutPrefix(l, `\restrict `); ok && key == "" {
			key = k
			continue
		}
		if key != "" && l == `\unrestrict `+key {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// pgRestoreConn returns the connection URL for pg_restore, without the
// password, and the environment that carries the password instead.
func pgRestoreConn(dsn string) (string, []string, error) {
	u, err := parseDSN(dsn)
	if err != nil {
		return "", nil, err
	}
	var pw string
	var hasPW bool
	if u.User != nil {
		pw, hasPW = u.User.Password()
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	if q.Has("password") {
		pw, hasPW = q.Get("password"), true
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	var env []string
	if hasPW {
		env = append(env, "PGPASSWORD="+pw)
	}
	return u.String(), env, nil
}

// runPGRestore runs pg_restore with args, feeding it in, and returns its
// standard output. Bytes written to pg_restore are added to count when it
// is not nil. env is added to the environment (replacing variables of the
// same name). If pg_restore stops reading before in ends, which pg_restore
// -l does once it has the TOC, that is not an error: only its exit status
// counts.
func (t *Target) runPGRestore(ctx context.Context, in io.Reader, count interface{ Add(int64) int64 }, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, t.pgRestore, args...)
	opts := strings.TrimSpace(proc.Getenv(t.env, "PGOPTIONS") + " -c synchronous_commit=off")
	cmd.Env = mergeEnv(t.env, append([]string{"PGOPTIONS=" + opts, "LC_MESSAGES=C"}, env...))
	cmd.WaitDelay = 10 * time.Second
	var stdout bytes.Buffer
	stderr := &prefixBuffer{max: 64 << 10}
	cmd.Stdout = &stdout
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("pg_restore: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("pg_restore: %w", err)
	}
	copyErr := feed(stdin, in, count)
	stdin.Close()
	waitErr := cmd.Wait()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("pg_restore: %w", ctx.Err())
	}
	if waitErr != nil {
		return nil, fmt.Errorf("pg_restore: %s", pgRestoreError(stderr.String(), waitErr))
	}
	if copyErr != nil {
		return nil, fmt.Errorf("read base backup: %w", copyErr)
	}
	return stdout.Bytes(), nil
}

// feed copies in to w in the caller's goroutine (so no goroutine is left
// blocked on in) until in ends or w's reader stops reading (EPIPE).
func feed(w io.Writer, in io.Reader, count interface{ Add(int64) int64 }) error {
	buf := make([]byte, copyChunk)
	for {
		n, rerr := in.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				if errors.Is(werr, syscall.EPIPE) || errors.Is(werr, os.ErrClosed) {
					return nil // the reader is done; its exit status tells how
				}
				return werr
			}
			if count != nil {
				count.Add(int64(n))
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// pgRestoreError summarizes pg_restore's failure in one line: its first
// error line, without server messages about COPY (those can quote row
// values).
func pgRestoreError(stderr string, waitErr error) string {
	for _, l := range strings.Split(stderr, "\n") {
		msg, ok := strings.CutPrefix(l, "pg_restore: error: ")
		if !ok {
			continue
		}
		if strings.HasPrefix(msg, "COPY failed for table ") {
			if i := strings.Index(msg, ": "); i > 0 {
				msg = msg[:i] + " (the server's message is withheld: it may quote row data)"
			}
		}
		if len(msg) > 400 {
			msg = msg[:400] + "…"
		}
		return msg
	}
	return waitErr.Error()
}

// mergeEnv returns base with the variables of extra set, replacing any of
// the same name.
func mergeEnv(base, extra []string) []string {
	names := map[string]bool{}
	for _, kv := range extra {
		name, _, _ := strings.Cut(kv, "=")
		names[name] = true
	}
	out := make([]string, 0, len(base)+len(extra))
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		if !names[name] {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// prefixBuffer keeps the first max bytes written to it.
type prefixBuffer struct {
	b   []byte
	max int
}

func (b *prefixBuffer) Write(p []byte) (int, error) {
	if room := b.max - len(b.b); room > 0 {
		b.b = append(b.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (b *prefixBuffer) String() string { return string(b.b) }
