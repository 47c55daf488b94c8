package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rxvault/rxvault/segment"
)

// benchSchema is a pharmacy-like workload: fills are inserted, stock
// levels updated, some fills deleted.
const benchSchema = `
CREATE TABLE fills (id bigint PRIMARY KEY, patient uuid NOT NULL, drug text NOT NULL, qty numeric(10,2),
  filled_at timestamptz, notes text, data jsonb);
CREATE TABLE stock (drug text PRIMARY KEY, on_hand int, updated_at timestamptz);
INSERT INTO stock SELECT 'drug-' || g, 1000000, now() FROM generate_series(1, 200) g;
`

var (
	benchFills = &segment.Relation{Schema: "public", Table: "fills", Columns: []segment.Column{
		col("id", oidInt8, true), col("patient", oidUUID, false), col("drug", 25, false), col("qty", oidNumeric, false),
		col("filled_at", oidTimestamptz, false), col("notes", 25, false), col("data", oidJSONB, false)}}
	benchStock = &segment.Relation{Schema: "public", Table: "stock", Columns: []segment.Column{
		col("drug", 25, true), col("on_hand", oidInt4, false), col("updated_at", oidTimestamptz, false)}}
)

// benchTxn is one source transaction as changes and as the SQL psql runs.
type benchTxn struct {
	changes []segment.Change
	sql     string
}

// benchWorkload makes n transactions of size changes each: 60% inserts,
// 30% updates by key, 10% deletes by key of earlier inserts.
func benchWorkload(n, size int) []benchTxn {
	r := rand.New(rand.NewPCG(1, 2))
	var live []int64
	next := int64(1)
	out := make([]benchTxn, n)
	for i := range out {
		var sql strings.Builder
		sql.WriteString("BEGIN;\n")
		for range size {
			var c segment.Change
			switch k := r.IntN(10); {
			case k < 6 || len(live) == 0:
				id := next
				next++
				live = append(live, id)
				vals := []segment.Value{tv(fmt.Sprint(id)),
					tv(fmt.Sprintf("%08x-0000-4000-8000-%012x", r.Uint32(), r.Uint64()&0xffffffffffff)),
					tv(fmt.Sprintf("drug-%d", r.IntN(200)+1)), tv(fmt.Sprintf("%d.%02d", r.IntN(100), r.IntN(100))),
					tv(fmt.Sprintf("2024-03-01 %02d:%02d:%02d.%06d+00", r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1000000))),
					tv(strings.Repeat("take with food. ", r.IntN(8))),
					tv(fmt.Sprintf(`{"refills": %d, "prescriber": "dr %d"}`, r.IntN(5), r.IntN(1000)))}
				c = insert(benchFills, vals...)
				sql.WriteString(insertSQL(benchFills, vals...))
			case k < 9:
				vals := []segment.Value{tv(fmt.Sprintf("drug-%d", r.IntN(200)+1)), tv(fmt.Sprint(r.IntN(1000000))),
					tv(fmt.Sprintf("2024-03-01 %02d:%02d:%02d+00", r.IntN(24), r.IntN(60), r.IntN(60)))}
				c = update(benchStock, vals...)
				fmt.Fprintf(&sql, "UPDATE stock SET on_hand = %s, updated_at = %s WHERE drug = %s", literal(vals[1]), literal(vals[2]), literal(vals[0]))
			default:
				j := r.IntN(len(live))
				id := live[j]
				live[j] = live[len(live)-1]
				live = live[:len(live)-1]
				c = deleteOld(benchFills, segment.OldKey, keyOnly(benchFills, tv(fmt.Sprint(id)))...)
				fmt.Fprintf(&sql, "DELETE FROM fills WHERE id = '%d'", id)
			}
			out[i].changes = append(out[i].changes, c)
			sql.WriteString(";\n")
		}
		sql.WriteString("COMMIT;\n")
		out[i].sql = sql.String()
	}
	return out
}

// applyWorkload applies w through tg, then finishes the restore (which
// commits the last group, synchronously).
func applyWorkload(b *testing.B, tg *Target, w []benchTxn) {
	ctx := context.Background()
	for i, txn := range w {
		info := &segment.TxnInfo{ID: fmt.Sprint(i), Pos: segment.Position{Lo: uint64(i + 1)}, Commit: time.Unix(int64(i), 0)}
		if err := tg.Apply(ctx, info, txnOf(txn.changes...)); err != nil {
			b.Fatalf("Apply: %v", err)
		}
	}
	if err := tg.Finish(ctx); err != nil {
		b.Fatalf("Finish: %v", err)
	}
}

// benchTarget creates the benchmark's schema in dsn and opens it as a
// target (closed by closeTarget, so that loops do not pile up
// connections).
func benchTarget(b *testing.B, dsn string) *Target {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.PgConn().Exec(ctx, benchSchema).ReadAll(); err != nil {
		b.Fatal(err)
	}
	tg, err := Open(ctx, Config{DSN: dsn, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	return tg
}

func closeTarget(b *testing.B, tg *Target) {
	if err := tg.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkApply measures replay: one op is one transaction of 10
// changes (6 inserts, 3 updates, 1 delete).
func BenchmarkApply(b *testing.B) {
	_, _, dsn := newServer(b)
	run(b, connect(b, dsn), benchSchema)
	tg := openTarget(b, dsn)
	w := benchWorkload(b.N, 10)
	b.ResetTimer()
	applyWorkload(b, tg, w)
	b.StopTimer()
	b.ReportMetric(float64(b.N*10)/b.Elapsed().Seconds(), "changes/s")
}

// BenchmarkApplyVsPsql replays the same workload through Apply and
// through psql running it as SQL statements (BEGIN; INSERT/UPDATE/DELETE
// with literal values; COMMIT per transaction, synchronous_commit=off
// like replay), each into a fresh database of the same server, one after
// the other in each iteration, and reports how many times faster Apply is:
// the median over iterations of the per-iteration ratio, which a noisy
// machine disturbs less than a ratio of sums.
func BenchmarkApplyVsPsql(b *testing.B) {
	psql := filepath.Join(DefaultPGBin, "psql")
	if _, err := os.Stat(psql); err != nil {
		b.Skipf("psql not found: %v", err)
	}
	pg := newServerOnly(b)
	for _, size := range []int{1, 4, 10, 100} {
		b.Run(fmt.Sprintf("txn=%d", size), func(b *testing.B) {
			const changes = 6000
			w := benchWorkload(changes/size, size)
			file := filepath.Join(b.TempDir(), "workload.sql")
			var all strings.Builder
			for _, txn := range w {
				all.WriteString(txn.sql)
			}
			if err := os.WriteFile(file, []byte(all.String()), 0o644); err != nil {
				b.Fatal(err)
			}
			var applyTime, psqlTime time.Duration
			var ratios []float64
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				adsn := pg.CreateDatabase(b, fmt.Sprintf("apply_%d_%d", size, i))
				pdsn := pg.CreateDatabase(b, fmt.Sprintf("psql_%d_%d", size, i))
				tg := benchTarget(b, adsn)
				pconn := connect(b, pdsn)
				run(b, pconn, benchSchema)
				b.StartTimer()
				start := time.Now()
				applyWorkload(b, tg, w)
				at := time.Since(start)
				b.StopTimer()
				closeTarget(b, tg)

				cmd := exec.Command(psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", file, "-d", pdsn)
				cmd.Env = append(os.Environ(), "PGOPTIONS=-c synchronous_commit=off")
				start = time.Now()
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("psql: %v: %s", err, out)
				}
				pt := time.Since(start)
				aconn := connect(b, adsn)
				compareTables(b, pconn, aconn)
				pconn.Close(context.Background())
				aconn.Close(context.Background())
				applyTime += at
				psqlTime += pt
				ratios = append(ratios, pt.Seconds()/at.Seconds())
				b.StartTimer()
			}
			slices.Sort(ratios)
			b.ReportMetric(float64(changes)*float64(b.N)/applyTime.Seconds(), "apply_changes/s")
			b.ReportMetric(float64(changes)*float64(b.N)/psqlTime.Seconds(), "psql_changes/s")
			b.ReportMetric(ratios[len(ratios)/2], "x_faster_than_psql")
		})
	}
}

// BenchmarkApplyGroupBound measures replay at several commit-group
// bounds, from one commit per source transaction up: transactions t and
// changes 10·t per group, each iteration running every bound in turn on a
// fresh database (rotating the order), and reports each bound's median
// rate. It is how the default bounds were chosen.
func BenchmarkApplyGroupBound(b *testing.B) {
	pg := newServerOnly(b)
	bounds := []int{1, 10, 100, 1000, 10000}
	for _, size := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("txn=%d", size), func(b *testing.B) {
			const changes = 6000
			w := benchWorkload(changes/size, size)
			rates := make([][]float64, len(bounds))
			for i := 0; b.Loop(); i++ {
				for k := range bounds {
					j := (i + k) % len(bounds)
					b.StopTimer()
					dsn := pg.CreateDatabase(b, fmt.Sprintf("group_%d_%d_%d", size, bounds[j], i))
					tg := benchTarget(b, dsn)
					tg.limits.txns, tg.limits.changes = bounds[j], 10*bounds[j]
					b.StartTimer()
					start := time.Now()
					applyWorkload(b, tg, w)
					rates[j] = append(rates[j], changes/time.Since(start).Seconds())
					closeTarget(b, tg)
				}
			}
			for j, r := range rates {
				slices.Sort(r)
				b.ReportMetric(r[len(r)/2], fmt.Sprintf("changes/s_group=%d", bounds[j]))
			}
		})
	}
}
