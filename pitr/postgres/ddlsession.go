package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/rxvault/rxvault/segment"
)

// ddlSettingNames are the settings a segment.MsgDDLSession message may
// carry (capture/postgres.DDLSettings lists what capture records): replay
// runs the DDL statement after the message under the source session's
// values of them, as it runs it under the source's search_path
// (Change.Schema). Each changes what a statement computes when it parses
// a literal or converts a value.
var ddlSettingNames = []string{
	"TimeZone", "DateStyle", "IntervalStyle", "extra_float_digits", "bytea_output",
	"standard_conforming_strings", "backslash_quote", "xmloption", "transform_null_equals", "array_nulls",
	"timezone_abbreviations", "default_text_search_config",
}

// setting is one setting's name and value.
type setting struct{ name, value string }

// parseDDLSession parses the content of a segment.MsgDDLSession
// message: {"settings": {"TimeZone": "Asia/Kathmandu", ...}}.
func parseDDLSession(content []byte) (map[string]string, error) {
	var m struct {
		Settings map[string]string `json:"settings"`
	}
	if err := json.Unmarshal(content, &m); err != nil {
		return nil, err
	}
	for name := range m.Settings {
		if !slices.Contains(ddlSettingNames, name) {
			return nil, fmt.Errorf("setting %q is not one this rxvault replays DDL under (an archive written by a newer rxvault?): restore with that version", name)
		}
	}
	return m.Settings, nil
}

// readSession records the session's own value of search_path and of
// each of ddlSettingNames (after sessionSettings), which a DDL statement
// run under other values puts back.
func (t *Target) readSession(ctx context.Context) error {
	names := append([]string{"search_path"}, ddlSettingNames...)
	rows, err := t.conn.Query(ctx, "SELECT s, pg_catalog.current_setting(s) FROM pg_catalog.unnest($1::text[]) s", names)
	if err != nil {
		return fmt.Errorf("restore target %s: read session settings: %w", t.name, err)
	}
	defer rows.Close()
	t.session = make(map[string]string, len(names))
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return fmt.Errorf("restore target %s: read session settings: %w", t.name, err)
		}
		t.session[name] = value
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("restore target %s: read session settings: %w", t.name, err)
	}
	return nil
}

// ddlSettings returns the settings DDL change c runs under where they
// differ from the session's, in a fixed order: search_path from c.Schema,
// the others from the segment.MsgDDLSession message before c (sess, nil when
// the archive has none: replay's own values then).
func (t *Target) ddlSettings(c *segment.Change, sess map[string]string) []setting {
	var out []setting
	if c.Schema != "" && c.Schema != t.session["search_path"] {
		out = append(out, setting{"search_path", c.Schema})
	}
	for _, name := range ddlSettingNames {
		if v, ok := sess[name]; ok && v != t.session[name] {
			out = append(out, setting{name, v})
		}
	}
	return out
}
