package randpg

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/rxvault/rxvault/internal/testenv"
)

func statements(seed uint64) []Txn {
	g := New(seed)
	out := g.Schema()
	out = append(out, g.Populate()...)
	return append(out, g.Workload(80)...)
}

// TestDeterministic: one seed gives the same statements every time, and
// another seed other ones.
func TestDeterministic(t *testing.T) {
	for _, seed := range []uint64{1, 2, 12345} {
		a, b := statements(seed), statements(seed)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("seed %d: two runs gave different workloads", seed)
		}
	}
	if reflect.DeepEqual(statements(1), statements(2)) {
		t.Error("seeds 1 and 2 gave the same workload")
	}
}

// TestGeneratedWorkloadRuns runs many seeds' schemas and workloads on a
// real server (without rxvault): every statement must do what the
// generator expects, and the fingerprint must be computable.
func TestGeneratedWorkloadRuns(t *testing.T) {
	pg := testenv.StartPostgres(t)
	ctx := context.Background()
	n := 12
	if testing.Short() {
		n = 3
	}
	for seed := uint64(1); seed <= uint64(n); seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			dsn := pg.CreateDatabase(t, fmt.Sprint("gen", seed))
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			g := New(seed)
			for _, s := range g.SourceSettings() {
				if _, err := conn.Exec(ctx, s.SQL()); err != nil {
					t.Fatal(err)
				}
			}
			txs := g.Schema()
			txs = append(txs, g.Populate()...)
			txs = append(txs, g.Workload(100)...)
			for _, tx := range txs {
				if err := Run(ctx, conn.PgConn(), tx); err != nil {
					t.Fatal(err)
				}
			}
			p, err := Fingerprint(ctx, conn)
			if err != nil {
				t.Fatal(err)
			}
			rows := 0
			for k := range p {
				if strings.HasSuffix(k, " rows") {
					rows++
				}
			}
			if rows == 0 {
				t.Fatal("the fingerprint holds no table")
			}
		})
	}
}
