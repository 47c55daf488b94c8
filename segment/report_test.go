package segment

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestBenchReport appends the segment section of BENCHMARKS.md to the file
// named by RXVAULT_BENCH_OUT ('make bench' sets it). Each rxvault
// benchmark runs interleaved with its zstd-alone baseline for several
// rounds on the same bytes; the table gives medians.
func TestBenchReport(t *testing.T) {
	out := os.Getenv("RXVAULT_BENCH_OUT")
	if out == "" {
		t.Skip("set RXVAULT_BENCH_OUT=FILE to write the benchmark report")
	}
	d, err := benchOnce()
	if err != nil {
		t.Fatal(err)
	}
	const rounds = 7
	pairs := []struct {
		name, goal string
		ours, base func(*testing.B)
	}{
		{"encode: zstd + AES-256-GCM + framing + SHA-256 (container)", "≥ 0.8", BenchmarkEncodeContainer, BenchmarkEncodeZstd},
		{"decode: SHA-256 + AES-256-GCM + zstd (container)", "≥ 0.8", BenchmarkDecodeContainer, BenchmarkDecodeZstd},
		{"encode: transactions to segment (record encoding + container)", "—", BenchmarkEncodeSegment, BenchmarkEncodeZstd},
		{"decode: segment to transactions (container + record decoding)", "—", BenchmarkDecodeSegment, BenchmarkDecodeZstd},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## Segment encode and decode\n\n")
	fmt.Fprintf(&b, "Corpus: %d pharmacy transactions (patients, prescriptions, fills, claims; %d changes), %.1f MB of record payload, "+
		"compressed to %.1f MB. Throughput is payload MB/s. zstd alone compresses or decompresses the same payload bytes in the same "+
		"1 MiB chunks at the same level (SpeedDefault), single-threaded. Each pair ran interleaved %d times; medians shown.\n\n",
		len(d.txns), countChanges(d.txns), float64(len(d.payload))/1e6, float64(len(d.segment))/1e6, rounds)
	fmt.Fprintf(&b, "| operation | rxvault MB/s | zstd alone MB/s | ratio | goal |\n|---|---:|---:|---:|:---:|\n")
	for _, p := range pairs {
		var ours, base, ratio []float64
		for range rounds {
			o := mbps(testing.Benchmark(p.ours), len(d.payload))
			z := mbps(testing.Benchmark(p.base), len(d.payload))
			ours, base, ratio = append(ours, o), append(base, z), append(ratio, o/z)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.0f | %.2f | %s |\n", p.name, median(ours), median(base), median(ratio), p.goal)
		t.Logf("%s: ratios %.2f", p.name, ratio)
	}
	b.WriteString("\nThe container rows are the format's own cost (the goal: framing plus encryption cost at most 20%). " +
		"The decoder overlaps reading, hashing and decrypting chunk i+1 with decompressing chunk i, so it uses a second core when one is free. " +
		"The full rows add turning transactions into records and back.\n\n")
	f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(b.String()); err != nil {
		t.Fatal(err)
	}
}

func mbps(r testing.BenchmarkResult, n int) float64 {
	return float64(n) * float64(r.N) / r.T.Seconds() / 1e6
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func countChanges(txns []Txn) int {
	n := 0
	for _, t := range txns {
		n += len(t.Changes)
	}
	return n
}
