package integration

import (
	"os"
	"strings"
	"testing"

	"github.com/rxvault/rxvault/integration/randmy"
	"github.com/rxvault/rxvault/integration/randpg"
)

// TestLimitsAreTheSkips: the README's list of what a restore does not
// reproduce (or refuses) is exactly what the randomized batteries leave
// out. Every entry of either generator's skip table cites an item of that
// list, and every item is cited by at least one entry.
func TestLimitsAreTheSkips(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const head, next = "### What a restore does not reproduce, and what is refused", "### Other limits"
	_, rest, ok := strings.Cut(string(readme), head)
	section, _, ok2 := strings.Cut(rest, next)
	if !ok || !ok2 {
		t.Fatalf("README has no section %q followed by %q", head, next)
	}
	var items []string
	for _, b := range strings.Split(section, "\n- ")[1:] {
		items = append(items, strings.Join(strings.Fields(b), " "))
	}
	if len(items) == 0 {
		t.Fatal("the README's list of limits is empty")
	}
	var cites []string
	for _, s := range randpg.Skips {
		cites = append(cites, s.Limit)
	}
	cites = append(cites, randmy.Limits()...)
	cited := make([]bool, len(items))
	for _, c := range cites {
		found := false
		for i, item := range items {
			if strings.Contains(item, c) {
				cited[i], found = true, true
			}
		}
		if !found {
			t.Errorf("a skip cites %q, which is no item of the README's list", c)
		}
	}
	for i, item := range items {
		if !cited[i] {
			t.Errorf("README limit %q is cited by no skip of the randomized batteries: generate it, or move it to Other limits", item)
		}
	}
}
