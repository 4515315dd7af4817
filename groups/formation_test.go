package groups

import (
	"testing"
	"time"
)

// TestFormationWithShortBootstrapDelay starts members together with a
// bootstrap delay shorter than the announcement interval, over and over:
// they must always end in one group.
func TestFormationWithShortBootstrapDelay(t *testing.T) {
	for round := range 5 {
		start := time.Now()
		c := newCluster(t)
		// Announcements every 200ms, a bootstrap delay far shorter.
		cfg := &Config{HeartbeatInterval: 40 * time.Millisecond, ElectionTimeout: 400 * time.Millisecond, BootstrapDelay: 20 * time.Millisecond}
		nodes := []*node{c.add(cfg), c.add(cfg), c.add(cfg)}
		deadline := time.Now().Add(15 * time.Second)
		for _, nd := range nodes {
			ctx := ctxT(t, time.Until(deadline))
			if err := nd.g.When().Online(ctx); err != nil {
				for _, x := range nodes {
					l, _ := x.g.Leader()
					t.Logf("%s: leader %s members %d hasState %v split %v raft %v", x.net.ID().Short(), l.Short(), len(x.g.Members()), x.g.hasState.Load(), x.g.split.Short(), x.g.raft.Load().State())
				}
				t.Fatalf("round %d: %s not online: %v", round, nd.net.ID().Short(), err)
			}
		}
		t.Logf("round %d online after %v", round, time.Since(start))
		for _, nd := range nodes {
			nd.close()
		}
		c.nodes = nil
	}
}
