package groups

import (
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/rsm"
)

// slowCounter is a counter whose Apply takes a while, so a restarted
// member needs time to replay its log.
type slowCounter struct{ counter }

func (c *slowCounter) Apply(cmd counterCmd, ctx rsm.ApplyContext) {
	time.Sleep(2 * time.Millisecond)
	c.counter.Apply(cmd, ctx)
}

// TestOnlineMeansCaughtUp restarts a durable follower whose log holds
// hundreds of commands: When().Online resolves only once it has applied
// what the leader had committed when it came back, not as soon as it hears
// a heartbeat (issue 12, item 5: a restarted node showed old state).
func TestOnlineMeansCaughtUp(t *testing.T) {
	c := newCluster(t)
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	var nodes []*dnode[counterCmd, struct{}, int64]
	for _, dir := range dirs {
		nodes = append(nodes, startDurable(t, c, dir, &slowCounter{}, nil))
	}
	onlineAll(t, nodes...)
	leader := leaderOf(t, nodes...)
	const n = 300
	for i := 0; i < n; i += 50 {
		cmds := make([]counterCmd, 50)
		for j := range cmds {
			cmds[j] = counterCmd{Add: 1}
		}
		if _, err := leader.g.ExecuteMany(ctxFor(t, 20*time.Second), cmds); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	before := leader.g.Committed()
	var follower int
	for i, nd := range nodes {
		if nd != leader {
			follower = i
		}
	}
	nodes[follower].stop()
	nodes[follower] = startDurable(t, c, dirs[follower], &slowCounter{}, nil)
	g := nodes[follower].g
	if err := g.When().Online(ctxFor(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := g.Committed(); got < before {
		t.Fatalf("online at applied index %d; the leader had committed %d before the restart", got, before)
	}
	if v := g.fsm.Machine().(*slowCounter).Query(struct{}{}); v != n {
		t.Fatalf("online with value %d, want %d", v, n)
	}
}
