package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/collections"
	"github.com/mosaik-go/mosaik/transport"
)

// Two writers that open one name with different types run two groups;
// `inspect groups` marks each and says what differs.
func TestLiveMismatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hub, err := transport.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hub.Close() })
	node := func() *transport.Network {
		n, err := transport.New(ctx, transport.WithURL(hub.URL()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	opt := collections.WithGroupConfig(liveConfig())
	a, err := collections.NewMapWriter[string, int](node(), "typed", opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	b, err := collections.NewMapWriter[string, int64](node(), "typed", opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })

	var gs []groupJSON
	pollUntil(t, ctx, "both groups to report the other", func() bool {
		code, out, _ := runInspect(t, "groups", "--json", "--url", hub.URL())
		gs = nil
		if code != 0 || json.Unmarshal([]byte(out), &gs) != nil || len(gs) != 2 {
			return false
		}
		return len(gs[0].Mismatches) == 1 && len(gs[1].Mismatches) == 1
	})
	if gs[0].Mismatches[0].ID != gs[1].ID || gs[1].Mismatches[0].ID != gs[0].ID {
		t.Fatalf("each should name the other: %+v", gs)
	}
	out := runInspectOK(t, "groups", "--url", hub.URL())
	t.Log("\n" + out)
	for _, g := range gs {
		if !strings.Contains(out, g.ID[:8]+"!  map") {
			t.Errorf("%s is not marked", g.ID[:8])
		}
	}
	if !strings.Contains(out, `signature "mosaik.collections.map.v1[string,int64]" here, "mosaik.collections.map.v1[string,int]" there`) {
		t.Error("the note does not say what differs")
	}
}
