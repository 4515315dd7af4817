package groups

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mosaik-go/mosaik/internal/promtest"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// The network's status survey lists every member's view of its group, and
// answers while the machine is stuck in Apply; the apply lag metric shows
// the entry waiting.
func TestStatusAnswersWhileApplyBlocks(t *testing.T) {
	c := newCluster(t)
	reg := prometheus.NewRegistry()
	c.opts = []transport.Option{transport.WithMetrics(reg)}
	a, b := c.add(nil), c.add(nil)
	c.leader(a, b)
	labelled := testConfig()
	labelled.Labels = map[string]string{"name": "other"}
	other, err := Join(a.net, NewKey(), &counter{}, labelled)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.When().Online(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}

	a.sm.mu.Lock() // a's Apply now blocks
	locked := true
	defer func() {
		if locked {
			a.sm.mu.Unlock()
		}
	}()
	done := make(chan error, 1)
	go func() {
		_, err := b.g.Execute(ctxFor(t, 10*time.Second), counterCmd{Add: 1})
		done <- err
	}()
	waitFor(t, 5*time.Second, "a to have the entry it cannot apply", func() bool {
		return a.g.raft.Load().CommitIndex() > a.g.fsm.AppliedRaft()
	})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	// A member whose answer waited on Apply would be missing below.
	nodes, err := c.first.Survey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]Status{}
	for _, n := range nodes {
		var sts []Status
		if raw, ok := n.Sections[StatusSection]; ok {
			if err := rsm.Unmarshal(raw, &sts); err != nil {
				t.Fatal(err)
			}
		}
		for _, st := range sts {
			found[n.Peer.Short()+"/"+st.ID.Short()] = st
			if st.Self != n.Peer {
				t.Errorf("%s answered for %s", n.Peer.Short(), st.Self.Short())
			}
		}
	}
	sa, ok := found[a.net.ID().Short()+"/"+a.g.ID().Short()]
	if !ok || len(found) != 3 {
		t.Fatalf("survey found %d member views: %v", len(found), found)
	}
	if sa.LogApplied >= sa.LogCommitted || len(sa.Members) != 2 || sa.Term == 0 || sa.Leader.IsZero() {
		t.Errorf("a's status while its Apply blocks: %+v", sa)
	}
	if so := found[a.net.ID().Short()+"/"+other.ID().Short()]; so.Labels["name"] != "other" || so.Role != "leader" {
		t.Errorf("the labelled single-member group: %+v", so)
	}
	ofA := []string{"group", a.g.ID().Short(), "peer", a.net.ID().Short()}
	if lag := promtest.Sum(t, reg, "mosaik_group_apply_lag", ofA...); lag < 1 {
		t.Errorf("a's apply lag while its Apply blocks: %v", lag)
	}

	a.sm.mu.Unlock()
	locked = false
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Each network answers for its own groups only (the network keeps them,
// see transport.Slot), and drops the section when its last group closes.
func TestStatusSectionPerNetwork(t *testing.T) {
	c := newCluster(t)
	a, b := c.add(nil), c.add(nil)
	c.leader(a, b)
	groupsOf := func(n *transport.Network) []Status {
		raw, ok := n.Status().Sections[StatusSection]
		if !ok {
			return nil
		}
		var sts []Status
		if err := rsm.Unmarshal(raw, &sts); err != nil {
			t.Fatal(err)
		}
		return sts
	}
	for _, nd := range []*node{a, b} {
		sts := groupsOf(nd.net)
		if len(sts) != 1 || sts[0].Self != nd.net.ID() {
			t.Fatalf("%s lists %+v, want its own member only", nd.net.ID().Short(), sts)
		}
	}
	if err := a.g.Close(); err != nil {
		t.Fatal(err)
	}
	if sts := groupsOf(a.net); sts != nil {
		t.Errorf("a's network lists %d groups after its only one closed", len(sts))
	}
	if sts := groupsOf(b.net); len(sts) != 1 {
		t.Errorf("b's network lists %d groups after a's closed, want 1", len(sts))
	}
}
