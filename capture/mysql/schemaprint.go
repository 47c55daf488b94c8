package mysql

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/rxvault/rxvault/internal/mysqlconn"
)

// schemaPrintQueries read, from information_schema, every definition
// mariadb-dump --no-data writes for a database (tables, sequences, views,
// columns, indexes, constraints, triggers, routines, events), and the
// creation time of each table, which a rebuild changes. They leave out
// what changes with the rows (TABLE_ROWS, AUTO_INCREMENT, CARDINALITY,
// UPDATE_TIME, an event's LAST_EXECUTED). Each takes the database's name
// once and orders its rows fully.
var schemaPrintQueries = []string{
	`SELECT TABLE_NAME, TABLE_TYPE, ENGINE, ROW_FORMAT, TABLE_COLLATION, CREATE_OPTIONS, TABLE_COMMENT, CREATE_TIME
	   FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME`,
	`SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_DEFAULT, IS_NULLABLE, COLUMN_TYPE, CHARACTER_SET_NAME,
	        COLLATION_NAME, EXTRA, GENERATION_EXPRESSION, COLUMN_COMMENT, IS_GENERATED
	   FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION`,
	`SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE, SUB_PART, COLLATION, INDEX_TYPE, INDEX_COMMENT
	   FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX`,
	`SELECT TABLE_NAME, CONSTRAINT_NAME, CONSTRAINT_TYPE
	   FROM information_schema.TABLE_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? ORDER BY TABLE_NAME, CONSTRAINT_NAME, CONSTRAINT_TYPE`,
	`SELECT TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, ORDINAL_POSITION, REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME
	   FROM information_schema.KEY_COLUMN_USAGE WHERE CONSTRAINT_SCHEMA = ? ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION`,
	`SELECT TABLE_NAME, CONSTRAINT_NAME, UPDATE_RULE, DELETE_RULE, MATCH_OPTION
	   FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? ORDER BY TABLE_NAME, CONSTRAINT_NAME`,
	`SELECT TABLE_NAME, CONSTRAINT_NAME, LEVEL, CHECK_CLAUSE
	   FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? ORDER BY TABLE_NAME, CONSTRAINT_NAME, LEVEL`,
	`SELECT TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, DEFINER, SECURITY_TYPE, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, ALGORITHM
	   FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME`,
	`SELECT TRIGGER_NAME, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_ORDER, ACTION_STATEMENT, ACTION_TIMING, CREATED,
	        SQL_MODE, DEFINER, CHARACTER_SET_CLIENT, COLLATION_CONNECTION
	   FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY TRIGGER_NAME`,
	`SELECT ROUTINE_NAME, ROUTINE_TYPE, ROUTINE_DEFINITION, CREATED, LAST_ALTERED, SQL_MODE, DEFINER, SECURITY_TYPE, ROUTINE_COMMENT
	   FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? ORDER BY ROUTINE_TYPE, ROUTINE_NAME`,
	`SELECT EVENT_NAME, EVENT_DEFINITION, CREATED, LAST_ALTERED, STATUS, INTERVAL_VALUE, INTERVAL_FIELD, EXECUTE_AT, STARTS, ENDS, ON_COMPLETION
	   FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY EVENT_NAME`,
}

// schemaPrint fingerprints the definitions of database db as
// information_schema shows them now (schemaPrintQueries): equal prints
// taken before and after a stretch of time mean no DDL changed the
// database in between, for all a dump of its schema holds. c must not be
// in a transaction that could hide DDL (information_schema is not
// versioned, so any session will do).
func schemaPrint(c *client.Conn, db string) (string, error) {
	h := sha256.New()
	for i, q := range schemaPrintQueries {
		rows, err := mysqlconn.QueryRows(c, q, db)
		if err != nil {
			return "", fmt.Errorf("fingerprint the schema: %w", err)
		}
		fmt.Fprintf(h, "query %d: %d rows\n", i, len(rows))
		for _, r := range rows {
			for _, v := range r {
				fmt.Fprintf(h, "%d:%s,", len(v), v)
			}
			h.Write([]byte{'\n'})
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
