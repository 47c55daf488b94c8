package randpg

import "fmt"

// Setting is one session default: a GUC name and its value as SQL.
type Setting struct{ Name, Value string }

// SQL returns the SET statement.
func (s Setting) SQL() string { return fmt.Sprintf("SET %s = %s", s.Name, s.Value) }

// AlterDatabase returns the ALTER DATABASE statement that makes s db's
// default.
func (s Setting) AlterDatabase(db string) string {
	return fmt.Sprintf("ALTER DATABASE %s SET %s = %s", ident(db), s.Name, s.Value)
}

// settingChoices are the session defaults the source and the targets
// draw from: everything that changes how values print or parse, plus
// settings a restore session must not inherit.
var settingChoices = []struct {
	name   string
	values []string
	target bool // only for restore targets (they would change the workload's own statements)
}{
	{name: "TimeZone", values: []string{"'Pacific/Chatham'", "'America/St_Johns'", "'Asia/Kathmandu'", "'UTC+11'", "'Europe/Dublin'"}},
	{name: "DateStyle", values: []string{"'SQL, DMY'", "'German'", "'Postgres, MDY'", "'ISO, DMY'"}},
	{name: "IntervalStyle", values: []string{"'sql_standard'", "'iso_8601'", "'postgres_verbose'"}},
	{name: "extra_float_digits", values: []string{"-15", "0", "1"}},
	{name: "bytea_output", values: []string{"'escape'"}},
	{name: "xmloption", values: []string{"document"}, target: true},
	{name: "search_path", values: []string{"'pg_catalog'", `'"$user"'`, "'nowhere, public'"}, target: true},
	{name: "default_transaction_isolation", values: []string{"'serializable'", "'repeatable read'"}},
	{name: "transform_null_equals", values: []string{"on"}, target: true},
	{name: "statement_timeout", values: []string{"'20s'"}, target: true},
	{name: "lock_timeout", values: []string{"'5s'"}, target: true},
	{name: "standard_conforming_strings", values: []string{"off"}, target: true},
	{name: "session_replication_role", values: []string{"'origin'"}, target: true},
	{name: "synchronous_commit", values: []string{"off"}},
	{name: "enable_indexscan", values: []string{"off"}, target: true},
	{name: "work_mem", values: []string{"'64kB'"}, target: true},
}

// SourceSettings returns session defaults for the source database. Like
// every method it draws from the seed's one random stream, so a replay of
// a seed must call the methods in the same order (TestRandomizedPostgres:
// SourceSettings, Schema, Populate, Workload per phase, then
// TargetSettings per restore).
func (g *Gen) SourceSettings() []Setting { return g.settings(false) }

// TargetSettings returns session defaults for one restore target.
func (g *Gen) TargetSettings() []Setting { return g.settings(true) }

func (g *Gen) settings(target bool) []Setting {
	var out []Setting
	for _, c := range settingChoices {
		if c.target && !target || g.r.IntN(2) == 0 {
			continue
		}
		out = append(out, Setting{Name: c.name, Value: c.values[g.r.IntN(len(c.values))]})
	}
	return out
}
