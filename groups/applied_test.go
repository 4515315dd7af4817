package groups

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/mosaik-go/mosaik/internal/replica"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// forwardingSubmitter returns the submitter of a member that is not the
// leader, over fsm, with a session chosen and its first batch (number 1)
// next to form; its run loop does not run.
func forwardingSubmitter(t *testing.T, fsm *replica.FSM) *submitter {
	t.Helper()
	self := transport.PeerID{1}
	s := &submitter{c: &core{lifecycle: lifecycle{closing: make(chan struct{})}, fsm: fsm, self: self},
		records: map[WriteID]*record{}, gaveUp: make(chan struct{}, 1), repSig: make(chan struct{}, 1), nextSeq: 2}
	chosen, err := replica.NewSessionID(0)
	if err != nil {
		t.Fatal(err)
	}
	s.chosen, s.session, s.leader = chosen, bindSession(self, chosen), transport.PeerID{2}
	return s
}

// A batch forwarded to the leader is answered by this member's own apply,
// on the applying goroutine, with each call's share of the copy that
// applied (here the one without the call whose caller gave up); the run
// loop then resolves it from the outcome handed to it, and the leader's
// reply, arriving later, answers nobody twice. Before its entry applies,
// an apply answers nothing.
func TestAnsweredAtOwnApply(t *testing.T) {
	m := replica.New[tallyCmd, struct{}, int64](&tally{}, nil)
	s := forwardingSubmitter(t, m.FSM)

	newP := func(n int) *pending {
		p := &pending{ctx: context.Background(), done: make(chan pendingResult, 1), local: true}
		for range n {
			c, err := rsm.Marshal(tallyCmd{Add: 1})
			if err != nil {
				t.Fatal(err)
			}
			p.cmds = append(p.cmds, c)
		}
		return p
	}
	a, gone, c := newP(2), newP(1), newP(1)
	b := &batch{seq: 1, parts: []*pending{a, gone, c}, local: true}
	for i, p := range b.parts {
		b.cmds = append(b.cmds, p.cmds...)
		p.id = WriteID{Session: s.session, Seq: b.seq, Part: i}
	}
	b.versions = []version{{count: len(b.cmds)}}
	s.inflight = []*batch{b}
	s.attempts, b.first, b.attempt = 1, 1, 1
	s.list(b)
	if _, err := s.giveUp(gone, context.DeadlineExceeded); err == nil {
		t.Fatal("giveUp after the batch was sent returned no error")
	}
	s.withdraw() // the copy without gone's command: 3 commands

	s.applied() // nothing of the session applied yet
	if len(s.fast) != 1 || len(a.done) != 0 || len(c.done) != 0 {
		t.Fatalf("an apply before the batch's answered it: fast %d, answers %d %d", len(s.fast), len(a.done), len(c.done))
	}

	e := replica.Entry{Session: s.session, Seq: 1, First: 1, Cmds: b.cmds}
	data, err := rsm.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	m.FSM.Apply(&raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: data})
	s.applied()

	if len(a.done) != 1 || len(c.done) != 1 {
		t.Fatalf("the apply of the batch answered %d and %d of its calls' results, want 1 and 1", len(a.done), len(c.done))
	}
	ra, rc := <-a.done, <-c.done
	if ra.err != nil || ra.out.First != 1 || ra.out.Count != 2 || rc.err != nil || rc.out.First != 3 || rc.out.Count != 1 {
		t.Fatalf("shares: %+v %v, %+v %v", ra.out, ra.err, rc.out, rc.err)
	}
	if len(ra.out.Replies) != 2 {
		t.Fatalf("the first call got %d replies, want 2", len(ra.out.Replies))
	}
	for i, want := range []int64{1, 2} {
		var got int64
		if err := rsm.Unmarshal(ra.out.Replies[i], &got); err != nil || got != want {
			t.Fatalf("reply %d of the first call: %d, %v; want total %d", i, got, err, want)
		}
	}
	if _, applied, err := s.outcome(context.Background(), gone.id); err != nil || applied {
		t.Fatalf("outcome of the withdrawn call: applied %v, %v", applied, err)
	}
	if len(s.fast) != 0 || s.selfResolved.Load() != 1 {
		t.Fatalf("after the answer: fast %d, self-resolved %d", len(s.fast), s.selfResolved.Load())
	}

	// The run loop resolves the batch from the outcome handed to it.
	s.handleReplies()
	if !b.resolved || len(s.inflight) != 0 || s.base != 1 {
		t.Fatalf("run loop: resolved %v, inflight %d, base %d", b.resolved, len(s.inflight), s.base)
	}
	// The leader's reply, late, is dropped.
	s.pushReply(forwardReply{Seq: 1, Attempt: 2, Kind: replyOutcome, Outcome: replica.Outcome{Status: replica.StatusApplied, First: 1, Count: 3}})
	s.handleReplies()
	if len(a.done) != 0 || len(c.done) != 0 {
		t.Fatal("a call was answered twice")
	}
}

// slowQuery is a tally whose Query holds the replica's lock until release
// is closed.
type slowQuery struct {
	tally
	entered, release chan struct{}
}

func (q *slowQuery) Query(struct{}) int64 {
	close(q.entered)
	<-q.release
	return 0
}

// A caller giving up returns at once even while the apply goroutine looks
// for batches to answer and somebody's Query holds the replica: applied
// reads the replica without the submitter's lock.
func TestGiveUpNotHeldByQuery(t *testing.T) {
	q := &slowQuery{entered: make(chan struct{}), release: make(chan struct{})}
	m := replica.New[tallyCmd, struct{}, int64](q, nil)
	s := forwardingSubmitter(t, m.FSM)
	p := &pending{ctx: context.Background(), done: make(chan pendingResult, 1), cmds: [][]byte{{0x80}}}
	b := &batch{seq: 1, parts: []*pending{p}, cmds: p.cmds, versions: []version{{count: 1}}}
	p.id = WriteID{Session: s.session, Seq: 1}
	s.inflight = []*batch{b}
	s.attempts, b.first, b.attempt = 1, 1, 1
	s.list(b)

	queried := make(chan struct{})
	go func() { m.Query(struct{}{}); close(queried) }()
	<-q.entered // the Query holds the replica's lock
	applied := make(chan struct{})
	go func() { s.applied(); close(applied) }() // an apply just ended
	// Let applied take the submitter's lock first, if it would hold it
	// while it reads the replica (it must not); give up looking after 1 s.
	for end := time.Now().Add(time.Second); time.Now().Before(end) && s.mu.TryLock(); {
		s.mu.Unlock()
		runtime.Gosched()
	}

	gaveUp := make(chan error, 1)
	go func() {
		_, err := s.giveUp(p, context.DeadlineExceeded)
		gaveUp <- err
	}()
	select {
	case err := <-gaveUp:
		var u *UnknownOutcomeError
		if !errors.As(err, &u) {
			t.Errorf("giveUp: %v, want an *UnknownOutcomeError", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("giveUp waited for somebody's Query")
	}
	close(q.release)
	<-queried
	<-applied
}
