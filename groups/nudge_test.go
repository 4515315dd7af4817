package groups

import (
	"testing"
	"time"
)

// ExecuteApplied on a follower returns once the follower itself has applied
// the commands, and the leader appends a barrier only for such callers.
func TestExecuteAppliedOnFollower(t *testing.T) {
	c := newCluster(t)
	a, b, d := c.add(nil), c.add(nil), c.add(nil)
	leader := c.leader(a, b, d)
	follower := a
	if follower == leader {
		follower = b
	}
	// Plain Execute from the follower: no nudges.
	before := leader.g.nudge.applies.Load()
	for i := range 5 {
		if _, err := follower.g.Execute(ctxFor(t, 10*time.Second), counterCmd{Add: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := leader.g.nudge.applies.Load() - before; got != 5 {
		t.Errorf("5 plain commands made the leader append %d entries, want 5 (no barriers)", got)
	}
	before = leader.g.nudge.applies.Load()
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
	// Each call is one batch; anything more the leader appended is a
	// barrier for a waiting follower.
	if got := leader.g.nudge.applies.Load() - before; got <= 20 {
		t.Errorf("20 ExecuteApplied calls from a follower made the leader append %d entries: no barrier", got)
	}
}
