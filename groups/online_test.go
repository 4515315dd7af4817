package groups

import (
	"errors"
	"sync"
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
	before := leader.g.Applied()
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
	if got := g.Applied(); got < before {
		t.Fatalf("online at applied index %d; the leader had committed %d before the restart", got, before)
	}
	if v := g.fsm.Machine().(*slowCounter).Query(struct{}{}); v != n {
		t.Fatalf("online with value %d, want %d", v, n)
	}
}

// gatedCounter is a counter whose Apply waits for its gate to open.
type gatedCounter struct {
	counter
	gate chan struct{}
}

func (c *gatedCounter) Apply(cmd counterCmd, ctx rsm.ApplyContext) {
	<-c.gate
	c.counter.Apply(cmd, ctx)
}

// A member that knows its leader but has not applied what the leader had
// committed says so when Online gives up, not "no leader".
func TestOnlineSaysCatchingUp(t *testing.T) {
	c := newCluster(t)
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	open := make(chan struct{})
	close(open)
	var nodes []*dnode[counterCmd, struct{}, int64]
	for _, dir := range dirs {
		nodes = append(nodes, startDurable(t, c, dir, &gatedCounter{gate: open}, nil))
	}
	onlineAll(t, nodes...)
	leader := leaderOf(t, nodes...)
	if _, err := leader.g.ExecuteMany(ctxFor(t, 20*time.Second), []counterCmd{{Add: 1}, {Add: 2}}); err != nil {
		t.Fatal(err)
	}
	follower := nodes[0]
	if follower == leader {
		follower = nodes[1]
	}
	dir := follower.dir
	follower.stop()
	gate := make(chan struct{})
	var release sync.Once
	follower = startDurable(t, c, dir, &gatedCounter{gate: gate}, nil)
	t.Cleanup(func() { release.Do(func() { close(gate) }) }) // runs before the member stops
	waitFor(t, 20*time.Second, "the restarted member to know its leader", func() bool {
		st := follower.g.Status()
		return st.Online
	})
	err := follower.g.When().Online(ctxFor(t, 300*time.Millisecond))
	var no *NotOnlineError
	if !errors.As(err, &no) || no.Reason != ReasonCatchingUp {
		t.Fatalf("Online while applying is held back: %v", err)
	}
	release.Do(func() { close(gate) })
	if err := follower.g.When().Online(ctxFor(t, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
}
