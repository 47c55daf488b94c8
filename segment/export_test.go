package segment

// SetBenchTxns gives the internal benchmarks their corpus (test builds only).
func SetBenchTxns(f func() []Txn) { benchTxns = f }

// WriterCompressed reports whether w compressed a chunk itself (test
// builds only): a copied SpillSegment spill's chunks come compressed.
func WriterCompressed(w *Writer) bool { return w.seal.zenc != nil }
