package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/collections"
	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/transport"
)

// liveFixture is a small network: node 01 writes a map "scores" and a vec
// "events", nodes 02 and 03 read the map. Peer ids are fixed so the tables
// are the same on every run.
type liveFixture struct {
	url    string
	writer *collections.MapWriter[string, int]
	events *collections.VecWriter[string]
	r1, r2 *collections.MapReader[string, int]
}

// idents are the fixture's node identities, in PeerID order: nodes 1, 2, 3
// and the hub 9, so tables list them in that order.
var idents = func() map[byte]*transport.Identity {
	ids := make([]*transport.Identity, 4)
	for i := range ids {
		ids[i] = transport.NewIdentity()
	}
	slices.SortFunc(ids, func(a, b *transport.Identity) int { return a.PeerID().Compare(b.PeerID()) })
	return map[byte]*transport.Identity{1: ids[0], 2: ids[1], 3: ids[2], 9: ids[3]}
}()

func peer(b byte) transport.PeerID { return idents[b].PeerID() }

func liveConfig() *groups.Config {
	return &groups.Config{
		HeartbeatInterval: 20 * time.Millisecond,
		ElectionTimeout:   200 * time.Millisecond,
		BootstrapDelay:    200 * time.Millisecond,
		DeadMemberTimeout: 5 * time.Second,
		ForwardTimeout:    2 * time.Second,
		QueryTimeout:      2 * time.Second,
	}
}

func newLiveFixture(t *testing.T) *liveFixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hub, err := transport.New(ctx, transport.WithIdentity(idents[9]))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hub.Close() })
	node := func(b byte) *transport.Network {
		n, err := transport.New(ctx, transport.WithURL(hub.URL()), transport.WithIdentity(idents[b]))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	n1, n2, n3 := node(1), node(2), node(3)
	opt := collections.WithGroupConfig(liveConfig())
	fx := &liveFixture{url: hub.URL()}
	closeLater := func(c interface{ Close() error }) { t.Cleanup(func() { _ = c.Close() }) }
	if fx.writer, err = collections.NewMapWriter[string, int](n1, "scores", opt); err != nil {
		t.Fatal(err)
	}
	closeLater(fx.writer)
	if fx.events, err = collections.NewVecWriter[string](n1, "events", opt); err != nil {
		t.Fatal(err)
	}
	closeLater(fx.events)
	if fx.r1, err = collections.NewMapReader[string, int](n2, "scores", opt); err != nil {
		t.Fatal(err)
	}
	closeLater(fx.r1)
	if fx.r2, err = collections.NewMapReader[string, int](n3, "scores", opt); err != nil {
		t.Fatal(err)
	}
	closeLater(fx.r2)
	for _, w := range []interface{ When() *collections.When }{fx.writer, fx.events, fx.r1, fx.r2} {
		if err := w.When().Online(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var v collections.Version
	for i, name := range []string{"ada", "bob", "cy", "dee", "eve"} {
		if v, err = fx.writer.Insert(ctx, name, 10*(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range []string{"start", "stop"} {
		if _, err := fx.events.PushBack(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []*collections.MapReader[string, int]{fx.r1, fx.r2} {
		if err := r.When().Reaches(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	// Members report their log positions in announcements: wait until the
	// leader sees everyone caught up, so the tables hold no moving figures.
	pollUntil(t, ctx, "every member caught up", func() bool {
		code, out, _ := runInspect(t, "group", "map/scores", "--json", "--url", fx.url)
		if code != 0 {
			return false
		}
		var d groupDetailJSON
		if json.Unmarshal([]byte(out), &d) != nil || len(d.Members) != 3 {
			return false
		}
		for _, m := range d.Members {
			if m.Lag != 0 || !m.Answered {
				return false
			}
		}
		return true
	})
	return fx
}

var (
	agoRE  = regexp.MustCompile(`\d+(\.\d+)?(ns|µs|ms|s|m|h)+ ago`)
	portRE = regexp.MustCompile(`127\.0\.0\.1:\d+`)
)

var spacesRE = regexp.MustCompile(` {2,}`)

// normalizeLive replaces what changes between runs: elapsed times, ports,
// and so the width of table columns.
func normalizeLive(s string) string {
	// Node ids are random: show node b as b repeated, in order.
	for b, id := range idents {
		fixed := strings.Repeat(fmt.Sprintf("%02x", b), 32)
		s = strings.ReplaceAll(s, id.PeerID().String(), fixed)
		s = strings.ReplaceAll(s, id.PeerID().Short(), fixed[:8])
	}
	s = agoRE.ReplaceAllString(s, "<elapsed> ago")
	s = portRE.ReplaceAllString(s, "127.0.0.1:<port>")
	return spacesRE.ReplaceAllString(s, "  ")
}

func TestLiveTables(t *testing.T) {
	fx := newLiveFixture(t)
	golden(t, "peers.golden", normalizeLive(runInspectOK(t, "peers", "--url", fx.url)))
	golden(t, "groups.golden", normalizeLive(runInspectOK(t, "groups", "--url", fx.url)))
	golden(t, "group.golden", normalizeLive(runInspectOK(t, "group", "scores", "--url", fx.url)))
	golden(t, "dump_map.golden", normalizeLive(runInspectOK(t, "dump", "scores", "--url", fx.url)))
	golden(t, "dump_vec.golden", normalizeLive(runInspectOK(t, "dump", "events", "--url", fx.url)))
}

func TestLiveJSON(t *testing.T) {
	fx := newLiveFixture(t)

	var peers []peerJSON
	mustJSON(t, runInspectOK(t, "peers", "--json", "--url", fx.url), &peers)
	// Four nodes: the three members and the one running the server.
	if len(peers) != 4 || peers[0].Peer != peer(1).String() || len(peers[0].Groups) != 2 || len(peers[2].Groups) != 1 ||
		peers[3].Peer != peer(9).String() || len(peers[3].Groups) != 0 {
		t.Errorf("peers: %+v", peers)
	}

	var gs []groupJSON
	mustJSON(t, runInspectOK(t, "groups", "--json", "--url", fx.url), &gs)
	if len(gs) != 2 {
		t.Fatalf("groups: %+v", gs)
	}
	ev, sc := gs[0], gs[1] // ordered by name
	if ev.Labels["name"] != "events" || ev.Labels["kind"] != "vec" || ev.Labels["types"] != "string" || ev.Voters != 1 || ev.NonVoters != 0 {
		t.Errorf("events: %+v", ev)
	}
	if sc.Labels["name"] != "scores" || sc.Labels["kind"] != "map" || sc.Labels["types"] != "string,int" ||
		sc.Voters != 1 || sc.NonVoters != 2 || sc.Leader != peer(1).String() || sc.Answered != 3 || sc.Committed == 0 {
		t.Errorf("scores: %+v", sc)
	}

	var d groupDetailJSON
	mustJSON(t, runInspectOK(t, "group", "scores", "--json", "--url", fx.url), &d)
	roles := map[string]string{}
	for _, m := range d.Members {
		roles[m.Peer] = m.Role + "/" + m.Preference
	}
	want := map[string]string{peer(1).String(): "leader/normal", peer(2).String(): "non-voter/observer", peer(3).String(): "non-voter/observer"}
	if len(roles) != 3 || roles[peer(1).String()] != want[peer(1).String()] || roles[peer(2).String()] != want[peer(2).String()] ||
		roles[peer(3).String()] != want[peer(3).String()] {
		t.Errorf("members: %v, want %v", roles, want)
	}

	// A dump in pages of two: the same five entries, with progress on stderr.
	code, out, errOut := runInspect(t, "dump", "scores", "--json", "--page", "2", "--url", fx.url)
	if code != 0 {
		t.Fatalf("dump: exit %d: %s", code, errOut)
	}
	var dump struct {
		Kind    string
		Version uint64
		Entries []struct {
			Key   string
			Value int
		}
	}
	mustJSON(t, out, &dump)
	if dump.Kind != "map" || dump.Version != uint64(fx.writer.Version()) || len(dump.Entries) != 5 ||
		dump.Entries[0].Key != "ada" || dump.Entries[0].Value != 10 || dump.Entries[4].Key != "eve" || dump.Entries[4].Value != 50 {
		t.Errorf("dump: %+v", dump)
	}
	if !strings.Contains(errOut, "2/5 entries") || !strings.Contains(errOut, "4/5 entries") {
		t.Errorf("dump progress: %q", errOut)
	}

	// An id prefix works as well as a name.
	var byID groupDetailJSON
	mustJSON(t, runInspectOK(t, "group", sc.ID[:10], "--json", "--url", fx.url), &byID)
	if byID.ID != sc.ID {
		t.Errorf("group by id prefix: %s, want %s", byID.ID, sc.ID)
	}
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("%v in %q", err, s)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLiveWatch(t *testing.T) {
	fx := newLiveFixture(t)
	for _, asJSON := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		var out, errOut syncBuffer
		args := []string{"watch", "scores", "--url", fx.url}
		if asJSON {
			args = append(args, "--json")
		}
		done := make(chan int, 1)
		go func() { done <- Run(ctx, args, &out, &errOut) }()
		wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
		if !asJSON {
			pollUntil(t, wctx, "the watch to start", func() bool { return strings.Contains(out.String(), "watching") })
		} else {
			// No banner in JSON: write until the first change shows.
			pollUntil(t, wctx, "the watch to start", func() bool {
				if _, err := fx.writer.Insert(wctx, "probe", 0); err != nil {
					t.Fatal(err)
				}
				return strings.Contains(out.String(), "probe")
			})
		}
		if _, err := fx.writer.Insert(wctx, "zed", 99); err != nil {
			t.Fatal(err)
		}
		gone := "ada" // each round removes a key still there
		if asJSON {
			gone = "bob"
		}
		if _, err := fx.writer.Remove(wctx, gone); err != nil {
			t.Fatal(err)
		}
		for !strings.Contains(out.String(), `"`+gone+`"`) {
			select {
			case <-wctx.Done():
				t.Fatalf("the changes did not show; output:\n%s\nstderr: %s", out.String(), errOut.String())
			case <-time.After(5 * time.Millisecond):
			}
		}
		wcancel()
		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("watch exit %d: %s", code, errOut.String())
		}
		got := out.String()
		if !asJSON {
			if !regexp.MustCompile(`(?m)^v\d+ insert "zed" = 99\nv\d+ remove "ada"$`).MatchString(got) {
				t.Errorf("watch output:\n%s", got)
			}
			continue
		}
		var recs []recordJSON
		for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
			var r recordJSON
			mustJSON(t, line, &r)
			recs = append(recs, r)
		}
		n := len(recs)
		if n < 2 || recs[n-2].Changes[0].Op != "insert" || recs[n-2].Changes[0].Key != "zed" ||
			recs[n-1].Changes[0].Op != "remove" || recs[n-1].Changes[0].Key != "bob" || recs[n-1].Version != recs[n-2].Version+1 {
			t.Errorf("watch JSON:\n%s", got)
		}
	}
}

func TestLiveErrors(t *testing.T) {
	fx := newLiveFixture(t)
	runInspectFails(t, 1, []string{"peers", "--url", "nats://127.0.0.1:1", "--timeout", "500ms"}, "cannot reach the network at nats://127.0.0.1:1")
	runInspectFails(t, 1, []string{"groups", "--url", fx.url, "--network", "elsewhere", "--timeout", "500ms"}, `no node of network "elsewhere"`)
	runInspectFails(t, 1, []string{"dump", "nosuch", "--url", fx.url}, `unknown group or collection "nosuch"`)
	runInspectFails(t, 1, []string{"group", "set/scores", "--url", fx.url}, `unknown group or collection "set/scores"`)
	runInspectFails(t, 2, []string{"dump", "--url", fx.url}, "accepts 1 arg(s)")
	runInspectFails(t, 2, []string{"nonsense"}, "unknown command")

	// Two collections of one name: the kind must be given.
	n, err := transport.New(context.Background(), transport.WithURL(fx.url))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	s, err := collections.NewSetWriter[string](n, "scores", collections.WithGroupConfig(liveConfig()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.When().Online(ctx); err != nil {
		t.Fatal(err)
	}
	runInspectFails(t, 1, []string{"dump", "scores", "--url", fx.url}, `"scores" is ambiguous`, "map scores[string,int]", "set scores[string]")
	if out := runInspectOK(t, "dump", "set/scores", "--url", fx.url); !strings.Contains(out, "set scores [string] at version") {
		t.Errorf("dump set/scores:\n%s", out)
	}
}
