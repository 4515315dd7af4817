package groups

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mosaik-go/mosaik/internal/promtest"
	"github.com/mosaik-go/mosaik/transport"
)

// mnode is a member whose network exports metrics to a shared registry.
type mnode struct {
	net *transport.Network
	g   *Group[ledgerCmd, struct{}, ledgerState]
}

func joinMetered(t *testing.T, c *cluster, reg prometheus.Registerer, cfg *Config) *mnode {
	t.Helper()
	n, err := transport.New(context.Background(), transport.WithURL(c.url), transport.WithMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	g, err := Join(n, c.key, &ledger{}, cfg)
	if err != nil {
		n.Close()
		t.Fatal(err)
	}
	nd := &mnode{net: n, g: g}
	t.Cleanup(nd.close)
	return nd
}

func (nd *mnode) close() {
	nd.g.Close()
	nd.net.Close()
}

// TestMetrics reads a shared registry after an election, writes from a
// follower, a forced election, a snapshot and a snapshot transfer to a new
// member, and checks that the figures moved; and that a member's series go
// when it closes.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := newCluster(t)
	cfg := testConfig()
	cfg.TrailingLogs = 4
	var nodes []*mnode
	for range 3 {
		nodes = append(nodes, joinMetered(t, c, reg, cfg))
	}
	group := nodes[0].g.ID().Short()
	of := func(nd *mnode) []string { return []string{"group", group, "peer", nd.net.ID().Short()} }
	get := func(name string, nd *mnode) float64 {
		t.Helper()
		return promtest.Sum(t, reg, "mosaik_group_"+name, of(nd)...)
	}
	total := func(name string) float64 {
		t.Helper()
		return promtest.Sum(t, reg, "mosaik_group_"+name, "group", group)
	}
	leaderAmong := func(not *mnode) *mnode {
		t.Helper()
		var found *mnode
		waitFor(t, 20*time.Second, "a leader", func() bool {
			for _, nd := range nodes {
				if nd != not && nd.g.IsLeader() {
					found = nd
					return true
				}
			}
			return false
		})
		return found
	}

	leader := leaderAmong(nil)
	waitFor(t, 20*time.Second, "three voters", func() bool { return get("voters", leader) == 3 })
	for _, nd := range nodes {
		if err := nd.g.When().Online(ctxT(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if total("elections_total") < 1 {
		t.Error("no election counted")
	}
	for _, nd := range nodes {
		if get("leader_changes_total", nd) < 1 || get("term", nd) < 1 {
			t.Errorf("%s: leader changes %v, term %v", nd.net.ID().Short(), get("leader_changes_total", nd), get("term", nd))
		}
	}
	if get("is_leader", leader) != 1 || total("is_leader") != 1 || get("nonvoters", leader) != 0 {
		t.Errorf("is_leader %v of %v, non-voters %v", get("is_leader", leader), total("is_leader"), get("nonvoters", leader))
	}

	// Writes from a follower are forwarded, appended by the leader, and
	// committed and applied everywhere.
	var follower *mnode
	for _, nd := range nodes {
		if nd != leader {
			follower = nd
		}
	}
	committed := get("commit_index", leader)
	const writes = 10
	for i := range writes {
		if _, err := follower.g.Execute(ctxT(t, 10*time.Second), ledgerCmd{V: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := get("forwarded_commands_total", follower); got < writes {
		t.Errorf("follower forwarded %v commands, want at least %d", got, writes)
	}
	// The follower is one of three voters: it commits by itself, and
	// answers its writes at its own apply, usually before the leader's
	// reply comes (write more until one did).
	if got := get("self_commits_total", follower); got < 1 {
		t.Errorf("follower of three voters took %v commits by itself", got)
	}
	if got := get("self_commits_total", leader); got != 0 {
		t.Errorf("the leader counts %v self-commits", got)
	}
	// A write that waits to apply here (as a collection's do) whose entry
	// the follower acknowledged before the leader applied it needs no reply.
	waitFor(t, 20*time.Second, "a batch the follower answered at its own apply, its reply unsent", func() bool {
		if _, err := ExecuteApplied[struct{}](ctxT(t, 10*time.Second), follower.g, []ledgerCmd{{V: 1}}); err != nil {
			t.Fatal(err)
		}
		return get("self_resolved_batches_total", follower) >= 1 && get("unsent_outcomes_total", leader) >= 1
	})
	if got := get("appended_commands_total", leader); got < writes {
		t.Errorf("leader appended %v commands, want at least %d", got, writes)
	}
	if got := get("commit_index", leader); got < committed+writes {
		t.Errorf("commit index %v after %d writes from %v", got, writes, committed)
	}
	waitFor(t, 10*time.Second, "every member to apply the writes", func() bool {
		for _, nd := range nodes {
			if get("applied_index", nd) < committed+writes || get("apply_lag", nd) != 0 {
				return false
			}
		}
		return true
	})
	for _, nd := range nodes {
		for _, name := range []string{"mosaik_transport_group_sent_bytes_total", "mosaik_transport_group_received_messages_total"} {
			if promtest.Sum(t, reg, name, of(nd)...) <= 0 {
				t.Errorf("%s: %s did not move", nd.net.ID().Short(), name)
			}
		}
	}

	// A forced election.
	elections, changes := total("elections_total"), get("leader_changes_total", follower)
	if err := leader.g.raft.Load().LeadershipTransfer().Error(); err != nil {
		t.Fatal(err)
	}
	old := leader
	leader = leaderAmong(old)
	if total("elections_total") <= elections {
		t.Error("the forced election was not counted")
	}
	waitFor(t, 10*time.Second, "the follower to count the new leader", func() bool {
		return get("leader_changes_total", follower) > changes
	})
	waitFor(t, 10*time.Second, "is_leader to follow", func() bool {
		return get("is_leader", old) == 0 && get("is_leader", leader) == 1
	})

	// A snapshot, then a member that can only catch up from it.
	if err := leader.g.raft.Load().Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	if get("snapshots_taken_total", leader) < 1 {
		t.Error("the snapshot was not counted")
	}
	for i := range 2 * cfg.TrailingLogs {
		if _, err := leader.g.Execute(ctxT(t, 10*time.Second), ledgerCmd{V: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	late := joinMetered(t, c, reg, cfg)
	waitFor(t, 30*time.Second, "the new member to restore the snapshot", func() bool {
		return get("snapshots_restored_total", late) >= 1
	})
	// The sender counts once the receiver answered, after it restored.
	waitFor(t, 10*time.Second, "both sides to count the snapshot transfer", func() bool {
		return promtest.Sum(t, reg, "mosaik_transport_snapshot_sends_total", of(leader)...) >= 1 &&
			promtest.Sum(t, reg, "mosaik_transport_snapshot_received_bytes_total", of(late)...) > 0
	})

	late.close()
	if n := promtest.Series(t, reg, "mosaik_", "peer", late.net.ID().Short()); n != 0 {
		t.Errorf("%d series of a closed member remain", n)
	}
	if n := promtest.Series(t, reg, "mosaik_group_", of(leader)...); n == 0 {
		t.Error("the leader's series went with the closed member's")
	}
}
