package collections

import (
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mosaik-go/mosaik/internal/inspectwire"
	"github.com/mosaik-go/mosaik/internal/promtest"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// inspectFixture is one sealed map on one node, with a registry and a log,
// and peers in the map's scope that hold its secret: members of the scope,
// as a buggy or compromised one would be.
type inspectFixture struct {
	tn     *testNet
	secret transport.Secret
	node   *transport.Network
	reg    *prometheus.Registry
	log    *trustLog
	w      *MapWriter[string, string]
}

func newInspectFixture(t *testing.T) *inspectFixture {
	t.Helper()
	f := &inspectFixture{tn: newTestNet(t), secret: transport.NewSecret(), reg: prometheus.NewRegistry(), log: &trustLog{}}
	var err error
	f.node, err = transport.New(tctx(t), transport.WithURL(f.tn.hub.URL()), transport.WithMetrics(f.reg), transport.WithLogger(f.log.logger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.node.Close() })
	f.w = cleanup(t, must[*MapWriter[string, string]](t)(NewMapWriter[string, string](f.node, "inspected", append(testOpts(), WithSecret(f.secret))...)))
	if err := f.w.When().Online(ctxT(t, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		must[Version](t)(f.w.Insert(ctxT(t, 10*time.Second), string(rune('a'+i%26))+strings.Repeat("x", i), "v"))
	}
	return f
}

// peer is a node of the fixture's network in the map's scope.
func (f *inspectFixture) peer(t *testing.T) *transport.Scope {
	t.Helper()
	return f.tn.node().Scope(f.w.g.ID(), f.secret)
}

func (f *inspectFixture) subject() string {
	return inspectwire.Subject(f.node, f.w.g.ID().String(), f.node.ID())
}

// ask sends req from sc and decodes the answer.
func (f *inspectFixture) ask(t *testing.T, sc *transport.Scope, req inspectwire.Request) inspectwire.Reply {
	t.Helper()
	b, err := sc.Request(ctxT(t, 10*time.Second+req.Wait), f.subject(), f.node.ID(), trCBOR(t, req))
	if err != nil {
		t.Fatalf("inspect %+v: %v", req, err)
	}
	r, err := inspectwire.DecodeReply(b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestInspectFlood: a member of the scope starts 20,000 dumps and 20,000
// polls for changes. The node answers every one (the most it allows, the
// rest busy), its goroutines stay few, another peer still dumps, polls and
// reads heads during the flood, the refusals are counted and warned of
// once, and everything is released when the rogue's requests end.
func TestInspectFlood(t *testing.T) {
	const n = 20000
	f := newInspectFixture(t)
	rogue := f.peer(t)
	honest := f.peer(t)
	f.ask(t, honest, inspectwire.Request{Op: inspectwire.OpHead}) // both peers' cards known
	f.ask(t, rogue, inspectwire.Request{Op: inspectwire.OpHead})
	runtime.GC()
	base := runtime.NumGoroutine()

	// Sample the goroutines while the flood lasts.
	var peak atomic.Int64
	stopSampling := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			if g := int64(runtime.NumGoroutine()); g > peak.Load() {
				peak.Store(g)
			}
			select {
			case <-tick.C:
			case <-stopSampling:
				return
			}
		}
	}()

	var mu sync.Mutex
	codes := map[string]map[inspectwire.Code]int{}
	var answered atomic.Int64
	var cancels []func()
	send := func(kind string, req inspectwire.Request) {
		var once sync.Once
		c, err := rogue.Call(f.subject(), f.node.ID(), trCBOR(t, req), func(b []byte, err error) {
			once.Do(func() {
				code := inspectwire.Code(255)
				if err == nil {
					if r, err := inspectwire.DecodeReply(b); err == nil {
						code = r.Code
					}
				}
				mu.Lock()
				if codes[kind] == nil {
					codes[kind] = map[inspectwire.Code]int{}
				}
				codes[kind][code]++
				mu.Unlock()
				answered.Add(1)
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		cancels = append(cancels, c)
	}
	v := f.w.Version()
	for range n {
		send("dump", inspectwire.Request{Op: inspectwire.OpDump, Limit: 1})
		send("poll", inspectwire.Request{Op: inspectwire.OpChanges, Since: uint64(v), Wait: 20 * time.Second})
	}
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()

	// The node answers all the refused ones at once; the polls it took
	// wait. Meanwhile another peer is served.
	trWait(t, 2*time.Minute, "answers to the flood", func() bool {
		return answered.Load() >= 2*n-InspectMaxPeerPolls
	})
	if r := f.ask(t, honest, inspectwire.Request{Op: inspectwire.OpDump, Limit: 10}); r.Code != inspectwire.OK || len(r.Items) != 10 || r.Total != 50 {
		t.Errorf("honest dump during the flood: code %d %q, %d items of %d", r.Code, r.Msg, len(r.Items), r.Total)
	} else {
		for !r.Done {
			r = f.ask(t, honest, inspectwire.Request{Op: inspectwire.OpDump, Session: r.Session, Page: r.Page + 1, Limit: 10})
			if r.Code != inspectwire.OK {
				t.Fatalf("honest dump, page %d: code %d %q", r.Page, r.Code, r.Msg)
			}
		}
	}
	if r := f.ask(t, honest, inspectwire.Request{Op: inspectwire.OpHead}); r.Code != inspectwire.OK || r.Total != 50 {
		t.Errorf("honest head during the flood: code %d %q, total %d", r.Code, r.Msg, r.Total)
	}
	// A poll of the honest peer waits like the rogue's, and gets the write.
	pollDone := make(chan inspectwire.Reply, 1)
	pollReq := trCBOR(t, inspectwire.Request{Op: inspectwire.OpChanges, Since: uint64(f.w.Version()), Wait: 20 * time.Second})
	go func() {
		var r inspectwire.Reply
		if b, err := honest.Request(ctxT(t, 30*time.Second), f.subject(), f.node.ID(), pollReq); err != nil {
			r = inspectwire.Reply{Code: 255, Msg: err.Error()}
		} else if r, err = inspectwire.DecodeReply(b); err != nil {
			r = inspectwire.Reply{Code: 255, Msg: err.Error()}
		}
		pollDone <- r
	}()
	trWait(t, 10*time.Second, "the honest poll waiting", func() bool {
		g := f.w.handle.insp.(*inspector[MapChange[string, string]]).gate
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.peerPolls[honest.Network().ID()] == 1
	})
	must[Version](t)(f.w.Insert(ctxT(t, 10*time.Second), "during", "flood"))
	if r := <-pollDone; r.Code != inspectwire.OK || len(r.Records) != 1 {
		t.Errorf("honest poll during the flood: code %d %q, %d records", r.Code, r.Msg, len(r.Records))
	}
	// The rogue's polls got the write too.
	trWait(t, 10*time.Second, "every rogue request answered", func() bool { return answered.Load() == 2*n })
	close(stopSampling)
	sampler.Wait()

	mu.Lock()
	t.Logf("goroutines: %d before the flood, at most %d during it; answers: %v", base, peak.Load(), codes)
	// A dump left idle for dumpIdle frees its slot: under a loaded race
	// detector the flood may outlast that.
	if ok, busy := codes["dump"][inspectwire.OK], codes["dump"][inspectwire.Busy]; ok < InspectMaxPeerDumps || ok+busy != n || busy < n/2 {
		t.Errorf("dumps: %d started, %d refused busy; want at least %d started, the rest (most) refused", ok, busy, InspectMaxPeerDumps)
	}
	// A poll answered frees its slot for another: the version may move
	// without changes (the group's own entries) during the flood.
	ok, busy := codes["poll"][inspectwire.OK], codes["poll"][inspectwire.Busy]
	if ok < InspectMaxPeerPolls || ok+busy != n || busy < n/2 {
		t.Errorf("polls: %d answered, %d refused busy; want at least %d answered, the rest (most) refused", ok, busy, InspectMaxPeerPolls)
	}
	refused := float64(codes["dump"][inspectwire.Busy] + busy)
	mu.Unlock()
	if grew := peak.Load() - int64(base); grew > 100 {
		t.Errorf("goroutines grew by %d during the flood (from %d), want at most 100", grew, base)
	}
	if got := promtest.Sum(t, f.reg, "mosaik_collections_inspect_busy_total"); got != refused {
		t.Errorf("mosaik_collections_inspect_busy_total = %v, want %v", got, refused)
	}
	if k := strings.Count(f.log.String(), "inspect requests refused"); k != 1 {
		t.Errorf("the refusals were warned of %d times, want once; log:\n%s", k, f.log.String())
	}
	// The rogue's dumps still hold their slots until they expire; its
	// polls are done.
	// (A poll's slot comes back just after its answer is sent.)
	gate := f.w.handle.insp.(*inspector[MapChange[string, string]]).gate
	trWait(t, 10*time.Second, "the polls' slots back", func() bool { _, polls := gate.held(); return polls == 0 })
	if dumps, _ := gate.held(); dumps > InspectMaxPeerDumps {
		t.Errorf("%d dumps held after the flood, want at most %d", dumps, InspectMaxPeerDumps)
	}
}

// TestInspectDumpSessions: a dump read to its end returns its slot, so one
// peer may dump again and again; a dump's pages read one frozen version
// while writes go on; a retried page reads the same; a session is only its
// starter's; an idle one is dropped and returns its slot.
func TestInspectDumpSessions(t *testing.T) {
	f := newInspectFixture(t)
	p := f.peer(t)
	other := f.peer(t)
	in := f.w.handle.insp.(*inspector[MapChange[string, string]])
	for i := range 3 * InspectMaxPeerDumps {
		r := f.ask(t, p, inspectwire.Request{Op: inspectwire.OpDump, Limit: 30})
		if r.Code != inspectwire.OK {
			t.Fatalf("dump %d: code %d %q", i, r.Code, r.Msg)
		}
		must[Version](t)(f.w.Insert(ctxT(t, 10*time.Second), "more", strings.Repeat("m", i)))
		if x := f.ask(t, other, inspectwire.Request{Op: inspectwire.OpDump, Session: r.Session, Page: 1}); x.Code != inspectwire.UnknownSession {
			t.Fatalf("another peer read a session's page: code %d", x.Code)
		}
		items := append([]inspectwire.Change(nil), r.Items...)
		r2 := f.ask(t, p, inspectwire.Request{Op: inspectwire.OpDump, Session: r.Session, Page: 1, Limit: 30})
		again := f.ask(t, p, inspectwire.Request{Op: inspectwire.OpDump, Session: r.Session, Page: 1, Limit: 30})
		if r2.Code != inspectwire.OK || again.Code != inspectwire.OK || len(r2.Items) != len(again.Items) || r2.Version != r.Version {
			t.Fatalf("page 1 and its retry: %+v / %+v", r2, again)
		}
		for j := range r2.Items {
			if !reflect.DeepEqual(r2.Items[j], again.Items[j]) {
				t.Fatalf("the retried page differs at %d", j)
			}
		}
		items = append(items, r2.Items...)
		if !r2.Done || len(items) != r.Total {
			t.Fatalf("dump %d: %d items of %d, done %v", i, len(items), r.Total, r2.Done)
		}
		seen := map[string]bool{}
		for _, it := range items {
			var k string
			if err := rsm.Unmarshal(it.Key, &k); err != nil || it.Op != inspectwire.ChangeInsert || seen[k] {
				t.Fatalf("item %+v: %v, seen %v", it, err, seen[k])
			}
			seen[k] = true
		}
	}
	if dumps, _ := in.gate.held(); dumps != 0 {
		t.Errorf("%d dump slots held after every dump finished", dumps)
	}
	in.mu.Lock()
	kept := len(in.sessions)
	in.mu.Unlock()
	if kept != dumpsFinished {
		t.Errorf("%d finished sessions kept, want %d", kept, dumpsFinished)
	}
	// An unfinished session holds its slot until it is dropped.
	r := f.ask(t, p, inspectwire.Request{Op: inspectwire.OpDump, Limit: 1})
	if dumps, _ := in.gate.held(); dumps != 1 {
		t.Fatalf("%d slots held by an unfinished dump", dumps)
	}
	in.drop(r.Session) // what the idle timer does
	if dumps, _ := in.gate.held(); dumps != 0 {
		t.Errorf("%d slots held after the idle dump was dropped", dumps)
	}
	if x := f.ask(t, p, inspectwire.Request{Op: inspectwire.OpDump, Session: r.Session, Page: 1}); x.Code != inspectwire.UnknownSession {
		t.Errorf("a dropped session answered: code %d", x.Code)
	}
}

// TestInspectGateShared: the bounds are per node, across its collections.
func TestInspectGateShared(t *testing.T) {
	tn := newTestNet(t)
	n := tn.node()
	a := cleanup(t, must[*MapWriter[string, int]](t)(NewMapWriter[string, int](n, "a", testOpts()...)))
	b := cleanup(t, must[*SetWriter[int]](t)(NewSetWriter[int](n, "b", testOpts()...)))
	ga := a.handle.insp.(*inspector[MapChange[string, int]]).gate
	gb := b.handle.insp.(*inspector[SetChange[int]]).gate
	if ga != gb {
		t.Error("two collections of one node have two inspect gates")
	}
	// Another node of this process has a gate of its own.
	other := tn.node()
	c := cleanup(t, must[*MapWriter[string, int]](t)(NewMapWriter[string, int](other, "a", testOpts()...)))
	if gc := c.handle.insp.(*inspector[MapChange[string, int]]).gate; gc == ga {
		t.Error("two nodes of one process share an inspect gate")
	}
	_ = a.Close()
	if netGate(n) != ga {
		t.Error("the gate went with the first collection")
	}
	_ = b.Close()
	if netGate(n) != nil {
		t.Error("the gate outlived the node's collections")
	}
}

// TestInspectWireChange: each kind's changes reach the wire with what they
// mean (a map's key, a vec's index, a value where there is one) and their
// op in the protocol's own numbering.
func TestInspectWireChange(t *testing.T) {
	enc := func(v any) []byte { return must[[]byte](t)(rsm.Marshal(v)) }
	for _, tc := range []struct {
		in   wireChange
		want inspectwire.Change
	}{
		{MapChange[string, int]{Op: OpInsert, Key: "a", Value: 7}, inspectwire.Change{Op: inspectwire.ChangeInsert, Key: enc("a"), Value: enc(7)}},
		{MapChange[string, int]{Op: OpRemove, Key: "a"}, inspectwire.Change{Op: inspectwire.ChangeRemove, Key: enc("a")}},
		{MapChange[string, int]{Op: OpClear}, inspectwire.Change{Op: inspectwire.ChangeClear}},
		{VecChange[string]{Op: OpInsert, Index: 2, Value: "x"}, inspectwire.Change{Op: inspectwire.ChangeInsert, Index: 2, Value: enc("x")}},
		{VecChange[string]{Op: OpSet, Index: 3, Value: "y"}, inspectwire.Change{Op: inspectwire.ChangeSet, Index: 3, Value: enc("y")}},
		{VecChange[string]{Op: OpRemove, Index: 4}, inspectwire.Change{Op: inspectwire.ChangeRemove, Index: 4}},
		{VecChange[string]{Op: OpTruncate, Index: 1}, inspectwire.Change{Op: inspectwire.ChangeTruncate, Index: 1}},
		{VecChange[string]{Op: OpClear}, inspectwire.Change{Op: inspectwire.ChangeClear}},
		{SetChange[int]{Op: OpInsert, Value: 5}, inspectwire.Change{Op: inspectwire.ChangeInsert, Value: enc(5)}},
		{SetChange[int]{Op: OpRemove, Value: 5}, inspectwire.Change{Op: inspectwire.ChangeRemove, Value: enc(5)}},
		{SetChange[int]{Op: OpClear}, inspectwire.Change{Op: inspectwire.ChangeClear}},
	} {
		got, err := tc.in.wire()
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%+v: %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

// netGate is the gate n holds now, nil if none.
func netGate(n *transport.Network) *inspectGate {
	h := gateSlot.Get(n)
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gate
}
