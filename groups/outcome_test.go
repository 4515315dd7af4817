package groups

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/rsm"
)

// unknownWrite checks that err says the outcome is unknown, with the write's
// id, and returns the id.
func unknownWrite(t *testing.T, err error, what string) WriteID {
	t.Helper()
	var u *UnknownOutcomeError
	if !errors.As(err, &u) || !errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%s: %v, want an *UnknownOutcomeError of the deadline", what, err)
	}
	if errors.Is(err, ErrNotApplied) || u.Write.Seq == 0 {
		t.Fatalf("%s: %v (write %v) also says not applied, or names no write", what, err, u.Write)
	}
	return u.Write
}

// A write whose forward is slow (here its node's messages are delayed; in
// the field, NATS was down) times out at the caller with the unknown-outcome
// error, within its deadline, and applies later. Outcome then says it
// applied, at which index, and the state shows it there. (Should the
// leader change meanwhile, the delayed copy may be refused and the
// withdrawal win; the answer must still agree with the state, and the test
// tries again.)
func TestOutcomeAppliedLate(t *testing.T) {
	c := newCluster(t)
	nodes := []*node{c.add(nil), c.add(nil), c.add(nil)}
	online(t, nodes...)
	var want []int64
	for try := range 3 {
		l := c.leader(nodes...)
		f := nodes[slices.IndexFunc(nodes, func(nd *node) bool { return nd != l })]
		add := int64(7 + try)
		f.faults.Delay(800 * time.Millisecond) // keeps order: what is sent first arrives first
		start := time.Now()
		_, err := f.g.Execute(ctxT(t, 200*time.Millisecond), counterCmd{Add: add})
		if took := time.Since(start); took > time.Second {
			t.Fatalf("Execute with a 200 ms deadline returned after %v", took)
		}
		id := unknownWrite(t, err, "Execute while delayed")
		f.faults.Heal()

		rng, applied, err := f.g.Outcome(ctxT(t, 20*time.Second), id)
		if err != nil {
			t.Fatalf("Outcome(%v): %v", id, err)
		}
		if applied {
			if rng.Len() != 1 || rng.First == 0 {
				t.Fatalf("Outcome(%v) = %+v: want one index", id, rng)
			}
			want = append(want, add)
			for _, nd := range nodes {
				if err := nd.g.When().Applied(ctxT(t, 15*time.Second), rng.Last); err != nil {
					t.Fatal(err)
				}
			}
		}
		converge(t, nodes...)
		if h := sameHistory(t, nodes...); !slices.Equal(h, want) {
			t.Fatalf("history %v, want %v: Outcome said applied=%v for %d", h, want, applied, add)
		}
		if !applied {
			t.Logf("try %d: the withdrawal won (leader changed?)", try)
			continue
		}
		// Asked again, the answer stands.
		if rng2, applied2, err := f.g.Outcome(ctxT(t, 5*time.Second), id); err != nil || !applied2 || rng2 != rng {
			t.Fatalf("Outcome again = %+v, %v, %v", rng2, applied2, err)
		}
		return
	}
	t.Fatal("the delayed write never applied in 3 tries")
}

// A write whose forward was lost (its node cut off from the leader) times
// out with the unknown-outcome error. Its member withdraws it, so once the
// leader is reachable Outcome says it never applies; a copy of the original
// batch arriving late is dropped. A call still queued behind it when its
// deadline passed was never sent: ErrNotApplied, which is certain.
func TestOutcomeWithdrawnNeverApplies(t *testing.T) {
	c := newCluster(t)
	cfg := testConfig()
	cfg.DeadMemberTimeout = time.Minute // the cut-off member stays a member
	nodes := []*node{c.add(cfg), c.add(cfg), c.add(cfg)}
	online(t, nodes...)
	l := c.leader(nodes...)
	f := nodes[slices.IndexFunc(nodes, func(nd *node) bool { return nd != l })]
	if _, err := f.g.Execute(ctxT(t, 10*time.Second), counterCmd{Add: 1}); err != nil {
		t.Fatal(err)
	}

	// The leader drops what f sends it and what it sends f; f still hears
	// its announcements, so f keeps sending to it.
	l.faults.Partition(f.net.ID())
	var ids []WriteID
	for i, add := range []int64{5, 50} { // the member's two batches in flight
		_, err := f.g.Execute(ctxT(t, 300*time.Millisecond), counterCmd{Add: add})
		ids = append(ids, unknownWrite(t, err, "Execute while cut off"))
		if i > 0 && ids[i].Seq != ids[i-1].Seq+1 {
			t.Fatalf("writes %v and %v: want two batches", ids[i-1], ids[i])
		}
	}
	start := time.Now()
	_, err := f.g.Execute(ctxT(t, 300*time.Millisecond), counterCmd{Add: 500})
	if !errors.Is(err, ErrNotApplied) || errors.Is(err, ErrOutcomeUnknown) || time.Since(start) > time.Second {
		t.Fatalf("Execute queued behind two lost batches = %v after %v, want ErrNotApplied", err, time.Since(start))
	}
	l.faults.Heal()

	for _, id := range ids {
		rng, applied, err := f.g.Outcome(ctxT(t, 20*time.Second), id)
		if err != nil || applied {
			t.Fatalf("Outcome(%v) = %+v, %v, %v; want never applied", id, rng, applied, err)
		}
	}

	// A late copy of the first lost batch, as the network might still
	// deliver it: the group answers it as a repeat, and nothing applies.
	cmd, err := rsm.Marshal(counterCmd{Add: 5})
	if err != nil {
		t.Fatal(err)
	}
	leader := c.leader(nodes...)
	chosen := f.g.sub.chosen // written before the batches Execute sent
	if bindSession(f.net.ID(), chosen) != ids[0].Session {
		t.Fatalf("write %v was not sent under the member's session", ids[0])
	}
	req, err := encodeCtl(ctlForward, forward{Session: chosen, Seq: ids[0].Seq, Base: ids[0].Seq - 1, Attempt: 1 << 30, Cmds: [][]byte{cmd}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.g.scope.Request(ctxT(t, 10*time.Second), f.g.ctlSubject(leader.net.ID()), leader.net.ID(), req)
	if err != nil {
		t.Fatal(err)
	}
	var r forwardReply
	if err := decodeWire(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Kind != replyOutcome || r.Outcome.Count != 0 {
		t.Fatalf("late copy answered %+v; want the repeat's outcome, with no commands", r)
	}

	if _, err := f.g.Execute(ctxT(t, 10*time.Second), counterCmd{Add: 2}); err != nil {
		t.Fatal(err)
	}
	converge(t, nodes...)
	if h := sameHistory(t, nodes...); !slices.Equal(h, []int64{1, 2}) {
		t.Fatalf("history %v, want [1 2]: withdrawn and unsent writes never apply", h)
	}
}

// Outcome of a write the member keeps no record of is final: unknown.
func TestOutcomeNoRecord(t *testing.T) {
	c := newCluster(t)
	nd := c.add(nil)
	online(t, nd)
	_, _, err := nd.g.Outcome(ctxT(t, 5*time.Second), WriteID{Seq: 1})
	var u *UnknownOutcomeError
	if !errors.Is(err, ErrOutcomeUnknown) || errors.As(err, &u) {
		t.Fatalf("Outcome of a write never sent = %v; want a final ErrOutcomeUnknown", err)
	}
}

// Without a deadline, a write whose forward is lost returns within
// 3 × ForwardTimeout with the unknown-outcome error (of the default
// deadline), for Execute and ExecuteApplied alike.
func TestUnknownOutcomeBounded(t *testing.T) {
	c := newCluster(t)
	cfg := testConfig()
	cfg.ForwardTimeout = 300 * time.Millisecond
	cfg.DeadMemberTimeout = time.Minute
	nodes := []*node{c.add(cfg), c.add(cfg), c.add(cfg)}
	online(t, nodes...)
	l := c.leader(nodes...)
	f := nodes[slices.IndexFunc(nodes, func(nd *node) bool { return nd != l })]
	l.faults.Partition(f.net.ID())
	defer l.faults.Heal()
	for _, call := range []struct {
		name string
		do   func() error
	}{
		{"Execute", func() error { _, err := f.g.Execute(context.Background(), counterCmd{Add: 1}); return err }},
		{"ExecuteApplied", func() error {
			_, err := ExecuteApplied[int64](context.Background(), f.g, []counterCmd{{Add: 1}})
			return err
		}},
	} {
		start := time.Now()
		err := call.do()
		took := time.Since(start)
		if took > 3*cfg.ForwardTimeout+time.Second {
			t.Fatalf("%s returned after %v; its bound is 3 × ForwardTimeout", call.name, took)
		}
		unknownWrite(t, err, call.name)
	}
}
