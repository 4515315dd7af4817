package groups

import (
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/transport"
)

// fakePeers returns six distinct peer ids, for rules that only compare them.
func fakePeers() [6]transport.PeerID {
	var ids [6]transport.PeerID
	for i := range ids {
		ids[i][0] = byte(i + 1)
	}
	return ids
}

// TestQuickReadRule: a read index skips the heartbeat round only when the
// leader and the asker hold every majority of the recorded voters, the
// asker was in the leader's term, and no configuration change started since
// the voters were recorded.
func TestQuickReadRule(t *testing.T) {
	ids := fakePeers()
	self, asker := ids[0], ids[1]
	c := &core{self: self}
	lead := func(voters ...transport.PeerID) *leadership {
		l := &leadership{term: 7}
		l.quorum.Store(&readQuorum{voters: voters})
		return l
	}
	cases := []struct {
		name  string
		l     *leadership
		asker transport.PeerID
		term  uint64
		want  bool
	}{
		{"one voter, its own read", lead(self), self, 7, true},
		{"two voters", lead(self, asker), asker, 7, true},
		{"two voters, its own read", lead(self, asker), self, 7, true},
		{"three voters", lead(self, asker, ids[2]), asker, 7, true},
		{"three voters, its own read", lead(self, asker, ids[2]), self, 7, false},
		{"four voters", lead(self, asker, ids[2], ids[3]), asker, 7, true},
		{"five voters", lead(self, asker, ids[2], ids[3], ids[4]), asker, 7, false},
		{"asker not a voter", lead(self, ids[2], ids[3]), asker, 7, false},
		{"asker in an older term", lead(self, asker, ids[2]), asker, 6, false},
		{"asker in a newer term", lead(self, asker, ids[2]), asker, 8, false},
		{"asker's term unknown", lead(self, asker, ids[2]), asker, 0, false},
		{"voters unknown", &leadership{term: 7}, asker, 7, false},
	}
	for _, tc := range cases {
		if got := c.quickRead(tc.l, tc.asker, tc.term); got != tc.want {
			t.Errorf("%s: quickRead = %v, want %v", tc.name, got, tc.want)
		}
	}
	l := lead(self, asker, ids[2])
	c.cfgStarted.Add(1) // a change started after the voters were recorded
	if c.quickRead(l, asker, 7) {
		t.Error("quick read with a configuration change started since the voters were recorded")
	}
}

// TestQuickReadFollowsConfiguration: a follower's Sync skips the leader's
// heartbeat round with three and with four voters (after the changes that
// added the fourth committed), not with five, and sees every acknowledged
// write either way.
func TestQuickReadFollowsConfiguration(t *testing.T) {
	c := newCluster(t)
	for range 3 {
		c.add(nil)
	}
	online(t, c.nodes...)
	check := func(voters int, wantQuick bool) {
		t.Helper()
		c.waitVoters(20*time.Second, voters)
		l := c.leader()
		for _, nd := range c.nodes {
			if nd == l {
				continue
			}
			before := l.g.quickReads.Load()
			at, err := nd.g.Execute(ctxT(t, 10*time.Second), counterCmd{Add: 1})
			if err != nil {
				t.Fatal(err)
			}
			idx, err := nd.g.Sync(ctxT(t, 10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if idx < at {
				t.Fatalf("%d voters: Sync returned %d, before the acknowledged write at %d", voters, idx, at)
			}
			// Another member's Sync sees the write too.
			for _, o := range c.nodes {
				if idx, err := o.g.Sync(ctxT(t, 10*time.Second)); err != nil || idx < at {
					t.Fatalf("%d voters: Sync on another member: %d, %v; want at least %d", voters, idx, err, at)
				}
			}
			if quick := l.g.quickReads.Load() > before; quick != wantQuick {
				t.Fatalf("%d voters: the follower's read index was quick: %v, want %v", voters, quick, wantQuick)
			}
		}
	}
	check(3, true)
	c.add(nil)
	check(4, true)
	c.add(nil)
	check(5, false)
}
