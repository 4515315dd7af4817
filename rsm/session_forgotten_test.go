package rsm

import (
	"testing"
)

// TestForgottenSessionFirstBatchNotAppliedTwice: a submitter's first
// batches carry Base 0 until it learns their outcome. If its session is
// evicted (MaxSessions newer sessions applied) before it learns that, its
// retry of batch 1 (Seq 1, Base 0, exactly what submitter.send resends)
// looks like a brand new session and applies a second time.
func TestForgottenSessionFirstBatchNotAppliedTwice(t *testing.T) {
	p := &plain{}
	f := NewFSM[int64, struct{}, int64](p, nil)
	l := &logs{t: t, term: 1}
	victim, err := NewSessionID(f.Applied())
	if err != nil {
		t.Fatal(err)
	}
	first := Entry{Session: victim, Seq: 1, Base: 0, First: 1, Cmds: cmds(t, 42)}
	if o := outcome(t, f.Apply(l.entry(first))); o.Status != StatusApplied {
		t.Fatalf("first batch: %+v", o)
	}
	// MaxSessions other submitters (e.g. member restarts, or one member
	// forwarding under fresh session ids) apply one batch each.
	for range MaxSessions {
		s, err := NewSessionID(f.Applied())
		if err != nil {
			t.Fatal(err)
		}
		f.Apply(l.entry(Entry{Session: s, Seq: 1, First: f.Applied() + 1, Cmds: cmds(t, 1)}))
	}
	if _, ok := f.SessionLast(victim); ok {
		t.Fatal("victim session not evicted; test premise wrong")
	}
	// The submitter never got the outcome (leader died before answering):
	// it resends the same batch, still with Base 0.
	retry := first
	retry.First = f.Applied() + 1
	o := outcome(t, f.Apply(l.entry(retry)))
	if o.Status != StatusExpired || o.First != f.forgotten || f.forgotten == 0 {
		t.Fatalf("retry of a forgotten session's first batch: %+v (forgotten %d), want StatusExpired naming the forgotten mark", o, f.forgotten)
	}
	// A member behind the group names its new session past that mark
	// (groups does, from this outcome): refused at the mark, taken past it.
	for _, c := range []struct {
		seen Index
		want Status
	}{{o.First, StatusExpired}, {o.First + 1, StatusApplied}} {
		id, err := NewSessionID(c.seen)
		if err != nil {
			t.Fatal(err)
		}
		if got := outcome(t, f.Apply(l.entry(Entry{Session: id, Seq: 1, First: f.Applied() + 1, Cmds: cmds(t, 9)}))); got.Status != c.want {
			t.Fatalf("a new session that saw %d: %+v, want status %d", c.seen, got, c.want)
		}
	}
	n := 0
	for _, v := range p.got {
		if v == 42 {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("command applied %d times (retry outcome %+v): exactly-once broken", n, o)
	}
	// A session made now, past every forgotten one, starts as usual.
	fresh, err := NewSessionID(f.Applied())
	if err != nil {
		t.Fatal(err)
	}
	if o := outcome(t, f.Apply(l.entry(Entry{Session: fresh, Seq: 1, First: f.Applied() + 1, Cmds: cmds(t, 7)}))); o.Status != StatusApplied {
		t.Fatalf("a fresh session: %+v, want StatusApplied", o)
	}
}
