package segment

// SetBenchTxns gives the internal benchmarks their corpus (test builds only).
func SetBenchTxns(f func() []Txn) { benchTxns = f }
