package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/collections"
)

// inspect dump shows a live PriorityQueue's entries in ascending order,
// each with its priority.
func TestLiveDumpPQueue(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := liveNet(t, ctx)
	q, err := collections.NewPriorityQueueWriter[int, string, string](n, "jobs", collections.WithGroupConfig(liveConfig()))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.When().Online(ctx); err != nil {
		t.Fatal(err)
	}
	for _, e := range []collections.PQEntry[int, string, string]{
		{Priority: 7, Key: "job-b", Value: "second"}, {Priority: 3, Key: "job-a", Value: "first"}, {Priority: 9, Key: "job-c", Value: "third"},
	} {
		if _, _, err := q.Insert(ctx, e.Priority, e.Key, e.Value); err != nil {
			t.Fatal(err)
		}
	}
	out := runInspectOK(t, "dump", "jobs", "--url", n.URL())
	t.Logf("inspect dump jobs:\n%s", out)
	a, b, c := strings.Index(out, "job-a"), strings.Index(out, "job-b"), strings.Index(out, "job-c")
	if a < 0 || b < a || c < b || !strings.Contains(out, "PRIORITY") || !strings.Contains(out, "third") {
		t.Fatalf("inspect dump jobs:\n%s\nwant the entries ascending, with their priorities", out)
	}
}
