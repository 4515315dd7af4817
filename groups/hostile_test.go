package groups

import (
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/internal/replica"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// rawForward sends fwd from one member straight to another's control
// subject, past every check the submitter makes, and returns the replies
// it gets until the outcome, an error or the deadline.
func rawForward(t *testing.T, from, to *node, fwd forward) []forwardReply {
	t.Helper()
	data, err := encodeCtl(ctlForward, fwd)
	if err != nil {
		t.Fatal(err)
	}
	replies := make(chan forwardReply, 4)
	cancel, err := from.g.scope.Call(from.g.ctlSubject(to.net.ID()), to.net.ID(), data, func(b []byte, err error) {
		var r forwardReply
		if err == nil {
			err = rsm.Unmarshal(b, &r)
		}
		if err != nil {
			r = forwardReply{Kind: replyError, Code: codeInternal, Msg: err.Error()}
		}
		replies <- r
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	var out []forwardReply
	deadline := time.After(30 * time.Second)
	for {
		select {
		case r := <-replies:
			out = append(out, r)
			if r.Kind != replyAppended {
				return out
			}
		case <-deadline:
			t.Fatalf("no final reply to the forward; got %+v", out)
		}
	}
}

// TestLeaderEnforcesLimits: a member that skips the submitter's checks
// cannot get a command or batch over the limits into the log; the leader
// refuses it with the error the submitter gives.
func TestLeaderEnforcesLimits(t *testing.T) {
	c := newCluster(t)
	a, b := c.add(nil), c.add(nil)
	online(t, a, b)
	l := c.leader()
	f := a
	if f == l {
		f = b
	}
	var session replica.SessionID
	if _, err := rand.Read(session[:]); err != nil {
		t.Fatal(err)
	}
	many := make([][]byte, MaxBatchCommands+1)
	for i := range many {
		many[i] = []byte{0xa0} // an empty map: a counterCmd
	}
	big := make([]byte, MaxCommandSize+1)
	chunk := make([]byte, MaxCommandSize/2)
	var heavy [][]byte
	for range MaxBatchSize/len(chunk) + 1 {
		heavy = append(heavy, chunk)
	}
	cases := []struct {
		name string
		cmds [][]byte
	}{
		{"command too large", [][]byte{big}},
		{"too many commands", many},
		{"batch too large", heavy},
	}
	for i, tc := range cases {
		before := l.g.Applied()
		rs := rawForward(t, f, l, forward{Session: session, Seq: uint64(i + 1), Cmds: tc.cmds})
		last := rs[len(rs)-1]
		if len(rs) != 1 || last.Kind != replyError || !errors.Is(last.err(), ErrTooLarge) {
			t.Errorf("%s: replies %+v; want one error matching ErrTooLarge", tc.name, summary(rs))
		}
		if got := l.g.Applied(); got != before {
			t.Errorf("%s: the leader applied up to %d (was %d)", tc.name, got, before)
		}
	}
	// The group still works, for this session too.
	if _, err := f.g.Execute(ctxT(t, 10*time.Second), counterCmd{Add: 1}); err != nil {
		t.Fatal(err)
	}
}

type replySummary struct {
	Kind, Code uint8
	Status     replica.Status
	Msg        string
}

func summary(rs []forwardReply) []replySummary {
	var out []replySummary
	for _, r := range rs {
		out = append(out, replySummary{r.Kind, r.Code, r.Outcome.Status, r.Msg})
	}
	return out
}

// TestSessionForgottenMidway: when the group forgets a member's session
// (more than replica.MaxSessions submitters since it last wrote), the member's
// next command still applies, once, under a new session.
func TestSessionForgottenMidway(t *testing.T) {
	c := newCluster(t)
	a := c.add(nil)
	online(t, a)
	c.leader()
	if _, err := a.g.Execute(ctxT(t, 10*time.Second), counterCmd{Add: 1}); err != nil {
		t.Fatal(err)
	}
	old := a.g.sub.session // written before the reply that Execute waited for
	// Other submitters, each one batch, until the member's session is
	// the least recently used of a full table.
	done := make(chan forwardReply, replica.MaxSessions)
	for i := range replica.MaxSessions {
		var s replica.SessionID
		s[0], s[1], s[15] = byte(i>>8), byte(i), 0xee
		sub := submission{req: forward{Session: s, Seq: 1, Cmds: [][]byte{{0xa0}}}, from: a.net.ID(), reply: func(r forwardReply) {
			if r.Kind != replyAppended {
				done <- r
			}
		}}
		select {
		case a.g.appendCh <- sub:
		case <-time.After(30 * time.Second):
			t.Fatal("appender stuck")
		}
	}
	for range replica.MaxSessions {
		select {
		case r := <-done:
			if r.Kind != replyOutcome || r.Outcome.Status != replica.StatusApplied {
				t.Fatalf("flood reply %+v", summary([]forwardReply{r}))
			}
		case <-time.After(60 * time.Second):
			t.Fatal("flood not applied")
		}
	}
	if n := a.g.fsm.Sessions(); n != replica.MaxSessions {
		t.Fatalf("%d sessions", n)
	}
	if _, ok := a.g.fsm.SessionLast(old); ok {
		t.Fatal("the member's session, the least recently used, was not the one forgotten")
	}
	if _, err := a.g.Execute(ctxT(t, 10*time.Second), counterCmd{Add: 10}); err != nil {
		t.Fatal(err)
	}
	if v := a.sm.Query(struct{}{}); v != 11 {
		t.Fatalf("value %d, want 11", v)
	}
	if a.g.sub.session == old {
		t.Fatal("the member went on under its forgotten session: the expired path did not run")
	}
}

// TestPeerTableIsBounded: announcements from ever more authenticated
// peers never grow the table past maxPeers; members of the configuration
// are never the ones dropped.
func TestPeerTableIsBounded(t *testing.T) {
	c := newCluster(t)
	a, b := c.add(nil), c.add(nil)
	online(t, a, b)
	c.leader()
	waitFor(t, 10*time.Second, "b in a's configuration and table", func() bool {
		a.g.peersMu.Lock()
		_, ok := a.g.peers[b.net.ID()]
		a.g.peersMu.Unlock()
		return ok && len(a.g.Members()) == 2
	})
	data, err := rsm.Marshal(announcement{Pref: uint8(prefObserver)})
	if err != nil {
		t.Fatal(err)
	}
	extra := 50
	for range maxPeers + extra {
		var p transport.PeerID
		if _, err := rand.Read(p[:]); err != nil {
			t.Fatal(err)
		}
		a.g.onAnnouncement(&transport.Msg{From: p, Data: data})
	}
	a.g.peersMu.Lock()
	n := len(a.g.peers)
	_, kept := a.g.peers[b.net.ID()]
	a.g.peersMu.Unlock()
	if n > maxPeers || !kept {
		t.Fatalf("%d peers (limit %d), member kept: %v", n, maxPeers, kept)
	}
	if d := a.g.refused.peers.Load(); d < uint64(extra) {
		t.Fatalf("%d drops counted, want at least %d", d, extra)
	}
}

// TestReadIndexRequestsAreBounded: a leader with maxReadIndexInflight
// read-index requests in flight answers the next with ErrBusy at once.
func TestReadIndexRequestsAreBounded(t *testing.T) {
	c := newCluster(t)
	a, b := c.add(nil), c.add(nil)
	online(t, a, b)
	l := c.leader()
	f := a
	if f == l {
		f = b
	}
	for range maxReadIndexInflight {
		l.g.readSem <- struct{}{}
	}
	_, err := f.g.remoteReadIndex(ctxT(t, 10*time.Second), l.net.ID())
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("read index from a busy leader: %v", err)
	}
	if l.g.refused.readIndex.Load() == 0 {
		t.Fatal("busy refusal not counted")
	}
	for range maxReadIndexInflight {
		<-l.g.readSem
	}
	if _, err := f.g.Query(ctxT(t, 10*time.Second), struct{}{}, Strong); err != nil {
		t.Fatal(err)
	}
}

// TestRefusalsCrossTheWire: the errors a leader refuses with match the
// same sentinels on the member that forwarded.
func TestRefusalsCrossTheWire(t *testing.T) {
	for _, w := range wireErrors {
		r := forwardReply{Kind: replyError, Code: errorCode(w.err), Msg: w.err.Error()}
		got := r.err()
		for _, other := range wireErrors {
			if errors.Is(got, other.err) != (other.code == w.code) {
				t.Errorf("%v across the wire: errors.Is(%v) = %v", w.err, other.err, !(other.code == w.code))
			}
		}
	}
	r := forwardReply{Kind: replyError, Code: errorCode(ErrSessionExpired), Msg: "x"}
	if !errors.Is(r.err(), ErrOutcomeUnknown) {
		t.Error("ErrSessionExpired across the wire does not match ErrOutcomeUnknown")
	}
}
