package transport

import (
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// With a commit timeout far longer than the test waits, a follower learns
// of a commit only from the leader's next append, or from a notice: one
// NotifyCommit makes it apply at once, and nothing else is appended.
func TestCommitNotice(t *testing.T) {
	first := newNet(t)
	nets := []*Network{join(t, first), join(t, first), join(t, first)}
	var servers []raft.Server
	for _, n := range nets {
		servers = append(servers, raft.Server{ID: raft.ServerID(n.ID().String()), Address: raft.ServerAddress(n.ID().String())})
	}
	slow := func(c *raft.Config) { c.CommitTimeout = time.Minute }
	var nodes []*raftNode
	for _, n := range nets {
		nodes = append(nodes, startRaftWith(t, n, servers, 2*time.Second, slow))
	}
	leader := leaderOf(t, nodes)
	var follower *raftNode
	for _, n := range nodes {
		if n != leader {
			follower = n
			break
		}
	}
	fp, err := ParsePeerID(string(follower.id))
	if err != nil {
		t.Fatal(err)
	}
	for i, cmd := range []string{"a", "b", "c"} {
		f := leader.raft.Apply([]byte(cmd), waitTimeout)
		if err := f.Error(); err != nil {
			t.Fatal(err)
		}
		last := leader.raft.LastIndex()
		leader.tr.NotifyCommit(fp, leader.raft.CurrentTerm(), f.Index())
		deadline := time.Now().Add(20 * time.Second) // far below the commit timeout
		for len(follower.fsm.entries()) < i+1 {
			if time.Now().After(deadline) {
				t.Fatalf("command %d: the follower applied %v; the leader committed it", i, follower.fsm.entries())
			}
			time.Sleep(time.Millisecond)
		}
		if got := leader.raft.LastIndex(); got != last {
			t.Fatalf("the notice appended entries: last index %d, was %d", got, last)
		}
	}
	if got := follower.fsm.entries(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("follower applied %v", got)
	}
	if leader.tr.noticesTaken.Load() == 0 {
		t.Fatal("no notice was taken")
	}
}
