package replica

import (
	"testing"

	"github.com/mosaik-go/mosaik/rsm"
)

// TestForgottenSessionFirstBatchNotAppliedTwice: a submitter's first
// batches carry Base 0 until it learns their outcome. If its session is
// evicted (MaxSessions newer sessions applied) before it learns that, its
// retry of batch 1 (Seq 1, Base 0, exactly what submitter.send resends)
// looks like a brand new session and applies a second time.
func TestForgottenSessionFirstBatchNotAppliedTwice(t *testing.T) {
	p := &plain{}
	f := New[int64, struct{}, int64](p, nil)
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
	if o.Status != StatusExpired || o.First != f.sessions.forgotten || f.sessions.forgotten == 0 {
		t.Fatalf("retry of a forgotten session's first batch: %+v (forgotten %d), want StatusExpired naming the forgotten mark", o, f.sessions.forgotten)
	}
	// A member behind the group names its new session past that mark
	// (groups does, from this outcome): refused at the mark, taken past it.
	for _, c := range []struct {
		seen rsm.Index
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

// TestSessionOutcomeAnswersAsApply: SessionOutcome tells what a repeat of
// a batch would get from Apply: its outcome while remembered, Stale for an
// older applied batch, Expired once the session was forgotten, and nothing
// for a batch that has not applied.
func TestSessionOutcomeAnswersAsApply(t *testing.T) {
	f := New[int64, struct{}, int64](&plain{}, nil)
	l := &logs{t: t, term: 1}
	s, err := NewSessionID(f.Applied())
	if err != nil {
		t.Fatal(err)
	}
	last := uint64(SessionWindow + 3)
	for seq := uint64(1); seq <= last; seq++ {
		f.Apply(l.entry(Entry{Session: s, Seq: seq, First: f.Applied() + 1, Cmds: cmds(t, 1)}))
	}
	if o, ok := f.SessionOutcome(s, last); !ok || o.Status != StatusApplied {
		t.Fatalf("latest batch: %+v %v", o, ok)
	}
	if o, ok := f.SessionOutcome(s, 1); !ok || o.Status != StatusStale {
		t.Fatalf("batch beyond the window: %+v %v, want stale", o, ok)
	}
	if o, ok := f.SessionOutcome(s, last+1); ok {
		t.Fatalf("batch not applied yet: %+v", o)
	}
	for range MaxSessions {
		other, err := NewSessionID(f.Applied())
		if err != nil {
			t.Fatal(err)
		}
		f.Apply(l.entry(Entry{Session: other, Seq: 1, First: f.Applied() + 1, Cmds: cmds(t, 1)}))
	}
	for _, seq := range []uint64{1, last, last + 1} {
		o, ok := f.SessionOutcome(s, seq)
		if !ok || o.Status != StatusExpired {
			t.Fatalf("batch %d of a forgotten session: %+v %v, want expired", seq, o, ok)
		}
		if a := outcome(t, f.Apply(l.entry(Entry{Session: s, Seq: seq, Base: seq - 1, First: f.Applied() + 1, Cmds: cmds(t, 1)}))); a.Status != o.Status || a.First != o.First {
			t.Fatalf("batch %d: SessionOutcome %+v, Apply %+v", seq, o, a)
		}
	}
}
