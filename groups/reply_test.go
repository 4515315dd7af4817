package groups

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// tally is a machine with two kinds of answers: an add answers the new
// total (int64), a rename the old name (string). It records which command
// applied at which index.
type tally struct {
	mu    sync.Mutex
	total int64
	name  string
	at    map[rsm.Index]tallyCmd
}

type tallyCmd struct {
	Add  int64
	Name string // not empty: a rename
}

func (*tally) Signature() string { return "test.tally.v1" }

func (l *tally) Apply(cmd tallyCmd, ctx rsm.ApplyContext) { l.ApplyReply(cmd, ctx) }

func (l *tally) ApplyReply(cmd tallyCmd, ctx rsm.ApplyContext) any {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.at == nil {
		l.at = map[rsm.Index]tallyCmd{}
	}
	l.at[ctx.LogPosition().Index] = cmd
	if cmd.Name != "" {
		old := l.name
		l.name = cmd.Name
		return old
	}
	l.total += cmd.Add
	return l.total
}

func (l *tally) Query(struct{}) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// applied returns the command l applied at idx.
func (l *tally) applied(idx rsm.Index) (tallyCmd, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.at[idx]
	return c, ok
}

type tallyNode struct {
	net *transport.Network
	sm  *gateTally // a tally unless a test sets its gate
	g   *Group[tallyCmd, struct{}, int64]
}

// tallies starts n tally members of one group, on c's server, and waits
// until each is online; the first is a follower unless n is 1.
func tallies(t *testing.T, c *cluster, n int) []*tallyNode {
	t.Helper()
	key := NewKey()
	var out []*tallyNode
	for range n {
		nd := &tallyNode{sm: &gateTally{}}
		nd.net, nd.g = joinTally(t, c, key, nd.sm)
		out = append(out, nd)
	}
	for _, nd := range out {
		if err := nd.g.When().Online(ctxFor(t, 20*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if n > 1 && out[0].g.IsLeader() {
		out[0], out[1] = out[1], out[0]
	}
	return out
}

// joinTally joins a member running sm to the group of key on c's server,
// on a network of its own; both close when the test ends.
func joinTally(t *testing.T, c *cluster, key Key, sm rsm.StateMachine[tallyCmd, struct{}, int64]) (*transport.Network, *Group[tallyCmd, struct{}, int64]) {
	t.Helper()
	net, err := transport.New(context.Background(), transport.WithURL(c.url))
	if err != nil {
		t.Fatal(err)
	}
	g, err := Join(net, key, sm, testConfig())
	if err != nil {
		net.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.Close()
		net.Close()
	})
	return net, g
}

// ExecuteReply returns each command's own answer, in the type the caller
// names, from a follower too; and the index the command applied at.
func TestExecuteReply(t *testing.T) {
	c := newCluster(t)
	nodes := tallies(t, c, 2)
	f, l := nodes[0], nodes[1]
	total, idx, err := ExecuteReply[int64](ctxFor(t, 10*time.Second), f.g, tallyCmd{Add: 5})
	if err != nil || total != 5 {
		t.Fatalf("ExecuteReply(add 5) = %d, %v; want 5", total, err)
	}
	// The follower of two voters commits by itself and returns at its own
	// apply: the leader may apply a moment later.
	if err := l.g.When().Applied(ctxFor(t, 10*time.Second), idx); err != nil {
		t.Fatal(err)
	}
	if got, ok := l.sm.applied(idx); !ok || got.Add != 5 {
		t.Errorf("index %d returned for add 5 holds %+v (%v) on the leader", idx, got, ok)
	}
	old, idx2, err := ExecuteReply[string](ctxFor(t, 10*time.Second), f.g, tallyCmd{Name: "b"})
	if err != nil || old != "" || idx2 <= idx {
		t.Fatalf("ExecuteReply(rename b) = %q at %d, %v; want \"\" after %d", old, idx2, err, idx)
	}
	old, _, err = ExecuteReply[string](ctxFor(t, 10*time.Second), l.g, tallyCmd{Name: "c"})
	if err != nil || old != "b" {
		t.Fatalf("ExecuteReply(rename c) = %q, %v; want \"b\"", old, err)
	}
	// An answer of another type: the command applied, at the index returned.
	s, idx3, err := ExecuteReply[string](ctxFor(t, 10*time.Second), f.g, tallyCmd{Add: 1})
	if !errors.Is(err, ErrReplyType) || s != "" || idx3 == 0 {
		t.Fatalf("ExecuteReply[string](add 1) = %q at %d, %v; want ErrReplyType with the index", s, idx3, err)
	}
	if err := l.g.When().Applied(ctxFor(t, 10*time.Second), idx3); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.sm.applied(idx3); got.Add != 1 {
		t.Errorf("the add whose answer did not decode is not at its index: %+v", got)
	}
}

// ExecuteReply on a machine without rsm.Replier fails before sending.
func TestExecuteReplyNotReplier(t *testing.T) {
	c := newCluster(t)
	a := c.add(nil)
	c.leader(a)
	before := a.g.Applied()
	_, _, err := ExecuteReply[int64](ctxFor(t, 10*time.Second), a.g, counterCmd{Add: 1})
	if err == nil || !strings.Contains(err.Error(), "does not implement rsm.Replier") {
		t.Fatalf("ExecuteReply on a counter = %v", err)
	}
	if a.g.Applied() != before || len(a.sm.history()) != 0 {
		t.Error("ExecuteReply on a machine without Replier applied the command")
	}
}

// ExecuteApplied answers every command of a batch, in order, at
// consecutive indexes, and the member's own reads see them at once.
func TestExecuteAppliedReplies(t *testing.T) {
	c := newCluster(t)
	nodes := tallies(t, c, 2)
	f := nodes[0]
	rs, err := ExecuteApplied[int64](ctxFor(t, 10*time.Second), f.g, []tallyCmd{{Add: 1}, {Add: 2}, {Add: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 {
		t.Fatalf("%d replies for 3 commands", len(rs))
	}
	for i, want := range []int64{1, 3, 6} {
		if rs[i].Value != want || (i > 0 && rs[i].Index != rs[i-1].Index+1) {
			t.Errorf("reply %d = %+v, want total %d at the index after the one before", i, rs[i], want)
		}
		if got, ok := f.sm.applied(rs[i].Index); !ok || got.Add != int64(i+1) {
			t.Errorf("reply %d: the follower holds %+v at index %d", i, got, rs[i].Index)
		}
	}
	q, err := f.g.Query(context.Background(), struct{}{}, Weak)
	if err != nil || q.Value != 6 || q.Position < rs[2].Index {
		t.Errorf("the follower's weak read after ExecuteApplied = %+v, %v; want 6 at %d or later", q, err, rs[2].Index)
	}
	// A machine without Replier: indexes only.
	a := c.add(nil)
	c.leader(a)
	crs, err := ExecuteApplied[int64](ctxFor(t, 10*time.Second), a.g, []counterCmd{{Add: 4}, {Add: 5}})
	if err != nil || len(crs) != 2 || crs[0].Value != 0 || crs[1].Index != crs[0].Index+1 || crs[0].Index == 0 {
		t.Fatalf("ExecuteApplied on a counter = %+v, %v", crs, err)
	}
	if h := a.sm.history(); len(h) != 2 || h[0] != 4 || h[1] != 5 {
		t.Errorf("the counter applied %v, want [4 5]", h)
	}
}

// Execute, ExecuteMany and Feed return the indexes their commands applied
// at; Feed's command applies though Feed does not wait for it.
func TestSubmitIndexes(t *testing.T) {
	c := newCluster(t)
	nodes := tallies(t, c, 2)
	f, l := nodes[0], nodes[1]
	ctx := ctxFor(t, 10*time.Second)
	idx, err := f.g.Execute(ctx, tallyCmd{Add: 10})
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.g.ExecuteMany(ctx, []tallyCmd{{Add: 11}, {Add: 12}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != 2 || r.First <= idx {
		t.Fatalf("ExecuteMany = %+v after Execute at %d", r, idx)
	}
	fed, err := f.g.Feed(ctx, tallyCmd{Add: 13})
	if err != nil {
		t.Fatal(err)
	}
	if fed <= r.Last {
		t.Fatalf("Feed = %d after ExecuteMany's %+v", fed, r)
	}
	if err := l.g.When().Applied(ctx, fed); err != nil {
		t.Fatal(err)
	}
	for i, want := range map[rsm.Index]int64{idx: 10, r.First: 11, r.Last: 12, fed: 13} {
		if got, ok := l.sm.applied(i); !ok || got.Add != want {
			t.Errorf("index %d holds %+v (%v), want add %d", i, got, ok, want)
		}
	}
}

// badReplier's ApplyReply returns its own type: not an rsm.Replier.
type badReplier struct{ counter }

func (*badReplier) ApplyReply(counterCmd, rsm.ApplyContext) int64 { return 0 }

// Join refuses a machine whose ApplyReply is not rsm.Replier's: its
// answers would be lost.
func TestJoinRefusesMistypedReplier(t *testing.T) {
	c := newCluster(t)
	_, err := Join(c.first, NewKey(), &badReplier{}, testConfig())
	if err == nil || !strings.Contains(err.Error(), "ApplyReply") {
		t.Fatalf("Join with ApplyReply returning int64 = %v, want a refusal", err)
	}
}
