package segment_test

import "runtime"

// runtimeStats samples the Go heap.
type runtimeStats struct{ m runtime.MemStats }

// heapInUse returns live heap bytes after a collection.
func (s *runtimeStats) heapInUse() uint64 {
	runtime.GC()
	runtime.ReadMemStats(&s.m)
	return s.m.HeapInuse
}

// allocatedBy returns the bytes f allocates (cumulative, garbage included).
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
