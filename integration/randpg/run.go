package randpg

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
)

// Run executes tx on conn: BEGIN, each statement as its own simple
// query, then COMMIT (or ROLLBACK). A statement marked Fails must fail
// and any other must succeed; the error then names the statement.
func Run(ctx context.Context, conn *pgconn.PgConn, tx Txn) error {
	if tx.NoBlock {
		for _, s := range tx.Stmts {
			if _, err := conn.Exec(ctx, s.SQL).ReadAll(); err != nil {
				return fmt.Errorf("%s: %w\n%s", tx.What, err, shortSQL(s.SQL))
			}
		}
		return nil
	}
	if _, err := conn.Exec(ctx, "BEGIN").ReadAll(); err != nil {
		return err
	}
	for _, s := range tx.Stmts {
		_, err := conn.Exec(ctx, s.SQL).ReadAll()
		switch {
		case s.Fails && err == nil:
			_, _ = conn.Exec(ctx, "ROLLBACK").ReadAll()
			return fmt.Errorf("%s: statement succeeded, want an error:\n%s", tx.What, shortSQL(s.SQL))
		case !s.Fails && err != nil:
			_, _ = conn.Exec(ctx, "ROLLBACK").ReadAll()
			return fmt.Errorf("%s: %w\n%s", tx.What, err, shortSQL(s.SQL))
		}
	}
	end := "COMMIT"
	if tx.Rollback {
		end = "ROLLBACK"
	}
	if _, err := conn.Exec(ctx, end).ReadAll(); err != nil {
		return fmt.Errorf("%s: %s: %w", tx.What, end, err)
	}
	return nil
}

func shortSQL(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "…"
	}
	return s
}
