package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestCounterExample(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{"leader elected:", "new leader elected:", "reads count = 30", "reads count = 40"} {
		if !strings.Contains(s, want) {
			t.Fatalf("output lacks %q:\n%s", want, s)
		}
	}
	if n := strings.Count(s, "reads count = 40"); n != 2 {
		t.Fatalf("%d nodes read 40 after the leader died, want 2:\n%s", n, s)
	}
	t.Log("\n" + s)
}
