package groups

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

func withPref(p Preference) *Config {
	cfg := testConfig()
	cfg.Preference = p
	return cfg
}

func voters(ms []Member) (v, nv int) {
	for _, m := range ms {
		if m.Voter {
			v++
		} else {
			nv++
		}
	}
	return
}

func TestObserversNeverLead(t *testing.T) {
	c := newCluster(t)
	n1, n2 := c.add(nil), c.add(nil)
	obs := []*node{c.add(withPref(Observer)), c.add(withPref(Observer)), c.add(withPref(Observer))}
	all := append([]*node{n1, n2}, obs...)
	online(t, all...)
	waitFor(t, 10*time.Second, "2 voters and 3 non-voters", func() bool {
		l := c.agreed()
		if l == nil {
			return false
		}
		v, nv := voters(l.g.Members())
		return v == 2 && nv == 3
	})
	for _, m := range c.leader().g.Members() {
		isObs := slices.ContainsFunc(obs, func(o *node) bool { return o.net.ID() == m.Peer })
		if isObs && (m.Voter || !m.Preference.IsObserver()) {
			t.Fatalf("observer %s shows as voter=%v preference=%v", m.Peer.Short(), m.Voter, m.Preference)
		}
	}
	for round := range 5 {
		l := c.leader(all...)
		if l != n1 && l != n2 {
			t.Fatalf("round %d: observer %s leads", round, l.net.ID().Short())
		}
		if err := l.g.raft.Load().LeadershipTransfer().Error(); err != nil {
			t.Fatalf("round %d: transfer: %v", round, err)
		}
		waitFor(t, 10*time.Second, "a new leader", func() bool {
			nl := c.agreed(all...)
			return nl != nil && nl != l
		})
		if _, err := obs[round%3].g.Execute(ctxT(t, 5*time.Second), counterCmd{Add: 1}); err != nil {
			t.Fatalf("round %d: write through an observer: %v", round, err)
		}
	}
	n1.close()
	n2.close()
	n1.g, n2.g = nil, nil
	for _, o := range obs {
		if err := o.g.When().Offline(ctxT(t, 5*time.Second)); err != nil {
			t.Fatalf("observer still sees a leader: %v", err)
		}
	}
	_, err := obs[0].g.Execute(ctxT(t, 10*time.Second), counterCmd{Add: 1})
	if !errors.Is(err, ErrOffline) {
		t.Fatalf("write with only observers alive = %v, want ErrOffline", err)
	}
	for _, o := range obs {
		if o.g.IsLeader() || o.g.raft.Load().State().String() == "Leader" {
			t.Fatal("an observer leads")
		}
	}
}

func TestReluctantLosesToNormal(t *testing.T) {
	c := newCluster(t)
	normal := c.add(nil)
	r1, r2 := c.add(withPref(Reluctant(5))), c.add(withPref(Reluctant(5)))
	all := []*node{normal, r1, r2}
	online(t, all...)
	waitFor(t, 20*time.Second, "the normal node to lead", func() bool { return c.agreed() == normal })
	for round := range 5 {
		before := normal.g.raft.Load().CurrentTerm()
		// A transfer that succeeds has handed leadership to another node
		// in a later term. The reluctant leader may hand it back before a
		// poll could see it gone, so the test counts terms instead: the
		// normal node leads again, at least two terms on.
		if err := normal.g.raft.Load().LeadershipTransfer().Error(); err != nil {
			t.Fatalf("round %d: transfer: %v", round, err)
		}
		waitFor(t, 20*time.Second, "the normal node to lead again", func() bool {
			return c.agreed() == normal && normal.g.raft.Load().CurrentTerm() >= before+2
		})
	}
	// An election after the leader disappears: the normal node wins it.
	normal.faults.Isolate()
	waitFor(t, 20*time.Second, "a reluctant leader", func() bool {
		l := c.agreed(r1, r2)
		return l == r1 || l == r2
	})
	normal.faults.Heal()
	waitFor(t, 20*time.Second, "the normal node to lead again", func() bool { return c.agreed() == normal })
}

func TestPartitionMinorityCannotCommit(t *testing.T) {
	c := newCluster(t)
	nodes := []*node{c.add(nil), c.add(nil), c.add(nil), c.add(nil), c.add(nil)}
	online(t, nodes...)
	// Online does not wait for promotion: with only three voters, two of
	// the five would be a majority of the voters.
	// A write committed by a leader that holds the five-voter configuration
	// commits that configuration too. Members reports the latest one, which
	// a leader elected since may not hold.
	var l *node
	waitFor(t, 20*time.Second, "a write committed under five voters", func() bool {
		l = c.leader()
		if v, _ := voters(l.g.Members()); v != 5 {
			return false
		}
		_, err := l.g.Execute(ctxT(t, 5*time.Second), counterCmd{})
		v, _ := voters(l.g.Members())
		return err == nil && v == 5 && l.g.IsLeader()
	})
	// Put the leader in the minority, so the majority must elect anew.
	minority := []*node{l}
	var majority []*node
	for _, nd := range nodes {
		if nd != l && len(minority) < 2 {
			minority = append(minority, nd)
		} else if nd != l {
			majority = append(majority, nd)
		}
	}
	if _, err := l.g.Execute(ctxT(t, 5*time.Second), counterCmd{Add: 1}); err != nil {
		t.Fatal(err)
	}
	base := converge(t, nodes...)
	ids := func(ns []*node) (out []transport.PeerID) {
		for _, nd := range ns {
			out = append(out, nd.net.ID())
		}
		return
	}
	for _, nd := range minority {
		nd.faults.Partition(ids(majority)...)
	}
	for _, nd := range majority {
		nd.faults.Partition(ids(minority)...)
	}

	// The minority cannot commit.
	_, err := minority[1].g.Execute(ctxT(t, time.Second), counterCmd{Add: 100})
	if err == nil {
		t.Fatal("minority committed a command")
	}
	// The majority elects a leader and keeps committing.
	ml := c.leader(majority...)
	for i := range 20 {
		if _, err := majority[i%3].g.Execute(ctxT(t, 5*time.Second), counterCmd{Add: 1}); err != nil {
			t.Fatalf("majority write %d: %v", i, err)
		}
	}
	// Each write applied where it was issued; the leader may have changed
	// meanwhile, so ml catches up on its own time.
	waitFor(t, 10*time.Second, "the majority's writes on its first leader", func() bool {
		return ml.g.Applied() >= base+20
	})
	for _, nd := range minority {
		if nd.g.Applied() != base {
			t.Fatalf("minority node %s applied up to %d during the partition (base %d)", nd.net.ID().Short(), nd.g.Applied(), base)
		}
	}
	for _, nd := range nodes {
		nd.faults.Heal()
	}
	converge(t, nodes...)
	h := sameHistory(t, nodes...)
	sum := int64(0)
	for _, v := range h {
		sum += v
	}
	// The minority's command either failed outright or applied once.
	if sum != 21 && sum != 121 {
		t.Fatalf("sum %d, want 21 or 121", sum)
	}
}

func TestDeadMembersRemovedAndReplaced(t *testing.T) {
	c := newCluster(t)
	nodes := []*node{c.add(nil), c.add(nil), c.add(nil), c.add(nil), c.add(nil)}
	online(t, nodes...)
	c.waitVoters(10*time.Second, 5)
	l := c.leader()
	var dead, live []*node
	for _, nd := range nodes {
		if nd != l && len(dead) < 2 {
			dead = append(dead, nd)
		} else {
			live = append(live, nd)
		}
	}
	for _, nd := range dead {
		nd.faults.Isolate()
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	w := &writer{nd: live[1], base: 1_000_000}
	wg.Add(1)
	go w.run(ctx, &wg)
	waitFor(t, 15*time.Second, "the group to shrink to 3 voters", func() bool {
		l := c.agreed(live...)
		if l == nil {
			return false
		}
		v, nv := voters(l.g.Members())
		return v == 3 && nv == 0
	})
	for _, nd := range dead {
		nd.close()
		nd.g = nil
	}
	c.nodes = slices.DeleteFunc(c.nodes, func(nd *node) bool { return nd.g == nil })
	fresh := []*node{c.add(nil), c.add(nil)}
	online(t, fresh...)
	waitFor(t, 15*time.Second, "the group back at 5 voters", func() bool {
		l := c.agreed()
		if l == nil {
			return false
		}
		v, _ := voters(l.g.Members())
		return v == 5
	})
	stop()
	wg.Wait()
	all := append(live, fresh...)
	converge(t, all...)
	checkExactlyOnce(t, sameHistory(t, all...), w)
}

// anyMachine accepts any command, to feed the group what cannot be encoded.
type anyMachine struct{}

func (anyMachine) Signature() string           { return "test.any.v1" }
func (anyMachine) Apply(any, rsm.ApplyContext) {}
func (anyMachine) Query(struct{}) struct{}     { return struct{}{} }

func TestBadInput(t *testing.T) {
	c := newCluster(t)
	nd := c.add(nil)
	online(t, nd)
	g, err := Join(nd.net, NewKey(), anyMachine{}, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := g.Execute(ctxT(t, time.Second), make(chan int)); err == nil {
		t.Fatal("a command that cannot be encoded was accepted")
	}
	if _, err := nd.g.Execute(ctxT(t, time.Second), counterCmd{}); err != nil {
		t.Fatal(err)
	}
	big := make([]counterCmd, MaxBatchCommands+1)
	if _, err := nd.g.ExecuteMany(ctxT(t, time.Second), big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized batch = %v, want ErrTooLarge", err)
	}

	// Garbage on every subject of the group: dropped or answered with an
	// error, never a panic, and the group keeps working.
	raw, err := nats.Connect(c.url)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	id := nd.g.ID().String()
	self := nd.net.ID().String()
	subjects := []string{
		"mosaik.ann." + id,
		"mosaik.ctl." + id + "." + self,
		"mosaik.raft." + id + "." + self,
		"mosaik.hb." + id + "." + self,
	}
	var frames [][]byte
	frames = append(frames, nil, []byte{1}, make([]byte, 41))
	for _, body := range [][]byte{{}, {0xff}, {ctlForward, 0x83, 0x01}, {ctlReadIndex}, {ctlForward}, {1, 0x9f}, {5, 0x82, 1, 0xf6}} {
		f := make([]byte, 42, 42+len(body))
		f[0] = 1
		frames = append(frames, append(f, body...))
	}
	for _, s := range subjects {
		for _, f := range frames {
			if _, err := raw.Request(s, f, 50*time.Millisecond); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, nats.ErrNoResponders) {
				t.Fatalf("raw request: %v", err)
			}
			if err := raw.Publish(s, f); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := raw.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := nd.g.Execute(ctxT(t, 5*time.Second), counterCmd{Add: 7}); err != nil {
		t.Fatalf("group broken by garbage: %v", err)
	}
	if nd.net.Stats().Malformed == 0 {
		t.Fatal("malformed frames were not counted")
	}
}

func TestSplitFoundingIsDetected(t *testing.T) {
	c := newCluster(t)
	// Cut a and b apart before either starts, so neither ever hears the
	// other: each founds its own cluster of the same group.
	pa, pb := transport.NewIdentity(), transport.NewIdentity()
	start := func(self, other *transport.Identity) *node {
		f := transport.NewFaults()
		f.Partition(other.PeerID())
		nd, err := c.joinWith(nil, f, transport.WithIdentity(self))
		if err != nil {
			t.Fatal(err)
		}
		return nd
	}
	a, b := start(pa, pb), start(pb, pa)
	online(t, a, b)
	if la, _ := a.g.Leader(); la != a.net.ID() {
		t.Fatalf("a follows %s", la.Short())
	}
	if lb, _ := b.g.Leader(); lb != b.net.ID() {
		t.Fatalf("b follows %s", lb.Short())
	}
	if _, err := a.g.Execute(ctxT(t, 5*time.Second), counterCmd{Add: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.g.Execute(ctxT(t, 5*time.Second), counterCmd{Add: 2}); err != nil {
		t.Fatal(err)
	}
	a.faults.Heal()
	b.faults.Heal()
	waitFor(t, 10*time.Second, "both sides to report the split", func() bool {
		oa, okA := a.g.Split()
		ob, okB := b.g.Split()
		return okA && okB && oa == b.net.ID() && ob == a.net.ID()
	})
	// Neither leader takes in the other's member.
	for _, nd := range []*node{a, b} {
		if n := len(nd.g.Members()); n != 1 {
			t.Fatalf("%s has %d members, want 1", nd.net.ID().Short(), n)
		}
	}
	// Nothing acknowledged was thrown away.
	for nd, want := range map[*node]int64{a: 1, b: 2} {
		r, err := nd.g.Query(ctxT(t, 5*time.Second), struct{}{}, Strong)
		if err != nil || r.Value != want {
			t.Fatalf("after the split: %d, %v; want %d", r.Value, err, want)
		}
	}
}

// waitVoters waits until the members agree on a leader whose configuration
// has n voters.
func (c *cluster) waitVoters(d time.Duration, n int) {
	c.t.Helper()
	waitFor(c.t, d, fmt.Sprintf("%d voters", n), func() bool {
		l := c.agreed()
		if l == nil {
			return false
		}
		v, _ := voters(l.g.Members())
		return v == n
	})
}
