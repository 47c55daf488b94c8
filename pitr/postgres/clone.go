package postgres

import (
	"bytes"
	"slices"

	"github.com/rxvault/rxvault/segment"
)

// changeBytes is about how much memory c's values hold.
func changeBytes(c *segment.Change) int {
	n := len(c.Content) + len(c.SQL)
	for _, v := range c.Old {
		n += len(v.Data)
	}
	for _, v := range c.New {
		n += len(v.Data)
	}
	return n
}

// cloneChange copies c and everything it holds but its relations, which
// the reader never changes: the iterator's changes are valid only until
// the next iteration.
func cloneChange(c *segment.Change) *segment.Change {
	cp := *c
	cp.Old = cloneValues(c.Old)
	cp.New = cloneValues(c.New)
	cp.Truncated = slices.Clone(c.Truncated)
	cp.Content = bytes.Clone(c.Content)
	return &cp
}

func cloneValues(vals []segment.Value) []segment.Value {
	if vals == nil {
		return nil
	}
	size := 0
	for _, v := range vals {
		size += len(v.Data)
	}
	data := make([]byte, 0, size)
	out := make([]segment.Value, len(vals))
	for i, v := range vals {
		out[i].Kind = v.Kind
		if v.Data != nil {
			data = append(data, v.Data...)
			out[i].Data = data[len(data)-len(v.Data) : len(data) : len(data)]
		}
	}
	return out
}
