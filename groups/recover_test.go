package groups

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// killTwo stops the networks of a and b at once: their members stop as if
// the processes died, without leaving.
func killTwo(c *cluster, a, b *node) {
	var wg sync.WaitGroup
	for _, nd := range []*node{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nd.net.Close()
		}()
	}
	wg.Wait()
	for _, nd := range []*node{a, b} {
		nd.g.Close()
		nd.g = nil
	}
	keep := c.nodes[:0]
	for _, nd := range c.nodes {
		if nd.g != nil {
			keep = append(keep, nd)
		}
	}
	c.nodes = keep
}

// TestRecoverLostQuorum: three in-memory members, two die at once. The
// survivor cannot write, whatever it waits; Recover reforms the group from
// it, keeps what was written, and a new member joins and becomes a voter.
func TestRecoverLostQuorum(t *testing.T) {
	c := newCluster(t)
	nodes := []*node{c.add(nil), c.add(nil), c.add(nil)}
	online(t, nodes...)
	c.waitVoters(10*time.Second, 3)
	l := c.leader()
	for i := range 5 {
		if _, err := l.g.Execute(ctxT(t, 5*time.Second), counterCmd{Add: int64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	var survivor *node
	var dead []*node
	for _, nd := range nodes {
		if nd != l && survivor == nil {
			survivor = nd
		} else {
			dead = append(dead, nd)
		}
	}
	waitFor(t, 10*time.Second, "the survivor to apply every write", func() bool { return survivor.sm.Query(struct{}{}) == 15 })

	// While all are alive, recovery is refused on any member.
	if _, err := survivor.g.Recover(ctxT(t, 5*time.Second)); !errors.Is(err, ErrQuorumReachable) {
		t.Fatalf("Recover with every member alive: %v, want ErrQuorumReachable", err)
	}

	killTwo(c, dead[0], dead[1])
	// Writes fail; so they do after the dead-member timeout: nobody can
	// remove two voters of three.
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), survivor.g.cfg.DeadMemberTimeout)
		_, err := survivor.g.Execute(ctx, counterCmd{Add: 100})
		cancel()
		if err == nil {
			t.Fatal("a write committed without a majority")
		}
	}

	var rec Recovery
	waitFor(t, 15*time.Second, "Recover to be allowed", func() bool {
		var err error
		rec, err = survivor.g.Recover(ctxT(t, 10*time.Second))
		if errors.Is(err, ErrQuorumReachable) {
			return false
		}
		if err != nil {
			t.Fatalf("Recover: %v", err)
		}
		return true
	})
	if len(rec.Previous) != 3 || len(rec.Reachable) != 1 || rec.Reachable[0] != survivor.net.ID() {
		t.Fatalf("Recovery previous %v reachable %v, want 3 and the survivor alone", rec.Previous, rec.Reachable)
	}
	if rec.LastIndex == 0 || rec.LastIndex < rec.Committed {
		t.Fatalf("Recovery indexes %+v", rec)
	}
	if !survivor.g.IsLeader() {
		t.Fatal("the survivor does not lead after Recover")
	}
	if v, nv := voters(survivor.g.Members()); v != 1 || nv != 0 {
		t.Fatalf("after Recover: %d voters, %d non-voters; want 1, 0", v, nv)
	}
	if _, err := survivor.g.Execute(ctxT(t, 5*time.Second), counterCmd{Add: 1000}); err != nil {
		t.Fatalf("write after Recover: %v", err)
	}
	// The failed writes were never acknowledged and may or may not have
	// applied (they were in the survivor's log): 15 + 1000, plus 0 to 2 × 100.
	got := survivor.sm.Query(struct{}{})
	if got != 1015 && got != 1115 && got != 1215 {
		t.Fatalf("value after Recover %d, want 1015 plus up to two 100s", got)
	}

	fresh := c.add(nil)
	online(t, fresh)
	c.waitVoters(15*time.Second, 2)
	waitFor(t, 10*time.Second, "the new member to catch up", func() bool { return fresh.sm.Query(struct{}{}) == got })
	if _, err := fresh.g.Execute(ctxT(t, 5*time.Second), counterCmd{Add: 1}); err != nil {
		t.Fatalf("write from the new member: %v", err)
	}
	// Now two voters of two are alive: recovery is refused again.
	if _, err := fresh.g.Recover(ctxT(t, 5*time.Second)); !errors.Is(err, ErrQuorumReachable) {
		t.Fatalf("Recover on a healthy group: %v, want ErrQuorumReachable", err)
	}
}

// TestRecoverPrefersLongestLog: of five voters three die; the two
// survivors hear each other, so only one of them may recover: the one
// with the longer log, or with an equal log the lower id.
func TestRecoverPrefersLongestLog(t *testing.T) {
	c := newCluster(t)
	nodes := []*node{c.add(nil), c.add(nil), c.add(nil), c.add(nil), c.add(nil)}
	online(t, nodes...)
	c.waitVoters(15*time.Second, 5)
	l := c.leader()
	if _, err := l.g.Execute(ctxT(t, 5*time.Second), counterCmd{Add: 1}); err != nil {
		t.Fatal(err)
	}
	var live []*node
	for _, nd := range nodes {
		if nd != l && len(live) < 2 {
			live = append(live, nd)
		}
	}
	waitFor(t, 10*time.Second, "the survivors to apply", func() bool {
		return live[0].sm.Query(struct{}{}) == 1 && live[1].sm.Query(struct{}{}) == 1
	})
	var wg sync.WaitGroup
	var dead []*node
	for _, nd := range nodes {
		if nd != live[0] && nd != live[1] {
			dead = append(dead, nd)
			wg.Add(1)
			go func() { defer wg.Done(); nd.net.Close() }()
		}
	}
	wg.Wait()
	for _, nd := range dead {
		nd.g.Close()
		nd.g = nil
	}
	c.nodes = live
	var ok, refused *node
	waitFor(t, 20*time.Second, "one survivor to recover", func() bool {
		for i, nd := range live {
			_, err := nd.g.Recover(ctxT(t, 10*time.Second))
			switch {
			case err == nil:
				ok = nd
				refused = live[1-i]
				return true
			case errors.Is(err, ErrQuorumReachable), errors.Is(err, ErrRecoverElsewhere):
			default:
				t.Fatalf("Recover: %v", err)
			}
		}
		return false
	})
	if ok.g.raft.Load().LastIndex() < refused.g.raft.Load().LastIndex() {
		t.Fatal("the survivor with the shorter log recovered")
	}
	// The other survivor joins the recovered group on its own.
	c.waitVoters(20*time.Second, 2)
	if _, err := refused.g.Execute(ctxT(t, 5*time.Second), counterCmd{Add: 1}); err != nil {
		t.Fatalf("write from the other survivor: %v", err)
	}
}

// TestRemoveMember: only the leader removes; a live member only with force;
// a dead one at once, before the dead-member timeout would.
func TestRemoveMember(t *testing.T) {
	c := newCluster(t)
	cfg := testConfig()
	cfg.DeadMemberTimeout = time.Minute // so only RemoveMember removes
	nodes := []*node{c.add(cfg), c.add(cfg), c.add(cfg)}
	online(t, nodes...)
	c.waitVoters(10*time.Second, 3)
	l := c.leader()
	var others []*node
	for _, nd := range nodes {
		if nd != l {
			others = append(others, nd)
		}
	}
	ctx := ctxT(t, 10*time.Second)
	if err := others[0].g.RemoveMember(ctx, others[1].net.ID(), false); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("RemoveMember on a follower: %v, want ErrNotLeader", err)
	}
	if err := l.g.RemoveMember(ctx, others[1].net.ID(), false); !errors.Is(err, ErrMemberAlive) {
		t.Fatalf("RemoveMember of a live member: %v, want ErrMemberAlive", err)
	}
	if err := l.g.RemoveMember(ctx, c.first.ID(), false); !errors.Is(err, ErrNotMember) {
		t.Fatalf("RemoveMember of a stranger: %v, want ErrNotMember", err)
	}
	gone := others[1]
	gone.net.Close()
	gone.g.Close()
	gone.g = nil
	c.nodes = []*node{l, others[0]}
	if err := l.g.RemoveMember(ctx, gone.net.ID(), true); err != nil {
		t.Fatalf("RemoveMember with force: %v", err)
	}
	if v, _ := voters(l.g.Members()); v != 2 {
		t.Fatalf("%d voters after removing one of 3", v)
	}
}
