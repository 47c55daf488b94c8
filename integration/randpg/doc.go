// Package randpg generates, from a seed, a random PostgreSQL 15 schema and a
// random workload over it, for the randomized exactness battery
// (integration.TestRandomizedPostgres), and computes the battery's oracle:
// fingerprints of a database taken by SQL alone (Fingerprint), independent
// of rxvault's own decoding.
//
// # Determinism
//
// Everything a Gen produces is a function of its seed (math/rand/v2 PCG):
// the same seed gives the same statements in the same order. Statements
// pick the rows they change by SQL (ORDER BY the key, or by the row's text
// for tables without one, with LIMIT and OFFSET), and keys come from
// counters the generator keeps, so no statement depends on values the
// server chose and none fails unless it is marked to. The only values that
// differ between two runs of one seed are those of volatile column
// defaults (now(), gen_random_uuid()), which the source computes and the
// stream carries.
//
// # What it covers
//
// Schema: several schemas; table, column, type and enum-label names that
// need quoting (mixed case, reserved words, spaces, dots, double quotes,
// Unicode); a wide type list (see types.go: integers at their limits,
// numeric of extreme and negative scale and NaN/±Infinity, float -0, NaN and
// ±Infinity, money, text with quotes, backslashes and Unicode, char(n),
// bytea, dates and timestamps at infinity and BC, interval, json with
// duplicate keys and its spacing, jsonb, xml, inet/cidr/macaddr/macaddr8,
// tsvector/tsquery, ranges and multiranges, bit strings, geometric types,
// arrays with NULLs, several dimensions and other lower bounds, enums,
// domains, composite types and arrays of them, and the contrib types
// citext, hstore, ltree, cube, seg and isn); identity columns (BY DEFAULT
// and ALWAYS), serial, stored generated columns,
// constant and volatile defaults, NOT NULL, CHECK, UNIQUE and DEFERRABLE
// constraints, deferred foreign keys with cascades; tables without a
// primary key under REPLICA IDENTITY FULL, REPLICA IDENTITY USING INDEX,
// range/list/hash partitioned tables, inheritance, columns stored
// EXTERNAL so that large values are TOASTed.
//
// Workload: inserts (one row or many, with NULLs and defaults), updates of
// non-key columns (leaving TOASTed values unchanged), of primary keys and
// of partition keys (rows move between partitions), deletes, duplicate
// rows in tables without a key (one of two identical rows updated or
// deleted), TRUNCATE (with CASCADE, RESTART IDENTITY, of partitioned and
// inheritance parents), multi-statement transactions, whole-transaction
// rollbacks, savepoints rolled back (some after a failed statement),
// deferred constraints that hold only at commit, large transactions
// (megabytes, more than a segment), and DDL between them: ADD, DROP,
// RENAME and ALTER TYPE of columns, SET/DROP DEFAULT, DROP NOT NULL,
// CREATE, RENAME, SET SCHEMA and DROP TABLE, new partitions, ALTER TYPE …
// ADD VALUE, CREATE INDEX, and replica identity changes.
//
// Session defaults: the source database and each restore target get other
// TimeZone, DateStyle, IntervalStyle, extra_float_digits, bytea_output,
// search_path and similar settings (SourceSettings, TargetSettings).
//
// # Skips
//
// The generator leaves out only what the README's "Known limits" lists:
// see the skips table in skips.go, which cites each limit.
package randpg
