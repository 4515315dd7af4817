package groups

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/mosaik-go/mosaik/rsm"
)

// killTwo stops the networks of a and b at once: their members stop as if
// the processes died, without leaving.
func killTwo(c *cluster, a, b *node) {
	var wg sync.WaitGroup
	for _, nd := range []*node{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nd.net.Close()
		}()
	}
	wg.Wait()
	for _, nd := range []*node{a, b} {
		nd.g.Close()
		nd.g = nil
	}
	keep := c.nodes[:0]
	for _, nd := range c.nodes {
		if nd.g != nil {
			keep = append(keep, nd)
		}
	}
	c.nodes = keep
}

// patient waits, under a busy machine, until nodes are online and the group
// has n voters.
func patient(t *testing.T, c *cluster, n int, nodes ...*node) {
	t.Helper()
	for _, nd := range nodes {
		if err := nd.g.When().Online(ctxT(t, 45*time.Second)); err != nil {
			t.Fatalf("%s not online: %v", nd.net.ID().Short(), err)
		}
	}
	c.waitVoters(45*time.Second, n)
}

// TestRecoverLostQuorum: three in-memory members, two die at once. The
// survivor cannot write, whatever it waits; Recover reforms the group from
// it, keeps what was written, and a new member joins and becomes a voter.
func TestRecoverLostQuorum(t *testing.T) {
	c := newCluster(t)
	nodes := []*node{c.add(nil), c.add(nil), c.add(nil)}
	patient(t, c, 3, nodes...)
	l := c.leader()
	for i := range 5 {
		if _, err := l.g.Execute(ctxT(t, 5*time.Second), counterCmd{Add: int64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	var survivor *node
	var dead []*node
	for _, nd := range nodes {
		if nd != l && survivor == nil {
			survivor = nd
		} else {
			dead = append(dead, nd)
		}
	}
	waitFor(t, 30*time.Second, "the survivor to apply every write", func() bool { return survivor.sm.Query(struct{}{}) == 15 })

	// While all are alive, recovery is refused on any member.
	if _, err := survivor.g.Recover(ctxT(t, 5*time.Second)); !errors.Is(err, ErrQuorumReachable) {
		t.Fatalf("Recover with every member alive: %v, want ErrQuorumReachable", err)
	}

	killTwo(c, dead[0], dead[1])
	// Writes fail; so they do after the dead-member timeout: nobody can
	// remove two voters of three.
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), survivor.g.cfg.DeadMemberTimeout)
		_, err := survivor.g.Execute(ctx, counterCmd{Add: 100})
		cancel()
		if err == nil {
			t.Fatal("a write committed without a majority")
		}
	}

	var rec Recovery
	waitFor(t, 30*time.Second, "Recover to be allowed", func() bool {
		var err error
		rec, err = survivor.g.Recover(ctxT(t, 20*time.Second))
		if errors.Is(err, ErrQuorumReachable) {
			return false
		}
		if err != nil {
			t.Fatalf("Recover: %v", err)
		}
		return true
	})
	if len(rec.Previous) != 3 || len(rec.Reachable) != 1 || rec.Reachable[0] != survivor.net.ID() {
		t.Fatalf("Recovery previous %v reachable %v, want 3 and the survivor alone", rec.Previous, rec.Reachable)
	}
	if rec.LogLast == 0 || rec.LogLast < rec.LogCommitted {
		t.Fatalf("Recovery indexes %+v", rec)
	}
	if !survivor.g.IsLeader() {
		t.Fatal("the survivor does not lead after Recover")
	}
	if v, nv := voters(survivor.g.Members()); v != 1 || nv != 0 {
		t.Fatalf("after Recover: %d voters, %d non-voters; want 1, 0", v, nv)
	}
	if _, err := survivor.g.Execute(ctxT(t, 20*time.Second), counterCmd{Add: 1000}); err != nil {
		t.Fatalf("write after Recover: %v", err)
	}
	// The failed writes were never acknowledged and may or may not have
	// applied (they were in the survivor's log): 15 + 1000, plus 0 to 2 × 100.
	got := survivor.sm.Query(struct{}{})
	if got != 1015 && got != 1115 && got != 1215 {
		t.Fatalf("value after Recover %d, want 1015 plus up to two 100s", got)
	}

	fresh := c.add(nil)
	patient(t, c, 2, fresh)
	waitFor(t, 30*time.Second, "the new member to catch up", func() bool { return fresh.sm.Query(struct{}{}) == got })
	if _, err := fresh.g.Execute(ctxT(t, 20*time.Second), counterCmd{Add: 1}); err != nil {
		t.Fatalf("write from the new member: %v", err)
	}
	// Now two voters of two are alive: recovery is refused again.
	if _, err := fresh.g.Recover(ctxT(t, 5*time.Second)); !errors.Is(err, ErrQuorumReachable) {
		t.Fatalf("Recover on a healthy group: %v, want ErrQuorumReachable", err)
	}
}

// TestRecoverPrefersLongestLog: of five voters three die; the two
// survivors hear each other, so only one of them may recover: the one
// with the longer log, or with an equal log the lower id.
func TestRecoverPrefersLongestLog(t *testing.T) {
	c := newCluster(t)
	nodes := []*node{c.add(nil), c.add(nil), c.add(nil), c.add(nil), c.add(nil)}
	patient(t, c, 5, nodes...)
	l := c.leader()
	if _, err := l.g.Execute(ctxT(t, 5*time.Second), counterCmd{Add: 1}); err != nil {
		t.Fatal(err)
	}
	var live []*node
	for _, nd := range nodes {
		if nd != l && len(live) < 2 {
			live = append(live, nd)
		}
	}
	waitFor(t, 30*time.Second, "the survivors to apply", func() bool {
		return live[0].sm.Query(struct{}{}) == 1 && live[1].sm.Query(struct{}{}) == 1
	})
	var wg sync.WaitGroup
	var dead []*node
	for _, nd := range nodes {
		if nd != live[0] && nd != live[1] {
			dead = append(dead, nd)
			wg.Add(1)
			go func() { defer wg.Done(); nd.net.Close() }()
		}
	}
	wg.Wait()
	for _, nd := range dead {
		nd.g.Close()
		nd.g = nil
	}
	c.nodes = live
	var ok, refused *node
	waitFor(t, 40*time.Second, "one survivor to recover", func() bool {
		for i, nd := range live {
			_, err := nd.g.Recover(ctxT(t, 20*time.Second))
			switch {
			case err == nil:
				ok = nd
				refused = live[1-i]
				return true
			case errors.Is(err, ErrQuorumReachable), errors.Is(err, ErrRecoverElsewhere):
			default:
				t.Fatalf("Recover: %v", err)
			}
		}
		return false
	})
	if ok.g.raft.Load().LastIndex() < refused.g.raft.Load().LastIndex() {
		t.Fatal("the survivor with the shorter log recovered")
	}
	// The other survivor joins the recovered group on its own.
	c.waitVoters(45*time.Second, 2)
	if _, err := refused.g.Execute(ctxT(t, 20*time.Second), counterCmd{Add: 1}); err != nil {
		t.Fatalf("write from the other survivor: %v", err)
	}
}

// TestRemoveMember: only the leader removes; a live member only with force;
// a dead one at once, before the dead-member timeout would.
func TestRemoveMember(t *testing.T) {
	c := newCluster(t)
	cfg := testConfig()
	cfg.DeadMemberTimeout = time.Minute // so only RemoveMember removes
	nodes := []*node{c.add(cfg), c.add(cfg), c.add(cfg)}
	patient(t, c, 3, nodes...)
	// Each call goes to the leader of the moment: on a busy machine
	// leadership may move between calls.
	onLeader := func(what string, want error, call func(l *node) error) {
		t.Helper()
		var err error
		waitFor(t, 30*time.Second, what, func() bool {
			l := c.agreed()
			if l == nil {
				return false
			}
			err = call(l)
			return !errors.Is(err, ErrNotLeader) && !errors.Is(err, raft.ErrLeadershipLost)
		})
		if !errors.Is(err, want) && (want != nil || err != nil) {
			t.Fatalf("%s: %v, want %v", what, err, want)
		}
	}
	ctx := ctxT(t, 60*time.Second)
	l := c.leader()
	victim := nodes[0]
	if victim == l {
		victim = nodes[1]
	}
	// A follower refuses, unless it became leader meanwhile.
	if err := victim.g.RemoveMember(ctx, l.net.ID(), false); !errors.Is(err, ErrNotLeader) && !victim.g.IsLeader() {
		t.Fatalf("RemoveMember on a follower: %v, want ErrNotLeader", err)
	}
	onLeader("RemoveMember of a live member", ErrMemberAlive, func(l *node) error {
		if l == victim {
			return ErrNotLeader // wait for another leader
		}
		return l.g.RemoveMember(ctx, victim.net.ID(), false)
	})
	onLeader("RemoveMember of a stranger", ErrNotMember, func(l *node) error { return l.g.RemoveMember(ctx, c.first.ID(), false) })
	victim.net.Close()
	victim.g.Close()
	victim.g = nil
	c.nodes = slices.DeleteFunc(c.nodes, func(nd *node) bool { return nd.g == nil })
	onLeader("RemoveMember with force", nil, func(l *node) error { return l.g.RemoveMember(ctx, victim.net.ID(), true) })
	waitFor(t, 30*time.Second, "two voters", func() bool {
		l := c.agreed()
		if l == nil {
			return false
		}
		v, _ := voters(l.g.Members())
		return v == 2
	})
}

// TestRecoverDurable: Recover on a durable member with a snapshot keeps its
// machine as it was (nothing applied twice) and writes its new
// configuration into its log, so that the member, restarted, is still the
// only voter and leads with everything it had.
func TestRecoverDurable(t *testing.T) {
	c := newCluster(t)
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	type lnode = dnode[ledgerCmd, struct{}, ledgerState]
	var nodes []*lnode
	sms := []*ledger{{}, {}, {}}
	for i, d := range dirs {
		nodes = append(nodes, startDurable(t, c, d, rsm.StateMachine[ledgerCmd, struct{}, ledgerState](sms[i]), nil))
	}
	onlineAll(t, nodes...)
	l := leaderOf(t, nodes...)
	write := func(nd *lnode, v int64) {
		t.Helper()
		if _, err := nd.g.Execute(ctxT(t, 5*time.Second), ledgerCmd{V: v}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		write(l, int64(i+1))
	}
	survivor, sm := nodes[0], sms[0]
	convergeAll(t, 10*time.Second, nodes...)
	snapshotNow(t, survivor)
	write(l, 4)
	write(l, 5)
	convergeAll(t, 10*time.Second, nodes...)
	var wg sync.WaitGroup
	for _, nd := range nodes[1:] {
		wg.Add(1)
		go func() { defer wg.Done(); nd.stop() }()
	}
	wg.Wait()
	waitFor(t, 15*time.Second, "Recover to be allowed", func() bool {
		_, err := survivor.g.Recover(ctxT(t, 10*time.Second))
		if errors.Is(err, ErrQuorumReachable) {
			return false
		}
		if err != nil {
			t.Fatalf("Recover: %v", err)
		}
		return true
	})
	write(survivor, 6)
	want := sm.state()
	if want.N != 6 || want.Sum != 21 {
		t.Fatalf("after Recover the machine applied %d commands summing to %d, want 6 and 21", want.N, want.Sum)
	}
	survivor.stop()
	again := startDurable(t, c, dirs[0], rsm.StateMachine[ledgerCmd, struct{}, ledgerState](&ledger{}), nil)
	onlineAll(t, again)
	if !again.g.IsLeader() {
		t.Fatal("the restarted survivor does not lead")
	}
	if v, nv := voters(again.g.Members()); v != 1 || nv != 0 {
		t.Fatalf("restarted survivor: %d voters, %d non-voters; want 1, 0", v, nv)
	}
	r, err := again.g.Query(ctxT(t, 5*time.Second), struct{}{}, Strong)
	if err != nil || r.Value != want {
		t.Fatalf("state after restart %+v (%v), want %+v", r.Value, err, want)
	}
}

// recordingFSM records the indexes it is handed.
type recordingFSM struct {
	raft.BatchingFSM
	got []uint64
}

func (f *recordingFSM) Apply(l *raft.Log) any { f.got = append(f.got, l.Index); return l.Index }

func (f *recordingFSM) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	for i, l := range logs {
		out[i] = f.Apply(l)
	}
	return out
}

// TestReplayGuard: after Recover restarts Raft over a live machine, the
// entries it applied already are not handed to it again, and the others
// keep their place in the batch.
func TestReplayGuard(t *testing.T) {
	inner := &recordingFSM{}
	g := replayGuard{BatchingFSM: inner, applied: func() uint64 { return 5 }}
	var logs []*raft.Log
	for i := uint64(3); i <= 8; i++ {
		logs = append(logs, &raft.Log{Index: i})
	}
	out := g.ApplyBatch(logs)
	if !slices.Equal(inner.got, []uint64{6, 7, 8}) {
		t.Fatalf("machine got %v, want 6 7 8", inner.got)
	}
	if len(out) != 6 || out[0] != nil || out[2] != nil || out[3] != uint64(6) || out[5] != uint64(8) {
		t.Fatalf("batch results %v", out)
	}
	if g.Apply(&raft.Log{Index: 5}) != nil || g.Apply(&raft.Log{Index: 9}) != uint64(9) {
		t.Fatal("Apply does not skip what was applied")
	}
	if !slices.Equal(inner.got, []uint64{6, 7, 8, 9}) {
		t.Fatalf("machine got %v", inner.got)
	}
}
