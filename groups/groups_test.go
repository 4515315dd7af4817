package groups

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

func online(t *testing.T, nodes ...*node) {
	t.Helper()
	for _, nd := range nodes {
		if err := nd.g.When().Online(ctxT(t, 15*time.Second)); err != nil {
			t.Fatalf("%s not online: %v", nd.net.ID().Short(), err)
		}
	}
}

// converge waits until every node applied the same index and returns it.
func converge(t *testing.T, nodes ...*node) rsm.Index {
	t.Helper()
	var idx rsm.Index
	// Equal indexes and equal histories: a batch a stopped writer gave up on
	// may still apply after the indexes were last seen equal.
	waitFor(t, 15*time.Second, "replicas to converge", func() bool {
		idx = nodes[0].g.Applied()
		h := nodes[0].sm.history()
		for _, nd := range nodes[1:] {
			if nd.g.Applied() != idx || !slices.Equal(nd.sm.history(), h) {
				return false
			}
		}
		return true
	})
	return idx
}

func sameHistory(t *testing.T, nodes ...*node) []int64 {
	t.Helper()
	want := nodes[0].sm.history()
	for _, nd := range nodes[1:] {
		if got := nd.sm.history(); !slices.Equal(got, want) {
			t.Fatalf("histories differ:\n%s: %v\n%s: %v", nodes[0].net.ID().Short(), want, nd.net.ID().Short(), got)
		}
	}
	return want
}

func TestThreeNodesOrderAndBatches(t *testing.T) {
	c := newCluster(t)
	start := time.Now()
	a, b, d := c.add(nil), c.add(nil), c.add(nil)
	online(t, a, b, d)
	l := c.leader()
	// Bootstrap delay plus a few election timeouts.
	if took := time.Since(start); took > 300*time.Millisecond+10*200*time.Millisecond {
		t.Fatalf("leader after %v", took)
	}
	t.Logf("leader %s after %v", l.net.ID().Short(), time.Since(start))

	var wg sync.WaitGroup
	for i, nd := range []*node{a, b, d} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last rsm.Index
			for j := range 50 {
				idx, err := nd.g.Execute(ctxT(t, 5*time.Second), counterCmd{Add: int64(1000*(i+1) + j)})
				if err != nil {
					t.Errorf("execute: %v", err)
					return
				}
				if idx <= last {
					t.Errorf("index %d after %d", idx, last)
				}
				last = idx
			}
		}()
	}
	wg.Wait()

	cmds := []counterCmd{{Add: 1}, {Add: 2}, {Add: 3}, {Add: 4}}
	r, err := b.g.ExecuteMany(ctxT(t, 5*time.Second), cmds)
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != len(cmds) {
		t.Fatalf("range %+v for %d commands", r, len(cmds))
	}
	if _, err := b.g.ExecuteMany(ctxT(t, time.Second), nil); !errors.Is(err, ErrNoCommands) {
		t.Fatalf("ExecuteMany(nil) = %v, want ErrNoCommands", err)
	}
	converge(t, a, b, d)
	h := sameHistory(t, a, b, d)
	if len(h) != 154 {
		t.Fatalf("history has %d commands, want 154", len(h))
	}
	// Commands of one handle apply in the order issued.
	for i := range 3 {
		prev := int64(-1)
		for _, v := range h {
			if v/1000 == int64(i+1) {
				if v <= prev {
					t.Fatalf("node %d: %d applied after %d", i, v, prev)
				}
				prev = v
			}
		}
	}
	if !slices.Equal(h[150:], []int64{1, 2, 3, 4}) {
		t.Fatalf("batch not applied as one run: %v", h[150:])
	}
}

// writer issues unique commands until stopped and records what was
// acknowledged and what failed.
type writer struct {
	nd     *node
	base   int64
	mu     sync.Mutex
	acked  []int64
	failed []int64
}

func (w *writer) run(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	for i := int64(0); ctx.Err() == nil; i++ {
		v := w.base + i
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := w.nd.g.Execute(cctx, counterCmd{Add: v})
		cancel()
		w.mu.Lock()
		if err == nil {
			w.acked = append(w.acked, v)
		} else {
			w.failed = append(w.failed, v)
		}
		w.mu.Unlock()
	}
}

// checkExactlyOnce checks every acknowledged command is in h exactly once,
// and nothing is in h twice.
func checkExactlyOnce(t *testing.T, h []int64, ws ...*writer) {
	t.Helper()
	seen := map[int64]int{}
	for _, v := range h {
		seen[v]++
		if seen[v] > 1 {
			t.Fatalf("command %d applied twice", v)
		}
	}
	total := 0
	for _, w := range ws {
		for _, v := range w.acked {
			if seen[v] != 1 {
				t.Fatalf("acknowledged command %d missing", v)
			}
		}
		total += len(w.acked)
	}
	if total == 0 {
		t.Fatal("no command was acknowledged")
	}
}

func TestLeaderIsolated(t *testing.T) {
	c := newCluster(t)
	nodes := []*node{c.add(nil), c.add(nil), c.add(nil)}
	online(t, nodes...)
	old := c.leader()

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var ws []*writer
	for i, nd := range nodes {
		w := &writer{nd: nd, base: int64(i+1) * 1_000_000}
		ws = append(ws, w)
		wg.Add(1)
		go w.run(ctx, &wg)
	}
	waitFor(t, 5*time.Second, "some writes", func() bool { return old.g.Applied() > 30 })

	old.faults.Isolate()
	var rest []*node
	for _, nd := range nodes {
		if nd != old {
			rest = append(rest, nd)
		}
	}
	nl := c.leader(rest...)
	if nl == old {
		t.Fatal("isolated node still leads")
	}
	at := nl.g.Applied()
	waitFor(t, 10*time.Second, "writes under the new leader", func() bool { return nl.g.Applied() > at+30 })
	old.faults.Heal()
	waitFor(t, 10*time.Second, "more writes after healing", func() bool { return nl.g.Applied() > at+60 })
	stop()
	wg.Wait()

	converge(t, nodes...)
	h := sameHistory(t, nodes...)
	checkExactlyOnce(t, h, ws...)
	for _, w := range ws {
		t.Logf("writer %d: %d acknowledged, %d failed", w.base/1_000_000, len(w.acked), len(w.failed))
	}
}

func TestLateJoinerReplaysLog(t *testing.T) {
	c := newCluster(t)
	a, b := c.add(nil), c.add(nil)
	online(t, a, b)
	cmds := make([]counterCmd, 100)
	for i := range cmds {
		cmds[i] = counterCmd{Add: 1}
	}
	for range 10 {
		if _, err := a.g.ExecuteMany(ctxT(t, 5*time.Second), cmds); err != nil {
			t.Fatal(err)
		}
	}
	late := c.add(nil)
	online(t, late)
	converge(t, a, b, late)
	for _, nd := range []*node{a, b, late} {
		r, err := nd.g.Query(ctxT(t, time.Second), struct{}{}, Weak)
		if err != nil || r.Value != 1000 {
			t.Fatalf("weak query on %s = %v, %v; want 1000", nd.net.ID().Short(), r.Value, err)
		}
	}
	if !slices.ContainsFunc(a.g.Members(), func(m Member) bool { return m.Peer == late.net.ID() }) {
		t.Fatal("late joiner not a member")
	}
}

func TestStrongReadAfterWrite(t *testing.T) {
	c := newCluster(t)
	nodes := []*node{c.add(nil), c.add(nil), c.add(nil)}
	online(t, nodes...)
	for i := range 200 {
		w, r := nodes[i%3], nodes[(i+1)%3]
		if _, err := w.g.Execute(ctxT(t, 5*time.Second), counterCmd{Add: 1}); err != nil {
			t.Fatal(err)
		}
		got, err := r.g.Query(ctxT(t, 5*time.Second), struct{}{}, Strong)
		if err != nil {
			t.Fatal(err)
		}
		if got.Value != int64(i+1) {
			t.Fatalf("round %d: strong read on another node saw %d", i, got.Value)
		}
	}
}

func TestDifferentKeyOrSignatureNeverMeet(t *testing.T) {
	c := newCluster(t)
	a := c.add(nil)
	other := func(key Key, sig string, cfg *Config) *Group[counterCmd, struct{}, int64] {
		n, err := transport.New(context.Background(), transport.WithURL(c.url))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		g, err := Join(n, key, &counter{sig: sig}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
		return g
	}
	cfg := testConfig()
	cfg.ElectionTimeout = 250 * time.Millisecond
	gs := []*Group[counterCmd, struct{}, int64]{
		other(NewKey(), "", nil),
		other(c.key, "test.counter.v2", nil),
		other(c.key, "", cfg),
	}
	online(t, a)
	for _, g := range gs {
		if g.ID() == a.g.ID() {
			t.Fatal("same group id despite a different key, signature or setting")
		}
		if err := g.When().Online(ctxT(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		if l, _ := g.Leader(); l == a.net.ID() {
			t.Fatal("follows the other group's leader")
		}
	}
	if n := len(a.g.Members()); n != 1 {
		t.Fatalf("group has %d members, want 1", n)
	}
}
