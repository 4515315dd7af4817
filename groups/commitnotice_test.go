package groups

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/internal/replica"
	"github.com/mosaik-go/mosaik/rsm"
)

// leaderAndFollower starts a group of three members and returns its leader
// and one of the others.
func leaderAndFollower(t *testing.T) (leader, follower *node) {
	t.Helper()
	c := newCluster(t)
	a, b, d := c.add(nil), c.add(nil), c.add(nil)
	leader, follower = c.leader(a, b, d), a
	if follower == leader {
		follower = b
	}
	return leader, follower
}

// ExecuteApplied on a follower returns once the follower itself has applied
// the commands, and the leader appends nothing but the commands for it: the
// follower learns of the commit from a notice, not from a barrier entry.
func TestExecuteAppliedOnFollower(t *testing.T) {
	leader, follower := leaderAndFollower(t)
	waitFor(t, 20*time.Second, "three voters", func() bool { v, _ := voters(leader.g.Members()); return v == 3 })
	before := leader.g.raft.Load().LastIndex()
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
	// Each call is one batch, one entry; a barrier per call would make
	// 40. A forward resent after its timeout on a busy machine appends its
	// batch again (the copy does not apply), so allow a few more than 20.
	if got := leader.g.raft.Load().LastIndex() - before; got < 20 || got >= 30 {
		t.Errorf("20 ExecuteApplied calls from a follower made the leader append %d entries, want 20 (a few more if forwards were resent)", got)
	}
}

// TestLocalForwardNoAppendedReply: a batch whose sender waits to apply it
// (ExecuteApplied at a follower) is answered once, with its outcome, or not
// at all if the sender commits by itself and acknowledged the entry first
// (it answers at its own apply): an "appended" answer would be one more
// message on the way, and nothing waits for it. Other batches still get
// both answers.
func TestLocalForwardNoAppendedReply(t *testing.T) {
	leader, follower := leaderAndFollower(t)
	cmd, err := rsm.Marshal(counterCmd{Add: 1})
	if err != nil {
		t.Fatal(err)
	}
	kinds := func(local bool) []uint8 {
		t.Helper()
		id, err := replica.NewSessionID(leader.g.Applied())
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var got []uint8
		done := make(chan struct{})
		reply := func(r forwardReply) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, r.Kind)
			if r.Kind != replyAppended {
				close(done)
			}
		}
		unsent := leader.g.unsent.Load()
		leader.g.appendCh <- submission{req: forward{Session: id, Seq: 1, Attempt: 1, Cmds: [][]byte{cmd}, Local: local},
			from: follower.net.ID(), reply: reply, remote: true}
		waitFor(t, 20*time.Second, "an outcome, sent or left unsent", func() bool {
			select {
			case <-done:
				return true
			default:
				return leader.g.unsent.Load() > unsent
			}
		})
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
	if got := kinds(false); !slices.Equal(got, []uint8{replyAppended, replyOutcome}) {
		t.Errorf("a batch nobody waits to apply: answers %v, want appended then outcome", got)
	}
	if got := kinds(true); !slices.Equal(got, []uint8{replyOutcome}) && len(got) != 0 {
		t.Errorf("a batch its sender waits to apply: answers %v, want the outcome alone, or none", got)
	}
}

// TestFeedBatchedWithLocalWrite: a Feed that shares a batch with a write its
// sender waits to apply (ExecuteApplied at a follower) still returns once
// the leader gave it an index, before the batch commits or applies.
func TestFeedBatchedWithLocalWrite(t *testing.T) {
	leader, follower := leaderAndFollower(t)
	gate := make(chan struct{}, maxInflight)
	leader.sm.mu.Lock()
	leader.sm.gate = gate
	leader.sm.mu.Unlock()
	var once sync.Once
	open := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(open)
	// Fill the follower's window with batches the leader cannot apply yet.
	for i := range maxInflight {
		if _, err := follower.g.Feed(ctxT(t, 20*time.Second), counterCmd{Add: gatedAdd}); err != nil {
			t.Fatalf("feed %d: %v", i, err)
		}
	}
	// Queue a local write and a Feed behind them: they go as one batch.
	pend := func(add int64, feed, local bool) *pending {
		cmd, err := rsm.Marshal(counterCmd{Add: add})
		if err != nil {
			t.Fatal(err)
		}
		p := &pending{ctx: ctxT(t, 30*time.Second), cmds: [][]byte{cmd}, size: len(cmd), feed: feed, local: local,
			enqueued: time.Now(), done: make(chan pendingResult, 1)}
		follower.g.sub.in <- p
		return p
	}
	pend(gatedAdd, false, true) // never applies while the gate is shut
	feed := pend(1, true, false)
	waitFor(t, 20*time.Second, "both queued", func() bool { return len(follower.g.sub.in) == 0 })
	for range maxInflight {
		gate <- struct{}{} // the window's batches apply; the next batch goes
	}
	select {
	case r := <-feed.done:
		if r.err != nil {
			t.Fatalf("feed: %v", r.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a Feed batched with a local write waited for the batch to apply")
	}
	open()
}
