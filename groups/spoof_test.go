package groups

import (
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/mosaik-go/mosaik/internal/replica"
	"github.com/mosaik-go/mosaik/rsm"
)

// TestSessionSpoof: every member reads the other members' session ids in
// the log, and a member that can read the traffic sees the ids they send.
// A member that sends the next batch of another member's session, under
// either id, must neither apply it in the victim's name nor turn the
// victim's own next batch into a "repeat" that is acknowledged and never
// applies. The leader binds a session to the member that sent it
// (bindSession), so the spoofer only ever writes to sessions of its own.
func TestSessionSpoof(t *testing.T) {
	c := newCluster(t)
	nodes := []*node{c.add(nil), c.add(nil), c.add(nil)}
	online(t, nodes...)
	victim, spoofer := nodes[0], nodes[1]
	if _, err := victim.g.Execute(ctxT(t, 10*time.Second), counterCmd{Add: 1}); err != nil {
		t.Fatal(err)
	}
	converge(t, nodes...)

	// The spoofer reads the victim's session and last batch from its log.
	var (
		session replica.SessionID
		seq     uint64
	)
	logs := spoofer.g.stores.Log
	last, err := logs.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= last; i++ {
		var l raft.Log
		if logs.GetLog(i, &l) != nil || l.Type != raft.LogCommand {
			continue
		}
		var e replica.Entry
		if rsm.Unmarshal(l.Data, &e) == nil && e.Seq > 0 {
			session, seq = e.Session, e.Seq
		}
	}
	if seq == 0 {
		t.Fatal("no batch of the victim in the spoofer's log")
	}
	cmd, err := rsm.Marshal(counterCmd{Add: 1000})
	if err != nil {
		t.Fatal(err)
	}
	chosen := victim.g.sub.chosen // as it travels to the leader; written before Execute returned
	leader := c.leader(nodes...)
	for _, id := range []replica.SessionID{session, chosen} {
		rs := rawForward(t, spoofer, leader, forward{Session: id, Seq: seq + 1, Base: seq, Attempt: 1, Cmds: [][]byte{cmd}})
		r := rs[len(rs)-1]
		t.Logf("the spoofed batch %d under %x: %+v", seq+1, id[:4], r)
		if r.Kind == replyOutcome && r.Outcome.Status == replica.StatusApplied {
			t.Errorf("the spoofed batch %d under %x applied", seq+1, id[:4])
		}
	}

	out, err := victim.g.Execute(ctxT(t, 10*time.Second), counterCmd{Add: 7})
	t.Logf("the victim's next write: %+v, %v", out, err)
	converge(t, nodes...)
	h := sameHistory(t, nodes...)
	if err == nil && !slices.Contains(h, 7) {
		t.Errorf("the victim's write was acknowledged (%+v) but never applied: history %v", out, h)
	}
	if slices.Contains(h, 1000) {
		t.Errorf("a member applied a batch under another member's session: history %v", h)
	}
}
