package store

import (
	"context"
	"fmt"
)

// Walk calls fn for every object of s whose name starts with prefix, in
// ascending name order, fetching one page of List at a time. It stops at
// the first error, from List or from fn, and returns it. A store that
// returns a page whose Next does not move forward is reported as an error
// rather than looped on.
func Walk(ctx context.Context, s Store, prefix string, fn func(ObjectInfo) error) error {
	after := ""
	for {
		page, err := s.List(ctx, ListOptions{Prefix: prefix, StartAfter: after})
		if err != nil {
			return err
		}
		for _, o := range page.Objects {
			if err := fn(o); err != nil {
				return err
			}
		}
		if page.Next == "" {
			return nil
		}
		if page.Next <= after {
			return fmt.Errorf("walk %s: listing did not advance past %q", s, after)
		}
		after = page.Next
	}
}
