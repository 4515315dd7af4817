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

	// The two differ only by their types: kind/name names both, and the
	// error lists each with the reference that names it alone.
	for _, ref := range []string{"typed", "map/typed"} {
		runInspectFails(t, 1, []string{"dump", ref, "--url", hub.URL()}, `"`+ref+`" is ambiguous`,
			"map/typed@string,int (map typed[string,int], ", "map/typed@string,int64 (map typed[string,int64], ")
	}
	for ref, types := range map[string]string{"map/typed@string,int": "string,int", "typed@string,int64": "string,int64",
		"typed@" + gs[0].ID[:8]: gs[0].Labels["types"], "map/typed@" + gs[1].ID[:6]: gs[1].Labels["types"]} {
		if out := runInspectOK(t, "dump", ref, "--url", hub.URL()); !strings.Contains(out, "map typed ["+types+"] at version") {
			t.Errorf("dump %s:\n%s", ref, out)
		}
	}
	runInspectFails(t, 1, []string{"dump", "map/typed@string", "--url", hub.URL()}, `unknown group or collection "map/typed@string"`)
}
