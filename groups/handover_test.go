package groups

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// Close on a leader hands leadership to another voter before it leaves, so
// a planned shutdown costs no election timeout: when Close returns, another
// member already leads. (It used to remove itself first; the others went on
// naming it leader until their election timeout fired.)
func TestCloseHandsOverLeadership(t *testing.T) {
	c := newCluster(t)
	cfg := testConfig()
	cfg.HeartbeatInterval, cfg.ElectionTimeout = 100*time.Millisecond, 2*time.Second
	nodes := []*node{c.add(cfg), c.add(cfg), c.add(cfg)}
	online(t, nodes...)
	c.waitVoters(20*time.Second, 3)
	old := c.leader(nodes...)
	old.g.Close()
	// Right now, not after a wait: the handover is part of Close.
	var leaders int
	for _, nd := range nodes {
		if nd != old && nd.g.core.raft.Load().State() == raft.Leader {
			leaders++
		}
	}
	if leaders != 1 {
		t.Fatalf("when the leader's Close returned, %d other members led; want 1 (no election timeout)", leaders)
	}
	for _, nd := range nodes {
		if nd != old {
			if l, _ := nd.g.Leader(); l == old.net.ID() {
				t.Fatalf("%s still names the closed member as leader", nd.net.ID().Short())
			}
		}
	}
}
