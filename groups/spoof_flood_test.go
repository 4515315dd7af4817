package groups

import (
	"math"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/internal/replica"
)

// TestSessionFloodVictim: a member may open sessions without end (a batch
// of no commands opens one) and so make the machine forget every other
// member's session (replica.MaxSessions), choosing session ids that sort
// last among equally recent ones. Binding sessions to senders does not stop
// that; what must hold is that the victim's writes are never lost
// silently: its next write, sent once under a forgotten session, goes
// again under a new one and applies, exactly once.
func TestSessionFloodVictim(t *testing.T) {
	c := newCluster(t)
	nodes := []*node{c.add(nil), c.add(nil), c.add(nil)}
	online(t, nodes...)
	leader := c.leader(nodes...)
	var victim, flooder *node
	for _, nd := range nodes {
		switch {
		case nd == leader:
		case victim == nil:
			victim = nd
		default:
			flooder = nd
		}
	}
	if _, err := victim.g.Execute(ctxT(t, 10*time.Second), counterCmd{Add: 1}); err != nil {
		t.Fatal(err)
	}
	bound := victim.g.sub.session // written before Execute returned
	converge(t, nodes...)
	if _, ok := victim.g.fsm.SessionLast(bound); !ok {
		t.Fatal("the victim's session is not in the machine")
	}

	// Each batch opens a session of the flooder's; a leader change under
	// load refuses some, which are sent again under new ids.
	deadline := time.Now().Add(2 * time.Minute)
	for opened := 0; opened < replica.MaxSessions+8; {
		if time.Now().After(deadline) {
			t.Fatalf("opened %d sessions before the deadline", opened)
		}
		id, err := replica.NewSessionID(math.MaxUint64)
		if err != nil {
			t.Fatal(err)
		}
		r := floodOne(t, flooder, c.leader(nodes...), forward{Session: id, Seq: 1, Attempt: 1})
		if r.Kind == replyOutcome && r.Outcome.Status == replica.StatusApplied {
			opened++
		}
	}
	converge(t, nodes...)
	if _, ok := victim.g.fsm.SessionLast(bound); ok {
		t.Fatal("the flood did not make the machine forget the victim's session")
	}

	out, err := victim.g.Execute(ctxT(t, 20*time.Second), counterCmd{Add: 7})
	t.Logf("the victim's write after the flood: %+v, %v", out, err)
	converge(t, nodes...)
	h := sameHistory(t, nodes...)
	n := 0
	for _, v := range h {
		if v == 7 {
			n++
		}
	}
	switch {
	case err == nil && n != 1:
		t.Errorf("the victim's write was acknowledged but applied %d times: history %v", n, h)
	case err != nil && n > 0:
		t.Errorf("the victim's write failed (%v) but applied: history %v", err, h)
	case err != nil:
		t.Errorf("the victim's write, sent once under a forgotten session, failed instead of going again: %v", err)
	}
}

// floodOne sends fwd from one member to the leader, or hands it to its
// own appender if it leads, and returns the final reply.
func floodOne(t *testing.T, from, leader *node, fwd forward) forwardReply {
	t.Helper()
	if leader != from {
		rs := rawForward(t, from, leader, fwd)
		return rs[len(rs)-1]
	}
	replies := make(chan forwardReply, 4)
	from.g.appendCh <- submission{req: fwd, from: from.net.ID(), reply: func(r forwardReply) { replies <- r }}
	for {
		select {
		case r := <-replies:
			if r.Kind != replyAppended {
				return r
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no final reply from the appender")
		}
	}
}
