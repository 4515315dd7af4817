package groups

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// inConfig reports whether p is in nd's view of the configuration.
func inConfig(nd *node, p *node) bool {
	for _, m := range nd.g.Members() {
		if m.Peer == p.net.ID() {
			return true
		}
	}
	return false
}

// slowRounds is testConfig with membership rounds 2 s apart.
func slowRounds() *Config {
	c := testConfig()
	c.HeartbeatInterval = 400 * time.Millisecond
	c.ElectionTimeout = time.Second
	c.DeadMemberTimeout = 10 * time.Second
	return c
}

// slowLeader founds a group of one member with slowRounds and returns it
// with the interval of its rounds.
func slowLeader(t *testing.T) (*cluster, *node, time.Duration) {
	if testing.Short() {
		t.Skip("waits for a slow founding")
	}
	c := newCluster(t)
	a := c.add(slowRounds())
	c.leader(a)
	return c, a, slowRounds().announceInterval()
}

// A newcomer is added as soon as the leader hears it announce, not at the
// leader's next periodic membership round. Rounds here are 2 s apart; the
// second of two newcomers joins right after the round that added the
// first (under the old behaviour every addition happened at a round), so
// waiting for a round would take it about 2 s.
func TestNewcomerAddedAtOnce(t *testing.T) {
	c, a, round := slowLeader(t)
	b := c.add(slowRounds())
	waitFor(t, 4*round, "the first newcomer added", func() bool { return inConfig(a, b) })
	start := time.Now()
	d := c.add(slowRounds())
	waitFor(t, 4*round, "the second newcomer added", func() bool { return inConfig(a, d) })
	took := time.Since(start)
	t.Logf("the second newcomer was added %v after it joined (rounds every %v)", took, round)
	if took > round/2 {
		t.Fatalf("the second newcomer was added %v after it joined: the leader waited for its periodic round (every %v)", took, round)
	}
}

// A flood of newcomers (new identities cost nothing in a group without a
// secret or tickets) wakes the leader's membership loop at most
// maxReactPasses times within a round's length from the first wake-up, so
// within less than a round it adds at most maxReactPasses+1 of them (one
// at a round), however many announce, even when a round falls amid the
// woken passes.
func TestNewcomerFloodBounded(t *testing.T) {
	_, a, round := slowLeader(t)
	data, err := rsm.Marshal(announcement{Pref: uint8(prefObserver)})
	if err != nil {
		t.Fatal(err)
	}
	before := len(a.g.Members())
	for range 200 {
		var p transport.PeerID
		if _, err := rand.Read(p[:]); err != nil {
			t.Fatal(err)
		}
		a.g.onAnnouncement(&transport.Msg{From: p, Data: data})
	}
	// The bound is on what happens within a window, so the test watches one
	// (shorter than a round, so at most one round falls in it).
	time.Sleep(round * 3 / 4)
	added := len(a.g.Members()) - before
	t.Logf("%d of 200 newcomers added within %v (rounds every %v)", added, round*3/4, round)
	// 8: however maxReactPasses is tuned, a flood stays far below the one
	// pass per reactInterval (15 within the window) it could otherwise get.
	if added > min(maxReactPasses+1, 8) {
		t.Fatalf("%d newcomers added within %v: more than %d passes between rounds", added, round*3/4, maxReactPasses+1)
	}
	if added == 0 {
		t.Fatal("no newcomer added: the leader did not react")
	}
}

// A member not yet in any configuration takes Raft's messages from a sender
// it heard announce itself, or from one that another live member announces
// as its leader: a leader's first AppendEntries to a newcomer it just added
// often overtakes its own announcement, and refused, Raft retries only
// 60-110 ms later. A stale announcement, or one naming another leader,
// does not do.
func TestNewcomerTakesAnnouncedLeader(t *testing.T) {
	c := newCluster(t)
	cfg := testConfig()
	cfg.BootstrapDelay = time.Hour // never founds: its configuration stays empty
	n := c.add(cfg)
	leader, other, stranger := transport.PeerID{1}, transport.PeerID{2}, transport.PeerID{3}
	set := func(p, named transport.PeerID, heard time.Time) { setPeer(n, p, named, heard, time.Time{}) }
	stale := time.Now().Add(-time.Hour)
	for _, tc := range []struct {
		name  string
		setup func()
		allow bool
	}{
		{"nobody heard", func() {}, false},
		{"the sender announced itself", func() { set(leader, leader, time.Now()) }, true},
		{"another member names the sender leader", func() { set(other, leader, time.Now()) }, true},
		{"another member names someone else", func() { set(other, stranger, time.Now()) }, false},
		{"the member naming the sender is stale", func() { set(other, leader, stale) }, false},
		{"the sender's own announcement is stale", func() { set(leader, leader, stale) }, false},
	} {
		forgetPeers(n)
		tc.setup()
		if got := n.g.allowRaft(leader); got != tc.allow {
			t.Errorf("%s: allowRaft = %v, want %v", tc.name, got, tc.allow)
		}
	}
}

// In a group with Tickets, a member not yet in any configuration takes
// Raft's messages only from a sender whose own ticket it saw hold: another
// member naming as leader a sender it never admitted, or one whose ticket
// expired, does not do.
func TestNewcomerTakesAnnouncedLeaderTickets(t *testing.T) {
	pub, _ := issuer(t)
	c := newCluster(t)
	cfg := testConfig()
	cfg.BootstrapDelay = time.Hour // never founds: its configuration stays empty
	cfg.Tickets = &Tickets{Issuer: pub}
	n := c.add(cfg)
	leader, other := transport.PeerID{1}, transport.PeerID{2}
	now, far, gone := time.Now(), time.Now().Add(time.Hour), time.Now().Add(-time.Second)
	set := func(p, named transport.PeerID, heard, expires time.Time) { setPeer(n, p, named, heard, expires) }
	stale := now.Add(-time.Hour)
	for _, tc := range []struct {
		name  string
		setup func()
		allow bool
	}{
		{"the sender announced itself", func() { set(leader, leader, now, far) }, true},
		{"another member names the sender, whose ticket held when last heard", func() {
			set(leader, leader, stale, far)
			set(other, leader, now, far)
		}, true},
		{"another member names a sender never admitted", func() { set(other, leader, now, far) }, false},
		{"another member names a sender whose ticket expired", func() {
			set(leader, leader, stale, gone)
			set(other, leader, now, far)
		}, false},
		{"the sender announced itself, its ticket expired since", func() { set(leader, leader, now, gone) }, false},
	} {
		forgetPeers(n)
		tc.setup()
		if got := n.g.allowRaft(leader); got != tc.allow {
			t.Errorf("%s: allowRaft = %v, want %v", tc.name, got, tc.allow)
		}
	}
}

// setPeer records in n's peer table that p announced named as leader,
// heard at heard, its ticket holding until expires.
func setPeer(n *node, p, named transport.PeerID, heard, expires time.Time) {
	n.g.peersMu.Lock()
	defer n.g.peersMu.Unlock()
	n.g.peers[p] = &peerState{ann: announcement{Leader: named}, heard: heard, expires: expires}
}

// forgetPeers empties n's peer table.
func forgetPeers(n *node) {
	n.g.peersMu.Lock()
	defer n.g.peersMu.Unlock()
	clear(n.g.peers)
}
