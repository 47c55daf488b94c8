package randpg

// Skip is one thing the generator deliberately never produces, with the
// README "Known limits" entry that allows it to.
type Skip struct {
	What   string // what the generator leaves out
	Limit  string // the README limit, quoted (a distinctive part of it)
	Reason string // how the generator avoids it
}

// Skips is the complete list of what the generator leaves out. Nothing
// else may be skipped: anything rxvault cannot restore exactly must be a
// README limit first. integration's TestLimitsAreTheSkips checks that every
// Limit is an item of the README's list of limits, and each item is cited.
var Skips = []Skip{
	{
		What:   "a query string that holds DDL and DML together",
		Limit:  "A single query string that mixes DDL and DML",
		Reason: "every statement is sent as its own query",
	},
	{
		What:   "ADD COLUMN with a volatile default, an identity or serial (DDL that fills a new column with values it computes)",
		Limit:  "PostgreSQL DDL that fills a new column with values it computes is replayed by running it again",
		Reason: "ADD COLUMN defaults are constants (safeDefault); identity and serial columns come with CREATE TABLE",
	},
	{
		What:   "comparing a sequence at a point other than a quiet one (a nextval after the last heartbeat)",
		Limit:  "Sequences restore to their value at the last heartbeat before the point",
		Reason: "restore points are taken after two heartbeats with no workload",
	},
	{
		What:   "an identity or serial column holding a value above its sequence",
		Limit:  "except through the owned-column floor",
		Reason: "key updates of identity and serial columns set negative values",
	},
	{
		What:   "roles, owners, grants and tablespaces",
		Limit:  "Roles, ownership, grants and tablespaces are not restored",
		Reason: "the oracle compares neither owners nor ACLs; the workload runs as one role",
	},
	{
		What:   "unlogged tables and large objects",
		Limit:  "PostgreSQL unlogged tables and large objects are not in the change stream",
		Reason: "every table is logged; no large objects",
	},
	{
		What:   "triggers set ENABLE ALWAYS or ENABLE REPLICA",
		Limit:  "PostgreSQL triggers set ENABLE ALWAYS or ENABLE REPLICA fire during replay",
		Reason: "no triggers",
	},
}
