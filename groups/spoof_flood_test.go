package groups

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/internal/replica"
)

// TestSessionFloodVictim: when the machine forgets a member's session
// because others opened more than replica.MaxSessions (here the leader's
// own appender opens them, which the per-member limit spares, with session
// ids that sort last among equally recent ones), the victim's writes are
// never lost silently: its next write, sent once under a forgotten session,
// goes again under a new one and applies, exactly once.
func TestSessionFloodVictim(t *testing.T) {
	c := newCluster(t)
	nodes := []*node{c.add(nil), c.add(nil), c.add(nil)}
	online(t, nodes...)
	leader := c.leader(nodes...)
	victim := nodes[slices.IndexFunc(nodes, func(nd *node) bool { return nd != leader })]
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
		l := c.leader(nodes...)
		r := floodOne(t, l, l, forward{Session: id, Seq: 1, Attempt: 1})
		if r.Kind == replyOutcome && r.Outcome.Status == replica.StatusApplied {
			opened++
		}
	}
	converge(t, nodes...)
	// The flood's batches hold no commands: they leave the machine's index
	// alone, and converge does not wait for them. Raft's does.
	waitFor(t, 15*time.Second, "every member to apply the flood", func() bool {
		var last uint64
		for _, nd := range nodes {
			last = max(last, nd.g.fsm.AppliedRaft())
		}
		for _, nd := range nodes {
			if nd.g.fsm.AppliedRaft() != last {
				return false
			}
		}
		return true
	})
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

// TestSessionFloodLimited: a member that is not the leader opens sessions
// (a batch of no commands opens one) to make the group forget the others'.
// The leader opens at most maxSessionOpens per member and window, refuses
// the rest as busy, and the victim's session stays remembered.
func TestSessionFloodLimited(t *testing.T) {
	c := newCluster(t)
	nodes := []*node{c.add(nil), c.add(nil), c.add(nil)}
	online(t, nodes...)
	leader := c.leader(nodes...)
	others := slices.DeleteFunc(slices.Clone(nodes), func(nd *node) bool { return nd == leader })
	victim, flooder := others[0], others[1]
	if _, err := victim.g.Execute(ctxT(t, 10*time.Second), counterCmd{Add: 1}); err != nil {
		t.Fatal(err)
	}
	bound := victim.g.sub.session // written before Execute returned
	opened, busy := 0, 0
	leaders := map[*node]bool{}
	for range maxSessionOpens + 40 {
		l := c.leader(nodes...)
		if l == flooder {
			continue // its own sessions are not counted; a rare leader change
		}
		leaders[l] = true
		id, err := replica.NewSessionID(math.MaxUint64)
		if err != nil {
			t.Fatal(err)
		}
		r := floodOne(t, flooder, l, forward{Session: id, Seq: 1, Attempt: 1})
		switch {
		case r.Kind == replyOutcome && r.Outcome.Status == replica.StatusApplied:
			opened++
		case r.Kind == replyError && r.Code == codeBusy:
			busy++
		case r.Kind == replyError && r.Code == codeNotLeader:
		default:
			t.Fatalf("flood reply %+v", r)
		}
	}
	t.Logf("opened %d, refused %d, leaders %d", opened, busy, len(leaders))
	// Each leader counts afresh; a leader change is rare here.
	if opened > maxSessionOpens*len(leaders) || busy == 0 {
		t.Fatalf("%d leaders opened %d sessions of one member and refused %d; want at most %d each", len(leaders), opened, busy, maxSessionOpens)
	}
	var counted uint64
	for l := range leaders {
		counted += l.g.refused.sessions.Load()
	}
	if counted != uint64(busy) {
		t.Fatalf("refused sessions counted %d, want %d", counted, busy)
	}
	converge(t, nodes...)
	if _, ok := victim.g.fsm.SessionLast(bound); !ok {
		t.Fatal("the victim's session was forgotten")
	}
	if _, err := victim.g.Execute(ctxT(t, 10*time.Second), counterCmd{Add: 7}); err != nil {
		t.Fatal(err)
	}
}
