package groups

import (
	"context"
	"errors"
	"testing"

	"github.com/mosaik-go/mosaik/internal/replica"
	"github.com/mosaik-go/mosaik/rsm"
)

// The submitter's bookkeeping for a batch shared by three calls, the
// middle one's caller giving up after it was sent: the batch goes on
// without it, and the outcome's count tells which copy applied, so each
// call gets its own share and the one given up a record that says whether
// it applied.
func TestWithdrawFromSharedBatch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		count   int // commands in the copy that applied
		applied bool
	}{
		{"original applied", 4, true},
		{"withdrawal applied", 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &submitter{c: &core{lifecycle: lifecycle{closing: make(chan struct{})}}, records: map[WriteID]*record{}, gaveUp: make(chan struct{}, 1)}
			cmd := []byte{0x01}
			newP := func(n int) *pending {
				p := &pending{ctx: context.Background(), done: make(chan pendingResult, 1)}
				for range n {
					p.cmds = append(p.cmds, cmd)
				}
				return p
			}
			a, gone, c := newP(2), newP(1), newP(1)
			b := &batch{seq: 3, parts: []*pending{a, gone, c}}
			for i, p := range b.parts {
				b.cmds = append(b.cmds, p.cmds...)
				p.id = WriteID{Seq: b.seq, Part: i}
			}
			b.versions = []version{{count: len(b.cmds)}}
			s.inflight = []*batch{b}
			s.attempts = 1 // the original went as attempt 1

			_, err := s.giveUp(gone, context.DeadlineExceeded)
			var u *UnknownOutcomeError
			if !errors.As(err, &u) || u.Write != gone.id {
				t.Fatalf("giveUp = %v", err)
			}
			s.withdraw()
			if len(b.cmds) != 3 || len(b.versions) != 2 || b.versionOf(1) != 0 || b.versionOf(2) != 1 {
				t.Fatalf("after withdrawal: %d commands, versions %+v", len(b.cmds), b.versions)
			}
			s.withdraw() // nothing more to withdraw: no new version
			if len(b.versions) != 2 {
				t.Fatalf("versions %+v", b.versions)
			}

			s.resolve(b, replica.Outcome{Status: replica.StatusApplied, First: 100, Count: tc.count}, nil)
			ra, rc := <-a.done, <-c.done
			wantC := rsm.Index(102)
			if tc.applied {
				wantC = 103
			}
			if ra.err != nil || ra.out.First != 100 || ra.out.Count != 2 || rc.err != nil || rc.out.First != wantC || rc.out.Count != 1 {
				t.Fatalf("shares: %+v %v, %+v %v", ra.out, ra.err, rc.out, rc.err)
			}
			rng, applied, err := s.outcome(context.Background(), gone.id)
			if err != nil || applied != tc.applied || (applied && rng != (rsm.IndexRange{First: 102, Last: 102})) {
				t.Fatalf("outcome of the withdrawn call = %+v, %v, %v; want applied=%v", rng, applied, err, tc.applied)
			}
		})
	}
}
