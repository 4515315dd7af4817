package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestQuickstart runs the README's first command and checks its story.
func TestQuickstart(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{
		"all three are online",
		"node 3 reads ETH=3812.5 and 2 entries in all",
		"applied=true",
		"watch: version",
		"BTC = 97000",
		"ETH = 3900",
		"SOL = 241.7",
	} {
		if !strings.Contains(s, want) {
			t.Fatalf("output lacks %q:\n%s", want, s)
		}
	}
}
