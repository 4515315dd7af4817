package cli

import (
	"context"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/mosaik-go/mosaik/collections"
	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/internal/inspectwire"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// TestBusyDump: a node whose inspect dumps are all taken (by other peers,
// each up to its own bound) refuses a dump, and the tool says so plainly.
func TestBusyDump(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hub, err := transport.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hub.Close() })
	w, err := collections.NewMapWriter[string, int](hub, "crowded", collections.WithGroupConfig(liveConfig()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	if err := w.When().Online(ctx); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b"} {
		if _, err := w.Insert(ctx, k, 1); err != nil {
			t.Fatal(err)
		}
	}
	var gid groups.ID
	pollUntil(t, ctx, "the group in the node's status", func() bool {
		var gs []groups.Status
		if cbor.Unmarshal(hub.Status().Sections[groups.StatusSection], &gs) != nil {
			return false
		}
		for _, g := range gs {
			if g.Labels["name"] == "crowded" {
				gid = g.ID
				return true
			}
		}
		return false
	})
	// Peers that each start as many dumps as a peer may, one page of one
	// entry each, until the node holds all it allows.
	req, err := rsm.Marshal(inspectwire.Request{Op: inspectwire.OpDump, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	subj := inspectwire.Subject(hub, gid.String(), hub.ID())
	for range collections.InspectMaxDumps / collections.InspectMaxPeerDumps {
		n, err := transport.New(ctx, transport.WithURL(hub.URL()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		sc := n.Scope(gid, transport.Secret{})
		for range collections.InspectMaxPeerDumps {
			b, err := sc.Request(ctx, subj, hub.ID(), req)
			if err != nil {
				t.Fatal(err)
			}
			var r inspectwire.Reply
			if err := rsm.Unmarshal(b, &r); err != nil || r.Code != inspectwire.OK {
				t.Fatalf("a dump start: %v, code %d %q", err, r.Code, r.Msg)
			}
		}
	}
	runInspectFails(t, 1, []string{"dump", "map/crowded", "--url", hub.URL()},
		"collections: busy, retry later", "node "+hub.ID().Short(), "inspect dumps in progress, the most allowed")
}
