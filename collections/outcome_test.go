package collections

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/transport"
)

// A Map write that times out after it was sent says its outcome is unknown
// and names itself; the writer's Outcome then says whether it applied, at
// which version, or never will, and the map agrees. A delayed write applies
// (the delayed copy reaches the leader before the withdrawal); a lost one,
// withdrawn once its caller gave up, never applies.
func TestMapOutcomeOfUnknownWrite(t *testing.T) {
	tn := newTestNet(t)
	cfg := testGroupConfig()
	cfg.DeadMemberTimeout = time.Minute // a cut-off member stays a member
	var (
		ws     []*MapWriter[string, int]
		faults []*transport.Faults
	)
	for range 3 {
		f := transport.NewFaults()
		n, err := transport.New(context.Background(), transport.WithURL(tn.hub.URL()), transport.WithFaults(f))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		ws = append(ws, openMapW[string, int](t, n, "outcome", WithGroupConfig(cfg)))
		faults = append(faults, f)
	}
	online(t, ws[0], ws[1], ws[2])
	// roles returns the leader's index and a follower's.
	roles := func() (int, int) {
		var l int
		deadline := time.Now().Add(15 * time.Second)
		for {
			id, ok := ws[0].Leader()
			for i, w := range ws {
				if ok && w.g.Self() == id && w.g.IsLeader() {
					l = i
					return l, (l + 1) % 3
				}
			}
			if time.Now().After(deadline) {
				t.Fatal("no leader")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	unknown := func(err error, what string) WriteID {
		t.Helper()
		var u *UnknownOutcomeError
		if !errors.Is(err, ErrOutcomeUnknown) || !errors.As(err, &u) || errors.Is(err, ErrNotApplied) {
			t.Fatalf("%s: %v, want ErrOutcomeUnknown with an *UnknownOutcomeError", what, err)
		}
		return u.Write
	}

	// Delayed: it applies late.
	applied := false
	for try := 0; try < 3 && !applied; try++ {
		_, f := roles()
		key := fmt.Sprint("late", try)
		faults[f].Delay(800 * time.Millisecond)
		_, err := ws[f].Insert(ctxT(t, 200*time.Millisecond), key, 1)
		id := unknown(err, "Insert while delayed")
		faults[f].Heal()
		var v Version
		v, applied, err = ws[f].Outcome(tctx(t), id)
		if err != nil {
			t.Fatalf("Outcome: %v", err)
		}
		if applied {
			reach(t, v, ws[0], ws[1], ws[2])
		} else {
			settle(t, ws[0], ws[1], ws[2])
		}
		for i, w := range ws {
			if got, ok := w.Get(key); ok != applied || (ok && got != 1) {
				t.Fatalf("Outcome said applied=%v at %d, replica %d holds %q = %d, %v", applied, v, i, key, got, ok)
			}
		}
	}
	if !applied {
		t.Fatal("the delayed write never applied in 3 tries")
	}

	// Lost: the leader drops what the writer sends; the writer still hears
	// its announcements and keeps sending to it.
	l, f := roles()
	faults[l].Partition(ws[f].g.Self())
	_, err := ws[f].Insert(ctxT(t, 300*time.Millisecond), "lost", 1)
	id := unknown(err, "Insert while cut off")
	faults[l].Heal()
	v, applied, err := ws[f].Outcome(tctx(t), id)
	if err != nil || applied {
		t.Fatalf("Outcome = %d, %v, %v; want never applied", v, applied, err)
	}
	after := ok[Version](t)(ws[f].Insert(tctx(t), "after", 2))
	reach(t, after, ws[0], ws[1], ws[2])
	for i, w := range ws {
		if _, ok := w.Get("lost"); ok {
			t.Fatalf("replica %d holds the write Outcome said never applies", i)
		}
	}

	// A closed writer can no longer tell.
	_ = ws[f].Close()
	if _, _, err := ws[f].Outcome(tctx(t), id); !errors.Is(err, ErrClosed) {
		t.Fatalf("Outcome on a closed writer = %v, want ErrClosed", err)
	}
}
