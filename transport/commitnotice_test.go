package transport

import (
	"encoding/hex"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mosaik-go/mosaik/internal/promtest"
)

// With a commit timeout far longer than the test waits, a follower learns
// of a commit only from the leader's next append, or from a notice: one
// NotifyCommit makes it apply at once, and nothing else is appended.
func TestCommitNotice(t *testing.T) {
	nodes, leader := slowCommitCluster(t)
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

// A notice is one RPC: the metrics count it once, sent and answered, as
// for any other.
func TestCommitNoticeCountedOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	na := newNet(t, WithMetrics(reg))
	nb := join(t, na, WithMetrics(reg))
	id := scopeID("notice-metrics")
	a, b := newRaftTransport(t, na.Scope(id, testSecret), suiteTimeout), newRaftTransport(t, nb.Scope(id, testSecret), suiteTimeout)
	serve(t, b, func(rpc raft.RPC) {
		cmd := rpc.Command.(*raft.AppendEntriesRequest)
		rpc.Respond(&raft.AppendEntriesResponse{Term: cmd.Term, Success: true}, nil)
	})
	labels := []string{"group", hex.EncodeToString(id[:4]), "peer", na.ID().Short()}
	args := appendN(1)
	args.LeaderCommitIndex = 0 // b matched entry 1 and does not know it committed
	var resp raft.AppendEntriesResponse
	if err := a.AppendEntries("b", b.LocalAddr(), args, &resp); err != nil || !resp.Success {
		t.Fatalf("append: %v %+v", err, resp)
	}
	sent := promtest.Sum(t, reg, "mosaik_transport_group_sent_messages_total", labels...)
	recv := promtest.Sum(t, reg, "mosaik_transport_group_received_messages_total", labels...)
	pb, err := ParsePeerID(string(b.LocalAddr()))
	if err != nil {
		t.Fatal(err)
	}
	a.NotifyCommit(pb, 5, 1)
	eventually(t, "the notice to be taken", func() bool { return a.noticesTaken.Load() > 0 })
	if got := promtest.Sum(t, reg, "mosaik_transport_group_sent_messages_total", labels...) - sent; got != 1 {
		t.Errorf("one notice counted as %v messages sent", got)
	}
	if got := promtest.Sum(t, reg, "mosaik_transport_group_received_messages_total", labels...) - recv; got != 1 {
		t.Errorf("one notice's answer counted as %v messages received", got)
	}
}

// slowCommitCluster starts three Raft nodes over NATS whose leader tells
// followers of a commit only with its next append or after a minute, and
// returns them with their leader.
func slowCommitCluster(t *testing.T) (nodes []*raftNode, leader *raftNode) {
	t.Helper()
	first := newNet(t)
	nets := []*Network{join(t, first), join(t, first), join(t, first)}
	var servers []raft.Server
	for _, n := range nets {
		servers = append(servers, raft.Server{ID: raft.ServerID(n.ID().String()), Address: raft.ServerAddress(n.ID().String())})
	}
	slow := func(c *raft.Config) { c.CommitTimeout = time.Minute }
	for _, n := range nets {
		nodes = append(nodes, startRaftWith(t, n, servers, 2*time.Second, slow))
	}
	return nodes, leaderOf(t, nodes)
}

// noticePair is a leader-side transport a and a follower-side b that
// matched entry 1 without learning that it committed; answer plays b's
// Raft for every append after that one.
func noticePair(t *testing.T, timeout time.Duration, answer func(raft.RPC)) (na *Network, a *RaftTransport, pb PeerID) {
	t.Helper()
	na = newNet(t)
	nb := join(t, na)
	id := scopeID("notice-inline")
	a, b := newRaftTransport(t, na.Scope(id, testSecret), timeout), newRaftTransport(t, nb.Scope(id, testSecret), timeout)
	var first sync.Once
	serve(t, b, func(rpc raft.RPC) {
		handled := false
		first.Do(func() {
			cmd := rpc.Command.(*raft.AppendEntriesRequest)
			rpc.Respond(&raft.AppendEntriesResponse{Term: cmd.Term, Success: true}, nil)
			handled = true
		})
		if !handled {
			answer(rpc)
		}
	})
	args := appendN(1)
	args.LeaderCommitIndex = 0
	var resp raft.AppendEntriesResponse
	if err := a.AppendEntries("b", b.LocalAddr(), args, &resp); err != nil || !resp.Success {
		t.Fatalf("append: %v %+v", err, resp)
	}
	pb, err := ParsePeerID(string(b.LocalAddr()))
	if err != nil {
		t.Fatal(err)
	}
	return na, a, pb
}

// A notice to a follower whose card is known goes out before NotifyCommit
// returns: a goroutine started for it would wait behind the caller's own
// work (the leader's answer to the write), on the path of the write the
// follower waits for.
func TestCommitNoticeSentInline(t *testing.T) {
	na, a, pb := noticePair(t, suiteTimeout, func(rpc raft.RPC) {
		cmd := rpc.Command.(*raft.AppendEntriesRequest)
		rpc.Respond(&raft.AppendEntriesResponse{Term: cmd.Term, Success: true}, nil)
	})
	before := na.Stats().MsgsOut
	a.NotifyCommit(pb, 5, 1)
	if got := na.Stats().MsgsOut - before; got != 1 {
		t.Fatalf("NotifyCommit returned having sent %d messages, want the notice", got)
	}
	eventually(t, "the notice to be taken", func() bool { return a.noticesTaken.Load() == 1 })
}

// A notice nobody answers ends with the timeout, not counted as taken;
// closing the transport does not wait for one in flight (goleak checks
// that nothing is left).
func TestCommitNoticeUnanswered(t *testing.T) {
	var mu sync.Mutex
	var held []raft.RPC // never answered
	na, a, pb := noticePair(t, 300*time.Millisecond, func(rpc raft.RPC) {
		mu.Lock()
		held = append(held, rpc)
		mu.Unlock()
	})
	before := na.Stats().MsgsOut
	a.NotifyCommit(pb, 5, 1)
	eventually(t, "the unanswered notice to end", func() bool {
		a.noticeMu.Lock()
		defer a.noticeMu.Unlock()
		return !a.notices[pb].busy
	})
	if got := na.Stats().MsgsOut - before; got != 1 {
		t.Fatalf("%d messages sent, want one notice", got)
	}
	if a.noticesTaken.Load() != 0 {
		t.Fatal("an unanswered notice counted as taken")
	}
	// Another call sends it again; closing the transport ends it at once.
	a.NotifyCommit(pb, 5, 1)
	a.noticeMu.Lock()
	busy := a.notices[pb].busy
	a.noticeMu.Unlock()
	if !busy {
		t.Fatal("NotifyCommit did not send the notice again")
	}
	start := time.Now()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("Close waited %v for a notice in flight", d)
	}
}

// A notice goes as soon as the leader has sent the follower the entry it
// names, without waiting for the follower's acknowledgement: it travels on
// the same ordered subject after the append, and the follower takes it
// only if its log holds that entry. Waiting for the acknowledgement held
// the notice of a write committed by another follower's answer back by a
// round trip.
func TestCommitNoticeAfterSend(t *testing.T) {
	na := newNet(t)
	nb := join(t, na)
	id := scopeID("notice-sent")
	a, b := newRaftTransport(t, na.Scope(id, testSecret), suiteTimeout), newRaftTransport(t, nb.Scope(id, testSecret), suiteTimeout)
	held := make(chan raft.RPC, 1)
	notices := make(chan *raft.AppendEntriesRequest, 4)
	serve(t, b, func(rpc raft.RPC) {
		cmd := rpc.Command.(*raft.AppendEntriesRequest)
		if len(cmd.Entries) > 0 {
			held <- rpc // answered by the test
			return
		}
		notices <- cmd
		rpc.Respond(&raft.AppendEntriesResponse{Term: cmd.Term, Success: true}, nil)
	})
	pl, err := a.AppendEntriesPipeline("b", b.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	args := appendN(1)
	args.LeaderCommitIndex = 0
	if _, err := pl.AppendEntries(args, &raft.AppendEntriesResponse{}); err != nil {
		t.Fatal(err)
	}
	pb, err := ParsePeerID(string(b.LocalAddr()))
	if err != nil {
		t.Fatal(err)
	}
	before := na.Stats().MsgsOut
	a.NotifyCommit(pb, 5, 1)
	if got := na.Stats().MsgsOut - before; got != 1 {
		t.Fatalf("NotifyCommit sent %d messages before the follower acknowledged the entry, want the notice", got)
	}
	var rpc raft.RPC
	select {
	case rpc = <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("the append did not arrive")
	}
	select {
	case n := <-notices:
		t.Fatalf("the notice %+v arrived before the append was answered: the follower handles its RPCs in order", n)
	default:
	}
	rpc.Respond(&raft.AppendEntriesResponse{Term: 5, Success: true}, nil)
	select {
	case n := <-notices:
		if n.PrevLogEntry != 1 || n.PrevLogTerm != 5 || n.LeaderCommitIndex != 1 || n.Term != 5 {
			t.Fatalf("notice %+v: want previous entry 1 of term 5, commit 1, term 5", n)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no notice")
	}
	eventually(t, "the notice to be taken", func() bool { return a.noticesTaken.Load() == 1 })
}
