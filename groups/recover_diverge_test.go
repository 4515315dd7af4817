package groups

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// TestRecoverSurvivorAheadDiverges: of three members, the survivor that
// recovers (s1) missed a write the others committed; the other survivor
// (s2), which applied it, was cut off meanwhile and comes back after the
// recovery. Raft would replace s2's entries beyond the recovered log while
// its machine keeps what it applied: the replicas would disagree for good
// (found in review). s2 must instead refuse to follow, say so, and never
// apply the recovered group's later writes over its own state; restarted
// empty, it holds what s1 holds.
func TestRecoverSurvivorAheadDiverges(t *testing.T) {
	c := newCluster(t)
	nodes := []*node{c.add(nil), c.add(nil), c.add(nil)}
	patient(t, c, 3, nodes...)
	l := c.leader()
	if _, err := l.g.Execute(ctxT(t, 10*time.Second), counterCmd{Add: 1}); err != nil {
		t.Fatal(err)
	}
	var s1, s2, dead *node
	for _, nd := range nodes {
		switch {
		case nd != l && s1 == nil:
			s1 = nd
		case nd != l && s2 == nil:
			s2 = nd
		default:
			dead = nd
		}
	}
	waitFor(t, 30*time.Second, "s1 to apply", func() bool { return s1.sm.Query(struct{}{}) == 1 })

	// s1 misses a write that the others commit and apply.
	s1.faults.Isolate()
	if _, err := l.g.Execute(ctxT(t, 20*time.Second), counterCmd{Add: 10}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "s2 to apply", func() bool { return s2.sm.Query(struct{}{}) == 11 })

	// The leader dies, s2 is cut off; s1 is back, alone, and recovers.
	s2.faults.Isolate()
	dead.net.Close()
	dead.g.Close()
	dead.g = nil
	c.nodes = []*node{s1, s2}
	s1.faults.Heal()
	waitFor(t, 45*time.Second, "Recover to be allowed on s1", func() bool {
		_, err := s1.g.Recover(ctxT(t, 20*time.Second))
		if errors.Is(err, ErrQuorumReachable) {
			return false
		}
		if err != nil {
			t.Fatalf("Recover: %v", err)
		}
		return true
	})
	if _, err := s1.g.Execute(ctxT(t, 20*time.Second), counterCmd{Add: 100}); err != nil {
		t.Fatal(err)
	}

	// s2 comes back and joins the recovered group: it applies the next
	// write, so it follows s1's log.
	s2.faults.Heal()
	waitFor(t, 60*time.Second, "s2 to follow s1", func() bool {
		leader, ok := s2.g.Leader()
		return ok && leader == s1.net.ID()
	})
	if _, err := s1.g.Execute(ctxT(t, 20*time.Second), counterCmd{Add: 1000}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "s2 to report the divergence", func() bool { return s2.g.Status().Diverged != 0 })
	if h := s2.sm.history(); slices.Contains(h, 1000) || slices.Contains(h, 100) {
		t.Fatalf("s2 applied the recovered group's writes over its own state: history %v, s1's %v", h, s1.sm.history())
	}
	for _, m := range s1.g.Members() {
		if m.Peer == s2.net.ID() && m.Voter {
			t.Fatal("the diverged member was promoted to voter")
		}
	}

	// Restarted empty, it catches up with s1.
	s2.g.Close()
	s2.net.Close()
	s2.g = nil
	fresh := c.add(nil)
	want := s1.sm.Query(struct{}{})
	waitFor(t, 60*time.Second, "a fresh member to hold what s1 holds", func() bool { return fresh.sm.Query(struct{}{}) == want })
}
