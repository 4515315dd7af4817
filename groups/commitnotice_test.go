package groups

import (
	"testing"
	"time"
)

// ExecuteApplied on a follower returns once the follower itself has applied
// the commands, and the leader appends nothing but the commands for it: the
// follower learns of the commit from a notice, not from a barrier entry.
func TestExecuteAppliedOnFollower(t *testing.T) {
	c := newCluster(t)
	a, b, d := c.add(nil), c.add(nil), c.add(nil)
	leader := c.leader(a, b, d)
	waitFor(t, 20*time.Second, "three voters", func() bool { v, _ := voters(leader.g.Members()); return v == 3 })
	follower := a
	if follower == leader {
		follower = b
	}
	before := leader.g.raft.Load().LastIndex()
	for i := range 20 {
		rs, err := ExecuteApplied[int64](ctxFor(t, 10*time.Second), follower.g, []counterCmd{{Add: 1}, {Add: 2}})
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 2 || rs[1].Index != rs[0].Index+1 {
			t.Fatalf("replies %+v", rs)
		}
		if got := follower.g.Applied(); got < rs[1].Index {
			t.Fatalf("round %d: ExecuteApplied returned at %d before the follower applied it (%d)", i, rs[1].Index, got)
		}
	}
	// Each call is one batch, one entry.
	if got := leader.g.raft.Load().LastIndex() - before; got != 20 {
		t.Errorf("20 ExecuteApplied calls from a follower made the leader append %d entries, want 20", got)
	}
}
